//! [`TaskGroup`]: Go's `errgroup` for tokio — spawn, an optional
//! concurrency limit, the first failure cancels the rest, and `wait`
//! returns every failure.
//!
//! # Protocol
//!
//! No lock-free logic of its own: one lock (`Shared::state`) and tokio's
//! `Notify` and `Semaphore`, so there is no loom model (tokio's primitives
//! are loom-checked in tokio).
//!
//! * **The lock** guards the registry of running tasks (`group/registry.rs`,
//!   whose `# Protocol` covers a task that ends before its spawner stored
//!   its handle), the collected errors and panics, and the `failed` flag.
//! * **A task's end** pushes its error or panic, then frees its entry:
//!   two critical sections in that order (the push in the task's last
//!   poll, the entry in its exit guard, dropped after the future). So when
//!   a [`wait`](TaskGroup::wait) finds no running task under the lock, the
//!   failures of every task are in the lists it takes in that same
//!   critical section (the lock's unlock/lock is the release/acquire).
//! * **The first failure** is decided under the lock (`failed` goes from
//!   `false` to `true` once); that task then cancels the group's
//!   [`Shutdown`] after unlocking. So the cause and the first entry of the
//!   lists are the same failure.
//! * **No lost wake-up in `wait`**: it enables its `Notified` *before* it
//!   looks at the count; the exit guard that brings the count to zero calls
//!   `notify_waiters` after unlocking, which wakes every enabled waiter.
//! * **The limit** is a `Semaphore`; a task's permit moves into the task
//!   and is released by the exit guard after the entry is freed, so the
//!   number of running tasks never exceeds the limit.
//! * **Nothing runs under the lock**: spawning, aborting, waking, dropping
//!   handles, errors and futures all happen after unlocking.

mod error;
mod registry;

pub use self::error::{GroupError, TrySpawnError};

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::mem;
use std::num::NonZeroUsize;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use self::registry::Registry;
use crate::catch_unwind::{CatchUnwind, catch_unwind, message};
use crate::shutdown::{Cause, Shutdown};
use crate::sync::{self, Arc, Mutex};

/// The cause the group's [`Shutdown`] is cancelled with when a
/// [`TaskGroup`] is dropped.
pub const GROUP_DROPPED: &str = "task group dropped";

/// Go's `errgroup.Group` (with `WithContext`, `SetLimit` and `TryGo`) for
/// tokio: a set of tasks that fail together.
///
/// * [`spawn`](Self::spawn) runs a future returning `Result<(), E>` as a
///   tokio task (Go's `g.Go`); with a [`limit`](Self::limit), it first
///   waits for a slot, and [`try_spawn`](Self::try_spawn) refuses instead
///   (Go's `TryGo`), handing the future back.
/// * The first task that returns an error **cancels the group's
///   [`Shutdown`]** ([`shutdown`](Self::shutdown)) with that error as the
///   [`Cause`] ([`Cause::downcast_ref`] returns it); siblings that watch the
///   `Shutdown` stop. A panicking task is caught, cancels the group the
///   same way (a message cause, `a task of the group panicked: <message>`)
///   and is reported.
/// * [`wait`](Self::wait) completes once no task is running, then returns
///   **every** error and panic collected ([`GroupError`]), not only the
///   first, and clears them.
/// * **Finished tasks are not kept**: a task's entry goes as it ends, so
///   memory follows the tasks running now ([`len`](Self::len)), however
///   many ran (tokio's `JoinSet` keeps each result until it is joined).
///
/// Where the release and acquire are: a task's failure is pushed, and its
/// entry freed, under the group's lock (unlock releases); `wait` acquires
/// that lock when it finds no task running and takes the failures. The
/// cancellation is [`Shutdown::cancel`]'s release, acquired by
/// [`Shutdown::cancelled`].
///
/// Unlike Go's, the `Shutdown` is not cancelled when `wait` returns (a group
/// can be waited on, and spawned into, again), but it stays cancelled once
/// a task failed: tasks spawned afterwards see it cancelled. It is
/// cancelled when the group is dropped.
///
/// # Dropping the group
///
/// Dropping the group **aborts its running tasks** and cancels its
/// `Shutdown` with [`GROUP_DROPPED`]: each task's future is dropped when
/// the runtime next handles the task (at once for a task that is not being
/// polled). No task of the group outlives it by more than that. Failures
/// not yet taken by `wait` are dropped.
///
/// # Examples
///
/// ```
/// use acqrel_pool::TaskGroup;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
///
/// let group = TaskGroup::new();
/// for _ in 0..3 {
///     // Siblings that run until the group is cancelled.
///     let shutdown = group.shutdown();
///     group
///         .spawn(async move {
///             shutdown.cancelled().await;
///             Ok(())
///         })
///         .await;
/// }
/// group.spawn(async { Err(std::io::Error::other("backend gone")) }).await;
///
/// let failed = group.wait().await.unwrap_err();
/// assert_eq!(failed.first().unwrap().to_string(), "backend gone");
/// let cause = group.shutdown().cause().unwrap();
/// assert!(cause.downcast_ref::<std::io::Error>().is_some());
/// assert!(group.is_empty());
/// # });
/// ```
pub struct TaskGroup<E> {
    shared: Arc<Shared<E>>,
    /// The group's token; each task's exit guard holds a clone, to cancel
    /// it on the first failure.
    shutdown: Shutdown,
    limit: Option<Limit>,
}

/// [`TaskGroup::limit`]'s slots.
struct Limit {
    max: usize,
    /// std's `Arc`, not the loom shim's: tokio's owned permits need it.
    slots: std::sync::Arc<Semaphore>,
}

/// What the tasks share with the group.
struct Shared<E> {
    state: Mutex<State<E>>,
    /// Notified (`notify_waiters`) when the last running task ends.
    idle: Notify,
}

struct State<E> {
    tasks: Registry<AbortHandle>,
    /// std's `Arc`: the same errors are the group's causes (see
    /// [`GroupError`]).
    errors: Vec<std::sync::Arc<E>>,
    panics: Vec<String>,
    /// Whether a task failed since the group was made (never reset: the
    /// `Shutdown` it cancelled stays cancelled).
    failed: bool,
}

// ===== impl TaskGroup =====

impl<E> TaskGroup<E>
where
    E: Error + Send + Sync + 'static,
{
    /// A group without a limit, whose [`Shutdown`] is a new root.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = acqrel_pool::TaskGroup::<std::io::Error>::new();
    /// assert!(group.is_empty());
    /// assert!(!group.shutdown().is_cancelled());
    /// ```
    pub fn new() -> TaskGroup<E> {
        TaskGroup {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    tasks: Registry::new(),
                    errors: Vec::new(),
                    panics: Vec::new(),
                    failed: false,
                }),
                idle: Notify::new(),
            }),
            shutdown: Shutdown::new(),
            limit: None,
        }
    }

    /// At most `limit` tasks of the group run at once (Go's `SetLimit`):
    /// [`spawn`](Self::spawn) waits for a slot, [`try_spawn`](Self::try_spawn)
    /// refuses. A limit above tokio's `Semaphore::MAX_PERMITS` (`usize::MAX
    /// >> 3`) is that many.
    ///
    /// Meant for building the group: tasks spawned before it are not
    /// counted against it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use acqrel_pool::TaskGroup;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    ///
    /// let group = TaskGroup::<std::io::Error>::new().limit(NonZeroUsize::new(2).unwrap());
    /// for _ in 0..10 {
    ///     // Waits while two tasks run.
    ///     group.spawn(async { Ok(()) }).await;
    ///     assert!(group.len() <= 2);
    /// }
    /// group.wait().await.unwrap();
    /// # });
    /// ```
    pub fn limit(mut self, limit: NonZeroUsize) -> TaskGroup<E> {
        let max = limit.get().min(Semaphore::MAX_PERMITS);
        self.limit = Some(Limit {
            max,
            slots: std::sync::Arc::new(Semaphore::new(max)),
        });
        self
    }

    /// Makes the group's [`Shutdown`] a child of `parent` (Go's
    /// `errgroup.WithContext(ctx)`): cancelling `parent` cancels the group's
    /// tasks' token too, with `parent`'s cause; the group's own
    /// cancellation does not reach `parent`.
    ///
    /// Meant for building the group: tasks spawned before it keep the
    /// token they were given.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::{Shutdown, TaskGroup};
    ///
    /// let server = Shutdown::new();
    /// let group = TaskGroup::<std::io::Error>::new().parent(&server);
    /// server.cancel("SIGTERM");
    /// assert_eq!(group.shutdown().cause().unwrap().to_string(), "SIGTERM");
    /// ```
    pub fn parent(mut self, parent: &Shutdown) -> TaskGroup<E> {
        self.shutdown = parent.child();
        self
    }

    /// The group's token: cancelled by the first failure, by the
    /// [`parent`](Self::parent), or by dropping the group. Tasks clone it
    /// to stop cooperatively.
    ///
    /// # Examples
    ///
    /// See [`TaskGroup`].
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Spawns `future` as a tokio task of the group (Go's `g.Go`); with a
    /// [limit](Self::limit), first waits until fewer than the limit run.
    ///
    /// The task is spawned even if the group's `Shutdown` is already
    /// cancelled (as Go's `g.Go` runs its function): the future sees the
    /// cancellation through its token.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while it waits for a slot, it drops `future`
    /// without spawning it, and takes no slot.
    ///
    /// # Examples
    ///
    /// See [`TaskGroup`] and [`limit`](Self::limit).
    pub async fn spawn<F>(&self, future: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let permit = match &self.limit {
            None => None,
            Some(limit) => Some(
                std::sync::Arc::clone(&limit.slots)
                    .acquire_owned()
                    .await
                    .expect("a group never closes its semaphore"),
            ),
        };
        self.start(future, permit);
    }

    /// Spawns `future` if a slot is free now (Go's `TryGo`); always, for a
    /// group without a [limit](Self::limit).
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`], with `future`, when the limit is reached.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    ///
    /// # Examples
    ///
    /// See [`TrySpawnError`].
    pub fn try_spawn<F>(&self, future: F) -> Result<(), TrySpawnError<F>>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let permit = match &self.limit {
            None => None,
            Some(limit) => match std::sync::Arc::clone(&limit.slots).try_acquire_owned() {
                Ok(permit) => Some(permit),
                // `NoPermits`; never `Closed` (see `spawn`).
                Err(_) => return Err(TrySpawnError::Full(future)),
            },
        };
        self.start(future, permit);
        Ok(())
    }

    /// Spawns the task of `future`, holding `permit` until it ends.
    fn start<F>(&self, future: F, permit: Option<OwnedSemaphorePermit>)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        // Outside a runtime this panics here, before anything is reserved.
        let runtime = tokio::runtime::Handle::current();
        let id = sync::lock(&self.shared.state).tasks.reserve();
        let task = Task {
            future: catch_unwind(|| future),
            exit: Exit {
                shared: Arc::clone(&self.shared),
                shutdown: self.shutdown.clone(),
                id,
                _permit: permit,
            },
        };
        // Not under the lock: the task may end before `spawn` returns, and
        // its exit guard takes the lock (see `registry.rs`).
        let handle = runtime.spawn(task).abort_handle();
        let late = sync::lock(&self.shared.state).tasks.store(id, handle);
        drop(late);
    }

    /// Completes once no task of the group is running (tasks spawned while
    /// it waits included), then returns every failure collected since the
    /// last `wait`, and forgets them: `Ok(())` if there was none.
    ///
    /// Concurrent waits all complete; the failures go to the first one to
    /// return.
    ///
    /// # Errors
    ///
    /// A [`GroupError`] with every error (in completion order) and every
    /// panic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the failures are taken only in the poll that returns
    /// them; dropped before, they stay for the next `wait`.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::TaskGroup;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    ///
    /// let group = TaskGroup::new();
    /// group.spawn(async { Err(std::fmt::Error) }).await;
    /// assert_eq!(group.wait().await.unwrap_err().errors.len(), 1);
    /// // Taken by the first `wait`:
    /// assert!(group.wait().await.is_ok());
    /// # });
    /// ```
    pub async fn wait(&self) -> Result<(), GroupError<E>> {
        loop {
            let mut idle = pin!(self.shared.idle.notified());
            // Before looking at the count: see the module's `# Protocol`.
            idle.as_mut().enable();
            if let Some(collected) = self.take_if_idle() {
                return collected;
            }
            idle.await;
        }
    }

    /// [`wait`](Self::wait)'s result, if no task is running.
    fn take_if_idle(&self) -> Option<Result<(), GroupError<E>>> {
        let mut state = sync::lock(&self.shared.state);
        if state.tasks.running() != 0 {
            return None;
        }
        let errors = mem::take(&mut state.errors);
        let panics = mem::take(&mut state.panics);
        drop(state);
        if errors.is_empty() && panics.is_empty() {
            return Some(Ok(()));
        }
        Some(Err(GroupError { errors, panics }))
    }

    /// How many tasks of the group are running: spawned and not yet ended.
    /// This is also how many entries the group keeps.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::TaskGroup;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    ///
    /// let group = TaskGroup::<std::io::Error>::new();
    /// group.spawn(async { Ok(()) }).await;
    /// assert_eq!(group.len(), 1); // one thread: it has not run yet
    /// group.wait().await.unwrap();
    /// assert_eq!(group.len(), 0);
    /// # });
    /// ```
    pub fn len(&self) -> usize {
        sync::lock(&self.shared.state).tasks.running()
    }

    /// Whether no task of the group is running.
    ///
    /// # Examples
    ///
    /// See [`TaskGroup`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<E> Default for TaskGroup<E>
where
    E: Error + Send + Sync + 'static,
{
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl<E> Drop for TaskGroup<E> {
    fn drop(&mut self) {
        self.shutdown.cancel(GROUP_DROPPED);
        let running = sync::lock(&self.shared.state).tasks.take_all();
        for task in running {
            task.abort();
        }
    }
}

impl<E> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (running, errors, panics) = {
            let state = sync::lock(&self.shared.state);
            (
                state.tasks.running(),
                state.errors.len(),
                state.panics.len(),
            )
        };
        f.debug_struct("TaskGroup")
            .field("running", &running)
            .field("limit", &self.limit.as_ref().map(|limit| limit.max))
            .field("errors", &errors)
            .field("panics", &panics)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

// ===== Task =====

pin_project_lite::pin_project! {
    /// A spawned task: the user's future, then its exit guard. Fields drop
    /// in declaration order, so the future is gone before the guard frees
    /// the entry and the slot, whether the task ended or was aborted.
    struct Task<F, E> {
        #[pin]
        future: CatchUnwind<F>,
        exit: Exit<E>,
    }
}

impl<F, E> Future for Task<F, E>
where
    F: Future<Output = Result<(), E>>,
    E: Error + Send + Sync + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        match ready!(this.future.poll(cx)) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => this.exit.failed(Failure::Error(std::sync::Arc::new(error))),
            Err(payload) => this.exit.failed(Failure::Panic(message(&*payload))),
        }
        Poll::Ready(())
    }
}

enum Failure<E> {
    Error(std::sync::Arc<E>),
    Panic(String),
}

/// Frees a task's entry and slot when the task is dropped: ended or
/// aborted.
struct Exit<E> {
    shared: Arc<Shared<E>>,
    shutdown: Shutdown,
    id: u64,
    /// Released after `drop` below, waking a `spawn` waiting for a slot.
    _permit: Option<OwnedSemaphorePermit>,
}

impl<E: Error + Send + Sync + 'static> Exit<E> {
    /// Records a failure; the first one cancels the group.
    fn failed(&self, failure: Failure<E>) {
        let first = {
            let mut state = sync::lock(&self.shared.state);
            match &failure {
                Failure::Error(error) => state.errors.push(std::sync::Arc::clone(error)),
                Failure::Panic(message) => state.panics.push(message.clone()),
            }
            !mem::replace(&mut state.failed, true)
        };
        if first {
            let cause = match failure {
                Failure::Error(error) => Cause::shared_error(error),
                Failure::Panic(message) => {
                    Cause::from(format!("a task of the group panicked: {message}"))
                }
            };
            self.shutdown.cancel(cause);
        }
    }
}

impl<E> Drop for Exit<E> {
    fn drop(&mut self) {
        let mut state = sync::lock(&self.shared.state);
        let handle = state.tasks.exit(self.id);
        let idle = state.tasks.running() == 0;
        drop(state);
        drop(handle);
        if idle {
            self.shared.idle.notify_waiters();
        }
    }
}
