//! One shard of a [`Cache`](crate::Cache): its entries in a hash table
//! addressed by the hash the cache computed once per call, and the order
//! they were written in, for FIFO eviction. Everything here runs under the
//! shard's lock; nothing here runs user code but `K`'s `Eq` (values and
//! keys leave through [`Evicted`], dropped by the caller after unlocking).

use std::collections::VecDeque;
use std::sync::Arc;

use hashbrown::HashTable;

/// A cached outcome: a value, or (negative caching) the fetch's error.
pub(super) type Cached<V, E> = Result<Arc<V>, Arc<E>>;

/// What a shard let go of, to be dropped with no lock held.
pub(super) type Evicted<K, V, E> = Vec<(K, Cached<V, E>)>;

pub(super) struct Entry<K, V, E> {
    pub(super) key: K,
    pub(super) value: Cached<V, E>,
    /// Clock reading (ns) from which the entry is a miss.
    pub(super) expires_at: u64,
    /// The cache generation it was fetched in.
    pub(super) generation: u64,
    /// Its place in the write order; unique in the shard.
    stamp: u64,
}

impl<K, V, E> Entry<K, V, E> {
    pub(super) fn new(key: K, value: Cached<V, E>, expires_at: u64, generation: u64) -> Self {
        Entry {
            key,
            value,
            expires_at,
            generation,
            stamp: 0,
        }
    }

    pub(super) fn fresh(&self, now: u64, generation: u64) -> bool {
        self.generation == generation && now < self.expires_at
    }
}

pub(super) struct Shard<K, V, E> {
    entries: HashTable<Entry<K, V, E>>,
    /// `(hash, stamp)` of each write, oldest first. A record whose entry is
    /// gone or was rewritten (no entry has that stamp any more) is stale
    /// and skipped.
    order: VecDeque<(u64, u64)>,
    next_stamp: u64,
    /// This shard's share of the cache's entry cap.
    capacity: usize,
    /// Incremented by every invalidation of a key of this shard.
    pub(super) invalidations: u64,
}

impl<K: Eq, V, E> Shard<K, V, E> {
    pub(super) fn new(capacity: usize) -> Self {
        Shard {
            entries: HashTable::new(),
            order: VecDeque::new(),
            next_stamp: 0,
            capacity,
            invalidations: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn get(&self, hash: u64, key: &K) -> Option<&Entry<K, V, E>> {
        self.entries.find(hash, |entry| entry.key == *key)
    }

    /// Removes `key`'s entry, returning it for the caller to drop.
    pub(super) fn remove(&mut self, hash: u64, key: &K) -> Option<Entry<K, V, E>> {
        let found = self
            .entries
            .find_entry(hash, |entry| entry.key == *key)
            .ok()?;
        Some(found.remove().0)
    }

    /// Writes `entry` (replacing the key's entry, if any), then makes room:
    /// drops the entries at the front of the write order that are stale
    /// (expired at `now`, or of another generation than `generation`), then
    /// the oldest ones while over capacity. `rehash` gives an entry's hash
    /// when the table grows.
    pub(super) fn insert(
        &mut self,
        hash: u64,
        mut entry: Entry<K, V, E>,
        now: u64,
        generation: u64,
        rehash: impl Fn(&Entry<K, V, E>) -> u64,
        evicted: &mut Evicted<K, V, E>,
    ) {
        entry.stamp = self.next_stamp;
        self.next_stamp += 1;
        self.order.push_back((hash, entry.stamp));
        match self.entries.entry(hash, |e| e.key == entry.key, &rehash) {
            hashbrown::hash_table::Entry::Occupied(mut occupied) => {
                let old = std::mem::replace(occupied.get_mut(), entry);
                evicted.push((old.key, old.value));
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(entry);
            }
        }
        self.make_room(now, generation, evicted);
    }

    fn make_room(&mut self, now: u64, generation: u64, evicted: &mut Evicted<K, V, E>) {
        while let Some(&(hash, stamp)) = self.order.front() {
            let over = self.entries.len() > self.capacity;
            match self.entries.find_entry(hash, |e| e.stamp == stamp) {
                // A live entry that is fresh, with room to spare: stop.
                Ok(live) if !over && live.get().fresh(now, generation) => break,
                Ok(live) => {
                    let (entry, _) = live.remove();
                    evicted.push((entry.key, entry.value));
                }
                // A stale record: its entry was rewritten or removed.
                Err(_) => {}
            }
            self.order.pop_front();
        }
        // Records of rewritten or removed keys pile up behind live ones:
        // compact when they outnumber the entries (amortized O(1)).
        if self.order.len() > 2 * self.entries.len() + 16 {
            let entries = &self.entries;
            self.order
                .retain(|&(hash, stamp)| entries.find(hash, |e| e.stamp == stamp).is_some());
        }
    }
}
