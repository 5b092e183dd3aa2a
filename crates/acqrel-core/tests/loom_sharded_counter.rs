//! Loom model of `ShardedCounter`: adds from several threads are all counted
//! once the threads are joined.
//!
//! The counter is Relaxed by design (see its `# Orderings`), so there is no
//! ordering to weaken; like `loom_unique_clock.rs`, this model checks that
//! exactness comes from the read-modify-write alone. The models use one
//! shard so that every add lands on the same atomic whatever the probes
//! (under loom all model threads share one probe anyway). Splitting `add`'s
//! `fetch_add` into a load and a store makes them fail.
#![cfg(acqrel_loom)]

use std::num::NonZeroUsize;

use acqrel_core::ShardedCounter;
use loom::sync::Arc;
use loom::thread;

fn one_shard() -> Arc<ShardedCounter> {
    Arc::new(ShardedCounter::with_shards(NonZeroUsize::MIN))
}

#[test]
fn concurrent_adds_are_exact_after_join() {
    loom::model(|| {
        let counter = one_shard();
        let adders: Vec<_> = [1, 2]
            .into_iter()
            .map(|n| {
                let counter = counter.clone();
                thread::spawn(move || counter.add(n))
            })
            .collect();
        counter.inc();
        for adder in adders {
            adder.join().unwrap();
        }
        assert_eq!(counter.sum(), 4);
    });
}

#[test]
fn sum_while_adding_is_between_bounds() {
    loom::model(|| {
        let counter = one_shard();
        let adder = {
            let counter = counter.clone();
            thread::spawn(move || {
                counter.add(1);
                counter.add(2);
            })
        };
        let during = counter.sum();
        assert!([0, 1, 3].contains(&during), "sum {during} mid-add");
        adder.join().unwrap();
        assert_eq!(counter.sum(), 3);
    });
}
