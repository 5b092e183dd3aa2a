//! Errors of [`WorkerPool`](crate::WorkerPool)'s submits. Each hands the
//! job back; none needs `J: Debug`.

use std::fmt;

/// [`WorkerPool::submit`](crate::WorkerPool::submit) found the pool
/// closed (shutting down, stopped, or dropped); the job is handed back.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use acqrel_pool::WorkerPool;
///
/// let pool = WorkerPool::builder().start(|_job: u32, _shutdown| async {});
/// pool.shutdown(Duration::from_secs(1)).await;
/// let refused = pool.submit(7).await.unwrap_err();
/// assert_eq!(refused.into_inner(), 7);
/// # }
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("the worker pool is closed")]
pub struct SubmitError<J>(pub J);

impl<J> SubmitError<J> {
    /// The job that was not queued.
    pub fn into_inner(self) -> J {
        self.0
    }
}

impl<J> fmt::Debug for SubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SubmitError").finish_non_exhaustive()
    }
}

/// Why [`WorkerPool::try_submit`](crate::WorkerPool::try_submit) did not
/// queue the job; the job is handed back.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::num::NonZeroUsize;
/// use acqrel_pool::{TrySubmitError, WorkerPool};
///
/// let pool = WorkerPool::builder()
///     .queue_capacity(NonZeroUsize::MIN)
///     .start(|_job: u32, _shutdown| async {});
/// // The workers have not run yet (one thread, no await): the queue fills.
/// pool.try_submit(1).unwrap();
/// let refused = pool.try_submit(2).unwrap_err();
/// assert!(matches!(refused, TrySubmitError::Full(2)));
/// assert!(refused.is_full());
/// assert_eq!(refused.into_inner(), 2);
/// # }
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrySubmitError<J> {
    /// The queue is at capacity; retry later or use
    /// [`submit`](crate::WorkerPool::submit) to wait for room.
    #[error("the worker pool's queue is full")]
    Full(J),
    /// The pool is closed (shutting down, stopped, or dropped).
    #[error("the worker pool is closed")]
    Closed(J),
}

impl<J> TrySubmitError<J> {
    /// The job that was not queued.
    pub fn into_inner(self) -> J {
        match self {
            TrySubmitError::Full(job) | TrySubmitError::Closed(job) => job,
        }
    }

    /// Whether the queue was full (rather than the pool closed).
    pub fn is_full(&self) -> bool {
        matches!(self, TrySubmitError::Full(_))
    }

    /// Whether the pool was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySubmitError::Closed(_))
    }
}

impl<J> fmt::Debug for TrySubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.debug_tuple("Full").finish_non_exhaustive(),
            TrySubmitError::Closed(_) => f.debug_tuple("Closed").finish_non_exhaustive(),
        }
    }
}
