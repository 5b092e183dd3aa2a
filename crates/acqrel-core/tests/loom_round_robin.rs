//! Loom model of `RoundRobin`: concurrent `next` calls never index out of
//! range and, over `k · len` calls from several threads, return each item
//! exactly `k` times, in every interleaving.
//!
//! The position is Relaxed on purpose (it publishes nothing), so there is
//! no ordering to weaken. Mutation check instead: breaking the wrap in the
//! step function (`current + 1 == len` → `current == len`) makes
//! `concurrent_calls_are_exactly_fair` fail with an out-of-bounds index.
#![cfg(acqrel_loom)]

use acqrel_core::RoundRobin;
use loom::sync::Arc;
use loom::thread;

/// Runs `threads` threads that each call `next` `calls_per_thread` times on
/// one selector over `0..len`, and returns how often each item came back.
fn counts(len: usize, threads: usize, calls_per_thread: usize) -> Vec<usize> {
    let rr = Arc::new(RoundRobin::new((0..len).collect()).unwrap());
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let rr = rr.clone();
            thread::spawn(move || {
                (0..calls_per_thread)
                    .map(|_| *rr.next())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut counts = vec![0; len];
    for w in workers {
        for i in w.join().unwrap() {
            counts[i] += 1;
        }
    }
    counts
}

#[test]
fn concurrent_calls_are_exactly_fair() {
    loom::model(|| {
        // 2 threads × 3 calls over 3 items: two full rounds, crossing the
        // wrap from the last item to the first.
        assert_eq!(counts(3, 2, 3), [2, 2, 2]);
    });
}

#[test]
fn three_threads_share_two_items_evenly() {
    loom::model(|| {
        assert_eq!(counts(2, 3, 2), [3, 3]);
    });
}
