//! [`FailurePolicy`], and what a decision says about who made it
//! ([`Decision`], [`Source`], [`Stats`]).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::error::RedisNegative;

/// What a check answers when Redis does not: chosen at construction, with
/// no default, because every choice costs something.
///
/// | policy | while Redis is down | the fleet admits |
/// |---|---|---|
/// | `FailClosed` | every check errs ([`RedisNegative::Unavailable`]) | nothing |
/// | `FailOpen` | every check is admitted, counted in [`Stats::fail_open`] | without limit |
/// | `FailLocal` | an in-process limiter decides, with `1 / replicas` of the quota | about the quota, if `replicas` is the fleet's size |
///
/// A check that Redis did not answer within the call timeout counts as
/// Redis being down. Every check tries Redis first (the connection is
/// re-established in the background), so the limiter goes back to Redis
/// by itself when it answers again.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use acqrel_ratelimit_redis::FailurePolicy;
///
/// // Ten replicas: each keeps a tenth of the quota while Redis is away.
/// let policy = FailurePolicy::FailLocal { replicas: NonZeroU32::new(10).unwrap() };
/// assert_ne!(policy, FailurePolicy::FailOpen);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Refuse: the check errs with [`RedisNegative::Unavailable`].
    FailClosed,
    /// Admit, and count the admission ([`Stats::fail_open`]).
    FailOpen,
    /// Decide locally, in a [`KeyedRateLimiter`](acqrel_ratelimit::KeyedRateLimiter)
    /// per limiter whose quota is this one's share: the interval
    /// `replicas` times longer, the burst divided by `replicas` (at least
    /// one cell, so a burst smaller than the fleet admits up to `replicas`
    /// cells at once). Its denials name times on this host's wall clock
    /// (Redis's is not at hand), so `wait_time` is what to wait, as ever. A
    /// request larger than the share's burst, which no local wait admits,
    /// is [`Unavailable`](RedisNegative::Unavailable) (not the permanent
    /// `InsufficientCapacity`: Redis may admit it once it is back). The
    /// local buckets start full and are not told of what Redis admitted.
    FailLocal {
        /// How many processes share the quota.
        replicas: NonZeroU32,
    },
}

/// Who decided a check.
///
/// # Examples
///
/// ```
/// use acqrel_ratelimit_redis::Source;
///
/// assert_ne!(Source::Redis, Source::DenyCache);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The script, on the Redis server.
    Redis,
    /// The local cache of Redis's denials, without a round trip.
    DenyCache,
    /// Decided before any round trip: zero cells (admitted), more than the
    /// burst, or a key refused.
    Client,
    /// Redis did not decide and [`FailurePolicy::FailClosed`] refused.
    FailClosed,
    /// Redis did not decide and [`FailurePolicy::FailOpen`] admitted.
    FailOpen,
    /// Redis did not decide and the [`FailurePolicy::FailLocal`] limiter
    /// did.
    FailLocal,
}

/// A check's answer with who gave it and, when Redis did, Redis's clock.
///
/// # Examples
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use acqrel_ratelimit::Quota;
/// use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter, Source};
/// # #[allow(dead_code)]
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let quota = Quota::per_second(NonZeroU32::new(100).unwrap());
/// let limiter = RedisRateLimiter::builder("redis://127.0.0.1/", "api", quota, FailurePolicy::FailClosed)
///     .build()?;
/// let decision = limiter.decide(1).await;
/// if decision.source() == Source::Redis {
///     println!("Redis's clock: {:?}", decision.redis_time());
/// }
/// decision.into_result()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Decision {
    pub(crate) outcome: Result<(), RedisNegative>,
    pub(crate) source: Source,
    pub(crate) redis_time: Option<Duration>,
}

impl Decision {
    /// Whether the request was admitted.
    pub fn is_admitted(&self) -> bool {
        self.outcome.is_ok()
    }

    /// Who decided.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Redis's clock (since the Unix epoch) when the script decided; `None`
    /// for every other source.
    pub fn redis_time(&self) -> Option<Duration> {
        self.redis_time
    }

    /// The answer, borrowed.
    ///
    /// # Errors
    ///
    /// The [`RedisNegative`] that refused the request.
    pub fn as_result(&self) -> Result<(), &RedisNegative> {
        self.outcome.as_ref().map(|&()| ())
    }

    /// The answer: what [`check_n`](crate::RedisRateLimiter::check_n)
    /// returns.
    ///
    /// # Errors
    ///
    /// The [`RedisNegative`] that refused the request.
    pub fn into_result(self) -> Result<(), RedisNegative> {
        self.outcome
    }
}

/// Counts of how a limiter's checks were decided, since it was built.
///
/// Read with [`RedisRateLimiter::stats`](crate::RedisRateLimiter::stats);
/// each field is read on its own (the set is not one snapshot).
///
/// # Examples
///
/// ```
/// use acqrel_ratelimit_redis::Stats;
///
/// let stats = Stats::default();
/// assert_eq!(stats.round_trips, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Commands handed to the connection for Redis (a script run, or its
    /// reload after `NOSCRIPT`), counted before they are sent: a call made
    /// while Redis is down or the connection is being re-established
    /// counts one, sent or not (it is also counted in
    /// [`unavailable`](Self::unavailable)).
    pub round_trips: u64,
    /// Checks and refunds the script answered.
    pub redis: u64,
    /// Checks the deny cache answered.
    pub deny_cache: u64,
    /// Calls Redis did not answer (errors and timeouts), whatever the
    /// policy did then.
    pub unavailable: u64,
    /// Admissions made by [`FailurePolicy::FailOpen`].
    pub fail_open: u64,
    /// Checks decided by the [`FailurePolicy::FailLocal`] limiter.
    pub fail_local: u64,
    /// Times the script was sent whole after a `NOSCRIPT` (a restarted or
    /// flushed server).
    pub script_loads: u64,
    /// Times the connection was replaced after calls in a row failed or
    /// timed out (see [`RedisRateLimiterBuilder::connect_timeout`](crate::RedisRateLimiterBuilder::connect_timeout)).
    pub renewals: u64,
}

/// The live counters behind [`Stats`].
///
/// Relaxed throughout: statistics, which publish nothing and order nothing.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) round_trips: AtomicU64,
    pub(crate) redis: AtomicU64,
    pub(crate) deny_cache: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) fail_open: AtomicU64,
    pub(crate) fail_local: AtomicU64,
    pub(crate) script_loads: AtomicU64,
    pub(crate) renewals: AtomicU64,
}

impl Counters {
    /// Adds one to `counter` (Relaxed: a statistic).
    #[inline]
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn read(&self) -> Stats {
        // Relaxed: a statistic; no pair (each counter read on its own).
        let read = |counter: &AtomicU64| counter.load(Relaxed);
        Stats {
            round_trips: read(&self.round_trips),
            redis: read(&self.redis),
            deny_cache: read(&self.deny_cache),
            unavailable: read(&self.unavailable),
            fail_open: read(&self.fail_open),
            fail_local: read(&self.fail_local),
            script_loads: read(&self.script_loads),
            renewals: read(&self.renewals),
        }
    }
}
