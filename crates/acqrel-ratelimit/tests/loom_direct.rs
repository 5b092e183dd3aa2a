//! Loom models of `RateLimiter` (`src/direct.rs`): admission is decided by
//! the state's compare-and-swap alone, so racing checks on a stopped clock
//! admit exactly the burst; a check racing quota changes decides with one
//! quota's parameters and the state that quota's epoch names, never a mix;
//! a refund racing a check is never lost.
//!
//! The clock is a stopped `ManualClock`: time plays no part, so every
//! outcome is exact. Times are in nanoseconds, quotas built with
//! `Quota::with_period`, so the arithmetic below is exact too.
//!
//! Mutation check (`tests/loom_mutants.txt`): replacing the state's
//! compare-and-swap with an unconditional swap (a load then a store) makes
//! `racing_checks_admit_exactly_the_burst` and
//! `a_refund_racing_a_check_is_never_lost` fail; removing the Acquire fence
//! of the slot's seqlock read, or its epoch-tag comparison, makes
//! `a_check_racing_two_quota_changes_sees_one_quota` fail.
#![cfg(acqrel_loom)]

use std::time::Duration;

use acqrel_core::ManualClock;
use acqrel_ratelimit::{Quota, RateLimiter};
use loom::sync::Arc;
use loom::thread;

mod common;

use common::drain;

/// One cell every `t_ns` nanoseconds, at most `burst` at once.
fn quota(t_ns: u64, burst: u32) -> Quota {
    common::quota(Duration::from_nanos(t_ns), burst)
}

/// A limiter on a clock stopped at zero.
fn limiter(quota: Quota) -> Arc<RateLimiter<ManualClock>> {
    Arc::new(RateLimiter::with_clock(quota, ManualClock::new()))
}

/// Three threads, one check each, on a bucket of two: exactly two are
/// admitted, the third is told to wait exactly one interval, and nothing is
/// left.
#[test]
fn racing_checks_admit_exactly_the_burst() {
    loom::model(|| {
        let limiter = limiter(quota(10, 2));
        let others: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                thread::spawn(move || limiter.check())
            })
            .collect();
        let mut results = vec![limiter.check()];
        results.extend(others.into_iter().map(|t| t.join().unwrap()));
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
        let denied: Vec<_> = results.iter().filter_map(|r| r.err()).collect();
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].wait_time(), Duration::from_nanos(10));
        assert_eq!(drain(&limiter), (0, Duration::from_nanos(10)));
    });
}

/// A check races two quota changes (so the slot of the quota the check may
/// have read is rewritten while it reads it). The bucket starts with one
/// cell of two (Q0: 10 ns per cell, TAT 10); every quota keeps that cell
/// (Q1: 5 ns, burst 1; Q2: 3 ns, burst 3), so whichever quota the check
/// runs under, it is admitted, and the bucket ends empty under Q2.
///
/// A torn read is denied instead: the check holds the epoch-0 state (TAT
/// 10); a slot holds an interval and a burst (the tolerance is their
/// product), so with Q2's interval and Q0's burst (3, tolerance 6) it
/// computes TAT 13, more than 6 ahead, so "wait 7"; with Q0's interval and
/// Q1's burst (10, tolerance 10), "wait 10"; with Q2's whole parameters on
/// that state (3, tolerance 9), "wait 4". A torn read that admits is harmless: its
/// compare-and-swap expects the epoch-0 state, which is gone, so it decides
/// again.
#[test]
fn a_check_racing_two_quota_changes_sees_one_quota() {
    loom::model(|| {
        let limiter = limiter(quota(10, 2));
        limiter.check().unwrap();
        let writer = {
            let limiter = limiter.clone();
            thread::spawn(move || {
                limiter.set_quota(quota(5, 1));
                limiter.set_quota(quota(3, 3));
            })
        };
        assert_eq!(limiter.check(), Ok(()));
        writer.join().unwrap();
        assert_eq!(limiter.quota(), quota(3, 3));
        assert_eq!(drain(&limiter), (0, Duration::from_nanos(3)));
    });
}

/// A refund races a check on a bucket holding one cell of two. In either
/// order the check is admitted and the refund returns one cell, so exactly
/// one cell is left: a lost update would leave none (the refund
/// overwritten) or two (the admission overwritten).
#[test]
fn a_refund_racing_a_check_is_never_lost() {
    loom::model(|| {
        let limiter = limiter(quota(10, 2));
        limiter.check().unwrap();
        let refunder = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.refund(1))
        };
        assert_eq!(limiter.check(), Ok(()));
        refunder.join().unwrap();
        assert_eq!(drain(&limiter), (1, Duration::from_nanos(10)));
    });
}
