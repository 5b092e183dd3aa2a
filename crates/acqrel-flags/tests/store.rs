//! `FlagStore`: incremental updates, generations, views that keep their
//! generation, and evaluations on many threads during a stream of updates
//! that must always see one generation.

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;
mod flag_files;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use acqrel_flags::{Change, EvaluationContext, FlagSet, FlagStore, Reason};
use common::scaled;
use flag_files::{int_flag as flag, int_set};

/// Flags `f0`..`f{count-1}`, each an integer flag of value `value`.
fn numbered(count: usize, value: i64) -> FlagSet {
    let keys: Vec<String> = (0..count).map(|i| format!("f{i}")).collect();
    let flags: Vec<(&str, i64)> = keys.iter().map(|key| (key.as_str(), value)).collect();
    int_set(&flags)
}

fn puts(set: FlagSet) -> Vec<Change> {
    set.into_iter().map(Change::Put).collect()
}

fn value(store: &FlagStore, key: &str) -> Option<i64> {
    let r = store.resolve(key, -1_i64, &EvaluationContext::new());
    (r.reason == Reason::Static).then_some(r.value)
}

#[test]
fn apply_adds_replaces_and_removes_in_order() {
    let store = FlagStore::from_set(numbered(3, 0));
    let generation = store.apply([
        Change::Put(flag("f0", 10)),
        Change::Remove("f1".into()),
        Change::Put(flag("new", 5)),
        Change::Put(flag("new", 6)),
        Change::Remove("absent".into()),
    ]);
    assert_eq!(generation, 1);
    assert_eq!(store.generation(), 1);
    let flags = store.snapshot();
    assert_eq!(flags.keys().collect::<Vec<_>>(), ["f0", "f2", "new"]);
    assert_eq!(value(&store, "f0"), Some(10));
    assert_eq!(value(&store, "f1"), None);
    assert_eq!(value(&store, "f2"), Some(0));
    assert_eq!(value(&store, "new"), Some(6));
    // Removing and re-adding within one apply: the last change wins.
    store.apply([Change::Put(flag("f2", 7)), Change::Remove("f2".into())]);
    assert_eq!(value(&store, "f2"), None);
    store.apply([Change::Remove("f0".into()), Change::Put(flag("f0", 8))]);
    assert_eq!(value(&store, "f0"), Some(8));
    // An empty apply still publishes a generation (callers can count on
    // `apply` returning a new one).
    assert_eq!(store.apply([]), 4);
}

#[test]
fn replace_swaps_everything() {
    let store = FlagStore::from_set(numbered(3, 1));
    assert_eq!(store.replace(numbered(1, 2)), 1);
    let flags = store.snapshot();
    assert_eq!(flags.len(), 1);
    assert_eq!(value(&store, "f0"), Some(2));
    assert_eq!(value(&store, "f2"), None);
}

#[test]
fn a_view_keeps_its_generation() {
    let store = FlagStore::from_set(numbered(2, 1));
    let before = store.snapshot();
    store.replace(numbered(2, 2));
    store.apply([Change::Remove("f0".into())]);
    let c = EvaluationContext::new();
    assert_eq!(before.generation(), 0);
    assert_eq!(before.resolve("f0", 0_i64, &c).value, 1);
    assert_eq!(before.resolve("f1", 0_i64, &c).value, 1);
    let after = store.snapshot();
    assert_eq!(after.generation(), 2);
    assert!(after.get("f0").is_none());
    assert_eq!(after.resolve("f1", 0_i64, &c).value, 2);
}

/// `apply` shares every untouched flag with the previous generation: it
/// does not copy the set.
#[test]
fn apply_shares_untouched_flags() {
    let store = FlagStore::from_set(numbered(1_000, 0));
    let before = store.snapshot();
    store.apply([Change::Put(flag("f500", 1))]);
    let after = store.snapshot();
    let shared = before
        .keys()
        .filter(|key| match (before.get(key), after.get(key)) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            _ => false,
        })
        .count();
    assert_eq!(shared, 999);
    assert!(!std::ptr::eq(
        before.get("f500").expect("present"),
        after.get("f500").expect("present")
    ));
}

/// Readers on several threads evaluate every flag of one view while a
/// writer publishes a stream of generations, alternating `apply` and
/// `replace`, in which every flag's value is the generation's number. Every
/// view must show one number for all flags, equal to its generation, and
/// never go back.
#[test]
fn evaluations_see_one_generation_during_updates() {
    const FLAGS: usize = 32;
    const READERS: usize = 3;
    let rounds = scaled(2_000) as i64;
    let store = Arc::new(FlagStore::from_set(numbered(FLAGS, 0)));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let c = EvaluationContext::new();
                let keys: Vec<String> = (0..FLAGS).map(|i| format!("f{i}")).collect();
                let mut last = 0;
                let mut views = 0_u64;
                loop {
                    // Read `done` before the view: once it reads true, the
                    // view is of the final generation. Acquire, pairing
                    // with the writer's Release store after its last
                    // publish.
                    let finished = done.load(Ordering::Acquire);
                    let flags = store.snapshot();
                    let generation = flags.generation() as i64;
                    for key in &keys {
                        let r = flags.resolve(key, -1_i64, &c);
                        assert_eq!(r.value, generation, "{key} in generation {generation}");
                    }
                    assert!(generation >= last, "went back from {last} to {generation}");
                    last = generation;
                    views += 1;
                    if finished {
                        return (last, views);
                    }
                }
            })
        })
        .collect();
    for g in 1..=rounds {
        let next = numbered(FLAGS, g);
        let published = if g % 2 == 0 {
            store.replace(next)
        } else {
            store.apply(puts(next))
        };
        assert_eq!(published as i64, g);
    }
    // Release: pairs with the readers' Acquire load (see there).
    done.store(true, Ordering::Release);
    for reader in readers {
        let (last, views) = reader.join().expect("reader panicked");
        assert_eq!(last, rounds);
        assert!(views >= 1);
    }
}
