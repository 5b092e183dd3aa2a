//! What a [`TaskGroup`](crate::TaskGroup) hands back: the failures that
//! [`wait`](crate::TaskGroup::wait) collected, and the future that
//! [`try_spawn`](crate::TaskGroup::try_spawn) refused.

use std::error::Error;
use std::fmt;
// std's `Arc`, not the loom shim's: it is part of the public API, and the
// group's cause holds the same error as a `dyn Error`, which only std's
// `Arc` converts to.
use std::sync::Arc;

/// The tasks of a [`TaskGroup`](crate::TaskGroup) that failed since the
/// last [`wait`](crate::TaskGroup::wait): every error returned and every
/// panic, not only the first (Go's `errgroup.Wait` keeps only the first).
///
/// The errors are shared (`Arc<E>`) because the first failure is also the
/// cause of the group's [`Shutdown`](crate::Shutdown): the error in
/// `errors` and the one that
/// [`Cause::downcast_ref`](crate::Cause::downcast_ref) returns are the same
/// value, not copies (`E` need not be `Clone`).
///
/// It displays how many tasks failed and the first error (or, with no
/// error, the first panic); the full lists are the fields.
///
/// # Examples
///
/// ```
/// use acqrel_pool::TaskGroup;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
///
/// let group = TaskGroup::new();
/// for n in 1..=3 {
///     group
///         .spawn(async move {
///             match n {
///                 1 => Err(std::io::Error::other("disk full")),
///                 2 => panic!("bug"),
///                 _ => Err(std::io::Error::other("timeout")),
///             }
///         })
///         .await;
/// }
/// let failed = group.wait().await.unwrap_err();
/// assert_eq!(failed.errors.len(), 2);
/// assert_eq!(failed.panics, ["bug"]);
/// assert_eq!(failed.first().unwrap().to_string(), "disk full");
/// assert_eq!(
///     failed.to_string(),
///     "3 tasks of the group failed (2 returned an error, 1 panicked); the first error: disk full"
/// );
/// # });
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct GroupError<E> {
    /// The errors the tasks returned, in the order the tasks completed.
    pub errors: Vec<Arc<E>>,
    /// The messages of the tasks that panicked, in the order they
    /// panicked (a payload that is not a string gets a placeholder).
    pub panics: Vec<String>,
}

impl<E> GroupError<E> {
    /// The first error a task returned (Go's `errgroup.Wait` result);
    /// `None` if only panics were collected.
    ///
    /// # Examples
    ///
    /// See [`GroupError`].
    pub fn first(&self) -> Option<&E> {
        self.errors.first().map(|error| &**error)
    }

    /// How many tasks failed: errors and panics.
    ///
    /// # Examples
    ///
    /// See [`GroupError`].
    pub fn failed(&self) -> usize {
        self.errors.len() + self.panics.len()
    }
}

impl<E: fmt::Display> fmt::Display for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failed();
        let tasks = if failed == 1 { "task" } else { "tasks" };
        write!(
            f,
            "{failed} {tasks} of the group failed ({} returned an error, {} panicked)",
            self.errors.len(),
            self.panics.len()
        )?;
        match (self.errors.first(), self.panics.first()) {
            (Some(error), _) => write!(f, "; the first error: {error}"),
            (None, Some(panic)) => write!(f, "; the first panic: {panic}"),
            (None, None) => Ok(()),
        }
    }
}

/// No `source`: the first error is part of the message already, and a
/// report walking the chain would print it twice.
impl<E: Error> Error for GroupError<E> {}

/// [`TaskGroup::try_spawn`](crate::TaskGroup::try_spawn) found the group at
/// its [limit](crate::TaskGroup::limit) (Go's `TryGo` returning `false`);
/// the future is handed back, not dropped, so it can be spawned later.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use acqrel_pool::{TaskGroup, TrySpawnError};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
///
/// let group = TaskGroup::<std::io::Error>::new().limit(NonZeroUsize::MIN);
/// group.try_spawn(async { Ok(()) }).unwrap();
/// let refused = group.try_spawn(async { Ok(()) }).unwrap_err();
/// assert!(matches!(refused, TrySpawnError::Full(_)));
/// assert_eq!(refused.to_string(), "the task group is at its limit of running tasks");
///
/// group.wait().await.unwrap();
/// group.try_spawn(refused.into_inner()).unwrap();
/// # });
/// ```
#[derive(thiserror::Error)]
pub enum TrySpawnError<F> {
    /// As many tasks as the limit allows are running; retry later or use
    /// [`spawn`](crate::TaskGroup::spawn) to wait for a slot.
    #[error("the task group is at its limit of running tasks")]
    Full(F),
}

impl<F> TrySpawnError<F> {
    /// The future that was not spawned.
    ///
    /// # Examples
    ///
    /// See [`TrySpawnError`].
    pub fn into_inner(self) -> F {
        match self {
            TrySpawnError::Full(future) => future,
        }
    }
}

impl<F> fmt::Debug for TrySpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full(_) => f.debug_tuple("Full").finish_non_exhaustive(),
        }
    }
}
