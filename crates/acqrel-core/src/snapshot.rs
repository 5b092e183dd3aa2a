//! The read-mostly cell: RCU over `arc-swap`, with generations and change
//! notification (the guide's Pattern 4 hot-reload and F.2 versioned value).
//!
//! # Orderings
//!
//! A published value and its generation live in one allocation
//! ([`Versioned`]), so a reader can never pair a value with the wrong
//! generation. Publication, always under the writer lock:
//!
//! 1. build `Versioned { generation: current + 1, value }`;
//! 2. store it into the storage (Release; arc-swap's contract);
//! 3. store its generation into `generation` with Release;
//! 4. release the writer lock, then wake waiters (see `notify.rs`).
//!
//! Readers of `generation` load it with Acquire. A reader that sees
//! generation `g` therefore happens-after step 2 of the write that made `g`,
//! and any load of the storage it makes afterwards returns that value or a
//! newer one. This is what makes [`Snapshot::wait_changed`] return a value
//! newer than `since`. The loom model `tests/loom_snapshot.rs` fails if
//! step 3 or its reader is weakened to Relaxed.
//!
//! [`SnapshotReader`] is arc-swap's `Cache`: it compares the storage's
//! current pointer with its cached one (a comparison only; the cached `Arc`
//! keeps its address from being reused) and reloads with a full Acquire load
//! when they differ.
//!
//! Between steps 2 and 3 a [`Snapshot::load`] can return a value newer than
//! [`Snapshot::generation`]; generations never move backwards for any one
//! observer.

mod storage;

use std::convert::Infallible;
use std::fmt;
use std::ops::Deref;
// Published values are std `Arc`s (arc-swap's currency) in every build; the
// loom build only swaps the storage and the synchronization around them.
use std::sync::Arc;
use std::time::Duration;

use self::storage::{Cache, Guard, Storage};
use crate::notify::Notifier;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{self, Mutex};

/// A value together with the generation it was published as.
struct Versioned<T> {
    generation: u64,
    value: T,
}

/// A read-mostly cell: lock-free loads of the current value, serialized
/// copy-on-write updates, a generation number per published value, and
/// blocking or async waits for the next change.
///
/// Replaces Go's `atomic.Pointer[Config]` with copy-on-write updates (the
/// hot-reload pattern), the versioned-value idiom (value plus version in one
/// allocation), and the reload channel that tells watchers something
/// changed. The **release** is every publishing method ([`store`],
/// [`update`], [`try_update`], [`rcu`]); the **acquire** is every load and
/// every wait returning.
///
/// Writers are serialized by a writer lock that readers never touch:
/// [`update`] runs its closure exactly once against the value it replaces,
/// with no other write in between. [`rcu`] runs its closure *without* the
/// lock and commits only if nobody published meanwhile, retrying otherwise.
///
/// [`store`]: Snapshot::store
/// [`update`]: Snapshot::update
/// [`try_update`]: Snapshot::try_update
/// [`rcu`]: Snapshot::rcu
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use acqrel_core::Snapshot;
///
/// #[derive(Clone)]
/// struct Config { max_conns: u32 }
///
/// let config = Arc::new(Snapshot::new(Config { max_conns: 10 }));
///
/// // A watcher waits for the next reload.
/// let watcher = {
///     let config = config.clone();
///     let seen = config.generation();
///     std::thread::spawn(move || config.wait_changed(seen).max_conns)
/// };
///
/// // The reloader publishes a new version.
/// let generation = config.update(|old| Config { max_conns: old.max_conns * 2 });
/// assert_eq!(generation, 1);
/// assert_eq!(watcher.join().unwrap(), 20);
///
/// // Readers load without locking.
/// assert_eq!(config.load().max_conns, 20);
/// ```
///
/// # Under loom
///
/// Built with `--cfg acqrel_loom`, the arc-swap storage is replaced by a
/// loom `AtomicPtr` that frees nothing until the cell is dropped; see the
/// crate's `docs/patterns/snapshot.md`.
pub struct Snapshot<T> {
    storage: Storage<T>,
    /// The generation of the latest value published (step 3 of the module's
    /// `# Orderings`). Only written with `writer` held.
    generation: AtomicU64,
    writer: Mutex<()>,
    notifier: Notifier,
}

impl<T> Snapshot<T> {
    /// Creates a cell holding `value` as generation 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(5);
    /// assert_eq!(*cell.load(), 5);
    /// assert_eq!(cell.generation(), 0);
    /// ```
    pub fn new(value: T) -> Self {
        Snapshot {
            storage: Storage::new(Arc::new(Versioned {
                generation: 0,
                value,
            })),
            generation: AtomicU64::new(0),
            writer: Mutex::new(()),
            notifier: Notifier::new(),
        }
    }

    /// Loads the current value. Lock-free and cheap: the guard usually does
    /// not touch the value's reference count. Hold it briefly (a guard per
    /// request, not per connection); use [`load_full`](Self::load_full) to
    /// keep the value longer.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(String::from("v1"));
    /// let guard = cell.load();
    /// assert_eq!(guard.as_str(), "v1");
    /// assert_eq!(guard.generation(), 0);
    /// ```
    #[inline]
    pub fn load(&self) -> SnapshotGuard<T> {
        SnapshotGuard {
            inner: self.storage.load(),
        }
    }

    /// Loads the current value as an owned, clonable handle (an `Arc`).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(1);
    /// let old = cell.load_full();
    /// cell.store(2);
    /// assert_eq!((*old, old.generation()), (1, 0)); // still the value it loaded
    /// ```
    #[inline]
    pub fn load_full(&self) -> SnapshotRef<T> {
        SnapshotRef {
            inner: self.storage.load_full(),
        }
    }

    /// Returns a per-thread reader that caches the current value and reloads
    /// it only when a newer one is published: its
    /// [`load`](SnapshotReader::load) costs one atomic load and a comparison
    /// (arc-swap's `Cache`).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(1);
    /// let mut reader = cell.reader();
    /// assert_eq!(**reader.load(), 1);
    /// cell.store(2);
    /// assert_eq!(**reader.load(), 2);
    /// ```
    pub fn reader(&self) -> SnapshotReader<'_, T> {
        SnapshotReader {
            cache: Cache::new(&self.storage),
        }
    }

    /// The generation of the latest published value: 0 for the initial
    /// value, then one more per publication.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(());
    /// cell.store(());
    /// assert_eq!(cell.generation(), 1);
    /// ```
    #[inline]
    pub fn generation(&self) -> u64 {
        // Acquire: pairs with the Release store in `commit` (step 3).
        self.generation.load(Ordering::Acquire)
    }

    /// Publishes `value`; returns its generation.
    ///
    /// # Panics
    ///
    /// Panics if the generation would overflow `u64` (2⁶⁴−1 publications).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new("a");
    /// assert_eq!(cell.store("b"), 1);
    /// assert_eq!(*cell.load(), "b");
    /// ```
    pub fn store(&self, value: T) -> u64 {
        self.update(|_| value)
    }

    /// Publishes `f(&current)`; returns the new generation. Writers are
    /// serialized: `f` runs exactly once, and no other value is published
    /// between the one it reads and the one it returns. Readers are never
    /// blocked.
    ///
    /// `f` runs with the writer lock held: it must not write to this same
    /// cell (that deadlocks). Other writers wait while it runs.
    ///
    /// # Panics
    ///
    /// If `f` panics, nothing is published, the panic propagates, and the
    /// cell stays usable. Also panics on generation overflow, as
    /// [`store`](Self::store).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(vec![1]);
    /// cell.update(|v| { let mut v = v.clone(); v.push(2); v });
    /// assert_eq!(*cell.load(), [1, 2]);
    /// ```
    pub fn update(&self, f: impl FnOnce(&T) -> T) -> u64 {
        match self.try_update(|current| Ok::<T, Infallible>(f(current))) {
            Ok(generation) => generation,
            Err(never) => match never {},
        }
    }

    /// Like [`update`](Self::update), but `f` may refuse: on `Err` nothing
    /// is published and the error is returned.
    ///
    /// # Errors
    ///
    /// Returns `f`'s error.
    ///
    /// # Panics
    ///
    /// As [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(10u32);
    /// let result = cell.try_update(|n| n.checked_sub(20).ok_or("would underflow"));
    /// assert_eq!(result, Err("would underflow"));
    /// assert_eq!((*cell.load(), cell.generation()), (10, 0));
    /// ```
    pub fn try_update<E>(&self, f: impl FnOnce(&T) -> Result<T, E>) -> Result<u64, E> {
        let writer = sync::lock(&self.writer);
        // An owned `Arc`, not a guard: `f` may take long, and arc-swap's
        // guards are meant to be short-lived.
        let current = self.storage.load_full();
        let value = f(&current.value)?;
        let generation = self.commit(&current, value);
        drop(writer);
        // After the unlock: `current` may be the last reference to the
        // value just replaced, and its `Drop` (user code) may write to this
        // very cell.
        drop(current);
        self.notifier.notify_all();
        Ok(generation)
    }

    /// Read-copy-update without holding the writer lock while computing:
    /// loads the current value, computes `f(&current)` unlocked, and
    /// publishes the result only if no other value was published meanwhile;
    /// otherwise it runs `f` again on the newer value. Returns the new
    /// generation.
    ///
    /// **`f` may run more than once**, so it must be free of side effects
    /// that must not repeat. Prefer this over [`update`](Self::update) when
    /// `f` is expensive and writers rarely collide: other writers are not
    /// held up while it computes. The commit takes the writer lock briefly,
    /// so it also waits for an [`update`](Self::update) in progress.
    ///
    /// # Panics
    ///
    /// If `f` panics, nothing is published and the panic propagates. Also
    /// panics on generation overflow, as [`store`](Self::store).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(0u64);
    /// std::thread::scope(|s| {
    ///     for _ in 0..4 {
    ///         s.spawn(|| for _ in 0..100 { cell.rcu(|n| n + 1); });
    ///     }
    /// });
    /// assert_eq!(*cell.load(), 400);
    /// assert_eq!(cell.generation(), 400);
    /// ```
    pub fn rcu(&self, mut f: impl FnMut(&T) -> T) -> u64 {
        loop {
            let base = self.storage.load_full();
            let value = f(&base.value);
            let writer = sync::lock(&self.writer);
            let current = self.storage.load();
            if Arc::ptr_eq(&current, &base) {
                let generation = self.commit(&current, value);
                drop(current);
                drop(writer);
                self.notifier.notify_all();
                return generation;
            }
            // Someone published since `base` was loaded: recompute.
        }
    }

    /// Steps 1–3 of the module's `# Orderings`. The caller holds the writer
    /// lock and notifies after releasing it.
    fn commit(&self, current: &Versioned<T>, value: T) -> u64 {
        let generation = current
            .generation
            .checked_add(1)
            .unwrap_or_else(|| panic!("Snapshot generation overflowed u64"));
        self.storage
            .store(Arc::new(Versioned { generation, value }));
        // Release: pairs with the Acquire load in `generation` (and so in
        // every wait and in `SnapshotReader::load`). Ordered after the
        // storage store above, so whoever sees this generation finds the
        // value in the storage.
        self.generation.store(generation, Ordering::Release);
        generation
    }

    /// Blocks until a value newer than generation `since` is published, and
    /// returns the newest value (whose generation is greater than `since`).
    /// Returns at once if one already is.
    ///
    /// Do not call this from async code: use [`changed`](Self::changed).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(1);
    /// let seen = cell.generation();
    /// cell.store(2);
    /// let next = cell.wait_changed(seen);
    /// assert_eq!((*next, next.generation()), (2, 1));
    /// ```
    pub fn wait_changed(&self, since: u64) -> SnapshotRef<T> {
        self.notifier.wait_until(|| self.generation() > since);
        self.load_full()
    }

    /// Like [`wait_changed`](Self::wait_changed), giving up after `timeout`
    /// with `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let cell = acqrel_core::Snapshot::new(1);
    /// assert!(cell.wait_changed_timeout(0, Duration::ZERO).is_none());
    /// ```
    pub fn wait_changed_timeout(&self, since: u64, timeout: Duration) -> Option<SnapshotRef<T>> {
        self.notifier
            .wait_until_timeout(|| self.generation() > since, timeout)
            .then(|| self.load_full())
    }

    /// Completes once a value newer than generation `since` is published,
    /// with the newest value. Runtime-agnostic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future removes its waker and consumes
    /// nothing. Waiting again with the same `since` misses no change.
    ///
    /// # Examples
    ///
    /// ```
    /// # pollster::block_on(async {
    /// let cell = acqrel_core::Snapshot::new("old");
    /// cell.store("new");
    /// assert_eq!(*cell.changed(0).await, "new");
    /// # });
    /// ```
    pub async fn changed(&self, since: u64) -> SnapshotRef<T> {
        self.notifier.until(|| self.generation() > since).await;
        self.load_full()
    }
}

impl<T: Default> Default for Snapshot<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.load();
        f.debug_struct("Snapshot")
            .field("generation", &current.generation())
            .field("value", &*current)
            .finish()
    }
}

// ===== impl SnapshotGuard =====

/// A short-lived view of a [`Snapshot`]'s value, returned by
/// [`Snapshot::load`]. Derefs to the value.
///
/// # Examples
///
/// ```
/// let cell = acqrel_core::Snapshot::new([1, 2, 3]);
/// let guard = cell.load();
/// assert_eq!(guard.len(), 3);
/// let owned = guard.into_ref(); // keep it beyond the guard's intended span
/// assert_eq!(owned.generation(), 0);
/// ```
pub struct SnapshotGuard<T> {
    inner: Guard<T>,
}

impl<T> SnapshotGuard<T> {
    /// The generation this value was published as.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(0);
    /// cell.store(1);
    /// assert_eq!(cell.load().generation(), 1);
    /// ```
    #[inline]
    pub fn generation(&self) -> u64 {
        self.inner.generation
    }

    /// Converts the guard into an owned handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(0);
    /// let owned = cell.load().into_ref();
    /// assert_eq!(*owned, 0);
    /// ```
    pub fn into_ref(self) -> SnapshotRef<T> {
        #[cfg(not(acqrel_loom))]
        let inner = arc_swap::Guard::into_inner(self.inner);
        #[cfg(acqrel_loom)]
        let inner = self.inner;
        SnapshotRef { inner }
    }
}

impl<T> Deref for SnapshotGuard<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.inner.value
    }
}

impl<T: fmt::Debug> fmt::Debug for SnapshotGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotGuard")
            .field("generation", &self.generation())
            .field("value", &**self)
            .finish()
    }
}

// ===== impl SnapshotRef =====

/// An owned handle to one published value of a [`Snapshot`] (an `Arc`
/// inside): clone it, keep it, send it. It never changes; load again for a
/// newer value.
///
/// # Examples
///
/// ```
/// let cell = acqrel_core::Snapshot::new(String::from("a"));
/// let handle = cell.load_full();
/// let copy = handle.clone();
/// assert!(handle.ptr_eq(&copy));
/// ```
#[repr(transparent)] // `SnapshotReader::load` casts `&Arc<Versioned<T>>` to `&Self`.
pub struct SnapshotRef<T> {
    inner: Arc<Versioned<T>>,
}

impl<T> SnapshotRef<T> {
    /// The generation this value was published as.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(0);
    /// assert_eq!(cell.load_full().generation(), 0);
    /// ```
    #[inline]
    pub fn generation(&self) -> u64 {
        self.inner.generation
    }

    /// Whether both handles point at the same published value.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(0);
    /// let a = cell.load_full();
    /// cell.store(0);
    /// assert!(!a.ptr_eq(&cell.load_full()));
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Clone for SnapshotRef<T> {
    fn clone(&self) -> Self {
        SnapshotRef {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Deref for SnapshotRef<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.inner.value
    }
}

impl<T: fmt::Debug> fmt::Debug for SnapshotRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotRef")
            .field("generation", &self.generation())
            .field("value", &**self)
            .finish()
    }
}

// ===== impl SnapshotReader =====

/// A caching reader of a [`Snapshot`], from [`Snapshot::reader`]: keep one
/// per thread or per task.
///
/// [`load`](SnapshotReader::load) compares the cell's current pointer with
/// the cached value's and reloads only when the cell moved on, so in the
/// read-mostly steady state a load is one atomic load of a cache line that
/// only writers modify. The cached value stays alive until the next load
/// after a change, or until the reader is dropped.
///
/// # Examples
///
/// ```
/// let cell = acqrel_core::Snapshot::new(1);
/// let mut reader = cell.reader();
/// let first = reader.load().clone();
/// cell.store(2);
/// assert_eq!(**reader.load(), 2);
/// assert_eq!(*first, 1);
/// ```
pub struct SnapshotReader<'a, T> {
    cache: Cache<'a, T>,
}

impl<T> SnapshotReader<'_, T> {
    /// Returns the current value, reloading the cache if a newer value has
    /// been published.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = acqrel_core::Snapshot::new(1);
    /// let mut reader = cell.reader();
    /// cell.store(7);
    /// let current = reader.load();
    /// assert_eq!((**current, current.generation()), (7, 1));
    /// ```
    #[inline]
    pub fn load(&mut self) -> &SnapshotRef<T> {
        let arc: &Arc<Versioned<T>> = self.cache.load();
        // SAFETY: `SnapshotRef<T>` is `repr(transparent)` over
        // `Arc<Versioned<T>>`, so the two references have the same layout
        // and validity; the borrow keeps `self` borrowed as before.
        unsafe { &*std::ptr::from_ref(arc).cast::<SnapshotRef<T>>() }
    }
}

impl<T: fmt::Debug> fmt::Debug for SnapshotReader<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotReader").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    /// A value whose drop writes to the cell that held it.
    struct Reentrant(Option<Arc<Snapshot<Vec<Reentrant>>>>);

    impl Drop for Reentrant {
        fn drop(&mut self) {
            if let Some(cell) = self.0.take() {
                cell.store(Vec::new());
            }
        }
    }

    /// Regression: `try_update` dropped the value it replaced with the
    /// writer lock still held, so a value whose `Drop` wrote to the same
    /// cell deadlocked.
    #[test]
    fn a_replaced_value_is_dropped_after_the_writer_lock_is_released() {
        let cell = Arc::new(Snapshot::new(Vec::new()));
        cell.store(vec![Reentrant(Some(Arc::clone(&cell)))]);
        let (done, finished) = std::sync::mpsc::channel();
        let writer = {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || {
                // The last reference to the vector holding the `Reentrant`.
                cell.store(Vec::new());
                done.send(()).unwrap();
            })
        };
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the store deadlocked on the writer lock");
        writer.join().unwrap();
        // The initial value, the vector, the store that dropped it, and the
        // store its drop made.
        assert_eq!(cell.generation(), 3);
        assert!(cell.load().is_empty());
    }

    #[test]
    fn panicking_update_publishes_nothing_and_cell_stays_usable() {
        let cell = Snapshot::new(1);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cell.update(|_| panic!("bad reload"));
        }));
        assert!(result.is_err());
        assert_eq!((*cell.load(), cell.generation()), (1, 0));
        assert_eq!(cell.store(2), 1);
        assert_eq!(*cell.load(), 2);
    }

    #[test]
    fn rcu_recomputes_after_a_concurrent_publication() {
        let cell = Snapshot::new(0);
        let mut calls = 0;
        let generation = cell.rcu(|n| {
            calls += 1;
            if calls == 1 {
                // Another writer sneaks in while this closure runs unlocked.
                cell.store(100);
            }
            n + 1
        });
        assert_eq!(calls, 2);
        assert_eq!(generation, 2);
        assert_eq!(*cell.load(), 101);
    }

    #[test]
    fn reader_drops_its_cached_value_after_a_change() {
        let cell = Snapshot::new(Arc::new(()));
        let first = Arc::clone(&cell.load());
        let mut reader = cell.reader();
        reader.load();
        cell.store(Arc::new(()));
        reader.load();
        // Only `first` holds the original now: the reader let it go.
        assert_eq!(Arc::strong_count(&first), 1);
    }

    #[test]
    fn wait_changed_timeout_sees_a_store_from_another_thread() {
        let cell = Snapshot::new(0);
        std::thread::scope(|s| {
            s.spawn(|| cell.store(1));
            let next = cell.wait_changed_timeout(0, Duration::MAX).unwrap();
            assert_eq!((*next, next.generation()), (1, 1));
        });
    }
}
