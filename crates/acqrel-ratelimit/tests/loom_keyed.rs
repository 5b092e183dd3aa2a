//! Loom models of `KeyedRateLimiter` (`src/keyed.rs`), on the `sync`
//! shim's stand-in for DashMap (two shards, each a `HashMap` behind a loom
//! `RwLock`), so the shard locks that order a bucket's insertion, checks and
//! eviction are seen: a new key that finds the limiter full sees every held
//! bucket's `next_idle` contribution (the reservation's Release/Acquire
//! pair) and so evicts an idle bucket instead of refusing the key; an
//! eviction racing checks of the same key never lets the key have more
//! cells than one bucket would have had; and a check whose clock reading is
//! older than a sweep that evicted its key finds the key no fuller than the
//! evicted bucket (`swept_at`).
//!
//! Time: each thread has its own clock reading (`ThreadClock`), fixed
//! before it touches the limiter, which is what a thread that read a shared
//! clock and was then preempted holds; a shared `ManualClock` would add
//! the Release/Acquire pair of its own atomic between the threads and hide
//! the orderings under test. Quotas are `Quota::with_period` in
//! nanoseconds, so the arithmetic is exact.
//!
//! Mutation check (`tests/loom_mutants.txt`): dropping the Release half of
//! the reservation, or the Acquire of a failed one, makes
//! `a_new_key_at_the_cap_evicts_an_idle_bucket_it_raced` fail; evicting busy
//! buckets, or a bucket's compare-and-swap turned into a plain swap, makes
//! `an_eviction_racing_checks_never_admits_more_than_the_quota` fail; starting a new bucket from zero instead of `swept_at` makes
//! `a_check_older_than_the_sweep_that_evicted_its_key_is_still_denied` fail.
#![cfg(acqrel_loom)]

use std::cell::Cell;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::num::NonZeroUsize;
use std::time::Duration;

use acqrel_core::Clock;
use acqrel_ratelimit::{CapPolicy, KeyedNegative, KeyedRateLimiter};
use loom::sync::Arc;
use loom::thread;

mod common;

loom::thread_local! {
    /// This thread's clock reading, in ns.
    static READING: Cell<u64> = Cell::new(0);
}

/// A clock that gives each thread the reading it set with [`at`]: 0 until
/// then.
struct ThreadClock;

impl Clock for ThreadClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(READING.with(Cell::get))
    }
}

/// Sets this thread's clock reading to `ns`.
fn at(ns: u64) {
    READING.with(|reading| reading.set(ns));
}

type Limiter = Arc<KeyedRateLimiter<u32, ThreadClock>>;

/// One cell every 10 ns, at most `burst` at once, `max_keys` buckets, with
/// its origin at reading 0.
fn limiter(burst: u32, max_keys: usize) -> Limiter {
    Arc::new(
        KeyedRateLimiter::builder(common::quota(Duration::from_nanos(10), burst))
            .max_keys(NonZeroUsize::new(max_keys).unwrap())
            .cap_policy(CapPolicy::EvictIdleThenDeny)
            .clock(ThreadClock)
            .build(),
    )
}

/// The shard the shim's loom map puts `key` in (the same fixed hash).
fn shard(key: u32) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key) % 2
}

/// A key in the other shard from `key`.
fn key_beside(key: u32) -> u32 {
    (key + 1..).find(|&k| shard(k) != shard(key)).unwrap()
}

/// `max_keys` 1. X inserts key A at reading 0 (TAT 10) while Y, at reading
/// 20 (A is idle for Y), checks key B, in the other shard. If A's slot is
/// reserved first, Y finds the limiter full, sweeps, evicts A and is
/// admitted; if B's is, X is refused. Y is admitted either way: it is
/// refused only if its sweep misses A's `next_idle` (10) and sees only its
/// own contribution (30), which comes earlier in `next_idle`'s order when
/// Y lowered it before X; the reservation's Release (X) and the failed
/// reservation's Acquire (Y) are what publish A's to Y.
#[test]
fn a_new_key_at_the_cap_evicts_an_idle_bucket_it_raced() {
    loom::model(|| {
        let limiter = limiter(1, 1);
        let (a, b) = (0, key_beside(0));
        let x = {
            let limiter = limiter.clone();
            thread::spawn(move || {
                at(0);
                limiter.check(&a)
            })
        };
        let y = {
            let limiter = limiter.clone();
            thread::spawn(move || {
                at(20);
                limiter.check(&b)
            })
        };
        let x = x.join().unwrap();
        assert_eq!(y.join().unwrap(), Ok(()));
        assert!(
            matches!(x, Ok(()) | Err(KeyedNegative::TooManyKeys { max_keys: 1 })),
            "{x:?}"
        );
        assert_eq!(limiter.len(), 1);
    });
}

/// The key's bucket starts empty (two cells taken at reading 0, TAT 20).
/// C checks twice at reading 10, one cell available; D checks once at
/// reading 20, racing C's compare-and-swap on the bucket (both hold the
/// shard's read lock); S, at reading 20, sweeps (the bucket is idle for S
/// unless a check took a cell first) and checks twice. One bucket over the
/// window 0..=20 gives back two cells, so at most two of the five checks
/// are admitted, whether S's sweep evicted the bucket and a new one was
/// made, or not; and the key ends with one bucket. Evicting a busy bucket
/// hands S a bucket fuller than the one it replaced, and a check that
/// overwrites the TAT (no compare-and-swap) loses the other's cell: three
/// admitted, either way.
#[test]
fn an_eviction_racing_checks_never_admits_more_than_the_quota() {
    loom::model(|| {
        let limiter = limiter(2, 4);
        limiter.check_n(&1, 2).unwrap();
        let c = {
            let limiter = limiter.clone();
            thread::spawn(move || {
                at(10);
                [limiter.check(&1), limiter.check(&1)]
            })
        };
        let d = {
            let limiter = limiter.clone();
            thread::spawn(move || {
                at(20);
                limiter.check(&1)
            })
        };
        at(20);
        limiter.retain_recent();
        let mut results = vec![limiter.check(&1), limiter.check(&1)];
        results.extend(c.join().unwrap());
        results.push(d.join().unwrap());
        let admitted = results.iter().filter(|r| r.is_ok()).count();
        assert!((1..=2).contains(&admitted), "{results:?}");
        assert_eq!(limiter.len(), 1);
    });
}

/// The key's bucket is empty at reading 0 (TAT 20). S sweeps at reading 20
/// and evicts it, while C checks the key with reading 0 (a reading taken
/// before the sweep). The evicted bucket denies C; so must the new one C
/// finds after the eviction, which starts from `swept_at` (20), not from
/// an empty history.
#[test]
fn a_check_older_than_the_sweep_that_evicted_its_key_is_still_denied() {
    loom::model(|| {
        let limiter = limiter(2, 4);
        limiter.check_n(&1, 2).unwrap();
        let c = {
            let limiter = limiter.clone();
            thread::spawn(move || {
                at(0);
                limiter.check(&1)
            })
        };
        at(20);
        let evicted = limiter.retain_recent();
        let denied = c.join().unwrap().unwrap_err();
        assert!(matches!(denied, KeyedNegative::NotUntil(_)), "{denied:?}");
        assert_eq!(evicted, 1);
        assert!(limiter.is_empty());
    });
}
