//! A signal that fires once per generation (the guide's L.5 generational
//! signal and F.1 resettable latch).
//!
//! # Orderings
//!
//! `fire` advances the generation with a Release compare-exchange; readers
//! load it with Acquire. A waiter that sees generation `g` therefore sees
//! everything written before the `fire` that produced `g` (and, through the
//! release sequence formed by the read-modify-writes, before every earlier
//! `fire`). The wait path is the crate's notifier (see `notify.rs`), which
//! re-checks the generation under its lock: a waiter that arrives while
//! `fire` runs either sees the new generation or is registered before the
//! wake-up is sent.

use std::fmt;
use std::time::Duration;

use crate::notify::Notifier;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::const_fn;

/// A broadcast signal that can fire many times; each firing starts a new
/// generation.
///
/// Replaces the Go idioms of a resettable latch (close the current channel,
/// make a new one) and of a map of per-generation channels. A waiter
/// remembers the generation it has seen and waits for a later one, so a
/// firing that happens *between* reading the generation and starting to wait
/// is never missed. The **release** is [`fire`]; the **acquire** is
/// [`generation`] or any wait returning.
///
/// [`fire`]: GenerationSignal::fire
/// [`generation`]: GenerationSignal::generation
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use acqrel_core::GenerationSignal;
///
/// let tick = Arc::new(GenerationSignal::new());
/// let seen = tick.generation();
///
/// let waiter = {
///     let tick = tick.clone();
///     std::thread::spawn(move || tick.wait_past(seen))
/// };
///
/// let fired = tick.fire();
/// assert!(waiter.join().unwrap() >= fired);
/// ```
pub struct GenerationSignal {
    generation: AtomicU64,
    notifier: Notifier,
}

impl GenerationSignal {
    const_fn! {
        /// Creates a signal at generation 0.
        ///
        /// # Examples
        ///
        /// ```
        /// let signal = acqrel_core::GenerationSignal::new();
        /// assert_eq!(signal.generation(), 0);
        /// ```
        pub fn new() -> GenerationSignal {
            GenerationSignal::with_generation(0)
        }
    }

    const_fn! {
        /// Creates a signal at generation `generation`, e.g. to resume a
        /// numbering persisted before a restart.
        ///
        /// # Examples
        ///
        /// ```
        /// let signal = acqrel_core::GenerationSignal::with_generation(41);
        /// assert_eq!(signal.fire(), 42);
        /// ```
        pub fn with_generation(generation: u64) -> GenerationSignal {
            GenerationSignal {
                generation: AtomicU64::new(generation),
                notifier: Notifier::new(),
            }
        }
    }

    /// Starts a new generation, wakes every waiter, and returns the new
    /// generation number.
    ///
    /// # Panics
    ///
    /// Panics if the generation is already `u64::MAX` (after 2⁶⁴−1 firings,
    /// or when created with [`with_generation(u64::MAX)`](Self::with_generation)):
    /// wrapping would make every waiter's "later than" test lie.
    ///
    /// # Examples
    ///
    /// ```
    /// let signal = acqrel_core::GenerationSignal::new();
    /// assert_eq!(signal.fire(), 1);
    /// assert_eq!(signal.fire(), 2);
    /// ```
    pub fn fire(&self) -> u64 {
        // Release: pairs with the Acquire load in `generation`, publishing
        // the writes made before this call to every waiter that sees the new
        // generation. Relaxed on failure: the retry loads again.
        let previous = self
            .generation
            .fetch_update(Ordering::Release, Ordering::Relaxed, |g| g.checked_add(1))
            .unwrap_or_else(|_| panic!("GenerationSignal generation overflowed u64"));
        self.notifier.notify_all();
        previous + 1
    }

    /// Returns the current generation.
    ///
    /// # Examples
    ///
    /// ```
    /// let signal = acqrel_core::GenerationSignal::new();
    /// signal.fire();
    /// assert_eq!(signal.generation(), 1);
    /// ```
    #[inline]
    pub fn generation(&self) -> u64 {
        // Acquire: pairs with the Release update in `fire`.
        self.generation.load(Ordering::Acquire)
    }

    /// Blocks until the generation is greater than `seen`; returns the
    /// generation observed.
    ///
    /// Do not call this from async code: use [`past`](Self::past).
    ///
    /// # Examples
    ///
    /// ```
    /// let signal = acqrel_core::GenerationSignal::new();
    /// signal.fire();
    /// assert_eq!(signal.wait_past(0), 1); // already past: returns at once
    /// ```
    pub fn wait_past(&self, seen: u64) -> u64 {
        let mut observed = 0;
        self.notifier.wait_until(|| {
            observed = self.generation();
            observed > seen
        });
        observed
    }

    /// Blocks until the generation is greater than `seen` or `timeout`
    /// passes; returns the generation if it moved past `seen`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let signal = acqrel_core::GenerationSignal::new();
    /// assert_eq!(signal.wait_past_timeout(0, Duration::ZERO), None);
    /// signal.fire();
    /// assert_eq!(signal.wait_past_timeout(0, Duration::ZERO), Some(1));
    /// ```
    pub fn wait_past_timeout(&self, seen: u64, timeout: Duration) -> Option<u64> {
        let mut observed = 0;
        self.notifier
            .wait_until_timeout(
                || {
                    observed = self.generation();
                    observed > seen
                },
                timeout,
            )
            .then_some(observed)
    }

    /// Completes once the generation is greater than `seen`, with the
    /// generation observed. Runtime-agnostic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future removes its waker and consumes
    /// nothing. Call again with the same `seen` to resume waiting without
    /// missing a firing.
    ///
    /// # Examples
    ///
    /// ```
    /// # pollster::block_on(async {
    /// let signal = acqrel_core::GenerationSignal::new();
    /// let seen = signal.generation();
    /// signal.fire();
    /// assert_eq!(signal.past(seen).await, 1);
    /// # });
    /// ```
    pub async fn past(&self, seen: u64) -> u64 {
        self.notifier.until(|| self.generation() > seen).await;
        // Generations only grow: the value read now is still past `seen`.
        self.generation()
    }
}

impl Default for GenerationSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for GenerationSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerationSignal")
            .field("generation", &self.generation())
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "overflowed")]
    fn fire_at_max_panics_instead_of_wrapping() {
        let signal = GenerationSignal::with_generation(u64::MAX);
        signal.fire();
    }

    #[test]
    fn generation_is_unchanged_after_overflow_panic() {
        let signal = GenerationSignal::with_generation(u64::MAX);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| signal.fire()));
        assert!(result.is_err());
        assert_eq!(signal.generation(), u64::MAX);
    }
}
