//! Stress test of `CounterRegistry`: threads creating and incrementing
//! overlapping names at once get one counter per name, lose no increment,
//! and never push the registry past its bound.
//!
//! Bounded and exact like `stress.rs`: iteration counts are `scaled`, and no
//! test asserts on timing.
#![cfg(not(acqrel_loom))]

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::thread;

mod common;

use common::scaled;

use acqrel_core::CounterRegistry;

const THREADS: usize = 4;
const NAMES: usize = 12;
const MAX_COUNTERS: usize = 8;

#[test]
fn counter_registry_counts_exactly_within_its_bound() {
    let steps = scaled(20_000);
    let names: Vec<String> = (0..NAMES).map(|i| format!("counter.{i}")).collect();
    let registry = CounterRegistry::new(NonZeroUsize::new(MAX_COUNTERS).unwrap());

    // Per thread: how much it added to each name, and the names refused.
    let outcomes: Vec<(BTreeMap<String, u64>, BTreeSet<String>)> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (registry, names) = (&registry, &names);
                s.spawn(move || {
                    let mut added = BTreeMap::<String, u64>::new();
                    let mut refused = BTreeSet::new();
                    for i in 0..steps {
                        // Threads walk the names at different strides, so
                        // they race to create the same names.
                        let name = &names[(i as usize * (t + 1) + t) % NAMES];
                        let result = if i % 2 == 0 {
                            registry.counter(name).map(|counter| counter.inc())
                        } else {
                            registry.add(name, 1)
                        };
                        match result {
                            Ok(()) => *added.entry(name.clone()).or_default() += 1,
                            Err(full) => {
                                assert_eq!(full.name(), name);
                                assert_eq!(full.max_counters(), MAX_COUNTERS);
                                refused.insert(full.into_name());
                            }
                        }
                    }
                    (added, refused)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut expected = BTreeMap::<String, u64>::new();
    let mut refused = BTreeSet::new();
    for (added, thread_refused) in outcomes {
        for (name, n) in added {
            *expected.entry(name).or_default() += n;
        }
        refused.extend(thread_refused);
    }
    let snapshot = registry.snapshot();
    assert_eq!(snapshot, expected, "lost or misattributed increments");
    assert_eq!(
        registry.len(),
        MAX_COUNTERS,
        "bound not reached or exceeded"
    );
    // Names are never removed, so a name refused once is refused forever.
    assert!(refused.iter().all(|name| !snapshot.contains_key(name)));
    assert_eq!(snapshot.len() + refused.len(), NAMES);
}
