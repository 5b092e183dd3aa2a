//! A receiver's bounded queue: any number of publishers push, one
//! [`Receiver`](crate::Receiver) pops, and the [`Overflow`] policy decides
//! what a push to a full queue does.
//!
//! # Protocol
//!
//! No atomics: one short lock (`state`) guards the buffer, the status, the
//! counters and the receiver's waker, and every decision is made inside it.
//!
//! * **No lost wake-up.** The receiver checks for a message and, finding
//!   none, registers its waker in the *same* critical section
//!   ([`Queue::poll_pop`]). A push that queues a message takes the waker in
//!   the critical section that queued it. So a push either comes before the
//!   check (the receiver sees its message) or after the registration (the
//!   push takes the waker and wakes it). [`close`](Queue::close) and a
//!   disconnection do the same.
//! * **Nothing user-visible under the lock.** The lock's holders only move
//!   `Arc`s and counters. Wakers are woken, and evicted or refused messages
//!   (whose `Drop` may be user code) are dropped, after unlocking; a waker
//!   replaced by a newer one is dropped after unlocking too.
//! * **Lag in place.** Under [`Overflow::DropOldest`] the message evicted
//!   is always the head of the buffer, the one right after the last message
//!   the receiver got; `missed` counts evictions since the receiver was last
//!   told. [`pop`](State::pop) reports it together with the head message,
//!   taken out in the same critical section ([`Popped::Lagged`]): the
//!   receiver hands out the count, then that message, so a gap that widens
//!   while the receiver is between the two is still reported once, whole.
//! * **Terminal states.** The status leaves `Open` once, to `Closed` (the
//!   bus is gone) or `Disconnected` (a push found the queue full under
//!   [`Overflow::Disconnect`]), and becomes `Detached` from any state when
//!   the receiver is gone (which also empties the buffer, so that nothing
//!   keeps messages alive). Every push out of `Open` returns
//!   [`Pushed::Gone`] and keeps nothing. The receiver drains what is
//!   queued before it sees `Closed` or `Disconnected`.

use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::task::{Poll, Waker};

use crate::receiver::{RecvError, TryRecvError};
use crate::sync::{self, Mutex};

/// What a subscriber's queue does when a message arrives and it is full.
///
/// Chosen per subscriber in [`Bus::subscribe`](crate::Bus::subscribe).
/// Whatever the policy, a full queue never makes the publisher wait.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_bus::{Bus, Event, Overflow, TryRecvError};
///
/// let bus: Bus<u32> = Bus::new();
/// let two = NonZeroUsize::new(2).unwrap();
/// let mut oldest = bus.subscribe(two, Overflow::DropOldest);
/// let mut newest = bus.subscribe(two, Overflow::DropNewest);
/// let mut cut = bus.subscribe(two, Overflow::Disconnect);
/// for n in 0..3 {
///     bus.publish(n);
/// }
///
/// // DropOldest: 0 was evicted, and the receiver is told before 1.
/// assert!(matches!(oldest.try_recv(), Ok(Event::Lagged(1))));
/// assert!(matches!(oldest.try_recv(), Ok(Event::Message(m)) if *m == 1));
/// assert!(matches!(oldest.try_recv(), Ok(Event::Message(m)) if *m == 2));
///
/// // DropNewest: 2 was refused; the receiver keeps 0 and 1.
/// assert!(matches!(newest.try_recv(), Ok(Event::Message(m)) if *m == 0));
/// assert!(matches!(newest.try_recv(), Ok(Event::Message(m)) if *m == 1));
/// assert_eq!(newest.try_recv().unwrap_err(), TryRecvError::Empty);
/// assert_eq!(newest.stats().dropped, 1);
///
/// // Disconnect: 2 cut the subscriber off; it drains 0 and 1, then is told.
/// assert!(matches!(cut.try_recv(), Ok(Event::Message(m)) if *m == 0));
/// assert!(matches!(cut.try_recv(), Ok(Event::Message(m)) if *m == 1));
/// assert_eq!(cut.try_recv().unwrap_err(), TryRecvError::Disconnected);
/// assert_eq!(bus.len(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Evict the oldest queued message to make room. The receiver is told
    /// how many it missed, in place: [`Event::Lagged`](crate::Event::Lagged) comes right before
    /// the first message after the gap. Counted in
    /// [`SubscriberStats::lagged`](crate::SubscriberStats::lagged).
    DropOldest,
    /// Refuse the new message; the queued ones stay. The receiver is not
    /// told (every message it was given arrives, in order); the refusals
    /// are counted in
    /// [`SubscriberStats::dropped`](crate::SubscriberStats::dropped).
    DropNewest,
    /// Cut the subscriber off: the message that found the queue full is
    /// refused (and counted as dropped), the subscriber is taken off the
    /// bus, and its receiver drains what was queued and then gets
    /// [`RecvError::Disconnected`].
    Disconnect,
}

/// What one [`Queue::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The message is queued (under [`Overflow::DropOldest`], possibly by
    /// evicting the oldest one).
    Queued,
    /// The queue was full under [`Overflow::DropNewest`]: the message was
    /// refused.
    Dropped,
    /// The queue was full under [`Overflow::Disconnect`]: the message was
    /// refused and this push cut the subscriber off; take it off the bus.
    Disconnected,
    /// The queue takes no more messages: its receiver is gone, it was
    /// disconnected by an earlier push, or it is closed.
    Gone,
}

/// What the receiver takes from the queue in one pop.
pub(crate) enum Popped<T> {
    /// The next message, with no gap before it.
    Message(Arc<T>),
    /// This many messages were evicted right before the message.
    Lagged(u64, Arc<T>),
}

/// A subscriber's bounded queue, shared by the publishers (through the
/// bus's list) and one [`Receiver`](crate::Receiver).
pub struct Queue<T> {
    capacity: usize,
    policy: Overflow,
    state: Mutex<State<T>>,
}

/// The queue's state, all under its lock.
struct State<T> {
    /// At most `capacity` messages, oldest first.
    buffer: VecDeque<Arc<T>>,
    /// Evictions since the receiver was last told (see the `# Protocol`).
    missed: u64,
    status: Status,
    /// The receiver's waker, registered when it found the queue empty.
    waker: Option<Waker>,
    /// Messages refused: [`Pushed::Dropped`] and [`Pushed::Disconnected`].
    dropped: u64,
    /// Messages evicted under [`Overflow::DropOldest`].
    lagged: u64,
}

/// | status         | entered by         | pushes         | the receiver, once drained |
/// |----------------|--------------------|----------------|----------------------------|
/// | `Open`         | `new`              | apply `policy` | waits                      |
/// | `Closed`       | `close`, if `Open` | `Gone`         | `Closed`                   |
/// | `Disconnected` | a push, if `Open`  | `Gone`         | `Disconnected`             |
/// | `Detached`     | `detach`, always   | `Gone`         | (gone; the buffer emptied) |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Open,
    Closed,
    Disconnected,
    Detached,
}

// ===== impl Queue =====

impl<T> Queue<T> {
    /// An open, empty queue.
    pub fn new(capacity: NonZeroUsize, policy: Overflow) -> Self {
        Queue {
            capacity: capacity.get(),
            policy,
            state: Mutex::new(State {
                // Not `with_capacity`: a large bound costs nothing until used.
                buffer: VecDeque::new(),
                missed: 0,
                status: Status::Open,
                waker: None,
                dropped: 0,
                lagged: 0,
            }),
        }
    }

    /// Offers `msg` to the queue. Called by any number of publishers at
    /// once; holds the lock only to move the message and take the waker.
    pub fn push(&self, msg: Arc<T>) -> Pushed {
        let mut state = sync::lock(&self.state);
        let (pushed, discarded) = state.offer(msg, self.capacity, self.policy);
        // Taken in the critical section that queued the message (or cut the
        // subscriber off): see the `# Protocol`.
        let waker = match pushed {
            Pushed::Queued | Pushed::Disconnected => state.waker.take(),
            Pushed::Dropped | Pushed::Gone => None,
        };
        drop(state);
        drop(discarded);
        if let Some(waker) = waker {
            waker.wake();
        }
        pushed
    }

    /// The bus is gone: the receiver drains what is queued, then sees
    /// `Closed`. Does nothing to a queue already out of `Open`.
    pub fn close(&self) {
        let mut state = sync::lock(&self.state);
        let waker = if state.status == Status::Open {
            state.status = Status::Closed;
            state.waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The receiver's non-blocking pop.
    pub(crate) fn try_pop(&self) -> Result<Popped<T>, TryRecvError> {
        sync::lock(&self.state).pop()
    }

    /// The receiver's pop: the next event, or `Pending` with `waker`
    /// registered in the same critical section that found the queue empty.
    pub(crate) fn poll_pop(&self, waker: &Waker) -> Poll<Result<Popped<T>, RecvError>> {
        let mut state = sync::lock(&self.state);
        let end = match state.pop() {
            Ok(popped) => return Poll::Ready(Ok(popped)),
            Err(TryRecvError::Closed) => RecvError::Closed,
            Err(TryRecvError::Disconnected) => RecvError::Disconnected,
            Err(TryRecvError::Empty) => {
                let stale = state.register(waker);
                drop(state);
                drop(stale);
                return Poll::Pending;
            }
        };
        Poll::Ready(Err(end))
    }

    /// `(dropped, lagged)` so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let state = sync::lock(&self.state);
        (state.dropped, state.lagged)
    }

    /// Whether no more messages will be queued (closed or disconnected).
    pub(crate) fn is_closed(&self) -> bool {
        sync::lock(&self.state).status != Status::Open
    }

    /// The receiver is gone: refuse every later push and drop what is
    /// queued (after unlocking), so that nothing keeps messages alive.
    pub(crate) fn detach(&self) {
        let mut state = sync::lock(&self.state);
        state.status = Status::Detached;
        let buffer = mem::take(&mut state.buffer);
        let waker = state.waker.take();
        drop(state);
        drop(buffer);
        drop(waker);
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = sync::lock(&self.state);
        f.debug_struct("Queue")
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .field("len", &state.buffer.len())
            .field("status", &state.status)
            .finish_non_exhaustive()
    }
}

// ===== impl State =====

impl<T> State<T> {
    /// Applies the policy to `msg`; returns what happened and the message
    /// to drop once the lock is released (evicted or refused), if any.
    fn offer(
        &mut self,
        msg: Arc<T>,
        capacity: usize,
        policy: Overflow,
    ) -> (Pushed, Option<Arc<T>>) {
        if self.status != Status::Open {
            return (Pushed::Gone, Some(msg));
        }
        if self.buffer.len() < capacity {
            self.buffer.push_back(msg);
            return (Pushed::Queued, None);
        }
        match policy {
            Overflow::DropOldest => {
                let evicted = self.buffer.pop_front();
                self.buffer.push_back(msg);
                self.missed += 1;
                self.lagged += 1;
                (Pushed::Queued, evicted)
            }
            Overflow::DropNewest => {
                self.dropped += 1;
                (Pushed::Dropped, Some(msg))
            }
            Overflow::Disconnect => {
                self.dropped += 1;
                self.status = Status::Disconnected;
                (Pushed::Disconnected, Some(msg))
            }
        }
    }

    /// The oldest message, with the lag before it if any; the end if the
    /// queue is out of `Open` and drained.
    fn pop(&mut self) -> Result<Popped<T>, TryRecvError> {
        if let Some(msg) = self.buffer.pop_front() {
            return Ok(match mem::take(&mut self.missed) {
                0 => Popped::Message(msg),
                missed => Popped::Lagged(missed, msg),
            });
        }
        Err(match self.status {
            Status::Open => TryRecvError::Empty,
            Status::Disconnected => TryRecvError::Disconnected,
            // `Detached` cannot be seen: only the receiver detaches, on drop,
            // and then it no longer pops.
            Status::Closed | Status::Detached => TryRecvError::Closed,
        })
    }

    /// Stores `waker` for the next push; returns the one it replaces, to be
    /// dropped after unlocking.
    fn register(&mut self, waker: &Waker) -> Option<Waker> {
        match &self.waker {
            Some(current) if current.will_wake(waker) => None,
            _ => self.waker.replace(waker.clone()),
        }
    }
}
