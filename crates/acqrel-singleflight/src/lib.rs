//! Coalesced per-key work: one execution for many concurrent callers, with
//! every policy (cancellation, panics, errors, memory) chosen and tested.
//!
//! The naive version is Go's `x/sync/singleflight` pattern ported as a
//! `Mutex<HashMap<K, Shared<Future>>>`: the first caller's future does the
//! work, so cancelling that caller cancels everyone (or leaves them waiting
//! until somebody polls again), an entry whose callers all vanished stays in
//! the map, a failure is cached with the value, and a panic poisons the key.
//! Here the work runs as its own task, the last caller to leave cancels it,
//! the table entry lives exactly as long as the execution, errors and panics
//! reach every waiter and are never kept.
//!
//! | Go idiom | Type | Release | Acquire |
//! |---|---|---|---|
//! | `singleflight.Group.Do` / `Forget` | [`Group`] | the flight's task storing the outcome and opening its latch | each waiter's wait returning |
//! | `sync.Map` + `singleflight` as a cache | [`Cache`] | a fetch storing its value under the shard lock | a get taking that lock |
//! | `sync.Map` + per-entry `sync.Once` (per-host pool), retrying | [`OnceMap`] | an initializer returning `Ok` (`TryOnce`'s Release store) | `get`, `get_or_*` returning the value |
//!
//! [`OnceMap`] is the blocking one (no runtime): per-key lazy
//! initialization in which an error or a panic is not cached but retried by
//! the next caller (or one already waiting), different keys initialize in
//! parallel (no map-wide lock is held while an initializer runs), and a key
//! whose initialization failed leaves no entry behind.
//!
//! The policies side by side, and what other crates do instead:
//! `docs/patterns/singleflight.md`.
//!
//! # Verification
//!
//! `tests/group.rs`, `tests/cache.rs` and `tests/once_map.rs` hold one
//! scenario per policy, each ending with the map empty; the flight table's
//! join/leave/complete protocol and the once-map's claims are loom models
//! (`tests/loom_*.rs`) with mutants that must fail them
//! (`tests/loom_mutants.txt`).
//!
//! # Example
//!
//! ```
//! use acqrel_singleflight::Group;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let group: Group<u64, String, std::io::Error> = Group::new();
//! let (a, b) = tokio::join!(
//!     group.run(7, || async { Ok("user 7".to_string()) }),
//!     group.run(7, || async { unreachable!("coalesced") }),
//! );
//! assert_eq!(a.unwrap().value, "user 7");
//! assert!(b.unwrap().shared);
//! # });
//! ```

#![doc(test(attr(deny(warnings))))]

mod cache;
mod error;
mod flight;
mod group;
mod once_map;
mod sync;

pub use crate::cache::{Cache, CacheBuilder, CacheStats};
pub use crate::error::FlightError;
pub use crate::flight::CancelPolicy;
pub use crate::group::{Group, Outcome};
pub use crate::once_map::OnceMap;

/// The guide's page, compiled and run as a doc test so its examples cannot
/// drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/patterns/singleflight.md")]
struct SingleflightGuide;
