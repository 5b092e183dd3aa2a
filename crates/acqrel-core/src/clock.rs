//! Injected time: the [`Clock`] trait and the real, monotonic clock.
//!
//! Code that needs "now" (rate limiters, cache TTLs, debouncers) takes a
//! `Clock` instead of calling `Instant::now()`, so tests drive time with a
//! [`ManualClock`](crate::ManualClock) and never sleep.

use std::fmt;
use std::time::{Duration, Instant};

#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::sys_clock;

/// A source of time, measured as the [`Duration`] since the clock's own
/// epoch (the moment it was created, for [`MonotonicClock`]).
///
/// Implementations used in production must never go backwards;
/// [`ManualClock`](crate::ManualClock) can, on purpose, so tests can check
/// how consumers react. Consumers should treat a smaller reading as "no time
/// has passed".
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use acqrel_core::{Clock, ManualClock};
///
/// fn expired(clock: &impl Clock, deadline: Duration) -> bool {
///     clock.now() >= deadline
/// }
///
/// let clock = ManualClock::new();
/// assert!(!expired(&clock, Duration::from_secs(1)));
/// clock.advance(Duration::from_secs(1));
/// assert!(expired(&clock, Duration::from_secs(1)));
/// ```
pub trait Clock: Send + Sync {
    /// Time since this clock's epoch.
    fn now(&self) -> Duration;

    /// [`now`](Clock::now) in whole nanoseconds, saturating at `u64::MAX`
    /// (about 584 years), the form packed atomic state wants.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_core::{Clock, ManualClock};
    /// let clock = ManualClock::starting_at(Duration::from_micros(3));
    /// assert_eq!(clock.now_nanos(), 3_000);
    /// ```
    fn now_nanos(&self) -> u64 {
        saturating_nanos(self.now())
    }
}

/// Converts a duration to whole nanoseconds, saturating at `u64::MAX`.
#[inline]
pub(crate) fn saturating_nanos(d: Duration) -> u64 {
    // Seconds and the fraction separately: two u64 operations, where
    // `as_nanos` multiplies in u128.
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now(&self) -> Duration {
        (**self).now()
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    #[inline]
    fn now(&self) -> Duration {
        (**self).now()
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    #[inline]
    fn now(&self) -> Duration {
        (**self).now()
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

/// The real clock: [`Instant`] elapsed since the clock was created. Never
/// goes backwards.
///
/// Replaces direct `time.Now()` / `Instant::now()` calls in code that should
/// be testable with a [`ManualClock`](crate::ManualClock).
///
/// # Examples
///
/// ```
/// use acqrel_core::{Clock, MonotonicClock};
/// let clock = MonotonicClock::new();
/// let a = clock.now();
/// let b = clock.now();
/// assert!(b >= a);
/// ```
#[derive(Clone, Copy)]
pub struct MonotonicClock {
    epoch: Instant,
    /// On Linux, `epoch` as a `CLOCK_MONOTONIC` reading in ns (the clock
    /// `Instant` reads there), taken just after it: readings subtract this
    /// from a direct `clock_gettime`, 4 ns a reading less than
    /// `Instant::elapsed` (`benches/benches/ratelimit.rs`, `clock_now`).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    epoch_ns: u64,
}

impl MonotonicClock {
    /// Creates a clock whose epoch is now.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = acqrel_core::MonotonicClock::new();
    /// # let _ = clock;
    /// ```
    pub fn new() -> Self {
        let epoch = Instant::now();
        MonotonicClock {
            epoch,
            // Taken after `epoch`, so `epoch() + now()` never passes the
            // `Instant` of a later reading. `Instant::now` has just read
            // this clock (it panics if the kernel refuses it), so `None`
            // cannot happen; the fallback keeps readings meaningful anyway.
            #[cfg(any(target_os = "linux", target_os = "android"))]
            epoch_ns: sys_clock::read(sys_clock::MONOTONIC).unwrap_or(0),
        }
    }

    /// The [`Instant`] this clock counts from.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_core::{Clock, MonotonicClock};
    /// let clock = MonotonicClock::new();
    /// assert!(clock.epoch() + clock.now() <= std::time::Instant::now());
    /// ```
    pub fn epoch(&self) -> Instant {
        self.epoch
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Duration {
        // One source for both readings, so they never disagree.
        Duration::from_nanos(self.now_nanos())
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(now) = sys_clock::read(sys_clock::MONOTONIC) {
            return now.saturating_sub(self.epoch_ns);
        }
        saturating_nanos(self.epoch.elapsed())
    }
}

impl fmt::Debug for MonotonicClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonotonicClock")
            .field("elapsed", &self.now())
            .finish()
    }
}
