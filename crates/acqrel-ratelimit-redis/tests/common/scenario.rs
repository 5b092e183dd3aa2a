//! What the benches (`benches/benches/ratelimit_redis.rs`) and the
//! `latency` example both measure: one decision of either limiter, ours or
//! the hand-written fixed window (`fixed_window.rs`, which the including
//! file declares beside this one), in a scenario whose outcome is known.

#![allow(dead_code, unreachable_pub)]

use std::num::NonZeroU32;
use std::time::Duration;

use acqrel_ratelimit::Quota;
use acqrel_ratelimit_redis::{FailurePolicy, RedisRateLimiter};
use redis::aio::ConnectionManager;

use super::fixed_window::{FixedWindow, Form};

/// Ours, with the deny cache (the default) where it matters.
pub const OURS: &str = "acqrel::RedisRateLimiter::check";
pub const OURS_DENY_CACHE: &str = "acqrel::RedisRateLimiter::check (deny cache)";
pub const OURS_NO_DENY_CACHE: &str = "acqrel::RedisRateLimiter::check (no deny cache)";

/// The anchors of the admit scenario, by name.
pub const ADMIT_ANCHORS: [(&str, Form); 3] = [
    ("incr_expire::two_round_trips", Form::TwoRoundTrips),
    ("incr_expire::expire_when_first", Form::ExpireWhenFirst),
    ("incr_expire::pipeline", Form::Pipeline),
];

/// The anchor of the over-limit scenario.
pub const OVER_LIMIT_ANCHOR: (&str, Form) = ("incr_expire::pipeline", Form::Pipeline);

/// The fixed window's length, on every anchor.
pub const WINDOW_SECS: u64 = 3600;

/// Ours's call timeout: far past a loopback round trip, so a stalled
/// machine makes a check slow, not a failure that ends the run.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Ours on `key` of the server at `url`, under `outcome`'s quota, failing
/// closed. Must be called within the tokio runtime it will run on.
pub fn ours(url: &str, key: &str, outcome: Outcome, deny_cache: bool) -> RedisRateLimiter {
    RedisRateLimiter::builder(url, key, outcome.quota(), FailurePolicy::FailClosed)
        .timeout(TIMEOUT)
        .deny_cache(deny_cache)
        .build()
        .expect("a limiter on a loopback server")
}

/// An anchor on `key` under `outcome`'s limit, on a connection of its own
/// made with the redis crate's defaults.
pub async fn anchor(client: redis::Client, key: &str, outcome: Outcome, form: Form) -> FixedWindow {
    let con = ConnectionManager::new(client)
        .await
        .expect("a connection to a loopback server");
    FixedWindow::new(con, key, outcome.limit(), WINDOW_SECS, form)
}

/// Which outcome every measured check of a scenario has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A quota so large that every check admits.
    Admit,
    /// One cell per hour (per window), taken before measuring.
    OverLimit,
}

impl Outcome {
    /// Ours's quota: one cell per nanosecond with a burst of 10⁹, or one
    /// cell per hour.
    pub fn quota(self) -> Quota {
        match self {
            Self::Admit => Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap()),
            Self::OverLimit => Quota::per_hour(NonZeroU32::MIN),
        }
    }

    /// The anchors' limit per window.
    pub fn limit(self) -> u64 {
        match self {
            Self::Admit => u64::MAX,
            Self::OverLimit => 1,
        }
    }

    /// Panics unless `admitted` is this scenario's outcome.
    #[inline]
    pub fn expect(self, admitted: bool) {
        match self {
            Self::Admit => assert!(admitted, "an admit scenario denied"),
            Self::OverLimit => assert!(!admitted, "an over-limit scenario admitted"),
        }
    }
}

/// One limiter, whichever side.
pub trait Side {
    /// One decision: whether it admitted. Panics when there was none (a
    /// timeout, a connection error): a measurement never counts a failure
    /// as a denial.
    async fn admitted(&self) -> bool;

    /// Round trips made so far.
    fn round_trips(&self) -> u64;
}

impl Side for RedisRateLimiter {
    async fn admitted(&self) -> bool {
        match self.check().await {
            Ok(()) => true,
            Err(e) => {
                assert!(e.not_until().is_some(), "no decision: {e}");
                false
            }
        }
    }

    fn round_trips(&self) -> u64 {
        self.stats().round_trips
    }
}

impl Side for FixedWindow {
    async fn admitted(&self) -> bool {
        match self.check().await {
            Ok(admitted) => admitted,
            Err(e) => panic!("no decision: {e}"),
        }
    }

    fn round_trips(&self) -> u64 {
        FixedWindow::round_trips(self)
    }
}
