//! Rate limiting across a fleet: the GCRA of
//! [`acqrel-ratelimit`](acqrel_ratelimit), with the bucket in Redis, so ten
//! replicas of a service admit the quota once, not ten times.
//!
//! The naive versions fall short in known ways: a counter with `INCR` and
//! `EXPIRE` admits up to twice the limit across a window's edge and takes
//! two round trips; a read, then a write from the client races with other
//! clients; a client-side clock in the arithmetic lets clocks that disagree
//! admit extra bursts; a module such as redis-cell is not allowed on
//! managed Redis. Here the whole decision is one Lua script over one key
//! (`EVALSHA`, falling back to `EVAL` on `NOSCRIPT`): it reads Redis's own
//! clock with `TIME`, decides, and writes the new theoretical arrival time
//! in one atomic step, exactly (integer pairs, not doubles; see
//! `docs/patterns/rate-limit.md`, "Across a fleet").
//!
//! | Go idiom | Type | Where the decision is made atomic |
//! |---|---|---|
//! | `redis_rate.Limiter.Allow(ctx, "api", limit)` | [`RedisRateLimiter`] | the script's read-decide-write, which Redis runs alone |
//! | `limiter.Allow(ctx, "user:"+id, limit)` per client | [`KeyedRedisRateLimiter`] | the same script, one key per call |
//!
//! Nothing here publishes memory between threads: the shared state is in
//! Redis, whose scripts run one at a time, so there is no release and
//! acquire to name and no loom model to write (`docs/verification.md` says
//! what checks it instead: a real server, several clients, faults).
//!
//! # Policies
//!
//! - **The same answers** as the in-process limiters: `Ok(())`, denied
//!   [`NotUntil`](acqrel_ratelimit::NotUntil) a time (Redis's clock, since
//!   the Unix epoch; [`wait_time`](acqrel_ratelimit::NotUntil::wait_time) is
//!   what to wait), and
//!   [`InsufficientCapacity`](RedisNegative::InsufficientCapacity) for more
//!   cells than the burst. Built from the same [`Quota`](acqrel_ratelimit::Quota),
//!   exact for every quota whose `burst × interval` is within 2⁵¹ seconds
//!   (anything else is refused, [`QuotaOutOfRange`]). `NotUntil` holds
//!   times to the nanosecond up to 2⁶⁴ ns after 1970 (the year 2554): a
//!   denial further out than that, possible only with a tolerance of
//!   centuries, names that year, and its wait saturates likewise.
//! - **Failure is explicit**: the builder takes a [`FailurePolicy`] with no
//!   default. Each call has a timeout (100 ms by default); a dropped
//!   connection is re-established in the background and the next checks
//!   use it; every failure is a typed error, never a panic.
//! - **The deny cache**: once Redis has denied a key until a time, checks
//!   of that key before it are answered here without a round trip. It only
//!   ever denies, so it never admits more than the quota. It can deny for
//!   longer than Redis would (by up to one tolerance) when the bucket was
//!   refilled behind its back: another client's refund, a quota raised
//!   elsewhere, a restarted or flushed server. It holds at most `max_keys`
//!   keys.
//! - **Redis's clock** is the only clock in a decision. It is a wall clock:
//!   if the server's time steps back, the buckets refill nothing until it
//!   catches up; if it steps forward, they refill early, by at most a burst
//!   per step.
//! - **Keys expire** when their bucket is full again, so idle keys cost
//!   nothing; one key per call, so the script never spans slots
//!   (`CROSSSLOT`) on Redis Cluster (the connection itself is to one
//!   server: see [`KeyedRedisRateLimiter`]). Plain TCP only (`redis://`):
//!   TLS (`rediss://`) is not built in.
//!
//! # Example
//!
//! ```no_run
//! use std::num::NonZeroU32;
//! use std::time::Duration;
//! use acqrel_ratelimit::Quota;
//! use acqrel_ratelimit_redis::{FailurePolicy, KeyedRedisRateLimiter};
//!
//! # #[allow(dead_code)]
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let quota = Quota::per_second(NonZeroU32::new(100).unwrap()).allow_burst(NonZeroU32::new(20).unwrap());
//! let limiter = KeyedRedisRateLimiter::<String>::builder(
//!     "redis://127.0.0.1:6379/",
//!     "rl:api:",
//!     quota,
//!     FailurePolicy::FailLocal { replicas: NonZeroU32::new(8).unwrap() },
//! )
//! .timeout(Duration::from_millis(20))
//! .build()?;
//! match limiter.check("tenant-42").await {
//!     Ok(()) => { /* serve */ }
//!     Err(e) => println!("429: {e}"),
//! }
//! # Ok(()) }
//! ```
#![doc(test(attr(deny(warnings))))]

mod connection;
mod core;
mod deny_cache;
mod direct;
mod error;
mod key;
mod keyed;
mod policy;
mod script;

pub use crate::direct::{RedisRateLimiter, RedisRateLimiterBuilder};
pub use crate::error::{BuildError, KeyError, QuotaOutOfRange, RedisNegative, Unavailable};
pub use crate::key::RedisKey;
pub use crate::keyed::{KeyedRedisRateLimiter, KeyedRedisRateLimiterBuilder};
pub use crate::policy::{Decision, FailurePolicy, Source, Stats};

/// The Lua script the limiters run, for review, or for loading ahead of
/// time (`SCRIPT LOAD`) where scripts must be approved first. Its `ARGV`
/// and reply are described in `docs/patterns/rate-limit.md`.
///
/// # Examples
///
/// ```
/// assert!(acqrel_ratelimit_redis::SCRIPT.contains("redis.call('TIME')"));
/// ```
pub const SCRIPT: &str = script::SOURCE;
