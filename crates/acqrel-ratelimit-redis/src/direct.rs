//! [`RedisRateLimiter`]: one bucket in Redis, shared by every process that
//! names it.

use std::num::NonZeroUsize;
use std::time::Duration;

use acqrel_ratelimit::Quota;

use crate::core::{Config, Core};
use crate::error::{BuildError, QuotaOutOfRange, RedisNegative, Unavailable};
use crate::policy::{Decision, FailurePolicy, Stats};

/// A GCRA limiter whose bucket is one Redis key: every process that builds
/// one with the same key and quota shares the quota.
///
/// The answers are [`RateLimiter`](acqrel_ratelimit::RateLimiter)'s
/// (admitted, denied [`NotUntil`](acqrel_ratelimit::NotUntil) a time, or
/// more than the burst), with Redis's clock in place of the limiter's;
/// what happens when Redis does not answer is the [`FailurePolicy`] given
/// to the builder.
///
/// # Examples
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use acqrel_ratelimit::Quota;
/// use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter};
/// # #[allow(dead_code)]
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let quota = Quota::per_second(NonZeroU32::new(100).unwrap());
/// let limiter = RedisRateLimiter::builder("redis://127.0.0.1/", "{api}:search", quota, FailurePolicy::FailClosed)
///     .build()?;
/// match limiter.check().await {
///     Ok(()) => println!("go"),
///     Err(e) => match e.not_until() {
///         Some(denied) => println!("retry in {:?}", denied.wait_time()),
///         None => println!("no decision: {e}"),
///     },
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisRateLimiter {
    core: Core<()>,
}

impl RedisRateLimiter {
    /// A builder for a limiter on the key `key` of the server at `url`
    /// (`redis://[user:password@]host[:port][/db]`), with `quota` and the
    /// failure policy `policy`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use acqrel_ratelimit::Quota;
    /// use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let quota = Quota::per_second(NonZeroU32::new(100).unwrap());
    /// // Building does not connect: the first check does.
    /// let limiter = RedisRateLimiter::builder("redis://127.0.0.1:1/", "api", quota, FailurePolicy::FailOpen)
    ///     .timeout(Duration::from_millis(20))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(limiter.quota(), quota);
    /// # });
    /// ```
    pub fn builder(
        url: &str,
        key: impl AsRef<[u8]>,
        quota: Quota,
        policy: FailurePolicy,
    ) -> RedisRateLimiterBuilder {
        RedisRateLimiterBuilder {
            config: Config::new(url, key.as_ref(), quota, policy),
        }
    }

    /// The quota this client checks against.
    pub fn quota(&self) -> Quota {
        self.core.quota()
    }

    /// The failure policy.
    pub fn policy(&self) -> FailurePolicy {
        self.core.policy()
    }

    /// Whether a denial is cached now (answering checks without a round
    /// trip until it lapses).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::Quota;
    /// use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = RedisRateLimiter::builder("redis://127.0.0.1:1/", "api", quota, FailurePolicy::FailClosed)
    ///     .build()
    ///     .unwrap();
    /// assert!(!limiter.has_cached_denial());
    /// # });
    /// ```
    pub fn has_cached_denial(&self) -> bool {
        self.core.cached_denials() > 0
    }

    /// Takes one cell if the bucket has it.
    ///
    /// # Errors
    ///
    /// [`RedisNegative::NotUntil`] when denied (by Redis, or locally by the
    /// deny cache before the time Redis named); under
    /// [`FailurePolicy::FailClosed`], [`RedisNegative::Unavailable`] when
    /// Redis did not answer within the timeout.
    ///
    /// # Panics
    ///
    /// When polled outside a tokio runtime with its time driver enabled
    /// (the call's timeout is tokio's).
    ///
    /// # Cancel safety
    ///
    /// A cell is taken when the script runs on the server, which may
    /// happen even if this future is dropped after sending it: dropping a
    /// check can take a cell that nobody uses (as a timed-out check can).
    /// It never takes more than one.
    ///
    /// # Examples
    ///
    /// See [`RedisRateLimiter`].
    pub async fn check(&self) -> Result<(), RedisNegative> {
        self.check_n(1).await
    }

    /// Takes `n` cells at once if the bucket has them all.
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check), and
    /// [`RedisNegative::InsufficientCapacity`] when `n` is more than the
    /// burst (decided without a round trip).
    ///
    /// # Cancel safety
    ///
    /// As [`check`](Self::check).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::Quota;
    /// use acqrel_ratelimit_redis::{FailurePolicy, RedisNegative, RedisRateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = RedisRateLimiter::builder("redis://127.0.0.1:1/", "api", quota, FailurePolicy::FailClosed)
    ///     .build()
    ///     .unwrap();
    /// let e = limiter.check_n(11).await.unwrap_err();
    /// assert!(matches!(e, RedisNegative::InsufficientCapacity { burst: 10 }));
    /// # });
    /// ```
    pub async fn check_n(&self, n: u32) -> Result<(), RedisNegative> {
        self.decide(n).await.into_result()
    }

    /// [`check_n`](Self::check_n), saying who decided and Redis's clock.
    ///
    /// # Cancel safety
    ///
    /// As [`check`](Self::check).
    ///
    /// # Examples
    ///
    /// See [`Decision`].
    pub async fn decide(&self, n: u32) -> Decision {
        self.core.decide(&(), &[][..], n).await
    }

    /// Waits until `n` cells are admitted, then takes them: checks, sleeps
    /// on tokio's timer for the wait each denial names, and checks again.
    ///
    /// # Errors
    ///
    /// Any answer of [`check_n`](Self::check_n) that is not a denial:
    /// [`RedisNegative::InsufficientCapacity`] at once for more than the
    /// burst, [`RedisNegative::Unavailable`] under
    /// [`FailurePolicy::FailClosed`] when Redis does not answer.
    ///
    /// # Cancel safety
    ///
    /// As [`check`](Self::check): dropped while sleeping, it has taken
    /// nothing; dropped during a check, it may have taken the cells.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::num::NonZeroU32;
    /// # use acqrel_ratelimit::Quota;
    /// # use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter};
    /// # #[allow(dead_code)]
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// # let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = RedisRateLimiter::builder("redis://127.0.0.1/", "api", quota, FailurePolicy::FailClosed).build()?;
    /// for _ in 0..20 {
    ///     limiter.until_n_ready(1).await?; // 10 at once, then one per 100 ms
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn until_n_ready(&self, n: u32) -> Result<(), RedisNegative> {
        self.core.until_ready(&(), &[][..], n).await
    }

    /// Gives back `n` cells taken and not used (capped at a full bucket).
    ///
    /// Also forgets this client's cached denial of the key. Other clients'
    /// caches still deny until their entries lapse: refunded cells are
    /// found by them later, never twice.
    ///
    /// # Errors
    ///
    /// [`Unavailable`] when Redis did not answer; whatever the policy, a
    /// refund is then lost (the cells come back with time, as unused cells
    /// do).
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
    /// # use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter};
    /// # #[allow(dead_code)]
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// # let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = RedisRateLimiter::builder("redis://127.0.0.1/", "api", quota, FailurePolicy::FailClosed).build()?;
    /// limiter.check_n(3).await?;
    /// limiter.refund(3).await?; // the work was not done
    /// # Ok(()) }
    /// ```
    pub async fn refund(&self, n: u32) -> Result<(), Unavailable> {
        self.core.refund(&(), &[][..], n).await
    }

    /// Changes the quota this client checks against, from its next check.
    ///
    /// Unlike [`RateLimiter::set_quota`](acqrel_ratelimit::RateLimiter::set_quota),
    /// which keeps the *cells* available, the bucket in Redis keeps its
    /// *time*: the time until it is full again carries over and is measured
    /// against the new tolerance. The key holds only that time (every
    /// client sends its own quota with each call, so clients of a fleet
    /// that is changing its quota each decide by their own); keeping cells
    /// would need the old quota stored with the key and a division Redis's
    /// doubles cannot do exactly. Either way nothing past the new burst is
    /// admitted. Clears this client's deny cache.
    ///
    /// # Errors
    ///
    /// [`QuotaOutOfRange`] for a quota the script cannot hold; the old one
    /// stays.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::Quota;
    /// use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let ten = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = RedisRateLimiter::builder("redis://127.0.0.1:1/", "api", ten, FailurePolicy::FailClosed)
    ///     .build()
    ///     .unwrap();
    /// let hundred = Quota::per_second(NonZeroU32::new(100).unwrap());
    /// limiter.set_quota(hundred).unwrap();
    /// assert_eq!(limiter.quota(), hundred);
    /// # });
    /// ```
    pub fn set_quota(&self, quota: Quota) -> Result<(), QuotaOutOfRange> {
        self.core.set_quota(quota)
    }

    /// How this limiter's checks have been decided so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use acqrel_ratelimit::Quota;
    /// use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let limiter = RedisRateLimiter::builder("redis://127.0.0.1:1/", "api", quota, FailurePolicy::FailOpen)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(limiter.stats().round_trips, 0);
    /// # });
    /// ```
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }
}

/// Configures a [`RedisRateLimiter`]; from [`RedisRateLimiter::builder`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use acqrel_ratelimit::Quota;
/// use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
/// let limiter = RedisRateLimiter::builder("redis://127.0.0.1:1/", "api", quota, FailurePolicy::FailClosed)
///     .timeout(Duration::from_millis(25))
///     .deny_cache(false)
///     .build()
///     .unwrap();
/// # drop(limiter);
/// # });
/// ```
#[derive(Debug)]
#[must_use]
pub struct RedisRateLimiterBuilder {
    config: Config,
}

impl RedisRateLimiterBuilder {
    /// How long a call waits for Redis (sending, the script, the reply, and
    /// a reconnection if one is under way) before the failure policy
    /// decides; 100 ms by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// How long one attempt to (re)connect may take, handshake included;
    /// 1 s by default. It runs in the background of the calls (each still
    /// bounded by [`timeout`](Self::timeout)), so it may be longer than a
    /// call's timeout: a slow handshake then completes for later calls.
    /// After three calls in a row that timed out or failed on the
    /// connection, the connection is replaced by a new one
    /// ([`Stats::renewals`]): a peer that stopped answering without closing
    /// the socket is not waited on.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Whether denials are cached so that a check before the time Redis
    /// named is answered locally; on by default. It never admits (see the
    /// crate docs).
    pub fn deny_cache(mut self, on: bool) -> Self {
        self.config.deny_cache = on;
        self
    }

    /// Builds the limiter. Does not connect: the first check does, and a
    /// server that is down then is the failure policy's to answer for.
    ///
    /// # Errors
    ///
    /// [`BuildError`]: a URL that is not a Redis URL, a quota the script
    /// cannot hold, a zero timeout, or no tokio runtime.
    pub fn build(self) -> Result<RedisRateLimiter, BuildError> {
        let config = Config {
            max_keys: NonZeroUsize::MIN,
            ..self.config
        };
        Ok(RedisRateLimiter {
            core: Core::build(config)?,
        })
    }
}
