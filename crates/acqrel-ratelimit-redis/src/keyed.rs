//! [`KeyedRedisRateLimiter`]: a bucket in Redis per key (per client, per
//! tenant), shared by every process that uses the same prefix.

use std::borrow::Borrow;
use std::hash::Hash;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::time::Duration;

use acqrel_ratelimit::Quota;

use crate::core::{Config, Core};
use crate::error::{BuildError, QuotaOutOfRange, RedisNegative, Unavailable};
use crate::key::RedisKey;
use crate::policy::{Decision, FailurePolicy, Stats};

/// A GCRA limiter with one Redis key per key `K`: the prefix followed by
/// the key's bytes ([`RedisKey`]: strings and byte strings as they are, any
/// bytes, UTF-8 or not, the empty key included; integers in decimal).
///
/// The answers are [`KeyedRateLimiter`](acqrel_ratelimit::KeyedRateLimiter)'s
/// with Redis's clock, plus [`RedisNegative::Key`] for a key longer than
/// the builder's [`max_key_len`](KeyedRedisRateLimiterBuilder::max_key_len).
/// Memory in Redis: one small string per key whose bucket is not full, each
/// expiring when it is full again. Memory here: at most `max_keys` cached
/// denials (and under [`FailurePolicy::FailLocal`], at most `max_keys`
/// local buckets).
///
/// # Redis Cluster
///
/// The connection is to one server: a standalone Redis, a primary's
/// address, or a proxy in front of a cluster. The script itself is
/// cluster-safe (each call touches one key, so none can span slots and
/// draw `CROSSSLOT`), but this crate does not follow a cluster's `MOVED`
/// redirections: on a direct cluster connection, keys of other nodes' slots
/// are [`Unavailable`](RedisNegative::Unavailable). A prefix with a hash tag
/// (`{rl}:`) puts every key of the limiter in one slot, so all of them live
/// on the node that serves it.
///
/// # Examples
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use acqrel_ratelimit::Quota;
/// use acqrel_ratelimit_redis::{FailurePolicy, KeyedRedisRateLimiter};
/// # #[allow(dead_code)]
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let quota = Quota::per_minute(NonZeroU32::new(60).unwrap());
/// let limiter: KeyedRedisRateLimiter<String> = KeyedRedisRateLimiter::builder(
///     "redis://127.0.0.1/",
///     "rl:login:",
///     quota,
///     FailurePolicy::FailLocal { replicas: NonZeroU32::new(4).unwrap() },
/// )
/// .build()?;
/// if limiter.check("alice").await.is_err() {
///     println!("too many attempts");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct KeyedRedisRateLimiter<K: Hash + Eq> {
    core: Core<K>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedRedisRateLimiter<K> {
    /// A builder for a limiter whose keys are stored as `prefix` followed by
    /// the key, on the server at `url`, with `quota` and `policy`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::Quota;
    /// use acqrel_ratelimit_redis::{FailurePolicy, KeyedRedisRateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = KeyedRedisRateLimiter::<Vec<u8>>::builder("redis://127.0.0.1:1/", "rl:", quota, FailurePolicy::FailClosed)
    ///     .max_key_len(64)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(limiter.max_key_len(), 64);
    /// # });
    /// ```
    pub fn builder(
        url: &str,
        prefix: impl AsRef<[u8]>,
        quota: Quota,
        policy: FailurePolicy,
    ) -> KeyedRedisRateLimiterBuilder<K> {
        KeyedRedisRateLimiterBuilder {
            config: Config::new(url, prefix.as_ref(), quota, policy),
            keys: PhantomData,
        }
    }

    /// The quota this client checks every key against.
    pub fn quota(&self) -> Quota {
        self.core.quota()
    }

    /// The failure policy.
    pub fn policy(&self) -> FailurePolicy {
        self.core.policy()
    }

    /// The longest key taken, in bytes (the prefix not counted).
    pub fn max_key_len(&self) -> usize {
        self.core.max_key_len
    }

    /// The number of denials cached now (at most `max_keys`).
    pub fn cached_denials(&self) -> usize {
        self.core.cached_denials()
    }

    /// Takes one cell of `key`'s bucket if it has it.
    ///
    /// # Errors
    ///
    /// As [`RedisRateLimiter::check`](crate::RedisRateLimiter::check), and
    /// [`RedisNegative::Key`] for a key past `max_key_len`.
    ///
    /// # Panics
    ///
    /// As [`RedisRateLimiter::check`](crate::RedisRateLimiter::check).
    ///
    /// # Cancel safety
    ///
    /// As [`RedisRateLimiter::check`](crate::RedisRateLimiter::check).
    ///
    /// # Examples
    ///
    /// See [`KeyedRedisRateLimiter`].
    pub async fn check<Q>(&self, key: &Q) -> Result<(), RedisNegative>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + RedisKey + ?Sized,
    {
        self.check_n(key, 1).await
    }

    /// Takes `n` cells of `key`'s bucket at once if it has them all.
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check), and
    /// [`RedisNegative::InsufficientCapacity`] when `n` is more than the
    /// burst.
    ///
    /// # Cancel safety
    ///
    /// As [`RedisRateLimiter::check`](crate::RedisRateLimiter::check).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::Quota;
    /// use acqrel_ratelimit_redis::{FailurePolicy, KeyError, KeyedRedisRateLimiter, RedisNegative};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = KeyedRedisRateLimiter::<Vec<u8>>::builder("redis://127.0.0.1:1/", "rl:", quota, FailurePolicy::FailClosed)
    ///     .max_key_len(4)
    ///     .build()
    ///     .unwrap();
    /// let e = limiter.check_n(&b"too long"[..], 1).await.unwrap_err();
    /// assert!(matches!(e, RedisNegative::Key(KeyError::TooLong { len: 8, max: 4 })));
    /// # });
    /// ```
    pub async fn check_n<Q>(&self, key: &Q, n: u32) -> Result<(), RedisNegative>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + RedisKey + ?Sized,
    {
        self.decide(key, n).await.into_result()
    }

    /// [`check_n`](Self::check_n), saying who decided and Redis's clock.
    ///
    /// # Cancel safety
    ///
    /// As [`RedisRateLimiter::check`](crate::RedisRateLimiter::check).
    ///
    /// # Examples
    ///
    /// See [`Decision`].
    pub async fn decide<Q>(&self, key: &Q, n: u32) -> Decision
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + RedisKey + ?Sized,
    {
        self.core.decide(key, key, n).await
    }

    /// Waits until `n` cells of `key` are admitted, then takes them; see
    /// [`RedisRateLimiter::until_n_ready`](crate::RedisRateLimiter::until_n_ready).
    ///
    /// # Errors
    ///
    /// As [`RedisRateLimiter::until_n_ready`](crate::RedisRateLimiter::until_n_ready),
    /// and [`RedisNegative::Key`] for a key past `max_key_len`.
    ///
    /// # Cancel safety
    ///
    /// As [`RedisRateLimiter::until_n_ready`](crate::RedisRateLimiter::until_n_ready).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::num::NonZeroU32;
    /// # use acqrel_ratelimit::Quota;
    /// # use acqrel_ratelimit_redis::{FailurePolicy, KeyedRedisRateLimiter};
    /// # #[allow(dead_code)]
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// # let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = KeyedRedisRateLimiter::<String>::builder("redis://127.0.0.1/", "rl:", quota, FailurePolicy::FailClosed).build()?;
    /// limiter.until_n_ready("crawler", 2).await?;
    /// # Ok(()) }
    /// ```
    pub async fn until_n_ready<Q>(&self, key: &Q, n: u32) -> Result<(), RedisNegative>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + RedisKey + ?Sized,
    {
        self.core.until_ready(key, key, n).await
    }

    /// Gives back `n` cells of `key`'s bucket (capped at a full bucket).
    ///
    /// # Errors
    ///
    /// As [`RedisRateLimiter::refund`](crate::RedisRateLimiter::refund).
    /// A key past `max_key_len` never had a bucket: its refund does nothing
    /// and returns `Ok(())`.
    ///
    /// # Cancel safety
    ///
    /// A refund dropped after it was sent may still be applied.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::num::NonZeroU32;
    /// # use acqrel_ratelimit::Quota;
    /// # use acqrel_ratelimit_redis::{FailurePolicy, KeyedRedisRateLimiter};
    /// # #[allow(dead_code)]
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// # let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = KeyedRedisRateLimiter::<String>::builder("redis://127.0.0.1/", "rl:", quota, FailurePolicy::FailClosed).build()?;
    /// limiter.check("bob").await?;
    /// limiter.refund("bob", 1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn refund<Q>(&self, key: &Q, n: u32) -> Result<(), Unavailable>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + RedisKey + ?Sized,
    {
        self.core.refund(key, key, n).await
    }

    /// Changes the quota this client checks every key against; see
    /// [`RedisRateLimiter::set_quota`](crate::RedisRateLimiter::set_quota)
    /// for what carries over. Under [`FailurePolicy::FailLocal`] the local
    /// buckets start again, full, for the new share.
    ///
    /// # Errors
    ///
    /// [`QuotaOutOfRange`] for a quota the script cannot hold.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::Quota;
    /// use acqrel_ratelimit_redis::{FailurePolicy, KeyedRedisRateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = KeyedRedisRateLimiter::<String>::builder("redis://127.0.0.1:1/", "rl:", quota, FailurePolicy::FailClosed)
    ///     .build()
    ///     .unwrap();
    /// limiter.set_quota(Quota::per_second(NonZeroU32::new(20).unwrap())).unwrap();
    /// # });
    /// ```
    pub fn set_quota(&self, quota: Quota) -> Result<(), QuotaOutOfRange> {
        self.core.set_quota(quota)
    }

    /// How this limiter's checks have been decided so far.
    ///
    /// # Examples
    ///
    /// See [`RedisRateLimiter::stats`](crate::RedisRateLimiter::stats).
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }
}

/// Configures a [`KeyedRedisRateLimiter`]; from
/// [`KeyedRedisRateLimiter::builder`].
///
/// # Examples
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use acqrel_ratelimit::Quota;
/// use acqrel_ratelimit_redis::{FailurePolicy, KeyedRedisRateLimiter};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
/// let limiter = KeyedRedisRateLimiter::<String>::builder("redis://127.0.0.1:1/", "rl:", quota, FailurePolicy::FailOpen)
///     .max_keys(NonZeroUsize::new(1000).unwrap())
///     .build()
///     .unwrap();
/// # drop(limiter);
/// # });
/// ```
#[derive(Debug)]
#[must_use]
pub struct KeyedRedisRateLimiterBuilder<K> {
    config: Config,
    keys: PhantomData<fn() -> K>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedRedisRateLimiterBuilder<K> {
    /// As [`RedisRateLimiterBuilder::timeout`](crate::RedisRateLimiterBuilder::timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// As [`RedisRateLimiterBuilder::connect_timeout`](crate::RedisRateLimiterBuilder::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// As [`RedisRateLimiterBuilder::deny_cache`](crate::RedisRateLimiterBuilder::deny_cache).
    pub fn deny_cache(mut self, on: bool) -> Self {
        self.config.deny_cache = on;
        self
    }

    /// The most keys the deny cache holds, and under
    /// [`FailurePolicy::FailLocal`] the most local buckets; 100 000 by
    /// default.
    pub fn max_keys(mut self, max_keys: NonZeroUsize) -> Self {
        self.config.max_keys = max_keys;
        self
    }

    /// The longest key taken, in bytes, prefix not counted; 1024 by
    /// default. A longer one is refused with [`KeyError::TooLong`](crate::KeyError::TooLong) before
    /// any round trip (Redis would take keys up to 512 MB, each sent with
    /// every call).
    pub fn max_key_len(mut self, max_key_len: usize) -> Self {
        self.config.max_key_len = max_key_len;
        self
    }

    /// Builds the limiter; see
    /// [`RedisRateLimiterBuilder::build`](crate::RedisRateLimiterBuilder::build).
    ///
    /// # Errors
    ///
    /// As [`RedisRateLimiterBuilder::build`](crate::RedisRateLimiterBuilder::build).
    pub fn build(self) -> Result<KeyedRedisRateLimiter<K>, BuildError> {
        Ok(KeyedRedisRateLimiter {
            core: Core::build(self.config)?,
        })
    }
}
