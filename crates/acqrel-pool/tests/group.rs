//! `TaskGroup`: the first failure cancels the siblings, every failure comes
//! back from `wait`, the limit, `try_spawn`, cancel safety, panics, the
//! parent, drop, and that finished tasks leave nothing behind. Timing runs
//! on tokio's paused clock: virtual time advances only when every task
//! waits, so the sleeps below order the tasks exactly and cost no real
//! time. Every `wait` runs under a hang guard, which the paused clock
//! reaches at once if the group never empties.

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;

use std::future::{Future, poll_fn};
use std::num::NonZeroUsize;
use std::pin::{Pin, pin};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::Duration;

use acqrel_pool::{
    Cause, CauseKind, GROUP_DROPPED, GroupError, Shutdown, TaskGroup, TrySpawnError,
};
use common::{HANG_GUARD, scaled};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// A task's error: which task failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("task {0} failed")]
struct Failed(u64);

type Group = TaskGroup<Failed>;

fn limited(limit: usize) -> Group {
    TaskGroup::new().limit(NonZeroUsize::new(limit).expect("limit > 0"))
}

/// `group.wait()`, failing the test instead of hanging.
async fn wait(group: &Group) -> Result<(), GroupError<Failed>> {
    tokio::time::timeout(HANG_GUARD, group.wait())
        .await
        .expect("the group's tasks all end")
}

/// The failures `wait` returned: the errors' task numbers and the panics.
async fn failures(group: &Group) -> (Vec<u64>, Vec<String>) {
    let failed = wait(group).await.expect_err("some task failed");
    let errors = failed.errors.iter().map(|error| error.0).collect();
    (errors, failed.panics)
}

/// Polls `future` once.
async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Yields until the runtime's live tasks are back to `baseline` (aborted
/// tasks are dropped when the runtime next handles them; a finished task
/// is released just after its future is dropped).
async fn settle(baseline: usize) {
    let start = std::time::Instant::now();
    while alive_tasks() != baseline {
        assert!(start.elapsed() < HANG_GUARD, "tasks still alive");
        tokio::task::yield_now().await;
    }
}

/// Counts values alive: one per [`Guard`], made with a task's future and
/// dropped with it.
#[derive(Clone, Default)]
struct Alive(Arc<AtomicUsize>);

struct Guard(Alive);

impl Alive {
    fn guard(&self) -> Guard {
        // Relaxed: a test counter; the tasks that change it are joined
        // (or, on one thread, ordered) before it is read.
        self.0.fetch_add(1, Ordering::Relaxed);
        Guard(self.clone())
    }

    fn count(&self) -> usize {
        // Relaxed: see `guard`.
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Relaxed: see `Alive::guard`.
        (self.0).0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts events (tasks run, tasks done); Relaxed as [`Alive`].
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Counter {
    fn add(&self) -> usize {
        // Relaxed: see the type's doc.
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn get(&self) -> usize {
        // Relaxed: see the type's doc.
        self.0.load(Ordering::Relaxed)
    }
}

/// A task that counts itself in `ran` and succeeds.
fn counted(ran: &Counter) -> impl Future<Output = Result<(), Failed>> + Send + 'static {
    let ran = ran.clone();
    async move {
        ran.add();
        Ok(())
    }
}

/// A task that fails with `Failed(millis)` after `millis` of virtual time.
async fn fail_after(millis: u64) -> Result<(), Failed> {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    Err(Failed(millis))
}

/// A task that waits for the group's cancellation, sends the cause, and
/// succeeds.
fn report_cause(
    group: &Group,
    causes: &mpsc::UnboundedSender<Cause>,
) -> impl Future<Output = Result<(), Failed>> + Send + 'static {
    let shutdown = group.shutdown();
    let causes = causes.clone();
    async move {
        shutdown.cancelled().await;
        let cause = shutdown.cause().expect("a cancelled token has a cause");
        causes.send(cause).expect("the test keeps the receiver");
        Ok(())
    }
}

/// Every cause the tasks sent, once they are done.
async fn received(mut causes: mpsc::UnboundedReceiver<Cause>) -> Vec<Cause> {
    let mut all = Vec::new();
    while let Some(cause) = causes.recv().await {
        all.push(cause);
    }
    all
}

/// A task that runs until the returned sender sends.
fn gated() -> (
    oneshot::Sender<()>,
    impl Future<Output = Result<(), Failed>> + Send + 'static,
) {
    let (release, released) = oneshot::channel();
    let task = async move {
        released.await.expect("the test releases the gate");
        Ok(())
    };
    (release, task)
}

#[tokio::test(start_paused = true)]
async fn the_first_error_cancels_the_siblings_with_itself_as_the_cause() {
    let group = Group::new();
    let (causes, seen) = mpsc::unbounded_channel();
    for _ in 0..3 {
        group.spawn(report_cause(&group, &causes)).await;
    }
    drop(causes);
    group.spawn(async { Err(Failed(7)) }).await;

    let failed = wait(&group).await.unwrap_err();
    assert_eq!(failed.errors.len(), 1);
    assert!(failed.panics.is_empty());
    assert_eq!(failed.first(), Some(&Failed(7)));

    let causes = received(seen).await;
    assert_eq!(causes.len(), 3);
    let group_cause = group.shutdown().cause().unwrap();
    assert_eq!(group_cause.kind(), CauseKind::Error);
    for cause in &causes {
        assert!(Cause::ptr_eq(cause, &group_cause));
        // The very error `wait` returned, not a copy.
        let error = cause.downcast_ref::<Failed>().unwrap();
        assert!(ptr::eq(error, &*failed.errors[0]));
    }
}

#[tokio::test(start_paused = true)]
async fn every_error_comes_back_in_completion_order() {
    let group = Group::new();
    let start = Instant::now();
    for millis in [30, 10, 20] {
        group.spawn(fail_after(millis)).await;
    }
    let failed = wait(&group).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    let errors: Vec<u64> = failed.errors.iter().map(|error| error.0).collect();
    assert_eq!(errors, [10, 20, 30]);
    assert_eq!(failed.first(), Some(&Failed(10)));
    assert_eq!(failed.failed(), 3);
    assert_eq!(
        failed.to_string(),
        "3 tasks of the group failed (3 returned an error, 0 panicked); the first error: task 10 failed"
    );
    let cause = group.shutdown().cause().unwrap();
    assert_eq!(cause.downcast_ref::<Failed>(), Some(&Failed(10)));
}

#[tokio::test(start_paused = true)]
async fn the_limit_bounds_the_tasks_running_at_once() {
    const LIMIT: usize = 3;
    let tasks = scaled(1_000);
    let group = limited(LIMIT);
    let (running, most, done) = (Counter::default(), Counter::default(), Counter::default());
    for task in 0..tasks {
        let (running, most, done) = (running.clone(), most.clone(), done.clone());
        group
            .spawn(async move {
                let now = running.add();
                // Relaxed: `Counter`s are test counters (see its doc).
                most.0.fetch_max(now, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1 + task % 7)).await;
                // Relaxed: as above.
                running.0.fetch_sub(1, Ordering::Relaxed);
                done.add();
                Ok(())
            })
            .await;
        assert!(group.len() <= LIMIT, "{} tasks running", group.len());
    }
    assert!(wait(&group).await.is_ok());
    assert_eq!(most.get(), LIMIT);
    assert_eq!(done.get() as u64, tasks);
    assert_eq!(group.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn try_spawn_hands_a_refused_future_back_and_it_can_be_spawned_later() {
    let group = limited(1);
    let ran = Counter::default();
    let (release, blocker) = gated();
    assert!(group.try_spawn(blocker).is_ok());

    let refused = group.try_spawn(counted(&ran)).unwrap_err();
    assert!(matches!(refused, TrySpawnError::Full(_)));
    assert_eq!(format!("{refused:?}"), "Full(..)");
    assert_eq!(
        refused.to_string(),
        "the task group is at its limit of running tasks"
    );
    let future = refused.into_inner();
    tokio::task::yield_now().await;
    assert_eq!(ran.get(), 0);
    assert_eq!(group.len(), 1);

    release.send(()).unwrap();
    assert!(wait(&group).await.is_ok());
    assert!(group.try_spawn(future).is_ok());
    assert!(wait(&group).await.is_ok());
    assert_eq!(ran.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn try_spawn_without_a_limit_always_spawns() {
    let group = Group::new();
    let ran = Counter::default();
    for _ in 0..100 {
        assert!(group.try_spawn(counted(&ran)).is_ok());
    }
    assert_eq!(group.len(), 100);
    assert!(wait(&group).await.is_ok());
    assert_eq!(ran.get(), 100);
}

#[tokio::test(start_paused = true)]
async fn a_spawn_dropped_while_waiting_for_a_slot_never_runs_its_future() {
    let group = limited(1);
    let (release, blocker) = gated();
    group.spawn(blocker).await;

    let alive = Alive::default();
    let ran = Counter::default();
    {
        let guard = alive.guard();
        let ran = ran.clone();
        let mut waiting = pin!(group.spawn(async move {
            let _guard = guard;
            ran.add();
            Ok(())
        }));
        assert!(poll_once(waiting.as_mut()).await.is_pending());
        assert_eq!(alive.count(), 1);
    }
    // Dropped with the `spawn` future, never spawned.
    assert_eq!(alive.count(), 0);
    assert_eq!(group.len(), 1);

    release.send(()).unwrap();
    assert!(wait(&group).await.is_ok());
    assert_eq!(ran.get(), 0);
    // Its wait took no slot: the only one is free again.
    assert!(group.try_spawn(counted(&ran)).is_ok());
    assert!(wait(&group).await.is_ok());
    assert_eq!(ran.get(), 1);
}

/// Records, when dropped, what its group says then: how many tasks run,
/// and whether a slot is free.
struct Probe {
    group: Weak<Group>,
    seen: Arc<Mutex<Option<(usize, bool)>>>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let group = self.group.upgrade().expect("the test keeps the group");
        // Also checks that no lock of the group is held while a task's
        // future is dropped: this would deadlock.
        let running = group.len();
        let slot_free = group.try_spawn(async { Ok(()) }).is_ok();
        *self.seen.lock().unwrap() = Some((running, slot_free));
    }
}

/// A future that completes at once and keeps its value until dropped.
struct ReadyKeeping<T>(T);

impl<T> Future for ReadyKeeping<T> {
    type Output = Result<(), Failed>;

    fn poll(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_holds_its_entry_and_its_slot_until_its_future_is_dropped() {
    let group = Arc::new(limited(1));
    let seen = Arc::new(Mutex::new(None));
    let probe = Probe {
        group: Arc::downgrade(&group),
        seen: Arc::clone(&seen),
    };
    // Kept until the task drops its future (an `async` block would drop
    // it as it completes).
    group.spawn(ReadyKeeping(probe)).await;
    assert!(wait(&group).await.is_ok());
    assert_eq!(*seen.lock().unwrap(), Some((1, false)));
}

#[tokio::test(start_paused = true)]
async fn wait_with_no_tasks_is_ok_at_once() {
    let start = Instant::now();
    assert!(wait(&Group::new()).await.is_ok());
    assert!(wait(&limited(2)).await.is_ok());
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_second_wait_finds_the_failures_taken_by_the_first() {
    let group = Group::new();
    group.spawn(fail_after(5)).await;
    assert_eq!(failures(&group).await, (vec![5], vec![]));
    assert!(wait(&group).await.is_ok());

    // The group goes on, its `Shutdown` still cancelled by the failure.
    let saw_cancelled = Counter::default();
    let shutdown = group.shutdown();
    let seen = saw_cancelled.clone();
    group
        .spawn(async move {
            if shutdown.is_cancelled() {
                seen.add();
            }
            Ok(())
        })
        .await;
    assert!(wait(&group).await.is_ok());
    assert_eq!(saw_cancelled.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn tasks_spawned_while_waiting_are_waited_for() {
    let group = Group::new();
    let (release, first) = gated();
    group.spawn(first).await;

    let start = Instant::now();
    let mut waiting = pin!(group.wait());
    assert!(poll_once(waiting.as_mut()).await.is_pending());
    group.spawn(fail_after(50)).await;
    // The first task ends now; the one spawned while waiting in 50 ms.
    release.send(()).unwrap();

    let failed = tokio::time::timeout(HANG_GUARD, waiting)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(failed.first(), Some(&Failed(50)));
    assert_eq!(group.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn concurrent_waits_all_complete_and_one_gets_the_failures() {
    let group = Group::new();
    group.spawn(fail_after(10)).await;
    let (first, second) = tokio::join!(wait(&group), wait(&group));
    let failed = match (first, second) {
        (Err(failed), Ok(())) | (Ok(()), Err(failed)) => failed,
        (first, second) => panic!("expected one Err and one Ok: {first:?}, {second:?}"),
    };
    assert_eq!(failed.first(), Some(&Failed(10)));
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_caught_cancels_the_group_and_is_reported() {
    let group = Group::new();
    let (causes, seen) = mpsc::unbounded_channel();
    group.spawn(report_cause(&group, &causes)).await;
    drop(causes);
    group.spawn(async { panic!("boom {}", 1) }).await;
    group
        .spawn(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            std::panic::panic_any(7_u8)
        })
        .await;

    let failed = wait(&group).await.unwrap_err();
    assert!(failed.errors.is_empty());
    assert_eq!(
        failed.panics,
        ["boom 1", "a panic with a payload that is not a string"]
    );
    assert_eq!(failed.first(), None);
    assert_eq!(
        failed.to_string(),
        "2 tasks of the group failed (0 returned an error, 2 panicked); the first panic: boom 1"
    );

    let cause = group.shutdown().cause().unwrap();
    assert_eq!(
        cause.message(),
        Some("a task of the group panicked: boom 1")
    );
    let causes = received(seen).await;
    assert_eq!(causes.len(), 1);
    assert!(Cause::ptr_eq(&causes[0], &cause));
}

#[tokio::test(start_paused = true)]
async fn errors_and_panics_are_reported_together() {
    let group = Group::new();
    group.spawn(fail_after(20)).await;
    group
        .spawn(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            panic!("first")
        })
        .await;
    assert_eq!(failures(&group).await, (vec![20], vec!["first".to_owned()]));
    // The panic came first, so it is the cause.
    let cause = group.shutdown().cause().unwrap();
    assert_eq!(cause.message(), Some("a task of the group panicked: first"));
}

#[tokio::test(start_paused = true)]
async fn a_parent_cancellation_reaches_the_tasks_and_is_no_failure() {
    let parent = Shutdown::new();
    let group = Group::new().parent(&parent);
    let (causes, seen) = mpsc::unbounded_channel();
    for _ in 0..3 {
        group.spawn(report_cause(&group, &causes)).await;
    }
    drop(causes);
    assert!(parent.cancel("SIGTERM"));

    assert!(wait(&group).await.is_ok());
    let parent_cause = parent.cause().unwrap();
    let causes = received(seen).await;
    assert_eq!(causes.len(), 3);
    for cause in &causes {
        assert!(Cause::ptr_eq(cause, &parent_cause));
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_does_not_reach_the_parent() {
    let parent = Shutdown::new();
    let group = Group::new().parent(&parent);
    group.spawn(fail_after(1)).await;
    assert_eq!(failures(&group).await, (vec![1], vec![]));
    assert!(group.shutdown().is_cancelled());
    assert!(!parent.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_group_aborts_every_task_and_drops_every_future() {
    let baseline = alive_tasks();
    let alive = Alive::default();
    let group = limited(4);
    let shutdown = group.shutdown();
    let tasks: [Pin<Box<dyn Future<Output = ()> + Send>>; 3] = [
        Box::pin(std::future::pending()),
        Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
        // Ignores the cancellation that the drop sends.
        Box::pin({
            let shutdown = group.shutdown();
            async move {
                shutdown.cancelled().await;
                std::future::pending::<()>().await;
            }
        }),
    ];
    for task in tasks {
        let guard = alive.guard();
        group
            .spawn(async move {
                let _guard = guard;
                task.await;
                Ok(())
            })
            .await;
    }
    tokio::task::yield_now().await; // every task starts and waits
    assert_eq!(alive.count(), 3);
    assert_eq!(alive_tasks(), baseline + 3);

    drop(group);
    assert_eq!(shutdown.cause().unwrap().message(), Some(GROUP_DROPPED));
    settle(baseline).await;
    assert_eq!(alive.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_tasks_leave_nothing_behind() {
    const LIMIT: usize = 8;
    let baseline = alive_tasks();
    let tasks = scaled(100_000);
    let group = limited(LIMIT);
    let alive = Alive::default();
    let (running, most, done) = (Counter::default(), Counter::default(), Counter::default());
    for task in 0..tasks {
        let (running, most, done) = (running.clone(), most.clone(), done.clone());
        let guard = alive.guard();
        group
            .spawn(async move {
                let _guard = guard;
                let now = running.add();
                // Relaxed: `Counter`s are test counters (see its doc).
                most.0.fetch_max(now, Ordering::Relaxed);
                if task % 2 == 0 {
                    tokio::task::yield_now().await;
                }
                // Relaxed: as above.
                running.0.fetch_sub(1, Ordering::Relaxed);
                done.add();
                Ok(())
            })
            .await;
        assert!(group.len() <= LIMIT, "{} tasks running", group.len());
    }
    assert!(wait(&group).await.is_ok());
    assert_eq!(group.len(), 0);
    assert_eq!(done.get() as u64, tasks);
    assert!(most.get() <= LIMIT, "{} tasks ran at once", most.get());
    // A task's future is dropped before it counts as ended.
    assert_eq!(alive.count(), 0);
    settle(baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_failing_at_once_agree_on_the_first_error() {
    for _ in 0..scaled(2_000) {
        let group = Group::new();
        let arrived = Arc::new(AtomicUsize::new(0));
        for task in 0..2 {
            let arrived = Arc::clone(&arrived);
            group
                .spawn(async move {
                    // Both tasks fail at about the same moment, in parallel
                    // when they run on both worker threads. Yielding, not
                    // spinning: a worker blocked in a spin may hold the
                    // other task in its queue. Relaxed: a rendezvous that
                    // publishes nothing.
                    arrived.fetch_add(1, Ordering::Relaxed);
                    while arrived.load(Ordering::Relaxed) < 2 {
                        tokio::task::yield_now().await;
                    }
                    Err(Failed(task))
                })
                .await;
        }
        let failed = wait(&group).await.unwrap_err();
        assert_eq!(failed.errors.len(), 2);
        let cause = group.shutdown().cause().unwrap();
        let error = cause.downcast_ref::<Failed>().unwrap();
        assert!(
            ptr::eq(error, &*failed.errors[0]),
            "the cause is not errors[0]"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_without_a_limit_leaves_nothing_behind() {
    let baseline = alive_tasks();
    let tasks = scaled(100_000);
    let group = Group::new();
    let done = Counter::default();
    for _ in 0..tasks {
        group.spawn(counted(&done)).await;
    }
    assert_eq!(group.len() as u64, tasks);
    assert!(wait(&group).await.is_ok());
    assert_eq!(group.len(), 0);
    assert_eq!(done.get() as u64, tasks);
    settle(baseline).await;
}

#[tokio::test]
async fn debug_shows_the_counts() {
    let group = limited(2);
    group.spawn(async { Err(Failed(1)) }).await;
    assert!(wait(&group).await.is_err());
    group.spawn(async { Ok(()) }).await;
    let debug = format!("{group:?}");
    assert!(
        debug.starts_with("TaskGroup { running: 1, limit: Some(2), errors: 0, panics: 0, shutdown: Shutdown { cancelled: true"),
        "{debug}"
    );
}

#[tokio::test]
async fn the_group_and_its_futures_can_move_between_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let group = Group::new();
    send_sync(&group);
    let spawning = group.spawn(async { Ok(()) });
    send(&spawning);
    spawning.await;
    let waiting = group.wait();
    send(&waiting);
    assert!(waiting.await.is_ok());
}
