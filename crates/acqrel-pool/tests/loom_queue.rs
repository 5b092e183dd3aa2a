//! Loom models of the job queue's wake-ups (`src/pool/queue.rs`,
//! `# Protocol`), with the queue's `Notify`s replaced by the loom-aware
//! stand-in of `src/sync/notify.rs` (tokio's guarantees, built on loom's
//! mutex): a worker waiting on an empty queue is woken by the submit that
//! fills it, and a second idle worker by the take that leaves a job
//! behind; room made in a full queue reaches a waiting submitter, and is
//! passed on from one woken submitter to the next; a waiting submitter
//! whose wait is dropped just as room is passed to it hands the room on.
//! A lost wake-up shows as a loom deadlock (every thread blocked).
//!
//! Mutation check (`tests/loom_mutants.txt`): dropping the notify of a
//! submit into an empty queue, of a take that leaves jobs behind, of a
//! take from a full queue, or of a woken submitter that leaves room;
//! reading `room_left` from a load instead of the `fetch_add`; and a
//! dropped waiter that keeps its notification, each make a model fail.
#![cfg(acqrel_loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use acqrel_pool::queue::JobQueue;
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

/// A queue of `capacity` holding `jobs`, queued without waiting.
fn queue_with(capacity: usize, jobs: &[u32]) -> Arc<JobQueue<u32>> {
    let queue = Arc::new(JobQueue::new(capacity));
    for &job in jobs {
        assert!(queue.try_submit(job).is_ok());
    }
    queue
}

/// What is left in `queue`, sorted.
fn left(queue: &JobQueue<u32>) -> Vec<u32> {
    let mut jobs: Vec<_> = queue.take_queued().into_iter().collect();
    jobs.sort_unstable();
    jobs
}

#[test]
fn a_submit_into_an_empty_queue_wakes_a_waiting_worker() {
    loom::model(|| {
        let queue = queue_with(2, &[]);
        let worker = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || block_on(queue.next()))
        };
        assert!(queue.try_submit(1).is_ok());
        assert_eq!(worker.join().unwrap(), Some(1));
    });
}

#[test]
fn a_take_that_leaves_a_job_behind_wakes_another_worker() {
    loom::model(|| {
        let queue = queue_with(2, &[]);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || block_on(queue.next()))
            })
            .collect();
        // The second submit finds the queue non-empty and notifies nobody:
        // the worker that takes the first job must wake the other.
        assert!(queue.try_submit(1).is_ok());
        assert!(queue.try_submit(2).is_ok());
        let mut got: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [Some(1), Some(2)]);
    });
}

#[test]
fn room_made_in_a_full_queue_reaches_the_waiting_submitter() {
    loom::model(|| {
        let queue = queue_with(1, &[0]);
        let submitter = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || block_on(queue.submit(1)).is_ok())
        };
        assert_eq!(block_on(queue.next()), Some(0));
        assert!(submitter.join().unwrap());
        assert_eq!(left(&queue), [1]);
    });
}

#[test]
fn room_for_two_waiting_submitters_is_passed_from_one_to_the_other() {
    loom::model(|| {
        let queue = queue_with(2, &[0, 1]);
        let submitters: Vec<_> = [2, 3]
            .into_iter()
            .map(|job| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || block_on(queue.submit(job)).is_ok())
            })
            .collect();
        // Only the first take finds the queue full and notifies; the
        // submitter it wakes must pass the second room on.
        assert_eq!(block_on(queue.next()), Some(0));
        assert_eq!(block_on(queue.next()), Some(1));
        for submitter in submitters {
            assert!(submitter.join().unwrap());
        }
        assert_eq!(left(&queue), [2, 3]);
    });
}

#[test]
fn a_waiting_submit_dropped_as_room_is_passed_to_it_hands_the_room_on() {
    loom::model(|| {
        let queue = queue_with(1, &[0]);
        // Polled once (waiting, or queued at once if the take came first),
        // then dropped: a submit cancelled mid-wait.
        let cancelled = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut submit = pin!(queue.submit(1));
                let polled = submit
                    .as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()));
                matches!(polled, Poll::Ready(Ok(())))
            })
        };
        let waiting = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || block_on(queue.submit(2)).is_ok())
        };
        assert_eq!(block_on(queue.next()), Some(0));
        if cancelled.join().unwrap() {
            // Its job took the room: make room again.
            assert_eq!(block_on(queue.next()), Some(1));
        }
        assert!(waiting.join().unwrap());
        assert_eq!(left(&queue), [2]);
    });
}
