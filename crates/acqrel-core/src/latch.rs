//! A one-shot broadcast: Go's `close(ready)` / `<-ready`.
//!
//! # Orderings
//!
//! `open` stores `true` with Release; `is_open` and every wait load it with
//! Acquire. Whatever the opener wrote before `open` is therefore visible to
//! any thread that has seen the latch open. Waiting goes through the crate's
//! notifier (see `notify.rs`), which re-checks under its lock.

use std::fmt;
use std::time::Duration;

use crate::notify::Notifier;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::const_fn;

/// A one-shot broadcast latch: starts closed, opens once, stays open.
///
/// Replaces the Go idiom of closing a `chan struct{}` to tell every
/// goroutine that something is ready. The **release** is [`open`]; the
/// **acquire** is [`is_open`] returning `true` or any wait returning.
///
/// [`open`]: Latch::open
/// [`is_open`]: Latch::is_open
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use acqrel_core::Latch;
///
/// let ready = Arc::new(Latch::new());
/// let data = Arc::new(AtomicU32::new(0));
///
/// let worker = {
///     let (ready, data) = (ready.clone(), data.clone());
///     std::thread::spawn(move || {
///         ready.wait();
///         // Everything written before `open` is visible here.
///         data.load(Ordering::Relaxed)
///     })
/// };
///
/// data.store(42, Ordering::Relaxed);
/// ready.open();
/// assert_eq!(worker.join().unwrap(), 42);
/// ```
///
/// In a `static`:
///
/// ```
/// use acqrel_core::Latch;
///
/// static STARTED: Latch = Latch::new();
/// STARTED.open();
/// assert!(STARTED.is_open());
/// ```
pub struct Latch {
    open: AtomicBool,
    notifier: Notifier,
}

impl Latch {
    const_fn! {
        /// Creates a closed latch.
        ///
        /// # Examples
        ///
        /// ```
        /// let latch = acqrel_core::Latch::new();
        /// assert!(!latch.is_open());
        /// ```
        pub fn new() -> Latch {
            Latch {
                open: AtomicBool::new(false),
                notifier: Notifier::new(),
            }
        }
    }

    /// Opens the latch and wakes every waiter. Returns `true` if this call
    /// opened it, `false` if it was already open.
    ///
    /// # Examples
    ///
    /// ```
    /// let latch = acqrel_core::Latch::new();
    /// assert!(latch.open());
    /// assert!(!latch.open());
    /// ```
    pub fn open(&self) -> bool {
        // Release: pairs with the Acquire loads in `is_open` (and so in every
        // wait), publishing the writes made before this call. The Acquire
        // half is not needed: a second opener publishes nothing new.
        if self.open.swap(true, Ordering::Release) {
            return false;
        }
        self.notifier.notify_all();
        true
    }

    /// Returns `true` once the latch is open.
    ///
    /// # Examples
    ///
    /// ```
    /// let latch = acqrel_core::Latch::new();
    /// latch.open();
    /// assert!(latch.is_open());
    /// ```
    #[inline]
    pub fn is_open(&self) -> bool {
        // Acquire: pairs with the Release swap in `open`.
        self.open.load(Ordering::Acquire)
    }

    /// Blocks the current thread until the latch is open.
    ///
    /// Do not call this from async code: use [`opened`](Self::opened).
    ///
    /// # Examples
    ///
    /// ```
    /// let latch = acqrel_core::Latch::new();
    /// latch.open();
    /// latch.wait(); // returns at once
    /// ```
    pub fn wait(&self) {
        self.notifier.wait_until(|| self.is_open());
    }

    /// Blocks until the latch is open or `timeout` passes; returns whether it
    /// is open. A zero timeout only checks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let latch = acqrel_core::Latch::new();
    /// assert!(!latch.wait_timeout(Duration::ZERO));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.notifier.wait_until_timeout(|| self.is_open(), timeout)
    }

    /// Completes once the latch is open. Runtime-agnostic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes removes its
    /// waker and consumes nothing; other waiters are unaffected.
    ///
    /// # Examples
    ///
    /// ```
    /// # pollster::block_on(async {
    /// let latch = acqrel_core::Latch::new();
    /// latch.open();
    /// latch.opened().await;
    /// # });
    /// ```
    pub async fn opened(&self) {
        self.notifier.until(|| self.is_open()).await;
    }
}

impl Default for Latch {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Latch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latch")
            .field("open", &self.is_open())
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn open_releases_every_blocked_waiter() {
        let latch = Arc::new(Latch::new());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let latch = latch.clone();
                std::thread::spawn(move || latch.wait())
            })
            .collect();
        assert!(latch.open());
        for w in waiters {
            w.join().unwrap();
        }
        assert!(latch.is_open());
    }

    #[test]
    fn wait_timeout_times_out_while_closed() {
        let latch = Latch::new();
        assert!(!latch.wait_timeout(Duration::from_millis(5)));
        latch.open();
        assert!(latch.wait_timeout(Duration::MAX));
    }
}
