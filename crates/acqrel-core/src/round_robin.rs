//! Fair selection over a fixed list (the guide's L.4, without the wrap).
//!
//! The guide's selector is `items[idx.Add(1) % len]`: a counter that grows
//! forever, reduced modulo the length. When that counter wraps, `% len`
//! restarts at 0 from wherever `2^bits % len` left it, so unless `len` is a
//! power of two some items get one extra turn at every wrap; with a signed
//! counter the wrap is a negative index instead. Real load balancers shipped
//! both bugs (Netflix ribbon #259, dotnet yarp #198), and on a 32-bit target
//! a busy service reaches `2^32` calls in days.
//!
//! [`RoundRobin`] never lets its counter leave `0..len`: each call advances it
//! with a compare-exchange loop through one step function,
//! `i → if i + 1 == len { 0 } else { i + 1 }`. Because `i < len`, `i + 1`
//! is at most `len`, which fits in a `usize`, so the step cannot overflow,
//! and its result is again in `0..len`. There is no wrap and no modulo, so no
//! skew: fairness holds forever, not only until the first wrap.
//!
//! # Orderings
//!
//! The counter publishes nothing, so every access is Relaxed. The items are
//! immutable from construction on; a thread that can call [`next`] reached
//! the `RoundRobin` through whatever shared it (an `Arc` moved into a
//! thread, a scoped borrow, a `static` initializer), and that hand-over is
//! what makes the items visible, not the counter.
//!
//! Fairness does not need stronger orderings either: all successful updates
//! of the counter are read-modify-writes of one atomic, and every
//! read-modify-write reads the latest value in that atomic's modification
//! order, whatever its ordering. The successful updates therefore form one
//! chain `0 → 1 → … → len - 1 → 0 → …` with no value repeated or skipped,
//! and any `c · len` calls (from any number of threads) hand out each index
//! exactly `c` times.
//!
//! [`next`]: RoundRobin::next

#![deny(unsafe_code)]

use std::fmt;

use crate::sync::atomic::{AtomicUsize, Ordering};

/// The error returned by [`RoundRobin::new`] for an empty list. It hands the
/// (empty) vector back, so no allocation the caller made is lost.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RoundRobinError<T> {
    /// The list had no items: there is nothing to select.
    #[error("round-robin list is empty")]
    Empty(Vec<T>),
}

impl<T> RoundRobinError<T> {
    /// Returns the vector the caller passed in.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_core::RoundRobin;
    ///
    /// let err = RoundRobin::<u32>::new(Vec::with_capacity(8)).unwrap_err();
    /// let items = err.into_inner();
    /// assert!(items.is_empty() && items.capacity() >= 8);
    /// ```
    pub fn into_inner(self) -> Vec<T> {
        match self {
            Self::Empty(items) => items,
        }
    }
}

impl<T> fmt::Debug for RoundRobinError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty(_) => f.write_str("Empty(..)"),
        }
    }
}

/// Hands out the items of a fixed, non-empty list in turn, from any number of
/// threads: a lock-free round-robin selector.
///
/// Replaces the guide's `items[idx.Add(1) % len]` (L.4), whose counter skews
/// the rotation (or, signed, goes negative) when it wraps. Here the shared
/// position never leaves `0..len`, so it never wraps and can never index out
/// of range.
///
/// There is no release or acquire: the position publishes nothing (all its
/// accesses are Relaxed). The items are immutable and were made visible by
/// whatever shared the selector.
///
/// # Fairness
///
/// Any `c · len` calls to [`next`], from any number of threads, return each
/// item exactly `c` times, however long the selector runs. Each call
/// advances the position with a compare-exchange loop through
/// `i → if i + 1 == len { 0 } else { i + 1 }`; since `i < len`, `i + 1`
/// cannot overflow, and there is no modulo to skew. The successful updates
/// of the one atomic form a single chain `0 → 1 → … → len - 1 → 0 → …`.
///
/// A single thread calling alone walks the list in order and starts again at
/// the front. Which thread gets which item under contention is not
/// specified, only how many times each item is handed out.
///
/// [`next`]: RoundRobin::next
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use acqrel_core::RoundRobin;
///
/// let backends = Arc::new(RoundRobin::new(vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"]).unwrap());
/// let workers: Vec<_> = (0..3)
///     .map(|_| {
///         let backends = backends.clone();
///         std::thread::spawn(move || *backends.next())
///     })
///     .collect();
/// let mut chosen: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
/// chosen.sort();
/// // Three calls over three items: each item exactly once.
/// assert_eq!(chosen, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
/// ```
pub struct RoundRobin<T> {
    items: Box<[T]>,
    /// The index [`next`](Self::next) hands out next; always in
    /// `0..items.len()`.
    position: AtomicUsize,
}

impl<T> RoundRobin<T> {
    /// Creates a selector over `items`, starting at the first.
    ///
    /// # Errors
    ///
    /// [`RoundRobinError::Empty`] if `items` is empty; the vector is handed
    /// back.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_core::{RoundRobin, RoundRobinError};
    ///
    /// let rr = RoundRobin::new(vec![1, 2]).unwrap();
    /// assert_eq!(rr.len(), 2);
    /// assert!(matches!(RoundRobin::<i32>::new(vec![]), Err(RoundRobinError::Empty(_))));
    /// ```
    pub fn new(items: Vec<T>) -> Result<Self, RoundRobinError<T>> {
        if items.is_empty() {
            return Err(RoundRobinError::Empty(items));
        }
        Ok(Self {
            items: items.into_boxed_slice(),
            position: AtomicUsize::new(0),
        })
    }

    /// Returns the next item in turn.
    ///
    /// Lock-free: a call retries only when another call advanced the
    /// position in between, and then that other call made progress.
    ///
    /// # Examples
    ///
    /// ```
    /// let rr = acqrel_core::RoundRobin::new(vec!['a', 'b', 'c']).unwrap();
    /// let picks: String = (0..7).map(|_| *rr.next()).collect();
    /// assert_eq!(picks, "abcabca");
    /// ```
    #[inline]
    pub fn next(&self) -> &T {
        let len = self.items.len();
        // Relaxed (success and failure): the position publishes nothing (see
        // the module docs); the read-modify-write alone makes every index in
        // the chain of updates unique, whatever the ordering.
        let index = match self
            .position
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| Some(step(i, len)))
        {
            Ok(index) | Err(index) => index,
        };
        &self.items[index]
    }

    /// Returns the number of items (never zero).
    ///
    /// # Examples
    ///
    /// ```
    /// let rr = acqrel_core::RoundRobin::new(vec![(); 3]).unwrap();
    /// assert_eq!(rr.len(), 3);
    /// ```
    #[expect(
        clippy::len_without_is_empty,
        reason = "never empty: `new` rejects empty lists"
    )]
    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Returns all the items, in their original order.
    ///
    /// # Examples
    ///
    /// ```
    /// let rr = acqrel_core::RoundRobin::new(vec![1, 2, 3]).unwrap();
    /// rr.next();
    /// assert_eq!(rr.as_slice(), &[1, 2, 3]);
    /// ```
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        &self.items
    }
}

/// The position after `current` in a list of `len` items: `current + 1`,
/// or 0 after the last item.
///
/// Requires `current < len`; then `current + 1 <= len` cannot overflow and
/// the result is again `< len`.
#[inline]
fn step(current: usize, len: usize) -> usize {
    debug_assert!(current < len, "position {current} out of 0..{len}");
    if current + 1 == len { 0 } else { current + 1 }
}

impl<T: fmt::Debug> fmt::Debug for RoundRobin<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoundRobin")
            .field("items", &self.items)
            // Relaxed: a diagnostic snapshot; nothing is read through it.
            .field("position", &self.position.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    #[test]
    fn step_wraps_at_the_last_index_and_never_overflows() {
        assert_eq!(step(0, 1), 0);
        assert_eq!(step(0, 3), 1);
        assert_eq!(step(1, 3), 2);
        assert_eq!(step(2, 3), 0);
        // The largest possible list (of zero-sized items): `current + 1`
        // reaches `usize::MAX` but never goes past it.
        assert_eq!(step(usize::MAX - 2, usize::MAX), usize::MAX - 1);
        assert_eq!(step(usize::MAX - 1, usize::MAX), 0);
    }

    #[test]
    fn cycles_exactly_with_a_length_that_is_not_a_power_of_two() {
        let len = 7;
        let rr = RoundRobin::new((0..len).collect()).unwrap();
        let mut counts = vec![0; len];
        for call in 0..len * 100 {
            let i = *rr.next();
            assert_eq!(i, call % len, "out of turn");
            counts[i] += 1;
        }
        assert!(counts.iter().all(|&c| c == 100));
    }

    #[test]
    fn single_item_is_always_returned() {
        let rr = RoundRobin::new(vec!["only"]).unwrap();
        for _ in 0..5 {
            assert_eq!(*rr.next(), "only");
        }
    }

    #[test]
    fn huge_list_of_zero_sized_items_wraps_at_usize_max() {
        // `vec![(); usize::MAX]` allocates nothing, so the wrap at the very
        // largest length is reachable by stepping from the last index.
        let rr = RoundRobin::new(vec![(); usize::MAX]).unwrap();
        rr.position.store(usize::MAX - 1, Ordering::Relaxed);
        rr.next();
        assert_eq!(rr.position.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn empty_list_is_an_error_handing_the_vector_back() {
        let err = RoundRobin::<String>::new(Vec::with_capacity(4)).unwrap_err();
        assert_eq!(err.to_string(), "round-robin list is empty");
        assert_eq!(format!("{err:?}"), "Empty(..)");
        assert!(err.into_inner().capacity() >= 4);
    }

    #[test]
    fn debug_shows_items_and_position() {
        let rr = RoundRobin::new(vec![1, 2]).unwrap();
        rr.next();
        assert_eq!(
            format!("{rr:?}"),
            "RoundRobin { items: [1, 2], position: 1 }"
        );
    }
}
