//! Feature `events`: each new generation of a `FlagStore` publishes the
//! exact keys it added, changed and removed, in generation order, even
//! with writers on many threads and callbacks that write to the store.
#![cfg(feature = "events")]

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;
mod flag_files;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::thread;

use acqrel_flags::events::{Event, Overflow, Receiver, TryRecvError};
use acqrel_flags::{Change, FlagStore, FlagsChanged};
use common::scaled;

use flag_files::{int_flag as flag, int_set as set};

fn receiver(store: &FlagStore, capacity: usize) -> Receiver<FlagsChanged> {
    store.subscribe(
        NonZeroUsize::new(capacity).expect("non-zero"),
        Overflow::DropOldest,
    )
}

/// The next event, which must be a message.
fn next_change(events: &mut Receiver<FlagsChanged>) -> Arc<FlagsChanged> {
    match events.try_recv() {
        Ok(Event::Message(change)) => change,
        other => panic!("expected a change, got {other:?}"),
    }
}

fn keys(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

/// `(generation, added, changed, removed)` of a change, for one assertion.
fn parts(change: &FlagsChanged) -> (u64, Vec<&str>, Vec<&str>, Vec<&str>) {
    (
        change.generation(),
        keys(change.added()),
        keys(change.changed()),
        keys(change.removed()),
    )
}

/// Subscribes a callback that logs the generation of each event.
fn log_generations(
    store: &FlagStore,
) -> (
    acqrel_flags::events::Subscription<FlagsChanged>,
    Arc<Mutex<Vec<u64>>>,
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let subscription = store.subscribe_fn(move |change| {
        sink.lock().expect("log").push(change.generation());
    });
    (subscription, log)
}

#[test]
fn replace_reports_added_changed_and_removed_keys() {
    let store = FlagStore::from_set(set(&[
        ("keep", 1),
        ("edit", 1),
        ("drop-b", 1),
        ("drop-a", 1),
    ]));
    let mut events = receiver(&store, 8);
    let generation = store.replace(set(&[("keep", 1), ("edit", 2), ("new-b", 1), ("new-a", 1)]));
    assert_eq!(generation, 1);
    assert_eq!(
        parts(&next_change(&mut events)),
        (
            1,
            vec!["new-a", "new-b"],
            vec!["edit"],
            vec!["drop-a", "drop-b"]
        ),
    );
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn apply_reports_exactly_what_it_changed() {
    let store = FlagStore::from_set(set(&[("a", 1), ("b", 1), ("c", 1)]));
    let mut events = receiver(&store, 8);
    let generation = store.apply([
        Change::Put(flag("b", 2)),       // changed
        Change::Put(flag("c", 1)),       // the same definition again: unchanged
        Change::Remove("a".to_owned()),  // removed
        Change::Remove("zz".to_owned()), // absent: nothing
        Change::Put(flag("d", 1)),       // added...
        Change::Put(flag("d", 5)),       // ...as its last put says
        Change::Put(flag("e", 1)),       // added, then
        Change::Remove("e".to_owned()),  // removed again: nothing
    ]);
    let change = next_change(&mut events);
    assert_eq!(
        parts(&change),
        (generation, vec!["d"], vec!["b"], vec!["a"])
    );
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn a_generation_that_changes_nothing_publishes_nothing() {
    let store = FlagStore::from_set(set(&[("a", 1)]));
    let mut events = receiver(&store, 8);
    let (_callback, log) = log_generations(&store);
    let quiet = store.apply([
        Change::Put(flag("a", 1)),
        Change::Remove("absent".to_owned()),
    ]);
    let quiet_too = store.replace(set(&[("a", 1)]));
    assert_eq!((quiet, quiet_too), (1, 2)); // generations still move
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    assert!(log.lock().expect("log").is_empty());

    // The next change comes with its own generation: a gap.
    let generation = store.apply([Change::Put(flag("a", 2))]);
    assert_eq!(
        parts(&next_change(&mut events)),
        (3, vec![], vec!["a"], vec![])
    );
    assert_eq!(generation, 3);
    assert_eq!(*log.lock().expect("log"), [3]);
}

#[test]
fn generations_arrive_in_order_under_concurrent_writers() {
    let writers: i64 = 4;
    let per_writer = i64::try_from(scaled(500)).expect("fits");
    let total = usize::try_from(writers * per_writer).expect("fits");
    let store = FlagStore::new();
    let mut events = receiver(&store, total);
    let (_callback, log) = log_generations(&store);

    thread::scope(|s| {
        for writer in 0..writers {
            let store = &store;
            s.spawn(move || {
                let key = format!("w{writer}");
                for n in 0..per_writer {
                    // Every apply changes the writer's own flag.
                    store.apply([Change::Put(flag(&key, n))]);
                }
            });
        }
    });

    // Every writer has returned: every event has been published (a writer
    // returns after publishing, or after handing its event to a writer
    // that publishes it before returning).
    let expected: Vec<u64> = (1..=u64::try_from(total).expect("fits")).collect();
    assert_eq!(*log.lock().expect("log"), expected);
    let mut received = Vec::new();
    let mut added = 0;
    while let Ok(event) = events.try_recv() {
        match event {
            Event::Message(change) => {
                let touched =
                    change.added().len() + change.changed().len() + change.removed().len();
                assert_eq!(touched, 1, "{change:?}");
                added += change.added().len();
                received.push(change.generation());
            }
            Event::Lagged(n) => panic!("lagged {n} with room for every event"),
        }
    }
    assert_eq!(received, expected);
    assert_eq!(added, usize::try_from(writers).expect("fits"));
}

#[test]
fn a_callback_may_write_to_the_store() {
    let store = Arc::new(FlagStore::new());
    let (_log_subscription, log) = log_generations(&store);
    // On the first event, adds a flag from inside the callback: it must not
    // deadlock (no lock of the store is held), and its event comes next.
    let writer = Arc::clone(&store);
    let _echo = store.subscribe_fn(move |change| {
        if change.added().iter().any(|key| key == "ping") {
            writer.apply([Change::Put(flag("pong", 1))]);
        }
    });
    store.apply([Change::Put(flag("ping", 1))]);
    assert_eq!(*log.lock().expect("log"), [1, 2]);
    assert!(store.snapshot().get("pong").is_some());
    assert_eq!(store.generation(), 2);
}

#[test]
fn a_panicking_callback_does_not_stop_the_events() {
    let store = FlagStore::new();
    let faulty = store.subscribe_fn(|change| assert!(change.generation() != 1, "boom"));
    let (_log_subscription, log) = log_generations(&store);
    store.apply([Change::Put(flag("a", 1))]);
    store.apply([Change::Put(flag("a", 2))]);
    assert_eq!(*log.lock().expect("log"), [1, 2]);
    let stats = faulty.stats();
    assert_eq!((stats.delivered, stats.panicked), (1, 1));
}

#[test]
fn a_slow_receiver_with_drop_oldest_is_told_it_lagged() {
    let store = FlagStore::new();
    let mut events = receiver(&store, 2);
    for n in 0..5 {
        store.apply([Change::Put(flag("a", n))]);
    }
    // Generations 1..=5 (the first added `a`, the others changed it); a
    // queue of two keeps 4 and 5.
    assert_eq!(events.try_recv(), Ok(Event::Lagged(3)));
    assert_eq!(
        parts(&next_change(&mut events)),
        (4, vec![], vec!["a"], vec![])
    );
    assert_eq!(
        parts(&next_change(&mut events)),
        (5, vec![], vec!["a"], vec![])
    );
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(events.stats().lagged, 3);
}

#[test]
fn a_dropped_receiver_unsubscribes() {
    let store = FlagStore::new();
    let events = receiver(&store, 2);
    let (callback, _log) = log_generations(&store);
    assert_eq!(store.subscribers(), 2);
    drop(events);
    callback.unsubscribe();
    assert_eq!(store.subscribers(), 0);
}
