//! The limiter both public types wrap: the connection, the quota, the deny
//! cache, the failure policy, and one decision.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acqrel_core::Snapshot;
use acqrel_ratelimit::{KeyedNegative, KeyedRateLimiter, NotUntil, Quota};
use redis::aio::ConnectionManagerConfig;
use redis::{ErrorKind, ServerErrorKind};

use crate::connection::{Connection, Outcome};
use crate::deny_cache::DenyCache;
use crate::error::{BuildError, KeyError, QuotaOutOfRange, RedisNegative, Unavailable};
use crate::key::RedisKey;
use crate::policy::{Counters, Decision, FailurePolicy, Source, Stats};
use crate::script::{self, Call, Params, Reply};

/// The call timeout when the builder is not told otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// The connection timeout when the builder is not told otherwise.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Deny-cache and fallback keys when the builder is not told otherwise.
pub(crate) const DEFAULT_MAX_KEYS: NonZeroUsize = NonZeroUsize::new(100_000).unwrap();

/// The longest key when the builder is not told otherwise.
pub(crate) const DEFAULT_MAX_KEY_LEN: usize = 1024;

/// What the builders collect.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) url: String,
    pub(crate) prefix: Vec<u8>,
    pub(crate) quota: Quota,
    pub(crate) policy: FailurePolicy,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) deny_cache: bool,
    pub(crate) max_keys: NonZeroUsize,
    pub(crate) max_key_len: usize,
}

impl Config {
    pub(crate) fn new(url: &str, prefix: &[u8], quota: Quota, policy: FailurePolicy) -> Self {
        Config {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
            quota,
            policy,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            deny_cache: true,
            max_keys: DEFAULT_MAX_KEYS,
            max_key_len: DEFAULT_MAX_KEY_LEN,
        }
    }
}

/// The quota as every check reads it: swapped whole by `set_quota`.
struct Current<K> {
    quota: Quota,
    params: Params,
    /// `FailLocal`'s limiter, built for this quota's share.
    fallback: Option<KeyedRateLimiter<K>>,
}

/// A limiter over keys `K` (`()` for the one-key limiter).
pub(crate) struct Core<K: Hash + Eq> {
    con: Connection,
    sha: String,
    prefix: Vec<u8>,
    policy: FailurePolicy,
    timeout: Duration,
    max_keys: NonZeroUsize,
    pub(crate) max_key_len: usize,
    current: Snapshot<Current<K>>,
    cache: Option<DenyCache<K>>,
    counters: Counters,
}

impl<K: Hash + Eq + Clone> Core<K> {
    pub(crate) fn build(config: Config) -> Result<Self, BuildError> {
        let current = current(config.quota, config.policy, config.max_keys)?;
        let client = redis::Client::open(config.url.as_str()).map_err(BuildError::Url)?;
        // The connection's tasks are spawned on the caller's runtime; without
        // one the client would panic.
        tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        if config.timeout.is_zero() || config.connect_timeout.is_zero() {
            return Err(BuildError::ZeroTimeout);
        }
        // One attempt per reconnection, bounded by the connect timeout
        // (which may be longer than a call's: a handshake slower than a
        // call still completes, in the background, for the calls after
        // it). No retries with backoff inside the client: while the server
        // refuses connections each call fails at once (and the policy
        // answers) instead of waiting out a backoff, and the next call
        // tries again. Each check is bounded by its own timeout whatever
        // the reconnection does.
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(None)
            .set_number_of_retries(0);
        let con = Connection::new(client, manager_config).map_err(BuildError::Connection)?;
        Ok(Core {
            con,
            sha: redis::Script::new(script::SOURCE).get_hash().to_owned(),
            prefix: config.prefix,
            policy: config.policy,
            timeout: config.timeout,
            max_keys: config.max_keys,
            max_key_len: config.max_key_len,
            current: Snapshot::new(current),
            cache: config.deny_cache.then(|| DenyCache::new(config.max_keys)),
            counters: Counters::default(),
        })
    }

    pub(crate) fn quota(&self) -> Quota {
        self.current.load().quota
    }

    pub(crate) fn policy(&self) -> FailurePolicy {
        self.policy
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.read()
    }

    pub(crate) fn cached_denials(&self) -> usize {
        self.cache.as_ref().map_or(0, DenyCache::len)
    }

    /// Replaces the quota: later checks of this client pass the new one.
    pub(crate) fn set_quota(&self, quota: Quota) -> Result<(), QuotaOutOfRange> {
        let next = current(quota, self.policy, self.max_keys).map_err(|e| match e {
            BuildError::Quota(e) => e,
            _ => QuotaOutOfRange { quota },
        })?;
        self.current.store(next);
        // Cached denials were computed with the old interval and tolerance;
        // after the store, so a check that read the old ones cannot cache
        // its denial after this.
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
        Ok(())
    }

    /// Decides `n` cells of `key`, stored under `prefix + tail`.
    pub(crate) async fn decide<Q, T>(&self, key: &Q, tail: &T, n: u32) -> Decision
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        T: RedisKey + ?Sized,
    {
        let params = self.current.load().params;
        if n == 0 {
            return client(Ok(()));
        }
        if n > params.burst {
            return client(Err(RedisNegative::InsufficientCapacity {
                burst: params.burst,
            }));
        }
        if let Some(cache) = &self.cache
            && let Some(denied) = cache.denies(key, n, Instant::now())
        {
            Counters::bump(&self.counters.deny_cache);
            return Decision {
                outcome: Err(RedisNegative::NotUntil(denied)),
                source: Source::DenyCache,
                redis_time: None,
            };
        }
        let redis_key = match self.redis_key(tail) {
            Ok(redis_key) => redis_key,
            Err(e) => return client(Err(RedisNegative::Key(e))),
        };
        self.decide_remote(key, &redis_key, n, params).await
    }

    /// `prefix + tail`, or the error for a tail past `max_key_len`.
    fn redis_key<T: RedisKey + ?Sized>(&self, tail: &T) -> Result<Vec<u8>, KeyError> {
        let mut redis_key = Vec::with_capacity(self.prefix.len() + 32);
        redis_key.extend_from_slice(&self.prefix);
        tail.write_key(&mut redis_key);
        let len = redis_key.len() - self.prefix.len();
        if len > self.max_key_len {
            return Err(KeyError::TooLong {
                len,
                max: self.max_key_len,
            });
        }
        Ok(redis_key)
    }

    /// Checks `n` cells until they are admitted, sleeping for each denial's
    /// wait; returns the first answer that is neither.
    pub(crate) async fn until_ready<Q, T>(
        &self,
        key: &Q,
        tail: &T,
        n: u32,
    ) -> Result<(), RedisNegative>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        T: RedisKey + ?Sized,
    {
        loop {
            match self.decide(key, tail, n).await.into_result() {
                Err(RedisNegative::NotUntil(denied)) => {
                    tokio::time::sleep(denied.wait_time()).await;
                }
                other => return other,
            }
        }
    }

    /// The round trip, and the policy when it fails.
    async fn decide_remote<Q>(&self, key: &Q, redis_key: &[u8], n: u32, params: Params) -> Decision
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let epoch = self.cache.as_ref().map(DenyCache::epoch);
        let sent = Instant::now();
        let error = match self.eval(redis_key, params.check(n)).await {
            Ok(reply) if reply.admitted => {
                return Decision {
                    outcome: Ok(()),
                    source: Source::Redis,
                    redis_time: Some(reply.now),
                };
            }
            Ok(reply) => {
                if let (Some(cache), Some(epoch)) = (&self.cache, epoch) {
                    cache.insert(
                        key.to_owned(),
                        epoch,
                        sent,
                        &reply,
                        n,
                        params.t,
                        params.burst,
                    );
                }
                return Decision {
                    outcome: Err(RedisNegative::NotUntil(NotUntil::new(reply.at, reply.now))),
                    source: Source::Redis,
                    redis_time: Some(reply.now),
                };
            }
            Err(error) => error,
        };
        let (outcome, source) = match self.policy {
            FailurePolicy::FailOpen => {
                Counters::bump(&self.counters.fail_open);
                (Ok(()), Source::FailOpen)
            }
            FailurePolicy::FailLocal { .. } => {
                Counters::bump(&self.counters.fail_local);
                let current = self.current.load_full();
                let outcome = match current.fallback.as_ref().map(|f| f.check_n(key, n)) {
                    Some(Ok(())) => Ok(()),
                    // On this host's wall clock, the estimate of Redis's
                    // at hand: the same time base as Redis's denials.
                    Some(Err(KeyedNegative::NotUntil(denied))) => {
                        let now = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default();
                        Err(RedisNegative::NotUntil(NotUntil::new(
                            now.saturating_add(denied.wait_time()),
                            now,
                        )))
                    }
                    // More than the share's burst: no local wait admits it,
                    // but Redis may once it is back, so it is not the
                    // permanent `InsufficientCapacity`.
                    Some(Err(KeyedNegative::TooManyKeys { max_keys })) => {
                        Err(RedisNegative::FallbackFull { max_keys })
                    }
                    _ => Err(RedisNegative::Unavailable(error)),
                };
                (outcome, Source::FailLocal)
            }
            _ => (Err(RedisNegative::Unavailable(error)), Source::FailClosed),
        };
        Decision {
            outcome,
            source,
            redis_time: None,
        }
    }

    /// Gives back `n` cells of `key`, stored under `prefix + tail` (a tail
    /// past `max_key_len` has no bucket: nothing to do).
    pub(crate) async fn refund<Q, T>(&self, key: &Q, tail: &T, n: u32) -> Result<(), Unavailable>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        T: RedisKey + ?Sized,
    {
        if n == 0 {
            return Ok(());
        }
        let params = self.current.load().params;
        let Ok(redis_key) = self.redis_key(tail) else {
            return Ok(());
        };
        let refunded = self.eval(&redis_key, params.refund(n)).await.map(|_| ());
        // After the reply (or the failure: it may have been applied), so a
        // check whose denial predates the refund cannot cache it after this.
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
        refunded
    }

    /// Runs the script on `key`: `EVALSHA`, and the whole script with
    /// `EVAL` when the server answers `NOSCRIPT` (a restarted or flushed
    /// server), all within the call timeout.
    async fn eval(&self, key: &[u8], call: Call) -> Result<Reply, Unavailable> {
        let round_trips = async {
            let mut con = self.con.manager();
            let invoke = |first: &str, script: &str| {
                let mut cmd = redis::cmd(first);
                cmd.arg(script).arg(1).arg(key).arg(&[call.op][..]);
                for arg in call.args {
                    cmd.arg(arg);
                }
                cmd
            };
            Counters::bump(&self.counters.round_trips);
            match invoke("EVALSHA", &self.sha)
                .query_async::<Vec<i64>>(&mut con)
                .await
            {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    Counters::bump(&self.counters.round_trips);
                    Counters::bump(&self.counters.script_loads);
                    invoke("EVAL", script::SOURCE)
                        .query_async::<Vec<i64>>(&mut con)
                        .await
                }
                other => other,
            }
        };
        let (reply, outcome) = match tokio::time::timeout(self.timeout, round_trips).await {
            Ok(Ok(values)) => (
                Reply::parse(&values).map_err(Unavailable::Reply),
                Outcome::Replied,
            ),
            Ok(Err(e)) => {
                let outcome = Outcome::of(&e);
                (Err(Unavailable::Redis(e)), outcome)
            }
            Err(_) => (Err(Unavailable::Timeout(self.timeout)), Outcome::Failed),
        };
        if self.con.record(outcome) {
            Counters::bump(&self.counters.renewals);
        }
        match &reply {
            Ok(_) => Counters::bump(&self.counters.redis),
            Err(_) => Counters::bump(&self.counters.unavailable),
        }
        reply
    }
}

/// A decision made before any round trip.
fn client(outcome: Result<(), RedisNegative>) -> Decision {
    Decision {
        outcome,
        source: Source::Client,
        redis_time: None,
    }
}

/// The parameters of `quota`, and `FailLocal`'s limiter for its share.
fn current<K: Hash + Eq>(
    quota: Quota,
    policy: FailurePolicy,
    max_keys: NonZeroUsize,
) -> Result<Current<K>, BuildError> {
    let params = Params::new(&quota).ok_or(QuotaOutOfRange { quota })?;
    let fallback = match policy {
        FailurePolicy::FailLocal { replicas } => {
            let share = share(quota, replicas).ok_or(QuotaOutOfRange { quota })?;
            Some(KeyedRateLimiter::builder(share).max_keys(max_keys).build())
        }
        _ => None,
    };
    Ok(Current {
        quota,
        params,
        fallback,
    })
}

/// One replica's share of `quota`: the interval `replicas` times longer,
/// the burst divided (at least one). `None` when the interval would pass
/// what a [`Quota`] holds.
pub(crate) fn share(quota: Quota, replicas: NonZeroU32) -> Option<Quota> {
    let interval = quota.replenish_interval().checked_mul(replicas.get())?;
    let burst =
        NonZeroU32::new(quota.burst_size().get() / replicas.get()).unwrap_or(NonZeroU32::MIN);
    Some(Quota::with_period(interval)?.allow_burst(burst))
}

impl<K: Hash + Eq> fmt::Debug for Core<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("quota", &self.current.load().quota)
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .field("deny_cache", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}
