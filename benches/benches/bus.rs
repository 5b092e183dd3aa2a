//! Publish/subscribe: `acqrel_bus` beside `tokio::sync::broadcast` (the
//! channel async Rust reaches for) and `async-broadcast` (smol's broadcast
//! channel, in overflow mode so a full channel never blocks the sender).
//!
//! Every measurement is single-threaded: the bench thread publishes and, for
//! the channels and our receivers, also takes every message off every
//! receiver right after each publish. Concurrent publishers and receivers
//! on other threads are not measured here (contention beyond 2 threads is
//! unmeasured: the development machine has 2 cores, no 16-core machine).
//!
//! The payload is a `u64` sequence number, except in the `_string` groups.
//! Ours wraps each message in one `Arc` per publish and hands every
//! subscriber a clone of that `Arc` (no `T: Clone`); the channels clone the
//! payload itself for every receiver, which for a `u64` is a free copy:
//! tokio's best case. Real events carry owned data, so the `_string` groups
//! carry a 64-byte `String` instead (a fixed prefix, then the sequence number
//! in 20 zero-padded digits), built once per publish on every side alike so
//! that building it is no difference between them; the channels then clone
//! it for every receiver inside `try_recv` (an allocation and a copy, and a
//! free when the receiver drops it), while ours still shares one
//! `Arc<String>`.
//!
//! Every delivery is asserted inside the measured loop: each subscriber must
//! get each message, in publish order, with nothing dropped, lagged or
//! panicked, so a path that loses or reorders a message panics instead of
//! being measured. Each subscriber reads the sequence number the message
//! carries (a `String`'s length, prefix and 20 digits: the same work on
//! every side). After each delivery group, every subscriber's total is
//! checked against the number of messages published.
//!
//! Groups (one per scenario and subscriber count):
//!
//! - `bus/callbacks_{1,16,256}`: one iteration publishes one message to N
//!   subscribers. Ours: N `Bus::subscribe_fn` callbacks, each checking the
//!   message against its own count and bumping it (see [`callbacks`]);
//!   `Delivery` must report N delivered. Anchor: tokio's `broadcast` with N
//!   receivers, one `send` and then each receiver's `try_recv` on the same
//!   thread (where tokio does its per-receiver work: the clone and the
//!   slot's bookkeeping).
//! - `bus/receivers_{1,16,256}`: the same with N of our async `Receiver`s
//!   (capacity 64, `Overflow::DropOldest`), each drained by `try_recv` after
//!   each publish; anchors tokio's `broadcast` (as above) and async-broadcast
//!   (`try_broadcast`, then each receiver's `try_recv`).
//!
//!   Both delivery groups report nanoseconds **per delivery**: criterion
//!   gets the time of its iterations divided by N (`iter_custom`), so the
//!   per-publish cost (ours: the list's load and the message's `Arc`) is
//!   spread over the N deliveries it serves.
//! - `bus/callbacks_16_string`, `bus/receivers_16_string`: the two groups
//!   above at 16 subscribers, same sides and same per-delivery accounting,
//!   with the `String` payload. No target: the targets are about
//!   the cost per delivery, which the `u64` groups measure with the
//!   payload's clone free; a payload that must be cloned is where the
//!   designs differ (the channels clone it per receiver, ours shares one
//!   `Arc`), and these groups show by how much.
//! - `bus/subscribe_unsubscribe_{10,100,1000}`: with 10, 100 or 1,000
//!   subscribers already present, one iteration adds one subscriber and
//!   drops it. Ours `subscribe_fn` and dropping the `Subscription`: two
//!   copies of the subscriber list, so linear in the subscribers present
//!   (the copy-on-write list's price for its wait-free publish); tokio's
//!   `Sender::subscribe` and async-broadcast's `Sender::new_receiver`, each
//!   then dropping the receiver. No target: the numbers are for
//!   `docs/patterns/pubsub.md`. The subscriber count is checked after every
//!   sample, outside the timing: each side's count is a lock (the anchors')
//!   or a list load (ours), a sizeable share of the anchors' whole
//!   iteration.
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`.

use std::fmt::{self, Write as _};
use std::hint::black_box;
use std::iter;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use acqrel_bus::{Bus, Event, Overflow, Receiver, Subscription};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Subscriber counts of the delivery groups.
const SUBSCRIBERS: [usize; 3] = [1, 16, 256];

/// Subscriber count of the `String` delivery groups: the one the issue's
/// targets are set at.
const STRING_SUBSCRIBERS: usize = 16;

/// Subscribers present in the subscribe/unsubscribe groups.
const PRESENT: [usize; 3] = [10, 100, 1_000];

/// Queue capacity of every receiver, ours and the channels'. Each is drained
/// after every publish, so at most one message is ever queued.
const CAPACITY: usize = 64;

const OURS_CALLBACKS: &str = "acqrel::Bus::publish";
const OURS_RECEIVERS: &str = "acqrel::Bus::publish+Receiver::try_recv";
const TOKIO: &str = "tokio::sync::broadcast::send+try_recv";
const ASYNC_BROADCAST: &str = "async_broadcast::try_broadcast+try_recv";
const OURS_SUBSCRIBE: &str = "acqrel::Bus::subscribe_fn+drop";
const TOKIO_SUBSCRIBE: &str = "tokio::sync::broadcast::subscribe+drop";
const ASYNC_BROADCAST_SUBSCRIBE: &str = "async_broadcast::new_receiver+drop";

// ===== Delivery =====

/// A message of the delivery groups: built from its sequence number once
/// per publish, the same way on every side, and checked by every
/// subscriber it reaches.
trait Payload: Clone + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// Appended to the group ids (`bus/callbacks_16{GROUP_SUFFIX}`).
    const GROUP_SUFFIX: &'static str;

    /// The message that carries sequence number `seq`.
    fn numbered(seq: u64) -> Self;

    /// The sequence number the message carries; `None` if it is malformed.
    fn seq(&self) -> Option<u64>;
}

/// The sequence number itself: tokio's best case, its per-receiver clone is
/// a copy.
impl Payload for u64 {
    const GROUP_SUFFIX: &'static str = "";

    #[inline]
    fn numbered(seq: u64) -> Self {
        seq
    }

    #[inline]
    fn seq(&self) -> Option<u64> {
        Some(*self)
    }
}

/// An owned event of [`STRING_LEN`] bytes: [`STRING_PREFIX`], then the
/// sequence number in [`SEQ_DIGITS`] zero-padded digits.
impl Payload for String {
    const GROUP_SUFFIX: &'static str = "_string";

    #[inline]
    fn numbered(seq: u64) -> Self {
        let mut msg = String::with_capacity(STRING_LEN);
        msg.push_str(STRING_PREFIX);
        write!(msg, "{seq:0SEQ_DIGITS$}").expect("writing to a String does not fail");
        msg
    }

    /// Not `str::parse`, whose early exits and overflow checks cost more
    /// than the clone these groups are about: every digit is read and
    /// checked, with no branch until the end. Digits beyond `u64::MAX`
    /// wrap around, which `numbered` never writes.
    #[inline]
    fn seq(&self) -> Option<u64> {
        let digits = self.strip_prefix(STRING_PREFIX)?.as_bytes();
        if digits.len() != SEQ_DIGITS {
            return None;
        }
        let mut seq = 0_u64;
        let mut all_digits = true;
        for &byte in digits {
            let digit = byte.wrapping_sub(b'0');
            all_digits &= digit < 10;
            seq = seq.wrapping_mul(10).wrapping_add(u64::from(digit));
        }
        all_digits.then_some(seq)
    }
}

/// Length of a `String` payload in bytes.
const STRING_LEN: usize = 64;

/// Digits of a `String` payload's sequence number: as many as `u64::MAX`
/// has, so every sequence number takes exactly this many.
const SEQ_DIGITS: usize = u64::MAX.ilog10() as usize + 1;

/// The fixed part of a `String` payload, before its sequence number.
const STRING_PREFIX: &str = "acqrel-bus bench event, 64 bytes, sequence: ";

const _: () = assert!(STRING_PREFIX.len() + SEQ_DIGITS == STRING_LEN);

/// Measures `publish` under `id`: each iteration builds the message of the
/// next sequence number (0, 1, 2, ... across all of criterion's samples and
/// its warm-up) and has `publish` deliver it to `n` subscribers, passing it
/// the sequence number too; criterion gets the elapsed time divided by `n`,
/// so it reports time per delivery. Returns how many messages were
/// published.
fn per_delivery<P: Payload>(
    group: &mut Group<'_>,
    id: &str,
    n: usize,
    mut publish: impl FnMut(u64, P),
) -> u64 {
    let deliveries = u32::try_from(n).expect("a subscriber count fits in a u32");
    let mut next = 0;
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let first = next;
            next += iters;
            let start = Instant::now();
            for seq in first..first + iters {
                let seq = black_box(seq);
                publish(seq, P::numbered(seq));
            }
            start.elapsed() / deliveries
        });
    });
    next
}

/// Panics unless one publish to `n` subscribers delivered to all of them.
#[inline]
fn expect_delivered(delivery: acqrel_bus::Delivery, n: usize) {
    assert_eq!(
        (delivery.delivered, delivery.dropped, delivery.panicked),
        (n, 0, 0),
        "a publish did not reach every subscriber (delivered, dropped, panicked)"
    );
}

/// Ours, `n` callbacks. Each keeps the count of messages it got and checks
/// that every message carries the next sequence number: a lost, reordered
/// or malformed message panics in the callback, which the bus catches and
/// reports in `Delivery::panicked`, which [`expect_delivered`] rejects.
fn callbacks<P: Payload>(group: &mut Group<'_>, n: usize) {
    let bus: Bus<P> = Bus::new();
    let counts: Vec<Arc<AtomicU64>> = (0..n).map(|_| Arc::default()).collect();
    let subscriptions: Vec<Subscription<P>> = counts
        .iter()
        .map(|count| {
            let count = Arc::clone(count);
            bus.subscribe_fn(move |msg| {
                // Relaxed load and store, not a `fetch_add`: only the bench
                // thread publishes, so calls of this callback never overlap
                // and no increment is lost; and the anchors' receivers do no
                // atomic work of their own either. The final check below
                // reads the counts on the same thread.
                let seen = count.load(Ordering::Relaxed);
                assert_eq!(
                    P::seq(msg),
                    Some(seen),
                    "a callback missed a message or got one out of order"
                );
                // Relaxed: only the bench thread publishes (see above).
                count.store(seen + 1, Ordering::Relaxed);
            })
        })
        .collect();
    assert_eq!(bus.len(), n);
    let published = per_delivery(group, OURS_CALLBACKS, n, |_, msg: P| {
        expect_delivered(bus.publish(msg), n);
    });
    for (count, subscription) in counts.iter().zip(&subscriptions) {
        // Relaxed: see the callback.
        assert_eq!(count.load(Ordering::Relaxed), published);
        let stats = subscription.stats();
        assert_eq!((stats.delivered, stats.panicked), (published, 0));
    }
}

/// Ours, `n` receivers, each drained after every publish.
fn receivers<P: Payload>(group: &mut Group<'_>, n: usize) {
    let bus: Bus<P> = Bus::new();
    let capacity = NonZeroUsize::new(CAPACITY).expect("CAPACITY is not zero");
    let mut receivers: Vec<Receiver<P>> = (0..n)
        .map(|_| bus.subscribe(capacity, Overflow::DropOldest))
        .collect();
    assert_eq!(bus.len(), n);
    let published = per_delivery(group, OURS_RECEIVERS, n, |seq, msg: P| {
        expect_delivered(bus.publish(msg), n);
        for receiver in &mut receivers {
            match receiver.try_recv() {
                Ok(Event::Message(msg)) if P::seq(&msg) == Some(seq) => {}
                other => panic!("a receiver got {other:?}, not message {seq}"),
            }
        }
    });
    for receiver in &mut receivers {
        assert_eq!(
            receiver.try_recv(),
            Err(acqrel_bus::TryRecvError::Empty),
            "a receiver had a message left"
        );
        let stats = receiver.stats();
        assert_eq!(
            (stats.delivered, stats.dropped, stats.lagged),
            (published, 0, 0)
        );
    }
}

/// Panics unless a channel receiver's `try_recv` returned the message
/// carrying `seq` (the anchors' counterpart of ours' in-loop checks).
#[inline]
fn expect_message<P: Payload, E: fmt::Debug>(received: Result<P, E>, seq: u64) {
    match received {
        Ok(msg) if msg.seq() == Some(seq) => {}
        other => panic!("a receiver got {other:?}, not message {seq}"),
    }
}

/// tokio's `broadcast`, `n` receivers, each drained after every send.
fn tokio_broadcast<P: Payload>(group: &mut Group<'_>, n: usize) {
    let (sender, first) = tokio::sync::broadcast::channel::<P>(CAPACITY);
    let mut receivers: Vec<_> = iter::once(first)
        .chain((1..n).map(|_| sender.subscribe()))
        .collect();
    per_delivery(group, TOKIO, n, |seq, msg: P| {
        let sent = sender.send(msg).expect("every receiver is alive");
        assert_eq!(sent, n, "a send did not reach every receiver");
        for receiver in &mut receivers {
            expect_message(receiver.try_recv(), seq);
        }
    });
    for receiver in &mut receivers {
        assert_eq!(
            receiver.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty),
            "a receiver had a message left"
        );
    }
}

/// async-broadcast, overflow mode on, `n` receivers, each drained after
/// every broadcast.
fn async_broadcast<P: Payload>(group: &mut Group<'_>, n: usize) {
    let (mut sender, first) = async_broadcast::broadcast::<P>(CAPACITY);
    sender.set_overflow(true);
    let mut receivers: Vec<_> = iter::once(first)
        .chain((1..n).map(|_| sender.new_receiver()))
        .collect();
    per_delivery(group, ASYNC_BROADCAST, n, |seq, msg: P| {
        // `None`: no message was pushed out to make room.
        assert_eq!(sender.try_broadcast(msg), Ok(None));
        for receiver in &mut receivers {
            expect_message(receiver.try_recv(), seq);
        }
    });
    for receiver in &mut receivers {
        assert_eq!(
            receiver.try_recv(),
            Err(async_broadcast::TryRecvError::Empty),
            "a receiver had a message left"
        );
    }
}

/// `bus/callbacks_{n}`, with `P`'s suffix: ours against tokio.
fn callback_group<P: Payload>(c: &mut Criterion, n: usize) {
    let mut group = c.benchmark_group(format!("bus/callbacks_{n}{}", P::GROUP_SUFFIX));
    callbacks::<P>(&mut group, n);
    tokio_broadcast::<P>(&mut group, n);
    group.finish();
}

/// `bus/receivers_{n}`, with `P`'s suffix: ours against both channels.
fn receiver_group<P: Payload>(c: &mut Criterion, n: usize) {
    let mut group = c.benchmark_group(format!("bus/receivers_{n}{}", P::GROUP_SUFFIX));
    receivers::<P>(&mut group, n);
    tokio_broadcast::<P>(&mut group, n);
    async_broadcast::<P>(&mut group, n);
    group.finish();
}

fn callback_groups(c: &mut Criterion) {
    for n in SUBSCRIBERS {
        callback_group::<u64>(c, n);
    }
    callback_group::<String>(c, STRING_SUBSCRIBERS);
}

fn receiver_groups(c: &mut Criterion) {
    for n in SUBSCRIBERS {
        receiver_group::<u64>(c, n);
    }
    receiver_group::<String>(c, STRING_SUBSCRIBERS);
}

// ===== Subscribe and unsubscribe =====

/// Measures `subscribe` under `id`: one iteration adds one subscriber and drops
/// it, with `present` subscribers already there, as `count` (the side's
/// subscriber count) tells. Checked once before measuring (the new
/// subscriber is counted, then gone again) and after every sample (all
/// dropped ones are gone), outside the timing: see the module docs.
fn subscribe_drop<S>(
    group: &mut Group<'_>,
    id: &str,
    present: usize,
    count: impl Fn() -> usize,
    mut subscribe: impl FnMut() -> S,
) {
    assert_eq!(count(), present);
    let subscriber = subscribe();
    assert_eq!(count(), present + 1, "a new subscriber was not counted");
    drop(subscriber);
    assert_eq!(count(), present, "a dropped subscriber was still counted");
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                drop(black_box(subscribe()));
            }
            let elapsed = start.elapsed();
            assert_eq!(count(), present, "a dropped subscriber was still counted");
            elapsed
        });
    });
}

fn subscribe_unsubscribe_groups(c: &mut Criterion) {
    for present in PRESENT {
        let mut group = c.benchmark_group(format!("bus/subscribe_unsubscribe_{present}"));

        let bus: Bus<u64> = Bus::new();
        let _ours: Vec<Subscription<u64>> =
            (0..present).map(|_| bus.subscribe_fn(|_| {})).collect();
        subscribe_drop(
            &mut group,
            OURS_SUBSCRIBE,
            present,
            || bus.len(),
            || bus.subscribe_fn(|_| {}),
        );

        let (sender, first) = tokio::sync::broadcast::channel::<u64>(CAPACITY);
        let _tokio: Vec<_> = iter::once(first)
            .chain((1..present).map(|_| sender.subscribe()))
            .collect();
        subscribe_drop(
            &mut group,
            TOKIO_SUBSCRIBE,
            present,
            || sender.receiver_count(),
            || sender.subscribe(),
        );

        let (sender, first) = async_broadcast::broadcast::<u64>(CAPACITY);
        let _async_broadcast: Vec<_> = iter::once(first)
            .chain((1..present).map(|_| sender.new_receiver()))
            .collect();
        subscribe_drop(
            &mut group,
            ASYNC_BROADCAST_SUBSCRIBE,
            present,
            || sender.receiver_count(),
            || sender.new_receiver(),
        );

        group.finish();
    }
}

criterion_group!(
    benches,
    callback_groups,
    receiver_groups,
    subscribe_unsubscribe_groups
);
criterion_main!(benches);
