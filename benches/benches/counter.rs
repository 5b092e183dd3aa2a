//! Hot-path counter: `acqrel_core::ShardedCounter` beside a single atomic.
//!
//! Each increment adds one to a shared counter, through
//! `ShardedCounter::inc` (one Relaxed `fetch_add` on the calling thread's
//! cache-padded shard) or through `fetch_add(1, Relaxed)` on one shared
//! `AtomicU64` (what the guide's Case Study A.5 counter does).
//!
//! Groups (one per scenario):
//!
//! - `counter/inc_1_thread`: one thread increments; nobody contends. Shows
//!   what picking a shard costs over a bare atomic.
//! - `counter/inc_2_threads`: two threads increment the same counter at once,
//!   each `iters` times, started together behind a barrier. The measured
//!   wall time (from the barrier to both joins) is halved before criterion
//!   divides it by `iters`, so the reported time is per increment of the
//!   *total*: the inverse of the combined throughput. A ratio of 0.5 means
//!   twice the throughput.
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use acqrel_core::ShardedCounter;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Threads in the contended scenario.
const THREADS: u32 = 2;

const OURS: &str = "acqrel::ShardedCounter::inc";
const ANCHOR: &str = "std::AtomicU64::fetch_add(Relaxed)";

// ===== Scenarios =====

/// One way to increment a shared counter.
trait Counter: Sync {
    fn new() -> Self;
    fn inc(&self);
    fn total(&self) -> u64;
}

impl Counter for ShardedCounter {
    fn new() -> Self {
        ShardedCounter::new()
    }

    #[inline]
    fn inc(&self) {
        ShardedCounter::inc(self);
    }

    fn total(&self) -> u64 {
        self.sum()
    }
}

impl Counter for AtomicU64 {
    fn new() -> Self {
        AtomicU64::new(0)
    }

    #[inline]
    fn inc(&self) {
        // Relaxed: a count publishes nothing (the same choice `ShardedCounter`
        // makes); pairs with no acquire.
        self.fetch_add(1, Ordering::Relaxed);
    }

    fn total(&self) -> u64 {
        // Relaxed: read after the incrementing threads are joined, whose
        // join is what makes the count complete.
        self.load(Ordering::Relaxed)
    }
}

/// `counter/inc_1_thread`: increments on the benchmark thread.
fn one_thread<C: Counter>(group: &mut Group<'_>, id: &str) {
    let counter = C::new();
    group.bench_function(id, |b| b.iter(|| black_box(&counter).inc()));
    black_box(counter.total());
}

/// `counter/inc_2_threads`: [`THREADS`] threads each increment `iters` times
/// on a fresh counter; returns the wall time per increment of the total.
fn threads<C: Counter>(group: &mut Group<'_>, id: &str) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let counter = C::new();
            let start = Barrier::new(THREADS as usize + 1);
            let began = thread::scope(|s| {
                for _ in 0..THREADS {
                    let (counter, start) = (&counter, &start);
                    s.spawn(move || {
                        start.wait();
                        for _ in 0..iters {
                            black_box(counter).inc();
                        }
                    });
                }
                start.wait();
                Instant::now()
            });
            // `scope` returns only once both threads are joined.
            let elapsed = began.elapsed();
            assert_eq!(counter.total(), iters * u64::from(THREADS));
            elapsed / THREADS
        });
    });
}

// ===== Groups =====

fn inc_1_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter/inc_1_thread");
    one_thread::<ShardedCounter>(&mut group, OURS);
    one_thread::<AtomicU64>(&mut group, ANCHOR);
    group.finish();
}

fn inc_2_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter/inc_2_threads");
    threads::<ShardedCounter>(&mut group, OURS);
    threads::<AtomicU64>(&mut group, ANCHOR);
    group.finish();
}

criterion_group!(benches, inc_1_thread, inc_2_threads);
criterion_main!(benches);
