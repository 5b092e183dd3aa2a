//! Rate limiting without locks: a GCRA bucket in one `AtomicU64`
//! ([`RateLimiter`]), per-key buckets with bounded memory
//! ([`KeyedRateLimiter`]), and a log throttle ([`Throttle`]).
//!
//! The naive version is the guide's: a token count and a 32-bit nanosecond
//! offset packed into one `uint64`, updated by CAS. Its offset wraps after
//! 4.3 seconds, so an idle limiter can come back with a bucket it computes
//! as empty (or full) for no reason. Go's `x/time/rate` is correct but takes
//! a mutex on every call. Here the state is a 60-bit theoretical arrival
//! time (in nanoseconds, or a coarser power of two for burst tolerances
//! past 9 years; at least 18 years of uptime) with a 4-bit quota tag, and
//! every decision is one load and, when admitted, one CAS.
//!
//! | Go idiom | Type | Release | Acquire |
//! |---|---|---|---|
//! | token bucket packed in a `uint64` + CAS; `rate.Limiter` | [`RateLimiter`] | `set_quota`'s CAS (publishes the quota slot it names) | every `check` loading the state |
//! | `map[key]*rate.Limiter` with a janitor goroutine | [`KeyedRateLimiter`] | a sweep releasing the slots it freed; a new key's reservation (its bound on the earliest idle time) (buckets: Relaxed CAS, published by DashMap's shard locks) | a new key reserving a slot (the evicted bucket is gone first), or finding none free (it sees every held bucket's bound) |
//! | "log at most once a second, say how many were dropped" | [`Throttle`], [`throttled!`] | — (permission only; Relaxed CAS and counters) | — |
//!
//! Admission itself publishes nothing: it is decided by the atomicity of the
//! compare-and-swap, which loom checks (`tests/loom_*.rs`: N racing checks
//! on a stopped clock admit exactly the burst).
//!
//! # Policies
//!
//! - Time comes from an injected [`Clock`](acqrel_core::Clock); the default
//!   [`MonotonicClock`](acqrel_core::MonotonicClock) never goes backwards.
//!   A clock that does (a [`ManualClock`](acqrel_core::ManualClock) set
//!   back) refills nothing while it is behind: a cell that was due at a
//!   reading becomes available when the clock reaches that reading again,
//!   and the state is intact.
//! - A clock reading is most of what a check costs (20 ns for
//!   `MonotonicClock`, 5 ns for the decision). Where that matters,
//!   [`CoarseClock`](acqrel_core::CoarseClock) reads the kernel's
//!   tick-time in 5 ns and never goes backwards either, at one tick's
//!   resolution (1–10 ms): admissions then move in clumps of up to a tick's
//!   worth of cells, the long-run rate unchanged. Measured against
//!   `governor` in `docs/patterns/rate-limit.md`.
//! - Asking for more cells than the burst is a distinct error, never a
//!   wait for ever.
//! - Every quota [`Quota`] can express, up to a 36-year interval with a
//!   burst of `u32::MAX`, follows GCRA (in `u128` arithmetic; see
//!   `docs/patterns/rate-limit.md` for the unit of the largest ones).
//! - When its TAT would pass 2⁶⁰ units (never in its first 2⁵⁹ units, 18
//!   years at 1 ns), the limiter fails closed.
//!
//! # Example
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::time::Duration;
//! use acqrel_core::ManualClock;
//! use acqrel_ratelimit::{Quota, RateLimiter};
//!
//! let clock = ManualClock::new();
//! let limiter = RateLimiter::with_clock(Quota::per_second(NonZeroU32::new(100).unwrap()), &clock);
//! let admitted = (0..1000).filter(|_| limiter.check().is_ok()).count();
//! assert_eq!(admitted, 100); // the burst
//! clock.advance(Duration::from_millis(50));
//! let admitted = (0..1000).filter(|_| limiter.check().is_ok()).count();
//! assert_eq!(admitted, 5); // what refilled: one cell per 10 ms
//! ```
#![doc(test(attr(deny(warnings))))]

mod direct;
mod error;
mod gcra;
mod jitter;
mod keyed;
mod quota;
mod sync;
mod throttle;

pub use crate::direct::RateLimiter;
pub use crate::error::{InsufficientCapacity, KeyedNegative, NegativeOutcome, NotUntil};
pub use crate::jitter::Jitter;
pub use crate::keyed::{CapPolicy, KeyedRateLimiter, KeyedRateLimiterBuilder};
pub use crate::quota::Quota;
pub use crate::throttle::Throttle;

/// What [`throttled!`] needs from this crate's dependencies.
#[doc(hidden)]
pub mod __private {
    pub use tracing;
}

/// The guide's page on this crate, compiled and run as a doc test so its
/// example cannot drift from the API (`acqrel-core`, which compiles the
/// other pages, cannot depend on this crate).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/patterns/rate-limit.md")]
struct RateLimitGuide;
