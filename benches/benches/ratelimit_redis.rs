//! `acqrel-ratelimit-redis` against the limiter people write by hand over
//! Redis: a fixed window counted with `INCR` and expired with `EXPIRE`
//! (`crates/acqrel-ratelimit-redis/tests/common/fixed_window.rs`, shared
//! with the crate's `latency` example).
//!
//! One `redis-server` for the whole process, on loopback, started before
//! the first group by the crate's test harness
//! (`crates/acqrel-ratelimit-redis/tests/common/server.rs`), and one
//! current-thread tokio runtime, on which the connections' tasks run too.
//! Every side has its own key and its own `redis::aio::ConnectionManager`:
//! ours builds its own, each anchor gets one made with the redis crate's
//! defaults. Timed with `iter_custom`, one `block_on` per batch of
//! iterations, so entering the runtime is not measured; an iteration is one
//! decision awaited to its end. Its outcome is asserted in the loop: an
//! admit group that ever denies, or an over-limit group that ever admits,
//! panics instead of measuring the other path (and a check that reaches no
//! decision, a timeout say, panics too).
//!
//! Groups (one per scenario):
//!
//! - `ratelimit_redis/admit`: a quota so large that every check admits
//!   (ours one cell per nanosecond with a burst of 10⁹, the anchors a limit
//!   of `u64::MAX` per hour). Ours is `RedisRateLimiter::check`: one
//!   `EVALSHA` (the script reads `TIME`, `GET`s the key, `SET`s it with a
//!   lifetime). The anchors are the three forms of the fixed window:
//!   `incr_expire::two_round_trips` (`INCR`, then `EXPIRE key 3600 NX` on
//!   every call), `incr_expire::expire_when_first` (`INCR`, and `EXPIRE`
//!   only when it returned 1: one round trip once the window has begun) and
//!   `incr_expire::pipeline` (both commands in one pipelined round trip).
//! - `ratelimit_redis/over_limit`: a key over its limit (one cell per hour,
//!   taken before measuring). Ours twice: with the deny cache (on by
//!   default; the denial that fills it is made before measuring, so every
//!   measured check is answered locally, which is asserted after the group
//!   from the limiter's round-trip count) and without it (`.deny_cache(false)`:
//!   a round trip each). The anchor is `incr_expire::pipeline` on a window
//!   whose one call was made before measuring.
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`. The p50 and p99 latencies, decisions per
//! second and round trips per decision are the `latency` example's
//! (`cargo run --release -p acqrel-ratelimit-redis --example latency`):
//! criterion reports means only.

#[path = "../../crates/acqrel-ratelimit-redis/tests/common/fixed_window.rs"]
mod fixed_window;
#[path = "../../crates/acqrel-ratelimit-redis/tests/common/scenario.rs"]
mod scenario;
#[path = "../../crates/acqrel-ratelimit-redis/tests/common/server.rs"]
mod server;

use std::hint::black_box;
use std::time::Instant;

use acqrel_ratelimit_redis::RedisRateLimiter;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use fixed_window::{FixedWindow, Form};
use scenario::{
    ADMIT_ANCHORS, OURS, OURS_DENY_CACHE, OURS_NO_DENY_CACHE, OVER_LIMIT_ANCHOR, Outcome, Side,
};
use server::RedisServer;
use tokio::runtime::Runtime;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

// ===== Setup =====

/// What every group uses: the runtime and the server.
struct Env {
    rt: Runtime,
    server: RedisServer,
}

impl Env {
    /// Ours on `key` under `outcome`'s quota.
    fn ours(&self, key: &str, outcome: Outcome, deny_cache: bool) -> RedisRateLimiter {
        let _entered = self.rt.enter();
        scenario::ours(&self.server.url(), key, outcome, deny_cache)
    }

    /// An anchor on `key` under `outcome`'s limit.
    fn anchor(&self, key: &str, outcome: Outcome, form: Form) -> FixedWindow {
        self.rt
            .block_on(scenario::anchor(self.server.client(), key, outcome, form))
    }

    /// Takes the one cell of an over-limit side's key.
    fn spend<S: Side>(&self, side: &S) {
        assert!(self.rt.block_on(side.admitted()), "a fresh key was denied");
    }

    /// Measures `side` under `id`.
    fn measure<S: Side>(&self, group: &mut Group<'_>, id: &str, side: &S, outcome: Outcome) {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                self.rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let admitted = black_box(side).admitted().await;
                        outcome.expect(admitted);
                        black_box(admitted);
                    }
                    start.elapsed()
                })
            });
        });
    }
}

// ===== Groups =====

fn admit(c: &mut Criterion, env: &Env) {
    let outcome = Outcome::Admit;
    let mut group = c.benchmark_group("ratelimit_redis/admit");
    let ours = env.ours("admit:ours", outcome, true);
    env.measure(&mut group, OURS, &ours, outcome);
    for (id, form) in ADMIT_ANCHORS {
        let anchor = env.anchor(&format!("admit:{id}"), outcome, form);
        env.measure(&mut group, id, &anchor, outcome);
    }
    group.finish();
}

fn over_limit(c: &mut Criterion, env: &Env) {
    let outcome = Outcome::OverLimit;
    let mut group = c.benchmark_group("ratelimit_redis/over_limit");

    let cached = env.ours("over_limit:deny_cache", outcome, true);
    // The cell, then the denial that fills the cache; no round trip after
    // them.
    env.spend(&cached);
    assert!(!env.rt.block_on(cached.admitted()), "a spent key admitted");
    let filled = cached.stats().round_trips;
    env.measure(&mut group, OURS_DENY_CACHE, &cached, outcome);
    assert_eq!(
        cached.stats().round_trips,
        filled,
        "a check of a cached denial went to Redis"
    );

    let uncached = env.ours("over_limit:no_deny_cache", outcome, false);
    env.spend(&uncached);
    env.measure(&mut group, OURS_NO_DENY_CACHE, &uncached, outcome);

    let (id, form) = OVER_LIMIT_ANCHOR;
    let anchor = env.anchor(&format!("over_limit:{id}"), outcome, form);
    env.spend(&anchor);
    env.measure(&mut group, id, &anchor, outcome);
    group.finish();
}

fn main() {
    let env = Env {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime"),
        server: RedisServer::start(),
    };
    let mut c = Criterion::default().configure_from_args();
    admit(&mut c, &env);
    over_limit(&mut c, &env);
    c.final_summary();
}
