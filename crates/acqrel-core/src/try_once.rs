//! Lazy initialization that retries after failure (Go's `sync.Once`, which
//! caches a failed `Do` forever, done the other way).
//!
//! # Orderings
//!
//! `state` (see its state table) is the only synchronization:
//!
//! * The initializer is elected by a compare-exchange `EMPTY → RUNNING`
//!   (Acquire on success, so it sees what an earlier failed initializer's
//!   reset published; nothing else is read).
//! * On success the value is written into `value`, then `state` is stored
//!   `COMPLETE` with Release. Every reader loads `state` with Acquire before
//!   touching `value`: a reader that sees `COMPLETE` sees the written value.
//! * On failure or panic, `state` is stored `EMPTY` with Release (the value
//!   slot was never written), then waiters are notified and one of them runs
//!   its own initializer.
//!
//! `value` is written only by the thread that moved `state` to `RUNNING`,
//! and only while it is `RUNNING`; it is read only after `COMPLETE` has been
//! observed, and never written again. Those two rules make the accesses
//! race-free, which the loom model checks.

use std::fmt;
use std::mem::MaybeUninit;
use std::panic::{RefUnwindSafe, UnwindSafe};

use crate::notify::Notifier;
use crate::sync::atomic::{AtomicU8, Ordering};
use crate::sync::{UnsafeCell, const_fn};

/// No value, nobody initializing.
const EMPTY: u8 = 0;
/// One caller is running its initializer.
const RUNNING: u8 = 1;
/// The value is written and immutable.
const COMPLETE: u8 = 2;

/// A lazily initialized value whose initializer may fail and is then retried.
///
/// If the initializer returns `Err` or panics, the cell stays empty and the
/// next caller runs *its* initializer. Concurrent callers block while one
/// initializer runs and then see its value (or, if it failed, race to run
/// theirs). Once set, [`get`] is a single Acquire load.
///
/// Replaces Go's `sync.Once` + captured `err` (which remembers the first
/// failure forever) and std's unstable `OnceLock::get_or_try_init`. The
/// **release** is the store of the completed state after the initializer
/// returns `Ok`; the **acquire** is the load in [`get`] and on every
/// `get_or_*` path.
///
/// [`get`]: TryOnce::get
///
/// # Examples
///
/// ```
/// use acqrel_core::TryOnce;
///
/// static DB_URL: TryOnce<String> = TryOnce::new();
///
/// // The first attempt fails: nothing is cached.
/// let first: Result<&String, &str> = DB_URL.get_or_try_init(|| Err("not yet"));
/// assert_eq!(first, Err("not yet"));
/// assert!(DB_URL.get().is_none());
///
/// // The next caller retries and succeeds; later callers share the value.
/// let url = DB_URL.get_or_try_init(|| Ok::<_, &str>("postgres://db".to_string()));
/// assert_eq!(url.unwrap(), "postgres://db");
/// assert_eq!(DB_URL.get().unwrap(), "postgres://db");
/// ```
pub struct TryOnce<T> {
    /// | value      | meaning                                        |
    /// |------------|------------------------------------------------|
    /// | `EMPTY`    | no value; the next caller may initialize       |
    /// | `RUNNING`  | one caller owns `value` and is initializing    |
    /// | `COMPLETE` | `value` is initialized and never written again |
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
    notifier: Notifier,
}

// SAFETY: `TryOnce` hands out `&T` to any thread (needs `T: Sync`) and
// moves the `T` written by one thread to whichever thread drops the cell
// (needs `T: Send`), exactly like `std::sync::OnceLock`.
unsafe impl<T: Send + Sync> Sync for TryOnce<T> {}
// SAFETY: sending the cell sends the `T` inside it.
unsafe impl<T: Send> Send for TryOnce<T> {}

// A panicking initializer leaves the cell EMPTY and consistent (see
// `run_init`), so observing it after a caught panic is fine, as for
// `std::sync::OnceLock`.
impl<T: RefUnwindSafe + UnwindSafe> RefUnwindSafe for TryOnce<T> {}
impl<T: UnwindSafe> UnwindSafe for TryOnce<T> {}

impl<T> TryOnce<T> {
    const_fn! {
        /// Creates an empty cell.
        ///
        /// # Examples
        ///
        /// ```
        /// let cell = acqrel_core::TryOnce::<u32>::new();
        /// assert!(cell.get().is_none());
        /// ```
        pub fn new() -> TryOnce<T> {
            TryOnce {
                state: AtomicU8::new(EMPTY),
                value: UnsafeCell::new(MaybeUninit::uninit()),
                notifier: Notifier::new(),
            }
        }
    }

    /// Returns the value if it is initialized. Never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::TryOnce::new();
    /// assert_eq!(cell.get(), None);
    /// cell.get_or_init(|| 5);
    /// assert_eq!(cell.get(), Some(&5));
    /// ```
    #[inline]
    pub fn get(&self) -> Option<&T> {
        // Acquire: pairs with the Release store of COMPLETE in `try_init`.
        if self.state.load(Ordering::Acquire) == COMPLETE {
            // SAFETY: COMPLETE was observed with Acquire, so the value was
            // written and is never written again.
            Some(unsafe { self.value_ref() })
        } else {
            None
        }
    }

    /// Returns the value, running `init` first if the cell is empty. If
    /// another caller is initializing, blocks until it finishes.
    ///
    /// # Panics
    ///
    /// If `init` panics, the panic propagates to this caller and the cell
    /// stays empty; waiting callers then retry with their own initializers.
    /// Calling `get_or_init` on the same cell from inside `init` deadlocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::TryOnce::new();
    /// assert_eq!(*cell.get_or_init(|| 1), 1);
    /// assert_eq!(*cell.get_or_init(|| 2), 1);
    /// ```
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        match self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(init())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Returns the value, running `init` first if the cell is empty. On
    /// `Err` the cell stays empty and the error is returned to this caller
    /// only; the next caller runs its own initializer.
    ///
    /// # Errors
    ///
    /// Returns `init`'s error if this caller ran `init` and it failed.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::TryOnce::new();
    /// assert_eq!(cell.get_or_try_init(|| "nope".parse::<u32>()).is_err(), true);
    /// assert_eq!(cell.get_or_try_init(|| "7".parse::<u32>()), Ok(&7));
    /// ```
    pub fn get_or_try_init<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        if let Some(value) = self.get() {
            return Ok(value);
        }
        self.get_or_try_init_slow(init)
    }

    #[cold]
    fn get_or_try_init_slow<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        loop {
            // Acquire on success: pairs with the Release reset to EMPTY of a
            // failed initializer (nothing of it is read, but this keeps the
            // slot's accesses ordered for the race checker). Acquire on
            // failure: a COMPLETE seen here is followed by a read of `value`.
            match self
                .state
                .compare_exchange(EMPTY, RUNNING, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return self.run_init(init),
                Err(COMPLETE) => {
                    // SAFETY: COMPLETE was observed with Acquire.
                    return Ok(unsafe { self.value_ref() });
                }
                Err(_) => {
                    // Acquire: pairs with the Release stores in `run_init`.
                    self.notifier
                        .wait_until(|| self.state.load(Ordering::Acquire) != RUNNING);
                }
            }
        }
    }

    /// Runs `init` as the elected initializer (`state` is `RUNNING`).
    fn run_init<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        /// Resets the cell to EMPTY if `init` fails or unwinds.
        struct Reset<'a, T> {
            cell: &'a TryOnce<T>,
        }
        impl<T> Drop for Reset<'_, T> {
            fn drop(&mut self) {
                // Release: pairs with the Acquire compare-exchange of the
                // next initializer and the Acquire loads of waiters.
                self.cell.state.store(EMPTY, Ordering::Release);
                self.cell.notifier.notify_all();
            }
        }

        let reset = Reset { cell: self };
        let value = init()?;
        std::mem::forget(reset);
        // SAFETY: this thread moved `state` to RUNNING, so it alone may write
        // `value`, and no reader touches it before COMPLETE.
        self.value.with_mut(|slot| unsafe { (*slot).write(value) });
        // Release: pairs with the Acquire loads in `get` and the slow path,
        // publishing the value written above.
        self.state.store(COMPLETE, Ordering::Release);
        self.notifier.notify_all();
        // SAFETY: written above, never written again.
        Ok(unsafe { self.value_ref() })
    }

    /// # Safety
    ///
    /// `state` must have been observed `COMPLETE` with Acquire ordering (or
    /// set so by this thread).
    unsafe fn value_ref(&self) -> &T {
        // SAFETY: by the caller's contract the slot is initialized and
        // immutable from now on, so a shared reference for `&self`'s
        // lifetime is sound.
        self.value.with(|slot| unsafe { (*slot).assume_init_ref() })
    }

    /// Takes the value out, leaving the cell empty. `&mut self` proves no one
    /// else is looking.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cell = acqrel_core::TryOnce::new();
    /// cell.get_or_init(|| String::from("x"));
    /// assert_eq!(cell.take().as_deref(), Some("x"));
    /// assert!(cell.get().is_none());
    /// ```
    pub fn take(&mut self) -> Option<T> {
        // Relaxed: `&mut self` excludes every other access; no ordering is
        // needed against threads that no longer hold references.
        if self.state.swap(EMPTY, Ordering::Relaxed) == COMPLETE {
            // SAFETY: the value was initialized and the state now says EMPTY,
            // so it is read out exactly once.
            Some(
                self.value
                    .with(|slot| unsafe { (*slot).assume_init_read() }),
            )
        } else {
            None
        }
    }
}

impl<T> Default for TryOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for TryOnce<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl<T: fmt::Debug> fmt::Debug for TryOnce<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("TryOnce");
        match self.get() {
            Some(value) => d.field(value),
            None => d.field(&format_args!("<empty>")),
        };
        d.finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn panicking_initializer_leaves_cell_empty_for_retry() {
        let cell = TryOnce::<u32>::new();
        let result = std::panic::catch_unwind(|| {
            cell.get_or_init(|| panic!("boom"));
        });
        assert!(result.is_err());
        assert!(cell.get().is_none());
        assert_eq!(*cell.get_or_init(|| 9), 9);
    }

    #[test]
    fn value_is_dropped_exactly_once() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let cell = TryOnce::new();
        cell.get_or_init(|| Counted);
        drop(cell);
        assert_eq!(DROPS.load(std::sync::atomic::Ordering::SeqCst), 1);
        drop(TryOnce::<Counted>::new());
        assert_eq!(DROPS.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn waiters_see_the_winner_value() {
        let cell = std::sync::Arc::new(TryOnce::new());
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (cell, calls) = (cell.clone(), calls.clone());
                std::thread::spawn(move || {
                    *cell.get_or_init(|| {
                        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        i
                    })
                })
            })
            .collect();
        let seen: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(seen.iter().all(|&v| v == seen[0]));
    }
}
