//! Loom models of `Group`'s flight table: join, leave, complete and the
//! driver's cancellation, with each flight's driver on its own loom thread
//! (what `tokio::spawn` is in a normal build).
//!
//! Run with `RUSTFLAGS="--cfg acqrel_loom" LOOM_MAX_PREEMPTIONS=2
//! cargo test --release -p acqrel-singleflight --test loom_group`.

#![cfg(acqrel_loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use acqrel_singleflight::{FlightError, Group, Outcome};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

type Counted = Group<u8, u32, ()>;

/// Work that counts its runs and returns 7.
fn counted(
    runs: &Arc<AtomicUsize>,
) -> impl FnOnce() -> std::future::Ready<Result<u32, ()>> + use<> {
    let runs = Arc::clone(runs);
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(7))
    }
}

/// Polls `future` once, as a task that is then cancelled would have.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// A caller that starts (or joins) the flight and is dropped at its first
/// wait: the cancelled leader of the issue. Whatever the interleaving, the
/// caller that stays gets the value (from that flight, or from its own if
/// the flight was cancelled before it joined), and no entry is left.
#[test]
fn a_dropped_caller_never_fails_the_one_that_stays() {
    loom::model(|| {
        let group = Counted::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let dropped = {
            let (group, work) = (group.clone(), counted(&runs));
            loom::thread::spawn(move || drop(poll_once(group.run(1, work))))
        };
        let stayed = loom::future::block_on(group.run(1, counted(&runs)));
        assert_eq!(stayed.map(|outcome| outcome.value), Ok(7));
        dropped.join().unwrap();
        assert_eq!(group.len(), 0, "an entry outlived its callers");
    });
}

/// Two callers to the end: both get the value, and if they shared one
/// execution it ran once.
#[test]
fn two_callers_share_one_execution_or_run_their_own() {
    loom::model(|| {
        let group = Counted::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let other = {
            let (group, work) = (group.clone(), counted(&runs));
            loom::thread::spawn(move || loom::future::block_on(group.run(1, work)))
        };
        let mine = loom::future::block_on(group.run(1, counted(&runs)));
        let theirs = other.join().unwrap();
        let shared = |outcome: &Result<Outcome<u32>, FlightError<()>>| {
            assert_eq!(outcome.as_ref().map(|o| o.value), Ok(7));
            outcome.as_ref().is_ok_and(|o| o.shared)
        };
        let (a, b) = (shared(&mine), shared(&theirs));
        assert_eq!(a, b, "one saw a shared execution, the other did not");
        // Shared: one run. Not shared: a run each (the second started after
        // the first had settled).
        assert_eq!(runs.load(Ordering::SeqCst), if a { 1 } else { 2 });
        assert_eq!(group.len(), 0);
    });
}
