//! Loom model of `Throttle` (`src/throttle.rs`): on a stopped clock, of
//! two racing calls exactly one goes through, and no suppressed call is
//! lost from the count.
//!
//! Mutation check (`tests/loom_mutants.txt`): replacing the
//! compare-and-swap on `next` with an unconditional swap (check, then act)
//! lets both calls through.
#![cfg(acqrel_loom)]

use std::time::Duration;

use acqrel_core::ManualClock;
use acqrel_ratelimit::Throttle;
use loom::sync::Arc;
use loom::thread;

/// Two threads call `allow` twice each within one interval: one call in
/// all goes through, and what it reports plus what is still pending counts
/// each of the other three exactly once.
#[test]
fn one_call_per_interval_and_every_suppressed_call_counted() {
    loom::model(|| {
        let throttle = Arc::new(Throttle::with_clock(
            Duration::from_secs(1),
            ManualClock::new(),
        ));
        let other = {
            let throttle = throttle.clone();
            thread::spawn(move || [throttle.allow(), throttle.allow()])
        };
        let mut results = vec![throttle.allow(), throttle.allow()];
        results.extend(other.join().unwrap());
        let allowed: Vec<u64> = results.iter().flatten().copied().collect();
        assert_eq!(allowed.len(), 1, "{results:?}");
        assert_eq!(allowed[0] + throttle.pending(), 3, "{results:?}");
    });
}
