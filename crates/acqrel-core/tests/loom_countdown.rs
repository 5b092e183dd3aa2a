//! Loom model of `Countdown`: the count reaches zero exactly once, the
//! waiter sees the work of *every* counter (not only the last), and no
//! wake-up is lost.
//!
//! Mutation check: weakening the Release update in `Countdown::count_down`
//! (or the Acquire in `count`) to Relaxed makes
//! `waiter_sees_every_counters_work` fail.
#![cfg(acqrel_loom)]

use acqrel_core::{Countdown, CountdownError};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

#[test]
fn waiter_sees_every_counters_work() {
    loom::model(|| {
        let done = Arc::new(Countdown::new(2));
        let work = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let (done, work) = (done.clone(), work.clone());
                thread::spawn(move || {
                    // Relaxed on purpose: the countdown must publish it.
                    work[i].store(1, Ordering::Relaxed);
                    done.count_down().unwrap();
                })
            })
            .collect();
        done.wait();
        // Relaxed: `wait` returning is the acquire under test.
        assert_eq!(work[0].load(Ordering::Relaxed), 1);
        assert_eq!(work[1].load(Ordering::Relaxed), 1);
        for w in workers {
            w.join().unwrap();
        }
    });
}

#[test]
fn zero_is_reached_exactly_once() {
    loom::model(|| {
        let done = Arc::new(Countdown::new(2));
        let counters: Vec<_> = (0..3)
            .map(|_| {
                let done = done.clone();
                thread::spawn(move || done.count_down())
            })
            .collect();
        let results: Vec<_> = counters.into_iter().map(|c| c.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| **r == Ok(0)).count(), 1);
        assert_eq!(results.iter().filter(|r| **r == Ok(1)).count(), 1);
        assert_eq!(
            results
                .iter()
                .filter(|r| **r == Err(CountdownError))
                .count(),
            1
        );
        assert_eq!(done.count(), 0);
    });
}

#[test]
fn async_waiter_is_woken() {
    loom::model(|| {
        let done = Arc::new(Countdown::new(1));
        let waiter = {
            let done = done.clone();
            thread::spawn(move || loom::future::block_on(done.done()))
        };
        done.count_down().unwrap();
        waiter.join().unwrap();
    });
}
