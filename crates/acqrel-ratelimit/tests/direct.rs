//! `RateLimiter` on a `ManualClock`: exact admissions and exact denial
//! times for the burst and the refill, `check_n`'s edge cases, refunds,
//! quota changes mid-stream, a clock that jumps backwards, very long idle
//! periods and the end of the state's 2⁶⁰ ns, and the async waits on
//! tokio's paused clock. Nothing here measures real time.
#![cfg(not(acqrel_loom))]

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use acqrel_core::{Clock, ManualClock};
use acqrel_ratelimit::{InsufficientCapacity, Jitter, NegativeOutcome, NotUntil, RateLimiter};

mod common;

use common::{drain, ms, quota};

/// The last nanosecond the limiter's state can count to: 2⁶⁰ − 1.
const END_NS: u64 = (1 << 60) - 1;

/// What a limiter past the end of its time names as the earliest time:
/// never (`u64::MAX` ns).
const NEVER: Duration = Duration::from_nanos(u64::MAX);

/// The `NotUntil` inside a denial of `check_n`.
fn not_until(outcome: Result<(), NegativeOutcome>) -> NotUntil {
    match outcome {
        Err(NegativeOutcome::NotUntil(not_until)) => not_until,
        other => panic!("expected NotUntil, got {other:?}"),
    }
}

// ===== burst and refill =====

/// A full bucket admits the burst at once; then one cell per interval, and
/// each denial names exactly when the next cell comes. Denials take
/// nothing, and fractions of a cell carry over.
#[test]
fn burst_then_one_cell_per_interval() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(ms(100), 3), &clock);
    for _ in 0..3 {
        assert_eq!(limiter.check(), Ok(()));
    }
    for _ in 0..2 {
        let denied = limiter.check().unwrap_err();
        assert_eq!(denied.earliest_possible(), ms(100));
        assert_eq!(denied.wait_time(), ms(100));
        assert_eq!(denied.wait_time_from(ms(40)), ms(60));
    }
    clock.advance(ms(40));
    let denied = limiter.check().unwrap_err();
    assert_eq!(
        (denied.earliest_possible(), denied.wait_time()),
        (ms(100), ms(60))
    );
    clock.advance(ms(60));
    assert_eq!(limiter.check(), Ok(()));
    assert_eq!(limiter.check().unwrap_err().earliest_possible(), ms(200));
    // At 350 ms the bucket has refilled 2.5 cells: two are admitted, and the
    // third is half a cell (50 ms) away.
    clock.advance(ms(250));
    assert_eq!(drain(&limiter), (2, ms(50)));
}

/// However long the limiter idles, it holds exactly the burst.
#[test]
fn idle_refills_to_the_burst_and_no_more() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(ms(100), 3), &clock);
    assert_eq!(drain(&limiter), (3, ms(100)));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(drain(&limiter), (3, ms(100)));
    // Thirty years: still inside the state's 36.
    clock.advance(Duration::from_secs(30 * 365 * 24 * 3600));
    assert_eq!(drain(&limiter), (3, ms(100)));
}

// ===== check_n =====

/// `check_n(0)` is always admitted and takes nothing; exactly the burst is
/// admitted at once; more than the burst is `InsufficientCapacity`, however
/// long the bucket idles; a denied request takes nothing.
#[test]
fn check_n_edge_cases() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(ms(100), 3), &clock);
    assert_eq!(limiter.check_n(0), Ok(()));
    assert_eq!(limiter.check_n(3), Ok(()));
    assert_eq!(
        limiter.check_n(0),
        Ok(()),
        "zero cells, even from an empty bucket"
    );
    assert_eq!(not_until(limiter.check_n(1)).earliest_possible(), ms(100));
    assert_eq!(not_until(limiter.check_n(3)).earliest_possible(), ms(300));
    let too_many = Err(NegativeOutcome::InsufficientCapacity { burst: 3 });
    assert_eq!(limiter.check_n(4), too_many);
    assert_eq!(limiter.check_n(u32::MAX), too_many);
    clock.advance(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(limiter.check_n(4), too_many, "no idle period makes room");
    assert_eq!(drain(&limiter), (3, ms(100)), "denials took nothing");
}

/// All or nothing: with one cell left, a request for two is denied (with
/// the time two are there) and the one cell is still there.
#[test]
fn check_n_takes_all_or_nothing() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(ms(100), 3), &clock);
    assert_eq!(limiter.check_n(2), Ok(()));
    let denied = not_until(limiter.check_n(2));
    assert_eq!(
        (denied.earliest_possible(), denied.wait_time()),
        (ms(100), ms(100))
    );
    assert_eq!(drain(&limiter), (1, ms(100)));
}

// ===== refund =====

/// A refund gives back cells taken: partly, never above the burst, and not
/// at all to a full bucket; refunded fractions of refill are kept.
#[test]
fn refunds_return_cells_up_to_the_burst() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(ms(100), 3), &clock);
    // Partial.
    assert_eq!(limiter.check_n(3), Ok(()));
    limiter.refund(1);
    assert_eq!(drain(&limiter), (1, ms(100)));
    // Zero: nothing.
    limiter.refund(0);
    assert_eq!(drain(&limiter), (0, ms(100)));
    // Over-refund: capped at the burst.
    limiter.refund(10);
    assert_eq!(drain(&limiter), (3, ms(100)));
    // A full bucket: no-op.
    clock.advance(Duration::from_secs(60));
    limiter.refund(5);
    limiter.refund(u32::MAX);
    assert_eq!(drain(&limiter), (3, ms(100)));
    // Mid-refill: half a cell refilled plus one refunded is 1.5 cells.
    clock.advance(ms(50));
    limiter.refund(1);
    assert_eq!(drain(&limiter), (1, ms(50)));
}

// ===== set_quota =====

/// Raising the burst grants no fresh burst: an empty bucket stays empty and
/// refills at the rate, up to the new burst.
#[test]
fn raising_the_burst_grants_nothing_at_once() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(ms(100), 2), &clock);
    assert_eq!(limiter.check_n(2), Ok(()));
    limiter.set_quota(quota(ms(100), 10));
    assert_eq!(limiter.quota(), quota(ms(100), 10));
    assert_eq!(drain(&limiter), (0, ms(100)));
    clock.advance(ms(100));
    assert_eq!(drain(&limiter), (1, ms(100)));
    clock.advance(Duration::from_secs(60));
    assert_eq!(drain(&limiter), (10, ms(100)));
}

/// The cells available stay available across a change, capped at the new
/// burst when it is lower.
#[test]
fn available_cells_are_kept_and_capped() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(ms(100), 4), &clock);
    assert_eq!(limiter.check(), Ok(()));
    limiter.set_quota(quota(ms(100), 10));
    assert_eq!(drain(&limiter), (3, ms(100)), "three of four kept");

    let limiter = RateLimiter::with_clock(quota(ms(100), 10), &clock);
    limiter.set_quota(quota(ms(100), 3));
    assert_eq!(drain(&limiter), (3, ms(100)), "a full bucket capped at 3");

    let limiter = RateLimiter::with_clock(quota(ms(100), 10), &clock);
    assert_eq!(limiter.check_n(5), Ok(()));
    limiter.set_quota(quota(ms(100), 3));
    assert_eq!(drain(&limiter), (3, ms(100)), "five left, capped at 3");
}

/// A new rate applies to the refill from the change on, and a fraction of
/// a cell refilled under the old rate carries over as the same fraction.
#[test]
fn a_new_rate_applies_from_the_change() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(ms(100), 2), &clock);
    assert_eq!(limiter.check_n(2), Ok(()));
    clock.advance(ms(50)); // half a cell at 100 ms per cell
    limiter.set_quota(quota(ms(10), 2));
    // Half a cell at 10 ms per cell: 5 ms to go.
    assert_eq!(drain(&limiter), (0, ms(5)));
    clock.advance(ms(5));
    assert_eq!(drain(&limiter), (1, ms(10)));
    clock.advance(ms(20));
    assert_eq!(drain(&limiter), (2, ms(10)));

    // Slower: a full bucket stays full, and refills at the slower rate.
    clock.advance(ms(20));
    limiter.set_quota(quota(Duration::from_secs(1), 2));
    assert_eq!(drain(&limiter), (2, Duration::from_secs(1)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(drain(&limiter), (1, Duration::from_secs(1)));
}

/// Forty changes in a row (the state's 4-bit epoch tag wraps twice), each
/// from a full bucket: every change keeps min(old burst, new burst) cells,
/// refills at the new rate, and `quota()` names the new quota.
#[test]
fn forty_quota_changes_wrap_the_epoch_tag() {
    let quotas = [quota(ms(100), 2), quota(ms(30), 5), quota(ms(7), 3)];
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quotas[0], &clock);
    let mut burst = 2;
    for i in 1..=40 {
        let next = quotas[i % quotas.len()];
        let (next_burst, interval) = (next.burst_size().get(), next.replenish_interval());
        clock.advance(Duration::from_secs(60));
        limiter.set_quota(next);
        assert_eq!(limiter.quota(), next, "change {i}");
        assert_eq!(
            drain(&limiter),
            (burst.min(next_burst), interval),
            "change {i}"
        );
        clock.advance(interval);
        assert_eq!(drain(&limiter), (1, interval), "change {i}");
        burst = next_burst;
    }
}

// ===== the clock =====

/// A clock set back refills nothing and loses nothing: denials name the same
/// clock reading as before the jump (the bucket waits for the clock to come
/// back), a full bucket stays full (the burst, no more), and when the clock
/// returns the bucket is exactly as it was.
#[test]
fn a_clock_set_back_refills_nothing_and_loses_nothing() {
    let clock = ManualClock::starting_at(Duration::from_secs(10));
    let limiter = RateLimiter::with_clock(quota(ms(100), 2), &clock);
    clock.advance(Duration::from_secs(10)); // 20 s; one cell of two left
    assert_eq!(limiter.check(), Ok(()));

    clock.set(Duration::from_secs(19));
    let denied = limiter.check().unwrap_err();
    assert_eq!(denied.earliest_possible(), Duration::from_secs(20));
    assert_eq!(denied.wait_time(), Duration::from_secs(1));
    assert_eq!(
        not_until(limiter.check_n(2)).earliest_possible(),
        ms(20_100)
    );
    assert_eq!(
        limiter.check_n(3),
        Err(NegativeOutcome::InsufficientCapacity { burst: 2 })
    );
    // Before the limiter was even made: still sane.
    clock.set(Duration::ZERO);
    let denied = limiter.check().unwrap_err();
    assert_eq!(denied.earliest_possible(), Duration::from_secs(20));
    assert_eq!(denied.wait_time(), Duration::from_secs(20));

    clock.set(Duration::from_secs(20));
    assert_eq!(
        drain(&limiter),
        (1, ms(100)),
        "the cell left is still there"
    );

    // A full bucket set back stays a full bucket of two.
    clock.advance(Duration::from_secs(60)); // 80 s
    clock.set(Duration::from_secs(50));
    assert_eq!(drain(&limiter), (2, ms(100)));
    clock.set(Duration::from_secs(80));
    assert_eq!(drain(&limiter), (2, ms(100)));
}

/// Regression: `set_quota` used to cap the bucket's debt at one burst, so a
/// quota change while the clock was behind (after a jump back) granted the
/// whole jump as refill. The bucket is empty again at the same clock
/// reading, under the old quota or a new one.
#[test]
fn set_quota_after_the_clock_went_back_grants_nothing() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(quota(ms(100), 2), &clock);
    clock.set(Duration::from_secs(10));
    assert_eq!(limiter.check_n(2), Ok(())); // empty at 10 s
    clock.set(Duration::from_secs(5));
    limiter.set_quota(quota(ms(100), 2));
    limiter.set_quota(quota(ms(50), 2));
    clock.set(Duration::from_secs(10));
    assert_eq!(drain(&limiter), (0, ms(50)));
    clock.advance(ms(50));
    assert_eq!(drain(&limiter), (1, ms(50)));
}

/// Regression: the state used to count the clock's own readings, so a clock
/// whose epoch is far back (here the UNIX epoch's distance, past 2⁶⁰ ns)
/// made every request fail closed. The state counts from the limiter's
/// creation; denials still name the clock's own readings.
#[test]
fn a_clock_far_from_its_epoch_works() {
    let start = Duration::from_secs(1_750_000_000);
    let clock = ManualClock::starting_at(start);
    let limiter = RateLimiter::with_clock(quota(ms(100), 2), &clock);
    assert_eq!(drain(&limiter), (2, ms(100)));
    assert_eq!(
        limiter.check().unwrap_err().earliest_possible(),
        start + ms(100)
    );
    clock.advance(ms(100));
    assert_eq!(drain(&limiter), (1, ms(100)));
}

/// The state counts 2⁶⁰ − 1 ns from the limiter's creation. A cell is
/// admitted while its TAT stays within that; past it the limiter fails
/// closed: every request is denied, naming "never" (`u64::MAX` ns), and
/// nothing panics, however far the clock goes.
#[test]
fn the_end_of_the_state_time_fails_closed() {
    let clock = ManualClock::new();
    let one_us = Duration::from_micros(1);
    let near = RateLimiter::with_clock(quota(one_us, 3), &clock);
    let at_the_edge = RateLimiter::with_clock(quota(one_us, 3), &clock);
    let past_the_edge = RateLimiter::with_clock(quota(one_us, 3), &clock);

    clock.set(Duration::from_nanos(END_NS - 3_000));
    // Three cells: the last one's TAT is exactly the end.
    assert_eq!(drain(&near).0, 3);
    let denied = near.check().unwrap_err();
    assert_eq!(denied.earliest_possible(), NEVER);
    assert_eq!(
        denied.wait_time(),
        NEVER - Duration::from_nanos(END_NS - 3_000)
    );

    clock.set(Duration::from_nanos(END_NS - 1_000));
    assert_eq!(at_the_edge.check(), Ok(()));
    assert_eq!(at_the_edge.check().unwrap_err().earliest_possible(), NEVER);
    clock.set(Duration::from_nanos(END_NS - 999));
    assert_eq!(
        past_the_edge.check().unwrap_err().earliest_possible(),
        NEVER
    );

    for reading in [END_NS, END_NS + 1, u64::MAX] {
        clock.set(Duration::from_nanos(reading));
        for limiter in [&near, &at_the_edge, &past_the_edge] {
            let denied = limiter.check().unwrap_err();
            assert_eq!(denied.earliest_possible(), NEVER, "at {reading} ns");
            assert_eq!(not_until(limiter.check_n(2)).earliest_possible(), NEVER);
            limiter.refund(1);
            limiter.set_quota(quota(one_us, 3));
            assert_eq!(limiter.check().unwrap_err().earliest_possible(), NEVER);
        }
    }
}

// ===== until_ready =====

/// Tokio's clock as the limiter's clock: with the runtime's clock paused,
/// the timer `until_ready` sleeps on and the limiter's readings move
/// together (the runtime jumps to each timer as soon as it is idle).
#[derive(Debug)]
struct TokioClock(tokio::time::Instant);

impl TokioClock {
    fn start() -> Self {
        TokioClock(tokio::time::Instant::now())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        tokio::time::Instant::now() - self.0
    }
}

/// `until_ready` returns at once while cells are there, then exactly when
/// the next cell is (on the paused clock).
#[tokio::test(start_paused = true)]
async fn until_ready_waits_for_the_next_cell() {
    let limiter = RateLimiter::with_clock(quota(ms(100), 2), TokioClock::start());
    let start = tokio::time::Instant::now();
    limiter.until_ready().await;
    limiter.until_ready().await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    limiter.until_ready().await;
    assert_eq!(start.elapsed(), ms(100));
    limiter.until_ready().await;
    assert_eq!(start.elapsed(), ms(200));
    assert_eq!(drain(&limiter), (0, ms(100)));
}

/// `until_n_ready` waits until `n` cells are there at once; more than the
/// burst is an error at once, without waiting or taking anything.
#[tokio::test(start_paused = true)]
async fn until_n_ready_waits_for_n_cells_or_refuses_at_once() {
    let limiter = RateLimiter::with_clock(quota(ms(100), 3), TokioClock::start());
    let start = tokio::time::Instant::now();
    assert_eq!(limiter.until_n_ready(3).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(limiter.until_n_ready(2).await, Ok(()));
    assert_eq!(start.elapsed(), ms(200));
    assert_eq!(
        limiter.until_n_ready(4).await,
        Err(InsufficientCapacity { burst: 3 })
    );
    assert_eq!(start.elapsed(), ms(200));
    assert_eq!(limiter.until_n_ready(0).await, Ok(()));
    assert_eq!(drain(&limiter), (0, ms(100)));
}

/// Cancel safety: a waiter dropped after its sleep ran out (it was polled,
/// it would take the cell on its next poll) takes nothing.
#[tokio::test(start_paused = true)]
async fn a_dropped_until_ready_takes_no_cell() {
    let limiter = RateLimiter::with_clock(quota(ms(100), 1), TokioClock::start());
    assert_eq!(limiter.check(), Ok(()));
    {
        let mut waiter = pin!(limiter.until_ready());
        let first = poll_fn(|cx| Poll::Ready(waiter.as_mut().poll(cx))).await;
        assert_eq!(first, Poll::Pending);
        tokio::time::sleep(ms(100)).await;
        // Dropped here, never polled again.
    }
    assert_eq!(drain(&limiter), (1, ms(100)));

    // And one cancelled by a timeout while it sleeps.
    let timed_out = tokio::time::timeout(ms(30), limiter.until_ready()).await;
    assert!(timed_out.is_err());
    tokio::time::sleep(ms(70)).await;
    assert_eq!(drain(&limiter), (1, ms(100)));
}

/// With jitter, a waiter wakes between the wait and the wait plus the
/// jitter (on the paused clock; tokio's timer rounds up to the millisecond)
/// and takes exactly one cell. A waiter that need not wait does not sleep.
#[tokio::test(start_paused = true)]
async fn until_ready_with_jitter_waits_within_the_jitter() {
    let limiter = RateLimiter::with_clock(quota(ms(100), 1), TokioClock::start());
    let jitter = Jitter::up_to(ms(50));
    let start = tokio::time::Instant::now();
    limiter.until_ready_with_jitter(jitter).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    for _ in 0..20 {
        // The bucket is empty and its next cell is 100 ms away.
        let start = tokio::time::Instant::now();
        limiter.until_ready_with_jitter(jitter).await;
        let waited = start.elapsed();
        assert!(waited >= ms(100) && waited <= ms(151), "{waited:?}");
        assert_eq!(drain(&limiter), (0, ms(100)), "exactly one cell taken");
    }
}

/// `Jitter` samples stay within their bound (both ends included).
#[test]
fn jitter_samples_stay_within_the_bound() {
    let jitter = Jitter::up_to(ms(5));
    assert!((0..10_000).all(|_| jitter.sample() <= ms(5)));
    assert_eq!(Jitter::NONE.sample(), Duration::ZERO);
    assert_eq!(Jitter::up_to(Duration::ZERO).sample(), Duration::ZERO);
    let one_ns = Jitter::up_to(Duration::from_nanos(1));
    let samples: Vec<_> = (0..1_000).map(|_| one_ns.sample()).collect();
    assert!(samples.iter().all(|s| *s <= Duration::from_nanos(1)));
    assert!(samples.contains(&Duration::ZERO));
    assert!(samples.contains(&Duration::from_nanos(1)));
    let huge = Jitter::up_to(Duration::MAX);
    assert!((0..1_000).all(|_| huge.sample() <= Duration::from_nanos(u64::MAX)));
}
