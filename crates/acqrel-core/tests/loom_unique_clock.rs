//! Loom model of `UniqueClock`: concurrent readings over a clock that does
//! not move are still distinct and, per thread, strictly increasing.
//!
//! The clock's update is Relaxed by design (see its `# Orderings`), so
//! there is no ordering to weaken; this model checks the claim that
//! uniqueness comes from the read-modify-write alone. Replacing the
//! `fetch_update` with a separate load and store makes it fail.
#![cfg(acqrel_loom)]

use acqrel_core::{Clock, ManualClock, UniqueClock};
use loom::sync::Arc;
use loom::thread;

#[test]
fn concurrent_readings_are_unique_and_increasing() {
    loom::model(|| {
        let clock = Arc::new(UniqueClock::with_source(ManualClock::new()));
        let other = {
            let clock = clock.clone();
            thread::spawn(move || {
                let a = clock.now_nanos();
                let b = clock.now_nanos();
                assert!(b > a);
                [a, b]
            })
        };
        let mine = clock.now_nanos();
        let [a, b] = other.join().unwrap();
        assert!(mine != a && mine != b);
        assert!(clock.now_nanos() > mine.max(b));
    });
}
