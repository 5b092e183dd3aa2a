//! [`CoarseClock`]: a monotonic clock that trades resolution for the cost of
//! a reading.

use std::fmt;
use std::time::{Duration, Instant};

use crate::clock::{Clock, saturating_nanos};
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::sys_clock;

/// A monotonic clock read from the kernel's timer tick: a quarter of the
/// cost of [`MonotonicClock`](crate::MonotonicClock), at a resolution of one
/// tick (1–10 ms, see [`resolution`](Self::resolution)).
///
/// On Linux and Android it reads `CLOCK_MONOTONIC_COARSE`: the time of the
/// kernel's last tick, kept in memory shared with every process (the vDSO),
/// so a reading is a few loads and no system call and no timestamp-counter
/// read (about 4 ns against 18–23 ns for `Instant::now` on the x86-64
/// development machine; see `benches/benches/ratelimit.rs`, group
/// `ratelimit/clock_now`). It is the same time line as `CLOCK_MONOTONIC`,
/// behind it by at most one tick, and like it never goes backwards, on any
/// core: every core reads the one value the kernel last wrote. Elsewhere it
/// falls back to [`Instant`] (full resolution, full cost), and so does a
/// kernel that refuses the coarse clock when the clock is made.
///
/// Use it where a reading per call is the cost that matters and an error of
/// one tick does not: a rate limiter's hot path (a tick of 4 ms at 1,000
/// cells per second moves admissions in clumps of up to 4, the long-run rate
/// unchanged), expiry of entries that live for seconds. Do not use it to
/// time anything shorter than a few ticks.
///
/// Replaces `time.Now()` on a hot path, where Go's runtime answers from its
/// own cached nanotime; it publishes nothing, so it has no release or
/// acquire.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use acqrel_core::{Clock, CoarseClock};
///
/// let clock = CoarseClock::new();
/// let a = clock.now();
/// let b = clock.now();
/// assert!(b >= a);
/// assert!(clock.resolution() <= Duration::from_millis(100));
/// ```
#[derive(Clone, Copy)]
pub struct CoarseClock {
    source: Source,
}

/// Where a [`CoarseClock`] reads the time from.
#[derive(Clone, Copy)]
enum Source {
    /// `CLOCK_MONOTONIC_COARSE`, counted from this reading in ns.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Coarse { epoch: u64 },
    /// No coarse clock here: `Instant`, counted from this one.
    Precise { epoch: Instant },
}

impl CoarseClock {
    /// Creates a clock whose epoch is now.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = acqrel_core::CoarseClock::new();
    /// # let _ = clock;
    /// ```
    pub fn new() -> Self {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(epoch) = sys_clock::read(sys_clock::COARSE) {
            return CoarseClock {
                source: Source::Coarse { epoch },
            };
        }
        CoarseClock {
            source: Source::Precise {
                epoch: Instant::now(),
            },
        }
    }

    /// How far apart two distinct readings are at least: the kernel's tick
    /// for the coarse clock, one nanosecond for the fallback.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = acqrel_core::CoarseClock::new();
    /// assert!(!clock.resolution().is_zero());
    /// ```
    pub fn resolution(&self) -> Duration {
        match self.source {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Source::Coarse { .. } => {
                sys_clock::resolution(sys_clock::COARSE).unwrap_or(Duration::from_nanos(1))
            }
            Source::Precise { .. } => Duration::from_nanos(1),
        }
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        match self.source {
            // The coarse clock answered once, at `new`, so it answers again:
            // a kernel does not lose a clock. Were it to fail, the reading
            // stays at the epoch (time stands still: a rate limiter on it
            // denies rather than admits).
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Source::Coarse { epoch } => sys_clock::read(sys_clock::COARSE)
                .unwrap_or(epoch)
                .saturating_sub(epoch),
            Source::Precise { epoch } => saturating_nanos(epoch.elapsed()),
        }
    }
}

impl fmt::Debug for CoarseClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoarseClock")
            .field("elapsed", &self.now())
            .field("resolution", &self.resolution())
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use crate::MonotonicClock;

    #[test]
    fn readings_never_go_backwards() {
        let clock = CoarseClock::new();
        let mut last = clock.now_nanos();
        for _ in 0..10_000 {
            let next = clock.now_nanos();
            assert!(next >= last, "{next} < {last}");
            last = next;
        }
    }

    #[test]
    fn readings_advance() {
        // A liveness check, not a timing one: the coarse clock moves within
        // a bound thousands of ticks long (its lag behind the precise clock
        // is not asserted; a stalled virtual machine can stretch it).
        let coarse = CoarseClock::new();
        let precise = MonotonicClock::new();
        let first = coarse.now_nanos();
        while coarse.now_nanos() == first {
            assert!(
                precise.now() < Duration::from_secs(10),
                "the coarse clock stood still"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_resolution_is_a_tick_at_most_a_tenth_of_a_second() {
        let resolution = CoarseClock::new().resolution();
        assert!(!resolution.is_zero());
        assert!(resolution <= Duration::from_millis(100), "{resolution:?}");
    }
}
