//! Loom model of `AtomicBloom` on a one-word filter (64 bits, k = 2): an
//! insert that happens-before a query is never missed, and the filter
//! publishes what an inserter wrote before inserting, both to a `contains`
//! that finds the item and to an `insert` that finds it already there.
//!
//! Mutation checks: weakening the AcqRel `fetch_or` in `insert` to Acquire
//! (dropping its release) or the Acquire load in `contains` to Relaxed makes
//! `contains_publishes_prior_writes` fail; weakening the `fetch_or` to
//! Release (dropping its acquire) makes
//! `insert_finding_the_item_sees_prior_writes` fail.
#![cfg(acqrel_loom)]

use acqrel_core::AtomicBloom;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

/// The item every model inserts.
const X: &str = "x";

/// A one-word filter with two hashes, so the whole filter is one atomic.
fn tiny_filter() -> AtomicBloom {
    let filter = AtomicBloom::with_capacity(22, 0.3).unwrap();
    assert_eq!((filter.num_bits(), filter.num_hashes()), (64, 2));
    filter
}

#[test]
fn insert_before_a_join_is_never_missed() {
    loom::model(|| {
        let filter = Arc::new(tiny_filter());
        let inserter = {
            let filter = filter.clone();
            thread::spawn(move || filter.insert(X))
        };
        assert!(inserter.join().unwrap(), "the first insert is new");
        assert!(filter.contains(X));
    });
}

#[test]
fn insert_before_a_flag_is_never_missed() {
    loom::model(|| {
        let filter = Arc::new(tiny_filter());
        let flag = Arc::new(AtomicBool::new(false));
        let inserter = {
            let (filter, flag) = (filter.clone(), flag.clone());
            thread::spawn(move || {
                filter.insert(X);
                // Release: pairs with the Acquire load below.
                flag.store(true, Ordering::Release);
            })
        };
        // Acquire: pairs with the Release store above, so the insert
        // happens-before the query.
        if flag.load(Ordering::Acquire) {
            assert!(filter.contains(X), "false negative after happens-before");
        }
        inserter.join().unwrap();
    });
}

#[test]
fn contains_publishes_prior_writes() {
    loom::model(|| {
        let filter = Arc::new(tiny_filter());
        let data = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (filter, data) = (filter.clone(), data.clone());
            thread::spawn(move || {
                if filter.contains(X) {
                    // Relaxed: `contains` returning true is the acquire
                    // under test.
                    assert_eq!(data.load(Ordering::Relaxed), 1);
                }
            })
        };
        // Relaxed on purpose: the filter must publish it.
        data.store(1, Ordering::Relaxed);
        filter.insert(X);
        reader.join().unwrap();
    });
}

#[test]
fn insert_finding_the_item_sees_prior_writes() {
    loom::model(|| {
        let filter = Arc::new(tiny_filter());
        let data = Arc::new(AtomicUsize::new(0));
        let second = {
            let (filter, data) = (filter.clone(), data.clone());
            thread::spawn(move || {
                if !filter.insert(X) {
                    // Relaxed: `insert` returning false is the acquire under
                    // test.
                    assert_eq!(data.load(Ordering::Relaxed), 1);
                }
            })
        };
        // Relaxed on purpose: the filter must publish it.
        data.store(1, Ordering::Relaxed);
        filter.insert(X);
        second.join().unwrap();
    });
}

#[test]
fn racing_inserts_of_a_new_item_report_it_new_at_least_once() {
    loom::model(|| {
        let filter = Arc::new(tiny_filter());
        let other = {
            let filter = filter.clone();
            thread::spawn(move || filter.insert(X))
        };
        let mine = filter.insert(X);
        let theirs = other.join().unwrap();
        assert!(mine || theirs, "nobody was told the item was new");
        assert!(filter.contains(X));
    });
}
