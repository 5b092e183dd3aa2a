//! One member of a fleet: hammers one Redis key for a few seconds with a
//! [`RedisRateLimiter`] and prints what it admitted and denied, and who
//! decided. Run several at once against one Redis, and their admissions
//! add up to one quota, not one each.
//!
//! ```sh
//! redis-server --port 6390 --save '' --appendonly no --daemonize yes
//! cargo build --release -p acqrel-ratelimit-redis --example fleet
//! for i in 1 2 3 4; do
//!     cargo run --release -p acqrel-ratelimit-redis --example fleet -- \
//!         redis://127.0.0.1:6390/ acqrel:fleet 100 20 5 &
//! done; wait
//! redis-cli -p 6390 shutdown nosave
//! ```
//!
//! (The build first, so that the four runs start together instead of
//! one after another as each waits for the others' build lock.)
//!
//! Arguments, all optional, in this order: the server's URL
//! (`redis://127.0.0.1:6379/`), the key (`acqrel:fleet`), the rate in cells
//! per second (100), the burst (20) and the seconds to run (5). Each
//! process prints its counts and the span of Redis's clock it saw; the
//! fleet together admits at most `burst + rate × span` over the span from
//! the earliest first decision to the latest last one.
//!
//! A denial is asked again at once (as a client that ignores the wait
//! would), so most denials come from the deny cache, without a round trip.
//! Under `FailClosed`, a Redis that does not answer within 100 ms is
//! counted as unavailable.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use acqrel_ratelimit::Quota;
use acqrel_ratelimit_redis::{FailurePolicy, RedisNegative, RedisRateLimiter, Source};

const USAGE: &str = "\
usage: fleet [URL [KEY [RATE [BURST [SECONDS]]]]]

Hammers KEY on the Redis at URL for SECONDS with a limiter of RATE cells per
second and a burst of BURST, then prints what it admitted and denied.
  URL      default redis://127.0.0.1:6379/
  KEY      default acqrel:fleet
  RATE     cells per second, default 100
  BURST    default 20
  SECONDS  default 5";

/// What the arguments say.
struct Args {
    url: String,
    key: String,
    rate: NonZeroU32,
    burst: NonZeroU32,
    run: Duration,
}

fn parse(args: &[String]) -> Option<Args> {
    if args.len() > 5 {
        return None;
    }
    let arg = |i: usize, default: &str| args.get(i).map_or(default, String::as_str).to_owned();
    Some(Args {
        url: arg(0, "redis://127.0.0.1:6379/"),
        key: arg(1, "acqrel:fleet"),
        rate: arg(2, "100").parse().ok()?,
        burst: arg(3, "20").parse().ok()?,
        run: Duration::try_from_secs_f64(arg(4, "5").parse().ok()?).ok()?,
    })
}

/// Counts of one run.
#[derive(Default)]
struct Counts {
    admitted: BTreeMap<&'static str, u64>,
    denied: BTreeMap<&'static str, u64>,
    unavailable: u64,
    /// Redis's clock at the first and the last decision Redis made.
    span: Option<(Duration, Duration)>,
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Redis => "redis",
        Source::DenyCache => "deny-cache",
        Source::Client => "client",
        Source::FailClosed => "fail-closed",
        Source::FailOpen => "fail-open",
        Source::FailLocal => "fail-local",
        _ => "other",
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let Some(args) = parse(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let quota = Quota::per_second(args.rate).allow_burst(args.burst);
    let limiter =
        match RedisRateLimiter::builder(&args.url, &args.key, quota, FailurePolicy::FailClosed)
            .build()
        {
            Ok(limiter) => limiter,
            Err(e) => {
                eprintln!("fleet: {e}");
                return ExitCode::from(1);
            }
        };

    let mut counts = Counts::default();
    let start = Instant::now();
    while start.elapsed() < args.run {
        let decision = limiter.decide(1).await;
        let source = source_name(decision.source());
        if let Some(now) = decision.redis_time() {
            let first = counts.span.map_or(now, |(first, _)| first);
            counts.span = Some((first, now));
        }
        match decision.into_result() {
            Ok(()) => *counts.admitted.entry(source).or_default() += 1,
            Err(RedisNegative::NotUntil(_)) => *counts.denied.entry(source).or_default() += 1,
            Err(e) if e.is_unavailable() => counts.unavailable += 1,
            Err(e) => {
                eprintln!("fleet: {e}");
                return ExitCode::from(1);
            }
        }
    }
    report(&args, &counts, limiter.stats().round_trips, start.elapsed());
    ExitCode::SUCCESS
}

fn report(args: &Args, counts: &Counts, round_trips: u64, elapsed: Duration) {
    let total = |m: &BTreeMap<&str, u64>| m.values().sum::<u64>();
    let by_source = |m: &BTreeMap<&str, u64>| {
        if m.is_empty() {
            return String::new();
        }
        let sources: Vec<String> = m
            .iter()
            .map(|(source, n)| format!("{source} {n}"))
            .collect();
        format!(" ({})", sources.join(", "))
    };
    println!(
        "pid {}: {} admitted{}, {} denied{}, {} unavailable, {} round trips in {:.2} s",
        std::process::id(),
        total(&counts.admitted),
        by_source(&counts.admitted),
        total(&counts.denied),
        by_source(&counts.denied),
        counts.unavailable,
        round_trips,
        elapsed.as_secs_f64(),
    );
    if let Some((first, last)) = counts.span {
        let span = last - first;
        let alone = u128::from(args.burst.get())
            + span.as_nanos() * u128::from(args.rate.get()) / 1_000_000_000;
        println!(
            "pid {}: Redis's clock {:.6} to {:.6} s ({:.3} s): the fleet may admit {alone} over this span",
            std::process::id(),
            first.as_secs_f64(),
            last.as_secs_f64(),
            span.as_secs_f64(),
        );
    }
}
