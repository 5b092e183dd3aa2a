//! [`Quota`]: a rate and a burst, impossible values unrepresentable.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::gcra::{Params, TIME_MAX};

/// How many cells a limiter grants: one cell every
/// [`replenish_interval`](Quota::replenish_interval), and at most
/// [`burst_size`](Quota::burst_size) at once after an idle period.
///
/// Built from non-zero numbers, so a quota that admits nothing cannot be
/// expressed. Intervals are kept in whole nanoseconds: the fastest rate is
/// one cell per nanosecond (`per_second` above 10⁹ is capped there), and
/// `per_second(3)` replenishes every 333 333 333 ns.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use acqrel_ratelimit::Quota;
///
/// let quota = Quota::per_second(NonZeroU32::new(10).unwrap())
///     .allow_burst(NonZeroU32::new(3).unwrap());
/// assert_eq!(quota.replenish_interval(), Duration::from_millis(100));
/// assert_eq!(quota.burst_size().get(), 3);
///
/// assert!(Quota::with_period(Duration::ZERO).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Nanoseconds per cell, at least 1 and at most `TIME_MAX`.
    interval_ns: u64,
    burst: NonZeroU32,
}

impl Quota {
    /// `rate` cells per second, with a burst of `rate`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// let quota = acqrel_ratelimit::Quota::per_second(NonZeroU32::new(4).unwrap());
    /// assert_eq!(quota.replenish_interval().as_millis(), 250);
    /// assert_eq!(quota.burst_size().get(), 4);
    /// ```
    pub const fn per_second(rate: NonZeroU32) -> Quota {
        Quota::per(1_000_000_000, rate)
    }

    /// `rate` cells per minute, with a burst of `rate`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// let quota = acqrel_ratelimit::Quota::per_minute(NonZeroU32::new(6).unwrap());
    /// assert_eq!(quota.replenish_interval().as_secs(), 10);
    /// ```
    pub const fn per_minute(rate: NonZeroU32) -> Quota {
        Quota::per(60_000_000_000, rate)
    }

    /// `rate` cells per hour, with a burst of `rate`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// let quota = acqrel_ratelimit::Quota::per_hour(NonZeroU32::new(60).unwrap());
    /// assert_eq!(quota.replenish_interval().as_secs(), 60);
    /// ```
    pub const fn per_hour(rate: NonZeroU32) -> Quota {
        Quota::per(3_600_000_000_000, rate)
    }

    const fn per(window_ns: u64, rate: NonZeroU32) -> Quota {
        let interval_ns = window_ns / rate.get() as u64;
        Quota {
            interval_ns: if interval_ns == 0 { 1 } else { interval_ns },
            burst: rate,
        }
    }

    /// One cell every `period`, with a burst of one; `None` if `period` is
    /// zero (no rate) or longer than 2⁶⁰ ns (about 36 years: the longest
    /// interval the limiter counts). Any burst then follows GCRA, even a
    /// burst tolerance of centuries (see `docs/patterns/rate-limit.md` for
    /// the unit the largest tolerances are counted in).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_ratelimit::Quota;
    /// let quota = Quota::with_period(Duration::from_millis(20)).unwrap();
    /// assert_eq!(quota.burst_size().get(), 1);
    /// assert!(Quota::with_period(Duration::from_secs(u64::MAX)).is_none());
    /// ```
    pub fn with_period(period: Duration) -> Option<Quota> {
        let interval_ns = u64::try_from(period.as_nanos()).ok()?;
        (1..=TIME_MAX).contains(&interval_ns).then_some(Quota {
            interval_ns,
            burst: NonZeroU32::MIN,
        })
    }

    /// The same rate with a burst of `burst` cells.
    ///
    /// # Examples
    ///
    /// See [`Quota`].
    #[must_use]
    pub const fn allow_burst(self, burst: NonZeroU32) -> Quota {
        Quota { burst, ..self }
    }

    /// The time it takes to replenish one cell.
    ///
    /// # Examples
    ///
    /// See [`Quota`].
    pub const fn replenish_interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }

    /// The most cells granted at once.
    ///
    /// # Examples
    ///
    /// See [`Quota`].
    pub const fn burst_size(&self) -> NonZeroU32 {
        self.burst
    }

    /// The GCRA parameters of this quota.
    pub(crate) fn params(&self) -> Params {
        Params::new(self.interval_ns, self.burst.get())
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("replenish_interval", &self.replenish_interval())
            .field("burst", &self.burst)
            .finish()
    }
}
