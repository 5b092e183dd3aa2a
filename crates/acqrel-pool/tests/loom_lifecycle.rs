//! Loom model of the pool's stages and report hand-off
//! (`src/pool/lifecycle.rs`, `# Orderings`): of two racing shutdowns
//! exactly one leads, and a follower (or a stage watcher) that sees
//! `Stopped` always finds the leader's report.
//!
//! Mutation check (`tests/loom_mutants.txt`): entering `Stopped` before the
//! report is stored, and electing the leader by a load and a separate
//! store, each make a model fail.
#![cfg(acqrel_loom)]

use acqrel_pool::lifecycle::Lifecycle;
use acqrel_pool::{EndedBy, PoolStage, ShutdownReport};
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

/// What a shutdown call does with the lifecycle: lead (and publish a
/// report naming `me`) or follow; either way, return the report.
fn shutdown(lifecycle: &Lifecycle, me: u64) -> (bool, ShutdownReport) {
    let led = lifecycle.begin();
    if led {
        lifecycle.finish(report_of(me));
    }
    (led, block_on(lifecycle.report()))
}

/// A report that says who made it.
fn report_of(leader: u64) -> ShutdownReport {
    let mut report = ShutdownReport::default();
    report.completed = leader;
    report.ended_by = EndedBy::Drain;
    report
}

#[test]
fn racing_shutdowns_elect_one_leader_and_share_its_report() {
    loom::model(|| {
        let lifecycle = Arc::new(Lifecycle::new());
        lifecycle.started();
        let other = {
            let lifecycle = Arc::clone(&lifecycle);
            thread::spawn(move || shutdown(&lifecycle, 2))
        };
        let mine = shutdown(&lifecycle, 1);
        let theirs = other.join().unwrap();
        assert!(mine.0 ^ theirs.0, "exactly one leader");
        let leader = if mine.0 { 1 } else { 2 };
        assert_eq!(mine.1, report_of(leader));
        assert_eq!(theirs.1, report_of(leader));
        assert_eq!(lifecycle.stage(), PoolStage::Stopped);
    });
}

#[test]
fn a_watcher_that_sees_stopped_finds_the_report() {
    loom::model(|| {
        let lifecycle = Arc::new(Lifecycle::new());
        lifecycle.started();
        let watcher = {
            let lifecycle = Arc::clone(&lifecycle);
            thread::spawn(move || block_on(lifecycle.report()))
        };
        assert!(lifecycle.begin());
        lifecycle.finish(report_of(7));
        assert_eq!(watcher.join().unwrap(), report_of(7));
    });
}
