//! Loom model of `GenerationSignal`: no lost wake-up when a waiter arrives
//! concurrently with `fire`, and publication through `fire`.
//!
//! Mutation check: weakening the Release update in `GenerationSignal::fire`
//! (or the Acquire in `generation`) to Relaxed makes
//! `fire_publishes_prior_writes_to_a_spawned_reader` fail.
//! `fire_publishes_prior_writes`, the same model with the firer spawned and
//! the reader on the model's main thread, catches neither under loom 0.7:
//! there the firer's `fetch_update` loads the generation before its
//! compare-exchange, and loom does not explore the execution in which the
//! reader sees the new generation but not the data (apparently
//! tokio-rs/loom#166). `Latch::open`'s plain `swap` is caught in that shape
//! (`loom_latch.rs`).
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

/// `fire_publishes_prior_writes` with the roles swapped: `fire` on the
/// model's main thread, the reader spawned. This is the shape in which loom
/// catches a weakened `fire` (see the module docs).
#[test]
fn fire_publishes_prior_writes_to_a_spawned_reader() {
    loom::model(|| {
        let signal = Arc::new(GenerationSignal::new());
        let data = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (signal, data) = (signal.clone(), data.clone());
            thread::spawn(move || {
                if signal.generation() == 1 {
                    // Relaxed: `generation()` is the acquire under test.
                    assert_eq!(data.load(Ordering::Relaxed), 7);
                }
            })
        };
        // Relaxed on purpose: `fire` must publish it.
        data.store(7, Ordering::Relaxed);
        signal.fire();
        reader.join().unwrap();
    });
}
