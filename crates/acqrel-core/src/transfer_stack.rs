//! A lock-free stack that hands its whole contents over at once (the
//! guide's lock-free stack, kept for its push and its publication, with its
//! ABA-prone `Pop` replaced by a swap of the whole list).
//!
//! Many producers [`push`](TransferStack::push) with Treiber's
//! compare-and-swap on the head; a consumer [`take_all`](TransferStack::take_all)
//! swaps the head for null and walks the list it took, which nobody else can
//! reach any more. It is the shape of Linux's `llist_add`/`llist_del_all`
//! and of the waiter queues inside std's `Once`: a mailbox, a batch of
//! completions, a free list handed to a reclaimer.
//!
//! The type's docs explain why there is no `pop` (the guide's `Pop` needs
//! deferred reclamation in Rust). What makes `take_all` safe without it:
//! after its swap the taken list belongs to one consumer, and `push` never
//! reads a node after publishing it. A pusher reads the head only as a
//! value: it writes it into its own, still private, node as the link, and
//! its compare-exchange checks that the head still holds that value; it
//! never dereferences it. So no node is freed while another thread reads it,
//! and a head that went from a node `A` through null back to a new node at
//! `A`'s address (ABA) is harmless: the link the pusher wrote is exactly the
//! current head's address.
//!
//! # Orderings
//!
//! The head is changed only by read-modify-writes: `push`'s successful
//! compare-exchange (Release) and `take_all`'s swap (Acquire). Each push's
//! Release heads a release sequence that every later read-modify-write of
//! the head extends, so the swap that takes a list synchronizes with the push
//! of *every* node in it, not only the last: each node's value and link, and
//! whatever its pusher wrote before pushing, are visible to the consumer.
//! `is_empty` loads with Acquire for the same reason.
//!
//! A pusher's reads of the head (its first load and a failed
//! compare-exchange) are Relaxed: the value read is only written into the
//! pusher's own node as its link and compared by the next compare-exchange;
//! it is never dereferenced, so no data has to be visible through it.
//!
//! # Provenance
//!
//! The ABA case above is harmless for the machine but not for Rust's
//! abstract machine: a pointer carries the provenance of the allocation it
//! was derived from, and a link copied from the old `A` may not be used to
//! reach the new node at the same address, even though the bits are equal
//! (rust-lang/rust#121950, which std's `Once` and `RwLock` queues share;
//! rust-lang/unsafe-code-guidelines#480). So a node's link is stored as a
//! bare address, every node's provenance is exposed when it is allocated,
//! and the consumer turns a link back into a pointer with
//! [`ptr::with_exposed_provenance_mut`], which picks up the provenance of
//! the node that lives at that address when it is followed. The head itself
//! only ever holds pointers that `push` created, so it stays a pointer.
//! Turning an address into a pointer is an error under
//! `-Zmiri-strict-provenance`, so Miri runs this type's tests with
//! permissive provenance; with plain pointer links and strict provenance it
//! reports the ABA case as a use-after-free, as it should.

use std::fmt;
use std::iter::FusedIterator;
use std::mem::{self, ManuallyDrop};
use std::ptr;

use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::sync::{UnsafeCell, const_fn};

// ===== Node =====

/// One pushed value and the link to the node pushed just before it.
///
/// Allocated by [`Node::alloc`] in `push`, written only while unpublished,
/// and freed by the [`TakeAll`] that took it.
struct Node<T> {
    /// The value. Written once, when `push` builds the node before
    /// publishing it, and moved out once, by the `TakeAll` that owns the
    /// node. A shim `UnsafeCell` so that loom checks the move happens after
    /// the write: a push published with Relaxed is a causality violation.
    value: UnsafeCell<ManuallyDrop<T>>,
    /// The address of the node pushed just before this one, 0 for none.
    /// Written by `push` while the node is unpublished (once per attempt),
    /// read by the `TakeAll` that owns it. An address, not a pointer: see
    /// "Provenance" in the module docs.
    next: UnsafeCell<usize>,
}

impl<T> Node<T> {
    /// Allocates an unlinked node holding `value` and exposes its
    /// provenance, so that a link to it (an address) can be followed.
    fn alloc(value: T) -> *mut Node<T> {
        let node = Box::into_raw(Box::new(Node {
            value: UnsafeCell::new(ManuallyDrop::new(value)),
            next: UnsafeCell::new(0),
        }));
        // Only the side effect matters: links to this node are followed with
        // `ptr::with_exposed_provenance_mut` (see "Provenance").
        let _ = node.expose_provenance();
        node
    }

    /// Returns the node linked after this one, or null.
    fn next(&self) -> *mut Node<T> {
        // SAFETY: the link is written only by `push` while the node is
        // unpublished; the caller reached the node through a taken list,
        // after the Acquire swap in `take_all` that synchronized with the
        // push publishing it, so no write can race with this read.
        let next = self.next.with(|next| unsafe { *next });
        if next == 0 {
            ptr::null_mut()
        } else {
            ptr::with_exposed_provenance_mut(next)
        }
    }

    /// Moves the value out, consuming the node.
    fn into_value(self) -> T {
        // SAFETY: the value was initialized by `alloc` and this is the only
        // place that moves it out; it consumes the node, which is dropped at
        // the end of this function without dropping the value again
        // (`ManuallyDrop`). The caller owns the node, so nothing else
        // accesses the cell.
        self.value
            .with_mut(|value| unsafe { ManuallyDrop::take(&mut *value) })
    }
}

// ===== TransferStack =====

/// A lock-free stack of `T`s that many threads push onto and a consumer
/// empties at once.
///
/// Replaces the guide's lock-free stack (`atomic.Pointer[node]` with a
/// compare-and-swap `Push` and `Pop`). [`push`] is the same Treiber push;
/// instead of a per-node `Pop`, [`take_all`] takes the whole list with one
/// swap and returns an iterator that owns it, newest value first. The
/// **release** is each [`push`]; the **acquire** is [`take_all`] (and
/// [`is_empty`] returning `false`): a consumer sees every taken value and
/// everything its pusher wrote before pushing it, for *every* value in the
/// list, not only the newest.
///
/// Every push allocates one node; values left in the stack are dropped with
/// it.
///
/// # Why there is no `pop`
///
/// The guide's `Pop` loads the head `A`, reads `A.next` (call it `B`) and
/// compare-and-swaps the head from `A` to `B`. In Go the garbage collector
/// keeps `A` alive while a popping goroutine still holds it. In Rust a
/// popped node is freed by whoever popped it, so a second popper that
/// loaded `A` too and was preempted before reading `A.next` would read
/// freed memory. Worse, if `B` is popped and freed as well and a new node
/// is allocated at `A`'s address and pushed, the head is `A` again (ABA):
/// the second popper's compare-and-swap from `A` to its stale `B` succeeds
/// and the head points at freed memory. A safe `pop` needs deferred
/// reclamation (epochs as in crossbeam-epoch, or hazard pointers) or
/// never-freed nodes behind a generation-tagged head.
///
/// `take_all` needs none of that: the list it takes belongs to one
/// consumer, and a push never reads another node, so no node is ever freed
/// while another thread reads it. A consumer that wants one value at a time
/// takes all and iterates.
///
/// [`push`]: TransferStack::push
/// [`take_all`]: TransferStack::take_all
/// [`is_empty`]: TransferStack::is_empty
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use acqrel_core::TransferStack;
///
/// let done = Arc::new(TransferStack::new());
/// let workers: Vec<_> = (0..4)
///     .map(|id| {
///         let done = done.clone();
///         std::thread::spawn(move || done.push(format!("job {id} finished")))
///     })
///     .collect();
/// for worker in workers {
///     worker.join().unwrap();
/// }
///
/// let mut reports: Vec<String> = done.take_all().collect();
/// reports.sort();
/// assert_eq!(reports.len(), 4);
/// assert_eq!(reports[0], "job 0 finished");
/// assert!(done.is_empty());
/// ```
#[doc(alias = "Treiber")]
pub struct TransferStack<T> {
    /// The most recently pushed node, or null when empty. The nodes reachable
    /// from it belong to the stack; `take_all` hands them to a `TakeAll`.
    head: AtomicPtr<Node<T>>,
}

// SAFETY: the stack owns the values in it; sending the stack sends them (and
// dropping it on the receiving thread drops them there), which `T: Send`
// allows.
unsafe impl<T: Send> Send for TransferStack<T> {}

// SAFETY: through `&TransferStack` a thread can only move values in (`push`)
// and out (`take_all`), never see one in place: a shared stack never lends a
// `&T`. So sharing it moves values between threads and needs `T: Send`, not
// `T: Sync`. The head is an atomic and the nodes are synchronized by its
// release/acquire pairs (see "Orderings" in the module docs).
unsafe impl<T: Send> Sync for TransferStack<T> {}

impl<T> TransferStack<T> {
    const_fn! {
        /// Creates an empty stack. Allocates nothing, and is `const`, so a
        /// stack can live in a `static`.
        ///
        /// # Examples
        ///
        /// ```
        /// use acqrel_core::TransferStack;
        ///
        /// static LOG: TransferStack<&str> = TransferStack::new();
        /// LOG.push("started");
        /// assert_eq!(LOG.take_all().collect::<Vec<_>>(), ["started"]);
        /// ```
        pub fn new() -> TransferStack<T> {
            TransferStack {
                head: AtomicPtr::new(ptr::null_mut()),
            }
        }
    }

    /// Pushes `value` on top of the stack. Lock-free: it retries only when
    /// another push or a `take_all` changed the head in between.
    ///
    /// Allocates one node per call.
    ///
    /// # Examples
    ///
    /// ```
    /// let stack = acqrel_core::TransferStack::new();
    /// stack.push(1);
    /// stack.push(2);
    /// assert_eq!(stack.take_all().collect::<Vec<_>>(), [2, 1]);
    /// ```
    pub fn push(&self, value: T) {
        let node = Node::alloc(value);
        // Relaxed: the head is only the first guess for the new node's link.
        // It is never dereferenced, and the compare-exchange below checks it.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is not published yet: this thread holds the only
            // pointer to it, so nothing else accesses its link.
            unsafe { (*node).next.with_mut(|next| *next = head.addr()) };
            // Release on success: pairs with the Acquire swap in `take_all`
            // and the Acquire load in `is_empty`, publishing the node's value
            // and link and this thread's earlier writes. Relaxed on failure:
            // nothing is published, and the head read is only the next guess
            // for the link, written into this thread's own node and never
            // dereferenced.
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    /// Takes every value pushed so far, leaving the stack empty, and returns
    /// an iterator that owns them, newest first.
    ///
    /// One atomic swap, whatever the number of values; concurrent pushes go
    /// either into the taken list or into the now empty stack, never both.
    /// Values the iterator has not yielded are dropped with it.
    ///
    /// # Examples
    ///
    /// ```
    /// let stack = acqrel_core::TransferStack::new();
    /// for word in ["a", "b", "c"] {
    ///     stack.push(word.to_string());
    /// }
    /// let mut taken = stack.take_all();
    /// assert!(stack.is_empty());
    /// assert_eq!(taken.next().as_deref(), Some("c"));
    /// drop(taken); // drops "b" and "a"
    /// ```
    pub fn take_all(&self) -> TakeAll<T> {
        // Acquire: pairs with the Release compare-exchange in `push`. The
        // pushes of the taken nodes form one release sequence on the head
        // (read-modify-writes only), so this synchronizes with every one of
        // them: each node's value and link are visible before `TakeAll`
        // reads them.
        let head = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        TakeAll { head }
    }

    /// Returns whether the stack is empty right now.
    ///
    /// A `false` also makes the writes that pushers did before pushing
    /// visible to the caller, like [`take_all`](Self::take_all) does.
    ///
    /// # Examples
    ///
    /// ```
    /// let stack = acqrel_core::TransferStack::new();
    /// assert!(stack.is_empty());
    /// stack.push(());
    /// assert!(!stack.is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        // Acquire: pairs with the Release compare-exchange in `push`.
        self.head.load(Ordering::Acquire).is_null()
    }
}

impl<T> Default for TransferStack<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for TransferStack<T> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can touch the stack any more. Taking
        // the list reuses `TakeAll`'s drop to free every node and value.
        drop(self.take_all());
    }
}

impl<T> fmt::Debug for TransferStack<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransferStack")
            .field("is_empty", &self.is_empty())
            .finish_non_exhaustive()
    }
}

// ===== TakeAll =====

/// The values taken from a [`TransferStack`] by
/// [`take_all`](TransferStack::take_all), newest first.
///
/// Owns the taken list: no other thread can reach it. Dropping the iterator
/// drops the values it has not yielded.
///
/// # Examples
///
/// ```
/// let stack = acqrel_core::TransferStack::new();
/// stack.push(1);
/// stack.push(2);
/// let taken = stack.take_all();
/// stack.push(3); // goes to the stack, not to `taken`
/// assert_eq!(taken.collect::<Vec<_>>(), [2, 1]);
/// assert_eq!(stack.take_all().collect::<Vec<_>>(), [3]);
/// ```
#[must_use = "dropping a `TakeAll` drops the values it took"]
pub struct TakeAll<T> {
    /// The next node to yield, null once exhausted. It and the nodes linked
    /// after it belong to this iterator alone.
    head: *mut Node<T>,
}

// SAFETY: a `TakeAll` owns the nodes it took: no other thread dereferences
// them (a pusher may still hold one's address, but only compares it). Sending
// it sends the values, which `T: Send` allows.
unsafe impl<T: Send> Send for TakeAll<T> {}

// SAFETY: `&TakeAll` reads nothing but whether `head` is null (in `Debug`);
// like `vec::IntoIter`, it is shared across threads only when `T: Sync`.
unsafe impl<T: Sync> Sync for TakeAll<T> {}

impl<T> Iterator for TakeAll<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.head.is_null() {
            return None;
        }
        // Detach the node first: should anything below panic (only loom's
        // checks can), the rest of the list leaks instead of this node being
        // freed twice by `Drop`.
        let node = mem::replace(&mut self.head, ptr::null_mut());
        // SAFETY: a non-null `head` is a node of the list `take_all` took,
        // created by `Box::into_raw` in `Node::alloc` and published by a push
        // that the Acquire swap synchronized with. The list belongs to this
        // iterator alone, and each node is reclaimed once: `head` no longer
        // points at it. Unboxing frees the allocation.
        let node = *unsafe { Box::from_raw(node) };
        self.head = node.next();
        Some(node.into_value())
    }
}

impl<T> FusedIterator for TakeAll<T> {}

impl<T> Drop for TakeAll<T> {
    fn drop(&mut self) {
        /// Drops the rest of the list if dropping one value panics, so a
        /// panicking `Drop` leaks nothing else (as std's `LinkedList` does).
        struct DropRest<'a, T>(&'a mut TakeAll<T>);

        impl<T> Drop for DropRest<'_, T> {
            fn drop(&mut self) {
                self.0.for_each(drop);
            }
        }

        while let Some(value) = self.next() {
            let rest = DropRest(self);
            drop(value);
            mem::forget(rest);
        }
    }
}

impl<T> fmt::Debug for TakeAll<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TakeAll")
            .field("exhausted", &self.head.is_null())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// Counts its drops in a shared counter. Relaxed throughout: the tests
    /// read the counter on the thread that dropped.
    struct Counted {
        drops: Arc<AtomicUsize>,
        panic_on_drop: bool,
    }

    impl Counted {
        fn new(drops: &Arc<AtomicUsize>) -> Self {
            Self {
                drops: drops.clone(),
                panic_on_drop: false,
            }
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::Relaxed);
            if self.panic_on_drop {
                panic!("drop panicked");
            }
        }
    }

    #[test]
    fn take_all_yields_newest_first_and_empties_the_stack() {
        let stack = TransferStack::new();
        assert!(stack.is_empty());
        assert_eq!(stack.take_all().next(), None);
        for i in 0..5 {
            stack.push(i);
        }
        assert!(!stack.is_empty());
        let mut taken = stack.take_all();
        assert!(stack.is_empty());
        assert_eq!(taken.by_ref().collect::<Vec<_>>(), [4, 3, 2, 1, 0]);
        assert_eq!(taken.next(), None);
        stack.push(9);
        assert_eq!(stack.take_all().collect::<Vec<_>>(), [9]);
    }

    #[test]
    fn dropping_the_stack_drops_every_value() {
        let drops = Arc::new(AtomicUsize::new(0));
        let stack = TransferStack::default();
        for _ in 0..10 {
            stack.push(Counted::new(&drops));
        }
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(stack);
        assert_eq!(drops.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn dropping_a_partly_consumed_take_all_drops_the_rest() {
        let drops = Arc::new(AtomicUsize::new(0));
        let stack = TransferStack::new();
        for _ in 0..10 {
            stack.push(Counted::new(&drops));
        }
        let mut taken = stack.take_all();
        let first = taken.next().unwrap();
        drop(taken.next());
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(taken);
        assert_eq!(drops.load(Ordering::Relaxed), 9);
        drop(first);
        assert_eq!(drops.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn a_panicking_drop_still_drops_the_rest() {
        let drops = Arc::new(AtomicUsize::new(0));
        let stack = TransferStack::new();
        for i in 0..5 {
            let mut value = Counted::new(&drops);
            value.panic_on_drop = i == 2;
            stack.push(value);
        }
        let taken = stack.take_all();
        let result = panic::catch_unwind(AssertUnwindSafe(|| drop(taken)));
        assert!(result.is_err());
        assert_eq!(drops.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn debug_needs_no_debug_values() {
        struct Opaque;
        let stack = TransferStack::new();
        assert_eq!(format!("{stack:?}"), "TransferStack { is_empty: true, .. }");
        stack.push(Opaque);
        assert_eq!(
            format!("{stack:?}"),
            "TransferStack { is_empty: false, .. }"
        );
        let mut taken = stack.take_all();
        assert_eq!(format!("{taken:?}"), "TakeAll { exhausted: false, .. }");
        let _ = taken.next();
        assert_eq!(format!("{taken:?}"), "TakeAll { exhausted: true, .. }");
    }

    #[test]
    fn thread_safety_follows_send() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        // `Cell` is `Send` but not `Sync`: the stack still is `Sync`.
        send_sync::<TransferStack<std::cell::Cell<u8>>>();
        send::<TakeAll<std::cell::Cell<u8>>>();
        send_sync::<TakeAll<String>>();
    }
}
