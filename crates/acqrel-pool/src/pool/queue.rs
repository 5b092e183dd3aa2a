//! The pool's bounded job queue: any number of submitters, any number of
//! workers.
//!
//! # Protocol
//!
//! * **Room** is a [`Semaphore`] of `capacity` permits. A submitter takes
//!   one (waiting for it in [`submit`](JobQueue::submit), not in
//!   [`try_submit`](JobQueue::try_submit)) and forgets it; a worker that
//!   takes a job out gives one back. So the buffer never holds more than
//!   `capacity` jobs, and a submitter waits without holding any lock.
//! * **Jobs** sit in a `VecDeque` under one short lock, with the `closed`
//!   flag. The flag is checked in the critical section that would queue:
//!   a job that finds the queue closed is handed back, whatever permit it
//!   holds, so no job is queued after [`close`](JobQueue::close) returns.
//! * **Workers wait on a [`Notify`].** A worker registers interest
//!   (`Notified::enable`) *before* it looks at the buffer, and every
//!   submit calls `notify_one` after queueing; a notification with no
//!   worker waiting is kept for the next one. So a job queued after a
//!   worker's look wakes it, and a job queued before is found by the look:
//!   no lost wake-up. A worker woken and then dropped (aborted) hands its
//!   notification on to another waiter (tokio's `Notified` does this on
//!   drop).
//! * **Close** sets the flag under the lock, closes the semaphore (waiting
//!   submitters get their jobs back) and wakes every worker; workers drain
//!   what is queued and then see the end.
//! * **Nothing user-visible under the lock**: jobs are only moved; jobs
//!   taken out by [`take_queued`](JobQueue::take_queued) are dropped by
//!   the caller after unlocking.

use std::collections::VecDeque;
use std::fmt;
use std::mem;

use tokio::sync::{Notify, Semaphore, TryAcquireError};

use crate::pool::error::{SubmitError, TrySubmitError};
use crate::sync::{self, Mutex};

pub(crate) struct JobQueue<J> {
    room: Semaphore,
    state: Mutex<State<J>>,
    ready: Notify,
}

struct State<J> {
    jobs: VecDeque<J>,
    closed: bool,
}

impl<J> JobQueue<J> {
    pub(crate) fn new(capacity: usize) -> Self {
        JobQueue {
            room: Semaphore::new(capacity),
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Notify::new(),
        }
    }

    /// Queues `job`, waiting for room first.
    ///
    /// Cancel safe in this sense: the job is queued only when the future
    /// completes with `Ok`; dropped earlier, it drops the job with it.
    pub(crate) async fn submit(&self, job: J) -> Result<(), SubmitError<J>> {
        match self.room.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_closed) => return Err(SubmitError(job)),
        }
        self.queue(job).map_err(|job| SubmitError(job))
    }

    /// Queues `job` if there is room now.
    pub(crate) fn try_submit(&self, job: J) -> Result<(), TrySubmitError<J>> {
        match self.room.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits) => return Err(TrySubmitError::Full(job)),
            Err(TryAcquireError::Closed) => return Err(TrySubmitError::Closed(job)),
        }
        self.queue(job).map_err(TrySubmitError::Closed)
    }

    /// Queues `job` for a submitter holding a (forgotten) permit; hands it
    /// back if the queue closed meanwhile.
    fn queue(&self, job: J) -> Result<(), J> {
        let mut state = sync::lock(&self.state);
        if state.closed {
            // The permit is not returned: the semaphore is closed for good.
            return Err(job);
        }
        state.jobs.push_back(job);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, waiting for one; `None` once the queue is closed and
    /// drained.
    ///
    /// Cancel safe: a job is taken out only in the poll that returns it.
    pub(crate) async fn next(&self) -> Option<J> {
        loop {
            let notified = self.ready.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the look below: see the `# Protocol`.
            notified.as_mut().enable();
            {
                let mut state = sync::lock(&self.state);
                if let Some(job) = state.jobs.pop_front() {
                    let more = !state.jobs.is_empty();
                    drop(state);
                    self.room.add_permits(1);
                    if more {
                        // This worker may have consumed the one stored
                        // notification that stood for several jobs.
                        self.ready.notify_one();
                    }
                    return Some(job);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Refuses every later submit (waiting ones get their jobs back) and
    /// wakes every worker. Queued jobs stay, for the workers to drain.
    pub(crate) fn close(&self) {
        sync::lock(&self.state).closed = true;
        self.room.close();
        self.ready.notify_waiters();
    }

    /// Takes every queued job out; the caller drops them (after this
    /// returns, so with no lock held).
    pub(crate) fn take_queued(&self) -> VecDeque<J> {
        mem::take(&mut sync::lock(&self.state).jobs)
    }

    /// Jobs queued now.
    pub(crate) fn len(&self) -> usize {
        sync::lock(&self.state).jobs.len()
    }
}

impl<J> fmt::Debug for JobQueue<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = sync::lock(&self.state);
        f.debug_struct("JobQueue")
            .field("queued", &state.jobs.len())
            .field("closed", &state.closed)
            .finish_non_exhaustive()
    }
}
