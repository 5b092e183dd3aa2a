//! [`KeyedRateLimiter`]: one GCRA bucket per key in a [`DashMap`], with
//! memory bounded by construction.
//!
//! [`DashMap`]: dashmap::DashMap
//!
//! # Design
//!
//! Each key has a bucket: one `AtomicU64` holding the key's TAT (see
//! `gcra.rs`; the quota is fixed, so the epoch tag is always zero and the
//! word is the TAT itself). A check on a known key is a shard read lock
//! (`DashMap::get`) plus the same load-and-CAS as
//! [`RateLimiter`](crate::RateLimiter); a denial writes nothing. A new key
//! goes through the entry API under the shard's write lock.
//!
//! A bucket whose TAT is not after `now` is full again ("idle"): it carries
//! no information, and evicting it changes no rate decision, because a key
//! without a bucket is treated as full (see `swept_at` below for the one
//! subtlety); at the cap, though, the key is new again and competes for a
//! slot like any other. Idle buckets are evicted by [`KeyedRateLimiter::retain_recent`],
//! by a sweep every `sweep_every` new-key attempts (run by the thread that
//! makes the attempt; there is no background thread), and, under
//! [`CapPolicy::EvictIdleThenDeny`], when a new key finds the limiter full.
//! A hard cap of `max_keys` buckets holds whatever the keys do.
//!
//! # Orderings
//!
//! - **Bucket TAT** (per key). Loads and compare-and-swaps are Relaxed:
//!   nothing is published with a TAT, and admission is decided by the
//!   atomicity of the CAS alone (two checks cannot both take the last cell:
//!   one CAS fails, re-reads and decides again). A bucket is published to
//!   other threads by the shard lock it is inserted under (write lock,
//!   release on unlock) and found under (read lock, acquire). A check holds
//!   the shard's read lock across its load and CAS, and eviction runs under
//!   the write lock, so no CAS is ever in flight on a bucket being evicted:
//!   the evicting sweep's Relaxed load sees every earlier CAS, ordered by
//!   the lock.
//! - **`count`**: the slots reserved, one per bucket held, never above
//!   `max_keys`. A new key reserves its slot by compare-and-swap (never
//!   `fetch_add`, which would count past the cap for an instant and refuse a
//!   racing key spuriously) before it is inserted, under its shard's write
//!   lock; a sweep releases the slots it freed with one `fetch_sub` when it
//!   ends, after the buckets are removed and before it lets `sweeper` go (a
//!   new key that finds the limiter full takes `sweeper` before its second
//!   try, so it never misses the slots a running sweep is freeing). Release
//!   on the `fetch_sub` pairs with the Acquire half of the reservation that
//!   reuses the slot: the removal happens-before the insertion, so more
//!   than `max_keys` buckets never exist at once. The
//!   Release half of the reservation pairs with the Acquire load of a
//!   reservation that fails: a thread that finds the limiter full sees every
//!   held bucket's contribution to `next_idle`.
//! - **`next_idle`**: a lower bound on the TAT of every bucket held (TATs
//!   only grow), so that a sweep when `now < next_idle` can be skipped
//!   without scanning: a flood of new keys against a full limiter of busy
//!   keys is refused in O(1), not with a scan per key. A new key lowers it
//!   (`fetch_min`) under its shard's write lock, before reserving its slot.
//!   A sweep, holding `sweeper`, resets it to "never" before visiting the
//!   shards and lowers it to its survivors' earliest TAT after: a key
//!   inserted into a shard before the sweep visits it is among the
//!   survivors, and one inserted after lowers the value after the reset
//!   (the shard lock orders the two); a sweep cut short by a panicking
//!   key's `Drop` sets it to zero ("sweep again"). It is read only with
//!   `sweeper` held, so no reader sees a sweep half done. Every access is
//!   Relaxed: the
//!   orders it needs come from the shard locks, `sweeper`, and the
//!   reservation's release/acquire (above).
//! - **`swept_at`**: the latest clock reading a sweep evicted at. A bucket
//!   evicted at `now_s` had `TAT <= now_s`; a check whose clock reading is
//!   older than `now_s` (it read the clock, then was preempted while the
//!   sweep ran) must not find the key fuller than that bucket was. So a new
//!   bucket starts from `TAT = swept_at`, not from zero: for any reading
//!   at or after `swept_at` the two are the same full bucket, and for an
//!   older reading it is at least as strict as the evicted one. The sweep
//!   raises it (`fetch_max`, Relaxed) before evicting; the new key reads it
//!   (Relaxed) under the shard's write lock, which the sweep held after the
//!   raise: the lock orders the two. (A clock that steps back behind a
//!   sweep's reading therefore finds new keys full only from that reading
//!   on: "no time passed", as for the direct limiter.)
//! - **`misses`**: how many new-key attempts were made, to schedule the
//!   periodic sweep. A statistic: Relaxed, nothing is read through it.
//!
//! DashMap hashes and compares keys (user code: `K`'s `Hash` and `Eq`)
//! under its shard locks, and drops evicted keys under them (and under
//! `sweeper`); that cannot be avoided with a concurrent map, and the rest
//! of the protocol never calls user code with a lock held. The clock is
//! always read before any lock is taken.
//!
//! The map comes from the `sync` shim: DashMap, or under
//! `--cfg acqrel_loom` a stand-in of two `HashMap` shards behind loom
//! read-write locks, so that the models in `tests/loom_keyed.rs` see the shard locks
//! this protocol leans on.
//!
//! # Memory
//!
//! At most `max_keys` buckets exist at any time, each a key and an
//! `AtomicU64` in a hashbrown table: about `size_of::<K>() + 8` bytes plus
//! one control byte, times the table's load-factor slack (up to 8/7, and up
//! to twice that just after a table grows), plus whatever `K` owns on the
//! heap. DashMap adds a fixed set of shards (four per CPU, rounded up to a
//! power of two) of one lock and one table each. Tables do not shrink when
//! buckets are evicted: each shard keeps the capacity its peak needed,
//! which is itself bounded by `max_keys`.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::TryLockError;

use acqrel_core::{Clock, MonotonicClock};

use crate::error::{KeyedNegative, NotUntil};
use crate::gcra::{self, Params, TIME_MAX};
use crate::quota::Quota;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::map::{Entry, Map};
use crate::sync::{self, Mutex, MutexGuard};

/// `max_keys` when the builder is not told otherwise.
const DEFAULT_MAX_KEYS: NonZeroUsize = NonZeroUsize::new(100_000).unwrap();

/// `sweep_every` when the builder is not told otherwise.
const DEFAULT_SWEEP_EVERY: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

// ===== CapPolicy =====

/// What a [`KeyedRateLimiter`] does with a new key when it already holds
/// `max_keys` buckets.
///
/// Either way the cap is hard (more than `max_keys` buckets never exist),
/// keys already held keep working, and idle buckets are still evicted by
/// the periodic sweep and by
/// [`retain_recent`](KeyedRateLimiter::retain_recent). A key whose idle
/// bucket was evicted is a new key again: at the cap it competes for a free
/// slot like any other.
///
/// # Examples
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use std::time::Duration;
/// use acqrel_core::ManualClock;
/// use acqrel_ratelimit::{CapPolicy, KeyedNegative, KeyedRateLimiter, Quota};
///
/// let clock = ManualClock::new();
/// let limiter = KeyedRateLimiter::<u32, _>::builder(Quota::per_second(NonZeroU32::MIN))
///     .max_keys(NonZeroUsize::new(1).unwrap())
///     .cap_policy(CapPolicy::Deny)
///     .clock(&clock)
///     .build();
/// assert_eq!(limiter.check(&1), Ok(()));
/// clock.advance(Duration::from_secs(1)); // key 1 is idle again
/// // `Deny` does not look for idle keys: the new key is refused...
/// assert_eq!(limiter.check(&2), Err(KeyedNegative::TooManyKeys { max_keys: 1 }));
/// // ...until they are evicted.
/// assert_eq!(limiter.retain_recent(), 1);
/// assert_eq!(limiter.check(&2), Ok(()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CapPolicy {
    /// Refuse the new key with [`KeyedNegative::TooManyKeys`] without
    /// looking for idle buckets: O(1), except that it first waits for a
    /// sweep that is running, if any, and tries once more with the slots
    /// that sweep freed. Idle buckets leave with the periodic sweep or
    /// `retain_recent`.
    Deny,
    /// Evict the idle buckets first (a sweep, skipped in O(1) when no bucket
    /// can be idle yet), then refuse the new key with
    /// [`KeyedNegative::TooManyKeys`] only if the limiter is still full.
    /// The default: a new key is refused only when `max_keys` keys are all
    /// busy.
    #[default]
    EvictIdleThenDeny,
}

// ===== Bucket =====

/// One key's GCRA state (see the module's `# Orderings`).
struct Bucket {
    /// The TAT, from the limiter's origin in the quota's unit (`gcra.rs`);
    /// at most `TIME_MAX`.
    tat: AtomicU64,
}

impl Bucket {
    /// Admits `n` cells (`1 <= n <= burst`) at `now`, or returns the
    /// earliest time they would be.
    #[inline]
    fn admit(&self, p: &Params, now: u64, n: u32) -> Result<(), u64> {
        // Relaxed: see `# Orderings` (nothing is published with a TAT).
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            // The deny path returns here: no write.
            let new_tat = gcra::admit(p, tat, now, n)?;
            // Relaxed: the CAS's atomicity decides admission; see
            // `# Orderings`.
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }
}

/// One reading of a keyed limiter's clock.
#[derive(Clone, Copy)]
struct Now {
    /// Nanoseconds since `origin` (a reading before `origin` counts as
    /// `origin`): the time decisions use.
    ns: u64,
    /// The clock's own reading, which a denial's wait counts from.
    reading: u64,
}

/// What an attempt to insert a new key came to.
enum Insert<K> {
    /// The key's request was decided (admitted, or denied for now).
    Decided(Result<(), NotUntil>),
    /// The key is new and the limiter holds `max_keys` buckets: the key,
    /// handed back for another try.
    Full(K),
}

/// The end of a sweep, run when dropped, so that a key whose `Drop` panics
/// in the middle of one leaves the limiter consistent: the slots of the
/// buckets evicted are released (hashbrown removes a bucket from its table
/// before dropping it), and `next_idle` is set to what the sweep found, or
/// to zero ("sweep again") if it did not finish.
struct SweepEnd<'a> {
    count: &'a AtomicUsize,
    next_idle: &'a AtomicU64,
    evicted: usize,
    /// The survivors' earliest TAT once the pass is over; 0 until then.
    earliest: u64,
}

impl Drop for SweepEnd<'_> {
    fn drop(&mut self) {
        // Relaxed: read only under `sweeper`, which the sweep still holds;
        // see `# Orderings`.
        self.next_idle.fetch_min(self.earliest, Ordering::Relaxed);
        if self.evicted > 0 {
            // Release: pairs with the Acquire half of the reservation in
            // `reserve` that reuses a slot (see `# Orderings`).
            self.count.fetch_sub(self.evicted, Ordering::Release);
        }
    }
}

// ===== KeyedRateLimiter =====

/// Per-key rate limiting with bounded memory: one GCRA bucket per key in a
/// [`DashMap`](dashmap::DashMap), each bucket one `AtomicU64`, all sharing
/// one [`Quota`].
///
/// Replaces Go's `map[key]*rate.Limiter` behind a mutex with a janitor
/// goroutine, and the keyed limiters whose state grows with every key ever
/// seen. Memory is bounded by construction:
///
/// - a bucket that is full again ("idle") carries no information and is
///   evicted, changing no decision: by [`retain_recent`](Self::retain_recent),
///   and by a sweep every `sweep_every` new-key attempts, run by the thread
///   that makes the attempt (no background thread);
/// - at most `max_keys` buckets ever exist; a new key beyond that is handled
///   by the [`CapPolicy`] and refused with [`KeyedNegative::TooManyKeys`].
///
/// The quota is fixed when the limiter is built: [`set_quota`] exists on
/// the direct [`RateLimiter`] only.
///
/// [`set_quota`]: crate::RateLimiter::set_quota
/// [`RateLimiter`]: crate::RateLimiter
///
/// # Examples
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use std::time::Duration;
/// use acqrel_core::ManualClock;
/// use acqrel_ratelimit::{KeyedRateLimiter, Quota};
///
/// let clock = ManualClock::new();
/// let limiter = KeyedRateLimiter::<String, _>::builder(Quota::per_second(NonZeroU32::new(2).unwrap()))
///     .max_keys(NonZeroUsize::new(10_000).unwrap())
///     .clock(&clock)
///     .build();
/// assert!(limiter.check("alice").is_ok());
/// assert!(limiter.check("alice").is_ok());
/// assert!(limiter.check("alice").is_err()); // alice used her burst
/// assert!(limiter.check("bob").is_ok()); // bob has his own
/// assert_eq!(limiter.len(), 2);
///
/// clock.advance(Duration::from_secs(1)); // both buckets are full again
/// assert_eq!(limiter.retain_recent(), 2);
/// assert!(limiter.is_empty());
/// ```
pub struct KeyedRateLimiter<K, C = MonotonicClock> {
    map: Map<K, Bucket>,
    quota: Quota,
    params: Params,
    max_keys: NonZeroUsize,
    cap_policy: CapPolicy,
    sweep_every: NonZeroUsize,
    /// Slots reserved: the buckets held, plus at most one per thread
    /// between its reservation and its insertion. Never above `max_keys`.
    count: AtomicUsize,
    /// New-key attempts so far, to schedule the periodic sweep.
    misses: AtomicUsize,
    /// No held bucket has a TAT before this (`TIME_MAX`: none held).
    next_idle: AtomicU64,
    /// The latest time a sweep evicted at: new buckets start there.
    swept_at: AtomicU64,
    /// Held by the sweep that is running, if any. Guards no data, and
    /// evicted keys are dropped (user code) under it: its poison is
    /// ignored, `SweepEnd` having left the counters consistent.
    sweeper: Mutex<()>,
    /// The clock reading when the limiter was made, in ns: TATs count from
    /// here, whatever the clock's own epoch.
    origin: u64,
    clock: C,
}

impl<K: Hash + Eq> KeyedRateLimiter<K> {
    /// A limiter with the default knobs (see
    /// [`KeyedRateLimiterBuilder`]) on a [`MonotonicClock`] started now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::{KeyedRateLimiter, Quota};
    /// let limiter = KeyedRateLimiter::new(Quota::per_minute(NonZeroU32::MIN));
    /// assert!(limiter.check(&"10.0.0.1").is_ok());
    /// assert!(limiter.check(&"10.0.0.1").is_err());
    /// assert!(limiter.check(&"10.0.0.2").is_ok());
    /// ```
    pub fn new(quota: Quota) -> Self {
        KeyedRateLimiter::builder(quota).build()
    }

    /// A builder for the knobs: `max_keys`, the [`CapPolicy`],
    /// `sweep_every`, and the clock.
    ///
    /// # Examples
    ///
    /// See [`KeyedRateLimiterBuilder`].
    pub fn builder(quota: Quota) -> KeyedRateLimiterBuilder<K> {
        KeyedRateLimiterBuilder {
            quota,
            max_keys: DEFAULT_MAX_KEYS,
            cap_policy: CapPolicy::default(),
            sweep_every: DEFAULT_SWEEP_EVERY,
            clock: MonotonicClock::new(),
            _key: PhantomData,
        }
    }
}

impl<K: Hash + Eq, C: Clock> KeyedRateLimiter<K, C> {
    /// A limiter with the default knobs on `clock`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use acqrel_core::ManualClock;
    /// use acqrel_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// let clock = ManualClock::new();
    /// let limiter = KeyedRateLimiter::with_clock(Quota::per_second(NonZeroU32::new(5).unwrap()), &clock);
    /// assert!((0..5).all(|_| limiter.check(&7_u64).is_ok()));
    /// let denied = limiter.check(&7).unwrap_err();
    /// assert_eq!(denied.not_until().unwrap().wait_time(), Duration::from_millis(200));
    /// ```
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        KeyedRateLimiter::builder(quota).clock(clock).build()
    }

    /// The quota every key gets.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::{KeyedRateLimiter, Quota};
    /// let quota = Quota::per_second(NonZeroU32::new(3).unwrap());
    /// assert_eq!(KeyedRateLimiter::<u32>::new(quota).quota(), quota);
    /// ```
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The most buckets the limiter holds at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::{NonZeroU32, NonZeroUsize};
    /// use acqrel_ratelimit::{KeyedRateLimiter, Quota};
    /// let limiter = KeyedRateLimiter::<u32>::builder(Quota::per_second(NonZeroU32::MIN))
    ///     .max_keys(NonZeroUsize::new(500).unwrap())
    ///     .build();
    /// assert_eq!(limiter.max_keys().get(), 500);
    /// ```
    pub fn max_keys(&self) -> NonZeroUsize {
        self.max_keys
    }

    /// How many keys have a bucket: at most `max_keys`, in O(1).
    ///
    /// Racing insertions and evictions make it a snapshot: it may count a
    /// bucket being inserted, or one just evicted, for an instant.
    ///
    /// # Examples
    ///
    /// See [`KeyedRateLimiter`].
    pub fn len(&self) -> usize {
        // Relaxed: a statistic; nothing is read through it.
        self.count.load(Ordering::Relaxed)
    }

    /// Whether no key has a bucket (see [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::{KeyedRateLimiter, Quota};
    /// let limiter = KeyedRateLimiter::new(Quota::per_second(NonZeroU32::MIN));
    /// assert!(limiter.is_empty());
    /// limiter.check(&1_u8).unwrap();
    /// assert!(!limiter.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Admits one cell for `key` now, or says why not.
    ///
    /// Takes the key by reference like `HashMap::get` (`&str` for a
    /// `String` key); a new key is turned into an owned `K` once, when its
    /// bucket is created.
    ///
    /// # Errors
    ///
    /// [`KeyedNegative::NotUntil`] when the key's bucket is empty;
    /// [`KeyedNegative::TooManyKeys`] when `key` is new and the limiter
    /// holds `max_keys` buckets (after evicting the idle ones, under
    /// [`CapPolicy::EvictIdleThenDeny`]).
    ///
    /// # Examples
    ///
    /// See [`KeyedRateLimiter`].
    #[inline]
    pub fn check<Q>(&self, key: &Q) -> Result<(), KeyedNegative>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.check_n(key, 1)
    }

    /// Admits `n` cells at once for `key`, or none. `n == 0` is always
    /// admitted and changes nothing (no bucket is made for it).
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check), and
    /// [`KeyedNegative::InsufficientCapacity`] when `n` is larger than the
    /// burst, which no wait can fix (no bucket is made for it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_core::ManualClock;
    /// use acqrel_ratelimit::{KeyedNegative, KeyedRateLimiter, Quota};
    /// let limiter = KeyedRateLimiter::with_clock(
    ///     Quota::per_second(NonZeroU32::new(4).unwrap()),
    ///     ManualClock::new(),
    /// );
    /// assert_eq!(limiter.check_n("k", 0), Ok(()));
    /// assert_eq!(limiter.check_n("k", 5), Err(KeyedNegative::InsufficientCapacity { burst: 4 }));
    /// assert!(limiter.is_empty());
    /// assert_eq!(limiter.check_n("k", 4), Ok(()));
    /// assert!(matches!(limiter.check_n("k", 1), Err(KeyedNegative::NotUntil(_))));
    /// ```
    #[inline]
    pub fn check_n<Q>(&self, key: &Q, n: u32) -> Result<(), KeyedNegative>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if n == 0 {
            return Ok(());
        }
        if n > self.params.burst {
            return Err(KeyedNegative::InsufficientCapacity {
                burst: self.params.burst,
            });
        }
        self.check_at(key, n, self.now())
    }

    /// [`check_n`](Self::check_n) for `1 <= n <= burst` at `now`.
    #[inline]
    fn check_at<Q>(&self, key: &Q, n: u32, now: Now) -> Result<(), KeyedNegative>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(bucket) = self.map.get(key) {
            return bucket
                .admit(&self.params, now.ns, n)
                .map_err(|earliest| self.not_until(earliest, now).into());
        }
        self.check_new(key, n, now)
    }

    /// The slow path of [`check_at`](Self::check_at): `key` had no bucket.
    #[cold]
    fn check_new<Q>(&self, key: &Q, n: u32, now: Now) -> Result<(), KeyedNegative>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let outcome = match self.try_insert(key.to_owned(), n, now) {
            Insert::Decided(decided) => decided.map_err(KeyedNegative::from),
            Insert::Full(key) => {
                // A sweep releases the slots it frees when it ends, with
                // `sweeper` still held: taking `sweeper` waits for a sweep
                // in progress (the key may be new only because that sweep
                // evicted its idle bucket) and sees its slots.
                let sweeper = sync::lock(&self.sweeper);
                match self.cap_policy {
                    CapPolicy::Deny => drop(sweeper),
                    CapPolicy::EvictIdleThenDeny => {
                        self.sweep(now.ns, sweeper);
                    }
                }
                match self.try_insert(key, n, now) {
                    Insert::Decided(decided) => decided.map_err(KeyedNegative::from),
                    Insert::Full(_) => Err(KeyedNegative::TooManyKeys {
                        max_keys: self.max_keys.get(),
                    }),
                }
            }
        };
        // Relaxed: a statistic scheduling the sweep; see `# Orderings`.
        let misses = self.misses.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if misses.is_multiple_of(self.sweep_every.get()) {
            // Skipped if a sweep is running: it does the same work.
            let guard = match self.sweeper.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(guard) = guard {
                self.sweep(now.ns, guard);
            }
        }
        outcome
    }

    /// Makes `key`'s bucket and admits `n` cells in it, unless that is
    /// denied (nothing is made then) or the limiter is full (the key is
    /// handed back). Takes the shard's write lock, and releases it before
    /// returning.
    fn try_insert(&self, key: K, n: u32, now: Now) -> Insert<K> {
        match self.map.entry(key) {
            // Another thread made it since our `get`.
            Entry::Occupied(entry) => Insert::Decided(
                entry
                    .get()
                    .admit(&self.params, now.ns, n)
                    .map_err(|earliest| self.not_until(earliest, now)),
            ),
            Entry::Vacant(entry) => {
                // Relaxed: ordered after the raise in `sweep` by this
                // shard's lock; see `# Orderings`.
                let start = self.swept_at.load(Ordering::Relaxed);
                let new_tat = match gcra::admit(&self.params, start, now.ns, n) {
                    Ok(new_tat) => new_tat,
                    Err(earliest) => return Insert::Decided(Err(self.not_until(earliest, now))),
                };
                // Relaxed: published to a thread that finds the limiter
                // full by the reservation below; to sweeps by this shard's
                // lock. See `# Orderings`.
                self.next_idle.fetch_min(new_tat, Ordering::Relaxed);
                if !self.reserve() {
                    return Insert::Full(entry.into_key());
                }
                entry.insert(Bucket {
                    tat: AtomicU64::new(new_tat),
                });
                Insert::Decided(Ok(()))
            }
        }
    }

    /// Reserves a slot for a new bucket; `false` if `max_keys` are taken.
    fn reserve(&self) -> bool {
        let max = self.max_keys.get();
        // AcqRel on success: the Acquire half pairs with the Release
        // `fetch_sub` in `SweepEnd` (the evicted bucket whose slot this
        // is was removed before ours is inserted); the Release half pairs
        // with the Acquire below in a thread that then finds the limiter
        // full (it sees our `next_idle` contribution). Acquire on failure
        // (and for the loads the loop retries with): as said.
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count < max).then_some(count + 1)
            })
            .is_ok()
    }

    /// Evicts the idle buckets, returning how many were.
    ///
    /// A bucket is idle when it is full again: evicting it changes no
    /// decision (the key's next check starts from a full bucket). Limiters
    /// also do this on their own, every `sweep_every` new-key attempts, and
    /// (under [`CapPolicy::EvictIdleThenDeny`]) when a new key finds them
    /// full; call it from a timer to give memory back sooner. Skipped in
    /// O(1) when no bucket can be idle yet, otherwise one pass over the
    /// buckets, taking each shard's write lock in turn. Waits for a sweep
    /// already running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use acqrel_core::ManualClock;
    /// use acqrel_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// let clock = ManualClock::new();
    /// let quota = Quota::per_second(NonZeroU32::new(10).unwrap()); // a cell per 100 ms
    /// let limiter = KeyedRateLimiter::with_clock(quota, &clock);
    /// limiter.check_n("heavy", 10).unwrap(); // full again in 1 s
    /// limiter.check_n("light", 1).unwrap(); // full again in 100 ms
    /// clock.advance(Duration::from_millis(100));
    /// assert_eq!(limiter.retain_recent(), 1); // "light" is idle
    /// assert_eq!(limiter.len(), 1);
    /// ```
    pub fn retain_recent(&self) -> usize {
        let now = self.now();
        self.sweep(now.ns, sync::lock(&self.sweeper))
    }

    /// Evicts the buckets idle at `now`, unless `next_idle` says there are
    /// none. `_sweeper` is the `sweeper` lock, held throughout.
    fn sweep(&self, now: u64, _sweeper: MutexGuard<'_, ()>) -> usize {
        // From here on `now` is a TAT (in the state's unit; see `gcra.rs`).
        let now = gcra::full_at(&self.params, now);
        // Relaxed: read under `sweeper`; see `# Orderings`.
        if now < self.next_idle.load(Ordering::Relaxed) {
            return 0;
        }
        // Relaxed: read by new keys under the shard locks `retain` takes
        // below, which order it; see `# Orderings`.
        self.swept_at.fetch_max(now, Ordering::Relaxed);
        // Relaxed: read only under `sweeper`, which we hold.
        self.next_idle.store(TIME_MAX, Ordering::Relaxed);
        let mut end = SweepEnd {
            count: &self.count,
            next_idle: &self.next_idle,
            evicted: 0,
            earliest: 0,
        };
        let mut earliest = TIME_MAX;
        self.map.retain(|_, bucket| {
            // Relaxed: under the shard's write lock, which orders every
            // earlier CAS on the bucket before this load.
            let tat = bucket.tat.load(Ordering::Relaxed);
            if tat <= now {
                end.evicted += 1;
                false
            } else {
                earliest = earliest.min(tat);
                true
            }
        });
        end.earliest = earliest;
        end.evicted
        // `end` lowers `next_idle` and releases the slots here, `sweeper`
        // still held.
    }

    /// The clock, read once for a decision.
    #[inline]
    fn now(&self) -> Now {
        let reading = self.clock.now_nanos();
        Now {
            ns: reading.saturating_sub(self.origin),
            reading,
        }
    }

    /// A denial at `now` of a request admissible from `earliest` (counted
    /// from `origin`), in the clock's own readings.
    #[inline]
    fn not_until(&self, earliest: u64, now: Now) -> NotUntil {
        NotUntil::from_nanos(earliest.saturating_add(self.origin), now.reading)
    }
}

impl<K, C> fmt::Debug for KeyedRateLimiter<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("quota", &self.quota)
            // Relaxed: a diagnostic snapshot.
            .field("len", &self.count.load(Ordering::Relaxed))
            .field("max_keys", &self.max_keys)
            .field("cap_policy", &self.cap_policy)
            .field("sweep_every", &self.sweep_every)
            .finish_non_exhaustive()
    }
}

// ===== KeyedRateLimiterBuilder =====

/// The knobs of a [`KeyedRateLimiter`], from
/// [`KeyedRateLimiter::builder`]. Every value it accepts is valid.
///
/// | Knob | Default | Meaning |
/// |---|---|---|
/// | [`max_keys`](Self::max_keys) | 100 000 | the most buckets held at once (hard) |
/// | [`cap_policy`](Self::cap_policy) | [`CapPolicy::EvictIdleThenDeny`] | what a new key gets when `max_keys` are held |
/// | [`sweep_every`](Self::sweep_every) | 1 024 | new-key attempts between automatic sweeps of idle buckets |
/// | [`clock`](Self::clock) | a [`MonotonicClock`] | the time source |
///
/// # Examples
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use acqrel_core::ManualClock;
/// use acqrel_ratelimit::{CapPolicy, KeyedRateLimiter, Quota};
///
/// let clock = ManualClock::new();
/// let limiter = KeyedRateLimiter::<u64, _>::builder(Quota::per_second(NonZeroU32::new(100).unwrap()))
///     .max_keys(NonZeroUsize::new(50_000).unwrap())
///     .cap_policy(CapPolicy::Deny)
///     .sweep_every(NonZeroUsize::new(4096).unwrap())
///     .clock(&clock)
///     .build();
/// assert_eq!(limiter.max_keys().get(), 50_000);
/// ```
pub struct KeyedRateLimiterBuilder<K, C = MonotonicClock> {
    quota: Quota,
    max_keys: NonZeroUsize,
    cap_policy: CapPolicy,
    sweep_every: NonZeroUsize,
    clock: C,
    _key: PhantomData<fn() -> K>,
}

impl<K: Hash + Eq, C: Clock> KeyedRateLimiterBuilder<K, C> {
    /// The most buckets held at once (default 100 000). A new key beyond
    /// them is handled by the [`CapPolicy`].
    ///
    /// # Examples
    ///
    /// See [`KeyedRateLimiterBuilder`].
    #[must_use]
    pub fn max_keys(self, max_keys: NonZeroUsize) -> Self {
        KeyedRateLimiterBuilder { max_keys, ..self }
    }

    /// What a new key gets when `max_keys` buckets are held (default
    /// [`CapPolicy::EvictIdleThenDeny`]).
    ///
    /// # Examples
    ///
    /// See [`CapPolicy`].
    #[must_use]
    pub fn cap_policy(self, cap_policy: CapPolicy) -> Self {
        KeyedRateLimiterBuilder { cap_policy, ..self }
    }

    /// How many new-key attempts (admitted or not) pass between automatic
    /// sweeps of idle buckets (default 1 024). Each sweep is one pass over
    /// the buckets, or nothing when none can be idle yet, so the cost per
    /// new key is at most `len() / sweep_every` bucket visits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::{NonZeroU32, NonZeroUsize};
    /// use std::time::Duration;
    /// use acqrel_core::ManualClock;
    /// use acqrel_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// let clock = ManualClock::new();
    /// let limiter = KeyedRateLimiter::<u32, _>::builder(Quota::per_second(NonZeroU32::MIN))
    ///     .sweep_every(NonZeroUsize::new(3).unwrap())
    ///     .clock(&clock)
    ///     .build();
    /// limiter.check(&1).unwrap();
    /// limiter.check(&2).unwrap();
    /// clock.advance(Duration::from_secs(1)); // keys 1 and 2 are idle
    /// limiter.check(&3).unwrap(); // the third new key sweeps them away
    /// assert_eq!(limiter.len(), 1);
    /// ```
    #[must_use]
    pub fn sweep_every(self, sweep_every: NonZeroUsize) -> Self {
        KeyedRateLimiterBuilder {
            sweep_every,
            ..self
        }
    }

    /// The clock to read (default a [`MonotonicClock`] started when the
    /// builder was made). The limiter's times count from its reading when
    /// the limiter is built.
    ///
    /// # Examples
    ///
    /// See [`KeyedRateLimiterBuilder`].
    pub fn clock<C2: Clock>(self, clock: C2) -> KeyedRateLimiterBuilder<K, C2> {
        KeyedRateLimiterBuilder {
            quota: self.quota,
            max_keys: self.max_keys,
            cap_policy: self.cap_policy,
            sweep_every: self.sweep_every,
            clock,
            _key: PhantomData,
        }
    }

    /// The limiter, with no bucket yet.
    ///
    /// # Examples
    ///
    /// See [`KeyedRateLimiterBuilder`].
    pub fn build(self) -> KeyedRateLimiter<K, C> {
        KeyedRateLimiter {
            map: Map::new(),
            quota: self.quota,
            params: self.quota.params(),
            max_keys: self.max_keys,
            cap_policy: self.cap_policy,
            sweep_every: self.sweep_every,
            count: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            next_idle: AtomicU64::new(TIME_MAX),
            swept_at: AtomicU64::new(0),
            sweeper: Mutex::new(()),
            origin: self.clock.now_nanos(),
            clock: self.clock,
        }
    }
}

impl<K, C> fmt::Debug for KeyedRateLimiterBuilder<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiterBuilder")
            .field("quota", &self.quota)
            .field("max_keys", &self.max_keys)
            .field("cap_policy", &self.cap_policy)
            .field("sweep_every", &self.sweep_every)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use acqrel_core::ManualClock;
    use std::num::NonZeroU32;
    use std::panic::{self, AssertUnwindSafe};
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    fn limiter(
        rate: u32,
        max_keys: usize,
        policy: CapPolicy,
        clock: &ManualClock,
    ) -> KeyedRateLimiter<u32, &ManualClock> {
        KeyedRateLimiter::builder(Quota::per_second(NonZeroU32::new(rate).unwrap()))
            .max_keys(NonZeroUsize::new(max_keys).unwrap())
            .cap_policy(policy)
            .clock(clock)
            .build()
    }

    /// The slot count and the map agree after inserts, refusals and sweeps.
    #[test]
    fn the_count_is_the_number_of_buckets() {
        let clock = ManualClock::new();
        let limiter = limiter(10, 8, CapPolicy::EvictIdleThenDeny, &clock);
        for key in 0..20 {
            let _ = limiter.check(&key);
            assert_eq!(limiter.len(), limiter.map.len());
        }
        assert_eq!(limiter.len(), 8);
        clock.advance(Duration::from_millis(100));
        assert_eq!(limiter.retain_recent(), 8);
        assert_eq!((limiter.len(), limiter.map.len()), (0, 0));
    }

    /// The race `swept_at` closes: a check that read the clock before a
    /// sweep evicted its key must not find the key fuller than it was.
    #[test]
    fn a_recreated_bucket_is_never_fuller_than_the_evicted_one_for_a_stale_reading() {
        let clock = ManualClock::new();
        // Two cells, one per 500 ms.
        let limiter = limiter(2, 8, CapPolicy::EvictIdleThenDeny, &clock);
        limiter.check_n(&1, 2).unwrap(); // TAT = 1 s
        clock.set(Duration::from_secs(1));
        assert_eq!(limiter.retain_recent(), 1);
        // A check that read the clock at 0, before the sweep: the evicted
        // bucket would have denied it until 500 ms; so does the new one.
        let denied = limiter
            .check_at(&1, 1, Now { ns: 0, reading: 0 })
            .unwrap_err();
        assert_eq!(
            denied.not_until().unwrap().earliest_possible(),
            Duration::from_millis(500)
        );
        assert!(limiter.is_empty());
        // A reading at or after the sweep sees the same full bucket as
        // before: the whole burst.
        assert_eq!(limiter.check_n(&1, 2), Ok(()));
    }

    /// `next_idle` tracks the earliest TAT, so sweeps that can evict nothing
    /// do nothing (no `swept_at` raise, no scan).
    #[test]
    fn sweeps_are_skipped_until_a_bucket_can_be_idle() {
        let clock = ManualClock::new();
        // One cell per 100 ms.
        let limiter = limiter(10, 2, CapPolicy::EvictIdleThenDeny, &clock);
        assert_eq!(limiter.next_idle.load(Ordering::Relaxed), TIME_MAX);
        limiter.check(&1).unwrap(); // TAT 100 ms
        clock.set(Duration::from_millis(50));
        limiter.check(&2).unwrap(); // TAT 150 ms
        assert_eq!(limiter.next_idle.load(Ordering::Relaxed), 100 * MS);
        // Full, nothing idle: refused without a sweep.
        assert_eq!(
            limiter.check(&3),
            Err(KeyedNegative::TooManyKeys { max_keys: 2 })
        );
        // Relaxed: this test is single-threaded; nothing to synchronize.
        assert_eq!(limiter.swept_at.load(Ordering::Relaxed), 0);
        // Key 1 is idle at 100 ms: the sweep runs, evicts it, and sets the
        // bound to the survivor's TAT (the new key's, 200 ms, is later).
        clock.set(Duration::from_millis(100));
        assert_eq!(limiter.check(&3), Ok(()));
        assert_eq!(limiter.swept_at.load(Ordering::Relaxed), 100 * MS);
        assert_eq!(limiter.next_idle.load(Ordering::Relaxed), 150 * MS);
        assert_eq!(limiter.len(), 2);
    }

    /// A key whose `Drop` panics in the middle of a sweep leaks no slot and
    /// does not stop the next sweep.
    #[test]
    fn a_panicking_key_drop_leaves_the_limiter_consistent() {
        #[derive(Clone, PartialEq, Eq, Hash)]
        struct Key(u32);
        impl Drop for Key {
            fn drop(&mut self) {
                if self.0 == 0 && !std::thread::panicking() {
                    panic!("key 0 panics when dropped");
                }
            }
        }
        let clock = ManualClock::new();
        let limiter = KeyedRateLimiter::builder(Quota::per_second(NonZeroU32::MIN))
            .clock(&clock)
            .build();
        // The owned key made on insertion is the one stored; this one is a
        // probe, forgotten so that it never panics.
        for i in 0..16 {
            let key = Key(i);
            limiter.check(&key).unwrap();
            std::mem::forget(key);
        }
        clock.advance(Duration::from_secs(1));
        let swept = panic::catch_unwind(AssertUnwindSafe(|| limiter.retain_recent()));
        assert!(swept.is_err());
        let left = limiter.map.len();
        assert_eq!(limiter.len(), left);
        assert!(left < 16);
        // The next sweep (poisoned `sweeper` and all) evicts the rest.
        assert_eq!(limiter.retain_recent(), left);
        assert!(limiter.is_empty() && limiter.map.is_empty());
    }
}
