//! Both limiters against a reference GCRA in `u128` nanoseconds, over the
//! whole range `Quota` can express: intervals from 1 ns to 2⁶⁰ − 1 ns,
//! bursts to `u32::MAX`, `check_n` up to the burst (and past it), refunds
//! and quota changes, on a `ManualClock`.
//!
//! The state stores its TAT in units of 2^shift ns, 1 ns for every quota
//! whose burst tolerance is at most 2⁵⁸ ns and a coarser power of two
//! past it (see `src/gcra.rs`). So the property is:
//!
//! - **exact** (every decision and every earliest time equal to the
//!   reference's) when the interval and the clock readings are multiples of
//!   the unit, which for 1 ns units is always;
//! - **never more lenient** otherwise: the limiter admits only what the
//!   reference, fed the same admissions, admits too, and never names an
//!   earliest time before the reference's.
//!
//! Clock readings stay below 2⁵⁷ units, where no request GCRA admits can
//! reach the end of the state's time (that end is tested in `direct.rs`).
#![cfg(not(acqrel_loom))]

use std::num::NonZeroU32;
use std::time::Duration;

use acqrel_core::ManualClock;
use acqrel_ratelimit::{
    KeyedNegative, KeyedRateLimiter, NegativeOutcome, NotUntil, Quota, RateLimiter,
};

mod common;

use common::scaled;

/// SplitMix64 with a fixed seed: the same runs on every platform.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Spread over every order of magnitude of `1..=max`.
    fn log_uniform(&mut self, max: u64) -> u64 {
        let bits = self.below(u64::from(64 - max.leading_zeros()) + 1);
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1 << bits) - 1
        };
        (self.next_u64() & mask).clamp(1, max)
    }
}

const TIME_MAX: u64 = (1 << 60) - 1;

/// The unit of the limiter's stored TAT for interval `t` and `burst`, in
/// ns: the smallest power of two that brings `t × burst` within 2⁵⁸ units.
fn unit(t: u64, burst: u32) -> u128 {
    let tau = u128::from(t) * u128::from(burst);
    let mut unit = 1;
    while tau > unit << 58 {
        unit <<= 1;
    }
    unit
}

/// GCRA in unbounded arithmetic: the behaviour every quota must have.
#[derive(Clone, Copy, Debug)]
struct Reference {
    t: u128,
    burst: u32,
    tat: u128,
}

impl Reference {
    fn new(t: u64, burst: u32) -> Self {
        Reference {
            t: u128::from(t),
            burst,
            tat: 0,
        }
    }

    fn tau(&self) -> u128 {
        self.t * u128::from(self.burst)
    }

    /// `Ok` and the TAT moved, or `Err(earliest ns)`; `None` past the burst.
    fn check_n(&mut self, now: u128, n: u32) -> Option<Result<(), u128>> {
        if n > self.burst {
            return None;
        }
        if n == 0 {
            return Some(Ok(()));
        }
        let new_tat = self.tat.max(now) + self.t * u128::from(n);
        if new_tat - now <= self.tau() {
            self.tat = new_tat;
            Some(Ok(()))
        } else {
            Some(Err(new_tat - self.tau()))
        }
    }

    fn refund(&mut self, now: u128, n: u32) {
        self.tat = self.tat.saturating_sub(self.t * u128::from(n)).max(now);
    }

    /// The quota change of `set_quota`: the cells available stay available
    /// (capped at the new burst), fractions included.
    fn set_quota(&mut self, now: u128, t: u64, burst: u32) {
        let new = Reference::new(t, burst);
        let debt = self.tat.saturating_sub(now);
        let new_debt = match self.tau().checked_sub(debt) {
            Some(available) => {
                // floor(available × new.t / t), as `q × new.t + r × new.t / t`
                // (the product itself can pass 2¹²⁸; then it is past any
                // tolerance).
                let (q, r) = (available / self.t, available % self.t);
                let scaled = q
                    .checked_mul(new.t)
                    .map_or(u128::MAX, |qt| qt + r * new.t / self.t);
                new.tau() - scaled.min(new.tau())
            }
            None => new.tau() + (debt - self.tau()),
        };
        *self = Reference {
            tat: now + new_debt,
            ..new
        };
    }
}

/// The earliest time a denial names, as the limiter reports it (`u64` ns,
/// "never" past that).
fn reported(earliest: u128) -> Duration {
    Duration::from_nanos(u64::try_from(earliest).unwrap_or(u64::MAX))
}

fn quota(t: u64, burst: u32) -> Quota {
    Quota::with_period(Duration::from_nanos(t))
        .unwrap()
        .allow_burst(NonZeroU32::new(burst).unwrap())
}

/// A random quota; `aligned` makes its interval a multiple of its unit.
fn random_quota(rng: &mut Rng, aligned: bool) -> (u64, u32) {
    let burst = match rng.below(4) {
        0 => u32::MAX,
        1 => 1,
        _ => u32::try_from(rng.log_uniform(u64::from(u32::MAX))).unwrap(),
    };
    let mut t = match rng.below(5) {
        0 => TIME_MAX,
        1 => 1_000_000_000,
        _ => rng.log_uniform(TIME_MAX),
    };
    if aligned {
        loop {
            let unit = u64::try_from(unit(t, burst)).unwrap();
            if t % unit == 0 {
                break;
            }
            t = (t - t % unit).max(unit).min(TIME_MAX - TIME_MAX % unit);
        }
    }
    (t, burst)
}

/// A request size: one, the burst, past it, or anything up to it.
fn random_n(rng: &mut Rng, burst: u32) -> u32 {
    match rng.below(6) {
        0 => 1,
        1 => burst,
        2 => burst.saturating_add(1),
        3 => 0,
        _ => u32::try_from(rng.log_uniform(u64::from(burst))).unwrap(),
    }
}

/// How far the clock moves: nothing, a few ns, around a number of
/// intervals, or far; rounded down to `unit` when `aligned`.
fn random_step(rng: &mut Rng, t: u64, burst: u32, aligned: bool) -> u128 {
    let t = u128::from(t);
    let step = match rng.below(5) {
        0 => 0,
        1 => u128::from(rng.below(16)),
        2 => t * u128::from(rng.below(4)),
        3 => (t * u128::from(rng.log_uniform(u64::from(burst))))
            .saturating_sub(u128::from(rng.below(3))),
        _ => u128::from(rng.log_uniform(u64::MAX >> 8)),
    };
    if aligned {
        let unit = unit(t as u64, burst);
        step - step % unit
    } else {
        step
    }
}

/// The last clock reading a run goes to: below 2⁵⁷ units (and a `u64`).
fn horizon(t: u64, burst: u32) -> u128 {
    (unit(t, burst) << 57).min(u128::from(u64::MAX >> 1))
}

/// Compares one limiter decision with the reference's: equal when `exact`,
/// never more lenient otherwise. Applies the limiter's admission to the
/// reference (so the two stay in step when the run is not exact).
fn compare(
    reference: &mut Reference,
    now: u128,
    n: u32,
    got: Result<(), Option<NotUntil>>,
    exact: bool,
    what: &str,
) {
    let mut probe = *reference;
    let want = probe.check_n(now, n);
    match (got, want) {
        (Err(None), None) => {}
        (Ok(()), Some(Ok(()))) => *reference = probe,
        (Err(Some(denied)), Some(Err(earliest))) => {
            if exact {
                assert_eq!(denied.earliest_possible(), reported(earliest), "{what}");
            } else {
                assert!(denied.earliest_possible() >= reported(earliest), "{what}");
            }
        }
        (Err(Some(denied)), Some(Ok(()))) if !exact => {
            // Stricter than exact GCRA by the rounding: by less than a unit
            // per admission; the reference keeps its state.
            assert!(
                denied.earliest_possible() > Duration::from_nanos(now as u64),
                "{what}"
            );
        }
        (got, want) => panic!("{what}: limiter {got:?}, reference {want:?}"),
    }
}

/// One run on the direct limiter: a quota (sometimes changed), random clock
/// steps, checks, `check_n`, refunds.
fn direct_run(rng: &mut Rng, run: u64) {
    let aligned = rng.below(2) == 0;
    let (t, burst) = random_quota(rng, aligned);
    let second = random_quota(rng, aligned);
    // Quota changes keep the run exact only at 1 ns units (a rescaled TAT
    // is rounded up to the new unit).
    let changes = rng.below(3) == 0;
    let exact = aligned && (!changes || (unit(t, burst) == 1 && unit(second.0, second.1) == 1));
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(t, burst), &clock);
    let mut reference = Reference::new(t, burst);
    let end = horizon(t, burst).min(horizon(second.0, second.1));
    let mut now: u128 = 0;
    for step in 0..40 {
        let (qt, qb) = (reference.t as u64, reference.burst);
        now = (now + random_step(rng, qt, qb, aligned)).min(end);
        if aligned {
            now -= now % unit(qt, qb);
        }
        clock.set(Duration::from_nanos(now as u64));
        let what = format!(
            "run {run} step {step}: quota ({t}, {burst}) -> {second:?}, now {now}, aligned {aligned}"
        );
        match rng.below(8) {
            0 => {
                let n = u32::try_from(rng.log_uniform(u64::from(qb))).unwrap();
                limiter.refund(n);
                if exact {
                    reference.refund(now, n);
                } else {
                    // The reference's refund is at least as generous.
                    reference.refund(now, n);
                }
            }
            1 if changes => {
                let (nt, nb) = if reference.t == u128::from(t) && reference.burst == burst {
                    second
                } else {
                    (t, burst)
                };
                limiter.set_quota(quota(nt, nb));
                reference.set_quota(now, nt, nb);
            }
            2 => {
                let got = limiter.check().map_err(Some);
                compare(&mut reference, now, 1, got, exact, &what);
            }
            _ => {
                let n = random_n(rng, qb);
                let got = match limiter.check_n(n) {
                    Ok(()) => Ok(()),
                    Err(NegativeOutcome::NotUntil(denied)) => Err(Some(denied)),
                    Err(NegativeOutcome::InsufficientCapacity { burst: b }) => {
                        assert_eq!(b, qb, "{what}");
                        Err(None)
                    }
                    Err(other) => panic!("{what}: {other:?}"),
                };
                compare(&mut reference, now, n, got, exact, &what);
            }
        }
    }
}

/// `RateLimiter` against the reference over the whole quota range.
#[test]
fn the_direct_limiter_is_gcra_over_the_whole_quota_range() {
    let mut rng = Rng(0x6C62_272E_07BB_0142);
    for run in 0..scaled(2_000) {
        direct_run(&mut rng, run);
    }
}

/// `KeyedRateLimiter` against one reference per key, over the whole quota
/// range; sweeps of idle buckets in between change no decision.
#[test]
fn the_keyed_limiter_is_gcra_over_the_whole_quota_range() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF0);
    for run in 0..scaled(1_000) {
        let aligned = rng.below(2) == 0;
        let (t, burst) = random_quota(&mut rng, aligned);
        let clock = ManualClock::new();
        let limiter = KeyedRateLimiter::<u8, _>::with_clock(quota(t, burst), &clock);
        let mut references = [Reference::new(t, burst); 3];
        let end = horizon(t, burst);
        let mut now: u128 = 0;
        for step in 0..40 {
            now = (now + random_step(&mut rng, t, burst, aligned)).min(end);
            if aligned {
                now -= now % unit(t, burst);
            }
            clock.set(Duration::from_nanos(now as u64));
            if rng.below(8) == 0 {
                limiter.retain_recent();
                continue;
            }
            let key = rng.below(3) as u8;
            let n = random_n(&mut rng, burst);
            let what = format!(
                "run {run} step {step}: quota ({t}, {burst}), key {key}, n {n}, now {now}, aligned {aligned}"
            );
            let got = match limiter.check_n(&key, n) {
                Ok(()) => Ok(()),
                Err(KeyedNegative::NotUntil(denied)) => Err(Some(denied)),
                Err(KeyedNegative::InsufficientCapacity { burst: b }) => {
                    assert_eq!(b, burst, "{what}");
                    Err(None)
                }
                Err(other) => panic!("{what}: {other:?}"),
            };
            compare(
                &mut references[usize::from(key)],
                now,
                n,
                got,
                aligned,
                &what,
            );
        }
    }
}

// ===== Regressions =====

/// Regression: `tau = t × burst` was capped at 2⁶⁰ − 1 ns and a TAT past
/// that failed closed, so a full bucket of `per_second(1)` with a burst of
/// `u32::MAX` (136 years of tolerance) refused `check_n(2_000_000_000)` and
/// named a wait of 584 years.
#[test]
fn a_burst_tolerance_past_the_60_bit_range_admits_check_n_up_to_the_burst() {
    let clock = ManualClock::new();
    let quota = Quota::per_second(NonZeroU32::MIN).allow_burst(NonZeroU32::MAX);
    let limiter = RateLimiter::with_clock(quota, &clock);
    let keyed = KeyedRateLimiter::with_clock(quota, &clock);
    assert_eq!(limiter.check_n(2_000_000_000), Ok(()));
    assert_eq!(keyed.check_n("k", 2_000_000_000), Ok(()));
    let rest = u32::MAX - 2_000_000_000;
    assert_eq!(limiter.check_n(rest), Ok(()));
    assert_eq!(keyed.check_n("k", rest), Ok(()));
    // Empty now: one cell a second, and the whole burst in 136 years.
    let one = limiter.check().unwrap_err();
    assert_eq!(one.wait_time(), Duration::from_secs(1));
    assert_eq!(
        keyed
            .check("k")
            .unwrap_err()
            .not_until()
            .unwrap()
            .wait_time(),
        Duration::from_secs(1)
    );
    let NegativeOutcome::NotUntil(all) = limiter.check_n(u32::MAX).unwrap_err() else {
        panic!("the burst is u32::MAX");
    };
    assert_eq!(all.wait_time(), Duration::from_secs(u64::from(u32::MAX)));
    clock.advance(Duration::from_secs(10));
    assert_eq!(limiter.check_n(10), Ok(()));
    assert_eq!(keyed.check_n("k", 10), Ok(()));
    assert!(limiter.check().is_err());
}

/// Regression: with one cell a year and a burst of 40 (40 years of
/// tolerance, past 2⁶⁰ ns), the limiter admitted 36 cells, then none ever
/// again, even two years later.
#[test]
fn a_yearly_quota_with_a_burst_of_40_admits_40_then_one_a_year() {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let clock = ManualClock::new();
    let quota = Quota::with_period(YEAR)
        .unwrap()
        .allow_burst(NonZeroU32::new(40).unwrap());
    let limiter = RateLimiter::with_clock(quota, &clock);
    let keyed = KeyedRateLimiter::with_clock(quota, &clock);
    assert_eq!((0..100).filter(|_| limiter.check().is_ok()).count(), 40);
    assert_eq!((0..100).filter(|_| keyed.check(&1).is_ok()).count(), 40);
    assert_eq!(limiter.check().unwrap_err().wait_time(), YEAR);
    for year in 1..=3 {
        clock.advance(YEAR);
        assert_eq!(limiter.check(), Ok(()), "year {year}");
        assert_eq!(keyed.check(&1), Ok(()), "year {year}");
        assert_eq!(limiter.check().unwrap_err().wait_time(), YEAR);
        assert!(keyed.check(&1).is_err());
    }
}

// ===== until_ready =====

/// Tokio's clock as the limiter's clock, so that with the runtime's clock
/// paused, the timer and the limiter move together.
#[derive(Debug)]
struct TokioClock(tokio::time::Instant);

impl acqrel_core::Clock for TokioClock {
    fn now(&self) -> Duration {
        tokio::time::Instant::now() - self.0
    }
}

/// The waits of both reproductions are finite and exact: `until_n_ready`
/// on a drained 136-year bucket returns after the cells it asks for came
/// back, and `until_ready` on the yearly quota after a year.
#[tokio::test(start_paused = true)]
async fn waits_for_burst_tolerances_past_the_60_bit_range_are_finite_and_exact() {
    let start = tokio::time::Instant::now();
    let huge = Quota::per_second(NonZeroU32::MIN).allow_burst(NonZeroU32::MAX);
    let limiter = RateLimiter::with_clock(huge, TokioClock(start));
    assert_eq!(limiter.until_n_ready(u32::MAX).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(limiter.until_n_ready(1_000).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::from_secs(1_000));

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let start = tokio::time::Instant::now();
    let yearly = Quota::with_period(YEAR)
        .unwrap()
        .allow_burst(NonZeroU32::new(40).unwrap());
    let limiter = RateLimiter::with_clock(yearly, TokioClock(start));
    assert_eq!(limiter.until_n_ready(40).await, Ok(()));
    limiter.until_ready().await;
    assert_eq!(start.elapsed(), YEAR);
}
