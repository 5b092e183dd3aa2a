//! Where a [`Snapshot`](crate::Snapshot) keeps its current value.
//!
//! A normal build uses `arc_swap::ArcSwap`: lock-free, wait-free loads whose
//! guards avoid touching the reference count. arc-swap's internals are not
//! loom-aware, so under `--cfg acqrel_loom` the storage is a plain loom
//! `AtomicPtr` (Release store, Acquire load, the same contract arc-swap gives)
//! whose published values are all retired into a list and freed only when
//! the storage is dropped. That keeps the model free of reclamation logic
//! (arc-swap's own concern, tested by arc-swap) and lets loom check the
//! generation and notification protocol built on top.
//!
//! Both versions are only ever written with the snapshot's writer lock held.

use std::sync::Arc;

use super::Versioned;

#[cfg(not(acqrel_loom))]
pub(super) use self::arc_swap_storage::{Cache, Guard, Storage};
#[cfg(acqrel_loom)]
pub(super) use self::loom_storage::{Cache, Guard, Storage};

#[cfg(not(acqrel_loom))]
mod arc_swap_storage {
    use super::{Arc, Versioned};

    pub(in crate::snapshot) type Guard<T> = arc_swap::Guard<Arc<Versioned<T>>>;

    pub(in crate::snapshot) struct Storage<T> {
        current: arc_swap::ArcSwap<Versioned<T>>,
    }

    impl<T> Storage<T> {
        pub(in crate::snapshot) fn new(initial: Arc<Versioned<T>>) -> Self {
            Storage {
                current: arc_swap::ArcSwap::new(initial),
            }
        }

        /// Acquire (arc-swap's contract): pairs with the Release in `store`.
        #[inline]
        pub(in crate::snapshot) fn load(&self) -> Guard<T> {
            self.current.load()
        }

        #[inline]
        pub(in crate::snapshot) fn load_full(&self) -> Arc<Versioned<T>> {
            self.current.load_full()
        }

        /// Release (arc-swap's contract): pairs with the Acquire in `load`.
        pub(in crate::snapshot) fn store(&self, next: Arc<Versioned<T>>) {
            self.current.store(next);
        }
    }

    /// arc-swap's `Cache`: keeps the last loaded `Arc` and reloads only when
    /// the storage's pointer differs from it (the comparison publishes
    /// nothing; the reload is a full, Acquire load).
    pub(in crate::snapshot) struct Cache<'a, T> {
        inner: arc_swap::Cache<&'a arc_swap::ArcSwap<Versioned<T>>, Arc<Versioned<T>>>,
    }

    impl<'a, T> Cache<'a, T> {
        pub(in crate::snapshot) fn new(storage: &'a Storage<T>) -> Self {
            Cache {
                inner: arc_swap::Cache::new(&storage.current),
            }
        }

        #[inline]
        pub(in crate::snapshot) fn load(&mut self) -> &Arc<Versioned<T>> {
            self.inner.load()
        }
    }
}

#[cfg(acqrel_loom)]
mod loom_storage {
    use std::marker::PhantomData;

    use super::{Arc, Versioned};
    use crate::sync::atomic::{AtomicPtr, Ordering};
    use crate::sync::{self, Mutex};

    pub(in crate::snapshot) type Guard<T> = Arc<Versioned<T>>;

    pub(in crate::snapshot) struct Storage<T> {
        current: AtomicPtr<Versioned<T>>,
        /// Every value ever published, kept alive until drop so a pointer
        /// loaded from `current` is always valid.
        retired: Mutex<Vec<Arc<Versioned<T>>>>,
        _owns: PhantomData<Arc<Versioned<T>>>,
    }

    impl<T> Storage<T> {
        pub(in crate::snapshot) fn new(initial: Arc<Versioned<T>>) -> Self {
            let current = AtomicPtr::new(Arc::as_ptr(&initial).cast_mut());
            Storage {
                current,
                retired: Mutex::new(vec![initial]),
                _owns: PhantomData,
            }
        }

        pub(in crate::snapshot) fn load(&self) -> Guard<T> {
            self.load_full()
        }

        pub(in crate::snapshot) fn load_full(&self) -> Arc<Versioned<T>> {
            // Acquire: pairs with the Release store in `store`.
            let ptr = self.current.load(Ordering::Acquire);
            // SAFETY: `ptr` came from `Arc::as_ptr` of an Arc kept alive in
            // `retired` until `self` is dropped, so its count is positive.
            unsafe {
                Arc::increment_strong_count(ptr);
                Arc::from_raw(ptr)
            }
        }

        pub(in crate::snapshot) fn store(&self, next: Arc<Versioned<T>>) {
            let ptr = Arc::as_ptr(&next).cast_mut();
            sync::lock(&self.retired).push(next);
            // Release: pairs with the Acquire load in `load_full`.
            self.current.store(ptr, Ordering::Release);
        }
    }

    /// The same contract as arc-swap's `Cache`, spelled out for loom.
    pub(in crate::snapshot) struct Cache<'a, T> {
        storage: &'a Storage<T>,
        cached: Arc<Versioned<T>>,
    }

    impl<'a, T> Cache<'a, T> {
        pub(in crate::snapshot) fn new(storage: &'a Storage<T>) -> Self {
            Cache {
                storage,
                cached: storage.load_full(),
            }
        }

        pub(in crate::snapshot) fn load(&mut self) -> &Arc<Versioned<T>> {
            // Relaxed: only compared with the cached pointer (which cannot be
            // reused while `cached` keeps it alive); a difference triggers
            // `load_full`, whose Acquire pairs with the Release in `store`.
            let current = self.storage.current.load(Ordering::Relaxed);
            if !std::ptr::eq(current, Arc::as_ptr(&self.cached)) {
                self.cached = self.storage.load_full();
            }
            &self.cached
        }
    }
}
