//! Loom model of the publish order of change events (`src/events.rs`):
//! writers that commit generations at the same time publish every event,
//! once, in generation order, with no callback run under a lock.
//!
//! The generations themselves are `acqrel_core::Snapshot`'s (its own model
//! covers them); the bus's delivery is `acqrel-bus`'s. What this crate adds
//! is the drainer hand-off under the queue's mutex, modelled here with two
//! writers.
//!
//! Mutation check (`tests/loom_mutants.txt`): deciding to stop draining
//! outside the hold of the mutex that found nothing ready loses an event;
//! a writer that drains although another thread is draining publishes out
//! of order.
#![cfg(all(acqrel_loom, feature = "events"))]

use std::sync::Mutex as Log;

use acqrel_flags::{Change, Flag, FlagSet, FlagStore};
use loom::sync::Arc;
use loom::thread;

/// The boolean flag `key`.
fn flag(key: &str) -> Flag {
    let text =
        format!(r#"{{"flags": {{"{key}": {{"state": "ENABLED", "variants": {{"on": true}}}}}}}}"#);
    let (set, _) = FlagSet::parse(&text).expect("a flag file");
    set.into_iter().next().expect("one flag")
}

#[test]
fn concurrent_writers_publish_every_generation_in_order() {
    let (a, b) = (flag("a"), flag("b"));
    loom::model(move || {
        let store = Arc::new(FlagStore::new());
        // A std mutex, invisible to loom: only the log of what was seen.
        let log = std::sync::Arc::new(Log::new(Vec::new()));
        let sink = std::sync::Arc::clone(&log);
        let _subscription = store.subscribe_fn(move |change| {
            sink.lock().expect("log").push(change.generation());
        });
        let writer = {
            let (store, b) = (store.clone(), b.clone());
            thread::spawn(move || {
                store.apply([Change::Put(b)]);
            })
        };
        store.apply([Change::Put(a.clone())]);
        writer.join().expect("writer");
        assert_eq!(*log.lock().expect("log"), [1, 2]);
    });
}
