//! The acqrel-flags service as a daemon that other processes ask: a
//! drop-in for flagd's command line, serving OFREP (the OpenFeature Remote
//! Evaluation Protocol) over HTTP, with ETags, a server-sent change stream,
//! hot reload, health, Prometheus metrics and a graceful shutdown.
//!
//! The guide's case study A.1 is a flag *service*: a control plane
//! publishes flag updates while request handlers read flags wait-free.
//! `acqrel-flags` is that engine inside one process; this crate puts it
//! behind a port, built from the workspace's own parts:
//!
//! | Go idiom (flagd) | Here | Release | Acquire |
//! |---|---|---|---|
//! | a file-sync goroutine calling `SetState` per file, merged by priority | [`Sources`]: one acqrel-flags `WatchedFlags` per `--uri`, merged into the served `FlagStore` (the later file wins a key) | the merge's `FlagStore::replace` (an acqrel-core `Snapshot` store) | each request's `FlagStore::snapshot` |
//! | `atomic.Bool` ready flag behind `/readyz` | an acqrel-core `Latch` | `Latch::open` after the first merge | `Latch::is_open` in `/readyz` and every OFREP request |
//! | a `chan struct{}` per SSE client, fed after each update | one acqrel-bus queue of one event per stream (`FlagStore::subscribe`, `Overflow::DropOldest`) | the store's event publish (a push into each queue) | the stream's poll of its queue |
//! | `context.WithCancel` + `http.Server.Shutdown` | an acqrel-pool `Shutdown` cancelled on SIGTERM/SIGINT; connections in an acqrel-pool `TaskGroup` | `Shutdown::cancel` | `Shutdown::cancelled` in every accept loop, connection and stream |
//! | `golang.org/x/time/rate` per client | acqrel-ratelimit's `KeyedRateLimiter` keyed by peer address (`--rate-limit N/s`) | — | — |
//!
//! This crate adds no atomics that publish anything: its only atomic is
//! the count of open change streams (a bound, `Relaxed`); every
//! publication goes through the parts above, whose orderings are
//! loom-checked in their crates.
//!
//! # Contents
//!
//! - [`Options`], [`Command`], [`UsageError`], [`USAGE`]: the command line.
//! - [`Server`] (bound), [`Running`] (serving; [`Running::load`],
//!   [`Running::shutdown`]), [`ShutdownReport`], [`BindError`].
//! - [`Sources`], [`LoadFailure`]: the flag files and their merge.
//! - The `acqrel-flagd` binary: `acqrel-flagd start --uri file:PATH`.
//!
//! The endpoints, their answers and the choices behind them (ETags, the
//! change stream's overflow policy, bounds, shutdown) are described in
//! `docs/patterns/feature-flags.md`, "Running the service".
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! # let dir = std::env::temp_dir().join(format!("acqrel-flagd-doc-lib-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("flags.json");
//! # std::fs::write(&path, r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#).unwrap();
//! use acqrel_flagd::{Command, Options, Server};
//!
//! let uri = format!("file:{}", path.display());
//! let Command::Start(options) = Options::parse(["start", "--uri", &uri, "--ofrep-port", "0", "--management-port", "0", "-p", "0", "-g", "0"])? else {
//!     unreachable!()
//! };
//! let server = Server::bind(options).await?;
//! println!("OFREP on http://{}", server.ofrep_addr());
//! let running = server.serve();
//! running.load().await?;
//! assert_eq!(running.store().snapshot().len(), 1);
//! running.shutdown().await;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![doc(test(attr(deny(warnings))))]

mod cli;
mod grpc;
mod metrics;
mod ofrep;
mod server;
mod sources;
mod sse;
mod state;

pub use crate::cli::{Command, Options, USAGE, UsageError};
pub use crate::grpc::proto;
pub use crate::server::{BindError, MANAGEMENT_CONNECTIONS, Running, Server, ShutdownReport};
pub use crate::sources::{LoadFailure, Sources};
