//! `WorkerPool`: drain, cancel, abort, the report's counts, submits around
//! a shutdown, panics, and that no task or job outlives the pool. Timing
//! runs on tokio's paused clock: virtual time advances only when every
//! task waits, so the periods below are exact and cost no real time.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use acqrel_pool::{
    EndedBy, GRACE_OVER, PoolStage, Shutdown, ShutdownReport, TrySubmitError, WorkerPool,
};
use tokio::time::Instant;

const GRACE: Duration = Duration::from_millis(100);
const CANCEL: Duration = Duration::from_millis(50);

/// Counts the jobs alive: made with the job, dropped with it (run,
/// dropped unstarted, or aborted).
#[derive(Clone, Default)]
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn job(&self, work: Work) -> Job {
        // Relaxed: a test counter, read after the pool is done with it.
        self.0.fetch_add(1, Ordering::Relaxed);
        Job {
            alive: self.clone(),
            work,
        }
    }

    fn count(&self) -> usize {
        // Relaxed: see `job`.
        self.0.load(Ordering::Relaxed)
    }
}

/// What a job does.
#[derive(Clone, Copy, Debug)]
enum Work {
    /// Sleeps this long, ignoring cancellation.
    Sleep(Duration),
    /// Waits for its `Shutdown`, then returns.
    UntilCancelled,
    /// Never returns.
    Forever,
    Panic,
}

struct Job {
    alive: Alive,
    work: Work,
}

impl Drop for Job {
    fn drop(&mut self) {
        // Relaxed: see `Alive::job`.
        self.alive.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn run(job: Job, shutdown: Shutdown) {
    match job.work {
        Work::Sleep(time) => tokio::time::sleep(time).await,
        Work::UntilCancelled => shutdown.cancelled().await,
        Work::Forever => std::future::pending().await,
        Work::Panic => panic!("job panicked on purpose"),
    }
}

fn pool(workers: usize, capacity: usize) -> WorkerPool<Job> {
    WorkerPool::builder()
        .workers(NonZeroUsize::new(workers).expect("workers > 0"))
        .queue_capacity(NonZeroUsize::new(capacity).expect("capacity > 0"))
        .cancel_period(CANCEL)
        .start(run)
}

async fn submit_all(pool: &WorkerPool<Job>, alive: &Alive, work: &[Work]) {
    for &work in work {
        assert!(pool.submit(alive.job(work)).await.is_ok());
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// A report's counts, in the order `completed, panicked,
/// cancelled_before_start, cancelled_while_running, aborted`, and how it
/// ended.
fn counts(report: ShutdownReport) -> ((u64, u64, u64, u64, u64), EndedBy) {
    let counts = (
        report.completed,
        report.panicked,
        report.cancelled_before_start,
        report.cancelled_while_running,
        report.aborted,
    );
    (counts, report.ended_by)
}

#[tokio::test(start_paused = true)]
async fn a_drain_finishes_every_queued_job_inside_the_grace_period() {
    let baseline = alive_tasks();
    let alive = Alive::default();
    let pool = pool(2, 32);
    submit_all(&pool, &alive, &[Work::Sleep(Duration::from_millis(5)); 20]).await;
    let start = Instant::now();
    let done = pool.shutdown(GRACE).await;
    assert_eq!(counts(done), ((20, 0, 0, 0, 0), EndedBy::Drain));
    // 20 jobs of 5 ms on 2 workers: 50 ms of virtual time, inside the grace.
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(pool.stage(), PoolStage::Stopped);
    assert_eq!(alive.count(), 0);
    assert_eq!(alive_tasks(), baseline);
}

#[tokio::test(start_paused = true)]
async fn jobs_that_ignore_cancellation_are_aborted_after_the_cancel_period() {
    let baseline = alive_tasks();
    let alive = Alive::default();
    let pool = pool(2, 8);
    submit_all(&pool, &alive, &[Work::Forever; 5]).await;
    tokio::task::yield_now().await; // the two workers take a job each
    let jobs = pool.jobs_shutdown();
    let start = Instant::now();
    let done = pool.shutdown(GRACE).await;
    assert_eq!(counts(done), ((0, 0, 3, 0, 2), EndedBy::Abort));
    assert_eq!(start.elapsed(), GRACE + CANCEL);
    assert_eq!(
        jobs.cause().map(|cause| cause.to_string()),
        Some(GRACE_OVER.to_owned())
    );
    assert_eq!(alive.count(), 0);
    assert_eq!(alive_tasks(), baseline);
}

#[tokio::test(start_paused = true)]
async fn cooperative_jobs_return_when_cancelled_and_are_counted_so() {
    let alive = Alive::default();
    let pool = pool(2, 8);
    submit_all(&pool, &alive, &[Work::UntilCancelled; 3]).await;
    tokio::task::yield_now().await;
    let start = Instant::now();
    let done = pool.shutdown(GRACE).await;
    // Two ran and returned on cancellation; the third never started.
    assert_eq!(counts(done), ((0, 0, 1, 2, 0), EndedBy::Cancel));
    assert_eq!(start.elapsed(), GRACE);
    assert_eq!(alive.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_report_counts_every_kind_of_ending_exactly() {
    let alive = Alive::default();
    let pool = pool(3, 16);
    let short = Work::Sleep(Duration::from_millis(10));
    let long = Work::Sleep(Duration::from_secs(60));
    // Three workers: panics and short sleeps finish in the grace; then the
    // three workers are taken by a long sleep, a cancellable wait and a
    // job that never returns; two more stay queued.
    let work = [
        Work::Panic,
        short,
        short,
        Work::Panic,
        short,
        long,
        Work::UntilCancelled,
        Work::Forever,
        short,
        short,
    ];
    submit_all(&pool, &alive, &work).await;
    let done = pool.shutdown(GRACE).await;
    // The long sleep ignores cancellation and outlasts the cancel period.
    assert_eq!(counts(done), ((3, 2, 2, 1, 2), EndedBy::Abort));
    assert_eq!(done.total(), work.len() as u64);
    assert_eq!(alive.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_job_is_counted_and_its_worker_goes_on() {
    let alive = Alive::default();
    let pool = pool(1, 8);
    submit_all(
        &pool,
        &alive,
        &[Work::Panic, Work::Sleep(Duration::ZERO), Work::Panic],
    )
    .await;
    let done = pool.shutdown(GRACE).await;
    assert_eq!(counts(done), ((1, 2, 0, 0, 0), EndedBy::Drain));
}

#[tokio::test(start_paused = true)]
async fn submits_after_shutdown_hand_the_job_back() {
    let alive = Alive::default();
    let pool = pool(1, 1);
    pool.shutdown(GRACE).await;
    let refused = pool.try_submit(alive.job(Work::Panic)).unwrap_err();
    assert!(refused.is_closed());
    assert!(matches!(refused.into_inner().work, Work::Panic));
    let refused = pool.submit(alive.job(Work::Forever)).await.unwrap_err();
    assert!(matches!(refused.into_inner().work, Work::Forever));
    assert_eq!(alive.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_submit_waiting_for_room_gets_its_job_back_when_the_pool_closes() {
    let alive = Alive::default();
    let pool = Arc::new(pool(1, 1));
    // The worker holds one, the queue one: full.
    submit_all(&pool, &alive, &[Work::Forever]).await;
    tokio::task::yield_now().await;
    submit_all(&pool, &alive, &[Work::Forever]).await;
    assert!(matches!(
        pool.try_submit(alive.job(Work::Panic)),
        Err(TrySubmitError::Full(_))
    ));
    let waiting = tokio::spawn({
        let (pool, job) = (Arc::clone(&pool), alive.job(Work::Sleep(Duration::ZERO)));
        async move {
            pool.submit(job)
                .await
                .map_err(|refused| refused.into_inner().work)
        }
    });
    tokio::task::yield_now().await;
    let done = pool.shutdown(GRACE).await;
    assert_eq!(counts(done), ((0, 0, 1, 0, 1), EndedBy::Abort));
    assert!(matches!(waiting.await.unwrap(), Err(Work::Sleep(_))));
    assert_eq!(alive.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn concurrent_and_repeated_shutdowns_return_the_same_report() {
    let alive = Alive::default();
    let pool = Arc::new(pool(2, 8));
    submit_all(
        &pool,
        &alive,
        &[Work::UntilCancelled, Work::Sleep(Duration::from_millis(1))],
    )
    .await;
    let callers: Vec<_> = (0..4)
        .map(|n| {
            let pool = Arc::clone(&pool);
            // Different graces: the first call's applies.
            tokio::spawn(async move { pool.shutdown(GRACE * (n + 1)).await })
        })
        .collect();
    let mut reports = Vec::new();
    for caller in callers {
        reports.push(caller.await.unwrap());
    }
    reports.push(pool.shutdown(Duration::ZERO).await);
    let first = reports[0];
    assert_eq!(counts(first), ((1, 0, 0, 1, 0), EndedBy::Cancel));
    assert!(reports.iter().all(|report| *report == first));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_shutdown_call_still_finishes_and_a_later_call_gets_the_report() {
    let alive = Alive::default();
    let pool = pool(1, 8);
    submit_all(&pool, &alive, &[Work::Forever, Work::Forever]).await;
    tokio::task::yield_now().await;
    // Dropped at once: the shutdown goes on in its own task.
    let abandoned = tokio::time::timeout(Duration::from_millis(1), pool.shutdown(GRACE)).await;
    assert!(abandoned.is_err());
    assert_eq!(pool.stage(), PoolStage::Draining);
    assert_eq!(pool.reached(PoolStage::Stopped).await, PoolStage::Stopped);
    assert_eq!(
        counts(pool.shutdown(Duration::ZERO).await),
        ((0, 0, 1, 0, 1), EndedBy::Abort)
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_pool_aborts_every_task_and_drops_every_job() {
    let baseline = alive_tasks();
    let alive = Alive::default();
    let pool = pool(3, 8);
    submit_all(
        &pool,
        &alive,
        &[
            Work::Forever,
            Work::UntilCancelled,
            Work::Forever,
            Work::Forever,
        ],
    )
    .await;
    tokio::task::yield_now().await;
    let jobs = pool.jobs_shutdown();
    drop(pool);
    assert!(jobs.is_cancelled());
    // Aborted tasks are dropped when the runtime next polls them.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    assert_eq!(alive.count(), 0);
    assert_eq!(alive_tasks(), baseline);
}

#[tokio::test(start_paused = true)]
async fn the_stages_move_forward_and_waiters_see_them() {
    let alive = Alive::default();
    let pool = Arc::new(pool(1, 8));
    assert_eq!(pool.stage(), PoolStage::Running);
    submit_all(&pool, &alive, &[Work::Sleep(Duration::from_millis(10))]).await;
    let draining = tokio::spawn({
        let pool = Arc::clone(&pool);
        async move { pool.reached(PoolStage::Draining).await }
    });
    let stopping = tokio::spawn({
        let pool = Arc::clone(&pool);
        async move { pool.shutdown(GRACE).await }
    });
    assert_eq!(draining.await.unwrap(), PoolStage::Draining);
    assert_eq!(pool.stage(), PoolStage::Draining);
    assert_eq!(stopping.await.unwrap().completed, 1);
    assert_eq!(pool.stage(), PoolStage::Stopped);
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_parent_reaches_the_running_jobs() {
    let alive = Alive::default();
    let root = Shutdown::new();
    let pool = WorkerPool::builder()
        .workers(NonZeroUsize::MIN)
        .shutdown(&root)
        .start(run);
    submit_all(&pool, &alive, &[Work::UntilCancelled]).await;
    tokio::task::yield_now().await;
    assert_eq!(pool.stats().running, 1);
    root.cancel("ctrl-c");
    tokio::task::yield_now().await;
    assert_eq!(pool.stats().cancelled_while_running, 1);
    assert_eq!(pool.jobs_shutdown().cause().unwrap().to_string(), "ctrl-c");
    // The pool itself still runs until shut down.
    assert_eq!(pool.stage(), PoolStage::Running);
    assert_eq!(
        counts(pool.shutdown(GRACE).await),
        ((0, 0, 0, 1, 0), EndedBy::Drain)
    );
}

/// Cancels its `Shutdown` when dropped.
struct CancelOnDrop(Shutdown);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel("cancelled right after the job returned");
    }
}

/// The bug: a job that returned just before a cancel was counted as
/// `cancelled_while_running`, because its worker read `is_cancelled` after
/// the return. Here the cancel lands in that gap deterministically: the
/// job's future cancels the parent when it is dropped, which happens after
/// it has returned and before the worker looks.
#[tokio::test(start_paused = true)]
async fn a_job_that_returned_just_before_a_cancel_was_counted_as_cancelled_while_running() {
    let root = Shutdown::new();
    let pool = WorkerPool::builder()
        .workers(NonZeroUsize::MIN)
        .shutdown(&root)
        .start({
            let root = root.clone();
            move |(): (), _shutdown| {
                let guard = CancelOnDrop(root.clone());
                async move {
                    let _guard = guard;
                }
            }
        });
    pool.submit(()).await.unwrap();
    let report = pool.shutdown(GRACE).await;
    // The cancel did land, and after the job had returned.
    assert!(root.is_cancelled());
    assert_eq!(counts(report), ((1, 0, 0, 0, 0), EndedBy::Drain));
}

/// The other side of the policy: a blocking job that returns because it
/// saw its `Shutdown` cancelled is counted as cancelled while running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_job_that_returns_on_seeing_the_cancel_is_counted_cancelled_while_running() {
    let root = Shutdown::new();
    let (started, mut running) = tokio::sync::mpsc::unbounded_channel::<()>();
    let pool = WorkerPool::builder()
        .workers(NonZeroUsize::MIN)
        .shutdown(&root)
        .start_blocking(move |(): (), shutdown: Shutdown| {
            started.send(()).unwrap();
            while !shutdown.is_cancelled() {
                std::thread::yield_now();
            }
        });
    pool.submit(()).await.unwrap();
    running.recv().await.unwrap();
    root.cancel("ctrl-c");
    let report = pool.shutdown(GRACE).await;
    assert_eq!(counts(report), ((0, 0, 0, 1, 0), EndedBy::Drain));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_jobs_run_on_blocking_threads_and_a_stuck_one_is_abandoned() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let (events, mut seen) = tokio::sync::mpsc::unbounded_channel::<&str>();
    let pool = WorkerPool::builder()
        .workers(NonZeroUsize::new(2).expect("2 > 0"))
        .cancel_period(Duration::from_millis(10))
        .start_blocking(move |stuck: bool, shutdown: Shutdown| {
            if stuck {
                events.send("stuck").unwrap();
                // Ignores its Shutdown; ends only when the test says so.
                let _ = released.lock().unwrap().recv();
            } else {
                assert!(!shutdown.is_cancelled());
                events.send("done").unwrap();
            }
        });
    for stuck in [false, false, false, true] {
        pool.submit(stuck).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(seen.recv().await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, ["done", "done", "done", "stuck"]);
    // Real time here (blocking threads do not run on the paused clock):
    // the periods are short and only bound how long the test waits.
    let done = pool.shutdown(Duration::from_millis(10)).await;
    assert_eq!(counts(done), ((3, 0, 0, 0, 1), EndedBy::Abort));
    release.send(()).unwrap();
}

#[test]
fn starting_in_a_runtime_without_timers_panics_at_the_call() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _entered = runtime.enter();
    let started =
        std::panic::catch_unwind(|| WorkerPool::builder().start(|(), _shutdown| async {}));
    let panic = started.expect_err("start panicked");
    let message = match panic.downcast::<String>() {
        Ok(text) => *text,
        Err(panic) => panic
            .downcast::<&str>()
            .map(|text| (*text).to_owned())
            .unwrap_or_default(),
    };
    assert!(message.contains("enable_time"), "{message}");
}

/// Ready at once; panics when dropped if it holds `true` (a job's future
/// whose `Drop` panics).
struct PanicsWhenDropped(bool);

impl Future for PanicsWhenDropped {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }
}

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        assert!(!self.0, "a job's future panicked in its drop");
    }
}

/// Regression: a future that panicked in its `Drop` (after completing)
/// killed its worker, and the jobs still queued were never run nor counted.
#[tokio::test(start_paused = true)]
async fn a_job_future_that_panics_when_dropped_is_counted_and_its_worker_goes_on() {
    let pool = WorkerPool::builder()
        .workers(NonZeroUsize::MIN)
        .start(|panics: bool, _shutdown| PanicsWhenDropped(panics));
    for panics in [true, false, true, false, false, false] {
        pool.submit(panics).await.unwrap();
    }
    let done = pool.shutdown(GRACE).await;
    assert_eq!(counts(done), ((4, 2, 0, 0, 0), EndedBy::Drain));
}

/// Regression: the stage read `Draining` while submits were still accepted
/// (the queue was closed only when the shutdown's task first ran).
#[tokio::test(start_paused = true)]
async fn once_a_shutdown_has_begun_no_submit_is_accepted() {
    let alive = Alive::default();
    let pool = pool(1, 8);
    submit_all(&pool, &alive, &[Work::Forever]).await;
    // Polled once (a timeout polls its future before looking at the time).
    let first = tokio::time::timeout(Duration::ZERO, pool.shutdown(GRACE)).await;
    assert!(first.is_err());
    assert_eq!(pool.stage(), PoolStage::Draining);
    let refused = pool.try_submit(alive.job(Work::Panic)).unwrap_err();
    assert!(refused.is_closed());
    drop(refused);
    assert_eq!(
        counts(pool.shutdown(GRACE).await),
        ((0, 0, 0, 0, 1), EndedBy::Abort)
    );
    assert_eq!(alive.count(), 0);
}
