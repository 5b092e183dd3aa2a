//! Loom model of `Snapshot`'s generation and notification protocol:
//! a reader that sees generation `g` finds a value of generation ≥ `g` with
//! the matching contents; waiters are woken; concurrent `update` and `rcu`
//! lose no write.
//!
//! Two compositions users build on the waits are modelled too: a
//! `changed()` future dropped by its own task's wake-up while the store's
//! notification is still running, and a `wait_changed_timeout` that expires
//! as a store lands, followed by the next wait.
//!
//! Mutation check: weakening the Release store of `generation` in
//! `Snapshot::commit` (or the Acquire load in `Snapshot::generation`) to
//! Relaxed makes `seen_generation_implies_value` and
//! `reader_cache_never_goes_stale` fail; the waiter list's mutants in
//! `loom_mutants.txt` make the two composition models fail.
#![cfg(acqrel_loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use acqrel_core::Snapshot;
use loom::sync::{Arc, Mutex};
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

/// A future of a task whose wake-up drops it, as an executor drops a task
/// whose wake-up finds it cancelled. The wake runs inside the store's
/// notification, so the drop (which takes the waiter lock to remove the
/// future's entry) runs while that notification is still under way.
struct DropOnWake {
    task: Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
}

impl Wake for DropOnWake {
    fn wake(self: std::sync::Arc<Self>) {
        // The slot's lock is released before the future is dropped.
        let task = self.task.lock().unwrap().take();
        drop(task);
    }
}

#[test]
fn a_future_dropped_by_its_wake_up_during_a_notify_loses_nothing() {
    loom::model(|| {
        let (cell, writer) = cell_and_thread(|cell| cell.store(1));
        let doomed = std::sync::Arc::new(DropOnWake {
            task: Mutex::new(None),
        });
        {
            let cell = cell.clone();
            let future: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
                cell.changed(0).await;
            });
            *doomed.task.lock().unwrap() = Some(future);
        }
        let waker = Waker::from(doomed.clone());
        {
            let mut slot = doomed.task.lock().unwrap();
            let future = slot.as_mut().expect("nothing else takes the task yet");
            if future
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                *slot = None;
            }
        }
        // Another wait on the same cell, started after the first was
        // registered, sees the store.
        let next = loom::future::block_on(cell.changed(0));
        assert_eq!((*next, next.generation()), (1, 1));
        writer.join().unwrap();
        // A registered future was woken (and so dropped); none is left
        // pending with nobody to wake it.
        assert!(doomed.task.lock().unwrap().is_none());
        drop(waker);
    });
}

#[test]
fn a_wait_that_times_out_as_a_store_lands_misses_nothing_after() {
    loom::model(|| {
        let (cell, writer) = cell_and_thread(|cell| cell.store(1));
        // A zero timeout gives up at its first check under the waiter lock,
        // which races with the store's commit and notification.
        let next = match cell.wait_changed_timeout(0, Duration::ZERO) {
            Some(next) => next,
            None => cell.wait_changed(0),
        };
        assert_eq!((*next, next.generation()), (1, 1));
        writer.join().unwrap();
    });
}
