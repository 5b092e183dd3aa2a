//! [`Receiver`]: the async end of a subscriber's bounded queue
//! (`queue.rs` holds the queue and its protocol).

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc as Message;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::detach::Detach;
use crate::queue::{Popped, Queue};
use crate::sync::Arc;

/// What a [`Receiver`] gets: a message, or word of messages it missed.
///
/// A receiver must `match` to reach a message, so a gap under
/// [`Overflow::DropOldest`](crate::Overflow::DropOldest) cannot be skipped
/// over by accident.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_bus::{Bus, Event, Overflow};
///
/// let bus: Bus<&str> = Bus::new();
/// let mut receiver = bus.subscribe(NonZeroUsize::new(1).unwrap(), Overflow::DropOldest);
/// bus.publish("first");
/// bus.publish("second"); // evicts "first"
///
/// let mut log = Vec::new();
/// while let Ok(event) = receiver.try_recv() {
///     match event {
///         Event::Message(msg) => log.push(msg.to_string()),
///         Event::Lagged(n) => log.push(format!("missed {n}")),
///     }
/// }
/// assert_eq!(log, ["missed 1", "second"]);
/// ```
#[must_use = "an event may be a message, or the news that messages were lost"]
#[derive(Debug, PartialEq, Eq)]
pub enum Event<T> {
    /// The next message, shared with the other subscribers.
    Message(Message<T>),
    /// This many messages were evicted from a full queue under
    /// [`Overflow::DropOldest`](crate::Overflow::DropOldest) since the
    /// receiver last heard of a gap. Comes right before the first message
    /// after the gap, once per gap.
    Lagged(u64),
}

impl<T> Clone for Event<T> {
    fn clone(&self) -> Self {
        match self {
            Event::Message(msg) => Event::Message(Message::clone(msg)),
            Event::Lagged(n) => Event::Lagged(*n),
        }
    }
}

/// Why [`Receiver::recv`] returned no event.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_bus::{Bus, Overflow, RecvError};
///
/// let bus: Bus<u32> = Bus::new();
/// let mut receiver = bus.subscribe(NonZeroUsize::new(4).unwrap(), Overflow::DropOldest);
/// drop(bus);
/// let end = pollster::block_on(receiver.recv()).unwrap_err();
/// assert_eq!(end, RecvError::Closed);
/// assert_eq!(end.to_string(), "the bus is closed and the queue is drained");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RecvError {
    /// Every handle of the bus is dropped and the queue is drained: no
    /// message will come.
    #[error("the bus is closed and the queue is drained")]
    Closed,
    /// The subscriber fell behind under
    /// [`Overflow::Disconnect`](crate::Overflow::Disconnect): it was cut off
    /// the bus, and the messages queued before are drained.
    #[error("the subscriber fell behind and was cut off the bus (Overflow::Disconnect)")]
    Disconnected,
}

/// Why [`Receiver::try_recv`] returned no event.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_bus::{Bus, Overflow, TryRecvError};
///
/// let bus: Bus<u32> = Bus::new();
/// let mut receiver = bus.subscribe(NonZeroUsize::new(4).unwrap(), Overflow::DropOldest);
/// assert_eq!(receiver.try_recv().unwrap_err(), TryRecvError::Empty);
/// drop(bus);
/// assert_eq!(receiver.try_recv().unwrap_err(), TryRecvError::Closed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is queued now; a message may come later.
    #[error("no message is queued")]
    Empty,
    /// As [`RecvError::Closed`].
    #[error("the bus is closed and the queue is drained")]
    Closed,
    /// As [`RecvError::Disconnected`].
    #[error("the subscriber fell behind and was cut off the bus (Overflow::Disconnect)")]
    Disconnected,
}

/// The error a [`Receiver`]'s [`Stream`] yields, once, when the subscriber
/// was cut off under [`Overflow::Disconnect`](crate::Overflow::Disconnect)
/// (after the messages queued before it). The stream ends after it.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::pin::Pin;
/// use std::future::poll_fn;
/// use futures_core::Stream;
/// use acqrel_bus::{Bus, Disconnected, Event, Overflow};
///
/// let bus: Bus<u32> = Bus::new();
/// let mut receiver = bus.subscribe(NonZeroUsize::new(1).unwrap(), Overflow::Disconnect);
/// bus.publish(1);
/// bus.publish(2); // finds the queue full: cut off
///
/// let mut items = Vec::new();
/// pollster::block_on(async {
///     while let Some(item) = poll_fn(|cx| Pin::new(&mut receiver).poll_next(cx)).await {
///         items.push(item);
///     }
/// });
/// assert!(matches!(&items[..], [Ok(Event::Message(m)), Err(Disconnected)] if **m == 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the subscriber fell behind and was cut off the bus (Overflow::Disconnect)")]
pub struct Disconnected;

/// A receiver's counts so far ([`Receiver::stats`]).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_bus::{Bus, Overflow};
///
/// let bus: Bus<u32> = Bus::new();
/// let mut receiver = bus.subscribe(NonZeroUsize::new(2).unwrap(), Overflow::DropNewest);
/// for n in 0..5 {
///     bus.publish(n);
/// }
/// let _ = receiver.try_recv();
/// let stats = receiver.stats();
/// assert_eq!((stats.delivered, stats.dropped, stats.lagged), (1, 3, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SubscriberStats {
    /// Messages handed to the receiver ([`Event::Message`]s returned by
    /// `recv`, `try_recv` and the stream).
    pub delivered: u64,
    /// Messages the queue refused: under
    /// [`Overflow::DropNewest`](crate::Overflow::DropNewest) each one that
    /// found it full, under
    /// [`Overflow::Disconnect`](crate::Overflow::Disconnect) the one that
    /// cut the subscriber off.
    pub dropped: u64,
    /// Messages evicted under
    /// [`Overflow::DropOldest`](crate::Overflow::DropOldest) (the sum of the
    /// [`Event::Lagged`] counts, told or still to be told).
    pub lagged: u64,
}

/// The async end of a subscriber's bounded queue, from
/// [`Bus::subscribe`](crate::Bus::subscribe).
///
/// Get events with [`recv`](Self::recv) or [`try_recv`](Self::try_recv),
/// or use the receiver as a [`Stream`]. Runtime-agnostic. Each receiver has
/// its own queue: a slow one never holds up the publisher or the other
/// subscribers; what happens when its queue is full is its
/// [`Overflow`](crate::Overflow) policy.
///
/// Dropping the receiver takes the subscriber off the bus and drops the
/// messages still queued for it.
///
/// # Lagging
///
/// Under [`Overflow::DropOldest`](crate::Overflow::DropOldest) a receiver
/// that falls behind loses its oldest messages. It hears of it as an
/// [`Event::Lagged`] with the number lost, right where the gap is (before
/// the first message after it), from `recv`, `try_recv` and the stream
/// alike: a lag is never an error, and never hidden.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_bus::{Bus, Event, Overflow, RecvError};
///
/// let bus: Bus<String> = Bus::new();
/// let mut receiver = bus.subscribe(NonZeroUsize::new(64).unwrap(), Overflow::DropOldest);
/// let publisher = std::thread::spawn(move || {
///     for n in 0..3 {
///         bus.publish(format!("tick {n}"));
///     }
///     // Dropping the last handle closes the bus.
/// });
///
/// let ticks = pollster::block_on(async {
///     let mut ticks = Vec::new();
///     loop {
///         match receiver.recv().await {
///             Ok(Event::Message(msg)) => ticks.push(msg.to_string()),
///             Ok(Event::Lagged(n)) => ticks.push(format!("missed {n}")),
///             Err(RecvError::Closed) => break ticks,
///             Err(RecvError::Disconnected) => unreachable!("DropOldest never cuts off"),
///         }
///     }
/// });
/// assert_eq!(ticks, ["tick 0", "tick 1", "tick 2"]);
/// publisher.join().unwrap();
/// ```
pub struct Receiver<T> {
    queue: Arc<Queue<T>>,
    /// The message after a gap, taken from the queue with the gap's count
    /// and handed out right after it.
    after_gap: Option<Message<T>>,
    /// Messages handed out (see [`SubscriberStats::delivered`]).
    delivered: u64,
    /// Whether the stream has yielded its `Err(Disconnected)`.
    disconnect_yielded: bool,
    /// Takes the subscriber off the bus when the receiver is dropped.
    _detach: Detach,
}

impl<T> Receiver<T> {
    /// A receiver on `queue`, whose subscriber `detach` takes off the bus.
    pub(crate) fn new(queue: Arc<Queue<T>>, detach: Detach) -> Self {
        Receiver {
            queue,
            after_gap: None,
            delivered: 0,
            disconnect_yielded: false,
            _detach: detach,
        }
    }

    /// A receiver on `queue` that belongs to no bus: only for the loom
    /// model (`tests/loom_queue.rs`), which pushes to the queue itself.
    #[cfg(acqrel_loom)]
    #[doc(hidden)]
    pub fn detached(queue: Arc<Queue<T>>) -> Self {
        Self::new(queue, Detach::new(|| {}))
    }

    /// Waits for the next event: a message, or the number of messages
    /// missed right before it (see [`Lagging`](Self#lagging)).
    ///
    /// # Errors
    ///
    /// Once the queue is drained, [`RecvError::Closed`] if the bus is gone,
    /// [`RecvError::Disconnected`] if this subscriber was cut off under
    /// [`Overflow::Disconnect`](crate::Overflow::Disconnect). Every later
    /// call returns the same error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an event is taken from the queue only by the poll that
    /// returns it (a gap's count takes the message after the gap along,
    /// and the receiver keeps it for its next call), so dropping the future
    /// (say, in a `select!` whose other branch won) loses nothing: the
    /// event is there for the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use acqrel_bus::{Bus, Event, Overflow};
    ///
    /// let bus: Bus<u32> = Bus::new();
    /// let mut receiver = bus.subscribe(NonZeroUsize::new(8).unwrap(), Overflow::DropNewest);
    /// bus.publish(7);
    /// pollster::block_on(async {
    ///     match receiver.recv().await {
    ///         Ok(Event::Message(n)) => assert_eq!(*n, 7),
    ///         other => panic!("{other:?}"),
    ///     }
    /// });
    /// ```
    pub async fn recv(&mut self) -> Result<Event<T>, RecvError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Takes the next event if one is queued; never waits.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is queued now; otherwise as
    /// [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use acqrel_bus::{Bus, Event, Overflow, TryRecvError};
    ///
    /// let bus: Bus<u32> = Bus::new();
    /// let mut receiver = bus.subscribe(NonZeroUsize::new(8).unwrap(), Overflow::DropOldest);
    /// assert_eq!(receiver.try_recv().unwrap_err(), TryRecvError::Empty);
    /// bus.publish(1);
    /// assert!(matches!(receiver.try_recv(), Ok(Event::Message(n)) if *n == 1));
    /// ```
    pub fn try_recv(&mut self) -> Result<Event<T>, TryRecvError> {
        if let Some(msg) = self.after_gap.take() {
            return Ok(self.hand_out(Popped::Message(msg)));
        }
        let popped = self.queue.try_pop()?;
        Ok(self.hand_out(popped))
    }

    /// This receiver's counts so far.
    ///
    /// # Examples
    ///
    /// See [`SubscriberStats`].
    pub fn stats(&self) -> SubscriberStats {
        let (dropped, lagged) = self.queue.counts();
        SubscriberStats {
            delivered: self.delivered,
            dropped,
            lagged,
        }
    }

    /// Whether no more messages will be queued: the bus is gone, or this
    /// subscriber was cut off. Messages queued before may still be waiting
    /// to be received.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use acqrel_bus::{Bus, Event, Overflow};
    ///
    /// let bus: Bus<u32> = Bus::new();
    /// let mut receiver = bus.subscribe(NonZeroUsize::new(8).unwrap(), Overflow::DropOldest);
    /// bus.publish(1);
    /// assert!(!receiver.is_closed());
    /// drop(bus);
    /// assert!(receiver.is_closed());
    /// assert!(matches!(receiver.try_recv(), Ok(Event::Message(n)) if *n == 1));
    /// ```
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// The poll behind `recv` and the stream.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event<T>, RecvError>> {
        if let Some(msg) = self.after_gap.take() {
            return Poll::Ready(Ok(self.hand_out(Popped::Message(msg))));
        }
        self.queue
            .poll_pop(cx.waker())
            .map_ok(|popped| self.hand_out(popped))
    }

    /// Turns what was popped into the event to return: a gap's count first,
    /// keeping the message after it for the next call.
    fn hand_out(&mut self, popped: Popped<T>) -> Event<T> {
        match popped {
            Popped::Message(msg) => {
                self.delivered += 1;
                Event::Message(msg)
            }
            Popped::Lagged(missed, msg) => {
                self.after_gap = Some(msg);
                Event::Lagged(missed)
            }
        }
    }
}

/// The events of [`recv`](Receiver::recv), lag included (as
/// `Ok(Event::Lagged(n))`). A disconnection is yielded once, as
/// `Err(Disconnected)`, after the messages queued before it; the stream
/// then ends. It also ends (`None`) when the bus is gone and the queue is
/// drained.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::pin::Pin;
/// use std::future::poll_fn;
/// use futures_core::Stream;
/// use acqrel_bus::{Bus, Event, Overflow};
///
/// let bus: Bus<u32> = Bus::new();
/// let mut receiver = bus.subscribe(NonZeroUsize::new(2).unwrap(), Overflow::DropOldest);
/// for n in 0..5 {
///     bus.publish(n);
/// }
/// drop(bus);
///
/// let events = pollster::block_on(async {
///     let mut events = Vec::new();
///     while let Some(item) = poll_fn(|cx| Pin::new(&mut receiver).poll_next(cx)).await {
///         events.push(item.expect("DropOldest never cuts off"));
///     }
///     events
/// });
/// assert!(matches!(&events[..], [
///     Event::Lagged(3),
///     Event::Message(a),
///     Event::Message(b),
/// ] if **a == 3 && **b == 4));
/// ```
impl<T> Stream for Receiver<T> {
    type Item = Result<Event<T>, Disconnected>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        Poll::Ready(match this.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(event)) => Some(Ok(event)),
            Poll::Ready(Err(RecvError::Closed)) => None,
            Poll::Ready(Err(RecvError::Disconnected)) => {
                if this.disconnect_yielded {
                    None
                } else {
                    this.disconnect_yielded = true;
                    Some(Err(Disconnected))
                }
            }
        })
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Refuse later pushes and drop what is queued; `_detach`, dropped
        // after this body, then takes the subscriber off the bus's list.
        self.queue.detach();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("queue", &*self.queue)
            .field("after_gap", &self.after_gap.is_some())
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}
