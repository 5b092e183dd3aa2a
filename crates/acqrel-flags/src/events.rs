//! Change events (feature `events`): which flag keys each new generation of
//! a [`FlagStore`] added, changed and removed, published through an
//! `acqrel-bus` bus.
//!
//! Subscribe with [`FlagStore::subscribe`] (a [`Receiver`] with its own
//! bounded queue and [`Overflow`] policy) or [`FlagStore::subscribe_fn`] (a
//! callback). Each event is a [`FlagsChanged`]. What a subscriber can rely
//! on:
//!
//! - **Order.** Every subscriber sees events in increasing generation
//!   order, whatever threads write to the store at the same time.
//! - **Completeness.** Every generation committed after the subscription
//!   was made (and before it is dropped) that added, changed or removed a
//!   flag, or changed the flag set's own metadata, is published to it
//!   once. A generation that changed nothing (an
//!   `apply` that put identical definitions back, or removed absent keys)
//!   publishes nothing, so a subscriber may see gaps in the generation
//!   numbers. A receiver may still lose events to its own [`Overflow`]
//!   policy (under [`Overflow::DropOldest`] it is told, with
//!   [`Event::Lagged`]).
//! - **Where callbacks run.** On a thread that wrote to the store, after
//!   its write, with no lock of the store held: a callback may read the
//!   store, and even write to it (its event comes after the current one).
//!   A callback must not block for long: the writer running it waits for
//!   it, and so do the events behind it.
//! - **When.** A lone writer has published its event when
//!   [`apply`](FlagStore::apply) or [`replace`](FlagStore::replace)
//!   returns. When writers overlap, a writer may publish the others' events
//!   as well as its own, and may return before its own event is published
//!   by another writer (which publishes it before it returns).
//!
//! # Order without callbacks under a lock
//!
//! Writers of the store are serialized by its `Snapshot`'s writer lock, so
//! generations are committed in order. Publishing under that lock would
//! keep the order, but would run callbacks (the bus calls them on the
//! publisher's thread) with the lock held, stalling every writer behind a
//! slow callback. Publishing after the lock, each writer for itself, would
//! let the writer of generation 6 publish before the writer of generation
//! 5. Making each writer wait for its turn (a ticket lock around the
//! publish) is a lock held across callbacks again.
//!
//! Instead, publishing is *combined*:
//!
//! 1. Under the writer lock, as the last step of its update, a writer
//!    reserves a slot at the back of a queue (a push under the queue's
//!    small mutex; no user code runs under it). Slots are thus queued in
//!    generation order.
//! 2. With the writer lock released, the writer computes its
//!    [`FlagsChanged`] (skipped when nobody is subscribed) and fills its
//!    slot.
//! 3. Then, if no thread is draining the queue, it becomes the drainer: it
//!    pops ready slots from the front and publishes each with the queue's
//!    mutex released, until the front slot is still being computed (its
//!    writer will drain when it fills it) or the queue is empty. A writer
//!    that finds a drainer at work leaves its filled slot to it.
//!
//! Whether to drain and whether to stop draining are both decided under
//! the queue's mutex, so a filled slot is never left behind: either the
//! drainer sees it before it stops, or its writer sees no drainer and
//! drains. One drainer at a time, the role handed over through the mutex,
//! makes the publishes one sequence: each subscriber sees them in
//! generation order, as if one thread had published them all. A slot whose
//! writer never fills it (it panicked between reserving and filling) is
//! filled empty when its ticket is dropped, so the queue never stalls.
//!
//! # Examples
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use acqrel_flags::{Change, FlagSet, FlagStore};
//!
//! let store = FlagStore::new();
//! let log = Arc::new(Mutex::new(Vec::new()));
//! let sink = Arc::clone(&log);
//! let _subscription = store.subscribe_fn(move |change| {
//!     sink.lock().unwrap().push((change.generation(), change.added().to_vec()));
//! });
//!
//! let (set, _) = FlagSet::parse(r#"{"flags": {"beta": {"state": "ENABLED", "variants": {"on": true}}}}"#)?;
//! store.replace(set.clone());
//! store.replace(set); // the same flags: nothing to tell
//! store.apply([Change::Remove("beta".to_owned())]);
//! assert_eq!(*log.lock().unwrap(), [(1, vec!["beta".to_owned()]), (3, vec![])]);
//! # Ok::<(), acqrel_flags::LoadError>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroUsize;
// Flags and messages are shared data, not synchronization: std `Arc`s in
// every build (the store's map and the bus's messages hold them).
use std::sync::Arc;

use acqrel_bus::Bus;
pub use acqrel_bus::{Event, Overflow, Receiver, RecvError, Subscription, TryRecvError};

use crate::FlagStore;
use crate::store::FlagMap;
use crate::sync::{self, Mutex, MutexGuard};

// ===== FlagsChanged =====

/// What one generation of a [`FlagStore`] changed: the
/// keys of the flags it added, changed and removed, each list sorted.
///
/// A flag counts as changed when its definition differs from the previous
/// generation's (state, variants, default variant, targeting or metadata);
/// putting an identical definition again changes nothing. A generation
/// that changed no flag and not the flag set's metadata
/// ([`metadata_changed`](Self::metadata_changed)) publishes no event, so
/// the generations a subscriber sees may have gaps; they always increase.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_flags::events::{Event, Overflow};
/// use acqrel_flags::{FlagSet, FlagStore};
///
/// let (set, _) = FlagSet::parse(r#"{"flags": {
///     "a": {"state": "ENABLED", "variants": {"on": true}},
///     "b": {"state": "ENABLED", "variants": {"on": true}}
/// }}"#)?;
/// let store = FlagStore::from_set(set);
/// let mut events = store.subscribe(NonZeroUsize::new(16).unwrap(), Overflow::DropOldest);
///
/// let (next, _) = FlagSet::parse(r#"{"flags": {
///     "b": {"state": "DISABLED", "variants": {"on": true}},
///     "c": {"state": "ENABLED", "variants": {"on": true}}
/// }}"#)?;
/// let generation = store.replace(next);
///
/// let Ok(Event::Message(change)) = events.try_recv() else { panic!("no event") };
/// assert_eq!(change.generation(), generation);
/// assert_eq!(change.added(), ["c"]);
/// assert_eq!(change.changed(), ["b"]);
/// assert_eq!(change.removed(), ["a"]);
/// # Ok::<(), acqrel_flags::LoadError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlagsChanged {
    generation: u64,
    added: Vec<String>,
    changed: Vec<String>,
    removed: Vec<String>,
    metadata_changed: bool,
}

impl FlagsChanged {
    /// The store generation that made these changes (as returned by
    /// [`apply`](crate::FlagStore::apply) or
    /// [`replace`](crate::FlagStore::replace), and as
    /// [`Flags::generation`](crate::Flags::generation) of the snapshots
    /// that have them).
    ///
    /// # Examples
    ///
    /// See [`FlagsChanged`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Keys of the flags this generation added, sorted.
    ///
    /// # Examples
    ///
    /// See [`FlagsChanged`].
    pub fn added(&self) -> &[String] {
        &self.added
    }

    /// Keys of the flags whose definition this generation changed, sorted.
    ///
    /// # Examples
    ///
    /// See [`FlagsChanged`].
    pub fn changed(&self) -> &[String] {
        &self.changed
    }

    /// Keys of the flags this generation removed, sorted.
    ///
    /// # Examples
    ///
    /// See [`FlagsChanged`].
    pub fn removed(&self) -> &[String] {
        &self.removed
    }

    /// Whether the generation changed the flag set's own metadata (the
    /// top-level `metadata` of a [`replace`](crate::FlagStore::replace)),
    /// which a key naming no flag resolves with. A generation that changed
    /// only that publishes an event with empty key lists.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use acqrel_flags::events::{Event, Overflow};
    /// use acqrel_flags::{FlagSet, FlagStore};
    ///
    /// let store = FlagStore::from_set(FlagSet::parse(r#"{"metadata": {"v": "1"}, "flags": {}}"#)?.0);
    /// let mut events = store.subscribe(NonZeroUsize::MIN, Overflow::DropOldest);
    /// store.replace(FlagSet::parse(r#"{"metadata": {"v": "2"}, "flags": {}}"#)?.0);
    /// let Ok(Event::Message(change)) = events.try_recv() else { panic!("no event") };
    /// assert!(change.metadata_changed());
    /// assert!(change.added().is_empty() && change.changed().is_empty() && change.removed().is_empty());
    /// # Ok::<(), acqrel_flags::LoadError>(())
    /// ```
    pub fn metadata_changed(&self) -> bool {
        self.metadata_changed
    }

    /// Whether this generation added, changed or removed `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{Change, FlagSet, FlagStore};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let store = FlagStore::new();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let _sub = store.subscribe_fn(move |change| {
    ///     log.lock().unwrap().push(change.touches("beta"));
    /// });
    /// let (set, _) = FlagSet::parse(r#"{"flags": {"beta": {"state": "ENABLED", "variants": {"on": true}}}}"#)?;
    /// store.replace(set);
    /// store.apply([Change::Remove("beta".to_owned())]);
    /// assert_eq!(*seen.lock().unwrap(), [true, true]);
    /// # Ok::<(), acqrel_flags::LoadError>(())
    /// ```
    pub fn touches(&self, key: &str) -> bool {
        let has = |keys: &[String]| keys.binary_search_by(|k| k.as_str().cmp(key)).is_ok();
        has(&self.added) || has(&self.changed) || has(&self.removed)
    }
}

/// What changed from `old` to `new`, as generation `generation`: `None`
/// when no flag was added, changed or removed and the flag set's metadata
/// stayed (`metadata_changed` false).
///
/// Walks only the parts of the two trees that are not shared (imbl's
/// `OrdMap::diff`), so after an `apply` of `k` changes to `n` flags it
/// costs about `O(k log n)` comparisons, not `O(n)`. A flag counts as
/// changed when its definition is not equal (two `Arc`s to one flag are
/// equal; JSON values hold no NaN, so equality is reflexive).
pub(crate) fn diff(
    old: &FlagMap,
    new: &FlagMap,
    metadata_changed: bool,
    generation: u64,
) -> Option<FlagsChanged> {
    let mut change = FlagsChanged {
        generation,
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        metadata_changed,
    };
    // In key order, so each list comes out sorted. The iterator reports an
    // update only for unequal values, comparing the flags themselves.
    for item in old.diff(new) {
        match item {
            imbl::ordmap::DiffItem::Add(key, _) => change.added.push(key.clone()),
            imbl::ordmap::DiffItem::Update {
                old: (key, before),
                new: (_, after),
            } => {
                if !Arc::ptr_eq(before, after) && **before != **after {
                    change.changed.push(key.clone());
                }
            }
            imbl::ordmap::DiffItem::Remove(key, _) => change.removed.push(key.clone()),
        }
    }
    let nothing = change.added.is_empty()
        && change.changed.is_empty()
        && change.removed.is_empty()
        && !change.metadata_changed;
    (!nothing).then_some(change)
}

// ===== impl FlagStore =====

/// Subscribing to a store's change events (feature `events`).
impl FlagStore {
    /// Subscribes a [`Receiver`] of the store's change events, with a queue
    /// of `capacity` events and `policy` for when it is full. It gets the
    /// events of the generations committed from now on, in generation order
    /// (see the [module's guarantees](crate::events)); dropping it
    /// unsubscribes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use acqrel_flags::events::{Event, Overflow};
    /// use acqrel_flags::{Change, FlagSet, FlagStore};
    ///
    /// let store = FlagStore::new();
    /// let mut events = store.subscribe(NonZeroUsize::new(1).unwrap(), Overflow::DropOldest);
    /// for n in 0..3 {
    ///     let json = format!(r#"{{"flags": {{"f{n}": {{"state": "ENABLED", "variants": {{"on": true}}}}}}}}"#);
    ///     store.apply(FlagSet::parse(&json)?.0.into_iter().map(Change::Put));
    /// }
    /// // A queue of one: the first two were dropped, and the receiver is told.
    /// assert!(matches!(events.try_recv(), Ok(Event::Lagged(2))));
    /// let Ok(Event::Message(last)) = events.try_recv() else { panic!() };
    /// assert_eq!((last.generation(), last.added()), (3, &["f2".to_owned()][..]));
    /// # Ok::<(), acqrel_flags::LoadError>(())
    /// ```
    pub fn subscribe(&self, capacity: NonZeroUsize, policy: Overflow) -> Receiver<FlagsChanged> {
        self.events().bus.subscribe(capacity, policy)
    }

    /// Subscribes `callback` to the store's change events: it runs for each
    /// generation committed from now on, in generation order, on a thread
    /// writing to the store, with no lock of the store held (see the
    /// [module's guarantees](crate::events)). A panic in it is caught and
    /// counted ([`Subscription::stats`]). Dropping the [`Subscription`]
    /// unsubscribes; [`Subscription::unsubscribe`] also waits for a call
    /// under way.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use acqrel_flags::{Change, FlagSet, FlagStore};
    ///
    /// let (set, _) = FlagSet::parse(r#"{"flags": {"old": {"state": "ENABLED", "variants": {"on": true}}}}"#)?;
    /// let store = FlagStore::from_set(set);
    /// let removed = Arc::new(AtomicUsize::new(0));
    /// let count = Arc::clone(&removed);
    /// let subscription = store.subscribe_fn(move |change| {
    ///     // Relaxed: a lone writer runs the callback on its own thread
    ///     // before `apply` returns, so the load below is ordered after it.
    ///     count.fetch_add(change.removed().len(), Ordering::Relaxed);
    /// });
    /// store.apply([Change::Remove("absent".to_owned())]); // changes nothing: no event
    /// store.apply([Change::Remove("old".to_owned())]);
    /// assert_eq!(subscription.stats().delivered, 1);
    /// assert_eq!(removed.load(Ordering::Relaxed), 1);
    /// # Ok::<(), acqrel_flags::LoadError>(())
    /// ```
    pub fn subscribe_fn(
        &self,
        callback: impl Fn(&Arc<FlagsChanged>) + Send + Sync + 'static,
    ) -> Subscription<FlagsChanged> {
        self.events().bus.subscribe_fn(callback)
    }

    /// How many receivers and callbacks are subscribed now.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = acqrel_flags::FlagStore::new();
    /// let subscription = store.subscribe_fn(|_| {});
    /// assert_eq!(store.subscribers(), 1);
    /// drop(subscription);
    /// assert_eq!(store.subscribers(), 0);
    /// ```
    pub fn subscribers(&self) -> usize {
        self.events().bus.len()
    }
}

// ===== Events =====

/// A store's change events: the bus, and the queue that puts publishes in
/// generation order (see the module's docs).
pub(crate) struct Events {
    bus: Bus<FlagsChanged>,
    order: Mutex<Order>,
}

/// The publish queue, under [`Events::order`]'s mutex.
struct Order {
    /// Reserved slots not yet published, oldest (lowest generation) first.
    slots: VecDeque<Slot>,
    /// The ticket number of `slots[0]` (of the next slot reserved, when
    /// `slots` is empty).
    head: u64,
    /// Whether a thread is publishing from the front of `slots`. Set and
    /// cleared only under the mutex, together with the check of the front
    /// slot that decides it.
    draining: bool,
}

impl Order {
    /// Takes the front slot if it is ready, with what it publishes.
    fn pop_ready(&mut self) -> Option<Option<FlagsChanged>> {
        if !matches!(self.slots.front(), Some(Slot::Ready(_))) {
            return None;
        }
        let Some(Slot::Ready(change)) = self.slots.pop_front() else {
            return None;
        };
        self.head += 1;
        Some(change)
    }
}

/// One reserved place in the publish order.
enum Slot {
    /// Its writer has committed and is computing the change.
    Pending,
    /// Ready to publish; `None` when there is nothing to publish (nothing
    /// changed, nobody was subscribed, or the writer gave up).
    Ready(Option<FlagsChanged>),
}

impl Events {
    /// No subscribers, nothing queued.
    pub(crate) fn new() -> Self {
        Events {
            bus: Bus::new(),
            order: Mutex::new(Order {
                slots: VecDeque::new(),
                head: 0,
                draining: false,
            }),
        }
    }

    /// Reserves the next place in the publish order, for the change from
    /// `old` to `new`. Call it under the store's writer lock, as the last
    /// step of an update that will be committed, so that places are
    /// reserved in generation order; then, with the lock released,
    /// [`Ticket::publish`] with the generation committed. Takes the queue's
    /// mutex for a push; runs no user code.
    pub(crate) fn reserve(&self, old: FlagMap, new: FlagMap, metadata_changed: bool) -> Ticket<'_> {
        let mut order = sync::lock(&self.order);
        order.slots.push_back(Slot::Pending);
        let id = order.head + order.slots.len() as u64 - 1;
        Ticket {
            events: self,
            id: Some(id),
            old,
            new,
            metadata_changed,
        }
    }

    /// Fills slot `id` with `change`, then drains the queue unless another
    /// thread is draining it.
    fn fill(&self, id: u64, change: Option<FlagsChanged>) {
        let mut order = sync::lock(&self.order);
        // A slot leaves the queue only once filled, and only its ticket
        // fills it: `id` is still in the queue.
        let index = usize::try_from(id - order.head).ok();
        if let Some(slot) = index.and_then(|index| order.slots.get_mut(index)) {
            *slot = Slot::Ready(change);
        }
        if order.draining {
            // The drainer re-checks the front under this mutex before it
            // stops, after this unlock: it will publish this slot.
            return;
        }
        order.draining = true;
        self.drain(order);
    }

    /// Publishes ready slots from the front, the mutex released around each
    /// publish, until the front slot is pending or the queue is empty.
    /// `order` is locked, with `draining` set by this thread.
    fn drain<'a>(&'a self, mut order: MutexGuard<'a, Order>) {
        // Clears `draining` if a publish unwinds (the bus catches panics of
        // callbacks, so only a bug of ours could get here), so that later
        // writers still drain.
        let guard = StopDraining(&self.order);
        // Stops at a pending front slot (its writer drains when it fills
        // it, finding `draining` cleared) or an empty queue.
        while let Some(change) = order.pop_ready() {
            if let Some(change) = change {
                drop(order);
                // Callbacks run here, on this thread, with no lock held.
                self.bus.publish(change);
                order = sync::lock(&self.order);
            }
        }
        // Stopping is decided under the same hold of the mutex that found
        // nothing ready: a writer filling its slot after this unlock finds
        // `draining` cleared and drains itself.
        order.draining = false;
        drop(order);
        std::mem::forget(guard);
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let order = sync::lock(&self.order);
        f.debug_struct("Events")
            .field("subscribers", &self.bus.len())
            .field("queued", &order.slots.len())
            .finish_non_exhaustive()
    }
}

/// Clears [`Order::draining`] when dropped (only while unwinding).
struct StopDraining<'a>(&'a Mutex<Order>);

impl Drop for StopDraining<'_> {
    fn drop(&mut self) {
        sync::lock(self.0).draining = false;
    }
}

// ===== Ticket =====

/// A place in the publish order, from [`Events::reserve`]: publish the
/// change through it once the generation is committed and the writer lock
/// released. Dropped unpublished, it gives its place up (nothing is
/// published for it), so later generations are not held back.
pub(crate) struct Ticket<'a> {
    events: &'a Events,
    /// `None` once published.
    id: Option<u64>,
    old: FlagMap,
    new: FlagMap,
    /// Whether the flag set's own metadata changed (decided under the
    /// writer lock, where both generations are at hand).
    metadata_changed: bool,
}

impl Ticket<'_> {
    /// Publishes what changed between the two maps as `generation` (the one
    /// the update committed), in generation order; nothing when nothing
    /// changed or nobody is subscribed. May also publish other writers'
    /// events, and may leave this one to a thread already publishing (see
    /// the module's docs). Call it with no lock held: subscribers'
    /// callbacks may run on this thread.
    pub(crate) fn publish(mut self, generation: u64) {
        // A subscriber that arrives after this check misses this event, as
        // it would if it had arrived just after the publish.
        let change = if self.events.bus.is_empty() {
            None
        } else {
            diff(&self.old, &self.new, self.metadata_changed, generation)
        };
        if let Some(id) = self.id.take() {
            self.events.fill(id, change);
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.events.fill(id, None);
        }
    }
}

impl fmt::Debug for Ticket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as Log;

    use super::*;
    use crate::FlagSet;

    /// The flag map of a flag file whose flags are `keys`, each a boolean
    /// flag with default variant `variant`.
    fn map(keys: &[&str], variant: &str) -> FlagMap {
        let flags: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|key| {
                let flag = serde_json::json!({
                    "state": "ENABLED",
                    "variants": {"on": true, "off": false},
                    "defaultVariant": variant,
                });
                ((*key).to_owned(), flag)
            })
            .collect();
        let text = serde_json::json!({ "flags": flags }).to_string();
        let (set, _) = FlagSet::parse(&text).expect("a flag file");
        set.into_iter()
            .map(|flag| (flag.key().to_owned(), Arc::new(flag)))
            .collect()
    }

    /// Subscribes a callback that logs the generation of each event.
    fn log_generations(events: &Events) -> (Subscription<FlagsChanged>, Arc<Log<Vec<u64>>>) {
        let log = Arc::new(Log::new(Vec::new()));
        let sink = Arc::clone(&log);
        let subscription = events.bus.subscribe_fn(move |change| {
            sink.lock().expect("log").push(change.generation());
        });
        (subscription, log)
    }

    fn logged(log: &Log<Vec<u64>>) -> Vec<u64> {
        log.lock().expect("log").clone()
    }

    #[test]
    fn a_later_ticket_waits_for_the_earlier_one() {
        let events = Events::new();
        let (_subscription, log) = log_generations(&events);
        let first = events.reserve(map(&[], "on"), map(&["a"], "on"), false);
        let second = events.reserve(map(&["a"], "on"), map(&["a", "b"], "on"), false);
        second.publish(2);
        assert_eq!(logged(&log), [] as [u64; 0]);
        first.publish(1);
        assert_eq!(logged(&log), [1, 2]);
        assert!(sync::lock(&events.order).slots.is_empty());
    }

    #[test]
    fn a_dropped_ticket_lets_the_later_ones_through() {
        let events = Events::new();
        let (_subscription, log) = log_generations(&events);
        let abandoned = events.reserve(map(&[], "on"), map(&["a"], "on"), false);
        let second = events.reserve(map(&["a"], "on"), map(&["a", "b"], "on"), false);
        second.publish(2);
        assert_eq!(logged(&log), [] as [u64; 0]);
        drop(abandoned);
        assert_eq!(logged(&log), [2]);
        let third = events.reserve(map(&["a", "b"], "on"), map(&["b"], "on"), false);
        third.publish(3);
        assert_eq!(logged(&log), [2, 3]);
    }

    #[test]
    fn diff_compares_definitions_not_pointers() {
        let old = map(&["a", "b", "c"], "on");
        // Parsed again: equal flags in new `Arc`s.
        assert_eq!(diff(&old, &map(&["a", "b", "c"], "on"), false, 1), None);
        assert_eq!(diff(&old, &old.clone(), false, 1), None);
        let mut new = old.clone();
        new.remove("a");
        new.extend(map(&["b", "d"], "off"));
        let change = diff(&old, &new, false, 7).expect("changes");
        assert_eq!(change.generation(), 7);
        assert_eq!(change.added(), ["d"]);
        assert_eq!(change.changed(), ["b"]);
        assert_eq!(change.removed(), ["a"]);
        assert!(change.touches("a") && change.touches("b") && change.touches("d"));
        assert!(!change.touches("c"));
    }

    #[test]
    fn an_event_without_subscribers_is_not_kept() {
        let events = Events::new();
        events
            .reserve(map(&[], "on"), map(&["a"], "on"), false)
            .publish(1);
        let (_subscription, log) = log_generations(&events);
        events
            .reserve(map(&["a"], "on"), map(&[], "on"), false)
            .publish(2);
        assert_eq!(logged(&log), [2]);
        assert!(sync::lock(&events.order).slots.is_empty());
    }
}
