//! Loom model of `StageGate`: exactly one winner among concurrent
//! `advance(Running, Stopping)` calls, publication through the winning
//! transition, and no lost wake-up for `wait_for`.
//!
//! Mutation check: weakening the success ordering of the compare-exchange in
//! `StageGate::advance` to Relaxed (or the Acquire in `current`) makes
//! `winner_publishes_prior_writes` fail.
#![cfg(acqrel_loom)]

use acqrel_core::{AdvanceError, Stage, StageGate};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Running,
    Stopping,
    Stopped,
}

impl Stage for Life {
    fn to_u8(self) -> u8 {
        self as u8
    }
    fn from_u8(v: u8) -> Option<Self> {
        [Life::Running, Life::Stopping, Life::Stopped]
            .get(usize::from(v))
            .copied()
    }
}

#[test]
fn exactly_one_winner() {
    loom::model(|| {
        let gate = Arc::new(StageGate::new(Life::Running));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let gate = gate.clone();
                thread::spawn(move || gate.advance(Life::Running, Life::Stopping))
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results.contains(&Err(AdvanceError::Mismatch {
            found: Life::Stopping
        })));
    });
}

#[test]
fn winner_publishes_prior_writes() {
    loom::model(|| {
        let gate = Arc::new(StageGate::new(Life::Running));
        let data = Arc::new(AtomicUsize::new(0));
        let stopper = {
            let (gate, data) = (gate.clone(), data.clone());
            thread::spawn(move || {
                // Relaxed on purpose: the winning `advance` must publish it.
                data.store(3, Ordering::Relaxed);
                gate.advance(Life::Running, Life::Stopping).unwrap();
            })
        };
        if gate.current() == Life::Stopping {
            // Relaxed: `current()` is the acquire under test.
            assert_eq!(data.load(Ordering::Relaxed), 3);
        }
        stopper.join().unwrap();
    });
}

#[test]
fn waiter_for_a_stage_is_woken() {
    loom::model(|| {
        let gate = Arc::new(StageGate::new(Life::Running));
        let waiter = {
            let gate = gate.clone();
            thread::spawn(move || gate.wait_until(|s| s != Life::Running))
        };
        gate.advance(Life::Running, Life::Stopping).unwrap();
        let seen = waiter.join().unwrap();
        assert!(seen == Life::Stopping || seen == Life::Stopped);
    });
}
