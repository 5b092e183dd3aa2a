//! Deliberate bugs that Miri and ThreadSanitizer must report: proof that the
//! checks in `cargo xtask miri` and `cargo xtask tsan` bite.
//!
//! Compiled only with `RUSTFLAGS="--cfg acqrel_selftest"`, which only
//! `cargo xtask miri --selftest` and `cargo xtask tsan --selftest` set; they
//! run each test alone and fail unless the tool reports it. Never part of a
//! normal build or test run.
#![cfg(acqrel_selftest)]

use std::cell::UnsafeCell;
use std::thread;

/// A cell shared between threads with no synchronization at all.
struct Unsynchronized<T>(UnsafeCell<T>);

// SAFETY: deliberately unsound — this type exists to create the data race
// the checkers must report.
unsafe impl<T> Sync for Unsynchronized<T> {}

impl<T> Unsynchronized<T> {
    /// The raw pointer to the contents (a method, so closures capture the
    /// whole `Sync` wrapper rather than the inner cell).
    fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// A raw pointer moved to another thread.
struct SendPtr(*mut u64);

// SAFETY: deliberately unsound — the pointee is freed on the other thread
// while this one may still read it.
unsafe impl Send for SendPtr {}

#[test]
fn deliberate_data_race() {
    let shared = Unsynchronized(UnsafeCell::new(0u64));
    thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: none; racing non-atomic write.
            unsafe { *shared.get() += 1 };
        });
        // SAFETY: none; racing non-atomic write.
        unsafe { *shared.get() += 1 };
    });
}

#[test]
fn deliberate_use_after_free() {
    let ptr = Box::into_raw(Box::new(7u64));
    let freer = {
        let ptr = SendPtr(ptr);
        thread::spawn(move || {
            let ptr = ptr;
            // SAFETY: none; frees memory the main thread still reads.
            drop(unsafe { Box::from_raw(ptr.0) });
        })
    };
    // SAFETY: none; reads memory another thread frees without
    // synchronization: a use-after-free or a race with the free.
    let value = unsafe { ptr.read_volatile() };
    freer.join().unwrap();
    std::hint::black_box(value);
}
