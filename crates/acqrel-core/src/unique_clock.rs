//! Strictly increasing timestamps (the guide's L.3 monotonic clock).
//!
//! # Orderings
//!
//! Every reading is one read-modify-write of `last`. Read-modify-writes of
//! one atomic are totally ordered (its modification order) whatever their
//! memory ordering, and each one reads the value written by the previous one,
//! so `max(source, last + 1)` yields distinct, increasing values in that
//! order, and a reading that happens-before another is smaller (coherence).
//! The timestamp publishes no other data, so the update is Relaxed.

use std::fmt;
use std::time::Duration;

use crate::clock::{Clock, MonotonicClock};
use crate::sync::atomic::{AtomicU64, Ordering};

/// A [`Clock`] whose readings are strictly increasing, in nanoseconds, even
/// for concurrent callers and even when the source clock stalls or jitters
/// backwards: a reading that would not exceed the last one becomes the last
/// one plus one nanosecond.
///
/// Replaces the Go idiom of a CAS loop over `time.Now().UnixNano()` used to
/// hand out unique, ordered timestamps (event ids, version stamps).
///
/// # Examples
///
/// ```
/// use acqrel_core::{Clock, ManualClock, UniqueClock};
///
/// let clock = UniqueClock::with_source(ManualClock::new());
/// let a = clock.now_nanos();
/// let b = clock.now_nanos(); // the source did not move
/// assert!(b > a);
/// ```
pub struct UniqueClock<C = MonotonicClock> {
    source: C,
    last: AtomicU64,
}

impl UniqueClock {
    /// A unique clock over a new [`MonotonicClock`].
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_core::{Clock, UniqueClock};
    /// let clock = UniqueClock::new();
    /// assert!(clock.now() < clock.now());
    /// ```
    pub fn new() -> Self {
        Self::with_source(MonotonicClock::new())
    }
}

impl Default for UniqueClock {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> UniqueClock<C> {
    /// A unique clock over `source`.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_core::{ManualClock, UniqueClock};
    /// let clock = UniqueClock::with_source(ManualClock::new());
    /// # let _ = clock;
    /// ```
    pub fn with_source(source: C) -> Self {
        UniqueClock {
            source,
            last: AtomicU64::new(0),
        }
    }

    /// The source clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_core::{Clock, ManualClock, UniqueClock};
    /// let clock = UniqueClock::with_source(ManualClock::new());
    /// clock.source().advance(Duration::from_secs(1));
    /// assert!(clock.now() >= Duration::from_secs(1));
    /// ```
    pub fn source(&self) -> &C {
        &self.source
    }
}

impl<C: Clock> Clock for UniqueClock<C> {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    /// # Panics
    ///
    /// Panics once the readings reach `u64::MAX` nanoseconds (about 584
    /// years past the source's epoch), where no larger reading exists.
    fn now_nanos(&self) -> u64 {
        let source = self.source.now_nanos();
        // Relaxed (success and failure): uniqueness and order come from the
        // modification order of `last` alone; no other data is published.
        // See the module's `# Orderings`.
        let previous = self
            .last
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(source.max(last.checked_add(1)?))
            })
            .unwrap_or_else(|_| panic!("UniqueClock readings exhausted u64 nanoseconds"));
        source.max(previous + 1)
    }
}

impl<C: fmt::Debug> fmt::Debug for UniqueClock<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniqueClock")
            .field("source", &self.source)
            // Relaxed: a diagnostic snapshot; nothing is read through it.
            .field("last", &self.last.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn backwards_source_still_yields_increasing_readings() {
        let clock = UniqueClock::with_source(ManualClock::starting_at(Duration::from_nanos(100)));
        assert_eq!(clock.now_nanos(), 100);
        clock.source().set(Duration::from_nanos(50));
        assert_eq!(clock.now_nanos(), 101);
        clock.source().set(Duration::from_nanos(500));
        assert_eq!(clock.now_nanos(), 500);
    }

    #[test]
    #[should_panic(expected = "exhausted")]
    fn exhausted_readings_panic_instead_of_repeating() {
        let clock = UniqueClock::with_source(ManualClock::starting_at(Duration::MAX));
        assert_eq!(clock.now_nanos(), u64::MAX);
        clock.now_nanos();
    }
}
