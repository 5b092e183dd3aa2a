//! Worker pool: `acqrel_pool::WorkerPool` beside the two things people
//! write instead: an `mpsc` channel feeding N tasks that share its receiver
//! behind tokio's `Mutex`, and a tokio task per job tracked by tokio-util's
//! `TaskTracker`.
//!
//! Group `pool/throughput_1000`: one iteration submits 1,000 jobs and
//! waits until every one has run; the time is per iteration (divide by
//! 1,000 for a job). A job adds one permit to a `Semaphore` that the
//! submitting side then takes all of at once (`acquire_many`), so the wait
//! is the same on every side and ends exactly when the last job is done.
//! Jobs do nothing else: the number is the pool's own cost per job. The
//! submitting side runs in `block_on` on the bench's thread, the jobs on a
//! two-worker multi-thread runtime (the development machine has two cores).
//!
//! - Ours: `WorkerPool` with 4 workers and a queue of 1,024, made once;
//!   each job `submit(..).await`.
//! - Hand-written: `mpsc::channel(1024)`, 4 tasks looping on
//!   `receiver.lock().await.recv().await`, made once; each job `send`.
//! - `TaskTracker`: each job `tracker.spawn`, no limit on concurrency; the
//!   tracker is made per iteration, then `close` and `wait`.
//!
//! Group `pool/throughput_1000_from_task`: the same jobs as the first
//! group, submitted from a task on the runtime instead of the bench's
//! thread, as a service's request handler would. No target.
//!
//! Group `pool/throughput_1000_yield`: the same with jobs that suspend once
//! (`tokio::task::yield_now`) before they say they are done, as a job
//! waiting on I/O does: each side's workers must then interleave jobs with
//! the runtime's other tasks. No target.
//!
//! The target: ours at least as fast as the hand-written channel
//! pool on `pool/throughput_1000` (ratio ≤ 1.0 in `benches/targets.txt`).

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acqrel_pool::WorkerPool;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio_util::task::TaskTracker;

/// Jobs per iteration.
const JOBS: u32 = 1_000;
/// Workers of the pool and of the hand-written channel pool.
const WORKERS: usize = 4;
/// Queue capacity of both pools.
const CAPACITY: usize = 1_024;

const OURS: &str = "acqrel::WorkerPool::submit";
const CHANNEL: &str = "tokio::mpsc+Mutex<Receiver>";
const TRACKER: &str = "tokio_util::TaskTracker::spawn";

/// A job: says it is done.
type Job = Arc<Semaphore>;

/// What every side's job does: yields once first if `YIELD`, then says it
/// is done.
async fn job<const YIELD: bool>(done: Job) {
    if YIELD {
        tokio::task::yield_now().await;
    }
    done.add_permits(1);
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // The pool's grace and cancel periods need the timer.
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// Waits until `JOBS` jobs have added their permit, and takes them all.
async fn all_done(done: &Semaphore) {
    done.acquire_many(JOBS)
        .await
        .expect("the semaphore is never closed")
        .forget();
}

/// Times `iters` iterations of `batch` (which submits `JOBS` jobs and waits
/// for them) on `runtime`: from the bench's thread (`block_on`), or, if
/// `IN_TASK`, from a task of the runtime.
fn timed<const IN_TASK: bool, F, Fut>(runtime: &Runtime, iters: u64, mut batch: F) -> Duration
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let run = async move {
        let start = Instant::now();
        for _ in 0..iters {
            batch().await;
        }
        start.elapsed()
    };
    if IN_TASK {
        runtime
            .block_on(runtime.spawn(run))
            .expect("the submitting task")
    } else {
        runtime.block_on(run)
    }
}

fn throughput(c: &mut Criterion) {
    group::<false, false>(c, "");
    group::<true, false>(c, "_yield");
    group::<false, true>(c, "_from_task");
}

/// One group: the three sides, each job `job::<YIELD>`, submitted from the
/// bench's thread or (`IN_TASK`) from a task of the runtime.
fn group<const YIELD: bool, const IN_TASK: bool>(c: &mut Criterion, suffix: &str) {
    let runtime = runtime();
    let done = Arc::new(Semaphore::new(0));
    let mut group = c.benchmark_group(format!("pool/throughput_{JOBS}{suffix}"));

    let pool = Arc::new({
        let _entered = runtime.enter();
        WorkerPool::builder()
            .workers(NonZeroUsize::new(WORKERS).expect("workers > 0"))
            .queue_capacity(NonZeroUsize::new(CAPACITY).expect("capacity > 0"))
            .start(|done: Job, _shutdown| job::<YIELD>(done))
    });
    group.bench_function(OURS, |b| {
        b.iter_custom(|iters| {
            let (pool, done) = (Arc::clone(&pool), Arc::clone(&done));
            timed::<IN_TASK, _, _>(&runtime, iters, move || {
                let (pool, done) = (Arc::clone(&pool), Arc::clone(&done));
                async move {
                    for _ in 0..JOBS {
                        pool.submit(Arc::clone(&done)).await.expect("pool running");
                    }
                    all_done(&done).await;
                }
            })
        });
    });

    let sender = {
        let (sender, receiver) = mpsc::channel::<Job>(CAPACITY);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WORKERS {
            let receiver = Arc::clone(&receiver);
            runtime.spawn(async move {
                loop {
                    let next = receiver.lock().await.recv().await;
                    match next {
                        Some(done) => job::<YIELD>(done).await,
                        None => break,
                    }
                }
            });
        }
        sender
    };
    group.bench_function(CHANNEL, |b| {
        b.iter_custom(|iters| {
            let (sender, done) = (sender.clone(), Arc::clone(&done));
            timed::<IN_TASK, _, _>(&runtime, iters, move || {
                let (sender, done) = (sender.clone(), Arc::clone(&done));
                async move {
                    for _ in 0..JOBS {
                        sender
                            .send(Arc::clone(&done))
                            .await
                            .expect("workers running");
                    }
                    all_done(&done).await;
                }
            })
        });
    });

    group.bench_function(TRACKER, |b| {
        b.iter_custom(|iters| {
            let done = Arc::clone(&done);
            timed::<IN_TASK, _, _>(&runtime, iters, move || {
                let done = Arc::clone(&done);
                async move {
                    let tracker = TaskTracker::new();
                    for _ in 0..JOBS {
                        tracker.spawn(job::<YIELD>(Arc::clone(&done)));
                    }
                    tracker.close();
                    tracker.wait().await;
                    all_done(&done).await;
                }
            })
        });
    });
    group.finish();

    // Both pools end here, before the runtime: ours reports every job run.
    let report = runtime.block_on(pool.shutdown(Duration::from_secs(10)));
    assert_eq!(report.total(), report.completed, "every job completed");
    drop(sender);
}

criterion_group!(benches, throughput);
criterion_main!(benches);
