//! Stress tests: threads racing on one `RateLimiter` or `Throttle` whose
//! clock is stopped, so every total is exact. No over-admission (two
//! threads taking the same cell, the bug of a bucket kept in two atomics)
//! and no under-admission (a cell lost to a failed update).
//!
//! Iteration counts are `scaled` (divided by `ACQREL_STRESS_DIVISOR` under
//! emulation); the only waits are rendezvous bounded by `HANG_GUARD`.
#![cfg(not(acqrel_loom))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use acqrel_core::ManualClock;
use acqrel_ratelimit::{NegativeOutcome, RateLimiter, Throttle};

mod common;

use common::{drain, ms, quota, rendezvous, scaled};

const THREADS: usize = 4;

fn burst(native: u64) -> u32 {
    u32::try_from(scaled(native)).unwrap()
}

/// Runs `work` on `THREADS` threads started together, and returns what
/// each returned.
fn race<T: Send>(work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let arrived = AtomicUsize::new(0);
    thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (work, arrived) = (&work, &arrived);
                s.spawn(move || {
                    rendezvous(arrived, THREADS);
                    work(i)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    })
}

/// Checks until the first denial (on a stopped clock the bucket stays
/// empty from then on); returns the cells admitted, and checks the denial
/// names exactly one interval.
fn check_until_denied(limiter: &RateLimiter<&ManualClock>, interval: Duration) -> u64 {
    let mut admitted = 0;
    loop {
        match limiter.check() {
            Ok(()) => admitted += 1,
            Err(denied) => {
                assert_eq!(denied.wait_time(), interval);
                return admitted;
            }
        }
    }
}

/// One large bucket: the threads together are admitted exactly its burst.
#[test]
fn racing_checks_admit_exactly_the_burst() {
    let clock = ManualClock::new();
    let burst = burst(200_000);
    let limiter = RateLimiter::with_clock(quota(ms(1), burst), &clock);
    let admitted = race(|_| check_until_denied(&limiter, ms(1)));
    assert_eq!(admitted.iter().sum::<u64>(), u64::from(burst));
    assert_eq!(drain(&limiter), (0, ms(1)));
}

/// Many small buckets, the threads meeting before each: the race for the
/// last cells happens thousands of times, and each bucket admits exactly
/// its burst.
#[test]
fn racing_for_the_last_cells_admits_exactly_the_burst() {
    const BURST: u32 = 6;
    let clock = ManualClock::new();
    let rounds = scaled(2_000) as usize;
    let limiters: Vec<_> = (0..rounds)
        .map(|_| RateLimiter::with_clock(quota(ms(1), BURST), &clock))
        .collect();
    let starts: Vec<_> = (0..rounds).map(|_| AtomicUsize::new(0)).collect();
    let per_thread = race(|_| {
        limiters
            .iter()
            .zip(&starts)
            .map(|(limiter, start)| {
                rendezvous(start, THREADS);
                check_until_denied(limiter, ms(1))
            })
            .collect::<Vec<_>>()
    });
    for round in 0..rounds {
        let total: u64 = per_thread.iter().map(|counts| counts[round]).sum();
        assert_eq!(total, u64::from(BURST), "round {round}");
    }
}

/// Requests of mixed sizes: a thread that is refused `n` cells falls back
/// to one, and stops when refused one. The cells admitted add up to exactly
/// the burst (none left over: the last requests are of one cell).
#[test]
fn mixed_sizes_take_exactly_the_burst() {
    const SIZES: [u32; 5] = [1, 2, 3, 5, 8];
    let clock = ManualClock::new();
    let burst = burst(100_000);
    let limiter = RateLimiter::with_clock(quota(ms(1), burst), &clock);
    let taken = race(|i| {
        let mut taken = 0_u64;
        for size in SIZES.iter().cycle().skip(i) {
            match limiter.check_n(*size) {
                Ok(()) => taken += u64::from(*size),
                Err(NegativeOutcome::NotUntil(_)) => match limiter.check() {
                    Ok(()) => taken += 1,
                    Err(_) => return taken,
                },
                Err(other) => panic!("{other:?}"),
            }
        }
        unreachable!("the cycle never ends")
    });
    assert_eq!(taken.iter().sum::<u64>(), u64::from(burst));
    assert_eq!(drain(&limiter), (0, ms(1)));
}

/// Checks, refunds and quota changes racing. One thread starts holding
/// half the burst and, over and over, refunds a cell it holds and tries to
/// take one (a refund of a held cell can never hit the burst cap); one
/// switches between two quotas of the same burst (1 ms and 3 ms per cell),
/// which keep the cells available exactly; two check until both are done.
/// On the stopped clock, every cell admitted, plus what is left at the end,
/// is exactly the burst plus the refunds.
#[test]
fn checks_refunds_and_quota_changes_conserve_cells() {
    let clock = ManualClock::new();
    let burst = burst(20_000);
    let (fast, slow) = (quota(ms(1), burst), quota(ms(3), burst));
    let limiter = RateLimiter::with_clock(fast, &clock);
    let cycles = scaled(20_000);
    let held_at_start = burst / 2;
    assert_eq!(limiter.check_n(held_at_start), Ok(()));
    let drivers_done = AtomicUsize::new(0);
    let counts = race(|i| {
        let (mut admitted, mut refunds) = (0_u64, 0_u64);
        match i {
            0 => {
                admitted = u64::from(held_at_start);
                let mut held = held_at_start;
                for _ in 0..cycles {
                    if held > 0 {
                        limiter.refund(1);
                        (held, refunds) = (held - 1, refunds + 1);
                    }
                    if limiter.check().is_ok() {
                        (held, admitted) = (held + 1, admitted + 1);
                    }
                }
                drivers_done.fetch_add(1, Ordering::SeqCst);
            }
            1 => {
                for _ in 0..cycles {
                    limiter.set_quota(slow);
                    limiter.set_quota(fast);
                }
                drivers_done.fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                while drivers_done.load(Ordering::SeqCst) < 2 {
                    if limiter.check().is_ok() {
                        admitted += 1;
                    }
                }
            }
        }
        (admitted, refunds)
    });
    let (left, wait) = drain(&limiter);
    assert_eq!(wait, ms(1), "the last quota set is the fast one");
    let admitted: u64 = counts.iter().map(|(a, _)| a).sum::<u64>() + u64::from(left);
    let refunds: u64 = counts.iter().map(|(_, r)| r).sum();
    assert!(refunds >= u64::from(held_at_start));
    assert_eq!(admitted, u64::from(burst) + refunds);
}

/// A throttle on a stopped clock, hammered by all threads: exactly one call
/// goes through, and what it reports plus what is pending counts every
/// other call exactly once.
#[test]
fn throttle_lets_one_call_through_and_counts_the_rest() {
    let clock = ManualClock::new();
    let throttle = Throttle::with_clock(Duration::from_secs(1), &clock);
    let calls = scaled(100_000);
    let allowed: Vec<Vec<u64>> = race(|_| (0..calls).filter_map(|_| throttle.allow()).collect());
    let allowed: Vec<u64> = allowed.into_iter().flatten().collect();
    assert_eq!(allowed.len(), 1);
    let total = THREADS as u64 * calls;
    assert_eq!(allowed[0] + throttle.pending(), total - 1);
}

/// A throttle whose clock moves one interval at a time while the threads
/// call it: at most one call per interval goes through (plus the first),
/// and the reported and pending counts add up to every suppressed call.
#[test]
fn throttle_counts_are_exact_while_the_clock_moves() {
    let clock = ManualClock::new();
    let throttle = Throttle::with_clock(ms(10), &clock);
    let steps = scaled(2_000);
    let stop = AtomicBool::new(false);
    let results = race(|i| {
        if i == 0 {
            for _ in 0..steps {
                clock.advance(ms(10));
                thread::yield_now();
            }
            stop.store(true, Ordering::SeqCst);
            return (0, Vec::new());
        }
        let (mut calls, mut allowed) = (0_u64, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            calls += 1;
            allowed.extend(throttle.allow());
            if calls % 16 == 0 {
                // Four threads on fewer cores: let the clock move.
                thread::yield_now();
            }
        }
        (calls, allowed)
    });
    let calls: u64 = results.iter().map(|(c, _)| c).sum();
    let allowed: Vec<u64> = results.into_iter().flat_map(|(_, a)| a).collect();
    let through = allowed.len() as u64;
    assert!((1..=steps + 1).contains(&through), "{through} of {steps}");
    assert_eq!(
        allowed.iter().sum::<u64>() + throttle.pending(),
        calls - through
    );
}
