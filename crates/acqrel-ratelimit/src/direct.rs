//! [`RateLimiter`]: one GCRA bucket in one `AtomicU64`, with quota changes
//! at runtime.
//!
//! # Orderings
//!
//! The state word (see `gcra.rs`) is read with Acquire and changed only by
//! compare-and-swap, so two checks can never both take the last cell: one
//! CAS wins, the other fails, re-reads and decides again. That is the whole
//! admission protocol; `tests/loom_direct.rs` checks that N racing checks on
//! a stopped clock admit exactly the burst.
//!
//! The quota lives beside the state in two parameter slots, written only by
//! [`RateLimiter::set_quota`] (serialized by a lock checks never take).
//! Quota number `e` lives in slot `e % 2`, and the state's epoch tag says
//! which quota its TAT was computed with. `set_quota` publishes quota
//! `e + 1`:
//!
//! 1. writes the slot `(e + 1) % 2` as a seqlock writer: its sequence word to
//!    `WRITING` (Relaxed), a Release fence, the parameters (Relaxed), then
//!    the sequence word to `e + 1` (Release);
//! 2. rescales the TAT (see `gcra::rescale`) and swaps the state to epoch
//!    `e + 1` by CAS (AcqRel).
//!
//! A check loads the state (Acquire), then reads the slot of the state's
//! epoch as a seqlock reader: the sequence word (Acquire), the parameters
//! (Relaxed), an Acquire fence, the sequence word again (Relaxed). The read
//! is good when both sequence readings name the state's epoch; otherwise a
//! newer quota is being written into that slot, which means the state has
//! already moved on, and the check starts over from a fresh state load. A
//! check therefore never waits for a writer (the slot a writer fills is
//! never the one the current state names), and never mixes two quotas: its
//! CAS expects the epoch it read the parameters for.
//!
//! The two publications overlap: the slot a state names is written before
//! the CAS that makes the state name it, so the state's Acquire load alone
//! makes it visible, and so does the Acquire read of the slot's sequence
//! word. Each still covers a case of its own once the 4-bit tag wraps (a
//! check stalled through 16 quota changes reads a sequence word with its
//! tag but of another quota); no loom model reaches those executions, as
//! `tests/loom_mutants.txt` explains. In that same stall a denial (which
//! writes nothing, so no CAS validates it) can name a wait computed with
//! the newer quota's parameters on the older state; an admission cannot.

use std::fmt;
use std::future::Future;

use acqrel_core::{Clock, MonotonicClock};

use crate::error::{InsufficientCapacity, NegativeOutcome, NotUntil};
use crate::gcra::{self, EPOCH_MASK, Params};
use crate::jitter::Jitter;
use crate::quota::Quota;
use crate::sync::atomic::{AtomicU64, Ordering, fence};
use crate::sync::{self, Mutex};

/// The sequence word of a slot being written.
const WRITING: u64 = u64::MAX;

/// One quota's parameters, readable without a lock (see the module docs).
struct Slot {
    /// The quota number held, or [`WRITING`].
    seq: AtomicU64,
    t: AtomicU64,
    burst: AtomicU64,
}

impl Slot {
    fn new(seq: u64, p: &Params) -> Self {
        Slot {
            seq: AtomicU64::new(seq),
            t: AtomicU64::new(p.t),
            burst: AtomicU64::new(u64::from(p.burst)),
        }
    }

    /// Step 1 of the module's `# Orderings`. Only `set_quota` calls this,
    /// with the writer lock held.
    fn write(&self, seq: u64, p: &Params) {
        // Relaxed: the fence below orders it before the parameter stores.
        self.seq.store(WRITING, Ordering::Relaxed);
        // Release fence: pairs with the Acquire fence in `read`. A reader
        // whose parameter loads see any store below also sees `WRITING` (or
        // later) in its second sequence load, and discards the read.
        fence(Ordering::Release);
        // Relaxed: published by the Release store of `seq` below.
        self.t.store(p.t, Ordering::Relaxed);
        self.burst.store(u64::from(p.burst), Ordering::Relaxed);
        // Release: pairs with the Acquire load of `seq` in `read`; a reader
        // that sees `seq` sees the parameters above.
        self.seq.store(seq, Ordering::Release);
    }

    /// The parameters of quota number `epoch` (compared on its tag bits),
    /// or `None` if the slot holds another quota or is being written.
    #[inline]
    fn read(&self, epoch_tag: u64) -> Option<Params> {
        // Acquire: pairs with the Release store of `seq` in `write`.
        let before = self.seq.load(Ordering::Acquire);
        // Relaxed: validated by the sequence check below.
        let t = self.t.load(Ordering::Relaxed);
        let burst = self.burst.load(Ordering::Relaxed);
        // Acquire fence: pairs with the Release fence in `write` (see there).
        fence(Ordering::Acquire);
        // Relaxed: ordered after the loads above by the fence.
        let after = self.seq.load(Ordering::Relaxed);
        // The tolerance and the unit follow from these two (a multiply and
        // a leading-zeros count): see `gcra::Params`.
        (before == after && before != WRITING && before & EPOCH_MASK == epoch_tag)
            .then(|| Params::new(t, u32::try_from(burst).unwrap_or(u32::MAX)))
    }
}

/// What a decision in [`RateLimiter::update`] came to.
enum Step<T> {
    /// Replace the TAT with this one, then return the value.
    Commit(u64, T),
    /// Return the value; the state stays as it is.
    Done(T),
}

/// The quota state `set_quota` keeps under its lock.
#[derive(Debug)]
struct Current {
    /// The number of the quota in force.
    epoch: u64,
    quota: Quota,
}

/// A lock-free rate limiter: one GCRA bucket in one `AtomicU64`.
///
/// Replaces the guide's token bucket packed into a `uint64` and updated by
/// CAS (whose 32-bit nanosecond offset wraps after 4.3 s), and the mutex
/// that Go's `x/time/rate.Limiter` takes on every call. The state is a
/// theoretical arrival time (60 bits of nanoseconds, or of a coarser unit
/// for burst tolerances past 9 years; see `gcra.rs`: 18 years of uptime)
/// tagged with the quota it was computed with. There is no release/acquire
/// pair to publish data: admission is decided by the compare-and-swap
/// alone, and the quota slots use a seqlock (see the module source).
///
/// - [`check`](Self::check) / [`check_n`](Self::check_n): admit now or say
///   when; a denial is a pure load (no write to the shared cache line).
/// - [`until_ready`](Self::until_ready) / [`until_n_ready`](Self::until_n_ready):
///   wait (tokio timer), optionally with [`Jitter`].
/// - [`refund`](Self::refund): give cells back, never above the burst.
/// - [`set_quota`](Self::set_quota): change rate and burst at runtime,
///   keeping the cells available (no fresh burst, no lost state).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use acqrel_core::ManualClock;
/// use acqrel_ratelimit::{Quota, RateLimiter};
///
/// let clock = ManualClock::new();
/// let quota = Quota::per_second(NonZeroU32::new(2).unwrap());
/// let limiter = RateLimiter::with_clock(quota, &clock);
/// assert!(limiter.check().is_ok());
/// assert!(limiter.check().is_ok());
/// let denied = limiter.check().unwrap_err();
/// assert_eq!(denied.wait_time(), Duration::from_millis(500));
/// clock.advance(Duration::from_millis(500));
/// assert!(limiter.check().is_ok());
/// ```
pub struct RateLimiter<C = MonotonicClock> {
    /// `gcra::pack(epoch tag, TAT)`; the TAT counts from `origin`.
    state: AtomicU64,
    slots: [Slot; 2],
    writer: Mutex<Current>,
    /// The clock reading when the limiter was made, in ns: the state's 60
    /// bits of time count from here, whatever the clock's own epoch.
    origin: u64,
    clock: C,
}

impl RateLimiter {
    /// A limiter with a full bucket, on a [`MonotonicClock`] started now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::{Quota, RateLimiter};
    /// let limiter = RateLimiter::new(Quota::per_minute(NonZeroU32::new(1).unwrap()));
    /// assert!(limiter.check().is_ok());
    /// assert!(limiter.check().is_err());
    /// ```
    pub fn new(quota: Quota) -> Self {
        RateLimiter::with_clock(quota, MonotonicClock::new())
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter with a full bucket on `clock`.
    ///
    /// # Examples
    ///
    /// See [`RateLimiter`].
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        let p = quota.params();
        RateLimiter {
            state: AtomicU64::new(gcra::pack(0, 0)),
            // Slot 1 is written before it is first named.
            slots: [Slot::new(0, &p), Slot::new(WRITING, &p)],
            writer: Mutex::new(Current { epoch: 0, quota }),
            origin: clock.now_nanos(),
            clock,
        }
    }

    /// The clock reading `reading` as the state counts time: nanoseconds
    /// since `origin` (a reading before `origin` counts as `origin`).
    #[inline]
    fn since_origin(&self, reading: u64) -> u64 {
        reading.saturating_sub(self.origin)
    }

    /// A denial, at the clock reading `reading`, of a request admissible
    /// from `earliest` (counted from `origin`), in the clock's own readings.
    #[inline]
    fn not_until(&self, earliest: u64, reading: u64) -> NotUntil {
        NotUntil::from_nanos(earliest.saturating_add(self.origin), reading)
    }

    /// The quota in force.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::{Quota, RateLimiter};
    /// let quota = Quota::per_second(NonZeroU32::new(3).unwrap());
    /// assert_eq!(RateLimiter::new(quota).quota(), quota);
    /// ```
    pub fn quota(&self) -> Quota {
        sync::lock(&self.writer).quota
    }

    /// Admits one cell now, or says when it would be.
    ///
    /// # Errors
    ///
    /// [`NotUntil`] when the bucket is empty.
    ///
    /// # Examples
    ///
    /// See [`RateLimiter`].
    #[inline]
    pub fn check(&self) -> Result<(), NotUntil> {
        // `check_n(1)` without its burst check: a burst is at least one
        // cell, so one cell is only ever not yet admissible.
        let reading = self.clock.now_nanos();
        let now = self.since_origin(reading);
        self.update(|p, tat| match gcra::admit(p, tat, now, 1) {
            Ok(new_tat) => Step::Commit(new_tat, Ok(())),
            // The deny path: no write.
            Err(earliest) => Step::Done(Err(self.not_until(earliest, reading))),
        })
    }

    /// Admits `n` cells at once, or none. `n == 0` is always admitted and
    /// changes nothing.
    ///
    /// # Errors
    ///
    /// [`NegativeOutcome::NotUntil`] when fewer than `n` cells are available
    /// now; [`NegativeOutcome::InsufficientCapacity`] when `n` is larger than
    /// the burst, which no wait can fix.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_core::ManualClock;
    /// use acqrel_ratelimit::{NegativeOutcome, Quota, RateLimiter};
    /// let limiter = RateLimiter::with_clock(
    ///     Quota::per_second(NonZeroU32::new(4).unwrap()),
    ///     ManualClock::new(),
    /// );
    /// assert_eq!(limiter.check_n(0), Ok(()));
    /// assert_eq!(limiter.check_n(4), Ok(()));
    /// assert!(matches!(limiter.check_n(1), Err(NegativeOutcome::NotUntil(_))));
    /// assert!(matches!(limiter.check_n(5), Err(NegativeOutcome::InsufficientCapacity { burst: 4 })));
    /// ```
    pub fn check_n(&self, n: u32) -> Result<(), NegativeOutcome> {
        if n == 0 {
            return Ok(());
        }
        let reading = self.clock.now_nanos();
        let now = self.since_origin(reading);
        self.update(|p, tat| {
            if n > p.burst {
                return Step::Done(Err(NegativeOutcome::InsufficientCapacity {
                    burst: p.burst,
                }));
            }
            match gcra::admit(p, tat, now, n) {
                Ok(new_tat) => Step::Commit(new_tat, Ok(())),
                // The deny path: no write.
                Err(earliest) => Step::Done(Err(self.not_until(earliest, reading).into())),
            }
        })
    }

    /// The loop of every check and refund: loads the state, reads the
    /// parameters of its quota (starting over if a newer quota is being
    /// published; see the module docs), and lets `decide` either commit a
    /// new TAT (by compare-and-swap, deciding again on the state found if
    /// that fails) or finish without writing.
    #[inline]
    fn update<T>(&self, mut decide: impl FnMut(&Params, u64) -> Step<T>) -> T {
        let mut state = self.load_state();
        loop {
            let (epoch, tat) = gcra::unpack(state);
            let Some(p) = self.params(epoch) else {
                // The state has moved on: the next load sees it, soon.
                sync::hint::spin_loop();
                state = self.load_state();
                continue;
            };
            match decide(&p, tat) {
                Step::Done(done) => return done,
                Step::Commit(new_tat, done) => {
                    match self.replace_state(state, gcra::pack(epoch, new_tat)) {
                        Ok(()) => return done,
                        Err(actual) => state = actual,
                    }
                }
            }
        }
    }

    /// The state word, for a decision on it.
    #[inline]
    fn load_state(&self) -> u64 {
        // Acquire: pairs with the AcqRel CAS in `set_quota` (and, through
        // the release sequence it heads, with every later CAS), so the slot
        // the state names is visible.
        self.state.load(Ordering::Acquire)
    }

    /// Replaces the state word `current` with `new`, or returns the state
    /// word found instead (to decide again on it). Every change of the state
    /// goes through here: admission is decided by this compare-and-swap.
    #[inline]
    fn replace_state(&self, current: u64, new: u64) -> Result<(), u64> {
        // AcqRel on success: the Release half publishes the slot written
        // before it, when `set_quota` calls this (pairs with `load_state`);
        // in `check_n` and `refund` it continues the release sequence of
        // that CAS for readers of this value (C++20 rules make any RMW do
        // that; the explicit ordering does not rely on it), and the Acquire
        // half keeps this thread's view current. Acquire on failure: the
        // value returned is used like `load_state`'s.
        self.state
            .compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
    }

    /// The parameters of the quota whose epoch tag is `epoch`, if its slot
    /// still holds it.
    #[inline]
    fn params(&self, epoch: u64) -> Option<Params> {
        let index = usize::from(epoch & 1 == 1);
        self.slots[index].read(epoch)
    }

    /// Gives `n` cells back (a request that was admitted but not carried
    /// out). The bucket never holds more than the burst.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_core::ManualClock;
    /// use acqrel_ratelimit::{Quota, RateLimiter};
    /// let limiter = RateLimiter::with_clock(
    ///     Quota::per_second(NonZeroU32::new(2).unwrap()),
    ///     ManualClock::new(),
    /// );
    /// limiter.check_n(2).unwrap();
    /// assert!(limiter.check().is_err());
    /// limiter.refund(5);
    /// assert_eq!(limiter.check_n(2), Ok(())); // two, not five
    /// assert!(limiter.check().is_err());
    /// ```
    pub fn refund(&self, n: u32) {
        let now = self.since_origin(self.clock.now_nanos());
        self.update(|p, tat| match gcra::refund(p, tat, now, n) {
            new_tat if new_tat == tat => Step::Done(()),
            new_tat => Step::Commit(new_tat, ()),
        });
    }

    /// Changes the rate and the burst from now on. The cells available stay
    /// available (capped at the new burst): raising the burst grants no
    /// fresh burst, and what was used stays used, at the new rate.
    ///
    /// Takes a lock that checks never take; concurrent checks keep going on
    /// the old quota until the switch, and never mix the two.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use acqrel_core::ManualClock;
    /// use acqrel_ratelimit::{Quota, RateLimiter};
    ///
    /// let clock = ManualClock::new();
    /// let limiter = RateLimiter::with_clock(Quota::per_second(NonZeroU32::new(1).unwrap()), &clock);
    /// limiter.check().unwrap(); // the bucket is empty
    /// limiter.set_quota(Quota::per_second(NonZeroU32::new(10).unwrap()));
    /// assert!(limiter.check().is_err()); // no fresh burst of 10
    /// clock.advance(Duration::from_millis(100));
    /// assert!(limiter.check().is_ok()); // but the new rate
    /// ```
    pub fn set_quota(&self, quota: Quota) {
        let mut current = sync::lock(&self.writer);
        let old = current.quota.params();
        let new = quota.params();
        let next = current.epoch.wrapping_add(1);
        // The slot of quota `next - 2`: no state names it any more.
        self.slots[usize::from(next & 1 == 1)].write(next, &new);
        let mut state = self.load_state();
        loop {
            let (_, tat) = gcra::unpack(state);
            let now = self.since_origin(self.clock.now_nanos());
            let new_tat = gcra::rescale(&old, &new, tat, now);
            // Publishes the slot written above (see `replace_state`).
            match self.replace_state(state, gcra::pack(next, new_tat)) {
                Ok(()) => break,
                Err(actual) => state = actual,
            }
        }
        current.epoch = next;
        current.quota = quota;
    }

    /// Waits until one cell is admitted, then takes it.
    ///
    /// Sleeps on tokio's timer (needs a runtime with time enabled) for the
    /// time the limiter's clock says is left, then checks again.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a cell is taken only when the future completes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::{Quota, RateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(1000).unwrap()));
    /// for _ in 0..1005 {
    ///     limiter.until_ready().await;
    /// }
    /// # });
    /// ```
    pub async fn until_ready(&self) {
        self.until_ready_with_jitter(Jitter::NONE).await;
    }

    /// [`until_ready`](Self::until_ready), adding a random delay of up to
    /// `jitter` to each sleep so that waiters woken together spread out.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as `until_ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use acqrel_ratelimit::{Jitter, Quota, RateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(1000).unwrap()));
    /// limiter.until_ready_with_jitter(Jitter::up_to(Duration::from_millis(1))).await;
    /// # });
    /// ```
    pub async fn until_ready_with_jitter(&self, jitter: Jitter) {
        loop {
            match self.check() {
                Ok(()) => return,
                Err(not_until) => sleep(not_until, jitter).await,
            }
        }
    }

    /// Waits until `n` cells are admitted at once, then takes them.
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] at once if `n` is larger than the burst.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`until_ready`](Self::until_ready).
    ///
    /// # Examples
    ///
    /// See [`InsufficientCapacity`].
    pub async fn until_n_ready(&self, n: u32) -> Result<(), InsufficientCapacity> {
        self.until_n_ready_with_jitter(n, Jitter::NONE).await
    }

    /// [`until_n_ready`](Self::until_n_ready) with [`Jitter`].
    ///
    /// # Errors
    ///
    /// As `until_n_ready`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`until_ready`](Self::until_ready).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use acqrel_ratelimit::{Jitter, Quota, RateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(1000).unwrap()));
    /// limiter.until_n_ready_with_jitter(10, Jitter::up_to(Duration::from_millis(1))).await.unwrap();
    /// # });
    /// ```
    pub async fn until_n_ready_with_jitter(
        &self,
        n: u32,
        jitter: Jitter,
    ) -> Result<(), InsufficientCapacity> {
        loop {
            match self.check_n(n) {
                Ok(()) => return Ok(()),
                Err(NegativeOutcome::NotUntil(not_until)) => sleep(not_until, jitter).await,
                Err(NegativeOutcome::InsufficientCapacity { burst }) => {
                    return Err(InsufficientCapacity { burst });
                }
            }
        }
    }
}

/// Sleeps for the wait a denial names, plus jitter.
fn sleep(not_until: NotUntil, jitter: Jitter) -> impl Future<Output = ()> {
    tokio::time::sleep(not_until.wait_time().saturating_add(jitter.sample()))
}

impl<C> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a diagnostic snapshot; nothing is read through it.
        let (epoch, tat) = gcra::unpack(self.state.load(Ordering::Relaxed));
        f.debug_struct("RateLimiter")
            .field("epoch_tag", &epoch)
            .field("tat_ns", &tat)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use acqrel_core::ManualClock;
    use std::num::NonZeroU32;

    fn per_second(n: u32) -> Quota {
        Quota::per_second(NonZeroU32::new(n).unwrap())
    }

    #[test]
    fn epochs_wrap_past_the_tag_bits() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_clock(per_second(1), &clock);
        for i in 0..40 {
            limiter.set_quota(per_second(1 + i % 3));
            assert_eq!(limiter.quota(), per_second(1 + i % 3));
        }
        assert!(limiter.check().is_ok());
    }

    #[test]
    fn a_slot_read_rejects_other_epochs_and_writes_in_progress() {
        let p = Params::new(10, 2);
        let slot = Slot::new(3, &p);
        assert_eq!(slot.read(3), Some(p));
        assert_eq!(slot.read(5), None);
        // Quota 19 has the same tag as quota 3.
        slot.write(19, &p);
        assert_eq!(slot.read(3), Some(p));
        slot.seq.store(WRITING, Ordering::Relaxed);
        assert_eq!(slot.read(3), None);
    }
}
