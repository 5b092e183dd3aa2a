//! Loom model of `TryOnce`: a single successful initialization shared by
//! every caller, retry after a failed one, and race-free access to the value
//! slot (loom checks every access to the crate's `UnsafeCell`).
//!
//! Mutation check: weakening the Release store of `COMPLETE` in
//! `TryOnce::run_init` (or the Acquire load in `get`) to Relaxed makes
//! `single_initialization` fail with a causality violation on the value slot.
#![cfg(acqrel_loom)]

use acqrel_core::TryOnce;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

#[test]
fn single_initialization() {
    loom::model(|| {
        let cell = Arc::new(TryOnce::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (cell, calls) = (cell.clone(), calls.clone());
                thread::spawn(move || {
                    *cell
                        .get_or_init(|| {
                            // Relaxed: a count read after join(), which synchronizes.
                            calls.fetch_add(1, Ordering::Relaxed);
                            vec![i]
                        })
                        .first()
                        .unwrap()
                })
            })
            .collect();
        let seen: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(seen[0], seen[1]);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn reader_sees_a_complete_value() {
    loom::model(|| {
        let cell = Arc::new(TryOnce::new());
        let writer = {
            let cell = cell.clone();
            thread::spawn(move || {
                cell.get_or_init(|| String::from("ready"));
            })
        };
        if let Some(value) = cell.get() {
            assert_eq!(value, "ready");
        }
        writer.join().unwrap();
    });
}

#[test]
fn failure_is_retried_by_the_next_caller() {
    loom::model(|| {
        let cell = Arc::new(TryOnce::<u32>::new());
        let failing = {
            let cell = cell.clone();
            thread::spawn(move || cell.get_or_try_init(|| Err("down")).copied())
        };
        let succeeding = cell.get_or_try_init(|| Ok::<u32, &str>(1)).copied();
        // The succeeding caller always ends with a value: either it
        // initialized, or it waited for / retried after the failing one.
        assert_eq!(succeeding, Ok(1));
        let failed = failing.join().unwrap();
        assert!(failed == Err("down") || failed == Ok(1));
        assert_eq!(cell.get(), Some(&1));
    });
}
