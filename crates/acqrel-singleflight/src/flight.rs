//! The raw core of [`Group`](crate::Group): the table of flights in
//! progress, one [`Flight`] per key, and the [`Driver`] that runs a flight's
//! work on its own task.
//!
//! # Protocol
//!
//! A flight is in its key's shard of the table from the moment its first
//! caller creates it until it is **settled**: completed by its driver,
//! cancelled because nobody waits for it any more, or forgotten. Every
//! decision about who waits for what is taken under the shard's lock, with
//! the flight's own lock nested inside it (always in that order):
//!
//! - **join** (shard lock): find the key's flight and count one more waiter,
//!   or insert a new flight with one waiter and become its leader, who
//!   starts the driver.
//! - **leave** (a waiter's future dropped before the outcome; shard lock,
//!   then flight lock): count one waiter less. Under
//!   [`CancelPolicy::WhenUnwaited`], the last one out marks the flight
//!   cancelled, takes it out of the table and wakes the driver, which drops
//!   the work and settles the flight as cancelled.
//! - **complete** (the driver): takes the flight out of the table (shard
//!   lock), then stores the outcome (flight lock), then opens the flight's
//!   latch.
//!
//! Because a flight leaves the table before its outcome is stored, a caller
//! that finds a flight under the shard lock always gets that flight's
//! outcome, and a caller after it starts a new execution: nobody joins a
//! finished or cancelled flight. Because join and leave are serialized by
//! the shard lock, the last waiter's cancellation and a new caller's join
//! cannot cross: either the new caller joined first (and the count never
//! reached zero) or it finds no flight and starts its own.
//!
//! A driver that is dropped before it completes (its runtime shut down)
//! settles the flight as cancelled from its `Drop`, so no waiter hangs and
//! no entry stays behind.
//!
//! # Orderings
//!
//! Two locks carry every decision above. The one atomic handshake is the
//! flight's [`Latch`]: the driver stores the outcome under the flight lock,
//! then opens the latch (a Release swap); a waiter's `opened()` returns after
//! an Acquire load that sees it open, and then takes the flight lock to
//! clone the outcome, so it would see the outcome through the lock alone.
//! The latch only tells it when to look.
//!
//! No user code runs under these locks: the work is polled by the driver
//! with no lock held, keys and flights taken out of the table are dropped
//! after the shard lock is released, and wakers are woken after it.

use std::any::Any;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use acqrel_core::Latch;

use crate::error::FlightError;
use crate::sync::{self, Arc, Mutex};

/// What happens to a flight's work when every caller waiting for it has
/// gone (their futures were dropped before the outcome).
///
/// # Examples
///
/// ```
/// use acqrel_singleflight::{CancelPolicy, Group};
/// let group: Group<u32, u32, ()> = Group::with_policy(CancelPolicy::Detach);
/// assert_eq!(group.policy(), CancelPolicy::Detach);
/// assert_eq!(CancelPolicy::default(), CancelPolicy::WhenUnwaited);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelPolicy {
    /// The work is dropped (cancelled) as soon as no caller waits for it;
    /// until then it runs for whoever still waits, whoever started it. A
    /// caller arriving after the cancellation starts a new execution.
    #[default]
    WhenUnwaited,
    /// The work runs to its end even with nobody waiting (for its side
    /// effects: filling a cache, warming a connection). Callers arriving
    /// meanwhile join it. Its outcome is dropped if nobody waits.
    Detach,
}

/// The outcome every waiter of a flight receives.
pub(crate) type Settled<V, E> = Result<V, FlightError<E>>;

/// Run by a flight's driver with its outcome before any waiter sees it
/// (the cache stores the value there), with no lock held.
pub(crate) type Hook<V, E> = Box<dyn FnOnce(&Settled<V, E>) + Send>;

// ===== Table =====

/// One shard of a [`Table`]: the flights of its keys.
type Flights<K, V, E> = HashMap<K, Arc<Flight<K, V, E>>>;

/// A key and its flight, taken out of a shard.
type Listed<K, V, E> = (K, Arc<Flight<K, V, E>>);

/// The flights in progress, by key, in shards.
pub(crate) struct Table<K, V, E> {
    shards: Box<[Mutex<Flights<K, V, E>>]>,
    hasher: RandomState,
    policy: CancelPolicy,
}

/// One execution and the callers waiting for it.
pub(crate) struct Flight<K, V, E> {
    key: K,
    shard: usize,
    state: Mutex<State<V, E>>,
    /// Opened once `state.outcome` is stored.
    settled: Latch,
}

/// A flight's state, under its lock.
struct State<V, E> {
    /// Callers whose futures wait for the outcome now.
    waiters: usize,
    /// Callers that ever joined, the leader included.
    joined: usize,
    /// Set once, by the driver; shared so that each waiter clones the
    /// value (user code) after releasing the lock.
    outcome: Option<std::sync::Arc<Settled<V, E>>>,
    /// Set by the last waiter to leave under `CancelPolicy::WhenUnwaited`.
    cancelled: bool,
    /// The driver's waker, to wake it when `cancelled` is set.
    driver: Option<Waker>,
}

/// What [`Table::join`] made of a call.
pub(crate) struct Joined<K, V, E> {
    pub(crate) flight: Arc<Flight<K, V, E>>,
    /// This caller created the flight and must start its driver.
    pub(crate) leader: bool,
}

impl<K, V, E> Table<K, V, E>
where
    K: Hash + Eq + Clone,
{
    pub(crate) fn new(policy: CancelPolicy) -> Self {
        Table::with_shards(policy, default_shards())
    }

    pub(crate) fn with_shards(policy: CancelPolicy, shards: usize) -> Self {
        let shards = shards.max(1).next_power_of_two();
        Table {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            policy,
        }
    }

    pub(crate) fn policy(&self) -> CancelPolicy {
        self.policy
    }

    fn shard_of(&self, key: &K) -> usize {
        // Truncation is the point: the low bits pick the shard.
        #[allow(clippy::cast_possible_truncation)]
        let hash = self.hasher.hash_one(key) as usize;
        hash & (self.shards.len() - 1)
    }

    /// Joins `key`'s flight, or creates it with this caller as its leader.
    pub(crate) fn join(&self, key: K) -> Joined<K, V, E> {
        let shard = self.shard_of(&key);
        let mut flights = sync::lock(&self.shards[shard]);
        if let Some(flight) = flights.get(&key) {
            let flight = Arc::clone(flight);
            {
                let mut state = sync::lock(&flight.state);
                state.waiters += 1;
                state.joined += 1;
            }
            drop(flights);
            // `key` is dropped here, with no lock held.
            return Joined {
                flight,
                leader: false,
            };
        }
        let flight = Arc::new(Flight {
            key: key.clone(),
            shard,
            state: Mutex::new(State {
                waiters: 1,
                joined: 1,
                outcome: None,
                cancelled: false,
                driver: None,
            }),
            settled: Latch::new(),
        });
        flights.insert(key, Arc::clone(&flight));
        Joined {
            flight,
            leader: true,
        }
    }

    /// Takes `flight` out of the table if it is still the one there.
    /// Returns what was removed, to be dropped by the caller with no lock
    /// held.
    fn unlist(
        &self,
        flights: &mut Flights<K, V, E>,
        flight: &Arc<Flight<K, V, E>>,
    ) -> Option<Listed<K, V, E>> {
        match flights.get(&flight.key) {
            Some(listed) if Arc::ptr_eq(listed, flight) => flights.remove_entry(&flight.key),
            _ => None,
        }
    }

    /// A waiter of `flight` gone before the outcome (see `# Protocol`).
    pub(crate) fn leave(&self, flight: &Arc<Flight<K, V, E>>) {
        let mut flights = sync::lock(&self.shards[flight.shard]);
        let mut state = sync::lock(&flight.state);
        state.waiters -= 1;
        let cancel = state.waiters == 0
            && state.outcome.is_none()
            && !state.cancelled
            && self.policy == CancelPolicy::WhenUnwaited;
        if !cancel {
            return;
        }
        state.cancelled = true;
        let driver = state.driver.take();
        drop(state);
        let removed = self.unlist(&mut flights, flight);
        drop(flights);
        drop(removed);
        if let Some(driver) = driver {
            driver.wake();
        }
    }

    /// Takes `key`'s flight out of the table: later callers start a new
    /// execution; this one finishes for the callers already waiting.
    pub(crate) fn forget(&self, key: &K) -> bool {
        let removed = sync::lock(&self.shards[self.shard_of(key)]).remove_entry(key);
        removed.is_some()
    }

    /// Settles `flight` with `outcome` (see `# Protocol`). Called once per
    /// flight, by its driver.
    fn complete(&self, flight: &Arc<Flight<K, V, E>>, outcome: Settled<V, E>) {
        let removed = {
            let mut flights = sync::lock(&self.shards[flight.shard]);
            self.unlist(&mut flights, flight)
        };
        drop(removed);
        let outcome = std::sync::Arc::new(outcome);
        let unread = {
            let mut state = sync::lock(&flight.state);
            state.driver = None;
            if state.waiters == 0 {
                // Nobody will read it (a detached flight, or one cancelled
                // as it finished): drop it below, with no lock held.
                Some(outcome)
            } else {
                state.outcome = Some(outcome);
                None
            }
        };
        // Release (inside `open`): pairs with the Acquire in `opened`, after
        // the outcome was stored above.
        flight.settled.open();
        drop(unread);
    }

    /// Callers waiting now for `key`'s flight.
    pub(crate) fn waiters(&self, key: &K) -> usize {
        let flights = sync::lock(&self.shards[self.shard_of(key)]);
        flights
            .get(key)
            .map_or(0, |flight| sync::lock(&flight.state).waiters)
    }

    /// Flights in progress.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| sync::lock(shard).len())
            .sum()
    }
}

/// Shards for a table: four per core, so that callers on different keys
/// rarely meet on a lock.
fn default_shards() -> usize {
    #[cfg(acqrel_loom)]
    return 2;
    #[cfg(not(acqrel_loom))]
    std::thread::available_parallelism().map_or(4, |n| n.get() * 4)
}

// ===== Waiting =====

/// A caller's wait for a flight's outcome. Dropping it before the outcome
/// leaves the flight (see `# Protocol`).
pub(crate) struct Wait<'a, K, V, E>
where
    K: Hash + Eq + Clone,
{
    table: &'a Table<K, V, E>,
    flight: Arc<Flight<K, V, E>>,
    done: bool,
}

impl<'a, K, V, E> Wait<'a, K, V, E>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    pub(crate) fn new(table: &'a Table<K, V, E>, flight: Arc<Flight<K, V, E>>) -> Self {
        Wait {
            table,
            flight,
            done: false,
        }
    }

    /// The outcome, and whether more than one caller joined the flight.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves the flight.
    pub(crate) async fn outcome(mut self) -> (Settled<V, E>, bool) {
        self.flight.settled.opened().await;
        let state = sync::lock(&self.flight.state);
        let outcome = state.outcome.clone();
        let shared = state.joined > 1;
        drop(state);
        self.done = true;
        let outcome = match outcome {
            Some(outcome) => Settled::clone(&outcome),
            // Stored before the latch opened, unless nobody waited then;
            // a waiter exists (this one), so it was stored.
            None => Err(FlightError::Cancelled),
        };
        (outcome, shared)
    }
}

impl<K, V, E> Drop for Wait<'_, K, V, E>
where
    K: Hash + Eq + Clone,
{
    fn drop(&mut self) {
        if !self.done {
            self.table.leave(&self.flight);
        }
    }
}

// ===== Driver =====

pin_project_lite::pin_project! {
    /// Runs a flight's work and settles the flight: the future spawned as
    /// the flight's own task. It settles the flight on every path, `Drop`
    /// included (a driver dropped unspawned, or by a runtime shutting down,
    /// settles it as cancelled), so no waiter is left without an outcome.
    pub(crate) struct Driver<K, V, E, F>
    where
        K: Hash,
        K: Eq,
        K: Clone,
    {
        core: Core<K, V, E>,
        // `None` before `start` and once settled.
        #[pin]
        work: Option<F>,
    }

    impl<K, V, E, F> PinnedDrop for Driver<K, V, E, F>
    where
        K: Hash,
        K: Eq,
        K: Clone,
    {
        fn drop(this: Pin<&mut Self>) {
            // Unsettled here: never spawned (no runtime), or dropped by a
            // runtime shutting down with the work unfinished. The work is
            // dropped after this, with the driver's fields.
            this.project().core.settle(Err(FlightError::Cancelled));
        }
    }
}

/// The driver's state apart from the work.
struct Core<K, V, E> {
    table: Arc<Table<K, V, E>>,
    flight: Arc<Flight<K, V, E>>,
    hook: Option<Hook<V, E>>,
    settled: bool,
}

impl<K, V, E> Core<K, V, E>
where
    K: Hash + Eq + Clone,
{
    /// Settles the flight, once.
    fn settle(&mut self, outcome: Settled<V, E>) {
        if self.settled {
            return;
        }
        self.settled = true;
        if let Some(hook) = self.hook.take() {
            // The hook clones the value (user code); a panic there must not
            // stop the flight from settling (this may run in `Drop`).
            let _ = catch_unwind(AssertUnwindSafe(|| hook(&outcome)));
        }
        self.table.complete(&self.flight, outcome);
    }

    /// Registers the driver's waker and says whether the flight was
    /// cancelled.
    fn cancelled(&self, waker: &Waker) -> bool {
        let mut state = sync::lock(&self.flight.state);
        if state.cancelled {
            return true;
        }
        match &state.driver {
            Some(registered) if registered.will_wake(waker) => {}
            _ => state.driver = Some(waker.clone()),
        }
        false
    }
}

impl<K, V, E, F> Driver<K, V, E, F>
where
    K: Hash + Eq + Clone,
{
    /// The driver of `flight`, made by its leader before the work exists.
    pub(crate) fn new(table: Arc<Table<K, V, E>>, flight: Arc<Flight<K, V, E>>) -> Self {
        Driver {
            core: Core {
                table,
                flight,
                hook: None,
                settled: false,
            },
            work: None,
        }
    }

    /// The driver, ready to spawn, with the work it runs and the hook it
    /// runs on the outcome.
    pub(crate) fn start(mut self, work: F, hook: Option<Hook<V, E>>) -> Self {
        self.work = Some(work);
        self.core.hook = hook;
        self
    }

    /// Settles the flight as panicked: the closure that makes the work
    /// panicked with `payload`.
    pub(crate) fn panicked(mut self, payload: &(dyn Any + Send)) {
        self.core.settle(Err(FlightError::panicked(payload)));
    }
}

impl<K, V, E, F> Future for Driver<K, V, E, F>
where
    K: Hash + Eq + Clone,
    F: Future<Output = Result<V, E>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.core.settled {
            return Poll::Ready(());
        }
        let outcome = match this.work.as_mut().as_pin_mut() {
            // Cancelled (see `# Protocol`), or never started.
            None => Err(FlightError::Cancelled),
            Some(_) if this.core.cancelled(cx.waker()) => Err(FlightError::Cancelled),
            Some(work) => match catch_unwind(AssertUnwindSafe(|| work.poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(Ok(value))) => Ok(value),
                Ok(Poll::Ready(Err(error))) => Err(FlightError::Failed(std::sync::Arc::new(error))),
                Err(payload) => Err(FlightError::panicked(&*payload)),
            },
        };
        this.core.settle(outcome);
        // The work (user code) is dropped with no lock held.
        this.work.set(None);
        Poll::Ready(())
    }
}

impl<K, V, E> fmt::Debug for Flight<K, V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flight")
            .field("settled", &self.settled.is_open())
            .finish_non_exhaustive()
    }
}

/// The message of a panic payload, when it has one.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "(a panic payload that is not a string)"
    }
}
