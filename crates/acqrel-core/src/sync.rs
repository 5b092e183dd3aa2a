//! The crate's only door to atomics, locks, cells and threads.
//!
//! Algorithm code imports from here, never from `std::sync` directly. A normal
//! build re-exports std; a build with `RUSTFLAGS="--cfg acqrel_loom"` re-exports
//! loom's instrumented versions so the model checker sees every operation. The
//! switch is on the cfg alone (not `test`), so crates that depend on
//! `acqrel-core` get loom-aware primitives in their own loom tests.

#![allow(unused_imports, dead_code)]

#[cfg(not(acqrel_loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(acqrel_loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

pub(crate) mod atomic {
    #[cfg(not(acqrel_loom))]
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
    };

    #[cfg(acqrel_loom)]
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
    };
}

pub(crate) mod thread {
    #[cfg(not(acqrel_loom))]
    pub(crate) use std::thread::yield_now;

    #[cfg(acqrel_loom)]
    pub(crate) use loom::thread::yield_now;
}

/// Locks `mutex`, ignoring poison.
///
/// Every mutex in this crate guards state that stays consistent across a
/// panic (a panicking user closure never leaves a half-written value behind:
/// values are published only after the closure returns), so a poisoned lock
/// carries no information worth failing over.
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

/// Waits on `condvar` for at most `timeout`, ignoring poison (see [`lock`]).
///
/// Under loom the timeout is not modelled; callers re-check their deadline
/// against the real clock and loop.
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

/// An `UnsafeCell` with loom's closure-based access API, so both builds share
/// one calling convention and loom can check every access for data races.
#[cfg(not(acqrel_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(acqrel_loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with an exclusive raw pointer to the contents.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(acqrel_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Defines a `const fn` in normal builds and a plain `fn` under loom, whose
/// primitives cannot be built in a const context. Lets users keep primitives
/// in `static`s.
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        #[cfg(not(acqrel_loom))]
        $(#[$attr])*
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        #[cfg(acqrel_loom)]
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use const_fn;
