//! The limiters against a real `redis-server`: the answers of GCRA, the
//! deny cache, refunds, quota changes, and bad input.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use acqrel_ratelimit::Quota;
use acqrel_ratelimit_redis::{
    FailurePolicy, KeyError, KeyedRedisRateLimiter, RedisNegative, RedisRateLimiter, Source,
};
use common::server::RedisServer;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A quota slow enough that no cell refills during a test step: one per
/// hour, with a burst of `burst`.
fn hourly(burst: u32) -> Quota {
    Quota::per_hour(nz(1)).allow_burst(nz(burst))
}

fn direct(server: &RedisServer, key: &str, quota: Quota) -> RedisRateLimiter {
    RedisRateLimiter::builder(&server.url(), key, quota, FailurePolicy::FailClosed)
        .timeout(common::PATIENCE)
        .build()
        .unwrap()
}

#[tokio::test]
async fn redis_admits_the_burst_then_names_the_earliest_time_of_the_next_cell() {
    let server = RedisServer::start();
    let limiter = direct(&server, "burst", hourly(3));
    let first = limiter.decide(1).await;
    assert_eq!(first.source(), Source::Redis);
    let start = first.redis_time().unwrap();
    first.into_result().unwrap();
    limiter.check_n(2).await.unwrap();
    let denied = limiter.decide(1).await;
    assert_eq!(denied.source(), Source::Redis);
    let now = denied.redis_time().unwrap();
    let not_until = denied.into_result().unwrap_err().not_until().unwrap();
    // The bucket was full at `start`; three cells cost three hours, the
    // tolerance is three hours: one cell comes back an hour after `start`.
    assert_eq!(
        not_until.earliest_possible(),
        start + Duration::from_secs(3600)
    );
    assert_eq!(
        not_until.wait_time(),
        start + Duration::from_secs(3600) - now
    );
    assert!(matches!(
        limiter.check_n(4).await,
        Err(RedisNegative::InsufficientCapacity { burst: 3 })
    ));
    assert_eq!(limiter.check_n(0).await.unwrap(), ());
}

#[tokio::test]
async fn redis_key_expires_when_its_bucket_is_full_again() {
    let server = RedisServer::start();
    let quota = Quota::per_second(nz(10)).allow_burst(nz(2));
    let limiter = direct(&server, "ttl", quota);
    limiter.check_n(2).await.unwrap();
    let ttl: i64 = server
        .command(&["PTTL", "ttl"])
        .trim_start_matches(':')
        .parse()
        .unwrap();
    // Two cells of 100 ms: full again within 200 ms, the expiry rounded up
    // to the millisecond.
    assert!((1..=201).contains(&ttl), "PTTL {ttl}");
    let value = server.command(&["GET", "ttl"]);
    assert!(value.starts_with('$'), "GET answered {value}");
}

#[tokio::test]
async fn redis_deny_cache_answers_an_over_limit_key_without_a_round_trip() {
    let server = RedisServer::start();
    let limiter = direct(&server, "cached", hourly(1));
    limiter.check().await.unwrap();
    let first = limiter.check().await.unwrap_err().not_until().unwrap();
    let trips = limiter.stats().round_trips;
    for _ in 0..100 {
        let local = limiter.decide(1).await;
        assert_eq!(local.source(), Source::DenyCache);
        let not_until = local.into_result().unwrap_err().not_until().unwrap();
        assert_eq!(not_until.earliest_possible(), first.earliest_possible());
    }
    assert_eq!(limiter.stats().round_trips, trips);
    assert_eq!(limiter.stats().deny_cache, 100);
    // A refund forgets the entry, and Redis admits again.
    limiter.refund(1).await.unwrap();
    let after = limiter.decide(1).await;
    assert_eq!(after.source(), Source::Redis);
    after.into_result().unwrap();
}

#[tokio::test]
async fn redis_refund_gives_cells_back_up_to_a_full_bucket() {
    let server = RedisServer::start();
    let limiter = direct(&server, "refund", hourly(2));
    limiter.check_n(2).await.unwrap();
    limiter.refund(5).await.unwrap();
    assert_eq!(
        server.command(&["EXISTS", "refund"]),
        ":0",
        "a full bucket has no key"
    );
    limiter.check_n(2).await.unwrap();
    assert!(limiter.check().await.is_err());
    limiter.refund(1).await.unwrap();
    limiter.check().await.unwrap();
    assert!(limiter.check().await.is_err());
    // Refunding a full bucket changes nothing.
    let other = direct(&server, "refund-full", hourly(2));
    other.refund(1).await.unwrap();
    other.check_n(2).await.unwrap();
    assert!(other.check().await.is_err());
}

#[tokio::test]
async fn redis_set_quota_keeps_the_time_owed_and_clears_the_deny_cache() {
    let server = RedisServer::start();
    let limiter = direct(&server, "requota", hourly(1));
    limiter.check().await.unwrap();
    assert!(limiter.check().await.is_err());
    // An hour owed; with a burst of 3 hours' tolerance, two cells fit now.
    limiter.set_quota(hourly(3)).unwrap();
    assert_eq!(limiter.quota(), hourly(3));
    limiter.check_n(2).await.unwrap();
    assert!(limiter.check().await.is_err());
    let huge = Quota::with_period(Duration::from_secs(1 << 29))
        .unwrap()
        .allow_burst(NonZeroU32::MAX);
    assert!(limiter.set_quota(huge).is_err());
    assert_eq!(limiter.quota(), hourly(3));
}

#[tokio::test]
async fn redis_keyed_keys_are_independent_and_any_bytes() {
    let server = RedisServer::start();
    let limiter: KeyedRedisRateLimiter<Vec<u8>> =
        KeyedRedisRateLimiter::builder(&server.url(), "k:", hourly(1), FailurePolicy::FailClosed)
            .timeout(common::PATIENCE)
            .max_key_len(4096)
            .build()
            .unwrap();
    let long = vec![b'x'; 4096];
    let keys: [&[u8]; 5] = [b"", b"a", b"\xff\xfe\x00binary", "ключ".as_bytes(), &long];
    for key in keys {
        limiter
            .check(key)
            .await
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
    }
    for key in keys {
        let e = limiter.check(key).await.unwrap_err();
        assert!(e.not_until().is_some(), "{key:?}: {e}");
    }
    let too_long = vec![b'x'; 4097];
    let e = limiter.check(&too_long[..]).await.unwrap_err();
    assert!(matches!(
        e,
        RedisNegative::Key(KeyError::TooLong {
            len: 4097,
            max: 4096
        })
    ));
    let stats = limiter.stats();
    assert_eq!(stats.round_trips - stats.script_loads, 10, "{stats:?}");
    let stored = server.command(&["EXISTS", "k:"]);
    assert_eq!(stored, ":1", "the empty key is the prefix alone");
}

#[tokio::test]
async fn redis_script_flushed_is_sent_again_whole() {
    let server = RedisServer::start();
    let limiter = direct(&server, "flush", hourly(5));
    limiter.check().await.unwrap();
    assert_eq!(server.command(&["SCRIPT", "FLUSH"]), "+OK");
    limiter.check().await.unwrap();
    let stats = limiter.stats();
    assert_eq!(
        stats.script_loads, 2,
        "the first call loads it too: {stats:?}"
    );
    limiter.check().await.unwrap();
    assert_eq!(limiter.stats().script_loads, 2);
}

#[tokio::test]
async fn redis_key_of_another_type_is_a_typed_error() {
    let server = RedisServer::start();
    assert_eq!(server.command(&["HSET", "foreign", "f", "v"]), ":1");
    assert_eq!(server.command(&["SET", "garbage", "not-a-tat"]), "+OK");
    for key in ["foreign", "garbage"] {
        let limiter = direct(&server, key, hourly(5));
        let e = limiter.check().await.unwrap_err();
        assert!(e.is_unavailable(), "{key}: {e}");
    }
}

#[tokio::test]
async fn redis_quota_extremes_are_exact() {
    let server = RedisServer::start();
    // The finest interval with the widest burst: 1 ns per cell, 4.29 s of
    // tolerance, every cell taken at once.
    let finest = Quota::with_period(Duration::from_nanos(1))
        .unwrap()
        .allow_burst(NonZeroU32::MAX);
    let limiter = direct(&server, "finest", finest);
    let taken = limiter.decide(u32::MAX).await;
    let start = taken.redis_time().unwrap();
    taken.into_result().unwrap();
    let denied = limiter.decide(u32::MAX).await;
    let now = denied.redis_time().unwrap();
    let not_until = denied.into_result().unwrap_err().not_until().unwrap();
    // TAT = start + (2^32 - 1) ns; all cells again when TAT - tau + tau...
    // i.e. the earliest for u32::MAX cells is the TAT itself.
    assert_eq!(
        not_until.earliest_possible(),
        start + Duration::from_nanos(u64::from(u32::MAX))
    );
    assert!(now >= start);
    // The longest interval a quota holds (2^60 - 1 ns, 36.5 years) with
    // the largest burst the script holds exactly: tau just under 2^51 s.
    let longest = Duration::from_nanos((1 << 60) - 1);
    let burst = ((1u128 << 51) * 1_000_000_000 / longest.as_nanos()) as u32;
    let quota = Quota::with_period(longest).unwrap().allow_burst(nz(burst));
    let limiter = direct(&server, "longest", quota);
    let taken = limiter.decide(burst).await;
    let start = taken.redis_time().unwrap();
    taken.into_result().unwrap();
    let denied = limiter.decide(1).await.into_result().unwrap_err();
    assert_eq!(
        denied.not_until().unwrap().earliest_possible(),
        start + longest
    );
    let past = Quota::with_period(longest)
        .unwrap()
        .allow_burst(nz(burst + 1));
    let e = RedisRateLimiter::builder(&server.url(), "past", past, FailurePolicy::FailClosed)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("2^51"), "{e}");
}

#[tokio::test]
async fn redis_until_n_ready_sleeps_for_the_wait_named_then_takes_the_cells() {
    let server = RedisServer::start();
    // 100 cells per second, a burst of 2: the third and fourth wait for
    // refills.
    let quota = Quota::per_second(nz(100)).allow_burst(nz(2));
    let limiter = direct(&server, "wait", quota);
    let start = limiter.decide(2).await.redis_time().unwrap();
    for _ in 0..2 {
        tokio::time::timeout(common::PATIENCE, limiter.until_n_ready(1))
            .await
            .unwrap()
            .unwrap();
    }
    // Two cells were owed at `start`; they came back 10 ms apart: the
    // bucket is empty again, and Redis's clock has passed two intervals.
    let denied = limiter.decide(1).await;
    let now = denied.redis_time().unwrap();
    assert!(denied.into_result().is_err() || now >= start + Duration::from_millis(30));
    assert!(
        now >= start + Duration::from_millis(20),
        "{:?}",
        now - start
    );
    assert!(matches!(
        limiter.until_n_ready(3).await,
        Err(RedisNegative::InsufficientCapacity { burst: 2 })
    ));
}

#[tokio::test]
async fn redis_keyed_integer_keys_are_their_decimal_digits() {
    let server = RedisServer::start();
    let limiter: KeyedRedisRateLimiter<u64> = KeyedRedisRateLimiter::builder(
        &server.url(),
        "user:",
        hourly(1),
        FailurePolicy::FailClosed,
    )
    .timeout(common::PATIENCE)
    .build()
    .unwrap();
    limiter.check(&42).await.unwrap();
    assert!(limiter.check(&42).await.unwrap_err().not_until().is_some());
    limiter.check(&u64::MAX).await.unwrap();
    assert_eq!(server.command(&["EXISTS", "user:42"]), ":1");
    assert_eq!(
        server.command(&["EXISTS", "user:18446744073709551615"]),
        ":1"
    );
    assert_eq!(limiter.cached_denials(), 1);
}
