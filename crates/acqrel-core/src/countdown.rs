//! A countdown latch (the guide's F.3, with its argument honoured and its
//! underflow caught).
//!
//! # Orderings
//!
//! `count_down` decrements with a Release compare-exchange; `count` and every
//! wait load with Acquire. Read-modify-writes extend a release sequence, so
//! a waiter that reads zero synchronizes with *every* `count_down`, not only
//! the last: all the work published before each of them is visible. The
//! decrement that reaches zero is unique (a compare-exchange from 1 to 0
//! succeeds once), and only that call notifies.

use std::fmt;
use std::time::Duration;

use crate::notify::Notifier;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::const_fn;

/// The error returned by [`Countdown::count_down`] when the count is
/// already zero. Nothing is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("countdown is already at zero")]
pub struct CountdownError;

/// Waits for `n` events: a one-shot, underflow-checked fan-in latch.
///
/// Replaces Go's `sync.WaitGroup` used as a one-shot fan-in and the guide's
/// countdown (a counter plus a channel closed at zero). The **release** is
/// each [`count_down`]; the **acquire** is [`count`] returning 0 or any wait
/// returning. Counting below zero returns [`CountdownError`] and leaves the
/// count at zero; it never wraps.
///
/// [`count_down`]: Countdown::count_down
/// [`count`]: Countdown::count
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use acqrel_core::Countdown;
///
/// let done = Arc::new(Countdown::new(3));
/// for _ in 0..3 {
///     let done = done.clone();
///     std::thread::spawn(move || {
///         // ... do one share of the work ...
///         done.count_down().unwrap();
///     });
/// }
/// done.wait();
/// assert_eq!(done.count(), 0);
/// ```
pub struct Countdown {
    remaining: AtomicUsize,
    notifier: Notifier,
}

impl Countdown {
    const_fn! {
        /// Creates a countdown waiting for `n` calls to
        /// [`count_down`](Self::count_down). With `n == 0` it starts done.
        ///
        /// # Examples
        ///
        /// ```
        /// let c = acqrel_core::Countdown::new(0);
        /// c.wait(); // already done
        /// ```
        pub fn new(n: usize) -> Countdown {
            Countdown {
                remaining: AtomicUsize::new(n),
                notifier: Notifier::new(),
            }
        }
    }

    /// Counts one event; returns the count left. The call that reaches zero
    /// wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`CountdownError`] if the count is already zero; nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = acqrel_core::Countdown::new(1);
    /// assert_eq!(c.count_down(), Ok(0));
    /// assert!(c.count_down().is_err());
    /// ```
    pub fn count_down(&self) -> Result<usize, CountdownError> {
        // Release: pairs with the Acquire load in `count`, publishing this
        // thread's work to whoever sees the count reach zero (the RMW chain
        // forms one release sequence). Relaxed on failure: nothing is
        // published and the retry loads again.
        let previous = self
            .remaining
            .fetch_update(Ordering::Release, Ordering::Relaxed, |n| n.checked_sub(1))
            .map_err(|_| CountdownError)?;
        if previous == 1 {
            self.notifier.notify_all();
        }
        Ok(previous - 1)
    }

    /// Returns the number of events still expected.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = acqrel_core::Countdown::new(2);
    /// c.count_down().unwrap();
    /// assert_eq!(c.count(), 1);
    /// ```
    #[inline]
    pub fn count(&self) -> usize {
        // Acquire: pairs with the Release updates in `count_down`.
        self.remaining.load(Ordering::Acquire)
    }

    /// Blocks until the count is zero.
    ///
    /// Do not call this from async code: use [`done`](Self::done).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = acqrel_core::Countdown::new(1);
    /// c.count_down().unwrap();
    /// c.wait();
    /// ```
    pub fn wait(&self) {
        self.notifier.wait_until(|| self.count() == 0);
    }

    /// Blocks until the count is zero or `timeout` passes; returns whether
    /// it reached zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = acqrel_core::Countdown::new(1);
    /// assert!(!c.wait_timeout(Duration::ZERO));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.notifier
            .wait_until_timeout(|| self.count() == 0, timeout)
    }

    /// Completes once the count is zero. Runtime-agnostic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future removes its waker and consumes
    /// nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # pollster::block_on(async {
    /// let c = acqrel_core::Countdown::new(1);
    /// c.count_down().unwrap();
    /// c.done().await;
    /// # });
    /// ```
    pub async fn done(&self) {
        self.notifier.until(|| self.count() == 0).await;
    }
}

impl fmt::Debug for Countdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Countdown")
            .field("remaining", &self.count())
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    #[test]
    fn underflow_is_an_error_and_count_stays_zero() {
        let c = Countdown::new(2);
        assert_eq!(c.count_down(), Ok(1));
        assert_eq!(c.count_down(), Ok(0));
        assert_eq!(c.count_down(), Err(CountdownError));
        assert_eq!(c.count(), 0);
        assert_eq!(CountdownError.to_string(), "countdown is already at zero");
    }

    #[test]
    fn timeout_expires_while_counts_remain() {
        let c = Countdown::new(1);
        assert!(!c.wait_timeout(Duration::from_millis(2)));
        c.count_down().unwrap();
        assert!(c.wait_timeout(Duration::from_millis(2)));
    }
}
