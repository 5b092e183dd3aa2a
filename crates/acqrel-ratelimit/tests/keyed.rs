//! `KeyedRateLimiter`: bounded memory under a stream of distinct keys, the
//! `max_keys` policies, independence of keys, and exact admission counts
//! under concurrency (racing checks on one key, racing new keys against the
//! cap, sweeps racing with checks).
//!
//! Every test runs on a `ManualClock`, so outcomes are exact; iteration
//! counts are `scaled` (divided by `ACQREL_STRESS_DIVISOR` under emulation).
#![cfg(not(acqrel_loom))]

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;

use common::scaled;

use acqrel_core::ManualClock;
use acqrel_ratelimit::{CapPolicy, KeyedNegative, KeyedRateLimiter, Quota};

const THREADS: usize = 4;

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

fn per_second(n: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(n).unwrap())
}

fn limiter<K: std::hash::Hash + Eq>(
    quota: Quota,
    max_keys: usize,
    policy: CapPolicy,
    clock: &ManualClock,
) -> KeyedRateLimiter<K, &ManualClock> {
    KeyedRateLimiter::builder(quota)
        .max_keys(nz(max_keys))
        .cap_policy(policy)
        .clock(clock)
        .build()
}

/// The `scaled` count as a `usize`.
fn scaled_usize(native: u64) -> usize {
    usize::try_from(scaled(native)).unwrap()
}

// ===== bounded memory =====

/// A million distinct keys, one check each, 1 µs apart; each key is idle
/// again 1 ms after its check. The periodic sweep alone (every 4 096 new
/// keys) would let the map grow to about 5 000 buckets; the cap of 1 500
/// binds, and each time it is hit the idle buckets (about 500) are evicted,
/// so every key is admitted and `len()` never exceeds the cap.
#[test]
fn a_million_distinct_keys_with_idle_expiry_stay_within_max_keys() {
    let keys = scaled(1_000_000);
    let max_keys = 1_500;
    let clock = ManualClock::new();
    // One cell per millisecond, a burst of one.
    let quota = per_second(1_000).allow_burst(NonZeroU32::MIN);
    let limiter = KeyedRateLimiter::<u64, _>::builder(quota)
        .max_keys(nz(max_keys))
        .sweep_every(nz(4_096))
        .clock(&clock)
        .build();
    let mut max_len = 0;
    for key in 0..keys {
        assert_eq!(limiter.check(&key), Ok(()), "key {key}");
        let len = limiter.len();
        assert!(len <= max_keys, "{len} buckets after key {key}");
        max_len = max_len.max(len);
        clock.advance(Duration::from_micros(1));
    }
    // The cap was reached, and held.
    assert_eq!(max_len, max_keys);
    clock.advance(Duration::from_millis(1));
    let held = limiter.len();
    assert_eq!(limiter.retain_recent(), held);
    assert!(limiter.is_empty());
}

/// Keys that stay busy longer than the cap allows: key `i` arrives at `i`
/// µs and, if admitted, is busy for `2 × max_keys` µs. A new key is
/// admitted exactly when fewer than `max_keys` keys are busy, which gives
/// periods of `max_keys` admitted keys then `max_keys` refused ones.
#[test]
fn a_new_key_is_refused_exactly_while_max_keys_keys_are_busy() {
    let max_keys = 100;
    let period = 2 * max_keys;
    let keys = (scaled_usize(100_000) / period).max(1) * period;
    let clock = ManualClock::new();
    let busy = Duration::from_micros(u64::try_from(period).unwrap());
    let quota = Quota::with_period(busy).unwrap();
    let limiter = limiter(quota, max_keys, CapPolicy::EvictIdleThenDeny, &clock);
    let mut admitted = 0;
    for key in 0..keys {
        let outcome = limiter.check(&key);
        if (key / max_keys) % 2 == 0 {
            assert_eq!(outcome, Ok(()), "key {key}");
            admitted += 1;
        } else {
            assert_eq!(
                outcome,
                Err(KeyedNegative::TooManyKeys { max_keys }),
                "key {key}"
            );
        }
        assert!(limiter.len() <= max_keys);
        clock.advance(Duration::from_micros(1));
    }
    assert_eq!(admitted, keys / 2);
}

// ===== max_keys policies =====

#[test]
fn deny_refuses_a_new_key_at_the_cap_while_held_keys_keep_working() {
    let clock = ManualClock::new();
    // Two cells, one per 500 ms.
    let limiter = limiter(per_second(2), 3, CapPolicy::Deny, &clock);
    for key in 0..3 {
        assert_eq!(limiter.check(&key), Ok(()));
    }
    let too_many = Err(KeyedNegative::TooManyKeys { max_keys: 3 });
    assert_eq!(limiter.check(&3), too_many);
    assert_eq!(limiter.len(), 3);
    // A held key keeps its own bucket.
    assert_eq!(limiter.check(&0), Ok(()));
    let denied = limiter.check(&0).unwrap_err();
    assert_eq!(
        denied.not_until().unwrap().wait_time(),
        Duration::from_millis(500)
    );
    // Idle buckets do not make room under `Deny`...
    clock.advance(Duration::from_secs(1));
    assert_eq!(limiter.check(&3), too_many);
    // ...until they are evicted.
    assert_eq!(limiter.retain_recent(), 3);
    assert_eq!(limiter.check(&3), Ok(()));
    assert_eq!(limiter.len(), 1);
}

#[test]
fn evict_idle_then_deny_admits_a_new_key_only_when_an_idle_one_can_go() {
    let clock = ManualClock::new();
    // One cell per 100 ms, a burst of one.
    let limiter = limiter::<String>(
        per_second(10).allow_burst(NonZeroU32::MIN),
        2,
        CapPolicy::EvictIdleThenDeny,
        &clock,
    );
    let too_many = Err(KeyedNegative::TooManyKeys { max_keys: 2 });
    assert_eq!(limiter.check("a"), Ok(())); // busy until 100 ms
    clock.set(Duration::from_millis(50));
    assert_eq!(limiter.check("b"), Ok(())); // busy until 150 ms
    // Neither is idle.
    assert_eq!(limiter.check("c"), too_many);
    // "a" is idle at 100 ms: evicted to make room for "c".
    clock.set(Duration::from_millis(100));
    assert_eq!(limiter.check("c"), Ok(())); // busy until 200 ms
    assert_eq!(limiter.len(), 2);
    assert_eq!(limiter.check("d"), too_many);
    // "b" still has its bucket; "a" has none and is a new key again.
    let denied = limiter.check("b").unwrap_err();
    assert_eq!(
        denied.not_until().unwrap().earliest_possible(),
        Duration::from_millis(150)
    );
    assert_eq!(limiter.check("a"), too_many);
    // "b" is idle at 150 ms: "a" comes back with a full bucket.
    clock.set(Duration::from_millis(150));
    assert_eq!(limiter.check("a"), Ok(()));
    assert_eq!(limiter.len(), 2);
}

// ===== keys =====

#[test]
fn one_keys_burst_does_not_affect_another() {
    let clock = ManualClock::new();
    // Four cells, one per 250 ms.
    let limiter = limiter::<String>(per_second(4), 10, CapPolicy::Deny, &clock);
    for _ in 0..4 {
        assert_eq!(limiter.check("a"), Ok(()));
    }
    let wait = |denied: KeyedNegative| denied.not_until().unwrap().wait_time();
    assert_eq!(
        wait(limiter.check("a").unwrap_err()),
        Duration::from_millis(250)
    );
    for _ in 0..4 {
        assert_eq!(limiter.check("b"), Ok(()));
    }
    assert_eq!(limiter.check_n("c", 4), Ok(()));
    // "a" is where it was.
    assert_eq!(
        wait(limiter.check("a").unwrap_err()),
        Duration::from_millis(250)
    );
    clock.advance(Duration::from_millis(250));
    assert_eq!(limiter.check("a"), Ok(()));
    assert_eq!(limiter.len(), 3);
}

/// A denial's wait counts from the clock's own reading, also when the
/// clock was set back before the limiter was made.
#[test]
fn a_clock_set_back_before_the_origin_names_the_whole_wait() {
    let clock = ManualClock::starting_at(Duration::from_secs(10));
    // Two cells, one per 500 ms.
    let limiter = limiter::<u8>(per_second(2), 10, CapPolicy::Deny, &clock);
    assert_eq!(limiter.check_n(&1, 2), Ok(())); // empty until 11 s
    clock.set(Duration::from_secs(4));
    let denied = limiter.check(&1).unwrap_err().not_until().unwrap();
    assert_eq!(denied.earliest_possible(), Duration::from_millis(10_500));
    assert_eq!(denied.wait_time(), Duration::from_millis(6_500));
    // A new key at that reading: a full bucket, whatever the clock says.
    assert_eq!(limiter.check_n(&2, 2), Ok(()));
    let denied = limiter.check(&2).unwrap_err().not_until().unwrap();
    assert_eq!(denied.wait_time(), Duration::from_millis(6_500));
}

#[test]
fn check_n_edge_cases_make_no_bucket_when_nothing_is_admitted() {
    let clock = ManualClock::new();
    let limiter = limiter::<String>(per_second(4), 10, CapPolicy::Deny, &clock);
    assert_eq!(limiter.check_n("k", 0), Ok(()));
    assert_eq!(
        limiter.check_n("k", 5),
        Err(KeyedNegative::InsufficientCapacity { burst: 4 })
    );
    assert!(limiter.is_empty());
    assert_eq!(limiter.check_n("k", 4), Ok(()));
    assert_eq!(limiter.len(), 1);
    assert!(matches!(
        limiter.check_n("k", 1),
        Err(KeyedNegative::NotUntil(_))
    ));
    // Too large is too large whatever the bucket holds.
    assert_eq!(
        limiter.check_n("k", 5),
        Err(KeyedNegative::InsufficientCapacity { burst: 4 })
    );
}

// ===== concurrency =====

/// `THREADS` threads check the same keys in the same order, each `BURST`
/// times per key, on a stopped clock: each key admits exactly its burst in
/// total, whether its bucket was made by one thread or raced for.
#[test]
fn threads_racing_on_one_key_admit_exactly_the_burst() {
    const BURST: u32 = 16;
    let keys = scaled_usize(2_000);
    let clock = ManualClock::new();
    let limiter = limiter::<usize>(per_second(BURST), keys, CapPolicy::Deny, &clock);
    let start = Barrier::new(THREADS);
    let per_thread: Vec<Vec<u32>> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let mut admitted = vec![0; keys];
                    for (key, admitted) in admitted.iter_mut().enumerate() {
                        for _ in 0..BURST {
                            match limiter.check(&key) {
                                Ok(()) => *admitted += 1,
                                Err(KeyedNegative::NotUntil(_)) => {}
                                Err(other) => panic!("key {key}: {other}"),
                            }
                        }
                    }
                    admitted
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for key in 0..keys {
        let total: u32 = per_thread.iter().map(|admitted| admitted[key]).sum();
        assert_eq!(total, BURST, "key {key}");
    }
    assert_eq!(limiter.len(), keys);
}

/// `THREADS` threads insert distinct keys on a stopped clock (nothing ever
/// idle): exactly `max_keys` of them are admitted, the rest refused with
/// `TooManyKeys`, and `len()` never exceeds the cap, under both policies.
#[test]
fn threads_inserting_distinct_keys_never_exceed_max_keys() {
    const MAX_KEYS: usize = 64;
    let per_thread = scaled_usize(1_000);
    let rounds = scaled(50);
    for policy in [CapPolicy::Deny, CapPolicy::EvictIdleThenDeny] {
        for _ in 0..rounds {
            let clock = ManualClock::new();
            let limiter = limiter::<usize>(per_second(1), MAX_KEYS, policy, &clock);
            let start = Barrier::new(THREADS);
            let admitted: usize = thread::scope(|s| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let (limiter, start) = (&limiter, &start);
                        s.spawn(move || {
                            start.wait();
                            let mut admitted = 0;
                            for key in t * per_thread..(t + 1) * per_thread {
                                match limiter.check(&key) {
                                    Ok(()) => admitted += 1,
                                    Err(KeyedNegative::TooManyKeys { max_keys: MAX_KEYS }) => {}
                                    Err(other) => panic!("key {key}: {other}"),
                                }
                                assert!(limiter.len() <= MAX_KEYS);
                            }
                            admitted
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(admitted, MAX_KEYS, "{policy:?}");
            assert_eq!(limiter.len(), MAX_KEYS, "{policy:?}");
        }
    }
}

/// Every key has used its burst and is full again when checkers and a
/// sweeper start together on a stopped clock: whether a key's bucket is
/// evicted before its first check or not, it admits exactly its burst
/// again. Eviction changes no decision, and a key that misses because a
/// sweep is evicting it waits for the slot that sweep frees (under `Deny`
/// too).
#[test]
fn sweeps_racing_with_checks_change_no_decision() {
    const BURST: u32 = 4;
    let keys = scaled_usize(2_000);
    let rounds = scaled(20);
    // Four cells, one per millisecond.
    let quota = per_second(1_000).allow_burst(NonZeroU32::new(BURST).unwrap());
    for (round, policy) in (0..rounds).zip(
        [CapPolicy::Deny, CapPolicy::EvictIdleThenDeny]
            .into_iter()
            .cycle(),
    ) {
        let clock = ManualClock::new();
        // Exactly as many slots as keys: a key whose bucket a sweep evicts
        // gets its slot back whatever the policy.
        let limiter = limiter::<usize>(quota, keys, policy, &clock);
        for key in 0..keys {
            assert_eq!(limiter.check_n(&key, BURST), Ok(()));
        }
        clock.set(Duration::from_millis(u64::from(BURST)));
        let start = Barrier::new(THREADS + 1);
        let done = AtomicBool::new(false);
        let (per_thread, evicted): (Vec<Vec<u32>>, usize) = thread::scope(|s| {
            let sweeper = s.spawn(|| {
                start.wait();
                let mut evicted = 0;
                while !done.load(Ordering::Acquire) {
                    evicted += limiter.retain_recent();
                    thread::yield_now();
                }
                evicted
            });
            let checkers: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let mut admitted = vec![0; keys];
                        for (key, admitted) in admitted.iter_mut().enumerate() {
                            for _ in 0..BURST {
                                match limiter.check(&key) {
                                    Ok(()) => *admitted += 1,
                                    Err(KeyedNegative::NotUntil(_)) => {}
                                    Err(other) => {
                                        panic!("round {round}, {policy:?}, key {key}: {other}")
                                    }
                                }
                            }
                        }
                        admitted
                    })
                })
                .collect();
            // Joined before unwrapping: a checker's panic must stop the
            // sweeper rather than leave it spinning.
            let joined: Vec<_> = checkers.into_iter().map(|h| h.join()).collect();
            done.store(true, Ordering::Release);
            let evicted = sweeper.join().unwrap();
            let per_thread = joined.into_iter().map(|r| r.unwrap()).collect();
            (per_thread, evicted)
        });
        for key in 0..keys {
            let total: u32 = per_thread.iter().map(|admitted| admitted[key]).sum();
            assert_eq!(total, BURST, "round {round}, {policy:?}, key {key}");
        }
        // Only buckets not yet checked were idle, each evicted at most once.
        assert!(evicted <= keys);
        assert_eq!(limiter.len(), keys);
    }
}
