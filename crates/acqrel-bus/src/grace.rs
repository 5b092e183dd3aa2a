//! [`Grace`]: the bus's grace periods, which let `unsubscribe` wait for
//! the publishes that may still call a removed callback, at a cost of two
//! read-modify-writes per publish instead of per callback.
//!
//! # Orderings
//!
//! The whole protocol lives in one `AtomicU64`, so that every decision is a
//! read-modify-write of it and the argument needs nothing stronger than
//! acquire and release (loom models those exactly):
//!
//! ```text
//!  63     62      61 .. 31          30 .. 0
//! +-------+-------+----------------+----------------+
//! | epoch |waiting| count, parity 1 | count, parity 0 |
//! +-------+-------+----------------+----------------+
//! ```
//!
//! - A publish **enters** by adding one to the count of the current epoch
//!   bit's parity, in one compare-and-swap (AcqRel), so the parity it counts
//!   itself under is the one in force at that point of the word's
//!   modification order. Then it loads the subscriber list (Acquire, inside
//!   `Snapshot::load`) and calls the callbacks in it. It **leaves** by
//!   subtracting its one (`fetch_sub`, AcqRel).
//! - An unsubscribe publishes a list without the callback (Release, inside
//!   `Snapshot::update`), then [`Grace::synchronize`] runs two phases. The
//!   first flips the epoch bit and sets `waiting` (one `fetch_xor`,
//!   AcqRel) and waits until the parity it flipped away from has drained
//!   (Acquire loads); the second flips the epoch bit back (`fetch_xor`,
//!   AcqRel) and waits the same way for the other parity. Neither wait
//!   counts the publishes this very thread is inside.
//!
//! Take a publish and an unsubscribe. If the publish's entry comes after
//! the first flip in the word's modification order, it reads that flip's
//! value or a later one in its release sequence (every later write to the
//! word is a read-modify-write): the flip synchronizes with the entry, so
//! the new list happens before the publish loads the list, and the publish
//! loads that list (or a later one) and never sees the callback. If the
//! entry comes before the first flip, it is counted under one of the two
//! parities, and each flip reads the entry's value (or a later one): the
//! phase that waits for that parity waits until it leaves; the leave
//! (Release) synchronizes with the load that sees the count drop (Acquire),
//! so whatever the call did happens before `unsubscribe` returns. Each
//! callback also has a `removed` flag, set (Relaxed) before the flip and
//! loaded (Relaxed) before each call: a publish entering after the flip
//! sees it set by the same happens-before edge, so the flag alone would
//! also keep it from calling. The two are redundant on purpose (the flag
//! also lets a publish already holding the old list skip a dropped
//! subscriber sooner), which is why the mutants in `tests/loom_mutants.txt`
//! target the grace word, which both depend on.
//!
//! Why both parities: a publish entered before the first flip is not
//! always under the parity in force when the synchronizer starts. A
//! synchronizer running inside a publish leaves that publish out of its
//! waits, so when it returns the publish is still counted, under whichever
//! parity it entered with, and it may be the parity the next synchronizer
//! flips *to*. One flip and one wait would then skip it, and a callback
//! still running in it would outlive `unsubscribe` (issue 18, section 1).
//! Waiting for each parity in turn covers every publish that entered
//! before the first flip, whatever parity it is under, so the parity a
//! publish enters with only decides which phase waits for it: what the
//! flips buy is that the parity being waited for receives no new entries,
//! so each wait ends.
//!
//! Synchronizers run one at a time (a turn, `synchronizing`, held
//! throughout; one that runs inside a publish of the same bus only tries
//! to take it, and returns without waiting if another has it, since that
//! one may be waiting for the publish it is inside), so the parity a
//! synchronizer waits for receives no new entries while it waits and
//! drains in the time of the longest publish in progress; an unsubscribe
//! takes at most two such waits. A synchronizer inside a publish that has
//! the turn waits in both phases for the other threads' publishes only,
//! never for its own, so it cannot deadlock on itself. The waits sleep on
//! a condition variable. `waiting` is in the same word (set by the first
//! flip, left by the second, cleared after the second wait), so a leave
//! learns from its own `fetch_sub` whether a synchronizer may be asleep;
//! if so it takes the sleep lock before notifying, and the synchronizer
//! checks the count under that lock: the wake cannot fall between its
//! check and its sleep.

use std::cell::RefCell;
use std::fmt;

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{self, Condvar, Mutex};

#[cfg(not(acqrel_loom))]
std::thread_local! {
    /// The publishes this thread is inside, as `(grace address, parity)`,
    /// innermost last: an unsubscribe from inside a callback does not wait
    /// for the publishes it is itself part of.
    static INSIDE: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}
#[cfg(acqrel_loom)]
loom::thread_local! {
    static INSIDE: RefCell<Vec<(usize, usize)>> = RefCell::new(Vec::new());
}

/// The epoch bit of [`Grace::state`].
const EPOCH: u64 = 1 << 63;
/// Set while a synchronizer waits.
const WAITING: u64 = 1 << 62;
/// What a synchronizer's first flip toggles: the epoch, and `waiting`
/// (clear before, since synchronizers run one at a time). The second
/// toggles only [`EPOCH`].
const FLIP: u64 = EPOCH | WAITING;
/// Bits per parity's count.
const COUNT_BITS: u32 = 31;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// One publish in progress under `parity`.
fn one(parity: usize) -> u64 {
    1 << (COUNT_BITS * u32::from(parity == 1))
}

/// Publishes in progress under `parity`.
fn count(state: u64, parity: usize) -> u64 {
    (state >> (COUNT_BITS * u32::from(parity == 1))) & COUNT_MASK
}

fn parity(state: u64) -> usize {
    usize::from(state & EPOCH != 0)
}

/// A bus's grace-period word (see `# Orderings`) and what synchronizers
/// wait with.
pub(crate) struct Grace {
    state: AtomicU64,
    /// Whether a synchronizer has the turn; `turn` wakes the next.
    synchronizing: Mutex<bool>,
    turn: Condvar,
    sleep: Mutex<()>,
    drained: Condvar,
}

/// A publish inside a grace period: leaves it on drop.
pub(crate) struct Pass<'a> {
    grace: &'a Grace,
    parity: usize,
}

impl Grace {
    pub(crate) fn new() -> Self {
        Grace {
            state: AtomicU64::new(0),
            synchronizing: Mutex::new(false),
            turn: Condvar::new(),
            sleep: Mutex::new(()),
            drained: Condvar::new(),
        }
    }

    /// Enters a publish (see `# Orderings`).
    pub(crate) fn enter(&self) -> Pass<'_> {
        // Relaxed: only a guess for the compare-and-swap, which re-reads.
        let mut state = self.state.load(Ordering::Relaxed);
        let parity = loop {
            let parity = parity(state);
            // AcqRel on success: the Acquire half pairs with a flip's
            // Release (see `# Orderings`); the Release half with the flip's
            // Acquire. Relaxed on failure: the value is only retried with.
            match self.state.compare_exchange_weak(
                state,
                state + one(parity),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break parity,
                Err(now) => state = now,
            }
        };
        INSIDE.with(|inside| inside.borrow_mut().push((self.address(), parity)));
        Pass {
            grace: self,
            parity,
        }
    }

    fn leave(&self, parity: usize) {
        // AcqRel: the Release half pairs with the Acquire loads in
        // `synchronize`, publishing what the publish did; the Acquire half
        // makes the `waiting` it reads current with the flip that set it.
        let before = self.state.fetch_sub(one(parity), Ordering::AcqRel);
        if before & WAITING != 0 {
            drop(sync::lock(&self.sleep));
            self.drained.notify_all();
        }
    }

    /// Waits until every publish that entered before this call has left,
    /// but those this thread is inside. Callers take their callback off the
    /// list first.
    ///
    /// Two phases, one per parity: each flips the epoch and waits for the
    /// parity it left to drain. One phase is not enough: an earlier
    /// synchronizer from inside a publish leaves that publish counted under
    /// the parity it did not wait for, and the next one's single flip may
    /// be the one back to it (see `# Orderings`).
    ///
    /// From inside a publish of this bus, it waits only if no other
    /// synchronizer is running: that one may be waiting for the very
    /// publish this thread is inside, and waiting for it in turn would
    /// deadlock. Then it returns at once (see `Subscription::unsubscribe`).
    #[cold]
    pub(crate) fn synchronize(&self) {
        let address = self.address();
        let inside_a_publish =
            INSIDE.with(|inside| inside.borrow().iter().any(|&(grace, _)| grace == address));
        let Some(_turn) = self.take_turn(!inside_a_publish) else {
            return;
        };
        // `waiting` is clear here: only a synchronizer sets it, and they
        // run one at a time. The first flip sets it, the second leaves it.
        self.drain(self.flip(FLIP), address);
        self.drain(self.flip(EPOCH), address);
        // Release: nothing to publish, but keeps later entries ordered after
        // the waits; AcqRel for symmetry with the other read-modify-writes.
        self.state.fetch_and(!WAITING, Ordering::AcqRel);
    }

    /// Toggles `bits` (the epoch, and maybe `waiting`) and returns the
    /// parity in force before.
    fn flip(&self, bits: u64) -> usize {
        // AcqRel: pairs with the entries' compare-and-swaps both ways (see
        // `# Orderings`).
        parity(self.state.fetch_xor(bits, Ordering::AcqRel))
    }

    /// Waits until the count of `old`, the parity just flipped away from
    /// (no publish enters under it before the next flip), is down to the
    /// passes of this thread.
    fn drain(&self, old: usize, address: usize) {
        let own = INSIDE.with(|inside| {
            inside
                .borrow()
                .iter()
                .filter(|&&(grace, parity)| grace == address && parity == old)
                .count()
        });
        let own = u64::try_from(own).unwrap_or(u64::MAX);
        let mut sleep = sync::lock(&self.sleep);
        // Acquire: pairs with the Release half of `leave`'s `fetch_sub`.
        while count(self.state.load(Ordering::Acquire), old) > own {
            sleep = sync::wait(&self.drained, sleep);
        }
    }

    /// Makes this thread the one synchronizer: waits for the turn if
    /// `wait`, else returns `None` when another synchronizer has it.
    fn take_turn(&self, wait: bool) -> Option<Turn<'_>> {
        // The lock is held only to read and set `busy`, never across a
        // synchronizer's wait, so taking it never waits for long.
        let mut busy = sync::lock(&self.synchronizing);
        while *busy {
            if !wait {
                return None;
            }
            busy = sync::wait(&self.turn, busy);
        }
        *busy = true;
        Some(Turn { grace: self })
    }

    fn address(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }
}

/// The synchronizer's turn: handed on when dropped.
struct Turn<'a> {
    grace: &'a Grace,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *sync::lock(&self.grace.synchronizing) = false;
        self.grace.turn.notify_one();
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        INSIDE.with(|inside| {
            inside.borrow_mut().pop();
        });
        self.grace.leave(self.parity);
    }
}

impl fmt::Debug for Grace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a diagnostic snapshot.
        let state = self.state.load(Ordering::Relaxed);
        f.debug_struct("Grace")
            .field("parity", &parity(state))
            .field("in_progress", &(count(state, 0) + count(state, 1)))
            .finish_non_exhaustive()
    }
}
