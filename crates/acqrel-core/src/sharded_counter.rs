//! A striped counter for hot paths (the guide's Case Study A.5 sharded
//! counter, its per-P shards; Java's `LongAdder` is the model).
//!
//! The guide pins the goroutine to its P (`runtime_procPin`, an internal
//! function) to pick a shard. Rust has no processor pinning, so each thread
//! draws a *probe* once, from a global counter, and always adds to the shard
//! its probe selects. Threads created one after another get consecutive
//! probes, hence different shards while there are no more threads than
//! shards.
//!
//! # Orderings
//!
//! A count publishes no data: nobody reads a count to decide that some other
//! memory is ready. So [`ShardedCounter::add`] is a Relaxed `fetch_add` and
//! [`ShardedCounter::sum`] loads each shard with Relaxed. Two facts carry the
//! guarantees:
//!
//! - **No lost increment.** Each `add` is one read-modify-write; the
//!   read-modify-writes of one shard are totally ordered (its modification
//!   order) whatever their memory ordering, and each reads the value the
//!   previous one wrote.
//! - **Exact after join.** Once the adding threads are joined (or have
//!   otherwise synchronized with the summing thread), every `add` they made
//!   happens-before the summing loads, so coherence makes each load return
//!   at least that shard's final value.
//!
//! While adds run, `sum` is **not linearizable**: it reads the shards one
//! after another, so the total may match no single instant (it can count an
//! `add` that started after one that it misses). This is the guide's "fine
//! for monitoring" trade-off.
//!
//! The probe counter and the per-thread probe only spread threads over
//! shards; no guarantee depends on which shard a thread picks. Under loom
//! they are std's (loom atomics cannot live in a `static`), and loom runs
//! its model threads on one OS thread, so they all share one probe and one
//! shard. The models pin the counter to one shard anyway: all adds on one
//! atomic is the case that checks the read-modify-write.
//!
//! The loom model `tests/loom_sharded_counter.rs` fails if `add`'s
//! `fetch_add` is split into a load and a store.

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroUsize;

use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicU64, Ordering};

/// The most shards [`ShardedCounter::new`] chooses on its own.
const DEFAULT_MAX_SHARDS: usize = 64;

/// The value of [`PROBE`] before the thread has drawn one.
const UNASSIGNED: usize = usize::MAX;

/// Hands out probes, one per thread that ever adds to a sharded counter.
///
/// std's atomic, not the shim's: it only spreads threads over shards (see
/// the module's `# Orderings`), and loom atomics cannot live in a `static`.
static NEXT_PROBE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    /// This thread's probe, drawn from [`NEXT_PROBE`] on its first add.
    static PROBE: Cell<usize> = const { Cell::new(UNASSIGNED) };
}

/// This thread's probe, drawing one first if it has none.
#[inline]
fn probe() -> usize {
    // `try_with` fails only while the thread's locals are being destroyed;
    // a `Cell<usize>` has no destructor, so it does not in practice, and
    // shard 0 would do if it did.
    PROBE
        .try_with(|probe| match probe.get() {
            UNASSIGNED => draw_probe(probe),
            assigned => assigned,
        })
        .unwrap_or(0)
}

#[cold]
fn draw_probe(slot: &Cell<usize>) -> usize {
    // Relaxed: the probe only chooses a shard; it publishes nothing and no
    // guarantee depends on its value. If it ever equals `UNASSIGNED` (after
    // 2^64 threads), the thread simply draws again on its next add.
    let drawn = NEXT_PROBE.fetch_add(1, Ordering::Relaxed);
    slot.set(drawn);
    drawn
}

/// The shard count [`ShardedCounter::new`] uses: the available parallelism
/// rounded up to a power of two, between 1 and 64.
pub(crate) fn default_shards() -> NonZeroUsize {
    let parallelism = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    shard_count(parallelism.min(DEFAULT_MAX_SHARDS))
}

/// `requested` rounded up to a power of two, at most
/// [`ShardedCounter::MAX_SHARDS`].
fn shard_count(requested: usize) -> NonZeroUsize {
    let count = requested
        .clamp(1, ShardedCounter::MAX_SHARDS)
        .next_power_of_two();
    NonZeroUsize::new(count).unwrap_or(NonZeroUsize::MIN)
}

/// A counter striped over cache-padded shards, so that threads incrementing
/// it at once do not fight over one cache line.
///
/// Replaces the guide's sharded counter (Case Study A.5: 64 `atomic.Int64`
/// shards indexed by the pinned P) and a single `AtomicU64` hammered by every
/// request handler. [`add`](Self::add) is one uncontended atomic add on the
/// calling thread's shard; [`sum`](Self::sum) adds up the shards.
///
/// Counts publish no data, so there is no release or acquire here (see the
/// module's `# Orderings`): use the counter for statistics, never to signal
/// that other memory is ready.
///
/// # Consistency
///
/// While other threads add, [`sum`](Self::sum) is *not linearizable*: it may
/// match no single instant. Once the adders have stopped and been joined it
/// is exact.
///
/// # Overflow
///
/// Counts wrap at 2⁶⁴: [`sum`](Self::sum) is the total of every `add`
/// modulo 2⁶⁴, exactly. A `u64` event count never gets there in practice (a
/// billion increments a second take 584 years), and wrapping keeps `add` a
/// single `fetch_add`; saturating would need a compare-exchange loop per add
/// and still could not saturate the total across shards consistently.
///
/// # Examples
///
/// ```
/// use acqrel_core::ShardedCounter;
///
/// let requests = ShardedCounter::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             for _ in 0..1000 {
///                 requests.inc();
///             }
///         });
///     }
/// });
/// // Every adder has been joined: the sum is exact.
/// assert_eq!(requests.sum(), 4000);
/// ```
pub struct ShardedCounter {
    /// A power of two of them, each on its own cache line.
    shards: Box<[CachePadded<AtomicU64>]>,
}

impl ShardedCounter {
    /// The most shards a counter has: [`with_shards`](Self::with_shards)
    /// clamps larger requests to it. More shards than threads only cost
    /// memory and time in [`sum`](Self::sum).
    pub const MAX_SHARDS: usize = 1024;

    /// Creates a counter at zero with one shard per available CPU (the
    /// available parallelism rounded up to a power of two, at most 64).
    ///
    /// # Examples
    ///
    /// ```
    /// let counter = acqrel_core::ShardedCounter::new();
    /// assert_eq!(counter.sum(), 0);
    /// assert!(counter.shards().is_power_of_two());
    /// ```
    pub fn new() -> Self {
        Self::with_shards(default_shards())
    }

    /// Creates a counter at zero with `shards` shards, rounded up to a power
    /// of two and clamped to [`MAX_SHARDS`](Self::MAX_SHARDS).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use acqrel_core::ShardedCounter;
    ///
    /// let counter = ShardedCounter::with_shards(NonZeroUsize::new(3).unwrap());
    /// assert_eq!(counter.shards(), 4);
    /// ```
    pub fn with_shards(shards: NonZeroUsize) -> Self {
        let count = shard_count(shards.get()).get();
        ShardedCounter {
            shards: (0..count)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        }
    }

    /// The number of shards (a power of two).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// let counter = acqrel_core::ShardedCounter::with_shards(NonZeroUsize::MIN);
    /// assert_eq!(counter.shards(), 1);
    /// ```
    #[inline]
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Adds `n`, wrapping at 2⁶⁴ (see [Overflow](ShardedCounter#overflow)). Lock-free:
    /// one atomic add on this thread's shard.
    ///
    /// # Examples
    ///
    /// ```
    /// let bytes = acqrel_core::ShardedCounter::new();
    /// bytes.add(512);
    /// bytes.add(512);
    /// assert_eq!(bytes.sum(), 1024);
    /// ```
    #[inline]
    pub fn add(&self, n: u64) {
        // The length is a power of two, so the mask picks a valid index.
        let shard = &self.shards[probe() & (self.shards.len() - 1)];
        // Relaxed: a count publishes nothing; the read-modify-write alone
        // makes every add count. Pairs with no acquire: `sum` sees it through
        // coherence once the adder is joined (module's `# Orderings`).
        shard.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    ///
    /// # Examples
    ///
    /// ```
    /// let hits = acqrel_core::ShardedCounter::new();
    /// hits.inc();
    /// assert_eq!(hits.sum(), 1);
    /// ```
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The total of every [`add`](Self::add), modulo 2⁶⁴.
    ///
    /// Exact once the adding threads have been joined. While they run it is
    /// not linearizable: it reads the shards one by one, so the result may
    /// match no single instant.
    ///
    /// # Examples
    ///
    /// ```
    /// let counter = acqrel_core::ShardedCounter::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| counter.add(2));
    ///     s.spawn(|| counter.add(3));
    /// });
    /// assert_eq!(counter.sum(), 5);
    /// ```
    pub fn sum(&self) -> u64 {
        self.shards
            .iter()
            // Relaxed: pairs with no release; the adds publish nothing. What
            // makes the sum exact after a join is the join's happens-before.
            .map(|shard| shard.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

impl Default for ShardedCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedCounter")
            .field("sum", &self.sum())
            .field("shards", &self.shards())
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    fn shards(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[test]
    fn shard_counts_are_powers_of_two_within_bounds() {
        assert_eq!(ShardedCounter::with_shards(shards(1)).shards(), 1);
        assert_eq!(ShardedCounter::with_shards(shards(2)).shards(), 2);
        assert_eq!(ShardedCounter::with_shards(shards(5)).shards(), 8);
        assert_eq!(
            ShardedCounter::with_shards(shards(usize::MAX)).shards(),
            ShardedCounter::MAX_SHARDS
        );
        let default = ShardedCounter::new().shards();
        assert!(default.is_power_of_two() && default <= DEFAULT_MAX_SHARDS);
    }

    #[test]
    fn add_u64_max_twice_wraps() {
        let counter = ShardedCounter::with_shards(shards(4));
        counter.add(u64::MAX);
        counter.add(u64::MAX);
        // 2 * (2^64 - 1) mod 2^64
        assert_eq!(counter.sum(), u64::MAX - 1);
    }

    #[test]
    fn wrapping_is_exact_across_shards() {
        let counter = ShardedCounter::with_shards(shards(2));
        // Whether or not the two threads share a shard, the total wraps the
        // same way.
        std::thread::scope(|s| {
            s.spawn(|| counter.add(u64::MAX));
            s.spawn(|| counter.add(2));
        });
        assert_eq!(counter.sum(), 1);
    }

    #[test]
    fn a_thread_keeps_its_probe() {
        let first = probe();
        assert_ne!(first, UNASSIGNED);
        assert_eq!(probe(), first);
        let other = std::thread::spawn(probe).join().unwrap();
        assert_ne!(other, first);
    }

    #[test]
    fn debug_shows_the_sum() {
        let counter = ShardedCounter::with_shards(shards(2));
        counter.add(7);
        assert_eq!(
            format!("{counter:?}"),
            "ShardedCounter { sum: 7, shards: 2 }"
        );
        assert_eq!(ShardedCounter::default().sum(), 0);
    }
}
