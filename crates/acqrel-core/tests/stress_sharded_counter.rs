//! Stress test of `ShardedCounter`: concurrent adders lose nothing, and a
//! concurrent reader's sums never go backwards nor exceed the final total.
//!
//! Bounded and exact like `stress.rs`: iteration counts are `scaled`, and no
//! test asserts on timing.
#![cfg(not(acqrel_loom))]

use std::num::NonZeroUsize;
use std::thread;

mod common;

use common::scaled;

use acqrel_core::ShardedCounter;

const ADDERS: u64 = 4;

#[test]
fn sharded_counter_is_exact_after_join_and_monotonic_while_adding() {
    let per_thread = scaled(100_000);
    // Thread `t` adds `t + 1` per step.
    let total: u64 = (1..=ADDERS).map(|n| n * per_thread).sum();
    // Fewer shards than adders, so some threads share one.
    for counter in [
        ShardedCounter::new(),
        ShardedCounter::with_shards(NonZeroUsize::new(2).unwrap()),
    ] {
        thread::scope(|s| {
            for t in 0..ADDERS {
                let counter = &counter;
                s.spawn(move || {
                    for _ in 0..per_thread {
                        if t == 0 {
                            counter.inc();
                        } else {
                            counter.add(t + 1);
                        }
                    }
                });
            }
            let counter = &counter;
            s.spawn(move || {
                // Each shard only grows, and one reader's later loads never
                // see older values (read-read coherence): its sums never
                // decrease, though none need match an instant.
                let mut last = 0;
                while last < total {
                    let sum = counter.sum();
                    assert!(sum >= last, "sum went backwards: {sum} < {last}");
                    assert!(sum <= total, "sum {sum} exceeds the total {total}");
                    last = sum;
                    thread::yield_now();
                }
            });
        });
        assert_eq!(counter.sum(), total);
    }
}
