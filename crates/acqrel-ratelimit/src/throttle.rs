//! [`Throttle`] and [`throttled!`](crate::throttled): let one call through
//! per interval and count the rest.
//!
//! # Orderings
//!
//! Nothing is published: the throttle hands out permission, not data. The
//! one allowed call per interval is decided by a compare-and-swap on `next`
//! (a CAS is atomic whatever its ordering), and the suppressed count is a
//! statistic kept exact by read-modify-writes alone: every denied call adds
//! one, every allowed call takes the whole count with a swap, so each
//! denial is reported by exactly one allowed call (or is still pending).
//! All operations are therefore Relaxed. `tests/loom_throttle.rs` checks
//! that two racing calls on a stopped clock let exactly one through and
//! lose no count.

use std::fmt;
use std::time::Duration;

use acqrel_core::{Clock, MonotonicClock};

use crate::sync::atomic::{AtomicU64, Ordering};

/// The value of `next` once an interval runs past the clock's largest
/// reading (`u64::MAX` ns, 584 years, or an interval near `Duration::MAX`):
/// no call goes through any more.
const NEVER: u64 = u64::MAX;

/// Lets one call through per interval and counts the calls it suppressed:
/// the guide's log throttle, lock-free.
///
/// Replaces Go's "log the first error, then at most once a second, with how
/// many were dropped" idiom built on an `atomic.Int64` timestamp. The
/// count is exact: each suppressed call is reported by exactly one later
/// allowed call.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use acqrel_core::ManualClock;
/// use acqrel_ratelimit::Throttle;
///
/// let clock = ManualClock::new();
/// let throttle = Throttle::with_clock(Duration::from_secs(1), &clock);
/// assert_eq!(throttle.allow(), Some(0)); // the first call goes through
/// assert_eq!(throttle.allow(), None);
/// assert_eq!(throttle.allow(), None);
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(throttle.allow(), Some(2)); // and reports the two it held back
/// ```
pub struct Throttle<C = MonotonicClock> {
    interval_ns: u64,
    /// Clock reading from which the next call is allowed.
    next: AtomicU64,
    /// Calls suppressed since the last allowed one.
    suppressed: AtomicU64,
    clock: C,
}

impl Throttle {
    /// A throttle allowing one call per `interval`, on a [`MonotonicClock`]
    /// started now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::LazyLock;
    /// use std::time::Duration;
    /// use acqrel_ratelimit::Throttle;
    ///
    /// static DISK_FULL: LazyLock<Throttle> = LazyLock::new(|| Throttle::new(Duration::from_secs(10)));
    /// assert_eq!(DISK_FULL.allow(), Some(0));
    /// assert_eq!(DISK_FULL.allow(), None);
    /// ```
    pub fn new(interval: Duration) -> Self {
        Throttle::with_clock(interval, MonotonicClock::new())
    }
}

impl<C: Clock> Throttle<C> {
    /// A throttle allowing one call per `interval` on `clock`. A zero
    /// interval allows every call.
    ///
    /// # Examples
    ///
    /// See [`Throttle`].
    pub fn with_clock(interval: Duration, clock: C) -> Self {
        Throttle {
            interval_ns: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
            next: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            clock,
        }
    }

    /// `Some(suppressed)` if this call may go through (at most once per
    /// interval), with the number of calls suppressed since the last one
    /// that went through; `None` otherwise.
    ///
    /// # Examples
    ///
    /// See [`Throttle`].
    #[inline]
    pub fn allow(&self) -> Option<u64> {
        let now = self.clock.now_nanos();
        // Relaxed: see the module's `# Orderings`; the CAS decides.
        let next = self.next.load(Ordering::Relaxed);
        let until = now.saturating_add(self.interval_ns);
        // `NEVER` is not a reading to wait for: an interval that ran past
        // the largest reading ends only with the throttle.
        if now >= next
            && next != NEVER
            // Relaxed: the CAS's atomicity alone lets one call per interval
            // through; nothing is published (module `# Orderings`).
            && self
                .next
                .compare_exchange(next, until, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // Relaxed: a statistic; the swap takes every count added so far.
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        // Relaxed: a statistic; reported by the next allowed call's swap.
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Calls suppressed since the last one that went through, not yet
    /// reported.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_core::ManualClock;
    /// use acqrel_ratelimit::Throttle;
    /// let throttle = Throttle::with_clock(Duration::from_secs(1), ManualClock::new());
    /// throttle.allow();
    /// throttle.allow();
    /// assert_eq!(throttle.pending(), 1);
    /// ```
    pub fn pending(&self) -> u64 {
        // Relaxed: a statistic.
        self.suppressed.load(Ordering::Relaxed)
    }
}

impl<C> fmt::Debug for Throttle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("interval", &Duration::from_nanos(self.interval_ns))
            // Relaxed: diagnostics.
            .field("pending", &self.suppressed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Logs through `tracing` at most once per interval of a [`Throttle`], with
/// the number of suppressed calls as the `suppressed` field.
///
/// `throttled!(throttle, level, ...)`: `level` is a `tracing` macro name
/// (`error`, `warn`, `info`, `debug`, `trace`), and the rest is what that
/// macro takes. The arguments are evaluated only when the call goes through.
///
/// # Examples
///
/// ```
/// use std::sync::LazyLock;
/// use std::time::Duration;
/// use acqrel_ratelimit::{Throttle, throttled};
///
/// static UPSTREAM_DOWN: LazyLock<Throttle> = LazyLock::new(|| Throttle::new(Duration::from_secs(5)));
///
/// for attempt in 0..1000 {
///     // Logged once (the first time), not a thousand times.
///     throttled!(UPSTREAM_DOWN, warn, attempt, "upstream unreachable");
/// }
/// assert_eq!(UPSTREAM_DOWN.pending(), 999);
/// ```
#[macro_export]
macro_rules! throttled {
    ($throttle:expr, $level:ident, $($arg:tt)+) => {
        if let ::core::option::Option::Some(suppressed) = $throttle.allow() {
            $crate::__private::tracing::$level!(suppressed, $($arg)+);
        }
    };
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use acqrel_core::ManualClock;

    #[test]
    fn zero_interval_allows_every_call() {
        let throttle = Throttle::with_clock(Duration::ZERO, ManualClock::new());
        for _ in 0..3 {
            assert_eq!(throttle.allow(), Some(0));
        }
    }

    #[test]
    fn the_interval_counts_from_the_allowed_call() {
        let clock = ManualClock::new();
        let throttle = Throttle::with_clock(Duration::from_secs(1), &clock);
        clock.advance(Duration::from_millis(300));
        assert_eq!(throttle.allow(), Some(0));
        clock.advance(Duration::from_millis(999));
        assert_eq!(throttle.allow(), None);
        clock.advance(Duration::from_millis(1));
        assert_eq!(throttle.allow(), Some(1));
    }
}
