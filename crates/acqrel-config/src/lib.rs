//! Hot-reload configuration: a typed config loaded from a JSON file and kept
//! current, with wait-free reads.
//!
//! The naive version is the guide's: a goroutine polls the file's
//! modification time every few seconds and swaps an `atomic.Pointer[Config]`
//! when it parses. It reacts slowly, reloads half-written files as soon as
//! their mtime moves, reloads unchanged content after a `touch`, loses track
//! of the file after an editor's rename or a Kubernetes ConfigMap update,
//! and reports failures with a `Println`. [`HotConfig`] instead:
//!
//! - watches the file's **directory** (so renames, delete and re-create, and
//!   ConfigMap `..data` symlink swaps are all seen), **debounces** bursts of
//!   events on an injected [`Clock`](acqrel_core::Clock), and can also poll;
//! - reloads only when the **content hash** changed, and serves the new
//!   config only if it **parses and validates**; otherwise the last good
//!   config stays, and the refusal is counted, logged (`tracing` warn) and
//!   kept in [`HotConfig::status`];
//! - never panics on file content (empty, truncated, invalid UTF-8, huge
//!   numbers, deep nesting, larger than [`Builder::max_size`]), and catches
//!   panics in the config's `Deserialize` and in the validator;
//! - delivers changes by blocking or async waits, a coalescing
//!   [`Subscription`] stream, and callbacks;
//! - stops its thread and watcher when the handle is dropped.
//!
//! | Go idiom | Type | Release | Acquire |
//! |---|---|---|---|
//! | `atomic.Pointer[Config]` swapped by a reload goroutine (Pattern 4) | [`HotConfig`] | the reload's commit into its `Snapshot` | [`HotConfig::get`], [`HotConfig::wait_changed`], [`HotConfig::changed`] |
//! | capacity-1 reload channel with a non-blocking send (coalescing) | [`Subscription`] | commit, then a `GenerationSignal` fire | [`Subscription::recv`] returning |
//! | `for range reload` consumer goroutine | [`HotConfig::on_change`] | commit | the callback's argument |
//!
//! # Contents
//!
//! - [`HotConfig`], made by a [`Builder`]: the handle.
//! - [`ConfigGuard`], [`ConfigRef`]: a borrowed and an owned version of the
//!   config, each with its generation.
//! - [`Status`], [`ReloadOutcome`], [`ReloadError`], [`Reason`],
//!   [`StartError`]: what happened, and why not.
//! - [`Subscription`], [`CallbackId`]: change delivery.
//!
//! # Threads and orderings
//!
//! One reloader thread per config (plus the file watcher's own thread)
//! reads the file; [`HotConfig::reload_now`] reads it on the caller's
//! thread. All publication goes through `acqrel-core`'s loom-checked
//! [`Snapshot`](acqrel_core::Snapshot) (config, generation, hash and load
//! time in one value), [`GenerationSignal`](acqrel_core::GenerationSignal)
//! and [`Latch`](acqrel_core::Latch); this crate adds no atomics of its
//! own. What it adds is the reloader's lock-and-condvar wake-up protocol,
//! modelled in `tests/loom_trigger.rs`, and the rule that a reload commits
//! only if no later read committed first (see `docs/patterns/hot-reload.md`).
//!
//! # Example
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("acqrel-doc-crate-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! use std::time::Duration;
//! use acqrel_config::HotConfig;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { hosts: Vec<String>, timeout_ms: u64 }
//!
//! let path = dir.join("service.json");
//! std::fs::write(&path, r#"{"hosts": ["a"], "timeout_ms": 500}"#)?;
//! let config = HotConfig::<Config>::builder(&path)
//!     .validate(|c: &Config| if c.hosts.is_empty() { Err("no hosts") } else { Ok(()) })
//!     .start()?;
//!
//! // A refused edit keeps the last good config.
//! let seen = config.status().checks;
//! std::fs::write(&path, r#"{"hosts": [], "timeout_ms": 500}"#)?;
//! let mut checks = seen;
//! while config.status().failures == 0 {
//!     checks = config.wait_checked_timeout(checks, Duration::from_secs(30)).expect("checked");
//! }
//! assert_eq!(config.get().hosts, ["a"]);
//!
//! // A good one is served.
//! std::fs::write(&path, r#"{"hosts": ["a", "b"], "timeout_ms": 250}"#)?;
//! let new = config.wait_changed_timeout(0, Duration::from_secs(30)).expect("reloaded");
//! assert_eq!((new.hosts.len(), new.timeout_ms), (2, 250));
//! # drop(config);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![doc(test(attr(deny(warnings))))]

mod builder;
mod error;
mod hot_config;
mod reloader;
mod shared;
mod source;
mod subscription;
mod sync;
// Public, undocumented, only for this crate's loom model
// (`tests/loom_trigger.rs`); private in every other build.
#[cfg(acqrel_loom)]
#[doc(hidden)]
pub mod trigger;
#[cfg(not(acqrel_loom))]
#[allow(unreachable_pub)]
mod trigger;

pub use crate::builder::{Builder, DEFAULT_DEBOUNCE, DEFAULT_MAX_SIZE};
pub use crate::error::{BoxError, Reason, ReloadError, StartError};
pub use crate::hot_config::{CallbackId, ConfigGuard, ConfigRef, HotConfig, ReloadOutcome, Status};
pub use crate::subscription::Subscription;

/// The guide's page on this crate, compiled and run as a doc test so its
/// example cannot drift from the API (`acqrel-core`, which compiles the
/// other pages, cannot depend on this crate).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/patterns/hot-reload.md")]
struct HotReloadGuide;
