//! The task behind [`Shutdown::with_deadline`](crate::Shutdown::with_deadline):
//! it cancels its node when the deadline passes, and ends early, without
//! waiting for the deadline, when the node is cancelled by anyone or when
//! every handle of it is dropped.
//!
//! The task holds the node itself (and its parent's node), not a handle:
//! it neither keeps the node in its parent's registry nor its parent's
//! handle alive. What tells it the handles
//! are gone is [`TimerStop`], owned by the node's handle and dropped with it.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;

use tokio::sync::oneshot;
use tokio::time::Sleep;

use super::cause::Cause;
use super::node::Node;
use crate::sync::Arc;

/// Ends the timer task of [`spawn`] when dropped.
pub(super) struct TimerStop {
    _stop: oneshot::Sender<()>,
}

/// Spawns the task that cancels `node` when `sleep` completes, with a
/// [`CauseKind::DeadlineExceeded`](crate::CauseKind::DeadlineExceeded)
/// cause carrying `sleep`'s deadline, and then removes it from `parent`'s
/// registry (if it is registered there).
///
/// # Panics
///
/// Outside a tokio runtime (like `tokio::spawn`).
pub(super) fn spawn(node: Arc<Node>, parent: Option<Arc<Node>>, sleep: Sleep) -> TimerStop {
    let (stop, stopped) = oneshot::channel();
    drop(tokio::spawn(run(node, parent, sleep, stopped)));
    TimerStop { _stop: stop }
}

async fn run(
    node: Arc<Node>,
    parent: Option<Arc<Node>>,
    sleep: Sleep,
    mut stopped: oneshot::Receiver<()>,
) {
    let deadline = sleep.deadline();
    let mut sleep = pin!(sleep);
    let mut cancelled = pin!(node.cancelled());
    let fired = poll_fn(|cx| {
        // The receiver completes (with an error) once the `TimerStop` is
        // dropped: every handle of the node is gone.
        if cancelled.as_mut().poll(cx).is_ready() || Pin::new(&mut stopped).poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        sleep.as_mut().poll(cx).map(|()| true)
    })
    .await;
    if fired {
        node.cancel_and_leave(parent.as_deref(), &Cause::deadline_exceeded(deadline));
    }
}
