//! Stress tests for `TransferStack`: several pushers and several concurrent
//! `take_all`-ers, with exact outcomes (every value taken exactly once,
//! newest first per pusher, every value dropped exactly once).
//!
//! Bounded: each pusher pushes a fixed, scaled number of values, and each
//! taker stops after the take that follows the last pusher finishing. No
//! sleeps, no timing assertions.
#![cfg(not(acqrel_loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

mod common;

use common::scaled;

use acqrel_core::TransferStack;

const PUSHERS: usize = 3;
const TAKERS: usize = 2;

/// Runs `PUSHERS` threads that each push `per_pusher` values built by
/// `make(pusher, seq)` while `TAKERS` threads take concurrently, handing each
/// non-empty take to `inspect` on the taker's thread; returns the takes made
/// by the takers plus a final take after all threads finished.
fn push_while_taking<T, R>(
    per_pusher: usize,
    make: impl Fn(usize, usize) -> T + Sync,
    inspect: impl Fn(acqrel_core::TakeAll<T>) -> R + Sync,
) -> Vec<R>
where
    T: Send,
    R: Send,
{
    let stack = TransferStack::new();
    let finished = AtomicUsize::new(0);
    let mut results = thread::scope(|s| {
        for pusher in 0..PUSHERS {
            let (stack, finished, make) = (&stack, &finished, &make);
            s.spawn(move || {
                for seq in 0..per_pusher {
                    stack.push(make(pusher, seq));
                }
                // Relaxed: only ends the takers' loops; what was pushed is
                // published by the pushes and, for the final take, by the
                // scope's join.
                finished.fetch_add(1, Ordering::Relaxed);
            });
        }
        let takers: Vec<_> = (0..TAKERS)
            .map(|_| {
                let (stack, finished, inspect) = (&stack, &finished, &inspect);
                s.spawn(move || {
                    let mut results = Vec::new();
                    loop {
                        // Read before taking, so the take after the last
                        // pusher finished still runs.
                        let done = finished.load(Ordering::Relaxed) == PUSHERS;
                        if !stack.is_empty() {
                            results.push(inspect(stack.take_all()));
                        }
                        if done {
                            return results;
                        }
                        thread::yield_now();
                    }
                })
            })
            .collect();
        takers
            .into_iter()
            .flat_map(|taker| taker.join().unwrap())
            .collect::<Vec<R>>()
    });
    results.push(inspect(stack.take_all()));
    results
}

#[test]
fn transfer_stack_every_value_is_taken_exactly_once() {
    let per_pusher = scaled(20_000) as usize;
    let takes = push_while_taking(
        per_pusher,
        |pusher, seq| (pusher, seq),
        |taken| {
            let taken: Vec<(usize, usize)> = taken.collect();
            // Newest first: within one take, each pusher's values come in
            // decreasing order.
            let mut last = [usize::MAX; PUSHERS];
            for &(pusher, seq) in &taken {
                assert!(seq < last[pusher], "take not newest first");
                last[pusher] = seq;
            }
            taken
        },
    );
    let mut seen = vec![vec![false; per_pusher]; PUSHERS];
    for (pusher, seq) in takes.into_iter().flatten() {
        assert!(!seen[pusher][seq], "value ({pusher}, {seq}) taken twice");
        seen[pusher][seq] = true;
    }
    assert!(
        seen.iter().flatten().all(|&taken| taken),
        "a value was lost"
    );
}

/// Counts its drops; the id catches a value dropped twice.
struct Tracked {
    drops: Arc<[AtomicUsize]>,
    id: usize,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Relaxed: the counts are read after every thread has been joined.
        self.drops[self.id].fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn transfer_stack_drops_every_value_exactly_once() {
    const LEFT_OVER: usize = 3;
    let per_pusher = scaled(5_000) as usize;
    let pushed = PUSHERS * per_pusher;
    let drops: Arc<[AtomicUsize]> = (0..pushed + LEFT_OVER)
        .map(|_| AtomicUsize::new(0))
        .collect();
    let stack = TransferStack::new();
    thread::scope(|s| {
        for pusher in 0..PUSHERS {
            let (stack, drops) = (&stack, &drops);
            s.spawn(move || {
                for seq in 0..per_pusher {
                    stack.push(Tracked {
                        drops: drops.clone(),
                        id: pusher * per_pusher + seq,
                    });
                }
            });
        }
        for taker in 0..TAKERS {
            let stack = &stack;
            s.spawn(move || {
                for round in 0..per_pusher {
                    let mut taken = stack.take_all();
                    // Consume a little and drop the rest with the iterator:
                    // the first taker keeps one value, the other none.
                    if taker == 0 && round % 2 == 0 {
                        drop(taken.next());
                    }
                    drop(taken);
                }
            });
        }
    });
    // Leave some values in the stack for its own drop to free.
    for id in pushed..pushed + LEFT_OVER {
        stack.push(Tracked {
            drops: drops.clone(),
            id,
        });
    }
    drop(stack);
    for (id, count) in drops.iter().enumerate() {
        assert_eq!(count.load(Ordering::Relaxed), 1, "value {id}");
    }
}
