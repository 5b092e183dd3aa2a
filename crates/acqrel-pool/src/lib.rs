//! Worker lifecycle for tokio: how tasks learn that they must stop, why,
//! and by when.
//!
//! The guide stops a worker pool in one of two ways ("Worker Lifecycle
//! Signals"): a `stop` channel that `Stop` closes (under a `sync.Once`, so
//! closing twice does not panic) while workers `select` on `<-p.stop`, or a
//! `context.Context` whose `cancel()` reaches the whole tree of goroutines
//! under it, with deadlines; `sync.WaitGroup` then waits for the workers,
//! and `errgroup` (its Appendix P) adds "the first error cancels the rest".
//!
//! The usual Rust rendering falls short in ways that matter at shutdown:
//! an `AtomicBool` polled in a loop wakes nobody; a `watch` or `broadcast`
//! channel per worker must be threaded by hand through every layer; tokio-util's
//! `CancellationToken` builds the tree but cannot say *why* it was cancelled
//! (the shutdown, a deadline, a failed sibling, a dropped request: a worker
//! that must log or map the reason cannot tell) and has no deadline. Here
//! [`Shutdown`] is that tree, with the [`Cause`] every listener reads and
//! deadlines that cancel with a cause of their own.
//!
//! | Go idiom | Type | Release | Acquire |
//! |---|---|---|---|
//! | `close(stop)` / `<-stop` (with `sync.Once` around the close); `context.WithCancel`, `cancel()`, `<-ctx.Done()` | [`Shutdown`] | [`cancel`](Shutdown::cancel): the cause is stored under the node's lock, then the node's latch opens (Release swap) | [`is_cancelled`](Shutdown::is_cancelled) (Acquire load), [`cancelled`](Shutdown::cancelled) completing |
//! | `context.WithCancelCause`, `context.Cause(ctx)` | [`Cause`] | stored by the first `cancel` only | [`cause`](Shutdown::cause) (under the node's lock; `Some` once `is_cancelled`) |
//! | `context.WithDeadline`, `context.WithTimeout`, `context.DeadlineExceeded` | [`Shutdown::with_deadline`], [`Shutdown::with_timeout`], [`CauseKind::DeadlineExceeded`] | the timer task's `cancel` | as above |
//! | `ctx, cancel := ...; defer cancel()` | [`DropGuard`] | its `Drop` (a `cancel`) | as above |
//! | N goroutines ranging over a `jobs` channel, stopped by `close(stop)` or a context, then `wg.Wait()` | [`WorkerPool`] | [`submit`](WorkerPool::submit): the job is queued under the queue's inbox lock (unlock releases); the first [`shutdown`](WorkerPool::shutdown) stores its [`ShutdownReport`], then advances the stage to `Stopped` (Release) | a worker taking the job (it locks the inbox to move it); every `shutdown` call and [`reached`](WorkerPool::reached) seeing `Stopped` (Acquire), then reading the report |
//! | `errgroup.WithContext`, `g.Go`, `g.Wait`, `g.SetLimit`, `g.TryGo` | [`TaskGroup`] | a task's end: its error or panic is pushed, then its entry freed, under the group's lock (unlock releases); the first failure [`cancel`](Shutdown::cancel)s the group's `Shutdown` with it as the cause | [`wait`](TaskGroup::wait) returning (it finds no task running and takes the failures under that lock); siblings' [`cancelled`](Shutdown::cancelled) |
//!
//! Cancellation goes down the tree, never up: a parent's cancellation
//! reaches every descendant, all of which then report the parent's cause
//! (the same value: [`Cause::ptr_eq`]); a child's stops at the child. A
//! parent forgets a child as soon as every handle of the child is dropped,
//! so a long-lived root handing a child to each request does not grow.
//!
//! On that tree:
//!
//! - [`WorkerPool`]: N tokio tasks (or blocking threads) consuming a
//!   bounded queue. [`submit`](WorkerPool::submit) waits for room,
//!   [`try_submit`](WorkerPool::try_submit) hands the job back;
//!   [`shutdown(grace)`](WorkerPool::shutdown) drains for `grace`, then
//!   drops the queued jobs and cancels the running ones, then aborts what
//!   ignores it, and returns a [`ShutdownReport`] counting every job once.
//!   Its stages are observable ([`PoolStage`]).
//! - [`TaskGroup`]: Go's errgroup with a concurrency limit and
//!   [`try_spawn`](TaskGroup::try_spawn); the first failure cancels the
//!   group's `Shutdown` with itself as the cause, and
//!   [`wait`](TaskGroup::wait) returns every failure. Finished tasks are not
//!   kept.
//!
//! The policies (what happens to queued jobs, panics, drops, repeated
//! shutdowns), a comparison with tokio-util, tokio-graceful-shutdown and
//! Go, and the measurements are in `docs/patterns/worker-lifecycle.md`.
//!
//! # Verification
//!
//! `tests/shutdown.rs`, `tests/pool.rs` and `tests/group.rs` check each rule
//! with exact outcomes (the deadlines and grace periods on tokio's paused
//! clock, to the tick; no task or job left alive after a shutdown or a
//! drop). The races that decide them (a child created while its parent is
//! cancelled, two cancels with different causes, a cancellation seen before
//! its cause, two shutdowns electing one leader, the report read before it
//! is stored, a wake-up of the job queue lost or a waiting submit dropped
//! as room is passed to it) are loom models in `tests/loom_shutdown.rs`,
//! `tests/loom_lifecycle.rs` and `tests/loom_queue.rs`, with mutants that
//! must fail them in `tests/loom_mutants.txt`.
//!
//! # Example
//!
//! A server whose requests stop at their own deadline or at shutdown,
//! whichever comes first, and say which:
//!
//! ```
//! use std::time::Duration;
//! use acqrel_pool::{CauseKind, Shutdown};
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true)
//! #     .build().unwrap().block_on(async {
//!
//! let server = Shutdown::new();
//! let handle = |request: Shutdown| async move {
//!     let work = tokio::time::sleep(Duration::from_secs(10));
//!     match request.run_until_cancelled(work).await {
//!         Ok(()) => "done".to_string(),
//!         Err(cause) if cause.kind() == CauseKind::DeadlineExceeded => "timed out".to_string(),
//!         Err(cause) => format!("stopped: {cause}"),
//!     }
//! };
//!
//! let slow = tokio::spawn(handle(server.with_timeout(Duration::from_secs(1))));
//! assert_eq!(slow.await.unwrap(), "timed out");
//!
//! let during_shutdown = tokio::spawn(handle(server.with_timeout(Duration::from_secs(60))));
//! server.cancel("SIGTERM");
//! assert_eq!(during_shutdown.await.unwrap(), "stopped: SIGTERM");
//! # });
//! ```

#![doc(test(attr(deny(warnings))))]

mod catch_unwind;
mod group;
mod pool;
mod shutdown;
mod sync;

pub use crate::group::{GROUP_DROPPED, GroupError, TaskGroup, TrySpawnError};
#[cfg(acqrel_loom)]
#[doc(hidden)]
pub use crate::pool::lifecycle;
#[cfg(acqrel_loom)]
#[doc(hidden)]
pub use crate::pool::queue;
pub use crate::pool::{
    Builder, EndedBy, GRACE_OVER, POOL_DROPPED, PoolStage, PoolStats, ShutdownReport, SubmitError,
    TrySubmitError, WorkerPool,
};
pub use crate::shutdown::{Cause, CauseKind, DropGuard, Shutdown};

/// The guide's page, compiled and run as a doc test so its examples cannot
/// drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/patterns/worker-lifecycle.md")]
struct WorkerLifecycleGuide;
