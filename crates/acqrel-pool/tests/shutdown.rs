//! `Shutdown`: propagation down the tree (never up) with one shared cause,
//! the first cause winning a race, children born cancelled, waking across
//! worker threads, cancel safety, `run_until_cancelled`, drop guards,
//! deadlines to the tick on the paused clock and the end of their timer
//! task on each path, deep trees without stack overflow, a registry that
//! forgets dropped children, and `Cause`'s accessors and formatting.
#![cfg(not(acqrel_loom))]

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use acqrel_pool::{Cause, CauseKind, Shutdown};
use common::{HANG_GUARD, scaled};
use tokio::runtime::Handle;
use tokio::time::Instant;

// ===== helpers =====

/// Asserts that every node in `nodes` is cancelled with the very `cause`.
fn assert_cancelled_with(nodes: &[&Shutdown], cause: &Cause) {
    for (i, node) in nodes.iter().enumerate() {
        assert!(node.is_cancelled(), "node {i} not cancelled");
        let seen = node.cause().expect("a cancelled node has a cause");
        assert!(
            Cause::ptr_eq(&seen, cause),
            "node {i}: {seen:?}, not {cause:?}"
        );
    }
}

fn assert_not_cancelled(nodes: &[&Shutdown]) {
    for (i, node) in nodes.iter().enumerate() {
        assert!(!node.is_cancelled(), "node {i} cancelled");
        assert!(node.cause().is_none(), "node {i} has a cause");
    }
}

/// A waker that counts its wake-ups; its `Arc`'s strong count tells how
/// many clones of it are stored somewhere.
#[derive(Default)]
struct CountingWaker {
    wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `future` once with a counting waker, drops it while pending, and
/// checks that it held one clone of the waker while pending and none after
/// the drop, and that a cancellation afterwards wakes nobody.
fn assert_dropped_waiter_leaves_nothing(shutdown: &Shutdown, future: impl Future<Output = ()>) {
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(&waker);
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        // Ours, the `waker`'s, and the one the pending future registered.
        assert_eq!(Arc::strong_count(&counter), 3);
    }
    assert_eq!(Arc::strong_count(&counter), 2);
    assert!(shutdown.cancel("after the drop"));
    assert_eq!(counter.wakes.load(Ordering::SeqCst), 0);
}

/// Yields until the runtime has `expected` live tasks, or a hang guard of
/// yields passes; returns the count then. Never advances the paused clock
/// (a yielding task keeps the runtime busy).
async fn alive_tasks_settle_to(expected: usize) -> usize {
    let metrics = Handle::current().metrics();
    for _ in 0..10_000 {
        if metrics.num_alive_tasks() == expected {
            break;
        }
        tokio::task::yield_now().await;
    }
    metrics.num_alive_tasks()
}

/// Runs `f` on a thread with the default 2 MiB stack of spawned threads,
/// stated explicitly so a recursion over a deep tree would overflow it.
fn on_a_2_mib_stack(f: impl FnOnce() + Send + 'static) {
    thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}

/// A chain `root → ... → leaf` of `depth` children, of which only the
/// root and the leaf are kept.
fn chain(depth: usize) -> (Shutdown, Shutdown) {
    let root = Shutdown::new();
    let mut leaf = root.clone();
    for _ in 0..depth {
        leaf = leaf.child();
    }
    (root, leaf)
}

#[derive(Debug, PartialEq)]
struct Refused {
    code: u32,
    source: std::fmt::Error,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused with code {}", self.code)
    }
}

impl Error for Refused {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

// ===== the tree =====

#[test]
fn parent_cancel_reaches_three_levels_with_one_cause() {
    let root = Shutdown::new();
    let a = root.child();
    let b = a.child();
    let c = b.child();
    let sibling = root.child();
    let cousin = sibling.child();
    let clone_of_c = c.clone();
    assert_eq!(root.child_count(), 2);

    let cause = Cause::from("deploy");
    assert!(root.cancel(cause.clone()));

    assert_cancelled_with(&[&root, &a, &b, &c, &clone_of_c, &sibling, &cousin], &cause);
    // Cancelling empties each registry.
    assert_eq!(root.child_count(), 0);
    assert_eq!(a.child_count(), 0);
    // A second cancel anywhere changes nothing.
    assert!(!root.cancel("again"));
    assert!(!c.cancel("again"));
    assert_cancelled_with(&[&root, &c], &cause);
}

#[test]
fn child_cancel_reaches_neither_parent_nor_siblings() {
    let root = Shutdown::new();
    let a = root.child();
    let b = a.child();
    let sibling = root.child();
    let b_child = b.child();

    assert_eq!(root.child_count(), 2);

    let cause = Cause::from("request done");
    assert!(a.cancel(cause.clone()));
    assert_cancelled_with(&[&a, &b, &b_child], &cause);
    assert_not_cancelled(&[&root, &sibling]);
    // The cancelled child left its parent's registry; its handle lives on.
    assert_eq!(root.child_count(), 1);

    // The parent's later cancellation leaves the child's cause alone.
    let later = Cause::from("shutdown");
    assert!(root.cancel(later.clone()));
    assert_cancelled_with(&[&root, &sibling], &later);
    assert_cancelled_with(&[&a, &b, &b_child], &cause);
}

#[test]
fn a_cancelled_childs_drop_leaves_its_siblings_registered() {
    let root = Shutdown::new();
    let (first, second) = (root.child(), root.child());
    // Leaving the registry moves `second` into `first`'s slot.
    assert!(first.cancel("done"));
    assert_eq!(root.child_count(), 1);
    // `first`'s drop must not take `second`'s entry with it.
    drop(first);
    assert_eq!(root.child_count(), 1);
    let cause = Cause::from("stop");
    assert!(root.cancel(cause.clone()));
    assert_cancelled_with(&[&second], &cause);
}

#[test]
fn first_cause_wins_between_racing_threads() {
    for round in 0..scaled(2_000) {
        let root = Shutdown::new();
        let child = root.child();
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let (root, barrier) = (root.clone(), barrier.clone());
                thread::spawn(move || {
                    let cause = Cause::from(name);
                    barrier.wait();
                    let won = root.cancel(cause.clone());
                    // Whatever it returned, the node is cancelled by now.
                    assert!(root.is_cancelled());
                    (won, cause)
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter(|(won, _)| *won).collect();
        assert_eq!(winners.len(), 1, "round {round}");
        assert_cancelled_with(&[&root, &child], &winners[0].1);
    }
}

#[test]
fn child_of_a_cancelled_parent_is_born_cancelled() {
    let root = Shutdown::new();
    let cause = Cause::from("stopped");
    assert!(root.cancel(cause.clone()));

    let child = root.child();
    let grandchild = child.child();
    assert_cancelled_with(&[&child, &grandchild], &cause);
    assert_eq!(root.child_count(), 0);
    assert!(!child.cancel("own"));
    assert_cancelled_with(&[&child], &cause);
}

// ===== waiting =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_wakes_a_task_on_another_worker() {
    let root = Shutdown::new();
    let (pending_tx, pending_rx) = tokio::sync::oneshot::channel();
    let waiter = {
        let node = root.child().child();
        tokio::spawn(async move {
            let mut cancelled = pin!(node.cancelled());
            // Registered as a waiter before the cancellation happens.
            let first = std::future::poll_fn(|cx| Poll::Ready(cancelled.as_mut().poll(cx))).await;
            assert!(first.is_pending());
            pending_tx.send(()).unwrap();
            cancelled.await;
            node.cause()
        })
    };
    pending_rx.await.unwrap();
    let cause = Cause::from("stop");
    assert!(root.cancel(cause.clone()));
    let seen = tokio::time::timeout(HANG_GUARD, waiter)
        .await
        .expect("woken")
        .unwrap()
        .expect("a cause");
    assert!(Cause::ptr_eq(&seen, &cause));
}

#[test]
fn a_dropped_cancelled_future_leaves_no_waker_behind() {
    let shutdown = Shutdown::new();
    assert_dropped_waiter_leaves_nothing(&shutdown, shutdown.cancelled());
    let shutdown = Shutdown::new();
    assert_dropped_waiter_leaves_nothing(&shutdown, shutdown.child().cancelled_owned());
}

#[tokio::test]
async fn cancelled_owned_outlives_every_other_handle_of_its_node() {
    let root = Shutdown::new();
    let stopped = tokio::spawn(root.child().child().cancelled_owned());
    // The future's own handle keeps the grandchild and its parent
    // registered.
    assert_eq!(root.child_count(), 1);
    assert!(root.cancel("stop"));
    tokio::time::timeout(HANG_GUARD, stopped)
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(root.child_count(), 0);
}

#[tokio::test]
async fn run_until_cancelled_returns_the_output_or_the_cause() {
    let root = Shutdown::new();
    assert_eq!(root.run_until_cancelled(async { 7 }).await.unwrap(), 7);

    let running = {
        let node = root.child();
        tokio::spawn(async move {
            node.run_until_cancelled(std::future::pending::<u32>())
                .await
        })
    };
    tokio::task::yield_now().await;
    let cause = Cause::from("stop");
    assert!(root.cancel(cause.clone()));
    let stopped = tokio::time::timeout(HANG_GUARD, running)
        .await
        .expect("woken")
        .unwrap();
    assert!(Cause::ptr_eq(&stopped.unwrap_err(), &cause));

    // Already cancelled: the future is never polled.
    let polled = AtomicUsize::new(0);
    let never = std::future::poll_fn(|_| {
        polled.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(1)
    });
    assert!(Cause::ptr_eq(
        &root.run_until_cancelled(never).await.unwrap_err(),
        &cause
    ));
    assert_eq!(polled.load(Ordering::SeqCst), 0);
}

#[test]
fn drop_guard_cancels_on_drop_unless_disarmed() {
    let root = Shutdown::new();
    let child = root.child();
    drop(child.drop_guard());
    assert_eq!(child.cause().unwrap().kind(), CauseKind::Dropped);
    assert_not_cancelled(&[&root]);

    let kept = root.drop_guard().disarm();
    assert_not_cancelled(&[&root, &kept]);
    assert!(kept.cancel("by hand"));
    assert_eq!(root.cause().unwrap().message(), Some("by hand"));
}

// ===== deadlines =====

#[tokio::test(start_paused = true)]
async fn with_timeout_fires_at_exactly_the_deadline() {
    let root = Shutdown::new();
    let start = Instant::now();
    let timeout = Duration::from_millis(1_250);
    let request = root.with_timeout(timeout);
    let grandchild = request.child();
    request.cancelled().await;

    assert_eq!(Instant::now(), start + timeout);
    let cause = request.cause().unwrap();
    assert_eq!(cause.kind(), CauseKind::DeadlineExceeded);
    assert_eq!(cause.deadline(), Some(start + timeout));
    assert_cancelled_with(&[&request, &grandchild], &cause);
    assert_not_cancelled(&[&root]);
}

#[tokio::test(start_paused = true)]
async fn with_deadline_fires_at_exactly_the_deadline_or_at_once_if_past() {
    let root = Shutdown::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let request = root.with_deadline(deadline);
    request.cancelled().await;
    assert_eq!(Instant::now(), deadline);
    assert_eq!(request.cause().unwrap().deadline(), Some(deadline));

    let past = Instant::now() - Duration::from_secs(1);
    let late = root.with_deadline(past);
    assert!(late.is_cancelled());
    assert_eq!(late.cause().unwrap().deadline(), Some(past));
    assert_not_cancelled(&[&root]);
    // Both left the registry when they were cancelled.
    assert_eq!(root.child_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_parent_cancelled_before_the_deadline_gives_its_own_cause() {
    let root = Shutdown::new();
    let start = Instant::now();
    let request = root.with_timeout(Duration::from_secs(5));
    let cause = Cause::from("shutdown");
    assert!(root.cancel(cause.clone()));
    request.cancelled().await;
    assert_eq!(Instant::now(), start);
    assert_cancelled_with(&[&request], &cause);

    // Born cancelled: no timer at all.
    let baseline = Handle::current().metrics().num_alive_tasks();
    let born = root.with_timeout(Duration::from_secs(5));
    assert_cancelled_with(&[&born], &cause);
    assert_eq!(Handle::current().metrics().num_alive_tasks(), baseline);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_still_reaches_children_of_its_dropped_handle() {
    let root = Shutdown::new();
    let start = Instant::now();
    let grandchild = root.with_timeout(Duration::from_secs(2)).child();
    grandchild.cancelled().await;
    assert_eq!(Instant::now(), start + Duration::from_secs(2));
    assert_eq!(
        grandchild.cause().unwrap().kind(),
        CauseKind::DeadlineExceeded
    );
}

#[tokio::test(start_paused = true)]
async fn the_timer_task_ends_on_each_path() {
    let root = Shutdown::new();
    let baseline = Handle::current().metrics().num_alive_tasks();
    let start = Instant::now();
    let timeout = Duration::from_secs(60);

    // The deadline passes.
    let fired = root.with_timeout(timeout);
    assert_eq!(Handle::current().metrics().num_alive_tasks(), baseline + 1);
    fired.cancelled().await;
    assert_eq!(alive_tasks_settle_to(baseline).await, baseline);
    let after_fire = Instant::now();
    assert_eq!(after_fire, start + timeout);

    // Cancelled by hand, long before the deadline.
    let cancelled = root.with_timeout(timeout);
    assert_eq!(Handle::current().metrics().num_alive_tasks(), baseline + 1);
    assert!(cancelled.cancel("by hand"));
    assert_eq!(alive_tasks_settle_to(baseline).await, baseline);

    // Both left the registry when cancelled, though their handles live.
    assert_eq!(root.child_count(), 0);
    assert!(fired.is_cancelled() && cancelled.is_cancelled());

    // Every handle dropped, long before the deadline.
    let dropped = root.with_timeout(timeout);
    assert_eq!(root.child_count(), 1);
    assert_eq!(Handle::current().metrics().num_alive_tasks(), baseline + 1);
    drop(dropped);
    assert_eq!(root.child_count(), 0);
    assert_eq!(alive_tasks_settle_to(baseline).await, baseline);

    // Neither of the last two waited for its deadline.
    assert_eq!(Instant::now(), after_fire);
    assert_not_cancelled(&[&root]);
}

#[test]
#[should_panic(expected = "Tokio 1.x")]
fn with_timeout_outside_a_runtime_panics() {
    let _ = Shutdown::new().with_timeout(Duration::from_secs(1));
}

// ===== depth and memory =====

#[test]
fn a_ten_thousand_deep_tree_cancels_and_drops_without_overflow() {
    on_a_2_mib_stack(|| {
        let (root, leaf) = chain(10_000);
        let cause = Cause::from("deep");
        assert!(root.cancel(cause.clone()));
        assert_cancelled_with(&[&leaf], &cause);
        drop(leaf);
        drop(root);

        // Uncancelled: dropping the leaf unlinks every level.
        let (root, leaf) = chain(10_000);
        assert_eq!(root.child_count(), 1);
        drop(leaf);
        assert_eq!(root.child_count(), 0);

        // The root's handle dropped first: the leaf alone holds the chain.
        let (root, leaf) = chain(10_000);
        drop(root);
        drop(leaf);
    });
}

#[test]
fn a_million_dropped_children_leave_the_registry_empty() {
    let root = Shutdown::new();
    for _ in 0..scaled(1_000_000) {
        let child = root.child();
        assert_eq!(root.child_count(), 1);
        drop(child);
    }
    assert_eq!(root.child_count(), 0);

    // Many alive at once, dropped in an order that moves entries around.
    let mut children: Vec<_> = (0..1_000).map(|_| root.child()).collect();
    assert_eq!(root.child_count(), 1_000);
    let mut expected = 1_000;
    while !children.is_empty() {
        let at = (expected * 7) % children.len();
        drop(children.swap_remove(at));
        expected -= 1;
        assert_eq!(root.child_count(), expected);
    }
    // Still wired: the registry was not just emptied, its children are
    // reachable.
    let child = root.child();
    assert!(root.cancel("stop"));
    assert!(child.is_cancelled());
}

#[test]
fn shutdown_is_send_sync_and_its_futures_are_send() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let shutdown = Shutdown::new();
    send_sync(&shutdown);
    send_sync(&shutdown.drop_guard().disarm());
    send_sync(&Cause::from("x"));
    send(&shutdown.cancelled());
    send(&shutdown.cancelled_owned());
    send(&shutdown.run_until_cancelled(async {}));
}

// ===== Cause =====

#[test]
fn cause_error_downcasts_and_is_transparent() {
    let shutdown = Shutdown::new();
    let child = shutdown.child();
    let refused = Refused {
        code: 7,
        source: std::fmt::Error,
    };
    assert!(shutdown.cancel(Cause::error(refused)));

    let cause = child.cause().unwrap();
    assert_eq!(cause.kind(), CauseKind::Error);
    let expected = Refused {
        code: 7,
        source: std::fmt::Error,
    };
    assert_eq!(cause.downcast_ref::<Refused>(), Some(&expected));
    assert!(cause.downcast_ref::<std::io::Error>().is_none());
    assert_eq!(cause.as_error().unwrap().to_string(), "refused with code 7");
    // Transparent: the user's error displays, its source is the source.
    assert_eq!(cause.to_string(), "refused with code 7");
    let source = cause.source().expect("the user error's source");
    assert!(source.downcast_ref::<std::fmt::Error>().is_some());
    assert_eq!((cause.message(), cause.deadline()), (None, None));

    // A boxed error is taken as is, not boxed again.
    let boxed: Box<dyn Error + Send + Sync> = Box::new(std::fmt::Error);
    assert!(
        Cause::from(boxed)
            .downcast_ref::<std::fmt::Error>()
            .is_some()
    );
}

#[tokio::test(start_paused = true)]
async fn display_and_accessors_of_each_kind() {
    let start = Instant::now();
    let request = Shutdown::new().with_timeout(Duration::from_secs(1));
    request.cancelled().await;
    let deadline = request.cause().unwrap();
    let at = start + Duration::from_secs(1);
    assert_eq!(deadline.deadline(), Some(at));
    assert_eq!(format!("{deadline:?}"), format!("DeadlineExceeded({at:?})"));
    assert_eq!(deadline.to_string(), "deadline exceeded");
    assert_eq!(deadline.kind(), CauseKind::DeadlineExceeded);
    assert!(deadline.source().is_none());

    let shutdown = Shutdown::new();
    drop(shutdown.drop_guard());
    let dropped = shutdown.cause().unwrap();
    assert_eq!(dropped.to_string(), "shutdown guard dropped");
    assert_eq!(format!("{dropped:?}"), "Dropped");
    assert!(dropped.source().is_none());
    assert_eq!((dropped.message(), dropped.deadline()), (None, None));
    assert!(dropped.as_error().is_none());

    let borrowed = Cause::from("maintenance");
    let owned = Cause::from(format!("node {}", 3));
    assert_eq!(borrowed.to_string(), "maintenance");
    assert_eq!(owned.to_string(), "node 3");
    assert_eq!(owned.message(), Some("node 3"));
    assert_eq!(format!("{borrowed:?}"), "Message(\"maintenance\")");
    assert_eq!(borrowed.kind(), CauseKind::Message);
    assert!(borrowed.source().is_none());

    let error = Cause::error(std::fmt::Error);
    assert_eq!(error.to_string(), std::fmt::Error.to_string());
    assert_eq!(format!("{error:?}"), "Error(Error)");
}

#[test]
fn debug_shows_the_state() {
    let shutdown = Shutdown::new();
    let _child = shutdown.child();
    assert_eq!(
        format!("{shutdown:?}"),
        "Shutdown { cancelled: false, cause: None, children: 1 }"
    );
    shutdown.cancel("stop");
    assert_eq!(
        format!("{shutdown:?}"),
        "Shutdown { cancelled: true, cause: Some(Message(\"stop\")), children: 0 }"
    );
}
