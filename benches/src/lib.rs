//! Helpers shared by the acqrel benchmarks.
//!
//! The benchmarks themselves live in `benches/<pattern>.rs`, one file per
//! pattern, one criterion `benchmark_group` per scenario, with our primitive
//! and its anchors (the crates and std types people would reach for instead)
//! side by side in the same group. See `README.md` for how to run them and
//! `targets.txt` for the ratios `cargo xtask bench` checks.
//!
//! This crate only holds what more than one scenario needs:
//!
//! - [`BackgroundWriter`]: a thread that keeps running a closure (a writer
//!   storing new values, say) while the benchmark thread measures, and that
//!   is stopped and joined when dropped, so no thread outlives its group.
//!
//! # Orderings
//!
//! [`BackgroundWriter`] shares one `AtomicBool` stop flag with its thread. The
//! flag publishes nothing: whatever the thread did becomes visible to the
//! dropping thread through `JoinHandle::join`, which synchronizes with the end
//! of the thread. The flag is still stored with `Release` and loaded with
//! `Acquire` (the default this workspace starts from), which costs nothing
//! measurable next to the closure it guards.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

// ===== BackgroundWriter =====

/// Runs a closure in a loop on its own thread until dropped.
///
/// Benchmarks use it to keep one writer busy on the cell being read for as
/// long as a measurement lasts. Dropping it raises the stop flag and joins the
/// thread; the closure finishes its current call first.
///
/// # Panics
///
/// Dropping a `BackgroundWriter` whose closure panicked re-raises that panic
/// (unless the dropping thread is already panicking), so a broken writer
/// fails the benchmark instead of silently measuring an uncontended cell.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// use acqrel_benches::BackgroundWriter;
///
/// let counter = Arc::new(AtomicU64::new(0));
/// let writer = {
///     let counter = Arc::clone(&counter);
///     BackgroundWriter::spawn(move || {
///         counter.fetch_add(1, Ordering::Relaxed);
///     })
/// };
/// // ... measure something while the writer runs ...
/// drop(writer); // stops and joins the thread
/// let after_join = counter.load(Ordering::Relaxed);
/// assert_eq!(counter.load(Ordering::Relaxed), after_join);
/// ```
pub struct BackgroundWriter {
    /// Raised once, by `drop`.
    stop: Arc<AtomicBool>,
    /// `Some` until `drop` takes it to join the thread.
    handle: Option<JoinHandle<()>>,
}

impl BackgroundWriter {
    /// Spawns a thread that calls `step` over and over until the returned
    /// value is dropped.
    ///
    /// # Panics
    ///
    /// Panics if the operating system fails to spawn the thread.
    pub fn spawn<F>(mut step: F) -> Self
    where
        F: FnMut() + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = thread::Builder::new()
            .name("bench-background-writer".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    // Acquire: pairs with the Release store in `drop`. Nothing
                    // rides on it; `join` is what synchronizes (see crate docs).
                    while !stop.load(Ordering::Acquire) {
                        step();
                    }
                }
            })
            .expect("failed to spawn the background writer thread");
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        // Release: pairs with the Acquire load in the loop in `spawn`.
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take()
            && let Err(panic) = handle.join()
            && !thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

impl fmt::Debug for BackgroundWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundWriter")
            // Relaxed: a diagnostic read; nothing is published through it.
            .field("stopping", &self.stop.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    // Relaxed throughout: the counters and flags below publish no data, and
    // dropping the writer joins its thread, which synchronizes everything.
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn drop_stops_and_joins_the_thread() {
        let counter = Arc::new(AtomicU64::new(0));
        let writer = {
            let counter = Arc::clone(&counter);
            BackgroundWriter::spawn(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })
        };
        while counter.load(Ordering::Relaxed) == 0 {
            thread::yield_now();
        }
        drop(writer);
        // The thread has been joined: the count can no longer move.
        let after_join = counter.load(Ordering::Relaxed);
        thread::yield_now();
        assert_eq!(counter.load(Ordering::Relaxed), after_join);
    }

    #[test]
    #[should_panic(expected = "writer failed")]
    fn drop_reraises_a_panic_from_the_closure() {
        let started = Arc::new(AtomicBool::new(false));
        let writer = {
            let started = Arc::clone(&started);
            BackgroundWriter::spawn(move || {
                started.store(true, Ordering::Relaxed);
                panic!("writer failed");
            })
        };
        // Drop only once the closure has run: a stop raised before the first
        // call would end the loop without calling it.
        while !started.load(Ordering::Relaxed) {
            thread::yield_now();
        }
        drop(writer);
    }
}
