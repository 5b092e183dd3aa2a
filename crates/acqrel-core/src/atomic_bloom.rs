//! A concurrent Bloom filter (the guide's L.2, with a sized constructor and
//! a single `fetch_or` per bit).
//!
//! The guide sets each bit with a load + compare-exchange loop; a `fetch_or`
//! does the same in one read-modify-write (one `lock bts` on x86), never
//! retries, and tells the caller from its result whether the bit was new.
//!
//! Sizing and the choice of hash are described on [`AtomicBloom`]. The bit
//! positions: the 64-bit SipHash-1-3 hash `h` of an item gives
//! `g_i = h + i · h2 (mod 2^64)` for `i` in `0..k`, with
//! `h2 = h.rotate_left(32) | 1` (odd, so the `g_i` are distinct: Kirsch and
//! Mitzenmacher's double hashing), and each `g_i` is mapped to a bit in
//! `0..m` by the multiply-shift range reduction `(g_i · m) >> 64`, which
//! needs no division.
//!
//! # Orderings
//!
//! The filter is an array of `AtomicU64` words; every write is a
//! read-modify-write (`fetch_or`) except `clear`'s stores of 0.
//!
//! * `insert` sets each of its bits with `fetch_or(AcqRel)`; `contains`
//!   loads each word with Acquire. A `contains` whose load observes a bit
//!   set by an `insert` synchronizes with that `insert` (read-modify-writes
//!   continue a release sequence, so this holds even when later inserts of
//!   other items changed the same word in between). So the filter itself
//!   publishes "X was inserted": a `contains(X)` that returns `true` because
//!   of another thread's `insert(X)` also sees everything that thread wrote
//!   before the `insert`. The Acquire half of `insert` gives the same to an
//!   `insert` that returns `false` ("already there"), the dedup pattern
//!   `if !seen.insert(x) { /* use what the first inserter made */ }`.
//!   A Bloom filter cannot tell this case from a false positive (bits set by
//!   other items, which publish only their own inserters' writes), so what
//!   is published is only as sure as the answer itself.
//! * An `insert` that happens-before a `contains` (by a thread join, a
//!   channel, a Release/Acquire flag, ...) is always seen: no false
//!   negatives. That needs only coherence (a load ordered after a write to
//!   the same word reads it or a later value, and later values are
//!   `fetch_or`s that keep the bit), as long as no `clear` intervenes.
//! * An `insert` *racing* a `contains` of the same item may be seen in part:
//!   the `contains` may read some bits before they are set and return
//!   `false`. Likewise two racing `insert`s of a new item may both return
//!   `true` (each set some bit first); at least one of them does, since every
//!   bit is flipped by exactly one `fetch_or`.
//! * `clear` stores 0 into each word with Release, pairing with the Acquire
//!   loads in `contains` and `insert` that read the cleared word. It is not
//!   atomic as a whole: a `contains` racing it may see some words cleared
//!   and others not, and an `insert` racing it may be wiped out entirely or
//!   in part (later answering `false` for that item). Clear only when no
//!   insert whose item must stay visible is running.

#![deny(unsafe_code)]

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::sync::atomic::{AtomicU64, Ordering};

/// The largest number of 64-bit words a filter may have: its bytes must fit
/// in an `isize` (Rust's allocation limit) and its bits in a `usize` (so
/// [`AtomicBloom::num_bits`] is exact).
const MAX_WORDS: usize = {
    let by_bytes = isize::MAX as usize / size_of::<u64>();
    let by_bits = usize::MAX / 64;
    if by_bytes < by_bits {
        by_bytes
    } else {
        by_bits
    }
};

/// The error returned by [`AtomicBloom::with_capacity`] for parameters that
/// describe no filter this process can hold. Nothing is allocated.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BloomError {
    /// `expected_items` was 0: a filter sized for no items has no optimal
    /// number of hashes.
    #[error("a Bloom filter must expect at least one item")]
    ZeroItems,
    /// The false-positive rate was NaN or not strictly between 0 and 1.
    #[error("false-positive rate {0} is not strictly between 0 and 1")]
    InvalidFpRate(f64),
    /// The filter would need more bits than a `usize` can count or more
    /// bytes than an allocation may hold.
    #[error(
        "a Bloom filter for {expected_items} items at false-positive rate {fp_rate} exceeds the address space"
    )]
    TooLarge {
        /// The `expected_items` asked for.
        expected_items: usize,
        /// The false-positive rate asked for.
        fp_rate: f64,
    },
    /// The allocator could not provide the filter's memory.
    #[error("could not allocate {bytes} bytes for a Bloom filter")]
    OutOfMemory {
        /// The size of the failed allocation.
        bytes: usize,
    },
}

/// A Bloom filter that any number of threads can insert into and query at
/// once, without locks: a set that may answer "present" for items never
/// inserted (at a rate chosen at construction) but never "absent" for one
/// whose insert happened before the query.
///
/// Replaces the guide's atomic bit-array set (L.2). The **release** is each
/// [`insert`], which sets each of the item's bits with an AcqRel `fetch_or`;
/// the **acquire** is each [`contains`] load (and the acquire half of
/// [`insert`]).
///
/// # Sizing and hashing
///
/// For `n` expected items at false-positive rate `p`, the filter has the
/// standard optimum `m = ceil(-n ln p / (ln 2)²)` bits, rounded up to whole
/// 64-bit words, and `k = round((m / n) ln 2)` hashes (at least 1).
///
/// Each item is hashed once with [`std::hash::DefaultHasher::new`]:
/// SipHash-1-3 with fixed keys, so a given build places an item on the same
/// bits in every run (std does not promise the same across Rust releases).
/// The `k` positions come from that hash by double hashing
/// (Kirsch–Mitzenmacher). Fixed keys make the positions predictable: an
/// adversary who chooses the items can raise the false-positive rate, so
/// feed the filter trusted or unpredictable keys.
///
/// # Visibility
///
/// * An insert that happens-before a query (a thread join, a channel, a
///   Release/Acquire flag) is always found: no false negatives, until a
///   [`clear`].
/// * A [`contains`]`(x)` that returns `true` because another thread
///   inserted `x` synchronizes with that insert: everything the inserting
///   thread wrote before [`insert`] is visible. So does an [`insert`]`(x)`
///   that returns `false` (the dedup pattern
///   `if !seen.insert(x) { /* use what the first inserter made */ }`). A
///   Bloom filter cannot tell this case from a false positive, so what it
///   publishes is only as sure as its answer.
/// * A query racing an insert of the same item may see the insert in part
///   and return `false`. Racing inserts of a new item may both return
///   `true`; at least one does.
/// * [`clear`] is not atomic as a whole: inserts racing it may be lost.
///
/// [`insert`]: AtomicBloom::insert
/// [`contains`]: AtomicBloom::contains
/// [`clear`]: AtomicBloom::clear
///
/// # Examples
///
/// A crawler that visits each URL at most once, from several threads:
///
/// ```
/// use acqrel_core::AtomicBloom;
///
/// let seen = AtomicBloom::with_capacity(10_000, 0.001).unwrap();
/// let urls = ["/a", "/b", "/a", "/c", "/b"];
/// let visited = std::thread::scope(|s| {
///     let workers: Vec<_> = urls
///         .chunks(2)
///         .map(|chunk| {
///             let seen = &seen;
///             // `insert` returns whether the URL was (possibly) new.
///             s.spawn(move || chunk.iter().filter(|url| seen.insert(url)).count())
///         })
///         .collect();
///     workers.into_iter().map(|w| w.join().unwrap()).sum::<usize>()
/// });
/// // A racing duplicate may be reported new twice, so: at most 5, at least 3.
/// assert!((3..=5).contains(&visited));
/// assert!(urls.iter().all(|url| seen.contains(url)));
/// ```
pub struct AtomicBloom {
    bits: Box<[AtomicU64]>,
    num_hashes: u32,
}

impl AtomicBloom {
    /// Creates an empty filter sized for `expected_items` items at a
    /// false-positive rate of `fp_rate` (for instance `0.01` for 1%).
    ///
    /// Inserting more items than expected keeps working, with a rising
    /// false-positive rate.
    ///
    /// # Errors
    ///
    /// * [`BloomError::ZeroItems`] if `expected_items` is 0;
    /// * [`BloomError::InvalidFpRate`] if `fp_rate` is NaN or not strictly
    ///   between 0 and 1;
    /// * [`BloomError::TooLarge`] if the filter's size does not fit this
    ///   platform's address space;
    /// * [`BloomError::OutOfMemory`] if the allocation fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_core::{AtomicBloom, BloomError};
    ///
    /// let filter = AtomicBloom::with_capacity(1_000_000, 0.01).unwrap();
    /// assert_eq!(filter.num_bits(), 9_585_088); // about 1.2 MB
    /// assert_eq!(filter.num_hashes(), 7);
    ///
    /// assert_eq!(AtomicBloom::with_capacity(0, 0.01).unwrap_err(), BloomError::ZeroItems);
    /// assert!(matches!(
    ///     AtomicBloom::with_capacity(10, 1.0),
    ///     Err(BloomError::InvalidFpRate(_))
    /// ));
    /// ```
    pub fn with_capacity(expected_items: usize, fp_rate: f64) -> Result<Self, BloomError> {
        if expected_items == 0 {
            return Err(BloomError::ZeroItems);
        }
        if fp_rate.is_nan() || fp_rate <= 0.0 || fp_rate >= 1.0 {
            return Err(BloomError::InvalidFpRate(fp_rate));
        }
        let (words, num_hashes) = sizing(expected_items, fp_rate).ok_or(BloomError::TooLarge {
            expected_items,
            fp_rate,
        })?;
        let mut bits = Vec::new();
        bits.try_reserve_exact(words)
            .map_err(|_| BloomError::OutOfMemory {
                bytes: words * size_of::<u64>(),
            })?;
        bits.resize_with(words, || AtomicU64::new(0));
        Ok(Self {
            bits: bits.into_boxed_slice(),
            num_hashes,
        })
    }

    /// Adds `item`; returns whether it was possibly new: `true` if this call
    /// set at least one of its bits, `false` if all were already set (it was
    /// inserted before, or it is a false positive).
    ///
    /// Racing inserts of the same new item may each return `true`; at least
    /// one of them does. An insert that returns `false` synchronizes with the
    /// inserts that set the item's bits (see [Visibility](Self#visibility)).
    ///
    /// # Examples
    ///
    /// ```
    /// let filter = acqrel_core::AtomicBloom::with_capacity(100, 0.01).unwrap();
    /// assert!(filter.insert("alice"));
    /// assert!(!filter.insert("alice"));
    /// assert!(filter.contains("alice"));
    /// ```
    #[inline]
    pub fn insert(&self, item: &(impl Hash + ?Sized)) -> bool {
        let mut changed = false;
        for (word, mask) in self.probes(item) {
            // AcqRel: the Release half pairs with the Acquire loads in
            // `contains` (and the Acquire half of later inserts) that read
            // this bit, publishing what this thread wrote before the insert;
            // the Acquire half pairs with the Release of the inserts that set
            // the bits this call finds already set.
            let previous = self.bits[word].fetch_or(mask, Ordering::AcqRel);
            changed |= (previous & mask) == 0;
        }
        changed
    }

    /// Returns whether `item` may have been inserted: `false` means it was
    /// certainly not inserted (since the last [`clear`](Self::clear)) by any
    /// insert that happens-before this call; `true` may be a false positive.
    ///
    /// A `contains` racing an insert of the same item may return `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// let filter = acqrel_core::AtomicBloom::with_capacity(100, 0.01).unwrap();
    /// filter.insert(&42_u64);
    /// assert!(filter.contains(&42_u64));
    /// assert!(!filter.contains(&7_u64));
    /// ```
    #[inline]
    pub fn contains(&self, item: &(impl Hash + ?Sized)) -> bool {
        self.probes(item).all(|(word, mask)| {
            // Acquire: pairs with the AcqRel `fetch_or` in `insert` that set
            // this bit (and with the Release store in `clear`).
            (self.bits[word].load(Ordering::Acquire) & mask) != 0
        })
    }

    /// Removes every item.
    ///
    /// Not atomic as a whole: inserts racing a `clear` may be lost, entirely
    /// or in part, and queries racing it may see it half done.
    ///
    /// # Examples
    ///
    /// ```
    /// let filter = acqrel_core::AtomicBloom::with_capacity(100, 0.01).unwrap();
    /// filter.insert("x");
    /// filter.clear();
    /// assert!(!filter.contains("x"));
    /// ```
    pub fn clear(&self) {
        for word in &self.bits {
            // Release: pairs with the Acquire loads in `contains` and
            // `insert` that read this zero.
            word.store(0, Ordering::Release);
        }
    }

    /// Returns the number of bits (`m`), a multiple of 64.
    ///
    /// # Examples
    ///
    /// ```
    /// let filter = acqrel_core::AtomicBloom::with_capacity(1, 0.5).unwrap();
    /// assert_eq!(filter.num_bits(), 64);
    /// ```
    #[inline]
    pub fn num_bits(&self) -> usize {
        self.bits.len() * 64
    }

    /// Returns the number of bits each item sets (`k`).
    ///
    /// # Examples
    ///
    /// ```
    /// let filter = acqrel_core::AtomicBloom::with_capacity(1_000, 0.01).unwrap();
    /// assert_eq!(filter.num_hashes(), 7);
    /// ```
    #[inline]
    pub fn num_hashes(&self) -> u32 {
        self.num_hashes
    }

    /// The word index and bit mask of each of `item`'s `k` bits.
    #[inline]
    fn probes(&self, item: &(impl Hash + ?Sized)) -> Probes {
        let mut hasher = DefaultHasher::new();
        item.hash(&mut hasher);
        Probes::new(hasher.finish(), self.num_hashes, self.num_bits() as u64)
    }
}

impl fmt::Debug for AtomicBloom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicBloom")
            .field("num_bits", &self.num_bits())
            .field("num_hashes", &self.num_hashes)
            .finish_non_exhaustive()
    }
}

// ===== Sizing and probing =====

/// Returns the number of 64-bit words and of hashes for `expected_items`
/// items at `fp_rate` (`expected_items > 0`, `0 < fp_rate < 1`), or `None`
/// if the words exceed [`MAX_WORDS`].
fn sizing(expected_items: usize, fp_rate: f64) -> Option<(usize, u32)> {
    use std::f64::consts::LN_2;

    let n = expected_items as f64;
    // m = ceil(-n ln p / (ln 2)^2) bits, at least 1; positive and not NaN
    // for valid inputs, possibly infinite.
    let bits = (-n * fp_rate.ln() / (LN_2 * LN_2)).ceil().max(1.0);
    // `as` saturates: an infinite or huge word count becomes `usize::MAX`.
    let words = (bits / 64.0).ceil() as usize;
    if words > MAX_WORDS {
        return None;
    }
    let m = (words * 64) as f64;
    // k = round((m / n) ln 2), at least 1. Since p >= f64's smallest
    // positive value, -ln p <= 745 and k stays below about 1,120.
    let hashes = ((m / n) * LN_2).round().max(1.0) as u32;
    Some((words, hashes))
}

/// The `k` bit positions of one item, by double hashing (see the module
/// docs): yields `(word index, mask)` pairs.
#[derive(Debug)]
struct Probes {
    /// The next `g_i`.
    next: u64,
    /// `h2`, odd.
    step: u64,
    remaining: u32,
    num_bits: u64,
}

impl Probes {
    #[inline]
    fn new(hash: u64, num_hashes: u32, num_bits: u64) -> Self {
        Self {
            next: hash,
            step: hash.rotate_left(32) | 1,
            remaining: num_hashes,
            num_bits,
        }
    }
}

impl Iterator for Probes {
    type Item = (usize, u64);

    #[inline]
    fn next(&mut self) -> Option<(usize, u64)> {
        self.remaining = self.remaining.checked_sub(1)?;
        // Multiply-shift range reduction: `g · m / 2^64` is in `0..m`.
        let bit = ((u128::from(self.next) * u128::from(self.num_bits)) >> 64) as u64;
        self.next = self.next.wrapping_add(self.step);
        Some(((bit / 64) as usize, 1 << (bit % 64)))
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    #[test]
    fn sizing_follows_the_standard_formulas() {
        // 1e6 items at 1%: m = ceil(9_585_058.4) rounded up to 64, k = 7.
        assert_eq!(sizing(1_000_000, 0.01), Some((149_767, 7)));
        // A tiny filter is one word, and k is optimal for those 64 bits.
        assert_eq!(sizing(22, 0.3), Some((1, 2)));
        assert_eq!(sizing(1, 0.5), Some((1, 44)));
        // The smallest positive rate still gives a bounded k.
        let (words, hashes) = sizing(1, f64::from_bits(1)).unwrap();
        assert_eq!(words, 25);
        assert!(hashes < 1_120);
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        assert_eq!(
            AtomicBloom::with_capacity(0, 0.01).unwrap_err(),
            BloomError::ZeroItems
        );
        for rate in [0.0, -0.1, 1.0, 1.5, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                AtomicBloom::with_capacity(10, rate).unwrap_err(),
                BloomError::InvalidFpRate(rate)
            );
        }
        assert!(matches!(
            AtomicBloom::with_capacity(10, f64::NAN),
            Err(BloomError::InvalidFpRate(rate)) if rate.is_nan()
        ));
        assert_eq!(
            AtomicBloom::with_capacity(usize::MAX, 1e-9).unwrap_err(),
            BloomError::TooLarge {
                expected_items: usize::MAX,
                fp_rate: 1e-9
            }
        );
        assert_eq!(
            BloomError::InvalidFpRate(2.0).to_string(),
            "false-positive rate 2 is not strictly between 0 and 1"
        );
    }

    #[test]
    fn sizes_beyond_the_address_space_are_refused() {
        // At p = 0.5 a filter takes about 1.44 bits per item.
        #[cfg(target_pointer_width = "64")]
        assert!(sizing(usize::MAX / 4, 0.5).is_some_and(|(words, _)| words < MAX_WORDS));
        assert_eq!(sizing(usize::MAX, 0.5), None);
        assert_eq!(sizing(usize::MAX, 1e-9), None);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    #[cfg_attr(
        miri,
        ignore = "Miri stops with resource exhaustion instead of failing the allocation"
    )]
    fn an_allocation_the_system_cannot_provide_is_an_error() {
        // About 830 PB: within Rust's allocation limit, beyond any machine.
        match AtomicBloom::with_capacity(usize::MAX / 4, 0.5) {
            Err(BloomError::OutOfMemory { bytes }) => assert!(bytes > 1 << 59),
            other => panic!("expected OutOfMemory, got {other:?}"),
        }
    }

    #[test]
    fn inserted_items_are_found_and_insert_reports_novelty() {
        let filter = AtomicBloom::with_capacity(1_000, 0.01).unwrap();
        for i in 0..1_000_u64 {
            filter.insert(&i);
        }
        assert!((0..1_000_u64).all(|i| filter.contains(&i)));
        assert!((0..1_000_u64).all(|i| !filter.insert(&i)));
        filter.clear();
        assert!((0..1_000_u64).all(|i| !filter.contains(&i)));
    }

    #[test]
    fn false_positive_rate_is_within_twice_the_target() {
        // Deterministic: the hasher's keys are fixed.
        let n: u64 = if cfg!(miri) { 200 } else { 20_000 };
        let probes = 10 * n;
        let target = 0.01;
        let filter = AtomicBloom::with_capacity(n as usize, target).unwrap();
        for i in 0..n {
            filter.insert(&i);
        }
        let false_positives = (n..n + probes).filter(|i| filter.contains(i)).count();
        let rate = false_positives as f64 / probes as f64;
        assert!(
            rate <= 2.0 * target,
            "measured false-positive rate {rate} exceeds twice the target {target}"
        );
    }

    #[test]
    fn probes_stay_in_range_and_differ() {
        for num_bits in [64_u64, 128, 9_585_088] {
            for hash in [0, 1, u64::MAX, 0x8000_0000_0000_0000, 0xdead_beef] {
                let probes: Vec<_> = Probes::new(hash, 7, num_bits).collect();
                assert_eq!(probes.len(), 7);
                for (word, mask) in probes {
                    assert!((word as u64) < num_bits / 64);
                    assert_eq!(mask.count_ones(), 1);
                }
            }
        }
    }

    #[test]
    fn debug_shows_the_shape() {
        let filter = AtomicBloom::with_capacity(1, 0.5).unwrap();
        assert_eq!(
            format!("{filter:?}"),
            "AtomicBloom { num_bits: 64, num_hashes: 44, .. }"
        );
    }
}
