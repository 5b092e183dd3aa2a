//! Equivalence: the Redis limiter and the in-process `RateLimiter` given
//! the same calls at the same times decide alike, earliest times included.
//!
//! The method: no test-only clock exists in the script (production reads
//! Redis's `TIME` and nothing else). Each decision the script makes
//! reports the Redis time it was made at ([`Decision::redis_time`]), and
//! the in-process limiter, on a `ManualClock`, is set to that very time
//! (counted from the first decision) before it is asked the same thing.
//! Time moves by real pauses between calls, chosen by a seeded generator
//! along with the calls (`check_n` of 1 to burst + 1 cells, refunds), so
//! every run walks through full, partly refilled and empty buckets (each
//! quota's run must both admit and deny, or it fails). A
//! refund reports no time: the in-process one is made at the last known
//! time, which decides alike (a refund's floor at "now" is overtaken by
//! the next check's own `max(TAT, now)`, see `refund_time` below).

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use acqrel_core::{Clock, ManualClock};
use acqrel_ratelimit::{NegativeOutcome, Quota, RateLimiter};
use acqrel_ratelimit_redis::{FailurePolicy, RedisNegative, RedisRateLimiter, Source};
use common::server::RedisServer;

/// A xorshift64* generator: the same calls for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one side answered, in terms both share.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Admitted,
    Denied { wait: Duration },
    TooMany { burst: u32 },
}

fn local(outcome: Result<(), NegativeOutcome>) -> Answer {
    match outcome {
        Ok(()) => Answer::Admitted,
        Err(NegativeOutcome::NotUntil(denied)) => Answer::Denied {
            wait: denied.wait_time(),
        },
        Err(NegativeOutcome::InsufficientCapacity { burst }) => Answer::TooMany { burst },
        Err(other) => panic!("in-process answered {other:?}"),
    }
}

fn remote(outcome: Result<(), RedisNegative>) -> Answer {
    match outcome {
        Ok(()) => Answer::Admitted,
        Err(RedisNegative::NotUntil(denied)) => Answer::Denied {
            wait: denied.wait_time(),
        },
        Err(RedisNegative::InsufficientCapacity { burst }) => Answer::TooMany { burst },
        Err(other) => panic!("Redis limiter answered {other}"),
    }
}

/// Runs `steps` calls under `quota` on both limiters, comparing each.
async fn equivalent(server: &RedisServer, key: &str, quota: Quota, seed: u64, steps: usize) {
    let redis = RedisRateLimiter::builder(&server.url(), key, quota, FailurePolicy::FailClosed)
        .timeout(common::PATIENCE)
        .deny_cache(false)
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let memory = RateLimiter::with_clock(quota, &clock);
    let burst = quota.burst_size().get();
    let mut rng = Rng(seed);
    let mut origin: Option<Duration> = None;
    let (mut admitted, mut denied) = (0, 0);
    for step in 0..steps {
        // Half the calls follow the last at once, the others after up to
        // 2 ms: buckets both drain and refill.
        if rng.below(2) == 0 {
            tokio::time::sleep(Duration::from_micros(rng.below(2_000))).await;
        }
        if rng.below(8) == 0 {
            // refund_time: made on both sides at the last time known here.
            let n = 1 + rng.below(u64::from(burst)) as u32;
            redis.refund(n).await.unwrap();
            memory.refund(n);
            continue;
        }
        let n = match rng.below(4) {
            0 => burst,
            1 => burst.saturating_add(1),
            _ => 1 + rng.below(u64::from(burst).min(3)) as u32,
        };
        let decision = redis.decide(n).await;
        let source = decision.source();
        let time = decision.redis_time();
        let theirs = remote(decision.into_result());
        if let Some(time) = time {
            assert_eq!(source, Source::Redis);
            let origin = *origin.get_or_insert(time);
            let since = time
                .checked_sub(origin)
                .unwrap_or_else(|| panic!("Redis's clock went back at step {step}"));
            clock.set(since);
        } else {
            assert_eq!(source, Source::Client, "step {step}");
        }
        let ours = local(memory.check_n(n));
        assert_eq!(
            theirs,
            ours,
            "{quota:?}, seed {seed}, step {step}: check_n({n}) at {} ns",
            clock.now_nanos()
        );
        match ours {
            Answer::Admitted => admitted += 1,
            Answer::Denied { .. } => denied += 1,
            Answer::TooMany { .. } => {}
        }
    }
    // A run that never admitted or never denied compared only half of GCRA.
    assert!(
        admitted > 0 && denied > 0,
        "{quota:?}: {admitted} admitted, {denied} denied"
    );
}

#[tokio::test]
async fn redis_decides_as_the_in_process_limiter_over_random_calls() {
    let server = RedisServer::start();
    let nz = |n| NonZeroU32::new(n).unwrap();
    let quotas = [
        // A cell per millisecond: refills between most calls.
        Quota::with_period(Duration::from_millis(1))
            .unwrap()
            .allow_burst(nz(5)),
        // An interval of 333 333 333 ns: every TAT has nanoseconds that
        // Redis's microsecond clock never has.
        Quota::per_second(nz(3)),
        // 7 777 ns per cell, 200 of them: many cells per pause.
        Quota::with_period(Duration::from_nanos(7_777))
            .unwrap()
            .allow_burst(nz(200)),
        // One per hour: only refunds bring cells back.
        Quota::per_hour(nz(4)),
        // One nanosecond per cell, the widest burst: 2^32 - 1 cells in 4.3 s.
        Quota::with_period(Duration::from_nanos(1))
            .unwrap()
            .allow_burst(NonZeroU32::MAX),
    ];
    for (i, quota) in quotas.into_iter().enumerate() {
        for seed in [0x9e37_79b9_7f4a_7c15, 0xd1b5_4a32_d192_ed03] {
            let key = format!("eq-{i}-{seed:x}");
            equivalent(&server, &key, quota, seed, 120).await;
        }
    }
}
