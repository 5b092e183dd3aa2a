//! Many-producer hand-off: `acqrel_core::TransferStack` beside a
//! `Mutex<Vec<T>>`.
//!
//! Producers push `u64`s into one shared collection that a consumer empties
//! as a whole, through `TransferStack::push` (one node allocation and one
//! compare-and-swap on the head) or through `Vec::push` under a
//! `std::sync::Mutex` (what the guide's "start with a mutex" advice gives).
//!
//! Groups (one per scenario):
//!
//! - `stack/push_2_threads`: two threads push at once, started together
//!   behind a barrier, each half of the pushes. The measured wall time (from
//!   the barrier to both joins) is divided by criterion by the total number
//!   of pushes, so the reported time is per push of the *total*: the inverse
//!   of the combined throughput. To keep memory bounded, the pushes run in
//!   batches of [`BATCH`]; after each batch, outside the measured time, the
//!   consumer takes everything (`take_all`, or `mem::take` of the vector)
//!   and drops it. Both sides therefore pay their allocations inside the
//!   measurement (a node per push, or the vector's regrowth) and their frees
//!   outside it.
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`.

use std::hint::black_box;
use std::mem;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use acqrel_core::TransferStack;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Threads pushing at once.
const THREADS: u64 = 2;

/// Pushes per measured batch, all threads together: bounds what a batch
/// leaves to drain (a few MiB) while keeping thread start-up, which is not
/// measured, rare.
const BATCH: u64 = 1 << 16;

// ===== Scenarios =====

/// A collection many threads push into and one consumer drains at once.
trait Collection: Sync {
    fn new() -> Self;
    fn push(&self, value: u64);
    /// Takes and drops everything pushed so far; returns how many values.
    fn drain(&self) -> u64;
}

impl Collection for TransferStack<u64> {
    fn new() -> Self {
        TransferStack::new()
    }

    #[inline]
    fn push(&self, value: u64) {
        TransferStack::push(self, value);
    }

    fn drain(&self) -> u64 {
        self.take_all().map(black_box).count() as u64
    }
}

impl Collection for Mutex<Vec<u64>> {
    fn new() -> Self {
        Mutex::new(Vec::new())
    }

    #[inline]
    fn push(&self, value: u64) {
        self.lock().unwrap().push(value);
    }

    fn drain(&self) -> u64 {
        // Take the vector out under the lock and drop it after, as a
        // consumer handing the batch to other code would.
        let taken = mem::take(&mut *self.lock().unwrap());
        taken.into_iter().map(black_box).count() as u64
    }
}

/// `stack/push_2_threads`: [`THREADS`] threads push `iters` values in all,
/// in batches of [`BATCH`]; returns the measured wall time.
fn threads<C: Collection>(group: &mut Group<'_>, id: &str) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let collection = C::new();
            let mut measured = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(BATCH);
                measured += push_batch(&collection, batch);
                assert_eq!(collection.drain(), batch);
                left -= batch;
            }
            measured
        });
    });
}

/// Pushes `batch` values from [`THREADS`] threads started together; returns
/// the time from their start to both joins.
fn push_batch<C: Collection>(collection: &C, batch: u64) -> Duration {
    let start = Barrier::new(THREADS as usize + 1);
    let began = thread::scope(|s| {
        for t in 0..THREADS {
            let (collection, start) = (collection, &start);
            s.spawn(move || {
                start.wait();
                for value in (t..batch).step_by(THREADS as usize) {
                    collection.push(black_box(value));
                }
            });
        }
        start.wait();
        Instant::now()
    });
    // `scope` returns only once both threads are joined.
    began.elapsed()
}

// ===== Groups =====

fn push_2_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("stack/push_2_threads");
    threads::<TransferStack<u64>>(&mut group, "acqrel::TransferStack::push");
    threads::<Mutex<Vec<u64>>>(&mut group, "std::Mutex<Vec<T>>::push");
    group.finish();
}

criterion_group!(benches, push_2_threads);
criterion_main!(benches);
