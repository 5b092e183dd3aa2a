//! The crate's only door to locks: std's, or loom's under
//! `--cfg acqrel_loom` so the model in `tests/loom_trigger.rs` sees every
//! lock and wait of the reloader's wake-up protocol.

#[cfg(not(acqrel_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

#[cfg(acqrel_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poison: every lock here guards plain state that no
/// user code runs under, so a poisoned lock means nothing was left half-done.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar`, for at most `timeout` when one is given, ignoring
/// poison (see [`lock`]). Under loom the timeout is not modelled: the wait
/// ends only when notified, so a model that passes has no lost wake-up.
pub(crate) fn wait<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Option<std::time::Duration>,
) -> MutexGuard<'a, T> {
    match timeout {
        None => condvar
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
        Some(timeout) => match condvar.wait_timeout(guard, timeout) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        },
    }
}
