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
//! # Memory
//!
//! At most `max_keys` entries. A denial that finds the map full first drops
//! the entries that have lapsed (at most once per lapse of the earliest
//! survivor, so a full map of live entries costs no repeated sweeps); if the
//! map is still full, the denial is not cached, and that key's next check
//! goes to Redis.

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use acqrel_ratelimit::NotUntil;
use dashmap::DashMap;

use crate::script::Reply;

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
    /// No sweep before this: the earliest lapse among the entries the last
    /// sweep kept. Taken only by a denial that finds the map full, never
    /// held while anything else is done.
    next_sweep: Mutex<Option<Instant>>,
}

impl<K: Hash + Eq> DenyCache<K> {
    pub(crate) fn new(max_keys: NonZeroUsize) -> Self {
        DenyCache {
            entries: DashMap::new(),
            max_keys: max_keys.get(),
            next_sweep: Mutex::new(None),
        }
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

    /// Records Redis's denial of `n` cells of `key`, sent at `sent`, under
    /// an interval of `t` ns and a burst of `burst`.
    pub(crate) fn insert(&self, key: K, sent: Instant, reply: &Reply, n: u32, t: u128, burst: u32) {
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
            lapses: sent
                .checked_add(wait)
                .unwrap_or(sent + Duration::from_secs(1 << 32)),
        };
        if self.entries.len() >= self.max_keys && !self.entries.contains_key(&key) {
            self.sweep(sent);
            if self.entries.len() >= self.max_keys {
                return;
            }
        }
        self.entries.insert(key, entry);
    }

    /// Drops the entries lapsed by `now`, unless the last sweep found none
    /// due yet.
    #[cold]
    fn sweep(&self, now: Instant) {
        {
            let next = self.next_sweep.lock().unwrap_or_else(|e| e.into_inner());
            if next.is_some_and(|next| now < next) {
                return;
            }
        }
        let mut earliest: Option<Instant> = None;
        self.entries.retain(|_, entry| {
            let keep = entry.lapses > now;
            if keep {
                earliest = Some(earliest.map_or(entry.lapses, |e| e.min(entry.lapses)));
            }
            keep
        });
        *self.next_sweep.lock().unwrap_or_else(|e| e.into_inner()) = earliest;
    }

    /// Forgets `key` (its bucket was refunded).
    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.remove(key);
    }

    /// Forgets every key (the quota changed).
    pub(crate) fn clear(&self) {
        self.entries.clear();
        *self.next_sweep.lock().unwrap_or_else(|e| e.into_inner()) = None;
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
        // 3 cells denied at 1000 ms until 1030 ms, T = 10 ms: one cell from
        // 1010 ms, five from 1050 ms.
        cache.insert("k", sent, &denial(1000, 1030), 3, 10 * MS, 5);
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
        cache.remove("k");
        assert!(cache.denies("k", 5, sent).is_none());
    }

    #[test]
    fn a_full_cache_drops_lapsed_entries_and_otherwise_caches_nothing_new() {
        let cache = DenyCache::new(NonZeroUsize::new(2).unwrap());
        let sent = Instant::now();
        cache.insert("a", sent, &denial(0, 10), 1, 10 * MS, 1);
        cache.insert("b", sent, &denial(0, 100), 1, 10 * MS, 1);
        cache.insert("c", sent, &denial(0, 100), 1, 10 * MS, 1);
        assert_eq!(cache.len(), 2);
        assert!(cache.denies("c", 1, sent).is_none());
        let later = sent + Duration::from_millis(20);
        cache.insert("c", later, &denial(20, 100), 1, 10 * MS, 1);
        assert_eq!(cache.len(), 2);
        assert!(cache.denies("a", 1, later).is_none());
        assert!(cache.denies("c", 1, later).is_some());
        cache.clear();
        assert_eq!(cache.len(), 0);
    }
}
