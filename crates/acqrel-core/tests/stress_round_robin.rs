//! Stress tests for `RoundRobin`: exact fairness under contention.
#![cfg(not(acqrel_loom))]

use std::thread;

mod common;

use common::scaled;

use acqrel_core::RoundRobin;

/// Several threads share one selector over a list whose length is not a
/// power of two; over a multiple of `len` calls in total, every item is
/// returned exactly `calls / len` times, and a following single call starts
/// the next round at the first item.
#[test]
fn contended_selection_is_exactly_fair() {
    const LEN: usize = 7;
    const THREADS: usize = 4;
    let rounds_per_thread = scaled(5_000) as usize;
    let rr = RoundRobin::new((0..LEN).collect()).unwrap();
    let counts = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let rr = &rr;
                s.spawn(move || {
                    let mut counts = [0_usize; LEN];
                    for _ in 0..rounds_per_thread * LEN {
                        counts[*rr.next()] += 1;
                    }
                    counts
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .fold([0_usize; LEN], |mut total, counts| {
                for (t, c) in total.iter_mut().zip(counts) {
                    *t += c;
                }
                total
            })
    });
    assert_eq!(counts, [THREADS * rounds_per_thread; LEN]);
    assert_eq!(*rr.next(), 0, "a complete set of rounds ends at the front");
}

/// Calls that are not a multiple of `len` still spread as evenly as
/// possible: the counts differ by at most one, and the extra turns go to the
/// first items.
#[test]
fn uneven_call_counts_differ_by_at_most_one() {
    const LEN: usize = 5;
    const THREADS: usize = 3;
    let calls_per_thread = scaled(3_001) as usize;
    let rr = RoundRobin::new((0..LEN).collect()).unwrap();
    let mut counts = [0_usize; LEN];
    thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let rr = &rr;
                s.spawn(move || {
                    (0..calls_per_thread)
                        .map(|_| *rr.next())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for w in workers {
            for i in w.join().unwrap() {
                counts[i] += 1;
            }
        }
    });
    let total = THREADS * calls_per_thread;
    let expected: Vec<_> = (0..LEN)
        .map(|i| total / LEN + usize::from(i < total % LEN))
        .collect();
    assert_eq!(counts.to_vec(), expected);
}
