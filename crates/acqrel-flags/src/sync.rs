//! The crate's only door to locks: std's, or loom's under
//! `--cfg acqrel_loom` so the models in `tests/loom_*.rs` see every lock.

#![allow(unused_imports, dead_code)]

#[cfg(not(acqrel_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

#[cfg(acqrel_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

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

/// Waits on `condvar` for at most `timeout`, ignoring poison (see
/// [`lock`]). Under loom the timeout is not modelled.
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}
