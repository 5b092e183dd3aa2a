//! A callback subscriber: the callback, a flag that retires it early, and
//! its counters. What makes `unsubscribe` mean "never again" is the list
//! update and the bus's grace period (`grace.rs`).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc as Message;

use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The boxed callback of a subscriber: it gets the message's `Arc`, to keep
/// it if it wants.
pub(crate) type Callback<T> = Box<dyn Fn(&Message<T>) + Send + Sync>;

/// What one call of [`CallbackSink::call`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Called {
    /// The callback ran and returned.
    Delivered,
    /// The callback panicked; the panic was caught.
    Panicked,
    /// The subscriber was removed: nothing ran.
    Removed,
}

/// A callback subscriber.
pub(crate) struct CallbackSink<T> {
    callback: Callback<T>,
    /// Set once the subscriber is removed: publishes that loaded a list
    /// still holding it skip it from then on (best effort, see `call`).
    removed: AtomicBool,
    delivered: AtomicU64,
    panicked: AtomicU64,
}

impl<T> CallbackSink<T> {
    pub(crate) fn new(callback: Callback<T>) -> Self {
        CallbackSink {
            callback,
            removed: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
        }
    }

    /// Runs the callback on `msg`, unless the subscriber was removed. A
    /// panic is caught and counted. Called only inside a grace period
    /// (`Grace::enter`).
    pub(crate) fn call(&self, msg: &Message<T>) -> Called {
        // Relaxed: a shortcut only. A publish that still sees the flag
        // unset still calls; `unsubscribe`'s guarantee comes from the list
        // update and the grace period (`grace.rs`, `# Orderings`).
        if self.removed.load(Ordering::Relaxed) {
            return Called::Removed;
        }
        let returned = catch_unwind(AssertUnwindSafe(|| (self.callback)(msg)));
        // Relaxed: statistics; nothing is read through them.
        if returned.is_ok() {
            self.delivered.fetch_add(1, Ordering::Relaxed);
            Called::Delivered
        } else {
            // Relaxed: as `delivered`.
            self.panicked.fetch_add(1, Ordering::Relaxed);
            Called::Panicked
        }
    }

    /// Marks the subscriber removed, so that publishes that loaded a list
    /// still holding it skip it as soon as they see the flag.
    pub(crate) fn remove(&self) {
        // Relaxed: see `call`.
        self.removed.store(true, Ordering::Relaxed);
    }

    /// Calls that returned, calls that panicked.
    pub(crate) fn counts(&self) -> (u64, u64) {
        // Relaxed: statistics.
        (
            self.delivered.load(Ordering::Relaxed),
            self.panicked.load(Ordering::Relaxed),
        )
    }
}

impl<T> fmt::Debug for CallbackSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackSink")
            // Relaxed: a diagnostic snapshot.
            .field("removed", &self.removed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
