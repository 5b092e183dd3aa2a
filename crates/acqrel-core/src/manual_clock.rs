//! A clock that moves only when told to, for tests.
//!
//! # Orderings
//!
//! `advance` and `set` write with Release and `now` reads with Acquire, so a
//! thread that observes a new time also observes what the test did before
//! moving the clock (e.g. the state it prepared for that instant).

use std::fmt;
use std::time::Duration;

use crate::clock::{Clock, saturating_nanos};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::const_fn;

/// A [`Clock`] that stands still until [`advance`](ManualClock::advance) or
/// [`set`](ManualClock::set) moves it. Share it with the code under test by
/// reference or in an `Arc` (both implement [`Clock`]).
///
/// Replaces `time.Sleep` in tests: instead of waiting for a TTL to pass, the
/// test advances the clock past it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use acqrel_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(clock.now(), Duration::from_millis(250));
/// clock.set(Duration::from_millis(100)); // may go backwards, on purpose
/// assert_eq!(clock.now(), Duration::from_millis(100));
/// ```
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    const_fn! {
        /// Creates a clock reading zero.
        ///
        /// # Examples
        ///
        /// ```
        /// use acqrel_core::{Clock, ManualClock};
        /// assert_eq!(ManualClock::new().now_nanos(), 0);
        /// ```
        pub fn new() -> ManualClock {
            ManualClock {
                nanos: AtomicU64::new(0),
            }
        }
    }

    /// Creates a clock reading `start` (saturating at `u64::MAX`
    /// nanoseconds).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_core::{Clock, ManualClock};
    /// assert_eq!(ManualClock::starting_at(Duration::from_secs(5)).now(), Duration::from_secs(5));
    /// ```
    pub fn starting_at(start: Duration) -> Self {
        ManualClock {
            nanos: AtomicU64::new(saturating_nanos(start)),
        }
    }

    /// Moves the clock forward by `by`, saturating at `u64::MAX` nanoseconds;
    /// returns the new reading.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = acqrel_core::ManualClock::new();
    /// assert_eq!(clock.advance(Duration::from_secs(1)), Duration::from_secs(1));
    /// ```
    pub fn advance(&self, by: Duration) -> Duration {
        let by = saturating_nanos(by);
        // Release: pairs with the Acquire load in `now`. Relaxed on failure:
        // the retry loads again. The closure never fails.
        let previous = self
            .nanos
            .fetch_update(Ordering::Release, Ordering::Relaxed, |n| {
                Some(n.saturating_add(by))
            })
            .unwrap_or_else(|n| n);
        Duration::from_nanos(previous.saturating_add(by))
    }

    /// Sets the reading to `to` (forwards or backwards).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_core::{Clock, ManualClock};
    /// let clock = ManualClock::new();
    /// clock.set(Duration::from_secs(9));
    /// assert_eq!(clock.now(), Duration::from_secs(9));
    /// ```
    pub fn set(&self, to: Duration) {
        // Release: pairs with the Acquire load in `now`.
        self.nanos.store(saturating_nanos(to), Ordering::Release);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        // Acquire: pairs with the Release writes in `advance` and `set`.
        self.nanos.load(Ordering::Acquire)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    #[test]
    fn advance_saturates_instead_of_wrapping() {
        let clock = ManualClock::starting_at(Duration::from_nanos(u64::MAX - 1));
        assert_eq!(
            clock.advance(Duration::from_secs(1)),
            Duration::from_nanos(u64::MAX)
        );
        assert_eq!(clock.now_nanos(), u64::MAX);
        assert_eq!(
            ManualClock::starting_at(Duration::MAX).now_nanos(),
            u64::MAX
        );
    }
}
