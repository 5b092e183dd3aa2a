//! [`Cache`]: the single-flight cache. Values (and, opt-in, errors) kept
//! for a TTL; misses coalesced through a flight table; memory bounded by a
//! hard entry cap.
//!
//! # Protocol
//!
//! Entries live in shards (`Mutex<Shard>`), each with its share of the
//! entry cap. Every entry records the cache **generation** it was fetched
//! in; [`Cache::invalidate_all`] only increments the generation, and an
//! entry of an older generation is a miss (O(1), whatever the size). The
//! flights are keyed by `(generation, key)`, so a get after
//! `invalidate_all` never joins a fetch started before it.
//!
//! A fetch stores its result only if, when it finishes (under the shard's
//! lock), neither the generation nor the shard's **invalidation count** has
//! moved since it started: [`Cache::invalidate`] increments the count of
//! the key's shard, so a fetch racing an invalidation of its key is never
//! stored (a fetch of another key of the same shard, finishing then, is not
//! stored either; it is still returned to its callers, and the next get
//! fetches again).
//!
//! # Orderings
//!
//! The generation is one `AtomicU64`, Relaxed everywhere: it publishes no
//! data, it is only compared. A get ordered after `invalidate_all` (by
//! whatever synchronization made it "after") reads the new generation or a
//! later one by coherence. The entries and counts are under the shard
//! locks.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroUsize;
use std::sync::Arc as StdArc;
use std::time::Duration;

use acqrel_core::{Clock, CoarseClock, ShardedCounter};

use crate::error::FlightError;
use crate::flight::{CancelPolicy, Hook, Settled, Table};
use crate::group::fly;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{self, Arc, Mutex};

mod shard;

use shard::{Cached, Entry, Evicted, Shard};

/// A single-flight cache: [`get_with`](Self::get_with) answers from the
/// cache, or runs one fetch per key for all concurrent callers and keeps
/// its value for a TTL.
///
/// Replaces the guide's singleflight-backed cache (a `sync.Map` of results
/// in front of a `singleflight.Group`), without its unbounded map. The
/// publication is each fetched value: **released** when the fetch stores it
/// under its shard's lock, **acquired** by a get taking that lock; waiters
/// of the fetch itself get it as [`Group::run`](crate::Group::run)'s
/// callers do.
///
/// Policies:
///
/// - **TTL**: a value is served for `ttl` after it was fetched, measured on
///   the cache's [`Clock`]. Errors are not kept unless
///   [`error_ttl`](CacheBuilder::error_ttl) is set (negative caching), and
///   are then served as the same [`FlightError::Failed`] for that long.
///   Panics and cancellations are never kept.
/// - **Memory**: at most `max_entries` entries, whatever the keys. A fetch
///   finishing into a full shard first drops the shard's entries that are
///   expired or invalidated, oldest first, then, if it is still full, the
///   entry written longest ago (FIFO: with one TTL, the one that expires
///   first). Hits write nothing, so no LRU order is kept.
/// - **Invalidation**: [`invalidate`](Self::invalidate) removes a key and
///   keeps a fetch in flight for it from being stored;
///   [`invalidate_all`](Self::invalidate_all) is O(1) (a generation count),
///   and no value fetched before it is served after it.
/// - **Cancellation** and **panics**: as [`Group`](crate::Group), whose
///   flight table this cache uses.
///
/// `V` is cloned out for each caller after the shard's lock is released
/// (the cache keeps it in an `Arc`); use `Arc<T>` for large values anyway,
/// so that the clone is cheap.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use acqrel_core::ManualClock;
/// use acqrel_singleflight::Cache;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = Arc::new(ManualClock::new()); // the fetches run on tasks: 'static
/// let cache: Cache<&str, u32, String, _> =
///     Cache::builder(Duration::from_secs(60), NonZeroUsize::new(1_000).unwrap())
///         .clock(Arc::clone(&clock))
///         .build();
/// assert_eq!(cache.get_with("k", || async { Ok(1) }).await, Ok(1));
/// assert_eq!(cache.get_with("k", || async { Ok(2) }).await, Ok(1)); // cached
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(cache.get_with("k", || async { Ok(3) }).await, Ok(3)); // expired
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.fetches), (1, 2, 2));
/// # });
/// ```
pub struct Cache<K, V, E, C = CoarseClock> {
    inner: Arc<Inner<K, V, E, C>>,
}

struct Inner<K, V, E, C> {
    shards: Box<[Mutex<Shard<K, V, E>>]>,
    hasher: RandomState,
    flights: Arc<Table<(u64, K), V, E>>,
    generation: AtomicU64,
    ttl: u64,
    error_ttl: Option<u64>,
    max_entries: usize,
    clock: C,
    hits: ShardedCounter,
    misses: ShardedCounter,
    coalesced: ShardedCounter,
    fetches: ShardedCounter,
}

/// Hit and miss counts of a [`Cache`], each a sum over threads.
///
/// # Examples
///
/// See [`Cache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Gets answered from the cache (cached errors included).
    pub hits: u64,
    /// Gets that went to a flight.
    pub misses: u64,
    /// Misses that joined a fetch another caller had started.
    pub coalesced: u64,
    /// Fetches started.
    pub fetches: u64,
}

/// The builder's type parameters, which it holds no value of.
type PhantomData<K, V, E> = std::marker::PhantomData<fn() -> (K, V, E)>;

/// Configures a [`Cache`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// use acqrel_singleflight::{Cache, CancelPolicy};
/// let cache: Cache<String, u32, std::io::Error> =
///     Cache::builder(Duration::from_secs(30), NonZeroUsize::new(10_000).unwrap())
///         .error_ttl(Duration::from_secs(1))
///         .cancel_policy(CancelPolicy::Detach)
///         .build();
/// assert!(cache.is_empty());
/// ```
pub struct CacheBuilder<K, V, E, C = CoarseClock> {
    ttl: Duration,
    error_ttl: Option<Duration>,
    max_entries: NonZeroUsize,
    policy: CancelPolicy,
    clock: C,
    _types: PhantomData<K, V, E>,
}

impl<K, V, E> Cache<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// A builder: values kept for `ttl`, at most `max_entries` entries, on
    /// a [`CoarseClock`] unless [`clock`](CacheBuilder::clock) says
    /// otherwise (every hit reads the clock, and a TTL needs no finer
    /// resolution than the kernel's tick: see `CoarseClock`).
    ///
    /// # Examples
    ///
    /// See [`CacheBuilder`].
    pub fn builder(ttl: Duration, max_entries: NonZeroUsize) -> CacheBuilder<K, V, E> {
        CacheBuilder {
            ttl,
            error_ttl: None,
            max_entries,
            policy: CancelPolicy::default(),
            clock: CoarseClock::new(),
            _types: std::marker::PhantomData,
        }
    }
}

impl<K, V, E, C> CacheBuilder<K, V, E, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
    C: Clock + 'static,
{
    /// Keeps errors for `ttl` (negative caching); by default they are not
    /// kept.
    ///
    /// # Examples
    ///
    /// See [`CacheBuilder`].
    pub fn error_ttl(mut self, ttl: Duration) -> Self {
        self.error_ttl = Some(ttl);
        self
    }

    /// What happens to a fetch nobody waits for any more (see
    /// [`CancelPolicy`]; [`CancelPolicy::Detach`] lets it finish and fill
    /// the cache).
    ///
    /// # Examples
    ///
    /// See [`CacheBuilder`].
    pub fn cancel_policy(mut self, policy: CancelPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock TTLs are measured on.
    ///
    /// # Examples
    ///
    /// See [`Cache`].
    pub fn clock<C2: Clock + 'static>(self, clock: C2) -> CacheBuilder<K, V, E, C2> {
        CacheBuilder {
            ttl: self.ttl,
            error_ttl: self.error_ttl,
            max_entries: self.max_entries,
            policy: self.policy,
            clock,
            _types: std::marker::PhantomData,
        }
    }

    /// The cache.
    ///
    /// # Examples
    ///
    /// See [`CacheBuilder`].
    pub fn build(self) -> Cache<K, V, E, C> {
        let max_entries = self.max_entries.get();
        let shards = shard_count(max_entries);
        let (share, rest) = (max_entries / shards, max_entries % shards);
        let nanos = |ttl: Duration| u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        Cache {
            inner: Arc::new(Inner {
                shards: (0..shards)
                    .map(|i| Mutex::new(Shard::new(share + usize::from(i < rest))))
                    .collect(),
                hasher: RandomState::new(),
                flights: Arc::new(Table::new(self.policy)),
                generation: AtomicU64::new(0),
                ttl: nanos(self.ttl),
                error_ttl: self.error_ttl.map(nanos),
                max_entries,
                clock: self.clock,
                hits: ShardedCounter::new(),
                misses: ShardedCounter::new(),
                coalesced: ShardedCounter::new(),
                fetches: ShardedCounter::new(),
            }),
        }
    }
}

/// Shards for `max_entries`: a power of two, four per core, and never more
/// than the entries (each shard holds at least one).
fn shard_count(max_entries: usize) -> usize {
    #[cfg(acqrel_loom)]
    let wanted: usize = 2;
    #[cfg(not(acqrel_loom))]
    let wanted = std::thread::available_parallelism().map_or(4, |n| n.get() * 4);
    let wanted = wanted.next_power_of_two();
    if max_entries >= wanted {
        wanted
    } else {
        // The largest power of two not above `max_entries` (at least 1).
        1 << max_entries.ilog2()
    }
}

impl<K, V, E, C> Cache<K, V, E, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
    C: Clock + 'static,
{
    /// The cached value of `key`, or the shared outcome of one fetch for
    /// all the callers that miss it meanwhile; the fetch's value is kept
    /// for the TTL.
    ///
    /// `fetch` is called only by the caller that starts the fetch; its
    /// future runs as its own task (see [`Group::run`](crate::Group::run)).
    ///
    /// # Errors
    ///
    /// The fetch's [`FlightError`], shared by its callers; with
    /// [`error_ttl`](CacheBuilder::error_ttl), a cached error.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, when this call would start a fetch.
    ///
    /// # Cancel safety
    ///
    /// As [`Group::run`](crate::Group::run): dropping the future leaves the
    /// fetch to its other callers.
    ///
    /// # Examples
    ///
    /// See [`Cache`].
    pub async fn get_with<F, Fut>(&self, key: K, fetch: F) -> Result<V, FlightError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let generation = self.generation();
        if let Some(hit) = self.lookup(&key, generation) {
            self.inner.hits.inc();
            return hit;
        }
        self.inner.misses.inc();
        let inner = Arc::clone(&self.inner);
        let flight_key = (generation, key.clone());
        let flown = fly(&self.inner.flights, flight_key, move || {
            // The leader's second look: a fetch that finished between the
            // lookup above and the join has stored its value.
            let (cached, invalidations) = inner.recheck(&key, generation);
            let fetch = cached.is_none().then(|| {
                inner.fetches.inc();
                fetch()
            });
            // Stores the fetch's outcome before its callers see it, so no
            // get falls between the flight and the entry.
            let hook: Option<Hook<V, E>> = fetch.is_some().then(|| -> Hook<V, E> {
                Box::new(move |outcome| inner.store(key, generation, invalidations, outcome))
            });
            let work = async move {
                match (cached, fetch) {
                    (_, Some(fetch)) => fetch.await,
                    (Some(value), None) => Ok(value),
                    (None, None) => unreachable!("a fetch exists when nothing was cached"),
                }
            };
            (work, hook)
        })
        .await;
        if !flown.leader {
            self.inner.coalesced.inc();
        }
        flown.outcome
    }

    /// The cached value of `key`, if it has a fresh one (a cached error is
    /// `None`). Counts as a hit when it returns a value, and as nothing
    /// otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use std::time::Duration;
    /// use acqrel_singleflight::Cache;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache: Cache<u64, u64, ()> =
    ///     Cache::builder(Duration::from_secs(60), NonZeroUsize::new(100).unwrap()).build();
    /// assert_eq!(cache.get(&1), None);
    /// cache.get_with(1, || async { Ok(10) }).await.unwrap();
    /// assert_eq!(cache.get(&1), Some(10));
    /// # });
    /// ```
    pub fn get(&self, key: &K) -> Option<V> {
        match self.lookup(key, self.generation()) {
            Some(Ok(value)) => {
                self.inner.hits.inc();
                Some(value)
            }
            _ => None,
        }
    }

    /// Removes `key`, and keeps a fetch in flight for it from being stored
    /// (its callers still get its outcome; the next get fetches again).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use std::time::Duration;
    /// use acqrel_singleflight::Cache;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache: Cache<u64, u64, ()> =
    ///     Cache::builder(Duration::from_secs(60), NonZeroUsize::new(100).unwrap()).build();
    /// cache.get_with(1, || async { Ok(10) }).await.unwrap();
    /// cache.invalidate(&1);
    /// assert_eq!(cache.get(&1), None);
    /// assert_eq!(cache.get_with(1, || async { Ok(11) }).await, Ok(11));
    /// # });
    /// ```
    pub fn invalidate(&self, key: &K) {
        let hash = self.inner.hash(key);
        let removed = {
            let mut shard = sync::lock(self.inner.shard(hash));
            shard.invalidations = shard.invalidations.wrapping_add(1);
            shard.remove(hash, key)
        };
        drop(removed);
        // Later gets start a new fetch rather than join one whose result
        // is no longer wanted.
        self.inner.flights.forget(&(self.generation(), key.clone()));
    }

    /// Invalidates every entry, and every fetch in flight, in O(1): no value
    /// fetched before this call is served after it. The entries' memory is
    /// reclaimed as new values are stored (they are the oldest, so the
    /// first to go).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use std::time::Duration;
    /// use acqrel_singleflight::Cache;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache: Cache<u64, u64, ()> =
    ///     Cache::builder(Duration::from_secs(60), NonZeroUsize::new(100).unwrap()).build();
    /// cache.get_with(1, || async { Ok(10) }).await.unwrap();
    /// cache.invalidate_all();
    /// assert_eq!(cache.get(&1), None);
    /// # });
    /// ```
    pub fn invalidate_all(&self) {
        // Relaxed: see the module's `# Orderings`.
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Entries held, expired and invalidated ones included until they are
    /// dropped; never more than `max_entries`.
    ///
    /// # Examples
    ///
    /// See [`max_entries`](Self::max_entries).
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| sync::lock(shard).len())
            .sum()
    }

    /// Whether no entry is held.
    ///
    /// # Examples
    ///
    /// See [`CacheBuilder`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry cap.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use std::time::Duration;
    /// use acqrel_singleflight::Cache;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache: Cache<u64, u64, ()> =
    ///     Cache::builder(Duration::from_secs(60), NonZeroUsize::new(4).unwrap()).build();
    /// for key in 0..100 {
    ///     cache.get_with(key, move || async move { Ok(key) }).await.unwrap();
    /// }
    /// assert_eq!(cache.max_entries(), 4);
    /// assert!(cache.len() <= 4);
    /// # });
    /// ```
    pub fn max_entries(&self) -> usize {
        self.inner.max_entries
    }

    /// Keys with a fetch in flight.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use std::time::Duration;
    /// use acqrel_singleflight::Cache;
    /// let cache: Cache<u64, u64, ()> =
    ///     Cache::builder(Duration::from_secs(60), NonZeroUsize::new(4).unwrap()).build();
    /// assert_eq!(cache.fetching(), 0);
    /// ```
    pub fn fetching(&self) -> usize {
        self.inner.flights.len()
    }

    /// The hit and miss counts so far.
    ///
    /// # Examples
    ///
    /// See [`Cache`].
    pub fn stats(&self) -> CacheStats {
        let inner = &self.inner;
        CacheStats {
            hits: inner.hits.sum(),
            misses: inner.misses.sum(),
            coalesced: inner.coalesced.sum(),
            fetches: inner.fetches.sum(),
        }
    }

    fn generation(&self) -> u64 {
        // Relaxed: see the module's `# Orderings`.
        self.inner.generation.load(Ordering::Relaxed)
    }

    /// A fresh entry's outcome.
    fn lookup(&self, key: &K, generation: u64) -> Option<Result<V, FlightError<E>>> {
        let (cached, _) = self.inner.fresh(key, generation);
        // `V::clone` (user code) with no lock held.
        Some(match cached? {
            Ok(value) => Ok(V::clone(&value)),
            Err(error) => Err(FlightError::Failed(error)),
        })
    }
}

impl<K, V, E, C> Inner<K, V, E, C>
where
    K: Hash + Eq + Clone,
    V: Clone,
    C: Clock,
{
    /// `key`'s hash, computed once per call: it picks the shard and finds
    /// the entry in it.
    fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard<K, V, E>> {
        // Bits 32 and up: the shard's table indexes its buckets with the low
        // bits and tags them with the top seven.
        #[allow(clippy::cast_possible_truncation)]
        let bits = (hash >> 32) as usize;
        &self.shards[bits & (self.shards.len() - 1)]
    }

    /// `key`'s entry if it is fresh (its `Arc`s cloned under the shard's
    /// lock, the values themselves not), and the shard's invalidation count.
    fn fresh(&self, key: &K, generation: u64) -> (Option<Cached<V, E>>, u64) {
        let now = self.clock.now_nanos();
        let hash = self.hash(key);
        let shard = sync::lock(self.shard(hash));
        let cached = match shard.get(hash, key) {
            Some(entry) if entry.fresh(now, generation) => Some(entry.value.clone()),
            _ => None,
        };
        (cached, shard.invalidations)
    }

    /// The leader's look before fetching: a fresh value (not counted as a
    /// hit: this caller already counted a miss), and the shard's
    /// invalidation count, which the fetch must find unchanged to store.
    fn recheck(&self, key: &K, generation: u64) -> (Option<V>, u64) {
        let (cached, invalidations) = self.fresh(key, generation);
        // `V::clone` (user code) with no lock held.
        let value = cached.and_then(Result::ok).map(|value| V::clone(&value));
        (value, invalidations)
    }

    /// Stores a fetch's outcome, unless it was invalidated meanwhile (see
    /// the module's `# Protocol`), or it is an error and errors are not
    /// kept, or the fetch panicked or was cancelled.
    fn store(&self, key: K, generation: u64, invalidations: u64, outcome: &Settled<V, E>) {
        let (value, ttl) = match (outcome, self.error_ttl) {
            (Ok(value), _) => (Ok(StdArc::new(value.clone())), self.ttl),
            (Err(FlightError::Failed(error)), Some(ttl)) => (Err(StdArc::clone(error)), ttl),
            _ => return,
        };
        let expires_at = self.clock.now_nanos().saturating_add(ttl);
        self.insert(key, generation, invalidations, value, expires_at);
    }

    /// Inserts an entry into its shard, making room (see `Shard::insert`);
    /// drops what it removed after releasing the lock.
    fn insert(
        &self,
        key: K,
        generation: u64,
        invalidations: u64,
        value: Cached<V, E>,
        expires_at: u64,
    ) {
        let now = self.clock.now_nanos();
        let hash = self.hash(&key);
        let mut evicted: Evicted<K, V, E> = Vec::new();
        {
            let mut shard = sync::lock(self.shard(hash));
            // Relaxed: see the module's `# Orderings`.
            let current = self.generation.load(Ordering::Relaxed);
            if current != generation || shard.invalidations != invalidations {
                return;
            }
            let entry = Entry::new(key, value, expires_at, generation);
            let rehash = |entry: &Entry<K, V, E>| self.hash(&entry.key);
            shard.insert(hash, entry, now, current, rehash, &mut evicted);
        }
        drop(evicted);
    }
}

impl<K, V, E, C> Clone for Cache<K, V, E, C> {
    /// Another handle to the same cache.
    fn clone(&self) -> Self {
        Cache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, E, C> fmt::Debug for Cache<K, V, E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("max_entries", &self.inner.max_entries)
            .field("ttl_ns", &self.inner.ttl)
            .field("error_ttl_ns", &self.inner.error_ttl)
            .finish_non_exhaustive()
    }
}

impl<K, V, E, C> fmt::Debug for CacheBuilder<K, V, E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("ttl", &self.ttl)
            .field("error_ttl", &self.error_ttl)
            .field("max_entries", &self.max_entries)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
