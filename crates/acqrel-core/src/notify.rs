//! The waiter list behind every blocking and async wait in this crate.
//!
//! # Orderings
//!
//! Each primitive owns one atomic word of state (a flag, a count, a
//! generation) and a [`Notifier`]. The protocol that rules out lost wake-ups:
//!
//! * A **notifier** first publishes its new state with a Release (or
//!   stronger) store or read-modify-write, *then* calls
//!   [`Notifier::notify_all`], which takes the `waiters` lock.
//! * A **waiter** evaluates its condition (an Acquire load of the state)
//!   *while holding* the `waiters` lock, and registers itself (thread count
//!   or waker) in the same critical section.
//!
//! Both sides pass through one mutex, so one of the two critical sections
//! comes first. If the waiter's does, it is registered when the notifier drains
//! the list and is woken. If the notifier's does, the unlock/lock pair orders
//! the notifier's state change before the waiter's check, which sees it and
//! returns without sleeping. (The tokio `Notify` bugs #4618 and #5396 came
//! from checks made outside the critical section that registers the waiter.)
//!
//! The fast paths, which evaluate the condition once without the lock, are
//! only ever allowed to return "ready"; a "not ready" answer is always
//! re-checked under the lock.
//!
//! # Memory bound
//!
//! The waker map holds one entry per *pending* future: an entry is removed
//! when its future completes, is dropped, or is woken by a notification.
//! Blocking waiters are counted, not stored.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::sync::{self, Condvar, Mutex, const_fn};

/// A list of blocked threads and pending tasks waiting for one primitive's
/// state to change.
pub(crate) struct Notifier {
    waiters: Mutex<Waiters>,
    condvar: Condvar,
}

struct Waiters {
    /// Next key handed to a future on its first registration. Keys are never
    /// reused, so a stale key can never remove another future's entry.
    next_key: u64,
    /// Wakers of pending futures, by key.
    tasks: BTreeMap<u64, Waker>,
    /// Number of threads blocked on `condvar`.
    threads: usize,
}

impl Notifier {
    const_fn! {
        /// Creates an empty list.
        pub(crate) fn new() -> Notifier {
            Notifier {
                waiters: Mutex::new(Waiters {
                    next_key: 0,
                    tasks: BTreeMap::new(),
                    threads: 0,
                }),
                condvar: Condvar::new(),
            }
        }
    }

    /// Wakes every blocked thread and pending task.
    ///
    /// Call only *after* publishing the state change the waiters look for
    /// (see the module's `# Orderings`). Wakers run after the lock is
    /// released.
    pub(crate) fn notify_all(&self) {
        let mut waiters = sync::lock(&self.waiters);
        let tasks = std::mem::take(&mut waiters.tasks);
        let threads = waiters.threads;
        drop(waiters);
        if threads > 0 {
            self.condvar.notify_all();
        }
        for (_, waker) in tasks {
            waker.wake();
        }
    }

    /// Blocks the current thread until `ready` returns `true`.
    ///
    /// `ready` must be this crate's own check of an atomic (never user code):
    /// it runs under the waiter lock.
    pub(crate) fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        if ready() {
            return;
        }
        self.wait_slow(&mut ready, None);
    }

    /// Blocks the current thread until `ready` returns `true` or `timeout`
    /// passes. Returns the last value of `ready`.
    ///
    /// A timeout too large to be represented as an [`Instant`] waits without
    /// a deadline.
    pub(crate) fn wait_until_timeout(
        &self,
        mut ready: impl FnMut() -> bool,
        timeout: Duration,
    ) -> bool {
        if ready() {
            return true;
        }
        let deadline = Instant::now().checked_add(timeout);
        self.wait_slow(&mut ready, deadline)
    }

    #[cold]
    fn wait_slow(&self, ready: &mut dyn FnMut() -> bool, deadline: Option<Instant>) -> bool {
        let mut waiters = sync::lock(&self.waiters);
        waiters.threads += 1;
        let result = loop {
            if ready() {
                break true;
            }
            match deadline {
                None => waiters = sync::wait(&self.condvar, waiters),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    waiters = sync::wait_timeout(&self.condvar, waiters, deadline - now);
                }
            }
        };
        waiters.threads -= 1;
        result
    }

    /// Returns a future that completes once `ready` returns `true`.
    ///
    /// `ready` must be this crate's own check of an atomic (see
    /// [`Self::wait_until`]).
    pub(crate) fn until<F: FnMut() -> bool + Unpin>(&self, ready: F) -> Until<'_, F> {
        Until {
            notifier: self,
            ready,
            key: None,
        }
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiters = sync::lock(&self.waiters);
        f.debug_struct("Notifier")
            .field("threads", &waiters.threads)
            .field("tasks", &waiters.tasks.len())
            .finish()
    }
}

/// Future returned by [`Notifier::until`].
///
/// # Cancel safety
///
/// Dropping it removes its waker; since every notification wakes all
/// waiters, no other waiter can miss a wake-up because of the drop.
pub(crate) struct Until<'a, F> {
    notifier: &'a Notifier,
    ready: F,
    /// Key of this future's entry in the waker map, once registered.
    key: Option<u64>,
}

impl<F: FnMut() -> bool + Unpin> Future for Until<'_, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if (this.ready)() {
            this.deregister();
            return Poll::Ready(());
        }
        let mut waiters = sync::lock(&this.notifier.waiters);
        // Re-check under the lock: see the module's `# Orderings`.
        if (this.ready)() {
            if let Some(key) = this.key.take() {
                waiters.tasks.remove(&key);
            }
            return Poll::Ready(());
        }
        let key = *this.key.get_or_insert_with(|| {
            let key = waiters.next_key;
            waiters.next_key += 1;
            key
        });
        match waiters.tasks.get_mut(&key) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                waiters.tasks.insert(key, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl<F> Until<'_, F> {
    fn deregister(&mut self) {
        if let Some(key) = self.key.take() {
            sync::lock(&self.notifier.waiters).tasks.remove(&key);
        }
    }
}

impl<F> Drop for Until<'_, F> {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl<F> fmt::Debug for Until<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Until").field("key", &self.key).finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::Wake;

    struct CountWaker(std::sync::atomic::AtomicUsize);
    impl Wake for CountWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn dropped_future_leaves_no_entry() {
        let notifier = Notifier::new();
        let flag = AtomicBool::new(false);
        let counter = std::sync::Arc::new(CountWaker(0.into()));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = notifier.until(|| flag.load(Ordering::SeqCst));
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert_eq!(sync::lock(&notifier.waiters).tasks.len(), 1);
        drop(fut);
        assert_eq!(sync::lock(&notifier.waiters).tasks.len(), 0);
        notifier.notify_all();
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn notify_wakes_each_pending_future_once() {
        let notifier = Notifier::new();
        let flag = AtomicBool::new(false);
        let counter = std::sync::Arc::new(CountWaker(0.into()));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut a = notifier.until(|| flag.load(Ordering::SeqCst));
        let mut b = notifier.until(|| flag.load(Ordering::SeqCst));
        assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut b).poll(&mut cx).is_pending());
        flag.store(true, Ordering::SeqCst);
        notifier.notify_all();
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(Pin::new(&mut a).poll(&mut cx).is_ready());
        assert!(Pin::new(&mut b).poll(&mut cx).is_ready());
        assert_eq!(sync::lock(&notifier.waiters).tasks.len(), 0);
    }

    #[test]
    fn timeout_returns_false_when_never_ready() {
        let notifier = Notifier::new();
        assert!(!notifier.wait_until_timeout(|| false, Duration::from_millis(1)));
        assert!(notifier.wait_until_timeout(|| true, Duration::ZERO));
        assert_eq!(sync::lock(&notifier.waiters).threads, 0);
    }
}
