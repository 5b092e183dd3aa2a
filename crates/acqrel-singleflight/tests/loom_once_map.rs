//! Loom model of `OnceMap`'s claim/withdraw protocol (`src/once_map.rs`,
//! `# Protocol`): after a failed initialization exactly one caller
//! initializes, every caller gets its value, and the map ends with exactly
//! the entries it should, whatever the interleaving of the failing
//! initializer's cleanup with the other callers' claims.
//!
//! The map lock is loom's (`crate::sync`), and so are `TryOnce`'s state and
//! notifier (acqrel-core switches on the same cfg).
//!
//! Mutation check (`tests/loom_mutants.txt`): removing the entry on failure
//! while other claims are pending, deciding by `Arc::strong_count` instead
//! of the claim count, withdrawing the claim of a caller that got the value,
//! not counting a claim on an incomplete cell, or withdrawing from an entry
//! that replaced a removed one: each makes one of these models fail.
#![cfg(acqrel_loom)]

use acqrel_core::Latch;
use acqrel_singleflight::OnceMap;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// Calls `get_or_try_init` on key 0 until it succeeds, with an initializer
/// that fails on the key's first attempt (counted in `attempts`) and
/// otherwise returns `id`.
fn get_after_first_failure(map: &OnceMap<u8, usize>, attempts: &AtomicUsize, id: usize) -> usize {
    loop {
        let result = map.get_or_try_init(&0, || {
            // Relaxed: the count is read after join(), which synchronizes;
            // the RMW alone makes exactly one attempt the first.
            match attempts.fetch_add(1, Ordering::Relaxed) {
                0 => Err("first attempt"),
                _ => Ok(id),
            }
        });
        if let Ok(value) = result {
            return value;
        }
    }
}

#[test]
fn first_failure_is_retried_and_one_value_is_shared() {
    loom::model(|| {
        let map = Arc::new(OnceMap::new());
        let attempts = Arc::new(AtomicUsize::new(0));
        let others: Vec<_> = (1..3)
            .map(|id| {
                let (map, attempts) = (map.clone(), attempts.clone());
                thread::spawn(move || get_after_first_failure(&map, &attempts, id))
            })
            .collect();
        let mine = get_after_first_failure(&map, &attempts, 0);
        for other in others {
            assert_eq!(other.join().unwrap(), mine);
        }
        // One failure, one success, and no caller initialized again.
        assert_eq!(attempts.load(Ordering::Relaxed), 2);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&0), Some(mine));
    });
}

#[test]
fn waiter_of_a_failed_init_keeps_the_entry() {
    // The cleanup race: the failing initializer decides whether to remove
    // the entry while the other caller takes, waits on or completes it.
    loom::model(|| {
        let map = Arc::new(OnceMap::<u8, u32>::new());
        let failing = {
            let map = map.clone();
            thread::spawn(move || map.get_or_try_init(&0, || Err("refused")))
        };
        let succeeding = map.get_or_try_init(&0, || Ok::<_, &str>(1));
        assert_eq!(succeeding, Ok(1));
        let failed = failing.join().unwrap();
        assert!(failed == Err("refused") || failed == Ok(1), "{failed:?}");
        // The value is in the map, not in a cell the map has forgotten.
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&0), Some(1));
    });
}

#[test]
fn failures_leave_no_entry() {
    loom::model(|| {
        let map = Arc::new(OnceMap::<u8, u32>::new());
        let other = {
            let map = map.clone();
            thread::spawn(move || map.get_or_try_init(&0, || Err("refused")))
        };
        assert_eq!(map.get_or_try_init(&0, || Err("down")), Err("down"));
        assert_eq!(other.join().unwrap(), Err("refused"));
        assert_eq!(map.len(), 0);
    });
}

#[test]
fn remove_during_a_failing_init_leaves_the_new_entry_alone() {
    loom::model(|| {
        let map = Arc::new(OnceMap::<u8, u32>::new());
        let (started, proceed) = (Arc::new(Latch::new()), Arc::new(Latch::new()));
        let failing = {
            let (map, started, proceed) = (map.clone(), started.clone(), proceed.clone());
            thread::spawn(move || {
                map.get_or_try_init(&0, || {
                    started.open();
                    proceed.wait();
                    Err("refused")
                })
            })
        };
        started.wait();
        // Detaches the failing init's cell; the next caller starts afresh.
        assert_eq!(map.remove(&0), None);
        assert_eq!(map.get_or_init(&0, || 1), 1);
        proceed.open();
        assert_eq!(failing.join().unwrap(), Err("refused"));
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&0), Some(1));
    });
}
