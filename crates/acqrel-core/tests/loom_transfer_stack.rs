//! Loom model of `TransferStack`: every pushed value is taken exactly once,
//! newest first, and taking a value (or seeing the stack non-empty) makes
//! its contents and its pusher's earlier writes visible.
//!
//! A node's value and link live in loom's `UnsafeCell`, so a taker that
//! reads a node its push did not publish is a causality violation even
//! without an assertion.
//!
//! Mutation check: weakening the Release compare-exchange in
//! `TransferStack::push` (or the Acquire swap in `take_all`) to Relaxed makes
//! `take_all_publishes_values_and_prior_writes` fail; weakening the Acquire
//! load in `is_empty` makes `non_empty_publishes_prior_writes` fail.
#![cfg(acqrel_loom)]

use acqrel_core::TransferStack;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// Takes from `stack` until something comes out, yielding to loom between
/// empty takes.
fn take_some<T>(stack: &TransferStack<T>) -> Vec<T> {
    loop {
        let taken: Vec<T> = stack.take_all().collect();
        if !taken.is_empty() {
            return taken;
        }
        thread::yield_now();
    }
}

#[test]
fn every_item_is_taken_exactly_once() {
    loom::model(|| {
        let stack = Arc::new(TransferStack::new());
        // Pusher 0 pushes 1 then 2; pusher 1 pushes 10.
        let pushers: Vec<_> = [&[1, 2][..], &[10][..]]
            .into_iter()
            .map(|items| {
                let stack = stack.clone();
                thread::spawn(move || {
                    for &item in items {
                        stack.push(item);
                    }
                })
            })
            .collect();
        // One take while the pushers run, one after they are done.
        let first: Vec<u32> = stack.take_all().collect();
        for pusher in pushers {
            pusher.join().unwrap();
        }
        let second: Vec<u32> = stack.take_all().collect();
        for taken in [&first, &second] {
            // Newest first: a pusher's 2 comes before its 1 in one take.
            let position = |x| taken.iter().position(|&v| v == x);
            if let (Some(one), Some(two)) = (position(1), position(2)) {
                assert!(two < one, "not newest first: {taken:?}");
            }
        }
        let mut all = [first, second].concat();
        all.sort_unstable();
        assert_eq!(all, [1, 2, 10]);
        assert!(stack.is_empty());
    });
}

#[test]
fn concurrent_takers_split_the_items() {
    loom::model(|| {
        let stack = Arc::new(TransferStack::new());
        let takers: Vec<_> = (0..2)
            .map(|_| {
                let stack = stack.clone();
                thread::spawn(move || stack.take_all().collect::<Vec<u32>>())
            })
            .collect();
        stack.push(1);
        stack.push(2);
        let mut all: Vec<u32> = takers
            .into_iter()
            .flat_map(|taker| taker.join().unwrap())
            .collect();
        all.extend(stack.take_all());
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
    });
}

#[test]
fn take_all_publishes_values_and_prior_writes() {
    loom::model(|| {
        let stack = Arc::new(TransferStack::new());
        let data = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let pushers: Vec<_> = (0..2)
            .map(|i| {
                let (stack, data) = (stack.clone(), data.clone());
                thread::spawn(move || {
                    // Relaxed on purpose: the push is what must publish it.
                    data[i].store(1, Ordering::Relaxed);
                    stack.push((i, format!("value {i}")));
                })
            })
            .collect();
        let mut seen = 0;
        while seen < 2 {
            for (i, value) in take_some(&stack) {
                assert_eq!(value, format!("value {i}"));
                // Relaxed: `take_all` is the acquire under test.
                assert_eq!(data[i].load(Ordering::Relaxed), 1);
                seen += 1;
            }
        }
        for pusher in pushers {
            pusher.join().unwrap();
        }
    });
}

#[test]
fn non_empty_publishes_prior_writes() {
    // The reader is spawned and the pusher runs on the model's main thread:
    // in the opposite shape loom 0.7 does not explore the execution that
    // exposes a Relaxed `is_empty` (the push loads the head before its
    // compare-exchange; see the notes in `loom_mutants.txt`).
    loom::model(|| {
        let stack = Arc::new(TransferStack::new());
        let data = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (stack, data) = (stack.clone(), data.clone());
            thread::spawn(move || {
                if !stack.is_empty() {
                    // Relaxed: `is_empty()` returning false is the acquire
                    // under test.
                    assert_eq!(data.load(Ordering::Relaxed), 42);
                }
            })
        };
        // Relaxed on purpose: the push is what must publish it.
        data.store(42, Ordering::Relaxed);
        stack.push(());
        reader.join().unwrap();
    });
}
