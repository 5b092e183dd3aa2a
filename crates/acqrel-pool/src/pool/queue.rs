//! The pool's bounded job queue: any number of submitters, any number of
//! workers.
//!
//! # Protocol
//!
//! * **One short lock** guards the jobs (a `VecDeque` of at most
//!   `capacity`) and the `closed` flag; every decision (room or not, closed
//!   or not, a job or not) is made inside it, and nothing user-visible
//!   happens under it: jobs are only moved, and jobs taken out by
//!   [`take_queued`](JobQueue::take_queued) are dropped by the caller.
//! * **Two [`Notify`]s**, one per side: `ready` for idle workers, `room`
//!   for submitters waiting on a full queue. A side that finds nothing to
//!   do registers interest (`Notified::enable`), looks again under the
//!   lock, and only then waits; the other side notifies after every change
//!   it makes (a job queued: `ready.notify_one`; a job taken out of a full
//!   queue: `room.notify_one`), and a notification with nobody waiting is
//!   kept for the next one. So a change after the second look wakes the
//!   waiter, and a change before it is seen by the look: no lost wake-up.
//!   Only a pop from a *full* queue notifies `room` (the common pop does
//!   not pay for it), so when several pops make room for several waiting
//!   submitters, one is woken and each woken submitter that queues and
//!   still leaves room wakes the next one.
//!   A waiter woken and then dropped (a cancelled submit, an aborted
//!   worker) hands its notification on to another waiter (tokio's
//!   `Notified` does this on drop). The fast paths (room, or a job, at the
//!   first look) touch neither `Notify` on their own side.
//! * **Close** sets the flag under the lock and wakes every waiter of both
//!   sides: waiting submitters get their jobs back, workers drain what is
//!   queued and then see the end. No job is queued after
//!   [`close`](JobQueue::close) returns.

use std::collections::VecDeque;
use std::fmt;
use std::mem;

use tokio::sync::Notify;

use crate::pool::error::{SubmitError, TrySubmitError};
use crate::sync::{self, Mutex};

pub(crate) struct JobQueue<J> {
    capacity: usize,
    state: Mutex<State<J>>,
    /// Jobs queued, or closed: for idle workers.
    ready: Notify,
    /// Room made in a full queue, or closed: for waiting submitters.
    room: Notify,
}

struct State<J> {
    jobs: VecDeque<J>,
    closed: bool,
}

/// What one look at the queue gave a submitter.
enum Offered<J> {
    Queued { room_left: bool },
    Full(J),
    Closed(J),
}

/// What one look at the queue gave a worker.
enum Taken<J> {
    Job(J),
    Empty,
    Ended,
}

impl<J> JobQueue<J> {
    pub(crate) fn new(capacity: usize) -> Self {
        JobQueue {
            capacity,
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Notify::new(),
            room: Notify::new(),
        }
    }

    /// Queues `job`, waiting for room first.
    ///
    /// Cancel safe in this sense: the job is queued only when the future
    /// completes with `Ok`; dropped earlier, it drops the job with it.
    pub(crate) async fn submit(&self, mut job: J) -> Result<(), SubmitError<J>> {
        match self.offer(job) {
            Offered::Queued { .. } => return Ok(()),
            Offered::Closed(refused) => return Err(SubmitError(refused)),
            Offered::Full(refused) => job = refused,
        }
        loop {
            let notified = self.room.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the look: see the `# Protocol`.
            notified.as_mut().enable();
            match self.offer(job) {
                Offered::Queued { room_left } => {
                    if room_left {
                        // Pass it on: see the `# Protocol`.
                        self.room.notify_one();
                    }
                    return Ok(());
                }
                Offered::Closed(refused) => return Err(SubmitError(refused)),
                Offered::Full(refused) => job = refused,
            }
            notified.await;
        }
    }

    /// Queues `job` if there is room now.
    pub(crate) fn try_submit(&self, job: J) -> Result<(), TrySubmitError<J>> {
        match self.offer(job) {
            Offered::Queued { .. } => Ok(()),
            Offered::Full(job) => Err(TrySubmitError::Full(job)),
            Offered::Closed(job) => Err(TrySubmitError::Closed(job)),
        }
    }

    /// One look for a submitter: queues `job` if open and not full.
    fn offer(&self, job: J) -> Offered<J> {
        let mut state = sync::lock(&self.state);
        if state.closed {
            return Offered::Closed(job);
        }
        if state.jobs.len() >= self.capacity {
            return Offered::Full(job);
        }
        state.jobs.push_back(job);
        let room_left = state.jobs.len() < self.capacity;
        drop(state);
        self.ready.notify_one();
        Offered::Queued { room_left }
    }

    /// The next job, waiting for one; `None` once the queue is closed and
    /// drained.
    ///
    /// Cancel safe: a job is taken out only in the poll that returns it.
    pub(crate) async fn next(&self) -> Option<J> {
        loop {
            match self.take() {
                Taken::Job(job) => return Some(job),
                Taken::Ended => return None,
                Taken::Empty => {}
            }
            let notified = self.ready.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the second look: see the `# Protocol`.
            notified.as_mut().enable();
            match self.take() {
                Taken::Job(job) => return Some(job),
                Taken::Ended => return None,
                Taken::Empty => notified.await,
            }
        }
    }

    /// One look for a worker: the oldest job, if any.
    fn take(&self) -> Taken<J> {
        let mut state = sync::lock(&self.state);
        let was_full = state.jobs.len() >= self.capacity;
        match state.jobs.pop_front() {
            Some(job) => {
                drop(state);
                if was_full {
                    self.room.notify_one();
                }
                Taken::Job(job)
            }
            None if state.closed => Taken::Ended,
            None => Taken::Empty,
        }
    }

    /// Refuses every later submit (waiting ones get their jobs back) and
    /// wakes every worker. Queued jobs stay, for the workers to drain.
    pub(crate) fn close(&self) {
        sync::lock(&self.state).closed = true;
        self.room.notify_waiters();
        self.ready.notify_waiters();
    }

    /// Takes every queued job out; the caller drops them (after this
    /// returns, so with no lock held).
    pub(crate) fn take_queued(&self) -> VecDeque<J> {
        let jobs = mem::take(&mut sync::lock(&self.state).jobs);
        // Room was made: a submitter may be waiting for it (it will find
        // the queue closed, as every caller closes first).
        self.room.notify_waiters();
        jobs
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

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    /// Submitters waiting on a full queue, then room for all of them made
    /// by pops of which only the first finds the queue full: each is still
    /// woken (the first by the pop, the others passed on).
    #[tokio::test]
    async fn pops_that_make_room_for_several_waiting_submitters_wake_them_all() {
        let queue = std::sync::Arc::new(JobQueue::new(3));
        for job in 0..3 {
            assert!(queue.try_submit(job).is_ok());
        }
        let waiting: Vec<_> = (10..13)
            .map(|job| {
                let queue = std::sync::Arc::clone(&queue);
                tokio::spawn(async move { queue.submit(job).await.is_ok() })
            })
            .collect();
        tokio::task::yield_now().await; // all three wait: the queue is full
        assert!(waiting.iter().all(|task| !task.is_finished()));
        for expected in 0..3 {
            assert!(matches!(queue.take(), Taken::Job(job) if job == expected));
        }
        for task in waiting {
            assert!(task.await.unwrap());
        }
        let mut queued: Vec<_> = queue.take_queued().into_iter().collect();
        queued.sort_unstable();
        assert_eq!(queued, [10, 11, 12]);
    }

    #[tokio::test]
    async fn close_hands_back_the_jobs_of_waiting_submitters_and_ends_workers_after_the_drain() {
        let queue = std::sync::Arc::new(JobQueue::new(1));
        assert!(queue.try_submit(1).is_ok());
        let waiting = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move { queue.submit(2).await.map_err(SubmitError::into_inner) }
        });
        tokio::task::yield_now().await;
        queue.close();
        assert_eq!(waiting.await.unwrap(), Err(2));
        assert!(matches!(
            queue.try_submit(3),
            Err(TrySubmitError::Closed(3))
        ));
        assert_eq!(queue.next().await, Some(1));
        assert_eq!(queue.next().await, None);
    }
}
