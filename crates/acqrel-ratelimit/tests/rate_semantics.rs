//! Scenarios equivalent to the documented behaviour of Go's
//! `golang.org/x/time/rate.Limiter`, written from its documentation (not its
//! code) and mapped onto `RateLimiter`:
//!
//! | `rate.Limiter` | here |
//! |---|---|
//! | `NewLimiter(r, b)` | `Quota::per_second(r).allow_burst(b)` |
//! | `Every(interval)` | `Quota::with_period(interval)` |
//! | `AllowN(t, n)` | `check_n(n)` with the clock at `t` |
//! | `ReserveN(..).OK() == false`, `WaitN` error | `InsufficientCapacity` |
//! | `Reservation.Cancel` | `refund` |
//! | `SetLimit`, `SetBurst` | `set_quota` |
//!
//! Go counts fractional tokens in a float; the limiter here keeps a
//! theoretical arrival time in whole nanoseconds. With rates whose interval
//! is a whole number of nanoseconds the two agree exactly, which is what
//! the scenarios check. Two documented Go behaviours have no equivalent by
//! design: a zero `Limit` (no events) and an infinite one cannot be
//! expressed as a `Quota`.
#![cfg(not(acqrel_loom))]

use std::num::NonZeroU32;
use std::time::Duration;

use acqrel_core::ManualClock;
use acqrel_ratelimit::{InsufficientCapacity, NegativeOutcome, Quota, RateLimiter};

mod common;

use common::{drain, ms, quota};

/// `NewLimiter(r, b)` with `r` events per second.
fn new_limiter(r: u32, b: u32, clock: &ManualClock) -> RateLimiter<&ManualClock> {
    let quota =
        Quota::per_second(NonZeroU32::new(r).unwrap()).allow_burst(NonZeroU32::new(b).unwrap());
    RateLimiter::with_clock(quota, clock)
}

/// Go: the limiter "implements a token bucket of size b, initially full".
/// A new limiter admits b events at once, and not one more.
#[test]
fn a_new_limiter_is_full() {
    let clock = ManualClock::new();
    let limiter = new_limiter(10, 4, &clock);
    assert_eq!(drain(&limiter), (4, ms(100)));
}

/// Go: the bucket is "refilled at rate r tokens per second". After the
/// burst, one event every 1/r: never earlier, and exactly then.
#[test]
fn after_the_burst_one_event_every_one_over_r() {
    let clock = ManualClock::new();
    let limiter = new_limiter(10, 3, &clock);
    assert_eq!(drain(&limiter).0, 3);
    for _ in 0..50 {
        clock.advance(ms(99));
        assert!(limiter.check().is_err(), "1 ms early");
        clock.advance(ms(1));
        assert_eq!(drain(&limiter), (1, ms(100)));
    }
}

/// Go: "AllowN reports whether n events may happen at time t", and takes
/// them only if they may: all or nothing. Tokens accrue in fractions, so
/// at 150 ms after emptying a 10/s bucket there are 1.5 tokens: two events
/// are refused, one is allowed, and the half token left is a whole one at
/// 200 ms.
#[test]
fn allow_n_is_all_or_nothing_and_fractions_accrue() {
    let clock = ManualClock::new();
    let limiter = new_limiter(10, 3, &clock);
    assert_eq!(limiter.check_n(3), Ok(()));
    clock.advance(ms(150));
    assert!(matches!(
        limiter.check_n(2),
        Err(NegativeOutcome::NotUntil(_))
    ));
    assert_eq!(limiter.check_n(1), Ok(()));
    assert_eq!(drain(&limiter), (0, ms(50)));
    clock.advance(ms(50));
    assert_eq!(drain(&limiter), (1, ms(100)));
}

/// Go: `AllowN(t, 0)` takes no token and is allowed, even from an empty
/// bucket.
#[test]
fn zero_events_are_always_allowed() {
    let clock = ManualClock::new();
    let limiter = new_limiter(10, 2, &clock);
    assert_eq!(limiter.check_n(2), Ok(()));
    assert_eq!(limiter.check_n(0), Ok(()));
    assert_eq!(drain(&limiter), (0, ms(100)));
}

/// Go: a reservation's `OK()` is false "if n exceeds the Limiter's burst
/// size", and `WaitN` returns an error for it: such a request is never
/// allowed, whatever the wait. Here it is a distinct error, at once.
#[tokio::test(start_paused = true)]
async fn more_than_the_burst_is_never_allowed() {
    let clock = ManualClock::new();
    let limiter = new_limiter(10, 5, &clock);
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(
        limiter.check_n(6),
        Err(NegativeOutcome::InsufficientCapacity { burst: 5 })
    );
    assert_eq!(
        limiter.until_n_ready(6).await,
        Err(InsufficientCapacity { burst: 5 })
    );
    assert_eq!(drain(&limiter), (5, ms(100)), "the refusals took nothing");
}

/// Go: "in any large enough time interval, the Limiter limits the rate to
/// r tokens per second, with a maximum burst size of b events". A client
/// that tries every millisecond from 0 to 9,999 ms gets the burst at 0 ms,
/// then exactly one event every 1/r (50 ms to 9,950 ms): b + 10·r − 1 in
/// all, and no one-second window (starting anywhere) holds more than b + r.
#[test]
fn a_greedy_client_gets_b_plus_r_per_second() {
    let (r, b) = (20, 5);
    let clock = ManualClock::new();
    let limiter = new_limiter(r, b, &clock);
    let mut admitted_at = Vec::new();
    for millis in 0..10_000_u64 {
        while limiter.check().is_ok() {
            admitted_at.push(millis);
        }
        clock.advance(ms(1));
    }
    assert_eq!(admitted_at.len(), (b + 10 * r - 1) as usize);
    for (i, &at) in admitted_at.iter().enumerate() {
        let window = admitted_at[i..].iter().take_while(|&&t| t < at + 1000);
        assert!(window.count() <= (b + r) as usize, "window from {at} ms");
    }
    assert_eq!(admitted_at[..b as usize], [0; 5]);
    let steady: Vec<u64> = admitted_at[b as usize..].to_vec();
    let expected: Vec<u64> = (1..10 * u64::from(r)).map(|k| k * 50).collect();
    assert_eq!(steady, expected);
}

/// Go: tokens never exceed the bucket's size b; an idle limiter holds b.
#[test]
fn idle_time_accrues_at_most_b() {
    let clock = ManualClock::new();
    let limiter = new_limiter(10, 3, &clock);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(drain(&limiter), (3, ms(100)));
}

/// Go: `Every(interval)` converts a minimum time between events to a
/// limit. With a burst of one, events are exactly `interval` apart.
#[test]
fn every_interval_spaces_events_exactly() {
    let clock = ManualClock::new();
    let every = Quota::with_period(ms(250)).unwrap();
    let limiter = RateLimiter::with_clock(every, &clock);
    assert_eq!(drain(&limiter), (1, ms(250)));
    clock.advance(ms(249));
    assert_eq!(drain(&limiter), (0, ms(1)));
    clock.advance(ms(1));
    assert_eq!(drain(&limiter), (1, ms(250)));
}

/// Go: `Cancel` "reverses the effects of this Reservation on the rate
/// limit as much as possible". Events taken and then given back with
/// `refund` are available again, and a refund never makes the bucket
/// hold more than b.
#[test]
fn cancel_returns_tokens() {
    let clock = ManualClock::new();
    let limiter = new_limiter(10, 4, &clock);
    assert_eq!(limiter.check_n(3), Ok(()));
    limiter.refund(3);
    assert_eq!(drain(&limiter), (4, ms(100)));
    limiter.refund(2);
    limiter.refund(9);
    assert_eq!(drain(&limiter), (4, ms(100)));
}

/// Go: `SetLimit` changes the rate from the moment it is called: the
/// tokens accrued at the old rate are kept, and the new rate applies from
/// then on. Here: a 10/s bucket emptied at 0 holds two tokens at 200 ms;
/// at 100/s both are still there, and the next comes 10 ms later.
#[test]
fn set_limit_keeps_the_tokens_and_applies_the_new_rate_from_then() {
    let clock = ManualClock::new();
    let limiter = new_limiter(10, 5, &clock);
    assert_eq!(limiter.check_n(5), Ok(()));
    clock.advance(ms(200));
    limiter.set_quota(
        Quota::per_second(NonZeroU32::new(100).unwrap()).allow_burst(NonZeroU32::new(5).unwrap()),
    );
    assert_eq!(drain(&limiter), (2, ms(10)));
    clock.advance(ms(30));
    assert_eq!(drain(&limiter), (3, ms(10)));
}

/// Go: `SetBurst` changes the bucket's size; the tokens already there are
/// kept (a larger bucket is not filled), and a smaller one holds at most
/// its new size.
#[test]
fn set_burst_keeps_the_tokens_up_to_the_new_size() {
    let clock = ManualClock::new();
    let limiter = new_limiter(10, 4, &clock);
    assert_eq!(limiter.check_n(2), Ok(()));
    limiter.set_quota(quota(ms(100), 8));
    assert_eq!(
        drain(&limiter),
        (2, ms(100)),
        "raised: two kept, none added"
    );

    clock.advance(Duration::from_secs(60));
    limiter.set_quota(quota(ms(100), 3));
    assert_eq!(
        drain(&limiter),
        (3, ms(100)),
        "lowered: eight capped at three"
    );
}
