//! Loom model of `GenerationSignal`: no lost wake-up when a waiter arrives
//! concurrently with `fire`, and publication through `fire`.
//!
//! Mutation check: weakening the Release update in `GenerationSignal::fire`
//! (or the Acquire in `generation`) to Relaxed makes
//! `fire_publishes_prior_writes` fail.
#![cfg(acqrel_loom)]

use acqrel_core::GenerationSignal;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

#[test]
fn waiter_racing_fire_is_not_lost() {
    loom::model(|| {
        let signal = Arc::new(GenerationSignal::new());
        let seen = signal.generation();
        let waiter = {
            let signal = signal.clone();
            thread::spawn(move || signal.wait_past(seen))
        };
        let fired = signal.fire();
        assert_eq!(waiter.join().unwrap(), fired);
    });
}

#[test]
fn async_waiter_racing_two_fires_is_not_lost() {
    loom::model(|| {
        let signal = Arc::new(GenerationSignal::new());
        let waiter = {
            let signal = signal.clone();
            thread::spawn(move || loom::future::block_on(signal.past(1)))
        };
        signal.fire();
        signal.fire();
        assert_eq!(waiter.join().unwrap(), 2);
    });
}

#[test]
fn fire_publishes_prior_writes() {
    loom::model(|| {
        let signal = Arc::new(GenerationSignal::new());
        let data = Arc::new(AtomicUsize::new(0));
        let firer = {
            let (signal, data) = (signal.clone(), data.clone());
            thread::spawn(move || {
                // Relaxed on purpose: `fire` must publish it.
                data.store(7, Ordering::Relaxed);
                signal.fire();
            })
        };
        if signal.generation() == 1 {
            // Relaxed: `generation()` is the acquire under test.
            assert_eq!(data.load(Ordering::Relaxed), 7);
        }
        firer.join().unwrap();
    });
}
