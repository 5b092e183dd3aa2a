//! Loom model of a receiver's queue (`src/queue.rs`, `# Protocol`): a
//! publisher pushing (and closing) while the receiver waits in `recv`.
//! Every pushed message is received once, in order, with each gap reported
//! in place; no wake-up is lost (loom reports a deadlock when the receiver
//! waits and nothing is left to wake it); the receiver drains what was
//! queued before it sees the end; a dropped receiver keeps no message alive.
//!
//! The queue has no atomics: what the model checks is that every decision
//! is made in the right critical section. Mutation check
//! (`tests/loom_mutants.txt`): registering the waker in a critical section
//! of its own, waking before the message is queued, not waking on a push
//! or on close, reporting the end before the queue is drained, and a
//! dropped receiver that leaves its messages queued or still accepts
//! pushes each make a model fail.
#![cfg(acqrel_loom)]

use std::num::NonZeroUsize;
use std::sync::Arc as Message;

use acqrel_bus::queue::{Pushed, Queue};
use acqrel_bus::{Event, Overflow, Receiver, RecvError, TryRecvError};
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

fn queue(capacity: usize, policy: Overflow) -> Arc<Queue<u32>> {
    let capacity = NonZeroUsize::new(capacity).expect("capacity > 0");
    Arc::new(Queue::new(capacity, policy))
}

fn msg(n: u32) -> Event<u32> {
    Event::Message(Message::new(n))
}

/// Receives until `recv` fails; returns the events and the error.
fn recv_all(receiver: &mut Receiver<u32>) -> (Vec<Event<u32>>, RecvError) {
    block_on(async {
        let mut events = Vec::new();
        loop {
            match receiver.recv().await {
                Ok(event) => events.push(event),
                Err(end) => return (events, end),
            }
        }
    })
}

/// Runs `publish` on another thread against a queue of `capacity` under
/// `policy` while the model's thread receives until the end; returns what
/// was received and what `publish` returned.
fn race<R: Send + 'static>(
    capacity: usize,
    policy: Overflow,
    publish: fn(&Queue<u32>) -> R,
) -> ((Vec<Event<u32>>, RecvError), R) {
    let queue = queue(capacity, policy);
    let mut receiver = Receiver::detached(Arc::clone(&queue));
    let publisher = thread::spawn(move || publish(&queue));
    let received = recv_all(&mut receiver);
    (received, publisher.join().expect("publisher"))
}

fn push(queue: &Queue<u32>, n: u32) -> Pushed {
    queue.push(Message::new(n))
}

/// Pushes `values` on another thread into a queue with room for them all
/// while the model's thread receives them one `recv` at a time.
fn pushes_are_received(values: &'static [u32]) {
    loom::model(move || {
        let queue = queue(values.len(), Overflow::DropNewest);
        let mut receiver = Receiver::detached(Arc::clone(&queue));
        let publisher = thread::spawn(move || {
            let pushed: Vec<_> = values.iter().map(|&n| push(&queue, n)).collect();
            pushed
        });
        for &n in values {
            assert_eq!(block_on(receiver.recv()), Ok(msg(n)));
        }
        assert_eq!(
            publisher.join().unwrap(),
            vec![Pushed::Queued; values.len()]
        );
    });
}

#[test]
fn a_push_wakes_a_waiting_receiver() {
    pushes_are_received(&[1]);
}

#[test]
fn a_waiting_receiver_gets_every_push_in_order() {
    pushes_are_received(&[1, 2]);
}

#[test]
fn a_close_racing_recv_is_seen_after_draining() {
    loom::model(|| {
        let (received, pushed) = race(2, Overflow::DropNewest, |queue| {
            let pushed = push(queue, 1);
            queue.close();
            pushed
        });
        assert_eq!(pushed, Pushed::Queued);
        assert_eq!(received, (vec![msg(1)], RecvError::Closed));
    });
}

#[test]
fn a_close_racing_a_push_keeps_exactly_what_it_accepted() {
    loom::model(|| {
        let queue = queue(2, Overflow::DropNewest);
        let mut receiver = Receiver::detached(Arc::clone(&queue));
        let pusher = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || push(&queue, 1))
        };
        let closer = thread::spawn(move || queue.close());
        let (events, end) = recv_all(&mut receiver);
        closer.join().unwrap();
        let expected = match pusher.join().unwrap() {
            Pushed::Queued => vec![msg(1)],
            Pushed::Gone => vec![],
            other => panic!("{other:?}"),
        };
        assert_eq!((events, end), (expected, RecvError::Closed));
    });
}

#[test]
fn each_gap_is_reported_once_right_before_the_message_after_it() {
    loom::model(|| {
        let queue = queue(1, Overflow::DropOldest);
        let mut receiver = Receiver::detached(Arc::clone(&queue));
        let publisher = thread::spawn(move || [1, 2, 3].map(|n| push(&queue, n)));
        let events = block_on(async {
            let mut events = Vec::new();
            while events.last() != Some(&msg(3)) {
                events.push(receiver.recv().await.expect("open"));
            }
            events
        });
        assert_eq!(publisher.join().unwrap(), [Pushed::Queued; 3]);
        // Replay: each message follows the last one or a gap of the right
        // size, and a gap is always followed by a message.
        let (mut next, mut lagged, mut after_gap) = (1, 0, false);
        for event in &events {
            match event {
                Event::Lagged(n) => {
                    assert!(!after_gap, "{events:?}");
                    (next, lagged, after_gap) = (next + n, lagged + n, true);
                }
                Event::Message(m) => {
                    assert_eq!(u64::from(**m), next, "{events:?}");
                    (next, after_gap) = (next + 1, false);
                }
            }
        }
        assert_eq!(receiver.stats().lagged, lagged);
        assert_eq!(receiver.try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn a_disconnection_is_seen_after_draining() {
    loom::model(|| {
        let (received, pushed) = race(1, Overflow::Disconnect, |queue| {
            let pushed = [push(queue, 1), push(queue, 2)];
            queue.close();
            pushed
        });
        assert_eq!(pushed[0], Pushed::Queued);
        match pushed[1] {
            Pushed::Queued => assert_eq!(received, (vec![msg(1), msg(2)], RecvError::Closed)),
            Pushed::Disconnected => {
                assert_eq!(received, (vec![msg(1)], RecvError::Disconnected));
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_dropped_receiver_keeps_no_message_alive() {
    loom::model(|| {
        let queue = queue(2, Overflow::DropNewest);
        let receiver = Receiver::detached(Arc::clone(&queue));
        let publisher = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let payload = Message::new(1);
                let pushed = queue.push(Message::clone(&payload));
                (pushed, payload)
            })
        };
        drop(receiver);
        let (pushed, payload) = publisher.join().unwrap();
        assert!(
            matches!(pushed, Pushed::Queued | Pushed::Gone),
            "{pushed:?}"
        );
        // `queue` stands for the bus's list, still holding the queue.
        assert_eq!(Message::strong_count(&payload), 1);
        assert_eq!(push(&queue, 2), Pushed::Gone);
    });
}
