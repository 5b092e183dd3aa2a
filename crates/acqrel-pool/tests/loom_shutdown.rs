//! Loom models of the cancellation tree (`src/shutdown/node.rs`,
//! `# Invariants` and `# Orderings`): a child created while its parent is
//! being cancelled ends up cancelled with the parent's cause; of two racing
//! cancels exactly one wins and everyone sees its cause; a node seen
//! cancelled already shows its cause; a waiter on a descendant is woken;
//! racing drops leave the parent's registry empty.
//!
//! The latch that publishes a cancellation has its own model in
//! acqrel-core; these check the decisions made under the node's lock.
//!
//! Mutation check (`tests/loom_mutants.txt`): checking the parent's cause
//! and registering the child in two critical sections, opening the latch
//! before the cause is stored, letting a later cause overwrite the first,
//! a losing canceller that returns before the latch is open, and a
//! registry that forgets to re-index the entry it moves each make a model
//! fail.
#![cfg(acqrel_loom)]

use acqrel_pool::{Cause, Shutdown};
use loom::future::block_on;
use loom::thread;

/// Asserts that `node` is cancelled with the very `cause`.
fn assert_cancelled_with(node: &Shutdown, cause: &Cause) {
    assert!(node.is_cancelled());
    let seen = node.cause().expect("a cancelled node has a cause");
    assert!(Cause::ptr_eq(&seen, cause), "{seen:?}, not {cause:?}");
}

/// Cancels `node` with a new message cause on another thread and checks
/// it is cancelled then; the join handle returns the cause and whether
/// that cancel won.
fn cancel_on_another_thread(
    node: &Shutdown,
    message: &'static str,
) -> thread::JoinHandle<(bool, Cause)> {
    let node = node.clone();
    thread::spawn(move || {
        let cause = Cause::from(message);
        let won = node.cancel(cause.clone());
        // Whatever `cancel` returned, the node is cancelled when it returns.
        assert!(node.is_cancelled());
        (won, cause)
    })
}

#[test]
fn a_child_created_during_cancel_ends_up_cancelled() {
    loom::model(|| {
        let root = Shutdown::new();
        let middle = root.child();
        let canceller = cancel_on_another_thread(&root, "stop");
        // Either registered before the cancel took the registry (and
        // cancelled by it) or created after the cause was set (and born
        // cancelled): never neither.
        let child = middle.child();
        let (won, cause) = canceller.join().unwrap();
        assert!(won);
        assert_cancelled_with(&child, &cause);
        assert_cancelled_with(&middle, &cause);
        assert_eq!((root.child_count(), middle.child_count()), (0, 0));
    });
}

#[test]
fn racing_cancels_agree_on_one_winner() {
    loom::model(|| {
        let root = Shutdown::new();
        let child = root.child();
        let other = cancel_on_another_thread(&root, "b");
        let mine = Cause::from("a");
        let i_won = root.cancel(mine.clone());
        // Whatever `cancel` returned, the node is cancelled when it returns.
        assert!(root.is_cancelled());
        let (other_won, theirs) = other.join().unwrap();
        assert_ne!(i_won, other_won);
        let winner = if i_won { mine } else { theirs };
        assert_cancelled_with(&root, &winner);
        assert_cancelled_with(&child, &winner);
    });
}

#[test]
fn a_childs_cancel_racing_its_parents_never_reaches_the_parent() {
    loom::model(|| {
        let root = Shutdown::new();
        let child = root.child();
        let from_child = cancel_on_another_thread(&child, "child");
        let parents = Cause::from("parent");
        assert!(root.cancel(parents.clone()));
        let (child_won, childs) = from_child.join().unwrap();
        assert_cancelled_with(&root, &parents);
        assert_cancelled_with(&child, if child_won { &childs } else { &parents });
        assert_eq!(root.child_count(), 0);
    });
}

#[test]
fn a_node_seen_cancelled_shows_its_cause() {
    loom::model(|| {
        let root = Shutdown::new();
        let child = root.child();
        let canceller = cancel_on_another_thread(&root, "stop");
        for node in [&child, &root] {
            if node.is_cancelled() {
                assert!(node.cause().is_some());
            }
        }
        canceller.join().unwrap();
    });
}

#[test]
fn a_waiter_on_a_descendant_is_woken_and_sees_the_cause() {
    loom::model(|| {
        let root = Shutdown::new();
        let grandchild = root.child().child();
        let canceller = cancel_on_another_thread(&root, "stop");
        block_on(grandchild.cancelled());
        assert!(grandchild.cause().is_some());
        let (_, cause) = canceller.join().unwrap();
        assert_cancelled_with(&grandchild, &cause);
    });
}

#[test]
fn racing_drops_leave_the_registry_empty() {
    loom::model(|| {
        let root = Shutdown::new();
        let (first, second) = (root.child(), root.child());
        let dropper = thread::spawn(move || drop(first));
        drop(second);
        dropper.join().unwrap();
        assert_eq!(root.child_count(), 0);
        // The registry still reaches a child registered after the drops.
        let third = root.child();
        assert!(root.cancel("stop"));
        assert!(third.is_cancelled());
    });
}
