//! `Cache`: TTLs and negative caching on a `ManualClock`, invalidation
//! racing a fetch, coalescing, and the entry cap under many keys.

#![cfg(not(acqrel_loom))]

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;
mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use acqrel_core::ManualClock;
use acqrel_singleflight::{Cache, CacheStats, FlightError};
use support::{Probe, join_all, scaled, until};
use tokio::task::JoinHandle;

type Strings = Cache<&'static str, String, String, Arc<ManualClock>>;

const TTL: Duration = Duration::from_secs(60);

fn cache(clock: &Arc<ManualClock>, max_entries: usize) -> Strings {
    Cache::builder(TTL, NonZeroUsize::new(max_entries).unwrap())
        .clock(Arc::clone(clock))
        .build()
}

/// A fetch that returns `value` at once.
async fn fetch(cache: &Strings, value: &'static str) -> Result<String, FlightError<String>> {
    cache
        .get_with("k", move || async move { Ok(value.to_string()) })
        .await
}

/// Spawns a get of `key` whose fetch is `probe.work(value)`.
fn getter(
    cache: &Strings,
    key: &'static str,
    probe: &Arc<Probe>,
    value: Result<&'static str, &'static str>,
) -> JoinHandle<Result<String, FlightError<String>>> {
    let (cache, probe) = (cache.clone(), Arc::clone(probe));
    tokio::spawn(async move { cache.get_with(key, || probe.work(value)).await })
}

fn ok(value: &str) -> Result<String, FlightError<String>> {
    Ok(value.to_string())
}

fn stats(hits: u64, misses: u64, coalesced: u64, fetches: u64) -> CacheStats {
    let mut stats = CacheStats::default();
    (stats.hits, stats.misses, stats.coalesced, stats.fetches) = (hits, misses, coalesced, fetches);
    stats
}

// ===== TTL =====

#[tokio::test]
async fn a_value_is_served_until_its_ttl_then_fetched_again() {
    let clock = Arc::new(ManualClock::new());
    let cache = cache(&clock, 100);
    assert_eq!(fetch(&cache, "v1").await, ok("v1"));
    clock.advance(TTL - Duration::from_nanos(1));
    assert_eq!(fetch(&cache, "v2").await, ok("v1"));
    assert_eq!(cache.get(&"k"), Some("v1".to_string()));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.get(&"k"), None);
    assert_eq!(fetch(&cache, "v2").await, ok("v2"));
    // The TTL counts from the fetch that stored the value.
    clock.advance(TTL - Duration::from_nanos(1));
    assert_eq!(cache.get(&"k"), Some("v2".to_string()));
    assert_eq!(cache.stats(), stats(3, 2, 0, 2));
    assert_eq!(cache.len(), 1);
}

#[tokio::test]
async fn errors_are_not_kept_by_default() {
    let clock = Arc::new(ManualClock::new());
    let cache = cache(&clock, 100);
    let failed = cache
        .get_with("k", || async { Err("down".to_string()) })
        .await;
    assert_eq!(
        failed,
        Err(FlightError::Failed(Arc::new("down".to_string())))
    );
    assert!(cache.is_empty());
    assert_eq!(fetch(&cache, "up").await, ok("up"));
    assert_eq!(cache.stats(), stats(0, 2, 0, 2));
}

#[tokio::test]
async fn negative_caching_serves_the_same_error_until_its_own_ttl() {
    let clock = Arc::new(ManualClock::new());
    let error_ttl = Duration::from_secs(5);
    let cache: Strings = Cache::builder(TTL, NonZeroUsize::new(100).unwrap())
        .error_ttl(error_ttl)
        .clock(Arc::clone(&clock))
        .build();
    let first = cache
        .get_with("k", || async { Err("down".to_string()) })
        .await
        .unwrap_err();
    clock.advance(error_ttl - Duration::from_nanos(1));
    let cached = fetch(&cache, "never fetched").await.unwrap_err();
    let (Some(first), Some(cached)) = (first.failed(), cached.failed()) else {
        panic!("not the work's error: {first:?} / {cached:?}");
    };
    assert!(
        Arc::ptr_eq(first, cached),
        "the cached error is the same one"
    );
    assert_eq!(cache.get(&"k"), None, "`get` returns values only");
    clock.advance(Duration::from_nanos(1));
    assert_eq!(fetch(&cache, "up").await, ok("up"));
    assert_eq!(cache.stats(), stats(1, 2, 0, 2));
}

#[tokio::test]
async fn panics_are_not_kept() {
    let clock = Arc::new(ManualClock::new());
    let cache: Strings = Cache::builder(TTL, NonZeroUsize::new(100).unwrap())
        .error_ttl(TTL)
        .clock(Arc::clone(&clock))
        .build();
    let panicked = cache.get_with("k", || async { panic!("boom") }).await;
    assert_eq!(
        panicked,
        Err(FlightError::Panicked {
            message: Arc::from("boom")
        })
    );
    assert!(cache.is_empty());
    assert_eq!(fetch(&cache, "v").await, ok("v"));
}

// ===== Coalescing and invalidation =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_fetch() {
    let callers = usize::try_from(scaled(100)).unwrap();
    let clock = Arc::new(ManualClock::new());
    let cache = cache(&clock, 100);
    let probe = Probe::new();
    let getters: Vec<_> = (0..callers)
        .map(|_| getter(&cache, "k", &probe, Ok("v")))
        .collect();
    until("every getter joined", || {
        let stats = cache.stats();
        stats.misses == callers as u64 && stats.fetches == 1
    })
    .await;
    probe.gate.open();
    for got in join_all(getters).await {
        assert_eq!(got, ok("v"));
    }
    let n = callers as u64;
    assert_eq!(cache.stats(), stats(0, n, n - 1, 1));
    assert_eq!(probe.started(), 1);
    assert_eq!(cache.get(&"k"), Some("v".to_string()));
    assert_eq!(cache.fetching(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_all_during_a_fetch_keeps_its_stale_result_out() {
    let clock = Arc::new(ManualClock::new());
    let cache = cache(&clock, 100);
    let (stale, fresh) = (Probe::new(), Probe::new());
    let before = getter(&cache, "k", &stale, Ok("stale"));
    until("the first fetch started", || stale.started() == 1).await;
    cache.invalidate_all();

    // A get after the invalidation does not join the stale fetch.
    let after = getter(&cache, "k", &fresh, Ok("fresh"));
    until("the second fetch started", || fresh.started() == 1).await;
    stale.gate.open();
    // The stale fetch's own caller gets its value...
    assert_eq!(before.await.unwrap(), ok("stale"));
    // ...but it is not kept.
    assert_eq!(cache.get(&"k"), None);
    fresh.gate.open();
    assert_eq!(after.await.unwrap(), ok("fresh"));
    assert_eq!(cache.get(&"k"), Some("fresh".to_string()));
    assert_eq!(cache.stats().fetches, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_during_a_fetch_keeps_its_result_out() {
    let clock = Arc::new(ManualClock::new());
    let cache = cache(&clock, 100);
    let (stale, fresh) = (Probe::new(), Probe::new());
    let before = getter(&cache, "k", &stale, Ok("stale"));
    until("the first fetch started", || stale.started() == 1).await;
    cache.invalidate(&"k");
    let after = getter(&cache, "k", &fresh, Ok("fresh"));
    until("the second fetch started", || fresh.started() == 1).await;
    stale.gate.open();
    assert_eq!(before.await.unwrap(), ok("stale"));
    assert_eq!(cache.get(&"k"), None);
    fresh.gate.open();
    assert_eq!(after.await.unwrap(), ok("fresh"));
    assert_eq!(cache.get(&"k"), Some("fresh".to_string()));
}

#[tokio::test]
async fn invalidated_entries_are_misses() {
    let clock = Arc::new(ManualClock::new());
    let cache = cache(&clock, 100);
    assert_eq!(fetch(&cache, "v1").await, ok("v1"));
    cache.invalidate(&"k");
    assert!(cache.is_empty());
    assert_eq!(fetch(&cache, "v2").await, ok("v2"));
    cache.invalidate_all();
    assert_eq!(cache.get(&"k"), None);
    assert_eq!(fetch(&cache, "v3").await, ok("v3"));
    assert_eq!(cache.len(), 1, "the stale entry was replaced");
}

// ===== Memory =====

#[tokio::test]
async fn the_entry_cap_holds_under_many_distinct_keys() {
    let keys = scaled(100_000);
    let max = 1_000;
    let clock = Arc::new(ManualClock::new());
    let cache: Cache<u64, u64, (), _> = Cache::builder(TTL, NonZeroUsize::new(max).unwrap())
        .clock(Arc::clone(&clock))
        .build();
    for key in 0..keys {
        assert_eq!(
            cache.get_with(key, move || async move { Ok(key) }).await,
            Ok(key)
        );
        assert!(
            cache.len() <= max,
            "{} entries after key {key}",
            cache.len()
        );
    }
    // The newest key is still there; the cache is full, not emptied.
    assert_eq!(cache.get(&(keys - 1)), Some(keys - 1));
    assert!(cache.len() > max / 2, "only {} entries kept", cache.len());
    assert_eq!(cache.stats().fetches, keys);
}

#[tokio::test]
async fn a_full_shard_drops_the_oldest_write() {
    let clock = Arc::new(ManualClock::new());
    // One entry: one shard of one.
    let cache: Cache<u64, u64, (), _> = Cache::builder(TTL, NonZeroUsize::MIN)
        .clock(Arc::clone(&clock))
        .build();
    cache.get_with(1, || async { Ok(10) }).await.unwrap();
    cache.get_with(2, || async { Ok(20) }).await.unwrap();
    assert_eq!((cache.get(&1), cache.get(&2)), (None, Some(20)));
    // Rewriting a key replaces its entry rather than adding one.
    clock.advance(TTL);
    cache.get_with(2, || async { Ok(21) }).await.unwrap();
    assert_eq!((cache.len(), cache.get(&2)), (1, Some(21)));
}
