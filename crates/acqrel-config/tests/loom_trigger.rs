//! Loom model of the reloader's wake-up protocol (`src/trigger.rs`): a file
//! event, a commit by another thread, or a stop request made while the
//! reloader is about to wait is never lost. The reloader must return the
//! matching work instead of sleeping forever (loom reports a deadlock when
//! every thread is blocked; its condvar timeouts never fire, so only a
//! notification can end the wait).
//!
//! Everything else this crate publishes goes through `acqrel-core`'s
//! `Snapshot`, `GenerationSignal` and `Latch`, which have their own models.
//!
//! Mutation check (`tests/loom_mutants.txt`): deleting the notification in
//! `Trigger::update`, or releasing the lock between `Trigger::next`'s check
//! and its wait, makes the models deadlock.
#![cfg(acqrel_loom)]

use std::time::Duration;

use acqrel_config::trigger::{Timing, Trigger, Work};
use acqrel_core::{Clock, ManualClock};
use loom::sync::Arc;
use loom::thread;

/// Zero debounce and no polling: an event makes a check due at once, and
/// nothing else ever is.
fn trigger(clock: &ManualClock) -> Arc<Trigger> {
    let timing = Timing {
        debounce: Duration::ZERO,
        max_delay: Duration::ZERO,
        poll_interval: None,
    };
    Arc::new(Trigger::new(timing, clock.now()))
}

/// Runs `produce` on another thread while the model's thread waits for work.
fn handoff(produce: fn(&Trigger, &ManualClock), expected: Work) {
    loom::model(move || {
        let clock = Arc::new(ManualClock::new());
        let trigger = trigger(&clock);
        let producer = {
            let (trigger, clock) = (trigger.clone(), clock.clone());
            thread::spawn(move || produce(&trigger, &clock))
        };
        assert_eq!(trigger.next(&*clock), expected);
        producer.join().unwrap();
    });
}

#[test]
fn a_file_event_wakes_the_reloader() {
    handoff(|trigger, clock| trigger.fs_event(clock.now()), Work::Check);
}

#[test]
fn a_commit_wakes_the_reloader() {
    handoff(|trigger, _| trigger.committed(), Work::Announce);
}

#[test]
fn a_stop_wakes_the_reloader() {
    handoff(|trigger, _| trigger.stop(), Work::Stop);
}
