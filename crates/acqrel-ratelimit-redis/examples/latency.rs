//! Measures the latency of single checks against a real `redis-server` on
//! loopback: ours against the fixed window people write by hand (`INCR` +
//! `EXPIRE`), in the scenarios of the criterion bench
//! `benches/benches/ratelimit_redis.rs`, which reports only means.
//!
//! ```sh
//! cargo run --release -p acqrel-ratelimit-redis --example latency
//! ```
//!
//! It starts its own `redis-server` (the test harness,
//! `tests/common/server.rs`; `cargo xtask install-redis` installs one) and
//! runs everything on one current-thread tokio runtime, each side on its
//! own key and connection. Every side makes 2,000 checks to warm up; then
//! the sides take 20 turns, each timing 1,000 of its checks one by one with
//! `Instant` (20,000 per side, all in one `block_on`; turns, so that drift
//! in the machine's speed is shared), and it prints a Markdown table: p50, p99 and mean latency, decisions per second
//! (checks over the wall time of the timed loop), and round trips per
//! decision (ours from `stats().round_trips`, the anchors counted as they
//! send), and where the time goes: the CPU time per decision of the server
//! (`INFO cpu`, read before and after the loop) and of this process's one
//! thread (Linux's `/proc/thread-self/schedstat`; `n/a` elsewhere), the
//! rest of a latency being the two waiting for each other and for the
//! machine. Every outcome is checked: an admit scenario that denies, an
//! over-limit one that admits, or a check that reaches no decision stops
//! the run.
//!
//! Then it checks the issue's targets on the p50s: ours at most 1.0× the
//! pipelined fixed window on an admitted call, and an over-limit key
//! answered from the deny cache at least 20× faster (0.05×) than by a round
//! trip (ours without the deny cache). Exits with 1 when one is missed, as
//! the scenario examples `cargo xtask bench` runs do; timings on a busy
//! machine are noisy, so a miss is a report, not a failure.

#[path = "../tests/common/fixed_window.rs"]
mod fixed_window;
#[path = "../tests/common/scenario.rs"]
mod scenario;
#[path = "../tests/common/server.rs"]
mod server;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use acqrel_ratelimit_redis::RedisRateLimiter;
use fixed_window::FixedWindow;
use redis::aio::MultiplexedConnection;
use scenario::{
    ADMIT_ANCHORS, OURS, OURS_DENY_CACHE, OURS_NO_DENY_CACHE, OVER_LIMIT_ANCHOR, Outcome, Side,
};
use server::RedisServer;

/// Checks before timing, per side.
const WARM_UP: usize = 2_000;
/// Checks timed, per side.
const CALLS: usize = 20_000;
/// Turns the sides take, each timing `CALLS / ROUNDS` checks, so that a
/// machine whose speed drifts (other jobs, where the scheduler puts the
/// client and the server) slows every side alike.
const ROUNDS: usize = 20;

/// The admit target: ours / `incr_expire::pipeline`, p50.
const ADMIT_MAX: f64 = 1.0;
/// The over-limit target: deny cache / no deny cache, p50.
const OVER_LIMIT_MAX: f64 = 0.05;

/// One side's timed checks.
struct Row {
    group: &'static str,
    side: String,
    /// Each check's latency, sorted.
    latencies: Vec<Duration>,
    /// The timed loop's wall time.
    total: Duration,
    /// Round trips made by the timed checks.
    round_trips: u64,
    /// CPU time the server spent over the timed loop.
    server_cpu: Duration,
    /// CPU time this process's thread spent over the timed loop, where
    /// Linux's `/proc/thread-self/schedstat` says.
    client_cpu: Option<Duration>,
}

impl Row {
    fn p(&self, percent: usize) -> Duration {
        let rank = (self.latencies.len() * percent).div_ceil(100).max(1);
        self.latencies[rank - 1]
    }

    fn mean(&self) -> Duration {
        self.latencies.iter().sum::<Duration>() / u32::try_from(CALLS).unwrap_or(u32::MAX)
    }

    fn decisions_per_sec(&self) -> f64 {
        CALLS as f64 / self.total.as_secs_f64()
    }

    fn round_trips_per_decision(&self) -> f64 {
        self.round_trips as f64 / CALLS as f64
    }

    fn per_decision(&self, total: Duration) -> Duration {
        total / u32::try_from(CALLS).unwrap_or(u32::MAX)
    }
}

/// The server's CPU time so far (`INFO cpu`: user and system, µs).
async fn server_cpu(con: &mut MultiplexedConnection) -> Duration {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(con)
        .await
        .expect("INFO cpu");
    let seconds: f64 = info
        .lines()
        .filter_map(|line| {
            let value = line
                .strip_prefix("used_cpu_user:")
                .or_else(|| line.strip_prefix("used_cpu_sys:"))?;
            value.trim().parse::<f64>().ok()
        })
        .sum();
    Duration::from_secs_f64(seconds)
}

/// This thread's CPU time so far, from Linux's scheduler statistics
/// (`None` elsewhere). The runtime is current-thread, so it is the time
/// of the checks and of the connections' tasks together.
fn client_cpu() -> Option<Duration> {
    // The kernel brings a running thread's total up to date when it
    // schedules; without this, a short loop that never blocked reads as
    // costing nothing.
    std::thread::yield_now();
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Either side, so that all of them can take turns.
// Seven of them, built once and never moved while measured; boxing ours
// would add a pointer chase to one side's checks only.
#[allow(clippy::large_enum_variant)]
enum Limiter {
    Ours(RedisRateLimiter),
    Anchor(FixedWindow),
}

impl Side for Limiter {
    async fn admitted(&self) -> bool {
        match self {
            Limiter::Ours(l) => l.admitted().await,
            Limiter::Anchor(l) => l.admitted().await,
        }
    }

    fn round_trips(&self) -> u64 {
        match self {
            Limiter::Ours(l) => l.round_trips(),
            Limiter::Anchor(l) => Side::round_trips(l),
        }
    }
}

/// One side and what has been measured of it so far.
struct Measuring {
    row: Row,
    limiter: Limiter,
    outcome: Outcome,
}

/// Times [`CALLS`] / [`ROUNDS`] checks of `m`, adding them to its row;
/// `info` is a connection of its own to the same server.
async fn round(info: &mut MultiplexedConnection, m: &mut Measuring) {
    let before = m.limiter.round_trips();
    let server_before = server_cpu(info).await;
    let client_before = client_cpu();
    let start = Instant::now();
    for _ in 0..CALLS / ROUNDS {
        let sent = Instant::now();
        let admitted = m.limiter.admitted().await;
        m.row.latencies.push(sent.elapsed());
        m.outcome.expect(admitted);
    }
    m.row.total += start.elapsed();
    if let (Some(before), Some(after), Some(sum)) =
        (client_before, client_cpu(), &mut m.row.client_cpu)
    {
        *sum += after.saturating_sub(before);
    } else {
        m.row.client_cpu = None;
    }
    m.row.server_cpu += server_cpu(info).await.saturating_sub(server_before);
    m.row.round_trips += m.limiter.round_trips() - before;
}

/// Every side of both scenarios, in the bench's order, their key state
/// set up as the bench sets it.
async fn sides(server: &RedisServer) -> Vec<Measuring> {
    const ADMIT: &str = "ratelimit_redis/admit";
    const OVER_LIMIT: &str = "ratelimit_redis/over_limit";
    let url = server.url();
    let mut sides = Vec::new();
    let mut add = |group, id: &str, limiter, outcome| {
        sides.push(Measuring {
            row: Row {
                group,
                side: id.to_owned(),
                latencies: Vec::with_capacity(CALLS),
                total: Duration::ZERO,
                round_trips: 0,
                server_cpu: Duration::ZERO,
                client_cpu: Some(Duration::ZERO),
            },
            limiter,
            outcome,
        });
    };

    let outcome = Outcome::Admit;
    let ours = scenario::ours(&url, "admit:ours", outcome, true);
    add(ADMIT, OURS, Limiter::Ours(ours), outcome);
    for (id, form) in ADMIT_ANCHORS {
        let anchor = scenario::anchor(server.client(), &format!("admit:{id}"), outcome, form).await;
        add(ADMIT, id, Limiter::Anchor(anchor), outcome);
    }

    let outcome = Outcome::OverLimit;
    let cached = scenario::ours(&url, "over_limit:deny_cache", outcome, true);
    spend(&cached).await;
    add(OVER_LIMIT, OURS_DENY_CACHE, Limiter::Ours(cached), outcome);
    let uncached = scenario::ours(&url, "over_limit:no_deny_cache", outcome, false);
    spend(&uncached).await;
    add(
        OVER_LIMIT,
        OURS_NO_DENY_CACHE,
        Limiter::Ours(uncached),
        outcome,
    );
    let (id, form) = OVER_LIMIT_ANCHOR;
    let anchor =
        scenario::anchor(server.client(), &format!("over_limit:{id}"), outcome, form).await;
    spend(&anchor).await;
    add(OVER_LIMIT, id, Limiter::Anchor(anchor), outcome);
    sides
}

/// Takes the one cell of an over-limit side's key.
async fn spend<S: Side>(side: &S) {
    assert!(side.admitted().await, "a fresh key was denied");
}

/// Warms every side up, then measures them in turns.
async fn measure(server: &RedisServer) -> Vec<Row> {
    let info = &mut server
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("a connection to a loopback server");
    let mut sides = sides(server).await;
    for side in &sides {
        for _ in 0..WARM_UP {
            side.outcome.expect(side.limiter.admitted().await);
        }
    }
    for _ in 0..ROUNDS {
        for side in &mut sides {
            round(info, side).await;
        }
    }
    sides
        .into_iter()
        .map(|mut side| {
            side.row.latencies.sort_unstable();
            side.row
        })
        .collect()
}

/// The Markdown table of `rows`.
fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| group | side | p50 | p99 | mean | decisions/s | round trips/decision \
         | Redis CPU/decision | client CPU/decision |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | {} | {:.0} | {:.2} | {} | {} |",
            row.group,
            row.side,
            micros(row.p(50)),
            micros(row.p(99)),
            micros(row.mean()),
            row.decisions_per_sec(),
            row.round_trips_per_decision(),
            micros(row.per_decision(row.server_cpu)),
            row.client_cpu
                .map_or_else(|| "n/a".to_owned(), |cpu| micros(row.per_decision(cpu))),
        );
    }
    out
}

/// A latency in µs, to the nanosecond.
fn micros(d: Duration) -> String {
    format!("{:.3} µs", d.as_secs_f64() * 1e6)
}

/// Prints one target line; `true` when it is met.
fn target(rows: &[Row], group: &str, ours: &str, anchor: &str, max: f64) -> bool {
    let p50 = |side: &str| {
        rows.iter()
            .find(|r| r.group == group && r.side == side)
            .map(|r| r.p(50).as_secs_f64())
    };
    let (Some(o), Some(a)) = (p50(ours), p50(anchor)) else {
        println!("target `{group}`: `{ours}` vs `{anchor}`: not measured");
        return false;
    };
    let ratio = o / a;
    let met = ratio <= max;
    println!(
        "target `{group}`: `{ours}` vs `{anchor}`, p50 ratio {ratio:.3} (max {max}): {}",
        if met { "PASS" } else { "FAIL" }
    );
    met
}

fn main() -> ExitCode {
    let server = RedisServer::start();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("latency: no runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let rows = rt.block_on(measure(&server));
    println!(
        "{CALLS} timed checks per side ({ROUNDS} turns of {}) after {WARM_UP} to warm up; \
         one redis-server on loopback; one current-thread tokio runtime\n",
        CALLS / ROUNDS
    );
    println!("{}", table(&rows));
    let admit = target(
        &rows,
        "ratelimit_redis/admit",
        OURS,
        "incr_expire::pipeline",
        ADMIT_MAX,
    );
    let over_limit = target(
        &rows,
        "ratelimit_redis/over_limit",
        OURS_DENY_CACHE,
        OURS_NO_DENY_CACHE,
        OVER_LIMIT_MAX,
    );
    if admit && over_limit {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
