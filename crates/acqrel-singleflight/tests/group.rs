//! `Group`'s policies, one scenario each, written from Go's
//! `x/sync/singleflight` documentation and the cancellation cases.
//! Every scenario ends by checking that the group holds no entry.
//!
//! Nothing here sleeps: callers are lined up by watching `waiters`, the
//! work is held by a gate the test opens, and drops are observed through
//! latches.

#![cfg(not(acqrel_loom))]

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use acqrel_singleflight::{CancelPolicy, FlightError, Group, Outcome};
use support::{Probe, join_all, opened, scaled, until};
use tokio::task::JoinHandle;

type Strings = Group<&'static str, String, String>;

// ===== Helpers =====

/// Spawns a caller of `key` whose work is `probe.work(value)`.
fn caller(
    group: &Strings,
    key: &'static str,
    probe: &Arc<Probe>,
    value: Result<&'static str, &'static str>,
) -> JoinHandle<Result<Outcome<String>, FlightError<String>>> {
    let (group, probe) = (group.clone(), Arc::clone(probe));
    tokio::spawn(async move { group.run(key, || probe.work(value)).await })
}

fn value(outcome: Result<Outcome<String>, FlightError<String>>) -> (String, bool) {
    let outcome = outcome.expect("the flight failed");
    (outcome.value, outcome.shared)
}

// ===== Go's documented behaviour =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_value() {
    let group = Strings::new();
    let probe = Probe::new();
    let first = caller(&group, "k", &probe, Ok("v"));
    until("the leader started", || probe.started() == 1).await;
    let second = caller(&group, "k", &probe, Ok("other"));
    until("two waiters", || group.waiters(&"k") == 2).await;
    probe.gate.open();

    let results = join_all(vec![first, second]).await;
    for result in results {
        assert_eq!(value(result), ("v".to_string(), true));
    }
    assert_eq!((probe.started(), probe.finished()), (1, 1));
    assert_eq!(group.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_caller_gets_an_unshared_value() {
    let group = Strings::new();
    let outcome = group.run("k", || async { Ok("v".to_string()) }).await;
    assert_eq!(value(outcome), ("v".to_string(), false));
    assert_eq!(group.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_reaches_every_waiter_and_is_not_kept() {
    let group = Strings::new();
    let probe = Probe::new();
    let first = caller(&group, "k", &probe, Err("down"));
    until("the leader started", || probe.started() == 1).await;
    let second = caller(&group, "k", &probe, Ok("never run"));
    until("two waiters", || group.waiters(&"k") == 2).await;
    probe.gate.open();

    let errors: Vec<Arc<String>> = join_all(vec![first, second])
        .await
        .into_iter()
        .map(|result| match result {
            Err(FlightError::Failed(error)) => error,
            other => panic!("expected the shared error, got {other:?}"),
        })
        .collect();
    assert_eq!(*errors[0], "down");
    assert!(Arc::ptr_eq(&errors[0], &errors[1]), "one error, shared");
    assert_eq!(group.len(), 0);

    // Not cached: the next call runs the work again.
    let again = group.run("k", || probe.work(Ok("up"))).await;
    assert_eq!(value(again), ("up".to_string(), false));
    assert_eq!(probe.started(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_execution() {
    let callers = usize::try_from(scaled(1_000)).unwrap();
    let group = Strings::new();
    let probe = Probe::new();
    let handles: Vec<_> = (0..callers)
        .map(|_| caller(&group, "k", &probe, Ok("v")))
        .collect();
    until("every caller waiting", || group.waiters(&"k") == callers).await;
    probe.gate.open();

    for result in join_all(handles).await {
        assert_eq!(value(result), ("v".to_string(), true));
    }
    assert_eq!((probe.started(), probe.finished()), (1, 1));
    assert_eq!(group.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_keys_run_separately() {
    let group = Strings::new();
    let (a, b) = (Probe::new(), Probe::new());
    let first = caller(&group, "a", &a, Ok("va"));
    let second = caller(&group, "b", &b, Ok("vb"));
    until("both running", || a.started() == 1 && b.started() == 1).await;
    assert_eq!(group.len(), 2);
    a.gate.open();
    b.gate.open();
    let results = join_all(vec![first, second]).await;
    let values: Vec<_> = results.into_iter().map(value).collect();
    assert_eq!(
        values,
        [("va".to_string(), false), ("vb".to_string(), false)]
    );
    assert_eq!(group.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_lets_later_callers_start_a_new_execution() {
    let group = Strings::new();
    let (old, new) = (Probe::new(), Probe::new());
    let first = caller(&group, "k", &old, Ok("old"));
    until("the first execution started", || old.started() == 1).await;
    assert!(group.forget(&"k"));
    assert_eq!(group.len(), 0);
    assert!(!group.forget(&"k"));

    let second = caller(&group, "k", &new, Ok("new"));
    until("the second execution started", || new.started() == 1).await;
    assert_eq!(group.len(), 1);
    old.gate.open();
    new.gate.open();
    let results = join_all(vec![first, second]).await;
    let values: Vec<_> = results.into_iter().map(value).collect();
    assert_eq!(
        values,
        [("old".to_string(), false), ("new".to_string(), false)]
    );
    assert_eq!(group.len(), 0);
}

// ===== Panics =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_work_reaches_every_waiter_and_the_next_call_runs_afresh() {
    let group = Strings::new();
    let probe = Probe::new();
    let panicking = |probe: Arc<Probe>| async move {
        probe.started.fetch_add(1, Ordering::SeqCst);
        probe.gate.opened().await;
        panic!("the backend exploded");
    };
    let first = {
        let (group, probe) = (group.clone(), Arc::clone(&probe));
        tokio::spawn(async move { group.run("k", || panicking(probe)).await })
    };
    until("the leader started", || probe.started() == 1).await;
    let second = caller(&group, "k", &probe, Ok("never run"));
    until("two waiters", || group.waiters(&"k") == 2).await;
    probe.gate.open();

    for result in join_all(vec![first, second]).await {
        assert_eq!(
            result,
            Err(FlightError::Panicked {
                message: Arc::from("the backend exploded")
            })
        );
    }
    assert_eq!(group.len(), 0);
    let again = group.run("k", || async { Ok("fresh".to_string()) }).await;
    assert_eq!(value(again), ("fresh".to_string(), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closure_panicking_before_its_future_exists_is_a_panicked_outcome() {
    let group = Strings::new();
    let outcome = group
        .run("k", || -> std::future::Ready<Result<String, String>> {
            panic!("no future for you")
        })
        .await;
    assert_eq!(
        outcome,
        Err(FlightError::Panicked {
            message: Arc::from("no future for you")
        })
    );
    assert_eq!(group.len(), 0);
}

// ===== Cancellation =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_leader_leaves_the_work_running_for_the_others() {
    let group = Strings::new();
    let probe = Probe::new();
    let leader = caller(&group, "k", &probe, Ok("v"));
    until("the leader started", || probe.started() == 1).await;
    let follower = caller(&group, "k", &probe, Ok("never run"));
    until("two waiters", || group.waiters(&"k") == 2).await;

    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    assert_eq!(group.waiters(&"k"), 1);
    assert!(!probe.dropped.is_open(), "the work was cancelled");
    probe.gate.open();

    let (value, shared) = value(follower.await.unwrap());
    assert_eq!((value.as_str(), shared), ("v", true));
    assert_eq!((probe.started(), probe.finished()), (1, 1));
    assert_eq!(group.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_is_cancelled_when_every_caller_is_gone() {
    let group = Strings::new();
    let probe = Probe::new();
    let callers = [
        caller(&group, "k", &probe, Ok("v")),
        caller(&group, "k", &probe, Ok("v")),
    ];
    // Started, so that its drop is observable (a future never polled has
    // not yet made its drop signal).
    until("two waiters, the work started", || {
        group.waiters(&"k") == 2 && probe.started() == 1
    })
    .await;
    assert_eq!(group.len(), 1);
    for caller in callers {
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
    }
    opened(&probe.dropped, "dropped the work").await;
    assert_eq!((probe.started(), probe.finished()), (1, 0));
    assert_eq!(group.len(), 0);

    // A new caller starts afresh.
    probe.gate.open();
    let again = group.run("k", || probe.work(Ok("again"))).await;
    assert_eq!(value(again), ("again".to_string(), false));
    assert_eq!(probe.started(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_work_finishes_with_nobody_waiting_and_then_leaves() {
    let group: Strings = Group::with_policy(CancelPolicy::Detach);
    let probe = Probe::new();
    let leader = caller(&group, "k", &probe, Ok("v"));
    until("the leader started", || probe.started() == 1).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    assert_eq!(group.waiters(&"k"), 0);
    assert_eq!(group.len(), 1, "detached work stays joinable");

    // A caller arriving meanwhile joins it.
    let late = caller(&group, "k", &probe, Ok("never run"));
    until("the late caller waiting", || group.waiters(&"k") == 1).await;
    probe.gate.open();
    assert_eq!(value(late.await.unwrap()), ("v".to_string(), true));
    assert_eq!((probe.started(), probe.finished()), (1, 1));
    assert!(!probe.dropped.is_open());
    assert_eq!(group.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_work_nobody_joins_finishes_and_leaves_no_entry() {
    let group: Strings = Group::with_policy(CancelPolicy::Detach);
    let probe = Probe::new();
    let leader = caller(&group, "k", &probe, Ok("v"));
    until("the leader started", || probe.started() == 1).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    probe.gate.open();
    until("the work finished", || probe.finished() == 1).await;
    until("the entry gone", || group.is_empty()).await;
    assert!(!probe.dropped.is_open());
}

#[test]
fn a_runtime_shutting_down_cancels_its_flights_for_waiters_elsewhere() {
    let group = Strings::new();
    let probe = Probe::new();
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    // The leader (and so the work's task) on `doomed`, a waiter on `other`.
    let _leader = doomed.spawn({
        let (group, probe) = (group.clone(), Arc::clone(&probe));
        async move { group.run("k", || probe.work(Ok("v"))).await }
    });
    let waiter = other.spawn({
        let (group, probe) = (group.clone(), Arc::clone(&probe));
        async move {
            until("the leader started", || probe.started() == 1).await;
            group.run("k", || probe.work(Ok("never run"))).await
        }
    });
    other.block_on(until("two waiters", || group.waiters(&"k") == 2));
    doomed.shutdown_timeout(Duration::from_secs(0));

    let outcome = other.block_on(waiter).unwrap();
    assert_eq!(outcome, Err(FlightError::Cancelled));
    // The driver settles the flight, then drops the work.
    other.block_on(opened(&probe.dropped, "dropped the work"));
    assert_eq!(group.len(), 0);
}

#[test]
fn starting_outside_a_runtime_panics_and_leaves_no_entry() {
    let group = Strings::new();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pollster::block_on(group.run("k", || async { Ok("v".to_string()) }))
    }));
    assert!(run.is_err(), "spawning needs a runtime");
    assert_eq!(group.len(), 0);
}
