//! Loom model of `Latch`: publication through `open`, and no lost wake-up
//! for a waiter that arrives while the latch opens.
//!
//! Mutation check: weakening the Release in `Latch::open` (or the Acquire in
//! `Latch::is_open`) to Relaxed makes `open_publishes_prior_writes` fail.
#![cfg(acqrel_loom)]

use acqrel_core::Latch;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

#[test]
fn open_publishes_prior_writes() {
    loom::model(|| {
        let latch = Arc::new(Latch::new());
        let data = Arc::new(AtomicUsize::new(0));
        let opener = {
            let (latch, data) = (latch.clone(), data.clone());
            thread::spawn(move || {
                // Relaxed on purpose: the latch is what must publish it.
                data.store(42, Ordering::Relaxed);
                latch.open();
            })
        };
        if latch.is_open() {
            // Relaxed: `is_open()` is the acquire under test.
            assert_eq!(data.load(Ordering::Relaxed), 42);
        }
        opener.join().unwrap();
    });
}

#[test]
fn blocked_waiter_is_woken() {
    loom::model(|| {
        let latch = Arc::new(Latch::new());
        let waiter = {
            let latch = latch.clone();
            thread::spawn(move || latch.wait())
        };
        assert!(latch.open());
        waiter.join().unwrap();
        assert!(!latch.open());
    });
}

#[test]
fn pending_future_is_woken() {
    loom::model(|| {
        let latch = Arc::new(Latch::new());
        let waiter = {
            let latch = latch.clone();
            thread::spawn(move || loom::future::block_on(latch.opened()))
        };
        latch.open();
        waiter.join().unwrap();
    });
}
