//! The cancellation tree's nodes: who is cancelled, why, and which children
//! a cancellation must reach.
//!
//! # Invariants
//!
//! * `state.cause` goes from `None` to `Some` once, under the `state` lock,
//!   and never changes again: the first canceller wins, every later one
//!   finds it set and leaves it.
//! * `state.children` holds the live children of an uncancelled node. The
//!   canceller that sets `cause` takes them all in the same critical
//!   section, and a node with a cause never registers another child
//!   ([`Node::new_child`] checks `cause` and registers in one critical
//!   section). So a child is either taken by the canceller, and cancelled by
//!   it, or born after the cause was set, and born cancelled with it: a
//!   `child()` racing `cancel()` is never left uncancelled.
//! * A child is in its parent's `children` only while a `Shutdown` handle of
//!   it lives (the handle removes it when dropped, see `Handle`'s `Drop`),
//!   and until it is cancelled ([`Node::cancel_and_leave`]); a child's
//!   handle keeps its parent's handle alive. So a node whose
//!   handles are all gone has no registered children, and dropping a node
//!   never drops a subtree recursively.
//!
//! # Orderings
//!
//! The `state` lock decides everything above. Cancellation is *observed*
//! without it, through `latch`:
//!
//! * **Release**: [`Node::set_cause`] opens `latch` after the critical
//!   section that stored the cause (`Latch::open` is a Release swap).
//! * **Acquire**: [`Node::is_cancelled`] (`Latch::is_open`, an Acquire load)
//!   and every `cancelled()` wait returning.
//!
//! A thread that sees the latch open therefore happens-after the critical
//! section that stored the cause, so its next [`Node::cause`] finds it:
//! `is_cancelled()` implies `cause().is_some()`. A canceller that finds the
//! cause already set opens the latch too (a no-op if the winner got there
//! first), so every `cancel()` returns with its node observably cancelled.
//!
//! No waker runs and nothing a user gave us is dropped under the lock: the
//! latch is opened after unlocking, and the children are cancelled one by
//! one after the parent's lock is released, each under its own lock.
//! [`Node::cancel`] walks the subtree with an explicit stack, so a deep tree
//! never overflows the thread's stack.

use std::mem;
use std::ptr;

use acqrel_core::Latch;

use super::cause::Cause;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{self, Arc, Mutex};

/// Above this capacity, a registry shrinks once it is a quarter full, so a
/// burst of children does not pin its memory for the parent's lifetime.
const SHRINK_ABOVE: usize = 64;

pub(super) struct Node {
    /// Opened once `state.cause` is set (see `# Orderings`).
    latch: Latch,
    state: Mutex<State>,
    /// This node's index in its parent's `state.children`. Read and written
    /// only under the parent's `state` lock.
    index: AtomicUsize,
}

struct State {
    /// Set once, by the first canceller.
    cause: Option<Cause>,
    /// The live children, while `cause` is `None`; each child's `index`
    /// is its position here. Always empty once `cause` is set.
    children: Vec<Arc<Node>>,
}

impl Node {
    /// A new, uncancelled node without children.
    pub(super) fn new() -> Node {
        Node::with_cause(None)
    }

    fn with_cause(cause: Option<Cause>) -> Node {
        let cancelled = cause.is_some();
        let node = Node {
            latch: Latch::new(),
            state: Mutex::new(State {
                cause,
                children: Vec::new(),
            }),
            index: AtomicUsize::new(0),
        };
        if cancelled {
            // Release (publishing the cause stored above): see `# Orderings`.
            // Nobody waits on a node not yet returned, so this wakes nobody.
            node.latch.open();
        }
        node
    }

    /// Creates a child of `self`. Returns it, and whether it was registered
    /// (`false`: `self` was already cancelled and the child is born
    /// cancelled with `self`'s cause).
    pub(super) fn new_child(&self) -> (Arc<Node>, bool) {
        let mut state = sync::lock(&self.state);
        if let Some(cause) = &state.cause {
            let cause = cause.clone();
            drop(state);
            return (Arc::new(Node::with_cause(Some(cause))), false);
        }
        // Registered in the critical section that found no cause (see
        // `# Invariants`).
        let child = Arc::new(Node::new());
        // Relaxed: `index` is only accessed under this node's lock, which
        // orders every access.
        child.index.store(state.children.len(), Ordering::Relaxed);
        state.children.push(child.clone());
        (child, true)
    }

    /// Removes `child` from `self`'s registry, if it is there (it is not
    /// once `self` was cancelled).
    pub(super) fn remove_child(&self, child: &Node) {
        let mut state = sync::lock(&self.state);
        // Relaxed: under the lock (see `new_child`).
        let index = child.index.load(Ordering::Relaxed);
        let registered = state
            .children
            .get(index)
            .is_some_and(|node| ptr::eq(&**node, child));
        if !registered {
            return;
        }
        let removed = state.children.swap_remove(index);
        if let Some(moved) = state.children.get(index) {
            // Relaxed: under the lock (see `new_child`).
            moved.index.store(index, Ordering::Relaxed);
        }
        let len = state.children.len();
        if state.children.capacity() > SHRINK_ABOVE && len < state.children.capacity() / 4 {
            state.children.shrink_to(len * 2);
        }
        drop(state);
        drop(removed);
    }

    /// Cancels `self` and its whole subtree with `cause`, unless `self` is
    /// already cancelled. Returns whether this call cancelled `self`.
    ///
    /// Descendants already cancelled on their own keep their cause, and so
    /// do their subtrees (which their own cancellation reached).
    pub(super) fn cancel(&self, cause: &Cause) -> bool {
        let Some(mut pending) = self.set_cause(cause) else {
            return false;
        };
        // Depth-first with an explicit stack: no recursion however deep.
        while let Some(node) = pending.pop() {
            if let Some(children) = node.set_cause(cause) {
                pending.extend(children);
            }
        }
        true
    }

    /// [`cancel`](Node::cancel), and if this call cancelled `self`, removes
    /// it from `parent`'s registry (a cancelled child needs no more
    /// cancelling: Go's `removeChild`).
    pub(super) fn cancel_and_leave(&self, parent: Option<&Node>, cause: &Cause) -> bool {
        let won = self.cancel(cause);
        if let Some(parent) = parent.filter(|_| won) {
            parent.remove_child(self);
        }
        won
    }

    /// Stores `cause` if `self` has none yet, and opens the latch. Returns
    /// the children to cancel next, or `None` if another cause was there
    /// first.
    fn set_cause(&self, cause: &Cause) -> Option<Vec<Arc<Node>>> {
        let mut state = sync::lock(&self.state);
        let won = state.cause.is_none();
        let children = if won {
            state.cause = Some(cause.clone());
            mem::take(&mut state.children)
        } else {
            Vec::new()
        };
        drop(state);
        // Release (publishing the cause stored above): see `# Orderings`.
        // A loser opens it too: the winner may not have yet.
        self.latch.open();
        won.then_some(children)
    }

    /// Whether `self` is cancelled (Acquire: see `# Orderings`).
    #[inline]
    pub(super) fn is_cancelled(&self) -> bool {
        self.latch.is_open()
    }

    /// The cause, once one is stored.
    pub(super) fn cause(&self) -> Option<Cause> {
        sync::lock(&self.state).cause.clone()
    }

    /// Completes once `self` is cancelled. Cancel safe (see `Latch::opened`).
    pub(super) async fn cancelled(&self) {
        self.latch.opened().await;
    }

    /// How many children are registered.
    pub(super) fn child_count(&self) -> usize {
        sync::lock(&self.state).children.len()
    }
}
