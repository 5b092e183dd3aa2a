//! Multi-threaded stress tests with exact outcomes.
//!
//! Each test is bounded: iteration counts are fixed and divided by
//! `ACQREL_STRESS_DIVISOR` (set by the cross-architecture runner, where qemu
//! runs code about ten times slower), and every blocking wait has a generous
//! hang guard whose expiry fails the test rather than hanging CI. No test
//! asserts on timing.
#![cfg(not(acqrel_loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

mod common;

use common::{HANG_GUARD, scaled};

use acqrel_core::{
    Clock, Countdown, GenerationSignal, Latch, ManualClock, Snapshot, Stage, StageGate, TryOnce,
    UniqueClock,
};

#[derive(Clone)]
struct Pair {
    a: u64,
    b: u64,
}

#[test]
fn snapshot_readers_never_see_torn_or_older_values() {
    let writes = scaled(20_000);
    let cell = Snapshot::new(Pair { a: 0, b: 0 });
    thread::scope(|s| {
        for reader_kind in 0..2 {
            let cell = &cell;
            s.spawn(move || {
                let mut reader = cell.reader();
                let mut last = 0;
                while last < writes {
                    let (a, b, generation) = if reader_kind == 0 {
                        let g = cell.load();
                        (g.a, g.b, g.generation())
                    } else {
                        let r = reader.load();
                        (r.a, r.b, r.generation())
                    };
                    assert_eq!(a, b, "torn value");
                    assert_eq!(a, generation, "value and generation disagree");
                    assert!(generation >= last, "generation went backwards");
                    last = generation;
                }
            });
        }
        for i in 1..=writes {
            assert_eq!(cell.update(|_| Pair { a: i, b: i }), i);
        }
    });
}

#[test]
fn snapshot_rcu_and_update_lose_no_increment() {
    let per_thread = scaled(5_000);
    let cell = Snapshot::new(0u64);
    thread::scope(|s| {
        for t in 0..3 {
            let cell = &cell;
            s.spawn(move || {
                for _ in 0..per_thread {
                    if t == 0 {
                        cell.update(|n| n + 1);
                    } else {
                        cell.rcu(|n| n + 1);
                    }
                }
            });
        }
    });
    assert_eq!(*cell.load(), 3 * per_thread);
    assert_eq!(cell.generation(), 3 * per_thread);
}

#[test]
fn snapshot_watcher_sees_every_generation_or_a_later_one() {
    let writes = scaled(5_000);
    let cell = Snapshot::new(0u64);
    thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen = 0;
            let mut wakeups = 0;
            while seen < writes {
                let next = cell
                    .wait_changed_timeout(seen, HANG_GUARD)
                    .expect("watcher missed a change");
                assert!(next.generation() > seen);
                assert_eq!(*next, next.generation());
                seen = next.generation();
                wakeups += 1;
            }
            wakeups
        });
        for i in 1..=writes {
            cell.store(i);
        }
        let wakeups = watcher.join().unwrap();
        assert!((1..=writes).contains(&wakeups));
    });
}

#[test]
fn generation_signal_waiters_reach_the_last_generation() {
    let fires = scaled(10_000);
    let signal = GenerationSignal::new();
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut seen = 0;
                while seen < fires {
                    seen = signal
                        .wait_past_timeout(seen, HANG_GUARD)
                        .expect("lost wake-up");
                }
                assert_eq!(seen, fires);
            });
        }
        for i in 1..=fires {
            assert_eq!(signal.fire(), i);
        }
    });
}

#[test]
fn countdown_reaches_zero_once_and_publishes_all_work() {
    let rounds = scaled(500);
    for _ in 0..rounds {
        let workers = 4;
        let done = Countdown::new(workers);
        let work: Vec<AtomicUsize> = (0..workers).map(|_| AtomicUsize::new(0)).collect();
        let zero_hits = AtomicUsize::new(0);
        thread::scope(|s| {
            for slot in &work {
                let (done, zero_hits) = (&done, &zero_hits);
                s.spawn(move || {
                    // Relaxed on purpose: the countdown must publish it.
                    slot.store(1, Ordering::Relaxed);
                    // Relaxed counters below: read after the scope joins.
                    if done.count_down() == Ok(0) {
                        zero_hits.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            assert!(
                done.wait_timeout(HANG_GUARD),
                "countdown never reached zero"
            );
            // Relaxed is enough: `wait` returning is the acquire.
            assert!(work.iter().all(|w| w.load(Ordering::Relaxed) == 1));
        });
        assert_eq!(zero_hits.load(Ordering::Relaxed), 1);
        assert!(done.count_down().is_err());
    }
}

#[test]
fn try_once_retries_failures_and_initializes_exactly_once() {
    let rounds = scaled(300);
    for _ in 0..rounds {
        let cell = TryOnce::new();
        let attempts = AtomicUsize::new(0);
        let successes = AtomicUsize::new(0);
        thread::scope(|s| {
            for t in 0..4usize {
                let (cell, attempts, successes) = (&cell, &attempts, &successes);
                s.spawn(move || {
                    // Each thread retries until the cell holds a value; the
                    // first two attempts overall fail.
                    loop {
                        let result = cell.get_or_try_init(|| {
                            // Relaxed: a ticket counter; the RMW order alone
                            // decides which attempts fail.
                            if attempts.fetch_add(1, Ordering::Relaxed) < 2 {
                                Err(())
                            } else {
                                // Relaxed: read after the scope joins.
                                successes.fetch_add(1, Ordering::Relaxed);
                                Ok(t)
                            }
                        });
                        if let Ok(v) = result {
                            return *v;
                        }
                    }
                });
            }
        });
        assert_eq!(successes.load(Ordering::Relaxed), 1);
        assert_eq!(attempts.load(Ordering::Relaxed), 3);
        assert!(cell.get().is_some());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Running,
    Stopping,
}

impl Stage for Life {
    fn to_u8(self) -> u8 {
        self as u8
    }
    fn from_u8(v: u8) -> Option<Self> {
        [Life::Running, Life::Stopping].get(usize::from(v)).copied()
    }
}

#[test]
fn stage_gate_has_exactly_one_winner_per_round() {
    let rounds = scaled(500);
    for _ in 0..rounds {
        let gate = StageGate::new(Life::Running);
        let winners = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    if gate.advance(Life::Running, Life::Stopping).is_ok() {
                        // Relaxed: read after the scope joins.
                        winners.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            assert!(gate.wait_for_timeout(Life::Stopping, HANG_GUARD));
        });
        assert_eq!(winners.load(Ordering::Relaxed), 1);
    }
}

#[test]
fn unique_clock_readings_are_distinct_across_threads() {
    let per_thread = scaled(20_000);
    let clock = UniqueClock::with_source(ManualClock::new());
    let mut all: Vec<u64> = thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let clock = &clock;
                s.spawn(move || {
                    let mut readings = Vec::with_capacity(per_thread as usize);
                    for i in 0..per_thread {
                        if t == 0 && i % 100 == 0 {
                            clock.source().advance(Duration::from_nanos(50));
                        }
                        readings.push(clock.now_nanos());
                    }
                    assert!(readings.windows(2).all(|w| w[0] < w[1]));
                    readings
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total, "duplicate timestamp");
}

#[test]
fn latch_wakes_many_async_waiters_on_many_threads() {
    let rounds = scaled(200);
    for _ in 0..rounds {
        let latch = Arc::new(Latch::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (latch, woken) = (latch.clone(), woken.clone());
                thread::spawn(move || {
                    pollster::block_on(latch.opened());
                    // Relaxed: read after join().
                    woken.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        latch.open();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(woken.load(Ordering::Relaxed), 4);
    }
}
