//! Loom model of `Snapshot`'s generation and notification protocol:
//! a reader that sees generation `g` finds a value of generation ≥ `g` with
//! the matching contents; waiters are woken; concurrent `update` and `rcu`
//! lose no write.
//!
//! Mutation check: weakening the Release store of `generation` in
//! `Snapshot::commit` (or the Acquire load in `Snapshot::generation`) to
//! Relaxed makes `seen_generation_implies_value` and
//! `reader_cache_never_goes_stale` fail.
#![cfg(acqrel_loom)]

use acqrel_core::Snapshot;
use loom::sync::Arc;
use loom::thread::{self, JoinHandle};

/// A cell holding 0 (generation 0) and a spawned thread running `other` on
/// it; the model's main thread plays the other role.
fn cell_and_thread<R: 'static>(
    other: impl FnOnce(&Snapshot<u64>) -> R + 'static,
) -> (Arc<Snapshot<u64>>, JoinHandle<R>) {
    let cell = Arc::new(Snapshot::new(0u64));
    let handle = {
        let cell = cell.clone();
        thread::spawn(move || other(&cell))
    };
    (cell, handle)
}

#[test]
fn seen_generation_implies_value() {
    loom::model(|| {
        let (cell, writer) = cell_and_thread(|cell| cell.store(1));
        let seen = cell.generation();
        let value = cell.load();
        assert!(value.generation() >= seen);
        assert_eq!(*value, value.generation());
        writer.join().unwrap();
    });
}

#[test]
fn reader_cache_never_goes_stale() {
    loom::model(|| {
        let (cell, writer) = cell_and_thread(|cell| cell.store(1));
        let mut reader = cell.reader();
        let seen = cell.generation();
        let current = reader.load();
        assert!(current.generation() >= seen);
        assert_eq!(**current, current.generation());
        drop(reader);
        writer.join().unwrap();
    });
}

#[test]
fn waiter_gets_the_new_value() {
    loom::model(|| {
        let (cell, waiter) = cell_and_thread(|cell| {
            let next = cell.wait_changed(0);
            (*next, next.generation())
        });
        cell.store(1);
        assert_eq!(waiter.join().unwrap(), (1, 1));
    });
}

#[test]
fn async_waiter_gets_the_new_value() {
    loom::model(|| {
        let (cell, waiter) = cell_and_thread(|cell| *loom::future::block_on(cell.changed(0)));
        cell.store(1);
        assert_eq!(waiter.join().unwrap(), 1);
    });
}

#[test]
fn update_and_rcu_lose_no_write() {
    loom::model(|| {
        let (cell, rcu) = cell_and_thread(|cell| cell.rcu(|n| n + 1));
        let by_update = cell.update(|n| n + 1);
        let by_rcu = rcu.join().unwrap();
        assert_ne!(by_update, by_rcu);
        let last = cell.load();
        assert_eq!((*last, last.generation()), (2, 2));
    });
}
