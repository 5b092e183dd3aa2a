//! Negative outcomes of the limiters.

use std::time::Duration;

/// A denied request: when it would have been allowed.
///
/// Times are readings of the limiter's [`Clock`](acqrel_core::Clock).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use acqrel_core::ManualClock;
/// use acqrel_ratelimit::{Quota, RateLimiter};
///
/// let quota = Quota::per_second(NonZeroU32::new(10).unwrap()).allow_burst(NonZeroU32::MIN);
/// let limiter = RateLimiter::with_clock(quota, ManualClock::new());
/// assert!(limiter.check().is_ok());
/// let denied = limiter.check().unwrap_err();
/// assert_eq!(denied.earliest_possible(), Duration::from_millis(100));
/// assert_eq!(denied.wait_time(), Duration::from_millis(100));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rate limited: allowed again in {:?}", self.wait_time())]
pub struct NotUntil {
    /// Clock readings in ns, turned into `Duration`s only when asked for:
    /// a denial the caller drops costs no conversion.
    earliest_ns: u64,
    at_ns: u64,
}

impl NotUntil {
    #[inline]
    pub(crate) fn from_nanos(earliest_ns: u64, at_ns: u64) -> Self {
        NotUntil { earliest_ns, at_ns }
    }

    /// A denial made at the clock reading `now`, allowed again from
    /// `earliest_possible`: for limiters outside this crate that give the
    /// same answers (`acqrel-ratelimit-redis`, whose readings are the Redis
    /// server's clock). Readings past `u64::MAX` nanoseconds (584 years)
    /// saturate there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_ratelimit::NotUntil;
    ///
    /// let denied = NotUntil::new(Duration::from_secs(5), Duration::from_secs(3));
    /// assert_eq!(denied.earliest_possible(), Duration::from_secs(5));
    /// assert_eq!(denied.wait_time(), Duration::from_secs(2));
    /// ```
    pub fn new(earliest_possible: Duration, now: Duration) -> Self {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        NotUntil::from_nanos(nanos(earliest_possible), nanos(now))
    }

    /// The clock reading from which the request would be allowed (if nothing
    /// else is admitted meanwhile).
    ///
    /// A limiter that has run out of time to count (never in its first 18
    /// years) fails closed and names `u64::MAX` nanoseconds (584 years):
    /// never. So does a wait longer than that (all of a burst of
    /// `u32::MAX` cells of a year each).
    ///
    /// # Examples
    ///
    /// See [`NotUntil`].
    pub fn earliest_possible(&self) -> Duration {
        Duration::from_nanos(self.earliest_ns)
    }

    /// How long after the check the request would be allowed.
    ///
    /// # Examples
    ///
    /// See [`NotUntil`].
    pub fn wait_time(&self) -> Duration {
        Duration::from_nanos(self.earliest_ns.saturating_sub(self.at_ns))
    }

    /// How long after the clock reading `now` the request would be allowed
    /// (zero if `now` is past it).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::num::NonZeroU32;
    /// # use std::time::Duration;
    /// # use acqrel_core::ManualClock;
    /// # use acqrel_ratelimit::{Quota, RateLimiter};
    /// # let quota = Quota::per_second(NonZeroU32::new(10).unwrap()).allow_burst(NonZeroU32::MIN);
    /// # let limiter = RateLimiter::with_clock(quota, ManualClock::new());
    /// # limiter.check().unwrap();
    /// let denied = limiter.check().unwrap_err();
    /// assert_eq!(denied.wait_time_from(Duration::from_millis(40)), Duration::from_millis(60));
    /// ```
    pub fn wait_time_from(&self, now: Duration) -> Duration {
        self.earliest_possible().saturating_sub(now)
    }
}

/// Why [`RateLimiter::check_n`](crate::RateLimiter::check_n) denied `n`
/// cells.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use acqrel_ratelimit::{NegativeOutcome, Quota, RateLimiter};
/// let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap()));
/// assert_eq!(limiter.check_n(6), Err(NegativeOutcome::InsufficientCapacity { burst: 5 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegativeOutcome {
    /// Not now; allowed at the time given.
    #[error(transparent)]
    NotUntil(#[from] NotUntil),
    /// More cells than the burst: never allowed under the current quota.
    #[error("more cells asked for at once than the burst of {burst}")]
    InsufficientCapacity {
        /// The quota's burst.
        burst: u32,
    },
}

/// [`RateLimiter::until_n_ready`](crate::RateLimiter::until_n_ready) was
/// asked for more cells than the burst: waiting would never end.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use acqrel_ratelimit::{InsufficientCapacity, Quota, RateLimiter};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap()));
/// assert_eq!(limiter.until_n_ready(6).await, Err(InsufficientCapacity { burst: 5 }));
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("more cells asked for at once than the burst of {burst}")]
pub struct InsufficientCapacity {
    /// The quota's burst.
    pub burst: u32,
}

/// Why [`KeyedRateLimiter::check`](crate::KeyedRateLimiter::check) or
/// [`check_n`](crate::KeyedRateLimiter::check_n) denied a request.
///
/// # Examples
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use std::time::Duration;
/// use acqrel_core::ManualClock;
/// use acqrel_ratelimit::{KeyedNegative, KeyedRateLimiter, Quota};
///
/// let limiter = KeyedRateLimiter::<u32, _>::builder(Quota::per_second(NonZeroU32::new(2).unwrap()))
///     .max_keys(NonZeroUsize::MIN)
///     .clock(ManualClock::new())
///     .build();
/// assert_eq!(limiter.check_n(&1, 3), Err(KeyedNegative::InsufficientCapacity { burst: 2 }));
/// limiter.check_n(&1, 2).unwrap();
/// let denied = limiter.check(&1).unwrap_err();
/// assert_eq!(denied.not_until().unwrap().wait_time(), Duration::from_millis(500));
/// assert_eq!(limiter.check(&2), Err(KeyedNegative::TooManyKeys { max_keys: 1 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyedNegative {
    /// Not now; allowed at the time given.
    #[error(transparent)]
    NotUntil(#[from] NotUntil),
    /// More cells than the burst: never allowed.
    #[error("more cells asked for at once than the burst of {burst}")]
    InsufficientCapacity {
        /// The quota's burst.
        burst: u32,
    },
    /// The key is new and the limiter already holds its maximum of buckets
    /// (none of them idle, under
    /// [`CapPolicy::EvictIdleThenDeny`](crate::CapPolicy::EvictIdleThenDeny)).
    /// Keys already held are unaffected.
    #[error("a new key refused: the limiter holds its maximum of {max_keys} keys")]
    TooManyKeys {
        /// The limiter's `max_keys`.
        max_keys: usize,
    },
}

impl KeyedNegative {
    /// The [`NotUntil`] of a denial that waiting fixes; `None` for the
    /// others.
    ///
    /// # Examples
    ///
    /// See [`KeyedNegative`].
    pub fn not_until(&self) -> Option<NotUntil> {
        match self {
            KeyedNegative::NotUntil(not_until) => Some(*not_until),
            _ => None,
        }
    }
}
