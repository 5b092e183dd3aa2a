//! Why a [`Shutdown`](crate::Shutdown) was cancelled: Go's
//! `context.Cause`, as a value every listener can read and clone.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;

use tokio::time::Instant;

use crate::sync::Arc;

/// Why a [`Shutdown`](crate::Shutdown) was cancelled.
///
/// Go's `context.WithCancelCause` / `context.Cause`: the first cause given
/// to [`Shutdown::cancel`](crate::Shutdown::cancel) is stored once and every
/// listener of the node and of its descendants reads that same value
/// ([`Cause::ptr_eq`] says so). Cloning is one reference-count increment.
///
/// A cause is one of (see [`kind`](Cause::kind)):
///
/// - a deadline passed ([`CauseKind::DeadlineExceeded`], from
///   [`Shutdown::with_deadline`](crate::Shutdown::with_deadline) and
///   [`with_timeout`](crate::Shutdown::with_timeout); [`deadline`](Cause::deadline)
///   says which);
/// - a [`DropGuard`](crate::DropGuard) went out of scope
///   ([`CauseKind::Dropped`]);
/// - a message (`Cause::from("...")`, `Cause::from(String)`;
///   [`message`](Cause::message));
/// - any error ([`Cause::error`]; [`as_error`](Cause::as_error),
///   [`downcast_ref`](Cause::downcast_ref)).
///
/// `Cause` is itself an [`Error`], as Go's `context.Cause` returns an
/// `error`. For an error cause it is transparent: it displays as the user's
/// error and its [`source`](Error::source) is that error's source, so an
/// error report prints the chain once; the user's error itself is
/// [`as_error`](Cause::as_error).
///
/// # Examples
///
/// ```
/// use acqrel_pool::{Cause, CauseKind, Shutdown};
///
/// #[derive(Debug, PartialEq)]
/// struct DiskFull;
/// impl std::fmt::Display for DiskFull {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("disk full")
///     }
/// }
/// impl std::error::Error for DiskFull {}
///
/// let shutdown = Shutdown::new();
/// let worker = shutdown.child();
/// shutdown.cancel(Cause::error(DiskFull));
///
/// let cause = worker.cause().unwrap();
/// assert_eq!(cause.kind(), CauseKind::Error);
/// assert_eq!(cause.downcast_ref::<DiskFull>(), Some(&DiskFull));
/// assert_eq!(cause.to_string(), "disk full");
/// assert!(Cause::ptr_eq(&cause, &shutdown.cause().unwrap()));
/// ```
#[derive(Clone)]
pub struct Cause {
    repr: Arc<Repr>,
}

enum Repr {
    DeadlineExceeded(Instant),
    Dropped,
    Message(Cow<'static, str>),
    Error(Box<dyn Error + Send + Sync + 'static>),
    /// An error shared with someone else who reports it too (a
    /// [`TaskGroup`](crate::TaskGroup)'s first error is its cause and part
    /// of its `wait` result). std's `Arc`, not the loom shim's: it
    /// synchronizes nothing of ours, and only std's converts to a `dyn`.
    SharedError(std::sync::Arc<dyn Error + Send + Sync + 'static>),
}

impl Repr {
    /// The user's error, for both error representations.
    fn error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        match self {
            Repr::Error(error) => Some(&**error),
            Repr::SharedError(error) => Some(&**error),
            _ => None,
        }
    }
}

/// What kind of [`Cause`] it is.
///
/// # Examples
///
/// ```
/// use acqrel_pool::{Cause, CauseKind};
///
/// assert_eq!(Cause::from("maintenance").kind(), CauseKind::Message);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CauseKind {
    /// The deadline of [`Shutdown::with_deadline`](crate::Shutdown::with_deadline)
    /// or [`with_timeout`](crate::Shutdown::with_timeout) passed (Go's
    /// `context.DeadlineExceeded`).
    DeadlineExceeded,
    /// A [`DropGuard`](crate::DropGuard) was dropped without being disarmed.
    Dropped,
    /// A message given as `&'static str` or `String`.
    Message,
    /// An error given to [`Cause::error`].
    Error,
}

// ===== impl Cause =====

impl Cause {
    fn new(repr: Repr) -> Cause {
        Cause {
            repr: Arc::new(repr),
        }
    }

    pub(crate) fn deadline_exceeded(deadline: Instant) -> Cause {
        Cause::new(Repr::DeadlineExceeded(deadline))
    }

    pub(crate) fn dropped() -> Cause {
        Cause::new(Repr::Dropped)
    }

    /// A cause carrying an error that the caller keeps a handle of too.
    /// It behaves as [`Cause::error`]: [`as_error`](Cause::as_error) is the
    /// error inside the `Arc` and [`downcast_ref`](Cause::downcast_ref)
    /// finds its concrete type.
    pub(crate) fn shared_error(error: std::sync::Arc<dyn Error + Send + Sync + 'static>) -> Cause {
        Cause::new(Repr::SharedError(error))
    }

    /// A cause carrying `error`, which listeners can read back with
    /// [`as_error`](Cause::as_error) and [`downcast_ref`](Cause::downcast_ref).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::Cause;
    ///
    /// let io = std::io::Error::other("backend gone");
    /// let cause = Cause::error(io);
    /// assert_eq!(cause.to_string(), "backend gone");
    /// assert!(cause.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn error(error: impl Error + Send + Sync + 'static) -> Cause {
        Cause::new(Repr::Error(Box::new(error)))
    }

    /// What kind of cause this is.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::{CauseKind, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// drop(shutdown.drop_guard());
    /// assert_eq!(shutdown.cause().unwrap().kind(), CauseKind::Dropped);
    /// ```
    pub fn kind(&self) -> CauseKind {
        match &*self.repr {
            Repr::DeadlineExceeded(_) => CauseKind::DeadlineExceeded,
            Repr::Dropped => CauseKind::Dropped,
            Repr::Message(_) => CauseKind::Message,
            Repr::Error(_) | Repr::SharedError(_) => CauseKind::Error,
        }
    }

    /// The deadline that passed, for [`CauseKind::DeadlineExceeded`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_pool::Shutdown;
    /// use tokio::time::Instant;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true)
    /// #     .build().unwrap().block_on(async {
    ///
    /// let deadline = Instant::now() + Duration::from_secs(5);
    /// let request = Shutdown::new().with_deadline(deadline);
    /// request.cancelled().await;
    /// assert_eq!(request.cause().unwrap().deadline(), Some(deadline));
    /// # });
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        match &*self.repr {
            Repr::DeadlineExceeded(deadline) => Some(*deadline),
            _ => None,
        }
    }

    /// The message, for [`CauseKind::Message`].
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::Cause;
    ///
    /// assert_eq!(Cause::from(format!("node {} drained", 3)).message(), Some("node 3 drained"));
    /// assert_eq!(Cause::error(std::fmt::Error).message(), None);
    /// ```
    pub fn message(&self) -> Option<&str> {
        match &*self.repr {
            Repr::Message(message) => Some(message),
            _ => None,
        }
    }

    /// The error given to [`Cause::error`], for [`CauseKind::Error`].
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::Cause;
    ///
    /// let cause = Cause::error(std::fmt::Error);
    /// assert_eq!(cause.as_error().unwrap().to_string(), std::fmt::Error.to_string());
    /// assert!(Cause::from("stop").as_error().is_none());
    /// ```
    pub fn as_error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.repr.error()
    }

    /// The error given to [`Cause::error`], if it is an `E`.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::Cause;
    ///
    /// let cause = Cause::error(std::fmt::Error);
    /// assert_eq!(cause.downcast_ref::<std::fmt::Error>(), Some(&std::fmt::Error));
    /// assert!(cause.downcast_ref::<std::io::Error>().is_none());
    /// ```
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.as_error()?.downcast_ref::<E>()
    }

    /// Whether `this` and `other` are clones of one cause (as every listener
    /// of one cancellation holds), rather than two causes that look alike.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::Cause;
    ///
    /// let cause = Cause::from("stop");
    /// assert!(Cause::ptr_eq(&cause, &cause.clone()));
    /// assert!(!Cause::ptr_eq(&cause, &Cause::from("stop")));
    /// ```
    pub fn ptr_eq(this: &Cause, other: &Cause) -> bool {
        Arc::ptr_eq(&this.repr, &other.repr)
    }
}

impl From<&'static str> for Cause {
    fn from(message: &'static str) -> Cause {
        Cause::new(Repr::Message(Cow::Borrowed(message)))
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Cause {
        Cause::new(Repr::Message(Cow::Owned(message)))
    }
}

impl From<Box<dyn Error + Send + Sync + 'static>> for Cause {
    /// Takes the boxed error as the cause's error without boxing it again,
    /// so [`Cause::downcast_ref`] finds the concrete type inside.
    fn from(error: Box<dyn Error + Send + Sync + 'static>) -> Cause {
        Cause::new(Repr::Error(error))
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.repr {
            Repr::DeadlineExceeded(deadline) => {
                f.debug_tuple("DeadlineExceeded").field(deadline).finish()
            }
            Repr::Dropped => f.write_str("Dropped"),
            Repr::Message(message) => f.debug_tuple("Message").field(message).finish(),
            Repr::Error(error) => f.debug_tuple("Error").field(error).finish(),
            Repr::SharedError(error) => f.debug_tuple("Error").field(error).finish(),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.repr {
            Repr::DeadlineExceeded(_) => f.write_str("deadline exceeded"),
            Repr::Dropped => f.write_str("shutdown guard dropped"),
            Repr::Message(message) => f.write_str(message),
            Repr::Error(error) => fmt::Display::fmt(error, f),
            Repr::SharedError(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl Error for Cause {
    /// Transparent for an error cause: the user's error's own source (the
    /// user's error is this cause's `Display`, so a report walking the chain
    /// prints it once).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.repr.error()?.source()
    }
}
