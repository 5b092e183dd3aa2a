//! The crate's only door to atomics and locks: std's, or
//! loom's under `--cfg acqrel_loom` so the models in `tests/loom_*.rs` see
//! every operation.

#![allow(unused_imports, dead_code)]

#[cfg(not(acqrel_loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(acqrel_loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

/// tokio's `Notify`; under loom, a stand-in with the same guarantees
/// built on loom's mutex (`sync/notify.rs`).
#[cfg(not(acqrel_loom))]
pub(crate) use tokio::sync::Notify;

#[cfg(acqrel_loom)]
mod notify;
#[cfg(acqrel_loom)]
pub(crate) use self::notify::Notify;

pub(crate) mod atomic {
    #[cfg(not(acqrel_loom))]
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

    #[cfg(acqrel_loom)]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
}

/// Locks `mutex`, ignoring poison: no user code runs under the locks of
/// this crate, so a poisoned lock only means a panic elsewhere in the
/// thread that held it, and the state it guards is whole.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar`, ignoring poison (see [`lock`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Returns the value if `arc` was its last strong reference.
///
/// std's `Arc::into_inner` guarantees that when every holder calls it, one
/// of them gets the value. Loom's `Arc` lacks it; `try_unwrap` is the
/// closest (two holders racing may both fail, and the last plain drop then
/// frees the value), which the models never rely on.
pub(crate) fn arc_into_inner<T>(arc: Arc<T>) -> Option<T> {
    #[cfg(not(acqrel_loom))]
    return Arc::into_inner(arc);
    #[cfg(acqrel_loom)]
    return Arc::try_unwrap(arc).ok();
}
