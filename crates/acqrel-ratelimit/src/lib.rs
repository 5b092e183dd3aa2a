//! Rate limiting without locks: a GCRA bucket in one `AtomicU64`
//! ([`RateLimiter`]), per-key buckets with bounded memory
//! ([`KeyedRateLimiter`]), and a log throttle ([`Throttle`]).
//!
//! The naive version is the guide's: a token count and a 32-bit nanosecond
//! offset packed into one `uint64`, updated by CAS. Its offset wraps after
//! 4.3 seconds, so an idle limiter can come back with a bucket it computes
//! as empty (or full) for no reason. Go's `x/time/rate` is correct but takes
//! a mutex on every call. Here the state is a 60-bit theoretical arrival
//! time in nanoseconds (36 years of uptime) with a 4-bit quota tag, and
//! every decision is one load and, when admitted, one CAS.
//!
//! | Go idiom | Type | Release | Acquire |
//! |---|---|---|---|
//! | token bucket packed in a `uint64` + CAS; `rate.Limiter` | [`RateLimiter`] | `set_quota`'s CAS (publishes the quota slot it names) | every `check` loading the state |
//! | `map[key]*rate.Limiter` with a janitor goroutine | [`KeyedRateLimiter`] | as `RateLimiter`, per key | as `RateLimiter`, per key |
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
//!   back) is treated as "no time passed": nothing is refilled, nothing is
//!   lost.
//! - Asking for more cells than the burst is a distinct error, never a
//!   wait for ever.
//! - Past 2⁶⁰ ns (36 years) of the limiter's clock, it fails closed.
//!
//! # Example
//!
//! ```
//! use std::num::NonZeroU32;
//! use acqrel_ratelimit::{Quota, RateLimiter};
//!
//! let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(100).unwrap()));
//! let admitted = (0..1000).filter(|_| limiter.check().is_ok()).count();
//! assert!((100..=110).contains(&admitted)); // the burst, plus what refilled meanwhile
//! ```
#![doc(test(attr(deny(warnings))))]

mod direct;
mod error;
mod gcra;
mod jitter;
mod quota;
mod sync;
mod throttle;

pub use crate::direct::RateLimiter;
pub use crate::error::{InsufficientCapacity, NegativeOutcome, NotUntil};
pub use crate::jitter::Jitter;
pub use crate::quota::Quota;
pub use crate::throttle::Throttle;

/// What [`throttled!`] needs from this crate's dependencies.
#[doc(hidden)]
pub mod __private {
    pub use tracing;
}
