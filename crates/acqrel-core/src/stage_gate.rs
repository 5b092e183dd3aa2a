//! An atomic state machine over a user's fieldless enum (the guide's X.3
//! stage gate).
//!
//! # Orderings
//!
//! The stage is one `AtomicU8`. `advance` is a compare-exchange that is
//! AcqRel on success: Release publishes what the winner wrote before the
//! transition to every thread that later sees the new stage (`current` and
//! the waits load with Acquire); Acquire makes what the previous winner
//! published visible to this one. The compare-exchange guarantees exactly one
//! winner among concurrent `advance(from, to)` calls. On failure the load is
//! Acquire, so the stage reported in the error can be acted upon.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::notify::Notifier;
use crate::sync::atomic::{AtomicU8, Ordering};

/// A fieldless enum whose values a [`StageGate`] can hold.
///
/// `to_u8` and `from_u8` must round-trip: `from_u8(s.to_u8()) == Some(s)`,
/// and two stages are equal exactly when their codes are (the gate compares
/// codes, and its waits do so without calling these methods under a lock).
/// Override [`can_advance`](Stage::can_advance) to forbid transitions.
///
/// # Examples
///
/// ```
/// use acqrel_core::Stage;
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// enum Life { Init, Running, Stopping, Stopped }
///
/// impl Stage for Life {
///     fn to_u8(self) -> u8 { self as u8 }
///     fn from_u8(v: u8) -> Option<Self> {
///         [Life::Init, Life::Running, Life::Stopping, Life::Stopped].get(usize::from(v)).copied()
///     }
///     fn can_advance(from: Self, to: Self) -> bool {
///         to as u8 == from as u8 + 1 // strictly forward, one step at a time
///     }
/// }
/// assert!(Life::can_advance(Life::Init, Life::Running));
/// assert!(!Life::can_advance(Life::Stopped, Life::Init));
/// ```
pub trait Stage: Copy + Eq {
    /// Encodes the stage.
    fn to_u8(self) -> u8;
    /// Decodes a stage encoded by [`to_u8`](Stage::to_u8).
    fn from_u8(value: u8) -> Option<Self>;
    /// Whether `from → to` is a legal transition. Defaults to every
    /// transition between different stages.
    fn can_advance(from: Self, to: Self) -> bool {
        from != to
    }
}

/// Why [`StageGate::advance`] did not move the gate.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdvanceError<S> {
    /// The gate was not in the `from` stage; it holds the stage found.
    /// Another thread won the transition, or the caller's view was stale.
    #[error("stage gate is not in the expected stage")]
    Mismatch {
        /// The stage actually found.
        found: S,
    },
    /// [`Stage::can_advance`] forbids this transition; the gate was not read.
    #[error("stage transition is not allowed")]
    NotAllowed {
        /// The requested source stage.
        from: S,
        /// The requested target stage.
        to: S,
    },
}

impl<S> AdvanceError<S> {
    /// The stage found, for a [`Mismatch`](AdvanceError::Mismatch).
    pub fn found(&self) -> Option<&S> {
        match self {
            AdvanceError::Mismatch { found } => Some(found),
            AdvanceError::NotAllowed { .. } => None,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for AdvanceError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdvanceError::Mismatch { found } => {
                f.debug_struct("Mismatch").field("found", found).finish()
            }
            AdvanceError::NotAllowed { from, to } => f
                .debug_struct("NotAllowed")
                .field("from", from)
                .field("to", to)
                .finish(),
        }
    }
}

/// An atomic state machine: a stage that moves by compare-and-swap, with
/// waits for a stage to be reached.
///
/// Replaces the Go idiom of an `atomic.Int32` holding lifecycle constants and
/// advanced with `CompareAndSwap(Running, Stopping)`: the enum is typed, the
/// loser learns which stage won, forbidden transitions are refused, and
/// threads and tasks can wait for a stage. The **release** is a successful
/// [`advance`]; the **acquire** is [`current`] or any wait returning.
///
/// [`advance`]: StageGate::advance
/// [`current`]: StageGate::current
///
/// # Examples
///
/// ```
/// use acqrel_core::{AdvanceError, Stage, StageGate};
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// enum Life { Running, Stopping, Stopped }
/// impl Stage for Life {
///     fn to_u8(self) -> u8 { self as u8 }
///     fn from_u8(v: u8) -> Option<Self> {
///         [Life::Running, Life::Stopping, Life::Stopped].get(usize::from(v)).copied()
///     }
/// }
///
/// let gate = StageGate::new(Life::Running);
/// assert_eq!(gate.advance(Life::Running, Life::Stopping), Ok(()));
/// // A second shutdown request loses and learns why.
/// assert_eq!(
///     gate.advance(Life::Running, Life::Stopping),
///     Err(AdvanceError::Mismatch { found: Life::Stopping }),
/// );
/// ```
pub struct StageGate<S> {
    stage: AtomicU8,
    notifier: Notifier,
    _stage: PhantomData<S>,
}

impl<S: Stage> StageGate<S> {
    /// Creates a gate in stage `initial`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use acqrel_core::{Stage, StageGate};
    /// # #[derive(Debug, Clone, Copy, PartialEq, Eq)] enum On { No, Yes }
    /// # impl Stage for On {
    /// #     fn to_u8(self) -> u8 { self as u8 }
    /// #     fn from_u8(v: u8) -> Option<Self> { [On::No, On::Yes].get(usize::from(v)).copied() }
    /// # }
    /// let gate = StageGate::new(On::No);
    /// assert_eq!(gate.current(), On::No);
    /// ```
    pub fn new(initial: S) -> Self {
        StageGate {
            stage: AtomicU8::new(initial.to_u8()),
            notifier: Notifier::new(),
            _stage: PhantomData,
        }
    }

    /// Returns the current stage.
    ///
    /// # Panics
    ///
    /// Panics if the [`Stage`] implementation does not round-trip (a stored
    /// code that `from_u8` rejects): a bug in that implementation, not a
    /// runtime condition.
    ///
    /// # Examples
    ///
    /// ```
    /// # use acqrel_core::{Stage, StageGate};
    /// # #[derive(Debug, Clone, Copy, PartialEq, Eq)] enum On { No, Yes }
    /// # impl Stage for On {
    /// #     fn to_u8(self) -> u8 { self as u8 }
    /// #     fn from_u8(v: u8) -> Option<Self> { [On::No, On::Yes].get(usize::from(v)).copied() }
    /// # }
    /// let gate = StageGate::new(On::No);
    /// gate.advance(On::No, On::Yes).unwrap();
    /// assert_eq!(gate.current(), On::Yes);
    /// ```
    #[inline]
    pub fn current(&self) -> S {
        // Acquire: pairs with the Release half of the successful
        // compare-exchange in `advance`.
        decode(self.stage.load(Ordering::Acquire))
    }

    /// Moves the gate from `from` to `to` if it is in `from`. Of many
    /// concurrent calls with the same `from`, exactly one succeeds.
    ///
    /// # Errors
    ///
    /// * [`AdvanceError::NotAllowed`] if [`Stage::can_advance`] refuses the
    ///   transition (checked before the gate is touched);
    /// * [`AdvanceError::Mismatch`] with the stage found if the gate was not
    ///   in `from`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use acqrel_core::{AdvanceError, Stage, StageGate};
    /// # #[derive(Debug, Clone, Copy, PartialEq, Eq)] enum On { No, Yes }
    /// # impl Stage for On {
    /// #     fn to_u8(self) -> u8 { self as u8 }
    /// #     fn from_u8(v: u8) -> Option<Self> { [On::No, On::Yes].get(usize::from(v)).copied() }
    /// # }
    /// let gate = StageGate::new(On::No);
    /// assert_eq!(gate.advance(On::No, On::No), Err(AdvanceError::NotAllowed { from: On::No, to: On::No }));
    /// assert_eq!(gate.advance(On::No, On::Yes), Ok(()));
    /// ```
    pub fn advance(&self, from: S, to: S) -> Result<(), AdvanceError<S>> {
        if !S::can_advance(from, to) {
            return Err(AdvanceError::NotAllowed { from, to });
        }
        // AcqRel on success: Release pairs with the Acquire load in `current`
        // (publishing the winner's prior writes); Acquire pairs with the
        // previous winner's Release. Acquire on failure: the caller may act
        // on the stage it is told about.
        match self.stage.compare_exchange(
            from.to_u8(),
            to.to_u8(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                self.notifier.notify_all();
                Ok(())
            }
            Err(found) => Err(AdvanceError::Mismatch {
                found: decode(found),
            }),
        }
    }

    /// Blocks until the gate is in `stage`.
    ///
    /// If the gate can move past `stage` without stopping there, this may
    /// never return; use [`wait_until`](Self::wait_until) with a predicate
    /// such as "at least `Stopping`" instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # use acqrel_core::{Stage, StageGate};
    /// # #[derive(Debug, Clone, Copy, PartialEq, Eq)] enum On { No, Yes }
    /// # impl Stage for On {
    /// #     fn to_u8(self) -> u8 { self as u8 }
    /// #     fn from_u8(v: u8) -> Option<Self> { [On::No, On::Yes].get(usize::from(v)).copied() }
    /// # }
    /// let gate = StageGate::new(On::Yes);
    /// gate.wait_for(On::Yes);
    /// ```
    pub fn wait_for(&self, stage: S) {
        self.wait_until(|s| s == stage);
    }

    /// Blocks until the current stage satisfies `pred`; returns that stage.
    ///
    /// `pred` runs on this thread with no lock held, once per stage
    /// observed. A stage that is entered and left again before this thread
    /// looks may go unobserved, so prefer predicates over ranges ("at least
    /// `Stopping`") to exact transient stages.
    ///
    /// # Examples
    ///
    /// ```
    /// # use acqrel_core::{Stage, StageGate};
    /// # #[derive(Debug, Clone, Copy, PartialEq, Eq)] enum On { No, Yes }
    /// # impl Stage for On {
    /// #     fn to_u8(self) -> u8 { self as u8 }
    /// #     fn from_u8(v: u8) -> Option<Self> { [On::No, On::Yes].get(usize::from(v)).copied() }
    /// # }
    /// let gate = StageGate::new(On::Yes);
    /// assert_eq!(gate.wait_until(|s| s != On::No), On::Yes);
    /// ```
    pub fn wait_until(&self, mut pred: impl FnMut(S) -> bool) -> S {
        loop {
            let seen = self.current();
            if pred(seen) {
                return seen;
            }
            let code = seen.to_u8();
            // Acquire: pairs with the Release half of `advance`.
            self.notifier
                .wait_until(|| self.stage.load(Ordering::Acquire) != code);
        }
    }

    /// Like [`wait_for`](Self::wait_for), giving up after `timeout`; returns
    /// whether the gate is in `stage`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use acqrel_core::{Stage, StageGate};
    /// # #[derive(Debug, Clone, Copy, PartialEq, Eq)] enum On { No, Yes }
    /// # impl Stage for On {
    /// #     fn to_u8(self) -> u8 { self as u8 }
    /// #     fn from_u8(v: u8) -> Option<Self> { [On::No, On::Yes].get(usize::from(v)).copied() }
    /// # }
    /// let gate = StageGate::new(On::No);
    /// assert!(!gate.wait_for_timeout(On::Yes, Duration::ZERO));
    /// ```
    pub fn wait_for_timeout(&self, stage: S, timeout: Duration) -> bool {
        // The check runs under the notifier's lock, so it compares codes and
        // calls no user code (`to_u8` runs here, before the wait).
        let code = stage.to_u8();
        self.notifier
            .wait_until_timeout(|| self.is_at(code), timeout)
    }

    /// Completes once the gate is in `stage`. Runtime-agnostic. The same
    /// caveat as [`wait_for`](Self::wait_for) applies to stages that can be
    /// skipped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future removes its waker and consumes
    /// nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use acqrel_core::{Stage, StageGate};
    /// # #[derive(Debug, Clone, Copy, PartialEq, Eq)] enum On { No, Yes }
    /// # impl Stage for On {
    /// #     fn to_u8(self) -> u8 { self as u8 }
    /// #     fn from_u8(v: u8) -> Option<Self> { [On::No, On::Yes].get(usize::from(v)).copied() }
    /// # }
    /// # pollster::block_on(async {
    /// let gate = StageGate::new(On::No);
    /// gate.advance(On::No, On::Yes).unwrap();
    /// gate.reached(On::Yes).await;
    /// # });
    /// ```
    pub async fn reached(&self, stage: S) {
        // As in `wait_for_timeout`: codes under the lock, no user code.
        let code = stage.to_u8();
        self.notifier.until(|| self.is_at(code)).await;
    }

    /// Whether the gate holds `code`: the check the notifier runs under its
    /// lock, which must not call [`Stage`]'s methods (user code that may
    /// panic and would poison the lock with a waiter still counted).
    fn is_at(&self, code: u8) -> bool {
        // Acquire: pairs with the Release half of the successful
        // compare-exchange in `advance`, as in `current`.
        self.stage.load(Ordering::Acquire) == code
    }

    /// Completes with the first stage that satisfies `pred`: the async
    /// [`wait_until`](Self::wait_until). Waiting for "this stage or any
    /// later one" this way cannot miss a stage the gate passed through
    /// quickly, as [`reached`](Self::reached) can. Runtime-agnostic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future removes its waker and consumes
    /// nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use acqrel_core::{Stage, StageGate};
    /// # #[derive(Debug, Clone, Copy, PartialEq, Eq)] enum Step { One, Two, Three }
    /// # impl Stage for Step {
    /// #     fn to_u8(self) -> u8 { self as u8 }
    /// #     fn from_u8(v: u8) -> Option<Self> {
    /// #         [Step::One, Step::Two, Step::Three].get(usize::from(v)).copied()
    /// #     }
    /// # }
    /// # pollster::block_on(async {
    /// let gate = StageGate::new(Step::One);
    /// gate.advance(Step::One, Step::Two).unwrap();
    /// gate.advance(Step::Two, Step::Three).unwrap();
    /// // `reached(Step::Two)` would wait forever now; this does not.
    /// assert_eq!(gate.until(|s| s as u8 >= Step::Two as u8).await, Step::Three);
    /// # });
    /// ```
    pub async fn until(&self, mut pred: impl FnMut(S) -> bool) -> S {
        loop {
            // `pred` is called here, never under the notifier's lock.
            let seen = self.current();
            if pred(seen) {
                return seen;
            }
            let code = seen.to_u8();
            // Acquire: pairs with the Release half of `advance`.
            self.notifier
                .until(|| self.stage.load(Ordering::Acquire) != code)
                .await;
        }
    }
}

fn decode<S: Stage>(code: u8) -> S {
    S::from_u8(code).unwrap_or_else(|| {
        panic!("Stage::from_u8 rejected code {code} produced by Stage::to_u8: the impl does not round-trip")
    })
}

impl<S: Stage + fmt::Debug> fmt::Debug for StageGate<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageGate")
            .field("stage", &self.current())
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Life {
        Init,
        Running,
        Stopped,
    }

    impl Stage for Life {
        fn to_u8(self) -> u8 {
            self as u8
        }
        fn from_u8(v: u8) -> Option<Self> {
            [Life::Init, Life::Running, Life::Stopped]
                .get(usize::from(v))
                .copied()
        }
        fn can_advance(from: Self, to: Self) -> bool {
            (to as u8) > (from as u8)
        }
    }

    #[test]
    fn forbidden_transition_leaves_gate_untouched() {
        let gate = StageGate::new(Life::Running);
        assert_eq!(
            gate.advance(Life::Running, Life::Init),
            Err(AdvanceError::NotAllowed {
                from: Life::Running,
                to: Life::Init
            })
        );
        assert_eq!(gate.current(), Life::Running);
    }

    #[test]
    fn mismatch_reports_found_stage() {
        let gate = StageGate::new(Life::Init);
        let err = gate.advance(Life::Running, Life::Stopped).unwrap_err();
        assert_eq!(err.found(), Some(&Life::Init));
        assert_eq!(err.to_string(), "stage gate is not in the expected stage");
    }

    #[test]
    fn wait_until_sees_a_skipped_over_stage_predicate() {
        let gate = std::sync::Arc::new(StageGate::new(Life::Init));
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.wait_until(|s| s as u8 >= Life::Running as u8))
        };
        gate.advance(Life::Init, Life::Stopped).unwrap();
        assert_eq!(waiter.join().unwrap(), Life::Stopped);
    }

    #[test]
    fn until_wakes_on_another_threads_advance_past_the_stage() {
        let gate = std::sync::Arc::new(StageGate::new(Life::Init));
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                pollster::block_on(gate.until(|s| s as u8 >= Life::Running as u8))
            })
        };
        gate.advance(Life::Init, Life::Stopped).unwrap();
        assert_eq!(waiter.join().unwrap(), Life::Stopped);
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Broken(u8);
    impl Stage for Broken {
        fn to_u8(self) -> u8 {
            self.0
        }
        fn from_u8(_: u8) -> Option<Self> {
            None
        }
    }

    #[test]
    #[should_panic(expected = "does not round-trip")]
    fn non_round_tripping_stage_panics_with_a_clear_message() {
        StageGate::new(Broken(1)).current();
    }

    /// A `Stage` whose decoding panics, as `decode` does for an impl that
    /// does not round-trip.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct PanickingDecode(u8);
    impl Stage for PanickingDecode {
        fn to_u8(self) -> u8 {
            self.0
        }
        fn from_u8(code: u8) -> Option<Self> {
            panic!("from_u8({code}) called")
        }
    }

    /// `wait_for_timeout` and `reached` used to call `from_u8` and
    /// `PartialEq` inside the check that the notifier runs under its lock: a
    /// panicking impl left the waiter counted and the lock poisoned.
    #[test]
    fn stage_code_never_runs_under_the_waiter_lock() {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        use std::sync::Arc;

        let gate = Arc::new(StageGate::new(PanickingDecode(1)));
        // Nothing under the lock decodes, so neither wait panics.
        assert!(!gate.wait_for_timeout(PanickingDecode(2), Duration::ZERO));
        assert!(gate.wait_for_timeout(PanickingDecode(1), Duration::ZERO));
        pollster::block_on(gate.reached(PanickingDecode(1)));
        // The user's panic outside the lock reaches the caller...
        assert!(catch_unwind(AssertUnwindSafe(|| gate.current())).is_err());
        // ...and leaves the waiter list usable: a blocked wait and a pending
        // future both see the next advance.
        let (thread, task) = {
            let (g1, g2) = (gate.clone(), gate.clone());
            (
                std::thread::spawn(move || {
                    g1.wait_for_timeout(PanickingDecode(2), Duration::from_secs(600))
                }),
                std::thread::spawn(move || pollster::block_on(g2.reached(PanickingDecode(2)))),
            )
        };
        gate.advance(PanickingDecode(1), PanickingDecode(2))
            .unwrap();
        assert!(thread.join().unwrap());
        task.join().unwrap();
    }
}
