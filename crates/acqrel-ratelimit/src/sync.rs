//! The crate's only door to atomics and locks: std's, or loom's under
//! `--cfg acqrel_loom` so the models in `tests/loom_*.rs` see every
//! operation.

#![allow(unused_imports, dead_code)]

#[cfg(not(acqrel_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(acqrel_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

pub(crate) mod atomic {
    #[cfg(not(acqrel_loom))]
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

    #[cfg(acqrel_loom)]
    pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
}

pub(crate) mod hint {
    #[cfg(not(acqrel_loom))]
    pub(crate) use std::hint::spin_loop;

    /// Yields to the other threads: loom then stops returning the values
    /// the spinning thread has already seen, so a retry makes progress.
    #[cfg(acqrel_loom)]
    pub(crate) use loom::hint::spin_loop;
}

/// Locks `mutex`, ignoring poison: the locks here guard plain numbers that
/// are written whole, and no user code runs under them.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The keyed limiter's map of buckets: [`DashMap`](dashmap::DashMap), or,
/// under `--cfg acqrel_loom`, a stand-in whose shard locks are loom's, so
/// the models see the locks that order a bucket's insertion, use and
/// eviction (DashMap's own locks are invisible to loom). Only the API
/// `keyed.rs` uses.
pub(crate) mod map {
    #[cfg(not(acqrel_loom))]
    pub(crate) use dashmap::{DashMap as Map, mapref::entry::Entry};

    #[cfg(acqrel_loom)]
    pub(crate) use self::loom_map::{Entry, Map};

    #[cfg(acqrel_loom)]
    mod loom_map {
        use std::borrow::Borrow;
        use std::collections::HashMap;
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
        use std::ops::Deref;
        use std::sync::PoisonError;

        use loom::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

        /// Two shards, so that two keys can live under different locks
        /// (as in DashMap) and nothing but the protocol orders them.
        const SHARDS: usize = 2;

        /// A `HashMap` per shard, each behind a loom `RwLock`, taken as
        /// DashMap takes its shard locks: read for `get`, so that checks
        /// of one key race their compare-and-swaps, write for `entry` and
        /// `retain`.
        pub(crate) struct Map<K, V> {
            shards: [RwLock<HashMap<K, V>>; SHARDS],
        }

        impl<K: Hash + Eq, V> Map<K, V> {
            pub(crate) fn new() -> Self {
                Map {
                    shards: [(); SHARDS].map(|()| RwLock::new(HashMap::new())),
                }
            }

            /// The shard `key` lives in; a fixed hash, so every execution
            /// of a model puts each key in the same shard.
            fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, V>> {
                let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
                // Truncation is harmless: any bits pick a shard.
                #[allow(clippy::cast_possible_truncation)]
                &self.shards[hash as usize % SHARDS]
            }

            pub(crate) fn get<'a, Q>(&'a self, key: &'a Q) -> Option<Ref<'a, K, V, Q>>
            where
                K: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                let guard = self
                    .shard(key)
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                guard.contains_key(key).then_some(Ref { guard, key })
            }

            pub(crate) fn entry(&self, key: K) -> Entry<'_, K, V> {
                let guard = self
                    .shard(&key)
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if guard.contains_key(&key) {
                    Entry::Occupied(OccupiedEntry { guard, key })
                } else {
                    Entry::Vacant(VacantEntry { guard, key })
                }
            }

            /// Visits the shards in turn, each under its write lock.
            pub(crate) fn retain(&self, mut f: impl FnMut(&K, &mut V) -> bool) {
                for shard in &self.shards {
                    let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
                    shard.retain(|key, value| f(key, value));
                }
            }
        }

        /// A value found by [`Map::get`], its shard read-locked.
        pub(crate) struct Ref<'a, K, V, Q: ?Sized> {
            guard: RwLockReadGuard<'a, HashMap<K, V>>,
            key: &'a Q,
        }

        impl<K: Hash + Eq + Borrow<Q>, V, Q: Hash + Eq + ?Sized> Deref for Ref<'_, K, V, Q> {
            type Target = V;

            fn deref(&self) -> &V {
                &self.guard[self.key]
            }
        }

        pub(crate) enum Entry<'a, K, V> {
            Occupied(OccupiedEntry<'a, K, V>),
            Vacant(VacantEntry<'a, K, V>),
        }

        pub(crate) struct OccupiedEntry<'a, K, V> {
            guard: RwLockWriteGuard<'a, HashMap<K, V>>,
            key: K,
        }

        impl<K: Hash + Eq, V> OccupiedEntry<'_, K, V> {
            pub(crate) fn get(&self) -> &V {
                &self.guard[&self.key]
            }
        }

        pub(crate) struct VacantEntry<'a, K, V> {
            guard: RwLockWriteGuard<'a, HashMap<K, V>>,
            key: K,
        }

        impl<K: Hash + Eq, V> VacantEntry<'_, K, V> {
            pub(crate) fn into_key(self) -> K {
                self.key
            }

            pub(crate) fn insert(self, value: V) {
                let VacantEntry { mut guard, key } = self;
                guard.insert(key, value);
            }
        }
    }
}
