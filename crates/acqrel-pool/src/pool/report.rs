//! What a [`WorkerPool`](crate::WorkerPool) did with its jobs.

/// How far [`WorkerPool::shutdown`](crate::WorkerPool::shutdown) had to
/// go before every worker ended.
///
/// # Examples
///
/// See [`ShutdownReport`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EndedBy {
    /// Every queued and running job finished within the grace period (and
    /// the default: a pool with nothing to drain).
    #[default]
    Drain,
    /// The grace period ran out: the queued jobs were dropped, the running
    /// ones cancelled through their [`Shutdown`](crate::Shutdown), and
    /// they all returned within the cancel period.
    Cancel,
    /// Some jobs were still running after the cancel period too; they
    /// were aborted.
    Abort,
}

/// The counts of a [`WorkerPool`](crate::WorkerPool)'s whole life,
/// returned by [`shutdown`](crate::WorkerPool::shutdown). Every job the
/// pool accepted is counted exactly once:
///
/// `completed + panicked + cancelled_before_start + cancelled_while_running + aborted`
/// equals the number of successful submits.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use acqrel_pool::{EndedBy, WorkerPool};
///
/// let pool = WorkerPool::builder().start(|n: u32, _shutdown| async move {
///     assert!(n != 3, "job 3 fails");
/// });
/// for n in 0..5 {
///     pool.submit(n).await.unwrap();
/// }
/// let report = pool.shutdown(Duration::from_secs(5)).await;
/// assert_eq!((report.completed, report.panicked), (4, 1));
/// assert_eq!(report.ended_by, EndedBy::Drain);
/// assert_eq!(report.total(), 5);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Jobs that returned before their `Shutdown` was cancelled: an async
    /// job whose last poll (the one that returned) began before the
    /// cancellation was visible, a blocking job whose call returned before
    /// it. A job that returns just before a cancel is counted here, even
    /// if the cancel lands before its worker has looked (see
    /// [`cancelled_while_running`](Self::cancelled_while_running)).
    pub completed: u64,
    /// Jobs that panicked (caught; the worker went on with the next job).
    pub panicked: u64,
    /// Jobs still queued when the grace period ran out: dropped unstarted
    /// (not handed back: see [`WorkerPool::shutdown`](crate::WorkerPool::shutdown)).
    pub cancelled_before_start: u64,
    /// Jobs that returned with their cancellation delivered: counted by
    /// what the job could have seen, not by when its worker looked.
    ///
    /// * An **async** job is counted here when its `Shutdown` was already
    ///   cancelled as the poll in which it returned began: it was woken or
    ///   polled with the cancellation in force (a job that returns from
    ///   `shutdown.cancelled().await` always is). A cancel that lands
    ///   during that last poll is not counted as delivered, so a job that
    ///   reads [`Shutdown::is_cancelled`](crate::Shutdown::is_cancelled)
    ///   mid-poll and returns at once is counted in
    ///   [`completed`](Self::completed) when the cancel came during that
    ///   very poll; the pool cannot tell that job from one that returned
    ///   without looking, and counts it by the state the poll began with.
    /// * A **blocking** job is one call: it is counted here when its
    ///   `Shutdown` is cancelled as the call returns, read on its own
    ///   thread right after the return.
    pub cancelled_while_running: u64,
    /// Jobs still running after the cancel period: aborted (their future
    /// dropped at its next await; a blocking job's thread is abandoned and
    /// runs to its end).
    pub aborted: u64,
    /// How far the shutdown had to go.
    pub ended_by: EndedBy,
}

impl ShutdownReport {
    /// Every job the pool accepted.
    ///
    /// # Examples
    ///
    /// See [`ShutdownReport`].
    pub fn total(&self) -> u64 {
        self.completed
            + self.panicked
            + self.cancelled_before_start
            + self.cancelled_while_running
            + self.aborted
    }
}
