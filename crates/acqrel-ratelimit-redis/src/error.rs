//! What a check, a refund or a build can answer besides yes.

use std::time::Duration;

use acqrel_ratelimit::NotUntil;

/// A check that did not admit.
///
/// The first two are the answers [`RateLimiter`](acqrel_ratelimit::RateLimiter)
/// gives (a denial with its earliest time, a request larger than the
/// burst); the others are this crate's own: Redis could not decide and the
/// [`FailurePolicy`](crate::FailurePolicy) is to refuse, or the key was
/// refused before any round trip.
///
/// # Examples
///
/// ```
/// use acqrel_ratelimit_redis::{RedisNegative, Unavailable};
/// use std::time::Duration;
///
/// let e = RedisNegative::Unavailable(Unavailable::Timeout(Duration::from_millis(50)));
/// assert!(e.not_until().is_none());
/// assert!(e.is_unavailable());
/// assert_eq!(e.to_string(), "Redis unavailable: no reply within 50ms");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisNegative {
    /// Denied; admitted again from the time it names (on the Redis
    /// server's clock, since the Unix epoch; see [`NotUntil::wait_time`]
    /// for the wait).
    #[error(transparent)]
    NotUntil(#[from] NotUntil),
    /// More cells asked for at once than the burst: no wait would admit
    /// them. Decided without a round trip.
    #[error("more cells asked for at once than the burst of {burst}")]
    InsufficientCapacity {
        /// The quota's burst.
        burst: u32,
    },
    /// Redis did not decide (unreachable, too slow, or an error reply), and
    /// the policy is [`FailClosed`](crate::FailurePolicy::FailClosed).
    #[error("Redis unavailable: {0}")]
    Unavailable(#[source] Unavailable),
    /// Under [`FailLocal`](crate::FailurePolicy::FailLocal), Redis did not
    /// decide and the local fallback holds its maximum of keys: a new key
    /// is refused rather than admitted unlimited.
    #[error("Redis unavailable and the local fallback holds its maximum of {max_keys} keys")]
    FallbackFull {
        /// The fallback's key capacity.
        max_keys: usize,
    },
    /// The key was refused before any round trip.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl RedisNegative {
    /// The denial, when that is what this is.
    pub fn not_until(&self) -> Option<NotUntil> {
        match self {
            RedisNegative::NotUntil(not_until) => Some(*not_until),
            _ => None,
        }
    }

    /// Whether Redis could not be asked (or did not answer) and the policy
    /// refused: [`Unavailable`](RedisNegative::Unavailable) or
    /// [`FallbackFull`](RedisNegative::FallbackFull).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            RedisNegative::Unavailable(_) | RedisNegative::FallbackFull { .. }
        )
    }
}

/// Why Redis did not decide.
///
/// # Examples
///
/// ```
/// use acqrel_ratelimit_redis::Unavailable;
/// use std::time::Duration;
///
/// let e = Unavailable::Timeout(Duration::from_millis(5));
/// assert!(e.is_timeout());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// No reply within the call timeout (the server is slow, or the
    /// connection is being re-established).
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The client or the server reported an error: refused connection,
    /// dropped connection, an error reply (a key of another type, a
    /// server out of memory), and so on.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// The script replied with something it never sends (the script on the
    /// server is not this one). A key holding another program's value is
    /// the script's own error reply, [`Unavailable::Redis`].
    #[error("unexpected reply from the script: {0}")]
    Reply(String),
}

impl Unavailable {
    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Unavailable::Timeout(_))
    }
}

/// A key refused before any round trip.
///
/// # Examples
///
/// ```
/// use acqrel_ratelimit_redis::KeyError;
///
/// let e = KeyError::TooLong { len: 5000, max: 1024 };
/// assert_eq!(e.to_string(), "key of 5000 bytes: the limit is 1024");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key (without the prefix) is longer than the builder's
    /// `max_key_len`.
    #[error("key of {len} bytes: the limit is {max}")]
    TooLong {
        /// The key's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// A quota whose burst tolerance (`burst × interval`) is past what the
/// script holds exactly: 2⁵¹ seconds (71 million years). Every quota with a
/// tolerance below that is exact; the in-process limiter's largest
/// (a 36-year interval with a burst of `u32::MAX`) is not. Under
/// [`FailLocal`](crate::FailurePolicy::FailLocal), also a quota whose
/// per-replica share (the interval times the replicas) is past the
/// 36.5 years a [`Quota`](acqrel_ratelimit::Quota) holds.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use acqrel_ratelimit::Quota;
/// use acqrel_ratelimit_redis::QuotaOutOfRange;
///
/// let huge = Quota::with_period(Duration::from_secs(1 << 30)).unwrap().allow_burst(NonZeroU32::MAX);
/// let e = QuotaOutOfRange { quota: huge };
/// assert!(e.to_string().contains("2^51 s"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{quota:?}: burst × interval is past the 2^51 s Redis's doubles hold exactly, \
     or (under FailLocal) a replica's share has an interval past 2^60 ns"
)]
pub struct QuotaOutOfRange {
    /// The quota refused.
    pub quota: acqrel_ratelimit::Quota,
}

/// Why a limiter could not be built.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use acqrel_ratelimit::Quota;
/// use acqrel_ratelimit_redis::{BuildError, FailurePolicy, RedisRateLimiter};
///
/// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
/// let e = RedisRateLimiter::builder("http://nope", "api", quota, FailurePolicy::FailClosed)
///     .build()
///     .unwrap_err();
/// assert!(matches!(e, BuildError::Url(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The URL is not a Redis URL the client takes.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// The connection could not be set up (its tasks need a tokio runtime:
    /// build the limiter inside one).
    #[error("cannot set up the Redis connection: {0}")]
    Connection(#[source] redis::RedisError),
    /// There is no tokio runtime to run the connection on.
    #[error("no tokio runtime: build the limiter from inside one")]
    NoRuntime,
    /// A call or connect timeout of zero: every call would time out (and
    /// under `FailOpen` every check be admitted).
    #[error("a timeout of zero: every call would time out")]
    ZeroTimeout,
    /// The quota (or, under `FailLocal`, its per-replica share) cannot be
    /// represented.
    #[error(transparent)]
    Quota(#[from] QuotaOutOfRange),
}
