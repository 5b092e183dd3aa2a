//! Helpers shared by the tests of `Group` and `Cache`: work held by a gate
//! the test opens, with counters and a drop signal, and hang-guarded waits.

#![allow(dead_code)] // each test file uses its own subset

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use acqrel_core::Latch;
use tokio::task::JoinHandle;

pub(crate) use crate::common::{HANG_GUARD, scaled};

/// A gate work waits on, and counters of what the work did.
#[derive(Default)]
pub(crate) struct Probe {
    pub(crate) gate: Latch,
    pub(crate) started: AtomicUsize,
    pub(crate) finished: AtomicUsize,
    /// Opened when a work future is dropped unfinished.
    pub(crate) dropped: Latch,
}

impl Probe {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Probe::default())
    }

    /// Work that counts its start, waits for the gate, then returns
    /// `value`; dropped before the gate opens, it opens `dropped`.
    pub(crate) fn work(
        self: &Arc<Self>,
        value: Result<&'static str, &'static str>,
    ) -> impl Future<Output = Result<String, String>> + Send + 'static {
        let probe = Arc::clone(self);
        async move {
            probe.started.fetch_add(1, Ordering::SeqCst);
            let guard = DropSignal(&probe.dropped);
            probe.gate.opened().await;
            std::mem::forget(guard);
            probe.finished.fetch_add(1, Ordering::SeqCst);
            value.map(str::to_string).map_err(str::to_string)
        }
    }

    pub(crate) fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    pub(crate) fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

/// Opens its latch when dropped.
struct DropSignal<'a>(&'a Latch);

impl Drop for DropSignal<'_> {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Waits until `ready()` holds, yielding between checks.
pub(crate) async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    tokio::time::timeout(HANG_GUARD, async {
        while !ready() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("hang guard: never {what}"));
}

/// Waits for the latch, with the hang guard.
pub(crate) async fn opened(latch: &Latch, what: &str) {
    tokio::time::timeout(HANG_GUARD, latch.opened())
        .await
        .unwrap_or_else(|_| panic!("hang guard: never {what}"));
}

pub(crate) async fn join_all<T>(handles: Vec<JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.expect("a caller task failed"));
    }
    results
}
