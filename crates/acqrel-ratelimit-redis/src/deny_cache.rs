//! [`DenyCache`]: the denials Redis gave, kept so that the same key asked
//! again before its time is answered without a round trip.
//!
//! # Why it never admits more than the quota
//!
//! The cache only ever *denies*: a key it does not deny goes to Redis, which
//! decides as if the cache did not exist. What it must not do is deny a
//! request Redis would admit. When Redis denies `n` cells it names the
//! earliest time `E_n` they would be admitted, `TAT + n·T − tau`; from the
//! same TAT, `m` cells (`m <= burst`) are admitted from
//! `E_m = E_n + (m − n)·T`. The TAT only moves forward (other admissions)
//! unless someone refunds or the quota changes, so before `E_m` Redis
//! would deny `m` cells too. This client's own refunds and quota changes
//! clear the entries they touch; refunds made by *other* clients are not
//! seen, and their cells are then only used once the entry lapses (at most
//! one tolerance later): the cache can deny more than Redis would, never
//! less.
//!
//! Times: Redis's clock is only read inside the script, so the cache maps it
//! onto this process's monotonic clock at the instant the request was
//! *sent*, which is no later than the moment Redis read its clock. A local
//! estimate of Redis's time is therefore never behind the real one, so an
//! entry lapses no later than it should (given the two clocks run at the
//! same rate).
//!
//! # Invalidation
//!
//! A check in flight while this client refunds (or changes the quota) may
//! carry a denial computed before the refund, and arrive after the refund
//! cleared the entry. So every invalidation bumps `epoch` *after* the
//! refund's reply (the refund is applied in Redis by then) and then removes
//! the entry; a check reads `epoch` before it sends, and inserts its denial
//! only if `epoch` is still the same, read while it holds the key's shard
//! lock. Both `epoch` operations are SeqCst, and the map's shard locks order
//! the rest: if the insert reads the old epoch, the bump comes later in the
//! single total order, so the removal that follows it takes the shard lock
//! after the insert released it and removes the entry; if it reads the new
//! one, it inserts nothing. A denial the script computed before the refund
//! was sent before the refund's reply, so it read the old epoch and is
//! caught one way or the other. (A stale denial can therefore survive only
//! a refund made by another client, as said above.)
//!
//! # Memory
//!
//! At most `max_keys` entries, plus one per task inserting at the same
//! moment (the length is read, then the entry inserted). Each entry holds
//! its key (`K`, at most `max_key_len` bytes for byte keys) and 64 bytes.
//! A denial that finds the map full first drops the lapsed entries: at most
//! one sweep at a time, and none sooner than [`MIN_SWEEP_INTERVAL`] after
//! the last nor before the earliest lapse it found, so a full map of live
//! entries costs no repeated scans (a scan of 100 000 entries takes about a
//! millisecond, on the task that found the map full). If the map is still
//! full, the denial is not cached, and that key's next check goes to
//! Redis.

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use acqrel_ratelimit::NotUntil;
use dashmap::DashMap;

use crate::script::Reply;

/// The least time between two sweeps of a full map.
pub(crate) const MIN_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The invalidation count a check read before it was sent: its denial is
/// cached only if no invalidation happened since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Epoch(u64);

/// One cached denial.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// When the request was sent, on this process's clock.
    sent: Instant,
    /// Redis's clock when it denied.
    redis_now: Duration,
    /// The earliest time (Redis's clock, ns since the epoch) one cell is
    /// admitted, `E_1`; may be before `redis_now` (a request for fewer cells
    /// than denied was admissible already).
    earliest_one: i128,
    /// The emission interval in ns.
    t: i128,
    /// When the entry can deny nothing any more: `E_burst` on this
    /// process's clock.
    lapses: Instant,
}

impl Entry {
    /// Redis's time estimated from this process's `now`: never behind it.
    fn redis_time(&self, now: Instant) -> Duration {
        self.redis_now + now.saturating_duration_since(self.sent)
    }

    /// The denial of `n` cells at `now`, if Redis would deny them too.
    fn denies(&self, n: u32, now: Instant) -> Option<NotUntil> {
        let at = self.redis_time(now);
        let earliest = self.earliest_one + (i128::from(n) - 1) * self.t;
        let at_ns = i128::try_from(at.as_nanos()).unwrap_or(i128::MAX);
        (at_ns < earliest).then(|| NotUntil::new(nanos(earliest), at))
    }
}

/// A duration from a positive count of nanoseconds (saturating).
fn nanos(ns: i128) -> Duration {
    let ns = u128::try_from(ns).unwrap_or(0);
    Duration::new(
        u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX),
        u32::try_from(ns % 1_000_000_000).unwrap_or(0),
    )
}

/// The denials, by key, at most `max_keys` of them.
#[derive(Debug)]
pub(crate) struct DenyCache<K: Hash + Eq> {
    entries: DashMap<K, Entry>,
    max_keys: usize,
    /// Invalidations so far (refunds, quota changes); see the module docs.
    epoch: AtomicU64,
    /// `None` while a sweep runs; otherwise no sweep before the time held.
    /// Taken only to claim or release a sweep, never during one.
    next_sweep: Mutex<Option<Instant>>,
}

impl<K: Hash + Eq> DenyCache<K> {
    pub(crate) fn new(max_keys: NonZeroUsize) -> Self {
        DenyCache {
            entries: DashMap::new(),
            max_keys: max_keys.get(),
            epoch: AtomicU64::new(0),
            next_sweep: Mutex::new(Some(Instant::now())),
        }
    }

    /// The epoch a check reads before it sends.
    pub(crate) fn epoch(&self) -> Epoch {
        // SeqCst: see the module docs (against the bump in `invalidate`).
        Epoch(self.epoch.load(SeqCst))
    }

    /// The denial of `n` cells of `key` at `now`, if a cached one covers it.
    #[inline]
    pub(crate) fn denies<Q>(&self, key: &Q, n: u32, now: Instant) -> Option<NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entry = *self.entries.get(key)?;
        entry.denies(n, now)
    }

    /// Records Redis's denial of `n` cells of `key`, sent at `sent` when
    /// the epoch was `epoch`, under an interval of `t` ns and a burst of
    /// `burst`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &self,
        key: K,
        epoch: Epoch,
        sent: Instant,
        reply: &Reply,
        n: u32,
        t: u128,
        burst: u32,
    ) {
        let t = i128::try_from(t).unwrap_or(i128::MAX);
        let earliest_n = i128::try_from(reply.at.as_nanos()).unwrap_or(i128::MAX);
        let earliest_one = earliest_n.saturating_sub((i128::from(n) - 1).saturating_mul(t));
        let earliest_burst = earliest_one.saturating_add((i128::from(burst) - 1).saturating_mul(t));
        let redis_now = i128::try_from(reply.now.as_nanos()).unwrap_or(i128::MAX);
        let wait = nanos(earliest_burst.saturating_sub(redis_now));
        let entry = Entry {
            sent,
            redis_now: reply.now,
            earliest_one,
            t,
            // A wait past what an `Instant` holds (never, for tolerances
            // within 2^51 s) lapses at once: the entry is only a shortcut,
            // and the fallback must not overflow in turn.
            lapses: sent.checked_add(wait).unwrap_or(sent),
        };
        if self.entries.len() >= self.max_keys && !self.entries.contains_key(&key) {
            // Whatever lapsed by the time the check was sent has lapsed.
            self.sweep(sent);
            if self.entries.len() >= self.max_keys {
                return;
            }
        }
        // The shard's write lock is held from here to the insert.
        let slot = self.entries.entry(key);
        // SeqCst: see the module docs (against the bump in `invalidate`).
        if self.epoch.load(SeqCst) == epoch.0 {
            slot.insert(entry);
        }
    }

    /// Drops the entries lapsed by `now`, unless the last sweep found none
    /// due yet.
    #[cold]
    fn sweep(&self, now: Instant) {
        {
            let mut next = self.next_sweep.lock().unwrap_or_else(|e| e.into_inner());
            match *next {
                Some(next_at) if now >= next_at => *next = None,
                // Too soon, or another task is sweeping.
                _ => return,
            }
        }
        let mut earliest = now + MIN_SWEEP_INTERVAL;
        let mut survivor: Option<Instant> = None;
        self.entries.retain(|_, entry| {
            let keep = entry.lapses > now;
            if keep {
                survivor = Some(survivor.map_or(entry.lapses, |e| e.min(entry.lapses)));
            }
            keep
        });
        if let Some(survivor) = survivor {
            earliest = earliest.max(survivor);
        }
        *self.next_sweep.lock().unwrap_or_else(|e| e.into_inner()) = Some(earliest);
    }

    /// Forgets `key`, whose bucket was just refunded (call it once the
    /// refund's reply is in, or its call failed).
    pub(crate) fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // SeqCst: see the module docs (against the loads in `epoch` and
        // `insert`).
        self.epoch.fetch_add(1, SeqCst);
        self.entries.remove(key);
    }

    /// Forgets every key: the quota just changed.
    pub(crate) fn invalidate_all(&self) {
        // SeqCst: as in `invalidate`.
        self.epoch.fetch_add(1, SeqCst);
        self.entries.clear();
    }

    /// Lets the next sweep run from `at` (tests).
    #[cfg(test)]
    fn set_next_sweep(&self, at: Instant) {
        *self.next_sweep.lock().unwrap() = Some(at);
    }

    /// The number of keys held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u128 = 1_000_000;

    fn denial(now_ms: u64, earliest_ms: u64) -> Reply {
        Reply {
            admitted: false,
            now: Duration::from_millis(now_ms),
            at: Duration::from_millis(earliest_ms),
        }
    }

    #[test]
    fn a_denial_covers_smaller_and_larger_requests_until_their_own_earliest_time() {
        let cache = DenyCache::new(NonZeroUsize::new(4).unwrap());
        let sent = Instant::now();
        let e = cache.epoch();
        // 3 cells denied at 1000 ms until 1030 ms, T = 10 ms: one cell from
        // 1010 ms, five from 1050 ms.
        cache.insert("k", e, sent, &denial(1000, 1030), 3, 10 * MS, 5);
        let one = cache.denies("k", 1, sent).unwrap();
        assert_eq!(one.earliest_possible(), Duration::from_millis(1010));
        assert_eq!(one.wait_time(), Duration::from_millis(10));
        let five = cache.denies("k", 5, sent).unwrap();
        assert_eq!(five.wait_time(), Duration::from_millis(50));
        let later = sent + Duration::from_millis(10);
        assert!(cache.denies("k", 1, later).is_none());
        assert_eq!(
            cache.denies("k", 2, later).unwrap().wait_time(),
            Duration::from_millis(10)
        );
        assert!(cache.denies("other", 1, sent).is_none());
        cache.invalidate("k");
        assert!(cache.denies("k", 5, sent).is_none());
    }

    #[test]
    fn a_full_cache_drops_lapsed_entries_and_otherwise_caches_nothing_new() {
        let cache = DenyCache::new(NonZeroUsize::new(2).unwrap());
        let e = cache.epoch();
        // Entries lapsing 10 ms and 200 ms after `sent`.
        let sent = Instant::now();
        cache.insert("a", e, sent, &denial(0, 10), 1, 10 * MS, 1);
        cache.insert("b", e, sent, &denial(0, 200), 1, 10 * MS, 1);
        // Full: the sweep finds nothing lapsed, "c" is not cached.
        cache.insert("c", e, sent, &denial(0, 200), 1, 10 * MS, 1);
        assert_eq!(cache.len(), 2);
        assert!(cache.denies("c", 1, sent).is_none());
        // No second sweep before the minimum interval has passed.
        let later = sent + Duration::from_millis(20);
        cache.insert("c", e, later, &denial(20, 200), 1, 10 * MS, 1);
        assert!(cache.denies("c", 1, later).is_none());
        // Once it has, "a" (lapsed) is dropped and "c" takes its place.
        cache.set_next_sweep(sent);
        cache.insert("c", e, later, &denial(20, 200), 1, 10 * MS, 1);
        assert_eq!(cache.len(), 2);
        assert!(cache.denies("a", 1, later).is_none());
        assert!(cache.denies("c", 1, later).is_some());
        cache.invalidate_all();
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_denial_computed_before_a_refund_and_received_after_it_is_not_cached() {
        let cache = DenyCache::new(NonZeroUsize::new(4).unwrap());
        let sent = Instant::now();
        // The check reads the epoch and is sent; the refund lands and
        // invalidates; then the check's (stale) denial arrives.
        let before = cache.epoch();
        cache.invalidate("k");
        cache.insert("k", before, sent, &denial(0, 100), 1, 10 * MS, 5);
        assert!(cache.denies("k", 1, sent).is_none());
        // The same after a quota change.
        let before = cache.epoch();
        cache.invalidate_all();
        cache.insert("k", before, sent, &denial(0, 100), 1, 10 * MS, 5);
        assert_eq!(cache.len(), 0);
        // A check sent after the invalidation is cached.
        cache.insert("k", cache.epoch(), sent, &denial(0, 100), 1, 10 * MS, 5);
        assert!(cache.denies("k", 1, sent).is_some());
    }
}
