//! Why a flight gave no value.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::flight::panic_message;

/// Why a shared execution gave no value. Every caller that waited for it
/// gets the same one.
///
/// # Examples
///
/// ```
/// use acqrel_singleflight::{FlightError, Group};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let group: Group<&str, u32, String> = Group::new();
/// let failed = group.run("k", || async { Err("down".to_string()) }).await;
/// match failed {
///     Err(FlightError::Failed(error)) => assert_eq!(*error, "down"),
///     other => panic!("{other:?}"),
/// }
/// # });
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum FlightError<E> {
    /// The work returned this error. It is shared, not cached: the next
    /// call runs the work again.
    #[error("the shared work failed: {0}")]
    Failed(Arc<E>),
    /// The work panicked; the panic was caught on its task.
    #[error("the shared work panicked: {message}")]
    Panicked {
        /// The panic's message, when it had one.
        message: Arc<str>,
    },
    /// The work was dropped before it finished: its runtime shut down.
    /// (A caller never sees its own flight cancelled for lack of waiters:
    /// it is one.)
    #[error("the shared work was cancelled before it finished")]
    Cancelled,
}

impl<E> FlightError<E> {
    pub(crate) fn panicked(payload: &(dyn Any + Send)) -> Self {
        FlightError::Panicked {
            message: Arc::from(panic_message(payload)),
        }
    }

    /// The work's own error, if it returned one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use acqrel_singleflight::FlightError;
    /// let error: FlightError<&str> = FlightError::Failed(Arc::new("down"));
    /// assert_eq!(error.failed().map(|e| **e), Some("down"));
    /// assert!(FlightError::<&str>::Cancelled.failed().is_none());
    /// ```
    pub fn failed(&self) -> Option<&Arc<E>> {
        match self {
            FlightError::Failed(error) => Some(error),
            _ => None,
        }
    }
}

impl<E> Clone for FlightError<E> {
    fn clone(&self) -> Self {
        match self {
            FlightError::Failed(error) => FlightError::Failed(Arc::clone(error)),
            FlightError::Panicked { message } => FlightError::Panicked {
                message: Arc::clone(message),
            },
            FlightError::Cancelled => FlightError::Cancelled,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for FlightError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlightError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
            FlightError::Panicked { message } => f
                .debug_struct("Panicked")
                .field("message", message)
                .finish(),
            FlightError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl<E: PartialEq> PartialEq for FlightError<E> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (FlightError::Failed(a), FlightError::Failed(b)) => a == b,
            (FlightError::Panicked { message: a }, FlightError::Panicked { message: b }) => a == b,
            (FlightError::Cancelled, FlightError::Cancelled) => true,
            _ => false,
        }
    }
}
