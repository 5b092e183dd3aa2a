//! [`OnceMap`]: blocking per-key lazy initialization that retries after an
//! error or a panic (Go's `sync.Map` of per-entry `sync.Once`s, which cache
//! a failed initialization forever, done the other way).
//!
//! # Protocol
//!
//! The map is a `Mutex<HashMap<K, Slot<V>>>`. A slot holds the key's cell,
//! an `Arc<TryOnce<V>>` (`acqrel_core::TryOnce`: one initializer at a time,
//! blocking waiters, retry after failure), and `pending`, a count kept
//! under the map lock. The lock is held only to find, insert or remove a
//! slot and to change `pending`: never while an initializer runs, and never
//! while a user value is cloned or dropped (only `K`'s `Hash` and `Eq` run
//! under it). Keys therefore initialize in parallel, and an initializer may
//! use the map for other keys.
//!
//! A caller of `get_or_try_init` *claims* the key's cell under the lock,
//! inserting a fresh slot if there is none:
//!
//! * If the cell is complete, the caller takes an `Arc` of it and reads the
//!   value after unlocking. A complete cell stays complete: it can leave the
//!   map only through [`OnceMap::remove`].
//! * Otherwise the caller also adds one to `pending`, then (unlocked) runs
//!   `TryOnce::get_or_try_init`: it runs its initializer, or waits for the
//!   one running and then gets its value or, if that one failed, competes
//!   to run its own.
//!
//! `pending` counts the claimants that have not *withdrawn*. A claimant
//! that ends with the value keeps its count forever; one that ends with an
//! error or a panic withdraws: under the lock, and only if the map still
//! holds the very cell it claimed (`Arc::ptr_eq`; a cell detached by
//! `remove` is no longer the map's business), it subtracts one, and if
//! `pending` is then zero it removes the slot. Hence:
//!
//! * **No failure leaves an entry behind.** The last claimant of a cell
//!   that never completed finds `pending == 0` and removes it. The slot
//!   stays while anyone else holds a claim, because that claimant will run
//!   its own initializer and either complete the cell or withdraw in turn.
//! * **No complete cell is ever removed by a failure.** A claimant that got
//!   the value never withdraws, so a complete cell's `pending` stays above
//!   zero. (The initializer that completed it was a claimant; so is every
//!   caller that waited for it.)
//! * **No value is lost to a detached cell.** The race "a waiter takes the
//!   cell, the failing initializer removes the slot, the waiter completes a
//!   cell that is no longer in the map" cannot happen: the waiter's claim
//!   and the failing initializer's decision are both made under the lock,
//!   so either the claim came first (and `pending` stays above zero, the
//!   slot stays) or the removal did (and the waiter finds no slot and
//!   inserts a fresh one).
//!
//! `Arc::strong_count` would not do instead of `pending`: callers that read
//! a complete cell drop their `Arc` without the lock, so the count read
//! under the lock can be stale, and with it the cell's state.
//!
//! # Orderings
//!
//! This module has no atomics of its own. The map lock orders every slot
//! insertion, claim, withdrawal and removal (each unlock releases, each lock
//! acquires), so `pending` is exact when read under it. The value is
//! published by the cell: `TryOnce`'s Release store of its complete state
//! after the initializer returns `Ok`, paired with the Acquire load in
//! `TryOnce::get` by which a claim (under the lock) or a reader (after it)
//! decides that the cell is complete. See `acqrel_core`'s `try_once.rs`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::hash::Hash;

use acqrel_core::TryOnce;

use crate::sync::{self, Arc, Mutex};

// ===== OnceMap =====

/// Per-key lazy initialization that retries after an error or a panic, with
/// different keys initialized in parallel.
///
/// The first caller of a key runs its initializer; concurrent callers of the
/// same key block until it finishes and then get a clone of its value. If
/// the initializer returns `Err`, that error goes to its own caller only,
/// and one of the blocked callers (or the next caller) runs *its*
/// initializer; a panic propagates to its caller and the others retry
/// likewise. Nothing is cached but values. Calls for different keys never
/// wait for each other's initializers: no map-wide lock is held while one
/// runs.
///
/// This is the per-host connection pool of the guide (a `sync.Map` of
/// per-entry `sync.Once`s), blocking and runtime-free. It replaces Go's
/// idiom, which remembers the first failure of each key forever, and a
/// `Mutex<HashMap<K, V>>` held across the initializer, which serializes
/// every key behind the slowest one. The **release** is the initializer
/// returning `Ok` (its value is published to every caller of the key); the
/// **acquire** is every call that returns the value.
///
/// Values are returned as clones: for big values, or values that are not
/// `Clone`, store an [`Arc<T>`](std::sync::Arc).
///
/// # Memory
///
/// The map holds one entry per initialized key, plus one per key being
/// initialized. A key whose initializer failed, and for which no other
/// caller is waiting, leaves no entry behind: keys that keep failing cannot
/// grow the map. Initialized values stay until [`remove`](Self::remove) or
/// until the map is dropped.
///
/// # Examples
///
/// A per-host connection pool where connecting can fail:
///
/// ```
/// use std::sync::Arc;
/// use acqrel_singleflight::OnceMap;
///
/// struct Pool { host: String }
///
/// fn connect(host: &str) -> Result<Arc<Pool>, String> {
///     if host.ends_with(".invalid") {
///         Err(format!("cannot resolve {host}"))
///     } else {
///         Ok(Arc::new(Pool { host: host.to_string() }))
///     }
/// }
///
/// let pools: OnceMap<String, Arc<Pool>> = OnceMap::new();
/// let key = "db.internal".to_string();
/// let pool = pools.get_or_try_init(&key, || connect(&key)).unwrap();
/// assert_eq!(pool.host, "db.internal");
/// // Later callers share the same pool.
/// let again = pools.get_or_try_init(&key, || connect(&key)).unwrap();
/// assert!(Arc::ptr_eq(&pool, &again));
///
/// // A failure is not cached, and leaves no entry behind.
/// let bad = "db.invalid".to_string();
/// assert!(pools.get_or_try_init(&bad, || connect(&bad)).is_err());
/// assert_eq!(pools.len(), 1);
/// ```
pub struct OnceMap<K, V> {
    /// The slots: one per key initialized or being initialized (see the
    /// module's `# Protocol`).
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K, V> OnceMap<K, V> {
    /// Creates an empty map.
    ///
    /// # Examples
    ///
    /// ```
    /// let map = acqrel_singleflight::OnceMap::<u32, u32>::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> OnceMap<K, V> {
        OnceMap {
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the number of entries: keys initialized plus keys being
    /// initialized.
    ///
    /// # Examples
    ///
    /// ```
    /// let map = acqrel_singleflight::OnceMap::new();
    /// map.get_or_init(&"a", || 1);
    /// assert!(map.get_or_try_init(&"b", || Err::<u32, _>("down")).is_err());
    /// assert_eq!(map.len(), 1); // the failed key left nothing behind
    /// ```
    pub fn len(&self) -> usize {
        sync::lock(&self.slots).len()
    }

    /// Returns whether the map has no entries (see [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// let map = acqrel_singleflight::OnceMap::new();
    /// assert!(map.is_empty());
    /// map.get_or_init(&1, || "one");
    /// assert!(!map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        sync::lock(&self.slots).is_empty()
    }
}

impl<K, V> OnceMap<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    /// Returns a clone of the key's value, running `init` first if the key
    /// has none. If another caller is initializing the key, blocks until it
    /// finishes.
    ///
    /// # Panics
    ///
    /// If `init` panics, the panic propagates to this caller and the key is
    /// left uninitialized (and, if no other caller is waiting for it,
    /// without an entry); waiting callers then run their own initializers.
    /// Calling `get_or_init` (or `get_or_try_init`) for the same key from
    /// inside `init` deadlocks; other keys are fine.
    ///
    /// # Examples
    ///
    /// ```
    /// let map = acqrel_singleflight::OnceMap::new();
    /// assert_eq!(map.get_or_init(&"answer", || 42), 42);
    /// assert_eq!(map.get_or_init(&"answer", || 0), 42);
    /// ```
    pub fn get_or_init(&self, key: &K, init: impl FnOnce() -> V) -> V {
        match self.get_or_try_init(key, || Ok::<V, Infallible>(init())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Returns a clone of the key's value, running `init` first if the key
    /// has none. If another caller is initializing the key, blocks until it
    /// finishes, then returns its value or, if it failed, runs `init`.
    ///
    /// # Errors
    ///
    /// Returns `init`'s error if this caller ran `init` and it failed. The
    /// error goes to this caller only and is not cached: the next caller of
    /// the key (or one already waiting) runs its own initializer.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init).
    ///
    /// # Examples
    ///
    /// ```
    /// let map = acqrel_singleflight::OnceMap::new();
    /// assert!(map.get_or_try_init(&"port", || "http".parse::<u16>()).is_err());
    /// assert_eq!(map.get_or_try_init(&"port", || "8080".parse::<u16>()), Ok(8080));
    /// assert_eq!(map.get_or_try_init(&"port", || "1".parse::<u16>()), Ok(8080));
    /// ```
    pub fn get_or_try_init<E>(&self, key: &K, init: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        match self.claim(key) {
            // Complete cells stay complete: `init` is not run.
            Claim::Complete(cell) => cell.get_or_try_init(init).cloned(),
            Claim::Pending(cell) => self.init_claimed(key, &cell, init),
        }
    }

    /// Returns a clone of the key's value if it is initialized. Never
    /// blocks on an initializer (only, briefly, on the map's lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let map = acqrel_singleflight::OnceMap::<String, u32>::new();
    /// assert_eq!(map.get("a"), None);
    /// map.get_or_init(&"a".to_string(), || 1);
    /// assert_eq!(map.get("a"), Some(1)); // looked up by `&str`
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let cell = sync::lock(&self.slots)
            .get(key)
            .map(|slot| Arc::clone(&slot.cell));
        // The clone (user code) runs with the lock released.
        cell?.get().cloned()
    }

    /// Removes the key's entry; returns its value if it was initialized.
    ///
    /// If the key is being initialized, the initialization is not waited
    /// for and `None` is returned: it goes on, and the callers already
    /// waiting for it get its value (or retry among themselves), but the
    /// entry is gone from the map, so later callers start afresh with their
    /// own initializers.
    ///
    /// # Examples
    ///
    /// ```
    /// let map = acqrel_singleflight::OnceMap::new();
    /// map.get_or_init(&"config", || 1);
    /// assert_eq!(map.remove(&"config"), Some(1));
    /// assert_eq!(map.remove(&"config"), None);
    /// // The next caller initializes again.
    /// assert_eq!(map.get_or_init(&"config", || 2), 2);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let removed = sync::lock(&self.slots).remove_entry(key);
        // The key and the cell are dropped here, with the lock released.
        let (_key, slot) = removed?;
        match Arc::try_unwrap(slot.cell) {
            Ok(mut cell) => cell.take(),
            Err(shared) => shared.get().cloned(),
        }
    }

    /// Claims the key's cell (see the module's `# Protocol`), inserting a
    /// fresh slot if the key has none.
    fn claim(&self, key: &K) -> Claim<V> {
        let hit = sync::lock(&self.slots).get_mut(key).map(Slot::claim);
        if let Some(claim) = hit {
            return claim;
        }
        // A miss: clone the key (user code) with the lock released, then
        // look again, since another caller may have inserted it meanwhile.
        let owned = key.clone();
        let mut fresh = Slot::new();
        let mut slots = sync::lock(&self.slots);
        let (claim, spare) = match slots.get_mut(key) {
            Some(slot) => (slot.claim(), Some(owned)),
            None => {
                let claim = fresh.claim();
                slots.insert(owned, fresh);
                (claim, None)
            }
        };
        drop(slots);
        // An unused key clone is dropped (user code) with the lock released.
        drop(spare);
        claim
    }

    /// Runs `TryOnce::get_or_try_init` on a cell claimed while it was not
    /// complete, withdrawing the claim if this caller ends without the
    /// value.
    #[cold]
    fn init_claimed<E>(
        &self,
        key: &K,
        cell: &Arc<TryOnce<V>>,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        // Withdraws on `Err` (dropped by `?`) and on a panic (unwinding).
        let withdraw = Withdraw {
            map: self,
            key,
            cell,
        };
        let value = cell.get_or_try_init(init)?;
        // With the value, the claim is kept: see `# Protocol`.
        withdraw.keep_claim();
        Ok(value.clone())
    }

    /// Withdraws a claim on `cell` (see `# Protocol`): if the map still
    /// holds `cell` under `key`, counts the claim out, and removes the entry
    /// if it was the last.
    fn withdraw(&self, key: &K, cell: &Arc<TryOnce<V>>) {
        let mut slots = sync::lock(&self.slots);
        let removed = match slots.get_mut(key) {
            Some(slot) if Arc::ptr_eq(&slot.cell, cell) => {
                slot.pending -= 1;
                if slot.pending == 0 {
                    // Every claimant withdrew, so none got a value.
                    debug_assert!(slot.cell.get().is_none(), "a complete cell has claims");
                    slots.remove_entry(key)
                } else {
                    None
                }
            }
            // Removed (and perhaps replaced) by `remove`: nothing to count.
            _ => None,
        };
        drop(slots);
        // The removed key is dropped (user code) with the lock released.
        drop(removed);
    }
}

impl<K, V> Default for OnceMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for OnceMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnceMap")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

// ===== Slot =====

/// One key's entry in the map.
struct Slot<V> {
    /// The key's cell; shared with the callers that claimed it.
    cell: Arc<TryOnce<V>>,
    /// Claims taken while `cell` was not complete and not withdrawn. Read
    /// and written only under the map lock. Zero only in a fresh slot
    /// about to be claimed; a slot whose count falls to zero is removed.
    pending: usize,
}

impl<V> Slot<V> {
    /// A slot with an empty cell and no claims.
    fn new() -> Slot<V> {
        Slot {
            cell: Arc::new(TryOnce::new()),
            pending: 0,
        }
    }

    /// Claims the cell; called under the map lock.
    fn claim(&mut self) -> Claim<V> {
        let cell = Arc::clone(&self.cell);
        if self.cell.get().is_some() {
            Claim::Complete(cell)
        } else {
            self.pending += 1;
            Claim::Pending(cell)
        }
    }
}

/// A caller's claim on a key's cell.
enum Claim<V> {
    /// The cell was complete: nothing to count, nothing to withdraw.
    Complete(Arc<TryOnce<V>>),
    /// The cell was not complete: counted in the slot's `pending`.
    Pending(Arc<TryOnce<V>>),
}

/// Withdraws a pending claim when dropped: the claimant is leaving without
/// the value (its initializer failed or panicked).
struct Withdraw<'a, K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    map: &'a OnceMap<K, V>,
    key: &'a K,
    cell: &'a Arc<TryOnce<V>>,
}

impl<K, V> Withdraw<'_, K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    /// The claimant got the value: its claim stays counted.
    fn keep_claim(self) {
        // Holds only references: forgetting it leaks nothing.
        std::mem::forget(self);
    }
}

impl<K, V> Drop for Withdraw<'_, K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    fn drop(&mut self) {
        self.map.withdraw(self.key, self.cell);
    }
}
