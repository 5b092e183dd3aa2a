//! Named counters created on first use (the guide's Case Study A.5 metrics
//! registry, without its global lock on lookups, and with Appendix V's fix
//! built in: snapshots are owned copies).
//!
//! # Orderings
//!
//! The name → counter map is an immutable `HashMap` published through a
//! [`Snapshot`]: creating a counter copies the map, inserts, and publishes
//! the copy (Release, inside `Snapshot::try_update`); lookups load the
//! current map (Acquire, `Snapshot::load`). A thread that finds a name
//! therefore sees the counter fully built. Creations are serialized by the
//! snapshot's writer lock, and the closure run under it re-checks the name,
//! so two threads creating the same name get the same counter. The counters
//! themselves are [`ShardedCounter`]s: Relaxed, publishing nothing (see
//! `sharded_counter.rs`).
//!
//! [`CounterRegistry::snapshot`] loads one map and reads each counter's sum
//! into a new `BTreeMap` that the caller owns: later increments and creations
//! never change it (the guide's Appendix V bug returned the live map).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::num::NonZeroUsize;
// Handles are std `Arc`s in every build (the map's values live in a
// `Snapshot`, whose values are std `Arc`s too); all synchronization is the
// snapshot's, which is loom-aware.
use std::sync::Arc;

use crate::Snapshot;
use crate::sharded_counter::{ShardedCounter, default_shards};

type Counters = HashMap<String, Arc<ShardedCounter>>;

/// The error returned by [`CounterRegistry::counter`] and
/// [`CounterRegistry::add`] when the name is new and the registry already
/// holds its maximum number of counters. Nothing is created; the name is
/// handed back.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_core::CounterRegistry;
///
/// let registry = CounterRegistry::new(NonZeroUsize::MIN);
/// registry.counter("requests").unwrap();
/// let full = registry.counter("errors").unwrap_err();
/// assert_eq!(full.name(), "errors");
/// assert_eq!(full.max_counters(), 1);
/// assert_eq!(full.into_name(), "errors");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("counter registry is full ({max_counters} counters): cannot create {name:?}")]
pub struct RegistryFull {
    name: String,
    max_counters: usize,
}

impl RegistryFull {
    /// The name that could not be created.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::num::NonZeroUsize;
    /// # let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::MIN);
    /// # registry.counter("a").unwrap();
    /// let full = registry.counter("b").unwrap_err();
    /// assert_eq!(full.name(), "b");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry's bound, which was reached.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::num::NonZeroUsize;
    /// # let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::MIN);
    /// # registry.counter("a").unwrap();
    /// assert_eq!(registry.counter("b").unwrap_err().max_counters(), 1);
    /// ```
    pub fn max_counters(&self) -> usize {
        self.max_counters
    }

    /// Hands the name back.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::num::NonZeroUsize;
    /// # let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::MIN);
    /// # registry.counter("a").unwrap();
    /// let name: String = registry.counter("b").unwrap_err().into_name();
    /// assert_eq!(name, "b");
    /// ```
    pub fn into_name(self) -> String {
        self.name
    }
}

/// Why a creation attempt publishes nothing.
enum NotInserted {
    /// Another thread created the name first; here is its counter.
    Present(Arc<ShardedCounter>),
    /// The registry is at its bound.
    Full,
}

/// A bounded set of named [`ShardedCounter`]s, each created on first use.
///
/// Replaces the guide's metrics registry (Case Study A.5: a
/// `map[string]*Counter` behind a `sync.Mutex` taken on every lookup) and
/// fixes its Appendix V cousin, whose `Snapshot()` returned the live map.
/// Lookups are lock-free: the map is published through a [`Snapshot`] and
/// only creating a name copies it under the snapshot's writer lock (names are
/// created rarely; a creation costs a copy of the map). The **release** is a
/// creation publishing the new map; the **acquire** is every lookup.
///
/// The registry holds at most `max_counters` names, so a caller that builds
/// names from request data cannot grow it without bound: a new name beyond
/// the bound is refused with [`RegistryFull`], while existing names keep
/// resolving.
///
/// Hot paths should resolve a name once and keep the handle
/// ([`counter`](Self::counter)); [`add`](Self::add) looks the name up on
/// each call instead.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_core::CounterRegistry;
///
/// let registry = CounterRegistry::new(NonZeroUsize::new(100).unwrap());
/// let requests = registry.counter("http.requests").unwrap();
/// std::thread::scope(|s| {
///     for _ in 0..2 {
///         s.spawn(|| {
///             for _ in 0..10 {
///                 requests.inc();
///             }
///             registry.add("http.bytes", 512).unwrap();
///         });
///     }
/// });
/// let scrape = registry.snapshot();
/// assert_eq!(scrape["http.requests"], 20);
/// assert_eq!(scrape["http.bytes"], 1024);
/// ```
pub struct CounterRegistry {
    counters: Snapshot<Counters>,
    max_counters: NonZeroUsize,
    /// Shards per counter, computed once rather than per creation.
    shards: NonZeroUsize,
}

impl CounterRegistry {
    /// Creates an empty registry that holds at most `max_counters` names.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::new(8).unwrap());
    /// assert!(registry.is_empty());
    /// assert_eq!(registry.max_counters(), 8);
    /// ```
    pub fn new(max_counters: NonZeroUsize) -> Self {
        CounterRegistry {
            counters: Snapshot::new(HashMap::new()),
            max_counters,
            shards: default_shards(),
        }
    }

    /// The counter named `name`, created (at zero) if it does not exist yet.
    /// Every call with the same name returns the same counter. Lock-free
    /// when the name exists.
    ///
    /// # Errors
    ///
    /// [`RegistryFull`], holding `name`, if the name is new and the registry
    /// already holds [`max_counters`](Self::max_counters) names. Existing
    /// names still resolve.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use std::sync::Arc;
    ///
    /// let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::new(4).unwrap());
    /// let a = registry.counter("jobs").unwrap();
    /// let b = registry.counter("jobs").unwrap();
    /// assert!(Arc::ptr_eq(&a, &b));
    /// ```
    pub fn counter(&self, name: &str) -> Result<Arc<ShardedCounter>, RegistryFull> {
        if let Some(counter) = self.counters.load().get(name) {
            return Ok(Arc::clone(counter));
        }
        self.create(name)
    }

    /// Adds `n` to the counter named `name`, creating it if needed. Looks
    /// the name up on every call without touching the counter's reference
    /// count; keep the handle from [`counter`](Self::counter) on the
    /// hottest paths instead.
    ///
    /// # Errors
    ///
    /// As [`counter`](Self::counter): [`RegistryFull`] if the name is new and
    /// the registry is full. Nothing is counted then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    ///
    /// let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::new(4).unwrap());
    /// registry.add("bytes", 100).unwrap();
    /// registry.add("bytes", 20).unwrap();
    /// assert_eq!(registry.snapshot()["bytes"], 120);
    /// ```
    pub fn add(&self, name: &str, n: u64) -> Result<(), RegistryFull> {
        if let Some(counter) = self.counters.load().get(name) {
            counter.add(n);
            return Ok(());
        }
        self.create(name)?.add(n);
        Ok(())
    }

    /// The slow path of [`counter`](Self::counter): publishes a map with
    /// `name` added, unless another thread added it meanwhile.
    #[cold]
    fn create(&self, name: &str) -> Result<Arc<ShardedCounter>, RegistryFull> {
        // Built before taking the writer lock; dropped unused if `name`
        // turns out to exist by then.
        let candidate = Arc::new(ShardedCounter::with_shards(self.shards));
        let max = self.max_counters.get();
        // The closure runs under the snapshot's writer lock, so creations
        // are serialized and the re-check below sees every earlier one.
        let published = self.counters.try_update(|map| {
            if let Some(existing) = map.get(name) {
                return Err(NotInserted::Present(Arc::clone(existing)));
            }
            if map.len() >= max {
                return Err(NotInserted::Full);
            }
            let mut next = map.clone();
            next.insert(name.to_owned(), Arc::clone(&candidate));
            Ok(next)
        });
        match published {
            Ok(_generation) => Ok(candidate),
            Err(NotInserted::Present(existing)) => Ok(existing),
            Err(NotInserted::Full) => Err(RegistryFull {
                name: name.to_owned(),
                max_counters: max,
            }),
        }
    }

    /// An owned copy of every counter's current sum, by name.
    ///
    /// The map is the caller's: later increments and creations never change
    /// it. It holds the names that existed when the call began; each value
    /// is that counter's [`sum`](ShardedCounter::sum) at some moment during
    /// the call, so while counters are being incremented the whole is not
    /// one instant's picture (fine for a metrics scrape). Once the
    /// incrementing threads are joined it is exact.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    ///
    /// let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::new(4).unwrap());
    /// let hits = registry.counter("hits").unwrap();
    /// hits.inc();
    /// let scrape = registry.snapshot();
    /// hits.inc();
    /// registry.counter("misses").unwrap();
    /// assert_eq!(scrape.len(), 1);
    /// assert_eq!(scrape["hits"], 1); // unaffected by the later increment
    /// ```
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        // An owned handle, not a guard: the copy below may take a while.
        let map = self.counters.load_full();
        map.iter()
            .map(|(name, counter)| (name.clone(), counter.sum()))
            .collect()
    }

    /// The number of counters created so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::new(4).unwrap());
    /// registry.counter("a").unwrap();
    /// assert_eq!(registry.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.counters.load().len()
    }

    /// Whether no counter has been created yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::MIN);
    /// assert!(registry.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most counters this registry holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// let registry = acqrel_core::CounterRegistry::new(NonZeroUsize::new(3).unwrap());
    /// assert_eq!(registry.max_counters(), 3);
    /// ```
    pub fn max_counters(&self) -> usize {
        self.max_counters.get()
    }
}

impl fmt::Debug for CounterRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterRegistry")
            .field("counters", &self.snapshot())
            .field("max_counters", &self.max_counters)
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    fn registry(max: usize) -> CounterRegistry {
        CounterRegistry::new(NonZeroUsize::new(max).unwrap())
    }

    #[test]
    fn same_name_same_counter() {
        let registry = registry(2);
        let a = registry.counter("a").unwrap();
        a.add(3);
        assert!(Arc::ptr_eq(&a, &registry.counter("a").unwrap()));
        assert_eq!(registry.counter("a").unwrap().sum(), 3);
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn full_registry_hands_the_name_back_and_still_resolves_existing_names() {
        let registry = registry(2);
        registry.add("a", 1).unwrap();
        registry.add("b", 2).unwrap();
        let full = registry.counter("c").unwrap_err();
        assert_eq!(
            full,
            RegistryFull {
                name: "c".to_owned(),
                max_counters: 2
            }
        );
        assert_eq!(
            full.to_string(),
            "counter registry is full (2 counters): cannot create \"c\""
        );
        assert_eq!(registry.add("d", 5).unwrap_err().into_name(), "d");
        // Existing names still resolve, and nothing was created or counted.
        registry.add("a", 1).unwrap();
        assert_eq!(registry.counter("b").unwrap().sum(), 2);
        assert_eq!(
            registry.snapshot(),
            BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 2)])
        );
    }

    #[test]
    fn refused_and_present_creations_publish_nothing() {
        let registry = registry(1);
        registry.counter("a").unwrap();
        let generation = registry.counters.generation();
        registry.counter("b").unwrap_err();
        // `create` directly: the name exists, so the re-check finds it.
        registry.create("a").unwrap();
        assert_eq!(registry.counters.generation(), generation);
    }

    /// The guide's Appendix V: `Snapshot()` returned the live map, so a
    /// scrape changed under its reader. Ours is an owned copy.
    #[test]
    fn appendix_v_snapshot_is_not_the_live_map() {
        let registry = registry(4);
        let hits = registry.counter("hits").unwrap();
        hits.add(10);
        let scrape = registry.snapshot();
        hits.add(5);
        registry.add("misses", 1).unwrap();
        assert_eq!(scrape, BTreeMap::from([("hits".to_owned(), 10)]));
        assert_eq!(registry.snapshot()["hits"], 15);
    }

    #[test]
    fn debug_shows_the_counts() {
        let registry = registry(2);
        registry.add("a", 4).unwrap();
        assert_eq!(
            format!("{registry:?}"),
            "CounterRegistry { counters: {\"a\": 4}, max_counters: 2 }"
        );
    }
}
