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
