//! The pool's stages and the hand-off of its shutdown report.
//!
//! # Orderings
//!
//! No atomics of its own: the stage is an [`acqrel_core::StageGate`] and
//! the report an [`acqrel_core::TryOnce`], both loom-checked in
//! `acqrel-core`. What this module adds is the order of their steps, which
//! `tests/loom_lifecycle.rs` checks:
//!
//! * **One leader.** [`begin`](Lifecycle::begin) is the gate's
//!   compare-exchange `Running → Draining`; of any number of concurrent
//!   callers exactly one wins and runs the shutdown, the others follow.
//! * **The report before `Stopped`.** The leader stores the report, *then*
//!   advances `Draining → Stopped`. The advance is Release and every
//!   reading of the stage is Acquire, so a caller that sees `Stopped` sees
//!   the report: [`report`](Lifecycle::report) waits for `Stopped` and then
//!   reads it, and never finds it missing.

use std::fmt;

use acqrel_core::{Stage, StageGate, TryOnce};

use crate::pool::report::ShutdownReport;

/// A [`WorkerPool`](crate::WorkerPool)'s stage, observable through
/// [`WorkerPool::stage`](crate::WorkerPool::stage) and
/// [`WorkerPool::reached`](crate::WorkerPool::reached). Stages only move
/// forward, one step at a time.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use acqrel_pool::{PoolStage, WorkerPool};
///
/// let pool = WorkerPool::builder().start(|_job: (), _shutdown| async {});
/// assert_eq!(pool.stage(), PoolStage::Running);
/// pool.shutdown(Duration::from_secs(1)).await;
/// assert_eq!(pool.stage(), PoolStage::Stopped);
/// assert!(PoolStage::Draining < PoolStage::Stopped);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PoolStage {
    /// The workers are being spawned (inside the builder's `start`).
    Starting,
    /// Accepting and running jobs.
    Running,
    /// Shutting down: no job is accepted; the queued and running ones get
    /// the grace period, then cancellation, then abort.
    Draining,
    /// Every worker has ended; the report is ready.
    Stopped,
}

const STAGES: [PoolStage; 4] = [
    PoolStage::Starting,
    PoolStage::Running,
    PoolStage::Draining,
    PoolStage::Stopped,
];

impl Stage for PoolStage {
    fn to_u8(self) -> u8 {
        self as u8
    }

    fn from_u8(value: u8) -> Option<Self> {
        STAGES.get(usize::from(value)).copied()
    }

    fn can_advance(from: Self, to: Self) -> bool {
        to as u8 == from as u8 + 1
    }
}

/// The stage gate and the report, with the steps that tie them together.
///
/// Public (hidden) only under `--cfg acqrel_loom`, for the model.
pub struct Lifecycle {
    stage: StageGate<PoolStage>,
    report: TryOnce<ShutdownReport>,
}

impl Lifecycle {
    /// A lifecycle in `Starting`.
    pub fn new() -> Self {
        Lifecycle {
            stage: StageGate::new(PoolStage::Starting),
            report: TryOnce::new(),
        }
    }

    /// `Starting → Running`, once the workers are spawned.
    pub fn started(&self) {
        // Only the builder calls this, once, on a new lifecycle.
        let advanced = self.stage.advance(PoolStage::Starting, PoolStage::Running);
        debug_assert!(advanced.is_ok(), "started twice: {advanced:?}");
    }

    /// `Running → Draining`: whether this caller won and must run the
    /// shutdown and then call [`finish`](Self::finish).
    pub fn begin(&self) -> bool {
        let advanced = self.stage.advance(PoolStage::Running, PoolStage::Draining);
        advanced.is_ok()
    }

    /// The leader's last step: the report, then `Stopped` (see the
    /// module's `# Orderings`).
    pub fn finish(&self, report: ShutdownReport) {
        self.report.get_or_init(|| report);
        let advanced = self.stage.advance(PoolStage::Draining, PoolStage::Stopped);
        debug_assert!(advanced.is_ok(), "finished twice: {advanced:?}");
    }

    /// The stage now.
    pub fn stage(&self) -> PoolStage {
        self.stage.current()
    }

    /// Completes with the first stage at or past `stage`.
    pub async fn reached(&self, stage: PoolStage) -> PoolStage {
        self.stage.until(|now| now >= stage).await
    }

    /// The report, once the leader has finished.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    pub async fn report(&self) -> ShutdownReport {
        self.reached(PoolStage::Stopped).await;
        // `Stopped` is entered only after the report is stored, and was
        // read with Acquire: see the module's `# Orderings`.
        match self.report.get() {
            Some(report) => *report,
            None => unreachable!("a pool reached Stopped without its report"),
        }
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new()
    }
}

impl fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifecycle")
            .field("stage", &self.stage())
            .field("report", &self.report.get())
            .finish()
    }
}
