//! [`Bus`]: the publisher's side, the copy-on-write subscriber list, and
//! callback subscriptions.
//!
//! # Orderings
//!
//! The subscriber list is an `acqrel_core::Snapshot<Vec<Entry<T>>>`: every
//! subscribe and unsubscribe publishes a new list (Release, inside
//! `Snapshot::update`, serialized by its writer lock); every publish loads
//! it once (Acquire, inside `Snapshot::load`) and delivers to the entries
//! of the list it loaded. A publish never waits for a subscribe or an
//! unsubscribe, nor they for it. A subscriber added during a publish is not
//! in the list that publish loaded, and is in the one the next publish
//! loads. A subscriber removed during a publish may still be in the list
//! that publish loaded: callbacks handle that with their own state word
//! (`callback.rs`), queues by refusing pushes once their receiver is gone
//! (`queue.rs`).
//!
//! The count of `Bus` handles is Relaxed on increment (a new handle comes
//! from an existing one, as `Arc`'s) and AcqRel on decrement, so that the
//! handle that closes the bus sees every publish made through the others
//! (`Arc`'s drop protocol).

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc as Message;

use acqrel_core::{Latch, Snapshot};

use crate::callback::{CallbackSink, Called};
use crate::detach::Detach;
use crate::grace::Grace;
use crate::queue::{Overflow, Pushed, Queue};
use crate::receiver::Receiver;
use crate::sync::Arc;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What one [`Bus::publish`] came to, counted over the subscribers in the
/// list it loaded.
///
/// # Examples
///
/// See [`Bus`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Callbacks that ran and returned, and receivers whose queue took the
    /// message.
    pub delivered: usize,
    /// Receivers that did not take it: a full queue under
    /// [`Overflow::DropNewest`], or one cut off by this message under
    /// [`Overflow::Disconnect`].
    pub dropped: usize,
    /// Callbacks that panicked on it (each panic caught and counted).
    pub panicked: usize,
}

/// A publish/subscribe bus whose publish is one load of the subscriber
/// list, then delivery: wait-free with respect to subscribing and
/// unsubscribing.
///
/// Replaces the guide's copy-on-write subscriber slice behind an
/// `atomic.Pointer` (`Publish` loads it and loops). The list is a
/// [`Snapshot`]: **released** by every subscribe and unsubscribe,
/// **acquired** by every publish. Messages are shared as `Arc<T>`, so `T`
/// needs no `Clone`.
///
/// Two kinds of subscribers:
///
/// - [`subscribe_fn`](Self::subscribe_fn): a callback run on the
///   publisher's thread. A panic in it is caught and counted
///   ([`Delivery::panicked`], [`CallbackStats::panicked`]); the others still
///   get the message, and the subscriber stays subscribed (it may be
///   transient; drop its [`Subscription`] to remove it).
/// - [`subscribe`](Self::subscribe): a [`Receiver`] with its own bounded
///   queue and [`Overflow`] policy.
///
/// Order: each subscriber gets the messages of one publisher in the order
/// they were published. Messages of publishers running at the same time
/// reach different subscribers in possibly different orders (each publisher
/// walks the list on its own).
///
/// Cloning a bus gives another publisher handle to it; when the last one is
/// dropped the bus is closed: receivers drain their queues and then see
/// [`RecvError::Closed`](crate::RecvError::Closed), and subscriptions see
/// [`Subscription::is_closed`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use acqrel_bus::{Bus, Event, Overflow};
///
/// let bus: Bus<String> = Bus::new();
/// let seen = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&seen);
/// let _counting = bus.subscribe_fn(move |msg| {
///     counter.fetch_add(msg.len(), Ordering::Relaxed);
/// });
/// let mut receiver = bus.subscribe(NonZeroUsize::new(16).unwrap(), Overflow::DropOldest);
///
/// let delivery = bus.publish("hello".to_string());
/// assert_eq!(delivery.delivered, 2);
/// assert_eq!(seen.load(Ordering::Relaxed), 5);
/// match receiver.try_recv() {
///     Ok(Event::Message(msg)) => assert_eq!(*msg, "hello"),
///     other => panic!("{other:?}"),
/// }
/// ```
pub struct Bus<T> {
    shared: Arc<Shared<T>>,
}

/// The state every handle and subscriber shares.
struct Shared<T> {
    subscribers: Snapshot<Vec<Entry<T>>>,
    next_id: AtomicU64,
    /// `Bus` handles alive.
    handles: AtomicUsize,
    /// Opened when the last `Bus` handle is dropped.
    closed: Arc<Latch>,
    /// What `Subscription::unsubscribe` waits for publishes with.
    grace: Grace,
}

/// One subscriber in the list.
struct Entry<T> {
    id: u64,
    sink: Sink<T>,
}

enum Sink<T> {
    Callback(Arc<CallbackSink<T>>),
    Queue(Arc<Queue<T>>),
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Entry {
            id: self.id,
            sink: match &self.sink {
                Sink::Callback(sink) => Sink::Callback(Arc::clone(sink)),
                Sink::Queue(queue) => Sink::Queue(Arc::clone(queue)),
            },
        }
    }
}

impl<T: Send + Sync + 'static> Bus<T> {
    /// A bus with no subscribers.
    ///
    /// # Examples
    ///
    /// ```
    /// let bus: acqrel_bus::Bus<u32> = acqrel_bus::Bus::new();
    /// assert_eq!(bus.len(), 0);
    /// assert_eq!(bus.publish(1).delivered, 0);
    /// ```
    pub fn new() -> Self {
        Bus {
            shared: Arc::new(Shared {
                subscribers: Snapshot::new(Vec::new()),
                next_id: AtomicU64::new(0),
                handles: AtomicUsize::new(1),
                closed: Arc::new(Latch::new()),
                grace: Grace::new(),
            }),
        }
    }

    /// Delivers `msg` to every subscriber in the list as it is now: runs
    /// each callback (on this thread) and offers it to each receiver's
    /// queue. Never waits for subscribers being added or removed.
    ///
    /// # Examples
    ///
    /// See [`Bus`].
    pub fn publish(&self, msg: T) -> Delivery {
        self.publish_shared(Message::new(msg))
    }

    /// [`publish`](Self::publish) of a message already in an `Arc`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let bus: acqrel_bus::Bus<Vec<u8>> = acqrel_bus::Bus::new();
    /// let payload = Arc::new(vec![0u8; 1024]);
    /// let kept = Arc::clone(&payload);
    /// let _sub = bus.subscribe_fn(move |msg| assert!(Arc::ptr_eq(msg, &kept)));
    /// assert_eq!(bus.publish_shared(payload).delivered, 1);
    /// ```
    pub fn publish_shared(&self, msg: Message<T>) -> Delivery {
        let mut delivery = Delivery::default();
        let mut cut_off = Vec::new();
        {
            // Entered before the list is loaded, left after the last call.
            let _pass = self.shared.grace.enter();
            let list = self.shared.subscribers.load();
            for entry in list.iter() {
                match &entry.sink {
                    Sink::Callback(sink) => match sink.call(&msg) {
                        Called::Delivered => delivery.delivered += 1,
                        Called::Panicked => delivery.panicked += 1,
                        Called::Removed => {}
                    },
                    Sink::Queue(queue) => match queue.push(Message::clone(&msg)) {
                        Pushed::Queued => delivery.delivered += 1,
                        Pushed::Dropped => delivery.dropped += 1,
                        Pushed::Disconnected => {
                            delivery.dropped += 1;
                            cut_off.push(entry.id);
                        }
                        Pushed::Gone => {}
                    },
                }
            }
        }
        if !cut_off.is_empty() {
            self.shared.remove(|entry| cut_off.contains(&entry.id));
        }
        delivery
    }

    /// Subscribes `callback`: it runs on the publisher's thread for every
    /// message published from now on, until the returned [`Subscription`]
    /// is dropped or [`unsubscribed`](Subscription::unsubscribe). It must
    /// not block: the publisher waits for it.
    ///
    /// # Examples
    ///
    /// See [`Bus`].
    pub fn subscribe_fn(
        &self,
        callback: impl Fn(&Message<T>) + Send + Sync + 'static,
    ) -> Subscription<T> {
        let sink = Arc::new(CallbackSink::new(Box::new(callback)));
        let detach = self.add(Sink::Callback(Arc::clone(&sink)));
        Subscription {
            sink,
            detach,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Subscribes a [`Receiver`] with a queue of `capacity` messages and
    /// `policy` for when it is full.
    ///
    /// # Examples
    ///
    /// See [`Bus`] and [`Receiver`].
    pub fn subscribe(&self, capacity: NonZeroUsize, policy: Overflow) -> Receiver<T> {
        let queue = Arc::new(Queue::new(capacity, policy));
        let detach = self.add(Sink::Queue(Arc::clone(&queue)));
        Receiver::new(queue, detach)
    }

    /// Subscribers in the list now.
    ///
    /// # Examples
    ///
    /// ```
    /// let bus: acqrel_bus::Bus<u32> = acqrel_bus::Bus::new();
    /// let sub = bus.subscribe_fn(|_| {});
    /// assert_eq!(bus.len(), 1);
    /// drop(sub);
    /// assert!(bus.is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.shared.subscribers.load().len()
    }

    /// Whether no subscriber is in the list.
    ///
    /// # Examples
    ///
    /// See [`len`](Self::len).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a subscriber; the returned guard takes it off again.
    fn add(&self, sink: Sink<T>) -> Detach {
        // Relaxed: ids only need to be distinct.
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry { id, sink };
        self.shared.subscribers.update(|list| {
            let mut next = Vec::with_capacity(list.len() + 1);
            next.extend(list.iter().cloned());
            next.push(entry);
            next
        });
        let shared = Arc::clone(&self.shared);
        Detach::new(move || shared.remove(|entry| entry.id == id))
    }
}

impl<T> Shared<T> {
    /// Publishes a list without the entries `gone` picks (if any).
    fn remove(&self, gone: impl Fn(&Entry<T>) -> bool) {
        let _ = self.subscribers.try_update(|list| {
            if !list.iter().any(&gone) {
                return Err(());
            }
            Ok(list.iter().filter(|entry| !gone(entry)).cloned().collect())
        });
    }
}

impl<T: Send + Sync + 'static> Default for Bus<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Bus<T> {
    /// Another publisher handle to the same bus.
    fn clone(&self) -> Self {
        // Relaxed: see the module's `# Orderings`.
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Bus {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Bus<T> {
    fn drop(&mut self) {
        // AcqRel: see the module's `# Orderings`.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // The last handle: close every queue, then tell the subscriptions.
        for entry in self.shared.subscribers.load().iter() {
            if let Sink::Queue(queue) = &entry.sink {
                queue.close();
            }
        }
        self.shared.closed.open();
        // Nothing will be published: let go of the list, so that handles
        // still alive do not keep each other's callbacks (their handles own
        // every callback and queue, so this drops only reference counts).
        self.shared.subscribers.store(Vec::new());
    }
}

impl<T> fmt::Debug for Bus<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("subscribers", &self.shared.subscribers.load().len())
            .finish_non_exhaustive()
    }
}

// ===== Subscription =====

/// Counts of a callback subscriber.
///
/// # Examples
///
/// ```
/// let bus: acqrel_bus::Bus<u32> = acqrel_bus::Bus::new();
/// let sub = bus.subscribe_fn(|n| assert!(**n < 2));
/// bus.publish(1);
/// bus.publish(5); // the assertion panics: caught and counted
/// let stats = sub.stats();
/// assert_eq!((stats.delivered, stats.panicked), (1, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackStats {
    /// Calls that returned.
    pub delivered: u64,
    /// Calls that panicked.
    pub panicked: u64,
}

/// A callback subscriber's handle. Dropping it removes the callback: no
/// publish that loads the list afterwards calls it, but a call in progress
/// on another thread may still finish (or start, from a publisher that
/// loaded the list just before). [`unsubscribe`](Self::unsubscribe) also
/// waits for those: after it returns, the callback is never called again.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// let bus: acqrel_bus::Bus<u32> = acqrel_bus::Bus::new();
/// let total = Arc::new(AtomicU32::new(0));
/// let sum = Arc::clone(&total);
/// let sub = bus.subscribe_fn(move |n| { sum.fetch_add(**n, Ordering::Relaxed); });
/// bus.publish(2);
/// sub.unsubscribe();
/// bus.publish(3);
/// assert_eq!(total.load(Ordering::Relaxed), 2);
/// ```
pub struct Subscription<T> {
    /// Declared (so dropped) before `sink`: the list update it makes drops
    /// the old list under the list's writer lock, and must not drop the
    /// last reference to the callback there. The callback, and any handle
    /// of this bus it owns (whose drop updates the list too), is dropped
    /// with `sink`, after the lock is released.
    detach: Detach,
    sink: Arc<CallbackSink<T>>,
    shared: Arc<Shared<T>>,
}

impl<T> Subscription<T> {
    /// Removes the callback and waits until every publish that may still
    /// call it has finished (but the publishes this thread is inside, when
    /// called from a callback): after this returns, it is never called
    /// again, and whatever its last call did is visible to this thread.
    ///
    /// Blocks the thread for as long as the publishes in progress take (at
    /// most two of them in a row on each publishing thread: it waits for
    /// each parity of the bus's grace period in turn, and a publish that
    /// starts during the first wait may be waited for by the second);
    /// callbacks should be short.
    ///
    /// From inside a callback of the same bus, while another thread is
    /// unsubscribing at that very moment, it cannot wait (that thread may
    /// be waiting for the publish this one is inside): it then returns once
    /// the callback is off the list, and a publish already in progress on
    /// another thread may still call the callback once.
    ///
    /// # Examples
    ///
    /// See [`Subscription`].
    pub fn unsubscribe(mut self) {
        self.sink.remove();
        self.detach.run();
        self.shared.grace.synchronize();
    }

    /// The callback's counts so far.
    ///
    /// # Examples
    ///
    /// See [`CallbackStats`].
    pub fn stats(&self) -> CallbackStats {
        let (delivered, panicked) = self.sink.counts();
        CallbackStats {
            delivered,
            panicked,
        }
    }

    /// Whether the bus is closed (its last handle dropped): no message will
    /// come.
    ///
    /// # Examples
    ///
    /// ```
    /// let bus: acqrel_bus::Bus<u32> = acqrel_bus::Bus::new();
    /// let sub = bus.subscribe_fn(|_| {});
    /// assert!(!sub.is_closed());
    /// drop(bus);
    /// assert!(sub.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_open()
    }

    /// Waits until the bus is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    ///
    /// # Examples
    ///
    /// ```
    /// # pollster::block_on(async {
    /// let bus: acqrel_bus::Bus<u32> = acqrel_bus::Bus::new();
    /// let sub = bus.subscribe_fn(|_| {});
    /// drop(bus);
    /// sub.closed().await;
    /// # });
    /// ```
    pub async fn closed(&self) {
        self.shared.closed.opened().await;
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        // No call starts after this (the list is updated by `detach`'s own
        // drop, after this body); calls in progress are not waited for.
        self.sink.remove();
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("sink", &self.sink)
            .field("closed", &self.is_closed())
            .finish()
    }
}
