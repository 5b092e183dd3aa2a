//! [`Group`]: one execution per key for any number of concurrent callers.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::FlightError;
use crate::flight::{CancelPolicy, Driver, Hook, Joined, Settled, Table, Wait};
use crate::sync::Arc;

/// A value from [`Group::run`], and whether it was shared.
///
/// # Examples
///
/// ```
/// use acqrel_singleflight::Group;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let group: Group<&str, u32, ()> = Group::new();
/// let outcome = group.run("k", || async { Ok(7) }).await.unwrap();
/// assert_eq!(outcome.value, 7);
/// assert!(!outcome.shared); // nobody else asked meanwhile
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome<V> {
    /// The work's value (a clone per caller).
    pub value: V,
    /// Whether other callers joined the same execution (Go's `shared`).
    pub shared: bool,
}

/// Coalesces concurrent work per key: while a key's work runs, every other
/// caller with an equal key waits for it and gets a clone of its outcome
/// instead of running the work again.
///
/// Replaces Go's `x/sync/singleflight.Group` (`Do`, `Forget`) and the
/// guide's single-flight cache fill; the publication is the work's outcome,
/// **released** when the flight's task stores it and opens the flight's
/// latch, **acquired** by each waiter when its wait returns.
///
/// Its policies, each tested in `tests/group.rs`:
///
/// - **The work runs as its own task** (`tokio::spawn`), so the caller
///   that started it can be cancelled (its future dropped) without
///   cancelling it for the others.
/// - **When nobody waits any more**, the work is dropped (the default,
///   [`CancelPolicy::WhenUnwaited`]) or left to finish
///   ([`CancelPolicy::Detach`]). Either way the key's entry is gone once
///   the last caller is, or once a detached work finishes.
/// - **Errors** reach every waiter as the same [`FlightError::Failed`]
///   (`Arc<E>`) and are never kept: the next call runs the work again.
/// - **Panics** in the work are caught on its task; every waiter gets
///   [`FlightError::Panicked`], and the next call runs afresh.
/// - **[`forget`](Self::forget)** lets later callers start a new execution
///   while the current one finishes for its own waiters.
///
/// `V` is cloned for each caller: use `Arc<T>` for large values.
///
/// # Examples
///
/// ```
/// use acqrel_singleflight::{Group, Outcome};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let group: Group<&str, u64, ()> = Group::new();
/// // Both calls start before the work runs: the second joins the first.
/// let (a, b) = tokio::join!(
///     group.run("answer", || async { Ok(42) }),
///     group.run("answer", || async { unreachable!("joined the first call") }),
/// );
/// assert_eq!(a, Ok(Outcome { value: 42, shared: true }));
/// assert_eq!(b, Ok(Outcome { value: 42, shared: true }));
/// assert!(group.is_empty()); // nothing is kept
/// # });
/// ```
pub struct Group<K, V, E> {
    table: Arc<Table<K, V, E>>,
}

impl<K, V, E> Group<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// A group with the default [`CancelPolicy::WhenUnwaited`].
    ///
    /// # Examples
    ///
    /// See [`Group`].
    pub fn new() -> Self {
        Self::with_policy(CancelPolicy::default())
    }

    /// A group with `policy` for work nobody waits for any more.
    ///
    /// # Examples
    ///
    /// See [`CancelPolicy`].
    pub fn with_policy(policy: CancelPolicy) -> Self {
        Group {
            table: Arc::new(Table::new(policy)),
        }
    }

    /// The group's [`CancelPolicy`].
    ///
    /// # Examples
    ///
    /// See [`CancelPolicy`].
    pub fn policy(&self) -> CancelPolicy {
        self.table.policy()
    }

    /// Runs `work` for `key`, or joins the execution already running for an
    /// equal key, and returns its outcome.
    ///
    /// `work` is called only when this caller starts the execution; the
    /// future it returns runs as its own task.
    ///
    /// # Errors
    ///
    /// The execution's [`FlightError`], the same for every caller that
    /// waited for it.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, when this call would start the execution
    /// (as `tokio::spawn` does). Callers that joined it meanwhile get
    /// [`FlightError::Cancelled`]. A panic in `work` or its future never
    /// reaches the caller: it becomes [`FlightError::Panicked`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the execution: it goes on for the other
    /// callers, and under [`CancelPolicy::WhenUnwaited`] it is dropped when
    /// the last one leaves.
    ///
    /// # Examples
    ///
    /// See [`Group`].
    pub async fn run<F, Fut>(&self, key: K, work: F) -> Result<Outcome<V>, FlightError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let flown = fly(&self.table, key, || (work(), None)).await;
        flown.outcome.map(|value| Outcome {
            value,
            shared: flown.shared,
        })
    }

    /// Lets later callers of `key` start a new execution; the one running
    /// finishes for the callers already waiting. Returns whether one was
    /// running.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_singleflight::Group;
    /// let group: Group<&str, u32, ()> = Group::new();
    /// assert!(!group.forget(&"k"));
    /// ```
    pub fn forget(&self, key: &K) -> bool {
        self.table.forget(key)
    }

    /// Keys with an execution running.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_singleflight::Group;
    /// let group: Group<&str, u32, ()> = Group::new();
    /// assert_eq!(group.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no execution is running.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_singleflight::Group;
    /// let group: Group<&str, u32, ()> = Group::new();
    /// assert!(group.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Callers waiting now for `key`'s execution (0 if none runs).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_singleflight::Group;
    /// let group: Group<&str, u32, ()> = Group::new();
    /// assert_eq!(group.waiters(&"k"), 0);
    /// ```
    pub fn waiters(&self, key: &K) -> usize {
        self.table.waiters(key)
    }
}

/// What one caller's part in a flight came to.
pub(crate) struct Flown<V, E> {
    pub(crate) outcome: Settled<V, E>,
    /// Other callers joined the flight.
    pub(crate) shared: bool,
    /// This caller started the flight.
    pub(crate) leader: bool,
}

/// Joins `key`'s flight in `table`, or starts it with the future `work`
/// makes (and the hook to run on its outcome), and waits for the outcome:
/// [`Group::run`], shared with the cache.
///
/// # Cancel safety
///
/// As `Group::run`.
pub(crate) async fn fly<K, V, E, F, Fut>(
    table: &Arc<Table<K, V, E>>,
    key: K,
    work: F,
) -> Flown<V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
    F: FnOnce() -> (Fut, Option<Hook<V, E>>),
    Fut: Future<Output = Result<V, E>> + Send + 'static,
{
    let Joined { flight, leader } = table.join(key);
    let wait = Wait::new(table, Arc::clone(&flight));
    if leader {
        // The driver settles the flight on every path from here on: a
        // panic in `work()` (or its `Drop`, unspawned) included.
        let driver = Driver::new(Arc::clone(table), flight);
        match catch_unwind(AssertUnwindSafe(work)) {
            Ok((future, hook)) => spawn(driver.start(future, hook)),
            Err(payload) => driver.panicked(&*payload),
        }
    }
    let (outcome, shared) = wait.outcome().await;
    Flown {
        outcome,
        shared,
        leader,
    }
}

/// Starts a flight's driver on the current tokio runtime (a loom thread in
/// the models).
fn spawn<F: Future<Output = ()> + Send + 'static>(driver: F) {
    #[cfg(not(acqrel_loom))]
    drop(tokio::spawn(driver));
    #[cfg(acqrel_loom)]
    drop(loom::thread::spawn(move || loom::future::block_on(driver)));
}

impl<K, V, E> Clone for Group<K, V, E> {
    /// Another handle to the same group.
    fn clone(&self) -> Self {
        Group {
            table: Arc::clone(&self.table),
        }
    }
}

impl<K, V, E> Default for Group<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, E> fmt::Debug for Group<K, V, E>
where
    K: Hash + Eq + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("policy", &self.table.policy())
            .field("len", &self.table.len())
            .finish()
    }
}
