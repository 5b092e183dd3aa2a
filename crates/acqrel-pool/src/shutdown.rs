//! [`Shutdown`], a cancellation tree whose cancellations carry a [`Cause`],
//! with deadlines and drop guards.
//!
//! The tree logic (who wins, which children a cancellation reaches, the
//! orderings) is in `node.rs`; this file is the handle users hold, which
//! also decides how long a node stays in its parent's registry.

mod cause;
mod deadline;
mod node;

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

pub use self::cause::{Cause, CauseKind};
use self::deadline::TimerStop;
use self::node::Node;
use crate::sync::{self, Arc};

/// A node of a cancellation tree: Go's `context.Context` with
/// `WithCancelCause`, `WithDeadline` and `WithTimeout`, or the closed
/// `stop` channel of a worker pool, for tokio.
///
/// [`cancel`](Shutdown::cancel) cancels this node and every descendant with
/// a [`Cause`] that all of them report ([`cause`](Shutdown::cause)); a
/// child's cancellation never reaches its parent. The first cause wins: a
/// later `cancel` changes nothing and returns `false`. Clones are handles
/// to the same node.
///
/// The **release** is `cancel` storing the cause and then opening the
/// node's latch; the **acquire** is [`is_cancelled`](Shutdown::is_cancelled)
/// returning `true` or [`cancelled`](Shutdown::cancelled) completing, after
/// which `cause()` is `Some` and everything the canceller wrote before
/// `cancel` is visible (Go: `close(done)` / `<-ctx.Done()`).
///
/// A child created from a cancelled parent is born cancelled with the
/// parent's cause. Cancelling and dropping iterate over the tree, so depth
/// costs no stack.
///
/// # Memory
///
/// A parent registers each child until the child is cancelled or its last
/// handle is dropped: a long-lived root that hands a child to each of a
/// million requests holds only the children of the requests in flight
/// ([`child_count`](Shutdown::child_count)). A
/// child's handle keeps its ancestors alive (a grandchild of a deadline
/// still sees the deadline after the middle handle is dropped). Cancelling
/// a node empties its registry.
///
/// # Examples
///
/// ```
/// use acqrel_pool::Shutdown;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
///
/// let shutdown = Shutdown::new();
/// let workers: Vec<_> = (0..3)
///     .map(|_| {
///         let token = shutdown.child();
///         tokio::spawn(async move {
///             token.cancelled().await;
///             token.cause().unwrap().to_string()
///         })
///     })
///     .collect();
///
/// assert!(shutdown.cancel("deploy"));
/// for worker in workers {
///     assert_eq!(worker.await.unwrap(), "deploy");
/// }
/// # });
/// ```
#[derive(Clone)]
pub struct Shutdown {
    handle: Arc<Handle>,
}

/// What every clone of one `Shutdown` shares; dropped with the last clone.
struct Handle {
    node: Arc<Node>,
    /// The parent's handle, while `node` is registered in the parent's
    /// registry: keeps the parent registered in *its* parent in turn.
    /// `None` for a root and for a child born cancelled.
    parent: Option<Arc<Handle>>,
    /// For a deadline node: dropping it ends the timer task.
    _timer: Option<TimerStop>,
}

// ===== impl Shutdown =====

impl Shutdown {
    /// Creates the root of a new tree, not cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let shutdown = acqrel_pool::Shutdown::new();
    /// assert!(!shutdown.is_cancelled());
    /// assert!(shutdown.cause().is_none());
    /// ```
    pub fn new() -> Shutdown {
        Shutdown::from_node(Arc::new(Node::new()), None, None)
    }

    fn from_node(
        node: Arc<Node>,
        parent: Option<Arc<Handle>>,
        timer: Option<TimerStop>,
    ) -> Shutdown {
        Shutdown {
            handle: Arc::new(Handle {
                node,
                parent,
                _timer: timer,
            }),
        }
    }

    /// Creates a child: cancelled with this node's cause when this node is,
    /// and cancellable on its own without affecting this node.
    ///
    /// If this node is already cancelled, the child is born cancelled with
    /// the same cause.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::{Cause, Shutdown};
    ///
    /// let server = Shutdown::new();
    /// let request = server.child();
    /// request.cancel("client went away");
    /// assert!(!server.is_cancelled());
    ///
    /// server.cancel("shutting down");
    /// let late = server.child();
    /// assert!(Cause::ptr_eq(&late.cause().unwrap(), &server.cause().unwrap()));
    /// assert_eq!(request.cause().unwrap().to_string(), "client went away");
    /// ```
    pub fn child(&self) -> Shutdown {
        let (node, registered) = self.handle.node.new_child();
        self.adopt(node, registered, None)
    }

    /// The handle of a node that [`Node::new_child`] made under this one.
    fn adopt(&self, node: Arc<Node>, registered: bool, timer: Option<TimerStop>) -> Shutdown {
        let parent = registered.then(|| self.handle.clone());
        Shutdown::from_node(node, parent, timer)
    }

    /// Cancels this node and every descendant with `cause`. Returns `true`
    /// for the call that cancelled it; `false` if it was already cancelled,
    /// in which case the first cause stays.
    ///
    /// When it returns, this node is cancelled. When it returns `true`, so
    /// is every descendant, except below a descendant that a `cancel` of its
    /// own won first: that subtree keeps the descendant's cause, and is
    /// cancelled by the time *that* call returns. A cancelled child leaves
    /// its parent's registry. Never blocks on user code: wakers run after
    /// the node's lock is released.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::Shutdown;
    ///
    /// let shutdown = Shutdown::new();
    /// assert!(shutdown.cancel("first"));
    /// assert!(!shutdown.cancel(format!("second")));
    /// assert_eq!(shutdown.cause().unwrap().message(), Some("first"));
    /// ```
    pub fn cancel(&self, cause: impl Into<Cause>) -> bool {
        let handle = &*self.handle;
        let parent = handle.parent.as_ref().map(|parent| &*parent.node);
        handle.node.cancel_and_leave(parent, &cause.into())
    }

    /// Whether this node is cancelled. Once it returns `true`,
    /// [`cause`](Shutdown::cause) returns `Some` (Acquire: see the type's
    /// docs).
    ///
    /// # Examples
    ///
    /// ```
    /// let shutdown = acqrel_pool::Shutdown::new();
    /// let child = shutdown.child();
    /// shutdown.cancel("stop");
    /// assert!(child.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.handle.node.is_cancelled()
    }

    /// Why this node was cancelled: the cause of the `cancel` that reached
    /// it first, the same value for every node that cancellation reached.
    /// `None` while not cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let shutdown = acqrel_pool::Shutdown::new();
    /// assert!(shutdown.cause().is_none());
    /// shutdown.cancel("stop");
    /// assert_eq!(shutdown.cause().unwrap().to_string(), "stop");
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        self.handle.node.cause()
    }

    /// Completes once this node is cancelled. Runtime-agnostic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes removes its
    /// waker and consumes nothing; other waiters are unaffected.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::Shutdown;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    ///
    /// let shutdown = Shutdown::new();
    /// let worker = {
    ///     let shutdown = shutdown.clone();
    ///     tokio::spawn(async move { shutdown.cancelled().await })
    /// };
    /// shutdown.cancel("stop");
    /// worker.await.unwrap();
    /// # });
    /// ```
    pub async fn cancelled(&self) {
        self.handle.node.cancelled().await;
    }

    /// [`cancelled`](Shutdown::cancelled) holding a clone of this handle, so
    /// the future is `'static` (a node is cancelled through its parent only
    /// while a handle of it lives: this one keeps it so).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`cancelled`](Shutdown::cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::Shutdown;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    ///
    /// let shutdown = Shutdown::new();
    /// let stopped = tokio::spawn(shutdown.child().cancelled_owned());
    /// shutdown.cancel("stop");
    /// stopped.await.unwrap();
    /// # });
    /// ```
    pub fn cancelled_owned(&self) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move { this.cancelled().await }
    }

    /// Runs `future` until it completes (`Ok` with its output) or this node
    /// is cancelled (`Err` with the cause, and `future` is dropped).
    ///
    /// Cancellation is checked first on every poll: a node already
    /// cancelled returns `Err` without polling `future`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe if `future` is.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::Shutdown;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    ///
    /// let shutdown = Shutdown::new();
    /// assert_eq!(shutdown.run_until_cancelled(async { 7 }).await.unwrap(), 7);
    ///
    /// shutdown.cancel("stop");
    /// let stopped = shutdown.run_until_cancelled(std::future::pending::<()>()).await;
    /// assert_eq!(stopped.unwrap_err().to_string(), "stop");
    /// # });
    /// ```
    pub async fn run_until_cancelled<F: Future>(&self, future: F) -> Result<F::Output, Cause> {
        let mut future = pin!(future);
        let mut cancelled = pin!(self.cancelled());
        poll_fn(|cx| {
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(self.cancelled_cause()));
            }
            future.as_mut().poll(cx).map(Ok)
        })
        .await
    }

    /// The cause of a node seen cancelled.
    fn cancelled_cause(&self) -> Cause {
        self.cause()
            .expect("a cancelled node has a cause: it is stored before the latch opens")
    }

    /// Returns a guard that cancels this node, with a
    /// [`CauseKind::Dropped`] cause, when it is dropped without being
    /// [`disarm`](DropGuard::disarm)ed (Go's `defer cancel()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_pool::{CauseKind, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// {
    ///     let _guard = shutdown.drop_guard();
    ///     // ... an early return or a panic here still cancels
    /// }
    /// assert_eq!(shutdown.cause().unwrap().kind(), CauseKind::Dropped);
    /// ```
    pub fn drop_guard(&self) -> DropGuard {
        DropGuard {
            shutdown: self.clone(),
            armed: true,
        }
    }

    /// Creates a child (see [`child`](Shutdown::child)) that cancels itself
    /// with a [`CauseKind::DeadlineExceeded`] cause at `deadline`, unless it
    /// was cancelled before. A deadline already past gives a child cancelled
    /// at once.
    ///
    /// The deadline runs as a tokio task that ends when the deadline
    /// passes, when the child is cancelled, or when every handle of the
    /// child (and of its descendants) is dropped, whichever is first. It
    /// follows the runtime's clock, paused or not.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or in one without its time driver (as
    /// `tokio::time::sleep_until`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_pool::{CauseKind, Shutdown};
    /// use tokio::time::Instant;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true)
    /// #     .build().unwrap().block_on(async {
    ///
    /// let server = Shutdown::new();
    /// let deadline = Instant::now() + Duration::from_secs(2);
    /// let request = server.with_deadline(deadline);
    /// request.cancelled().await;
    /// assert_eq!(Instant::now(), deadline);
    /// assert_eq!(request.cause().unwrap().kind(), CauseKind::DeadlineExceeded);
    /// assert!(!server.is_cancelled());
    /// # });
    /// ```
    #[track_caller]
    pub fn with_deadline(&self, deadline: Instant) -> Shutdown {
        self.with_timer(tokio::time::sleep_until(deadline))
    }

    /// Creates a child that cancels itself with a
    /// [`CauseKind::DeadlineExceeded`] cause once `timeout` has passed: see
    /// [`with_deadline`](Shutdown::with_deadline).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or in one without its time driver (as
    /// `tokio::time::sleep`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use acqrel_pool::Shutdown;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true)
    /// #     .build().unwrap().block_on(async {
    ///
    /// let request = Shutdown::new().with_timeout(Duration::from_millis(300));
    /// let slow = request.run_until_cancelled(tokio::time::sleep(Duration::from_secs(5)));
    /// assert_eq!(slow.await.unwrap_err().to_string(), "deadline exceeded");
    /// # });
    /// ```
    #[track_caller]
    pub fn with_timeout(&self, timeout: Duration) -> Shutdown {
        self.with_timer(tokio::time::sleep(timeout))
    }

    /// A child cancelled when `sleep` completes.
    fn with_timer(&self, sleep: Sleep) -> Shutdown {
        let (node, registered) = self.handle.node.new_child();
        let registered_in = registered.then(|| self.handle.node.clone());
        let deadline = sleep.deadline();
        let timer = if node.is_cancelled() {
            None
        } else if deadline <= Instant::now() {
            let cause = Cause::deadline_exceeded(deadline);
            node.cancel_and_leave(registered_in.as_deref(), &cause);
            None
        } else {
            Some(deadline::spawn(node.clone(), registered_in, sleep))
        };
        self.adopt(node, registered, timer)
    }

    /// How many children this node has registered: those not cancelled
    /// that have a live handle. `0` once this node is cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let shutdown = acqrel_pool::Shutdown::new();
    /// let child = shutdown.child();
    /// let grandchild = child.child();
    /// assert_eq!(shutdown.child_count(), 1);
    /// drop(child); // the grandchild keeps it registered
    /// assert_eq!(shutdown.child_count(), 1);
    /// drop(grandchild);
    /// assert_eq!(shutdown.child_count(), 0);
    /// ```
    pub fn child_count(&self) -> usize {
        self.handle.node.child_count()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `cause()` clones the cause out of the lock: its `Debug` may be
        // user code, which never runs under our lock.
        f.debug_struct("Shutdown")
            .field("cancelled", &self.is_cancelled())
            .field("cause", &self.cause())
            .field("children", &self.child_count())
            .finish()
    }
}

// ===== impl Handle =====

impl Drop for Handle {
    /// Leaves the parent's registry, then lets go of the parent. A chain of
    /// ancestors that only this handle kept alive is unlinked here, one
    /// level per iteration, rather than by nested drops: a 10,000-deep chain
    /// would otherwise overflow the stack.
    fn drop(&mut self) {
        let Some(mut parent) = self.parent.take() else {
            return;
        };
        parent.node.remove_child(&self.node);
        while let Some(mut handle) = sync::arc_into_inner(parent) {
            let Some(grandparent) = handle.parent.take() else {
                break;
            };
            grandparent.node.remove_child(&handle.node);
            parent = grandparent;
            // `handle` is dropped here, with no parent left to unlink: its
            // own `Drop` returns at once.
        }
    }
}

// ===== DropGuard =====

/// Cancels its [`Shutdown`] with a [`CauseKind::Dropped`] cause when
/// dropped, unless [`disarm`](DropGuard::disarm)ed. Returned by
/// [`Shutdown::drop_guard`].
///
/// # Examples
///
/// ```
/// use acqrel_pool::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let guard = shutdown.drop_guard();
/// let kept = guard.disarm();
/// assert!(!kept.is_cancelled());
/// assert!(!shutdown.is_cancelled());
/// ```
#[derive(Debug)]
pub struct DropGuard {
    shutdown: Shutdown,
    armed: bool,
}

impl DropGuard {
    /// Defuses the guard and returns its [`Shutdown`], not cancelled by
    /// the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let shutdown = acqrel_pool::Shutdown::new();
    /// let kept = shutdown.drop_guard().disarm();
    /// assert!(!kept.is_cancelled());
    /// ```
    pub fn disarm(mut self) -> Shutdown {
        self.armed = false;
        self.shutdown.clone()
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shutdown.cancel(Cause::dropped());
        }
    }
}
