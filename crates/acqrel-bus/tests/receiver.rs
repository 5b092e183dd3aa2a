//! `Receiver`: the three overflow policies with exact counts, wake-ups,
//! closing, the `Stream`, cancel safety, and per-receiver order under a
//! multi-thread stress.

#![cfg(not(acqrel_loom))]

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;

use std::future::{Future, poll_fn};
use std::num::NonZeroUsize;
use std::pin::{Pin, pin};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use acqrel_bus::{
    Bus, Disconnected, Event, Overflow, Receiver, RecvError, SubscriberStats, TryRecvError,
};
use common::{HANG_GUARD, scaled};
use futures_core::Stream;

// ===== helpers =====

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("capacity > 0")
}

fn msg(n: u64) -> Event<u64> {
    Event::Message(Arc::new(n))
}

/// `(delivered, dropped, lagged)`, comparable in one `assert_eq!`.
fn counts(stats: SubscriberStats) -> (u64, u64, u64) {
    (stats.delivered, stats.dropped, stats.lagged)
}

/// Publishes `range` and returns each publish's `(delivered, dropped)`.
fn publish_all(bus: &Bus<u64>, range: std::ops::Range<u64>) -> Vec<(usize, usize)> {
    range
        .map(|n| {
            let delivery = bus.publish(n);
            assert_eq!(delivery.panicked, 0);
            (delivery.delivered, delivery.dropped)
        })
        .collect()
}

/// Takes events with `try_recv` until it fails; returns them and the error.
fn drain(receiver: &mut Receiver<u64>) -> (Vec<Event<u64>>, TryRecvError) {
    let mut events = Vec::new();
    loop {
        match receiver.try_recv() {
            Ok(event) => events.push(event),
            Err(end) => return (events, end),
        }
    }
}

/// The stream's next item.
async fn next(receiver: &mut Receiver<u64>) -> Option<Result<Event<u64>, Disconnected>> {
    poll_fn(|cx| Pin::new(&mut *receiver).poll_next(cx)).await
}

/// A waker that reports each wake-up on a channel, to poll futures by hand
/// and see exactly when they are woken.
struct Probe {
    waker: Waker,
    woken: mpsc::Receiver<()>,
}

struct ChannelWaker(mpsc::Sender<()>);

impl Wake for ChannelWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // The probe may be gone at the end of a test: nothing to report to.
        let _ = self.0.send(());
    }
}

impl Probe {
    fn new() -> Self {
        let (tx, woken) = mpsc::channel();
        Probe {
            waker: Waker::from(Arc::new(ChannelWaker(tx))),
            woken,
        }
    }

    fn poll<F: Future>(&self, future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(&self.waker))
    }

    /// Wake-ups so far that were not counted yet.
    fn wakes(&self) -> usize {
        self.woken.try_iter().count()
    }
}

// ===== overflow policies =====

#[test]
fn drop_oldest_reports_the_gap_before_the_next_message() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(4), Overflow::DropOldest);
    // An eviction still delivers the new message.
    assert_eq!(publish_all(&bus, 0..10), vec![(1, 0); 10]);
    assert_eq!(counts(receiver.stats()), (0, 0, 6));

    let (events, end) = drain(&mut receiver);
    assert_eq!(events, [Event::Lagged(6), msg(6), msg(7), msg(8), msg(9)]);
    assert_eq!(end, TryRecvError::Empty);
    assert_eq!(counts(receiver.stats()), (4, 0, 6));
}

#[test]
fn drop_oldest_reports_each_gap_once_where_it_is() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(2), Overflow::DropOldest);
    publish_all(&bus, 0..3); // [1, 2], 0 evicted
    assert_eq!(receiver.try_recv(), Ok(Event::Lagged(1)));
    assert_eq!(receiver.try_recv(), Ok(msg(1)));
    publish_all(&bus, 3..5); // [2, 3] then [3, 4], 2 evicted
    let (events, end) = drain(&mut receiver);
    assert_eq!(events, [Event::Lagged(1), msg(3), msg(4)]);
    assert_eq!(end, TryRecvError::Empty);
    assert_eq!(counts(receiver.stats()), (3, 0, 2));
}

#[test]
fn a_gap_reported_is_not_widened_by_later_evictions() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(2), Overflow::DropOldest);
    publish_all(&bus, 0..3); // [1, 2], 0 evicted
    assert_eq!(receiver.try_recv(), Ok(Event::Lagged(1)));
    // 1 is already the receiver's: these evict 2, a gap after 1.
    publish_all(&bus, 3..5);
    let (events, end) = drain(&mut receiver);
    assert_eq!(events, [msg(1), Event::Lagged(1), msg(3), msg(4)]);
    assert_eq!(end, TryRecvError::Empty);
    assert_eq!(counts(receiver.stats()), (3, 0, 2));
}

#[test]
fn drop_newest_keeps_the_first_messages_and_counts_the_rest() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(4), Overflow::DropNewest);
    let mut expected = vec![(1, 0); 4];
    expected.extend([(0, 1); 6]);
    assert_eq!(publish_all(&bus, 0..10), expected);

    let (events, end) = drain(&mut receiver);
    assert_eq!(events, [msg(0), msg(1), msg(2), msg(3)]);
    assert_eq!(end, TryRecvError::Empty);
    assert_eq!(counts(receiver.stats()), (4, 6, 0));
    assert!(!receiver.is_closed());
}

#[test]
fn disconnect_cuts_off_a_full_subscriber_after_it_drains() {
    let bus = Bus::new();
    let mut cut = bus.subscribe(cap(4), Overflow::Disconnect);
    let mut keeper = bus.subscribe(cap(16), Overflow::Disconnect);
    assert_eq!(bus.len(), 2);

    let deliveries = publish_all(&bus, 0..10);
    // Both take 0..=3; 4 cuts `cut` off (dropped) and reaches `keeper`;
    // after that only `keeper` is on the bus.
    let mut expected = vec![(2, 0); 4];
    expected.push((1, 1));
    expected.extend([(1, 0); 5]);
    assert_eq!(deliveries, expected);
    assert_eq!(bus.len(), 1);
    assert!(cut.is_closed());
    assert!(!keeper.is_closed());

    let (events, end) = drain(&mut cut);
    assert_eq!(events, [msg(0), msg(1), msg(2), msg(3)]);
    assert_eq!(end, TryRecvError::Disconnected);
    assert_eq!(cut.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(pollster::block_on(cut.recv()), Err(RecvError::Disconnected));
    assert_eq!(counts(cut.stats()), (4, 1, 0));

    let (events, end) = drain(&mut keeper);
    assert_eq!(events, (0..10).map(msg).collect::<Vec<_>>());
    assert_eq!(end, TryRecvError::Empty);
    assert_eq!(counts(keeper.stats()), (10, 0, 0));
}

// ===== try_recv, closing, dropping =====

#[test]
fn try_recv_goes_from_empty_to_message_to_closed() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(4), Overflow::DropOldest);
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Empty));
    bus.publish(1);
    assert_eq!(receiver.try_recv(), Ok(msg(1)));
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Empty));
    assert!(!receiver.is_closed());
    drop(bus);
    assert!(receiver.is_closed());
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(counts(receiver.stats()), (1, 0, 0));
}

#[tokio::test]
async fn a_dropped_bus_lets_receivers_drain_then_see_closed() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(4), Overflow::DropOldest);
    let mut streamed = bus.subscribe(cap(4), Overflow::DropOldest);
    publish_all(&bus, 0..3);
    drop(bus);

    for n in 0..3 {
        assert_eq!(receiver.recv().await, Ok(msg(n)));
        assert_eq!(next(&mut streamed).await, Some(Ok(msg(n))));
    }
    assert_eq!(receiver.recv().await, Err(RecvError::Closed));
    assert_eq!(receiver.recv().await, Err(RecvError::Closed));
    assert_eq!(next(&mut streamed).await, None);
    assert_eq!(next(&mut streamed).await, None);
    assert_eq!(counts(streamed.stats()), (3, 0, 0));
}

#[test]
fn dropping_the_receiver_unsubscribes_it_and_releases_its_messages() {
    let bus = Bus::new();
    let receiver = bus.subscribe(cap(4), Overflow::DropOldest);
    let payload = Arc::new(7);
    assert_eq!(bus.publish_shared(Arc::clone(&payload)).delivered, 1);
    assert_eq!(Arc::strong_count(&payload), 2);
    assert_eq!(bus.len(), 1);

    drop(receiver);
    assert_eq!(Arc::strong_count(&payload), 1);
    assert_eq!(bus.len(), 0);
    assert_eq!(bus.publish(8).delivered, 0);
}

// ===== Stream =====

#[tokio::test]
async fn the_stream_yields_lag_as_an_item() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(2), Overflow::DropOldest);
    publish_all(&bus, 0..5);
    drop(bus);

    assert_eq!(next(&mut receiver).await, Some(Ok(Event::Lagged(3))));
    assert_eq!(next(&mut receiver).await, Some(Ok(msg(3))));
    assert_eq!(next(&mut receiver).await, Some(Ok(msg(4))));
    assert_eq!(next(&mut receiver).await, None);
    assert_eq!(counts(receiver.stats()), (2, 0, 3));
}

#[tokio::test]
async fn the_stream_yields_a_disconnection_once_then_ends() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(2), Overflow::Disconnect);
    publish_all(&bus, 0..3);

    assert_eq!(next(&mut receiver).await, Some(Ok(msg(0))));
    assert_eq!(next(&mut receiver).await, Some(Ok(msg(1))));
    assert_eq!(next(&mut receiver).await, Some(Err(Disconnected)));
    assert_eq!(next(&mut receiver).await, None);
    drop(bus);
    assert_eq!(next(&mut receiver).await, None);
    // `recv` still says why.
    assert_eq!(receiver.recv().await, Err(RecvError::Disconnected));
}

// ===== wake-ups and cancel safety =====

#[test]
fn a_pending_recv_is_woken_once_by_a_publish_on_another_thread() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(4), Overflow::DropNewest);
    let probe = Probe::new();
    let mut recv = pin!(receiver.recv());
    assert!(probe.poll(recv.as_mut()).is_pending());

    thread::scope(|s| s.spawn(|| bus.publish(5)).join().expect("publisher"));
    probe.woken.recv_timeout(HANG_GUARD).expect("woken");
    assert_eq!(probe.poll(recv.as_mut()), Poll::Ready(Ok(msg(5))));
    assert_eq!(probe.wakes(), 0);
}

#[test]
fn a_pending_recv_is_woken_by_closing_the_bus() {
    let bus: Bus<u64> = Bus::new();
    let mut receiver = bus.subscribe(cap(4), Overflow::DropNewest);
    let probe = Probe::new();
    let mut recv = pin!(receiver.recv());
    assert!(probe.poll(recv.as_mut()).is_pending());

    thread::spawn(move || drop(bus)).join().expect("closer");
    probe.woken.recv_timeout(HANG_GUARD).expect("woken");
    assert_eq!(
        probe.poll(recv.as_mut()),
        Poll::Ready(Err(RecvError::Closed))
    );
}

#[test]
fn a_cancelled_recv_loses_nothing() {
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(4), Overflow::DropNewest);
    let probe = Probe::new();
    {
        let mut recv = pin!(receiver.recv());
        assert!(probe.poll(recv.as_mut()).is_pending());
        bus.publish(1);
        assert_eq!(probe.wakes(), 1);
        // Dropped without the poll that would take the message.
    }
    assert_eq!(receiver.try_recv(), Ok(msg(1)));
    assert_eq!(counts(receiver.stats()), (1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_awaiting_recv_is_woken_by_publishes_from_a_std_thread() {
    let rounds = scaled(2_000);
    let bus = Bus::new();
    let mut receiver = bus.subscribe(cap(1), Overflow::DropNewest);
    let (ack, acked) = mpsc::channel();
    let task = tokio::spawn(async move {
        for n in 0..rounds {
            assert_eq!(receiver.recv().await, Ok(msg(n)));
            ack.send(n).expect("publisher waits for every ack");
        }
        assert_eq!(receiver.recv().await, Err(RecvError::Closed));
        receiver.stats()
    });
    // Ping-pong: each publish goes to a task that has taken everything, so
    // it is usually parked in `recv`, and every wake-up must arrive.
    let publisher = thread::spawn(move || {
        for n in 0..rounds {
            assert_eq!(bus.publish(n).delivered, 1);
            assert_eq!(acked.recv_timeout(HANG_GUARD), Ok(n));
        }
    });
    let stats = tokio::time::timeout(HANG_GUARD, task)
        .await
        .expect("hang guard")
        .expect("receiver task");
    publisher.join().expect("publisher");
    assert_eq!(counts(stats), (rounds, 0, 0));
}

// ===== order under stress =====

/// Everything one receiver got, until its end.
struct Received {
    policy: Overflow,
    events: Vec<Event<u64>>,
    end: RecvError,
    stats: SubscriberStats,
}

async fn receive_all(mut receiver: Receiver<u64>, policy: Overflow) -> Received {
    let mut events = Vec::new();
    loop {
        match receiver.recv().await {
            Ok(event) => events.push(event),
            Err(end) => {
                let stats = receiver.stats();
                return Received {
                    policy,
                    events,
                    end,
                    stats,
                };
            }
        }
    }
}

/// Checks that `received` is the sequence `0..published` in order, with
/// exactly the gaps its policy allows, and that its counts match.
fn check_order(received: &Received, published: u64) {
    let mut expected = 0; // the next message with no gap
    let (mut messages, mut lagged) = (0, 0);
    for (i, event) in received.events.iter().enumerate() {
        match event {
            Event::Lagged(n) => {
                assert_eq!(received.policy, Overflow::DropOldest);
                assert!(*n > 0);
                assert!(!matches!(
                    received.events.get(i + 1),
                    Some(Event::Lagged(_)) | None
                ));
                lagged += n;
                expected += n;
            }
            Event::Message(m) => {
                if received.policy == Overflow::DropNewest {
                    assert!(**m >= expected, "out of order: {m} after {expected}");
                } else {
                    assert_eq!(**m, expected);
                }
                messages += 1;
                expected = **m + 1;
            }
        }
    }
    let stats = received.stats;
    assert_eq!((stats.delivered, stats.lagged), (messages, lagged));
    match received.policy {
        Overflow::DropOldest => {
            assert_eq!((expected, stats.dropped), (published, 0));
            assert_eq!(received.end, RecvError::Closed);
        }
        Overflow::DropNewest => {
            assert_eq!(messages + stats.dropped, published);
            assert_eq!(received.end, RecvError::Closed);
        }
        Overflow::Disconnect => match received.end {
            RecvError::Closed => assert_eq!((expected, stats.dropped), (published, 0)),
            RecvError::Disconnected => {
                assert!(expected < published);
                assert_eq!(stats.dropped, 1);
            }
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_receiver_sees_one_publishers_messages_in_order() {
    let published = scaled(100_000);
    let bus = Bus::new();
    let unbounded = cap(usize::try_from(published).expect("fits"));
    let subscribers = [
        (unbounded, Overflow::DropNewest),
        (cap(8), Overflow::DropOldest),
        (cap(8), Overflow::DropNewest),
        (cap(8), Overflow::Disconnect),
    ];
    let tasks: Vec<_> = subscribers
        .iter()
        .map(|&(capacity, policy)| {
            tokio::spawn(receive_all(bus.subscribe(capacity, policy), policy))
        })
        .collect();
    let publisher = thread::spawn(move || {
        let mut dropped = 0;
        for n in 0..published {
            let delivery = bus.publish(n);
            assert!(delivery.delivered >= 1 && delivery.delivered + delivery.dropped <= 4);
            dropped += delivery.dropped as u64;
        }
        dropped
    });

    let mut received = Vec::new();
    for task in tasks {
        let got = tokio::time::timeout(HANG_GUARD, task)
            .await
            .expect("hang guard")
            .expect("receiver task");
        check_order(&got, published);
        received.push(got);
    }
    let dropped = publisher.join().expect("publisher");
    assert_eq!(
        received[0].events,
        (0..published).map(msg).collect::<Vec<_>>()
    );
    assert_eq!(
        dropped,
        received.iter().map(|r| r.stats.dropped).sum::<u64>()
    );
}

#[test]
fn a_receiver_is_debug_without_t_debug() {
    struct Opaque;
    let bus: Bus<Opaque> = Bus::new();
    let receiver = bus.subscribe(cap(3), Overflow::DropNewest);
    bus.publish(Opaque);
    let shown = format!("{receiver:?}");
    assert!(shown.starts_with("Receiver {"), "{shown}");
    assert!(shown.contains("len: 1"), "{shown}");
}
