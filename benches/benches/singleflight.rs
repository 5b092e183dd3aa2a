//! Single flight: `acqrel_singleflight` beside `moka` (the async cache whose
//! `get_with` coalesces concurrent misses for a key) and
//! `async_singleflight` (Go's `singleflight` for tokio).
//!
//! Every read and every call below is asserted inside the measured loop: a
//! hit that misses, a caller that gets another key's value, or a second
//! fetch for one coalesced miss panics instead of measuring the wrong path.
//! Both caches get the same time to live (an hour, so nothing expires while
//! measuring), the same capacity (2,000 entries) and each its default
//! clock: ours `acqrel_core::CoarseClock` (the kernel's tick-time), moka's
//! `quanta` (the TSC, its default feature). `singleflight/cache_hit` also
//! measures ours on `MonotonicClock` (`clock_gettime`), to show the clock's
//! share.
//!
//! Groups (one per scenario):
//!
//! - `singleflight/cache_hit`: 1,000 `u64` keys read round-robin, every one
//!   cached (an `Arc<str>` value) before measuring. Ours `Cache::get` (a
//!   plain function) and `Cache::get_with`; moka's `get` and `get_with`
//!   (both `async`). A hit is ready at the first poll on both sides, so each
//!   async read is polled once with a no-op waker and must be ready (see
//!   [`ready`]): the number is the read, not a runtime's `block_on`. A
//!   `get_with` whose fetch runs panics.
//! - `singleflight/coalesced_miss_100`: one iteration spawns 100 callers of
//!   one key that was never asked for before, as tasks, and awaits them all.
//!   The fetch yields once (`tokio::task::yield_now`), then returns. Ours
//!   `Group::run` and `Cache::get_with`, async_singleflight's
//!   `Group::work`, moka's `get_with`. Each iteration asserts that exactly
//!   one fetch ran and that every caller got its value.
//!
//!   This group runs on a current-thread runtime, where "all 100 callers
//!   joined before the fetch finished" follows from the schedule on every
//!   side: the 100 tasks are queued before any of them runs, and whatever
//!   runs the fetch (our flight's own task, or the anchors' first caller
//!   after its yield) is queued behind them. On a multi-thread runtime no
//!   side can promise it, and async_singleflight visibly does not: a caller
//!   still waiting for its map's async mutex when the first caller has
//!   finished starts a second execution, so the count could not be
//!   asserted.
//! - `singleflight/leader_no_waiters`: one caller, a key never asked for
//!   before, a fetch that returns at once: what every uncontended miss
//!   costs. The same four functions, on a two-worker runtime, each call
//!   awaited in one task running on a worker. No target. Ours spawns the
//!   work as a task (so a cancelled caller never cancels it for others);
//!   the anchors run it in the caller's task.
//!
//! Before the groups run, the bench prints the mean number of heap
//! allocations per call on the `leader_no_waiters` path for each side (see
//! [`print_leader_allocations`]), counted by this file's global allocator,
//! [`CountingAllocator`], which is in place for the whole binary: every
//! allocation in every group pays one uncontended atomic add.
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group};
use tokio::runtime::Runtime;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Time to live of every cached value, on both caches.
const TTL: Duration = Duration::from_secs(3_600);

/// Capacity of every cache, on both sides: room for all of `cache_hit`'s
/// keys, so none is evicted there.
const CAPACITY: usize = 2_000;

/// Keys read round-robin in `singleflight/cache_hit`.
const KEYS: u64 = 1_000;

/// Concurrent callers per iteration in `singleflight/coalesced_miss_100`.
const CALLERS: usize = 100;

const GROUP_RUN: &str = "acqrel::Group::run";
const CACHE_GET: &str = "acqrel::Cache::get";
const CACHE_GET_WITH: &str = "acqrel::Cache::get_with";
const ASYNC_SINGLEFLIGHT_WORK: &str = "async_singleflight::Group::work";
const MOKA_GET: &str = "moka::future::Cache::get";
const MOKA_GET_WITH: &str = "moka::future::Cache::get_with";

// ===== Counting allocations =====

/// Heap allocations made by the whole process so far: calls of `alloc`,
/// `alloc_zeroed` and `realloc`.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// std's `System` allocator, counting its allocations in [`ALLOCATIONS`].
struct CountingAllocator;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

impl CountingAllocator {
    #[inline]
    fn count() {
        // Relaxed: a statistic; it publishes nothing, and its one reader
        // (`leader_allocations`) reads it after the calls it counts have
        // finished, which their task wakes order before the read.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, so each
// keeps `System`'s guarantees and meets `GlobalAlloc`'s contract as it does;
// counting touches no memory the allocator hands out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: the caller upholds `alloc`'s contract, forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: the caller upholds `alloc_zeroed`'s contract, forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count();
        // SAFETY: the caller upholds `realloc`'s contract (`ptr` came from
        // this allocator, that is from `System`), forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract (`ptr` came from
        // this allocator, that is from `System`), forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

// ===== Runtimes =====

/// A current-thread runtime: the coalesced group's (see the module docs),
/// and where the hit group fills our cache.
fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("failed to build a current-thread runtime")
}

/// A runtime with two workers: the leader group's.
fn two_workers() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("failed to build a two-worker runtime")
}

// ===== The caches =====

/// Ours, with `Value`s for the hit group or `u64`s for the others.
type Ours<V, C = acqrel_core::CoarseClock> = acqrel_singleflight::Cache<u64, V, Infallible, C>;

/// Moka's, the same way.
type Moka<V> = moka::future::Cache<u64, V>;

fn ours<V>() -> Ours<V>
where
    V: Clone + Send + Sync + 'static,
{
    acqrel_singleflight::Cache::builder(TTL, capacity()).build()
}

fn capacity() -> NonZeroUsize {
    NonZeroUsize::new(CAPACITY).expect("CAPACITY is not zero")
}

/// Fills keys `0..KEYS` of one of ours (a miss's fetch runs as a task: on
/// a runtime).
fn fill<C: acqrel_core::Clock + 'static>(ours: &Ours<Value, C>) {
    current_thread().block_on(async {
        for key in 0..KEYS {
            let filled = ours
                .get_with(key, || async move { Ok(value(key)) })
                .await
                .unwrap_or_else(|error| panic!("filling key {key} failed: {error:?}"));
            assert_eq!(filled, value(key));
        }
    });
}

fn moka<V>() -> Moka<V>
where
    V: Clone + Send + Sync + 'static,
{
    let capacity = u64::try_from(CAPACITY).expect("CAPACITY fits in a u64");
    moka::future::Cache::builder()
        .max_capacity(capacity)
        .time_to_live(TTL)
        .build()
}

// ===== singleflight/cache_hit =====

/// A cached value: what a service would keep (a clone is a reference count).
type Value = Arc<str>;

/// The value cached for `key`.
fn value(key: u64) -> Value {
    Arc::from(format!("value-{key}"))
}

/// The value of a fetch that must not run: every read of the hit group
/// hits.
fn no_value() -> Value {
    panic!("a cache hit ran its fetch")
}

/// The output of `future`'s first poll, which must be ready: a cache hit is,
/// on both sides, so the hit group reads through `get_with` (and moka's
/// `get`) without a runtime. Panics if it is not ready.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a cache hit was not ready at its first poll"),
    }
}

/// Measures `read` of keys `0..KEYS` in turn; `read` returns the value.
fn hits(group: &mut Group<'_>, id: &str, mut read: impl FnMut(u64) -> Value) {
    let mut key = 0;
    group.bench_function(id, |b| {
        b.iter(|| {
            key = if key + 1 == KEYS { 0 } else { key + 1 };
            read(black_box(key))
        });
    });
}

fn cache_hit(c: &mut Criterion) {
    let ours = ours::<Value>();
    fill(&ours);
    let precise: Ours<Value, acqrel_core::MonotonicClock> =
        acqrel_singleflight::Cache::builder(TTL, capacity())
            .clock(acqrel_core::MonotonicClock::new())
            .build();
    fill(&precise);
    let moka = moka::<Value>();
    current_thread().block_on(async {
        for key in 0..KEYS {
            assert_eq!(
                moka.get_with(key, async move { value(key) }).await,
                value(key)
            );
        }
        // Moka applies its writes to its eviction policy lazily: apply
        // them now rather than in the first measured reads.
        moka.run_pending_tasks().await;
    });
    assert_eq!(moka.entry_count(), KEYS);

    let mut group = c.benchmark_group("singleflight/cache_hit");
    hits(&mut group, CACHE_GET, |key| {
        ours.get(&key).expect("a cached key missed")
    });
    hits(&mut group, "acqrel::Cache<MonotonicClock>::get", |key| {
        precise.get(&key).expect("a cached key missed")
    });
    hits(&mut group, CACHE_GET_WITH, |key| {
        ready(ours.get_with(key, || async { Ok(no_value()) }))
            .unwrap_or_else(|error| panic!("a cache hit failed: {error:?}"))
    });
    hits(&mut group, MOKA_GET, |key| {
        ready(moka.get(&key)).expect("a cached key missed")
    });
    hits(&mut group, MOKA_GET_WITH, |key| {
        ready(moka.get_with(key, async { no_value() }))
    });
    group.finish();
}

// ===== Sides of a flight =====

/// One implementation of coalesced calls, whichever crate, with `u64`
/// values: `call` is one caller asking for `key`, with `fetch` making the
/// future that computes the value.
///
/// Ours calls `fetch` only when this caller starts the execution; the
/// anchors take the future itself, so `fetch` is called by every caller and
/// its future polled only by the one that runs it (the future's body is
/// where [`Iteration::fetch`] counts the fetches).
trait Side: Send + Sync + 'static {
    fn call<Fut>(
        &self,
        key: u64,
        fetch: impl FnOnce() -> Fut + Send,
    ) -> impl Future<Output = u64> + Send
    where
        Fut: Future<Output = u64> + Send + 'static;
}

/// `future`'s output as the `Ok` that our fetches and async_singleflight's
/// return.
async fn infallible<F: Future>(future: F) -> Result<F::Output, Infallible> {
    Ok(future.await)
}

impl Side for acqrel_singleflight::Group<u64, u64, Infallible> {
    async fn call<Fut>(&self, key: u64, fetch: impl FnOnce() -> Fut + Send) -> u64
    where
        Fut: Future<Output = u64> + Send + 'static,
    {
        match self.run(key, || infallible(fetch())).await {
            Ok(outcome) => outcome.value,
            Err(error) => panic!("Group::run failed: {error:?}"),
        }
    }
}

impl Side for Ours<u64> {
    async fn call<Fut>(&self, key: u64, fetch: impl FnOnce() -> Fut + Send) -> u64
    where
        Fut: Future<Output = u64> + Send + 'static,
    {
        match self.get_with(key, || infallible(fetch())).await {
            Ok(value) => value,
            Err(error) => panic!("Cache::get_with failed: {error:?}"),
        }
    }
}

impl Side for async_singleflight::Group<u64, u64, Infallible> {
    async fn call<Fut>(&self, key: u64, fetch: impl FnOnce() -> Fut + Send) -> u64
    where
        Fut: Future<Output = u64> + Send + 'static,
    {
        match self.work(&key, infallible(fetch())).await {
            Ok(value) => value,
            Err(error) => panic!("async_singleflight's work failed: {error:?}"),
        }
    }
}

impl Side for Moka<u64> {
    async fn call<Fut>(&self, key: u64, fetch: impl FnOnce() -> Fut + Send) -> u64
    where
        Fut: Future<Output = u64> + Send + 'static,
    {
        self.get_with(key, fetch()).await
    }
}

// ===== The flight scenarios =====

/// What one coalesced miss saw.
#[derive(Default)]
struct Iteration {
    /// Fetches started for the iteration's key.
    fetches: AtomicU64,
}

impl Iteration {
    /// The coalesced group's fetch: yields once, then returns `key`. Panics
    /// if another fetch of the same iteration started before it.
    async fn fetch(&self, key: u64) -> u64 {
        // Relaxed: only counts; the iteration reads the count after joining
        // every caller's task, which orders this add before that read.
        let earlier = self.fetches.fetch_add(1, Ordering::Relaxed);
        assert_eq!(earlier, 0, "a second fetch ran for one coalesced miss");
        tokio::task::yield_now().await;
        key
    }
}

/// Which scenario a flight group measures.
#[derive(Clone, Copy)]
enum Scenario {
    /// `CALLERS` concurrent callers of one fresh key.
    Coalesced,
    /// One caller of a fresh key, whose fetch returns at once.
    Leader,
}

impl Scenario {
    fn group_id(self) -> &'static str {
        match self {
            Self::Coalesced => "singleflight/coalesced_miss_100",
            Self::Leader => "singleflight/leader_no_waiters",
        }
    }

    /// The runtime this scenario runs on (see the module docs).
    fn runtime(self) -> Runtime {
        match self {
            Self::Coalesced => current_thread(),
            Self::Leader => two_workers(),
        }
    }

    /// One iteration for `key`, a key `side` has never been asked for.
    async fn run<S: Side>(self, side: &Arc<S>, key: u64) {
        match self {
            Self::Coalesced => coalesced(side, key).await,
            Self::Leader => leader(side, key).await,
        }
    }
}

/// `CALLERS` tasks call `side` for `key` at once; exactly one fetch runs and
/// every caller gets its value.
async fn coalesced<S: Side>(side: &Arc<S>, key: u64) {
    let iteration = Arc::new(Iteration::default());
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let side = Arc::clone(side);
            let iteration = Arc::clone(&iteration);
            tokio::spawn(async move {
                let fetch = || async move { iteration.fetch(key).await };
                side.call(key, fetch).await
            })
        })
        .collect();
    for caller in callers {
        let got = caller
            .await
            .unwrap_or_else(|error| panic!("a caller failed: {error}"));
        assert_eq!(got, key, "a caller got another key's value");
    }
    // Relaxed: every fetch's add happened before its caller's task ended,
    // which the joins above ordered before this load.
    assert_eq!(iteration.fetches.load(Ordering::Relaxed), 1);
}

/// One caller calls `side` for `key`, with a fetch that returns at once.
async fn leader<S: Side>(side: &Arc<S>, key: u64) {
    let got = side.call(key, || async move { key }).await;
    assert_eq!(got, key, "the caller got another key's value");
}

/// Measures `scenario` on `side`, on the scenario's runtime, each sample's
/// iterations run in one task (a worker's, on the two-worker runtime: where
/// a service's callers run), each with a key never used before.
fn flights<S: Side>(group: &mut Group<'_>, id: &str, side: S, scenario: Scenario) {
    let runtime = scenario.runtime();
    let side = Arc::new(side);
    let mut next_key = 0;
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let side = Arc::clone(&side);
            let keys = next_key..next_key + iters;
            next_key += iters;
            let sample = runtime.spawn(async move {
                let start = Instant::now();
                for key in keys {
                    scenario.run(&side, black_box(key)).await;
                }
                start.elapsed()
            });
            runtime
                .block_on(sample)
                .unwrap_or_else(|error| panic!("a sample failed: {error}"))
        });
    });
}

/// One flight group: ours, then the anchors.
fn flight_group(c: &mut Criterion, scenario: Scenario) {
    let mut group = c.benchmark_group(scenario.group_id());
    flights(
        &mut group,
        GROUP_RUN,
        acqrel_singleflight::Group::new(),
        scenario,
    );
    flights(&mut group, CACHE_GET_WITH, ours::<u64>(), scenario);
    flights(
        &mut group,
        ASYNC_SINGLEFLIGHT_WORK,
        async_singleflight::Group::new(),
        scenario,
    );
    flights(&mut group, MOKA_GET_WITH, moka::<u64>(), scenario);
    group.finish();
}

fn coalesced_miss_100(c: &mut Criterion) {
    flight_group(c, Scenario::Coalesced);
}

fn leader_no_waiters(c: &mut Criterion) {
    flight_group(c, Scenario::Leader);
}

// ===== Allocations per leader call =====

/// Leader calls made before counting: past every cache's first growth and
/// its first evictions (`CAPACITY` is 2,000).
const WARM_UP_CALLS: u64 = 10_000;

/// Leader calls counted.
const COUNTED_CALLS: u64 = 10_000;

/// The mean number of allocations per call of `leader` on `side`, on the
/// leader group's runtime, over `COUNTED_CALLS` fresh keys after
/// `WARM_UP_CALLS`.
fn leader_allocations<S: Side>(side: S) -> f64 {
    let runtime = Scenario::Leader.runtime();
    let side = Arc::new(side);
    let counted = runtime.spawn(async move {
        for key in 0..WARM_UP_CALLS {
            leader(&side, key).await;
        }
        // Relaxed (both loads): see `CountingAllocator::count`.
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for key in WARM_UP_CALLS..WARM_UP_CALLS + COUNTED_CALLS {
            leader(&side, key).await;
        }
        ALLOCATIONS.load(Ordering::Relaxed) - before
    });
    let allocations = runtime
        .block_on(counted)
        .unwrap_or_else(|error| panic!("counting allocations failed: {error}"));
    allocations as f64 / COUNTED_CALLS as f64
}

/// Prints the mean allocations per call on the `leader_no_waiters` path, one
/// side after the other, on one line.
fn print_leader_allocations() {
    let sides = [
        (
            GROUP_RUN,
            leader_allocations(acqrel_singleflight::Group::new()),
        ),
        (CACHE_GET_WITH, leader_allocations(ours::<u64>())),
        (
            ASYNC_SINGLEFLIGHT_WORK,
            leader_allocations(async_singleflight::Group::new()),
        ),
        (MOKA_GET_WITH, leader_allocations(moka::<u64>())),
    ];
    let sides: Vec<String> = sides
        .iter()
        .map(|(id, mean)| format!("{id} {mean:.2}"))
        .collect();
    println!(
        "singleflight/leader_no_waiters: allocations per call: {}",
        sides.join(", ")
    );
}

// ===== main =====

criterion_group!(benches, cache_hit, coalesced_miss_100, leader_no_waiters);

/// `criterion_main!`, with the allocation counts printed first.
fn main() {
    print_leader_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
