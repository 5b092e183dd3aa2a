//! [`WorkerPool`]: N workers on tokio consuming a bounded queue, with a
//! lifecycle (drain, cancel, abort) and a report.
//!
//! # Orderings
//!
//! * The job queue (`pool/queue.rs`) is two locks, a job count and two
//!   tokio `Notify`s (for idle workers and for submitters waiting for
//!   room); its `# Protocol` says why no job is lost and no wake-up
//!   missed, and `tests/loom_queue.rs` checks it.
//! * The stages and the report hand-off (`pool/lifecycle.rs`) are an
//!   `acqrel_core::StageGate` and `TryOnce`; loom-checked in
//!   `tests/loom_lifecycle.rs`.
//! * Each worker counts its jobs in a slot of its own (`Slot`, on a cache
//!   line of its own): one writer per counter, so a count is a load and a
//!   store, never a contended read-modify-write. The counters and the
//!   `busy` flag are Relaxed: they publish nothing. The report reads them after joining every worker
//!   task, and a join orders everything the task did before it; `stats()`
//!   reads them live and says so.

mod error;
// Public (hidden) under `--cfg acqrel_loom` for its model
// (`tests/loom_lifecycle.rs`); private in every other build.
#[cfg(acqrel_loom)]
#[doc(hidden)]
pub mod lifecycle;
#[cfg(not(acqrel_loom))]
#[allow(unreachable_pub)]
mod lifecycle;
// Public (hidden) under `--cfg acqrel_loom` for its model
// (`tests/loom_queue.rs`); private in every other build.
#[cfg(acqrel_loom)]
#[doc(hidden)]
pub mod queue;
#[cfg(not(acqrel_loom))]
#[allow(unreachable_pub)]
mod queue;
mod report;

pub use self::error::{SubmitError, TrySubmitError};
use self::lifecycle::Lifecycle;
pub use self::lifecycle::PoolStage;
pub use self::report::{EndedBy, ShutdownReport};

use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use tokio::task::JoinSet;

use self::queue::JobQueue;
use crate::catch_unwind::catch_unwind;
use crate::shutdown::Shutdown;
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{self, Arc, Mutex};

/// The queue's default capacity.
const DEFAULT_CAPACITY: usize = 1024;

/// The cancel period's default: how long cancelled jobs get to return.
const DEFAULT_CANCEL_PERIOD: Duration = Duration::from_secs(1);

/// The cause the jobs' [`Shutdown`] is cancelled with when the grace
/// period of [`WorkerPool::shutdown`] runs out.
pub const GRACE_OVER: &str = "worker pool shutdown: the grace period ran out";

/// The cause the jobs' [`Shutdown`] is cancelled with when a
/// [`WorkerPool`] is dropped without [`shutdown`](WorkerPool::shutdown).
pub const POOL_DROPPED: &str = "worker pool dropped";

/// A fixed set of worker tasks consuming jobs from a bounded queue: the
/// Go idiom of N goroutines ranging over a channel, closed to stop them,
/// with a `WaitGroup` to wait for them (the guide's Pattern 4) — plus what
/// that idiom leaves to every service: a grace period, cancellation of the
/// jobs that overrun it, abort of those that ignore it, and a count of
/// what happened to every job.
///
/// * Jobs go in with [`submit`](Self::submit) (waits for room) or
///   [`try_submit`](Self::try_submit) (hands the job back when full or
///   closed). A job is never dropped silently: it runs, is handed back, or
///   is counted in the [`ShutdownReport`].
/// * Each job runs as `handler(job, shutdown)`, where `shutdown` is the
///   pool's jobs [`Shutdown`] (a child of the one given to
///   [`Builder::shutdown`], if any), cancelled when the grace period runs
///   out. A panicking job is caught and counted; its worker goes on.
/// * [`shutdown(grace)`](Self::shutdown) stops accepting jobs, lets the
///   queued and running ones finish within `grace`, then drops what is
///   still queued and cancels the running ones, waits the
///   [cancel period](Builder::cancel_period), and aborts what remains.
///
/// Where the release and acquire are: a submit hands its job to a worker
/// under the queue's lock (unlock releases, lock acquires); the stage is a
/// [`StageGate`](acqrel_core::StageGate) (Release on each advance, Acquire
/// on each read), and the report is stored before `Stopped` is entered.
///
/// # Dropping the pool
///
/// Dropping a pool that was never shut down **aborts everything**: the
/// queue closes, queued jobs are dropped, the jobs' `Shutdown` is
/// cancelled with [`POOL_DROPPED`], and every worker task is aborted
/// (each running job's future is dropped at its next await, or at once if
/// it is not being polled; a blocking job's thread runs its call to the
/// end). A panic in a dropped job's `Drop` is caught and ignored. Dropped during a
/// [`shutdown`](Self::shutdown), the pool lets that shutdown finish in the
/// background (it is bounded by its grace and cancel periods).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use acqrel_pool::{EndedBy, WorkerPool};
///
/// let sum = Arc::new(AtomicU64::new(0));
/// let pool = WorkerPool::builder().start({
///     let sum = Arc::clone(&sum);
///     move |n: u64, _shutdown| {
///         let sum = Arc::clone(&sum);
///         async move {
///             sum.fetch_add(n, Ordering::Relaxed);
///         }
///     }
/// });
/// for n in 1..=100 {
///     pool.submit(n).await.unwrap();
/// }
/// let report = pool.shutdown(Duration::from_secs(10)).await;
/// assert_eq!(report.completed, 100);
/// assert_eq!(report.ended_by, EndedBy::Drain);
/// assert_eq!(sum.load(Ordering::Relaxed), 5050);
/// # }
/// ```
pub struct WorkerPool<J> {
    shared: Arc<Shared<J>>,
    /// The worker tasks, until a shutdown takes them (or the drop aborts
    /// them).
    workers: Mutex<Option<JoinSet<()>>>,
    cancel_period: Duration,
    /// The runtime the workers run on; the shutdown's task runs there too.
    runtime: tokio::runtime::Handle,
}

/// What the workers share with the pool.
struct Shared<J> {
    queue: JobQueue<J>,
    lifecycle: Lifecycle,
    /// Cancelled when the grace period runs out; each worker hands its jobs
    /// a child of it (`work`).
    jobs: Shutdown,
    /// One per worker, written by that worker only.
    slots: Box<[CachePadded<Slot>]>,
}

/// A worker's counts (see the module's `# Orderings`).
#[derive(Default)]
struct Slot {
    /// Set while the worker runs a job.
    busy: AtomicBool,
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled_while_running: AtomicU64,
    /// Blocking jobs whose call the runtime cancelled before it started.
    not_started: AtomicU64,
}

/// Live counts of a [`WorkerPool`], from [`WorkerPool::stats`].
///
/// Read while workers run, so the fields are not one snapshot: each is
/// exact on its own at some moment during the call.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use acqrel_pool::WorkerPool;
///
/// let pool = WorkerPool::builder().start(|_job: (), _shutdown| async {});
/// pool.try_submit(()).unwrap();
/// // One thread, no await yet: the job is still queued.
/// assert_eq!(pool.stats().queued, 1);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Jobs waiting in the queue.
    pub queued: usize,
    /// Workers running a job.
    pub running: usize,
    /// Jobs that returned with their `Shutdown` not yet cancelled (see
    /// [`ShutdownReport::completed`]).
    pub completed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs that returned with their cancellation delivered (see
    /// [`ShutdownReport::cancelled_while_running`]).
    pub cancelled_while_running: u64,
}

/// Configures and starts a [`WorkerPool`]; from [`WorkerPool::builder`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// use acqrel_pool::{Shutdown, WorkerPool};
///
/// let root = Shutdown::new();
/// let pool = WorkerPool::builder()
///     .workers(NonZeroUsize::new(4).unwrap())
///     .queue_capacity(NonZeroUsize::new(16).unwrap())
///     .cancel_period(Duration::from_millis(200))
///     .shutdown(&root)
///     .start(|job: String, shutdown: Shutdown| async move {
///         tokio::select! {
///             () = shutdown.cancelled() => {}
///             () = async { drop(job) } => {}
///         }
///     });
/// assert_eq!(pool.workers(), 4);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    workers: NonZeroUsize,
    capacity: NonZeroUsize,
    cancel_period: Duration,
    parent: Option<Shutdown>,
}

// ===== impl Builder =====

impl Builder {
    fn new() -> Self {
        Builder {
            workers: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            capacity: NonZeroUsize::new(DEFAULT_CAPACITY).unwrap_or(NonZeroUsize::MIN),
            cancel_period: DEFAULT_CANCEL_PERIOD,
            parent: None,
        }
    }

    /// How many worker tasks run jobs (at most this many jobs at once).
    /// Defaults to [`std::thread::available_parallelism`].
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn workers(mut self, workers: NonZeroUsize) -> Self {
        self.workers = workers;
        self
    }

    /// How many jobs wait in the queue at most; a submit beyond waits
    /// ([`submit`](WorkerPool::submit)) or is refused
    /// ([`try_submit`](WorkerPool::try_submit)). Defaults to 1,024.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn queue_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How long jobs cancelled at the end of the grace period get to
    /// return before they are aborted. Defaults to one second.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn cancel_period(mut self, period: Duration) -> Self {
        self.cancel_period = period;
        self
    }

    /// Makes the jobs' [`Shutdown`] a child of `parent`: cancelling
    /// `parent` (say, on Ctrl-C) cancels every job too. The pool itself
    /// keeps running until [`shutdown`](WorkerPool::shutdown) or drop.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn shutdown(mut self, parent: &Shutdown) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    /// Starts the workers; each job runs as `handler(job, shutdown).await`
    /// on one of them.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime, or in one without timers
    /// (the grace and cancel periods need them: `enable_time`, or
    /// `enable_all`).
    ///
    /// # Examples
    ///
    /// See [`WorkerPool`].
    pub fn start<J, F, Fut>(self, handler: F) -> WorkerPool<J>
    where
        J: Send + 'static,
        F: Fn(J, Shutdown) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(Arc::new(Async(handler)))
    }

    /// Starts the workers for blocking jobs: each job runs as
    /// `handler(job, shutdown)` on tokio's blocking threads
    /// (`spawn_blocking`), its worker task waiting for it. At most
    /// [`workers`](Self::workers) of them run at once.
    ///
    /// An abort cannot stop a thread: a blocking job still running after
    /// the cancel period is counted as aborted and abandoned; it runs to
    /// its end on its thread. Blocking jobs should check
    /// [`Shutdown::is_cancelled`].
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime, or in one without timers
    /// (as [`start`](Self::start)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use acqrel_pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().start_blocking(|path: String, _shutdown| {
    ///     let _ = std::fs::metadata(path); // blocking I/O is fine here
    /// });
    /// pool.submit("/".to_owned()).await.unwrap();
    /// assert_eq!(pool.shutdown(Duration::from_secs(10)).await.completed, 1);
    /// # }
    /// ```
    pub fn start_blocking<J, F>(self, handler: F) -> WorkerPool<J>
    where
        J: Send + 'static,
        F: Fn(J, Shutdown) + Send + Sync + 'static,
    {
        self.spawn(Arc::new(Blocking(Arc::new(handler))))
    }

    fn spawn<J, R>(self, runner: Arc<R>) -> WorkerPool<J>
    where
        J: Send + 'static,
        R: Run<J>,
    {
        let jobs = match &self.parent {
            Some(parent) => parent.child(),
            None => Shutdown::new(),
        };
        let shared = Arc::new(Shared {
            queue: JobQueue::new(self.capacity.get()),
            lifecycle: Lifecycle::new(),
            jobs,
            slots: (0..self.workers.get())
                .map(|_| CachePadded::new(Slot::default()))
                .collect(),
        });
        // Both panic here, at the call, with tokio's own message, rather
        // than in the shutdown's task later (where nobody would see it and
        // every `shutdown` caller would wait forever): no runtime, or a
        // runtime without timers, which the grace and cancel periods need.
        let runtime = tokio::runtime::Handle::current();
        drop(tokio::time::sleep(Duration::ZERO));
        let mut workers = JoinSet::new();
        for index in 0..self.workers.get() {
            workers.spawn(work(Arc::clone(&shared), Arc::clone(&runner), index));
        }
        shared.lifecycle.started();
        WorkerPool {
            shared,
            workers: Mutex::new(Some(workers)),
            cancel_period: self.cancel_period,
            runtime,
        }
    }
}

// ===== impl WorkerPool =====

impl WorkerPool<()> {
    /// A [`Builder`] with the defaults. (Defined on `WorkerPool<()>` only so
    /// that `WorkerPool::builder()` needs no type annotation; the job type
    /// comes from the handler given to [`Builder::start`].)
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<J: Send + 'static> WorkerPool<J> {
    /// Queues `job`, waiting for room; hands it back if the pool is closed
    /// (shutting down or stopped).
    ///
    /// # Errors
    ///
    /// [`SubmitError`] with the job when the pool is closed.
    ///
    /// # Cancel safety
    ///
    /// The job is queued only if this returns `Ok`. Dropped while waiting
    /// for room, the future drops the job with it.
    ///
    /// # Examples
    ///
    /// See [`WorkerPool`].
    pub async fn submit(&self, job: J) -> Result<(), SubmitError<J>> {
        self.shared.queue.submit(job).await
    }

    /// Queues `job` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] or [`TrySubmitError::Closed`], with the job.
    ///
    /// # Examples
    ///
    /// See [`TrySubmitError`].
    pub fn try_submit(&self, job: J) -> Result<(), TrySubmitError<J>> {
        self.shared.queue.try_submit(job)
    }

    /// Shuts the pool down and returns what happened to every job:
    ///
    /// 1. The pool stops accepting jobs (submits get theirs back) and
    ///    enters [`PoolStage::Draining`].
    /// 2. The workers go on with the queued jobs and finish the running
    ///    ones, for up to `grace`.
    /// 3. If any job is left, the queued ones are dropped unstarted
    ///    (counted in [`cancelled_before_start`](ShutdownReport::cancelled_before_start);
    ///    they are not handed back, because the report goes to every caller
    ///    of this method) and the running ones are cancelled through their
    ///    [`Shutdown`], with the cause [`GRACE_OVER`]. They get the
    ///    [cancel period](Builder::cancel_period) to return.
    /// 4. What still runs then is aborted.
    ///
    /// Then the pool is [`PoolStage::Stopped`] and no task of it is left.
    ///
    /// Calling it again, or concurrently, is safe: the first call's `grace`
    /// applies, and every call returns the same report.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the shutdown runs in a task of its own, and goes on to
    /// the end if this future is dropped; a later call returns its report.
    ///
    /// # Examples
    ///
    /// See [`WorkerPool`] and [`ShutdownReport`].
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        if self.shared.lifecycle.begin() {
            // Closed here, before this call first returns `Pending`: once the
            // stage reads `Draining`, no submit is accepted. The grace period
            // counts from here too.
            self.shared.queue.close();
            let grace_ends = tokio::time::Instant::now() + grace;
            let workers = sync::lock(&self.workers).take().unwrap_or_default();
            // Detached on purpose (see `# Cancel safety`); it ends within
            // `grace` plus the cancel period.
            drop(self.runtime.spawn(reap(
                Arc::clone(&self.shared),
                workers,
                grace_ends,
                self.cancel_period,
            )));
        }
        self.shared.lifecycle.report().await
    }

    /// The stage now.
    ///
    /// # Examples
    ///
    /// See [`PoolStage`].
    pub fn stage(&self) -> PoolStage {
        self.shared.lifecycle.stage()
    }

    /// Completes once the pool is at `stage` or past it; returns the stage
    /// seen.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use acqrel_pool::{PoolStage, WorkerPool};
    ///
    /// let pool = Arc::new(WorkerPool::builder().start(|_job: (), _s| async {}));
    /// let watcher = tokio::spawn({
    ///     let pool = Arc::clone(&pool);
    ///     async move { pool.reached(PoolStage::Draining).await }
    /// });
    /// pool.shutdown(Duration::from_secs(1)).await;
    /// // Draining or, if the watcher ran late, Stopped: never missed.
    /// assert!(watcher.await.unwrap() >= PoolStage::Draining);
    /// # }
    /// ```
    pub async fn reached(&self, stage: PoolStage) -> PoolStage {
        self.shared.lifecycle.reached(stage).await
    }

    /// The jobs' [`Shutdown`]: cancelled when the grace period runs out,
    /// when the pool is dropped, or when the builder's parent is
    /// cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use acqrel_pool::{WorkerPool, POOL_DROPPED};
    ///
    /// let pool = WorkerPool::builder().start(|_job: (), _s| async {});
    /// let jobs = pool.jobs_shutdown();
    /// drop(pool);
    /// assert_eq!(jobs.cause().unwrap().to_string(), POOL_DROPPED);
    /// # }
    /// ```
    pub fn jobs_shutdown(&self) -> Shutdown {
        self.shared.jobs.clone()
    }

    /// How many workers the pool has.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn workers(&self) -> usize {
        self.shared.slots.len()
    }

    /// Live counts (see [`PoolStats`]).
    ///
    /// # Examples
    ///
    /// See [`PoolStats`].
    pub fn stats(&self) -> PoolStats {
        let shared = &self.shared;
        PoolStats {
            queued: shared.queue.len(),
            running: shared.running(),
            completed: shared.sum(|slot| &slot.completed),
            panicked: shared.sum(|slot| &slot.panicked),
            cancelled_while_running: shared.sum(|slot| &slot.cancelled_while_running),
        }
    }
}

impl<J> Drop for WorkerPool<J> {
    fn drop(&mut self) {
        // `None` when a shutdown has taken the workers: it goes on.
        let Some(workers) = sync::lock(&self.workers).take() else {
            return;
        };
        self.shared.queue.close();
        self.shared.jobs.cancel(POOL_DROPPED);
        // Aborts every worker task.
        drop(workers);
        drop_unstarted(&self.shared.queue);
    }
}

impl<J> fmt::Debug for WorkerPool<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("stage", &self.shared.lifecycle.stage())
            .field("workers", &self.shared.slots.len())
            .field("queue", &self.shared.queue)
            .field("cancel_period", &self.cancel_period)
            .finish_non_exhaustive()
    }
}

// ===== impl Shared =====

impl<J> Shared<J> {
    /// Workers whose `busy` flag is set.
    fn running(&self) -> usize {
        self.slots
            .iter()
            // Relaxed: see the module's `# Orderings`.
            .filter(|slot| slot.busy.load(Ordering::Relaxed))
            .count()
    }

    /// The report, once every worker task has ended.
    fn report(&self, ended_by: EndedBy, unstarted: u64) -> ShutdownReport {
        ShutdownReport {
            completed: self.sum(|slot| &slot.completed),
            panicked: self.sum(|slot| &slot.panicked),
            cancelled_before_start: unstarted + self.sum(|slot| &slot.not_started),
            cancelled_while_running: self.sum(|slot| &slot.cancelled_while_running),
            aborted: self.running() as u64,
            ended_by,
        }
    }

    /// One counter summed over the workers.
    fn sum(&self, counter: impl Fn(&Slot) -> &AtomicU64) -> u64 {
        self.slots
            .iter()
            // Relaxed: see the module's `# Orderings`.
            .map(|slot| counter(slot).load(Ordering::Relaxed))
            .sum()
    }
}

/// How one job ended, for its worker's counts.
enum Ran {
    /// `cancelled`: whether the job returned with its cancellation already
    /// delivered to it (see [`ShutdownReport::cancelled_while_running`]).
    Returned { cancelled: bool },
    /// In its call, a poll, or the drop of its future.
    Panicked,
    /// A blocking job whose call the runtime cancelled before it started
    /// (the runtime is shutting down).
    NotStarted,
}

/// How a worker runs one job.
trait Run<J>: Send + Sync + 'static {
    fn run(&self, job: J, shutdown: &Shutdown) -> impl Future<Output = Ran> + Send;
}

/// [`Builder::start`]'s handler.
struct Async<F>(F);

impl<J, F, Fut> Run<J> for Async<F>
where
    J: Send + 'static,
    F: Fn(J, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    async fn run(&self, job: J, shutdown: &Shutdown) -> Ran {
        let mut call = std::pin::pin!(catch_unwind(|| (self.0)(job, shutdown.clone())));
        // Read before each poll, so after the last one it says whether the
        // cancel was delivered before the poll in which the job returned:
        // read after it, a cancel landing between the job's return and the
        // read (even one made by the job's own drop) counted a job that
        // never saw it as cancelled.
        let mut cancelled = false;
        let outcome = std::future::poll_fn(|cx| {
            cancelled = shutdown.is_cancelled();
            call.as_mut().poll(cx)
        })
        .await;
        match outcome {
            Ok(()) => Ran::Returned { cancelled },
            Err(_panic) => Ran::Panicked,
        }
    }
}

/// [`Builder::start_blocking`]'s handler, shared with the blocking threads.
struct Blocking<F>(Arc<F>);

impl<J, F> Run<J> for Blocking<F>
where
    J: Send + 'static,
    F: Fn(J, Shutdown) + Send + Sync + 'static,
{
    async fn run(&self, job: J, shutdown: &Shutdown) -> Ran {
        let handler = Arc::clone(&self.0);
        let shutdown = shutdown.clone();
        let call = move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handler(job, shutdown.clone())
            }));
            // On the job's own thread, as soon as its call returns: a
            // blocking job is one step, so this is the nearest look at what
            // it could have seen (not after the worker task is scheduled
            // again, which let a cancel made after the return count).
            outcome.map(|()| shutdown.is_cancelled())
        };
        match tokio::task::spawn_blocking(call).await {
            Ok(Ok(cancelled)) => Ran::Returned { cancelled },
            Ok(Err(_panic)) => Ran::Panicked,
            // The runtime is shutting down and cancelled the call before it
            // started; the runtime's end is ending this worker too.
            Err(_cancelled) => Ran::NotStarted,
        }
    }
}

/// One worker: takes jobs until the queue is closed and drained.
async fn work<J, R: Run<J>>(shared: Arc<Shared<J>>, runner: Arc<R>, index: usize) {
    let slot = &shared.slots[index];
    // This worker's own child of the jobs' `Shutdown`: the clone handed to
    // each job then touches this worker's node, not one node shared by
    // every worker (cancelling the parent cancels it all the same).
    let shutdown = shared.jobs.child();
    while let Some(job) = shared.queue.next().await {
        // Relaxed: see the module's `# Orderings`.
        slot.busy.store(true, Ordering::Relaxed);
        let returned = runner.run(job, &shutdown).await;
        let counter = match returned {
            Ran::Returned { cancelled: true } => &slot.cancelled_while_running,
            Ran::Returned { cancelled: false } => &slot.completed,
            Ran::Panicked => &slot.panicked,
            Ran::NotStarted => &slot.not_started,
        };
        // One writer (this worker): a load and a store, no read-modify-write.
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        slot.busy.store(false, Ordering::Relaxed);
    }
}

/// The shutdown's leader task: steps 2 to 4 of [`WorkerPool::shutdown`],
/// then the report. The queue is closed already.
async fn reap<J>(
    shared: Arc<Shared<J>>,
    mut workers: JoinSet<()>,
    grace_ends: tokio::time::Instant,
    cancel_period: Duration,
) {
    let mut unstarted = 0;
    let ended_by = if tokio::time::timeout_at(grace_ends, join_all(&mut workers))
        .await
        .is_ok()
    {
        EndedBy::Drain
    } else {
        // Taken out before the cancel, so that no worker starts one of them
        // with a cancelled `Shutdown`.
        unstarted += drop_unstarted(&shared.queue);
        shared.jobs.cancel(GRACE_OVER);
        if tokio::time::timeout(cancel_period, join_all(&mut workers))
            .await
            .is_ok()
        {
            EndedBy::Cancel
        } else {
            workers.abort_all();
            join_all(&mut workers).await;
            EndedBy::Abort
        }
    };
    // Every worker task has ended: the counts are final (see the module's
    // `# Orderings`), and a `busy` flag still set is a job that was aborted.
    // Anything still queued now (only if the workers ended early, which
    // only the runtime's own shutdown does) never started either.
    unstarted += drop_unstarted(&shared.queue);
    shared.lifecycle.finish(shared.report(ended_by, unstarted));
}

/// Takes the queued jobs out and drops them, catching a panic in a job's
/// `Drop` (a shutdown must reach its report); returns how many there were.
fn drop_unstarted<J>(queue: &JobQueue<J>) -> u64 {
    let queued = queue.take_queued();
    let count = queued.len() as u64;
    // Ignored: the job is gone either way, and counted.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(queued)));
    count
}

/// Waits for every task of `workers` to end.
async fn join_all(workers: &mut JoinSet<()>) {
    while workers.join_next().await.is_some() {}
}
