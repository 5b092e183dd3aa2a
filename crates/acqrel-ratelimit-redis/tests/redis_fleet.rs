//! Fleet exactness: four OS processes, each with its own connection,
//! hammer one key for a fixed window, and together they admit exactly what
//! GCRA allows for that window once; four in-process limiters, one per
//! process, admit it four times.
//!
//! The processes are this test binary run again (`--exact` this test),
//! told by [`CHILD`] what to do; each prints one report line for the
//! parent to sum.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::num::NonZeroU32;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acqrel_ratelimit::{Quota, RateLimiter};
use acqrel_ratelimit_redis::{FailurePolicy, KeyedRedisRateLimiter, RedisNegative, Source};
use common::PATIENCE;
use common::server::RedisServer;

/// The environment variable that makes this test a child:
/// `redis <url> <key> <window ms>` or `local - - <window ms>`.
const CHILD: &str = "ACQREL_FLEET_CHILD";

/// This test's name, which the children run.
const TEST: &str =
    "redis_fleet_of_four_processes_admits_what_gcra_allows_once_and_in_process_limiters_four_times";

/// What marks the children's lines (the test harness prints its own on
/// the same stdout).
const TAG: &str = "acqrel-fleet";

const PROCESSES: u64 = 4;

/// 100 cells a second (one every 10 ms), a burst of 20 (200 ms of
/// tolerance): a cell is far longer than a loopback round trip.
const RATE: u32 = 100;
const BURST: u64 = 20;
const INTERVAL_NS: u128 = 10_000_000;

/// How long each child hammers, on its own clock.
const WINDOW: Duration = Duration::from_millis(1500);

fn quota() -> Quota {
    Quota::per_second(NonZeroU32::new(RATE).unwrap())
        .allow_burst(NonZeroU32::new(u32::try_from(BURST).unwrap()).unwrap())
}

/// One child's report.
#[derive(Debug, Default)]
struct Report {
    admitted: u64,
    /// Redis's clock at the child's first and last decision by Redis, in
    /// ns since the Unix epoch (the Redis children only).
    first_ns: u128,
    last_ns: u128,
}

/// The bounds, on Redis's clock, for the fleet.
///
/// Upper: GCRA admits at most `burst + floor(elapsed / interval)` cells
/// between its first decision and its last, whatever the interleaving:
/// the first admission sets the theoretical arrival time (TAT) to
/// `t0 + T`, each admission adds `T` (or more, when the bucket overflowed),
/// and an admission at `t` needs the new TAT within `t + tau`, `tau =
/// burst × T`. So `N × T <= t_end - t0 + tau`.
///
/// Lower: every child stops only on a denial by Redis itself, so the last
/// script run of all is a denial: at that moment `TAT > t_end + tau - T`.
/// If no admission was lost to an overflowing bucket, `TAT = t0 + N × T`,
/// which gives `N > burst - 1 + (t_end - t0) / T`: exactly the upper bound.
/// An overflow loses credit only if the key goes unasked for longer than
/// the bucket's headroom: after a denial that is `tau - T = 190 ms` (four
/// processes, each asking again a timer tick after the time Redis names,
/// would all have to stall that long), but right after the very first
/// admission it is only `T = 10 ms`, the start edge. The end edge is
/// closed by stopping on a denial; one cell is allowed for each edge all
/// the same, as a stall of up to `2T` at the start (all four processes,
/// or the server, off the CPU) costs one cell there.
#[test]
fn redis_fleet_of_four_processes_admits_what_gcra_allows_once_and_in_process_limiters_four_times() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let started = Instant::now();
    let server = RedisServer::start();

    let reports = fleet(&format!(
        "redis {} fleet {}",
        server.url(),
        WINDOW.as_millis()
    ));
    let admitted: u64 = reports.iter().map(|r| r.admitted).sum();
    let t0 = reports.iter().map(|r| r.first_ns).min().unwrap();
    let t_end = reports.iter().map(|r| r.last_ns).max().unwrap();
    let cells = u64::try_from((t_end - t0) / INTERVAL_NS).unwrap();
    let upper = BURST + cells;
    let lower = upper - 2;
    eprintln!(
        "Redis: {admitted} admitted ({:?}) over {} ms of Redis's clock; GCRA allows {upper}",
        reports.iter().map(|r| r.admitted).collect::<Vec<_>>(),
        (t_end - t0) / 1_000_000,
    );
    assert!(
        (lower..=upper).contains(&admitted),
        "the fleet admitted {admitted}; GCRA allows {upper} over {} ns (at least {lower})",
        t_end - t0
    );

    // The same fleet with a limiter in each process: each admits the
    // quota on its own. Each child's last check is a denial at or after
    // its window's end, so each admits at least `burst + window / T - 1`
    // (the argument above, with the window measured from just before its
    // first check).
    let local = fleet(&format!("local - - {}", WINDOW.as_millis()));
    let local_admitted: u64 = local.iter().map(|r| r.admitted).sum();
    let one = BURST + u64::try_from(WINDOW.as_nanos() / INTERVAL_NS).unwrap();
    eprintln!(
        "in-process: {local_admitted} admitted ({:?}); one limiter allows {one}: {:.2}x Redis's",
        local.iter().map(|r| r.admitted).collect::<Vec<_>>(),
        local_admitted as f64 / admitted as f64,
    );
    assert!(
        local_admitted >= PROCESSES * one - PROCESSES,
        "{local_admitted} admitted by {PROCESSES} in-process limiters; expected about {}",
        PROCESSES * one
    );
    eprintln!("{:?} in all", started.elapsed());
}

// ===== the parent =====

/// The children of one run, killed if the parent gives up on them.
struct Fleet(Vec<Child>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a child's output reader passes on: a line of stdout, or its end
/// with everything the child wrote on stderr.
enum Output {
    Line(String),
    Exited(String),
}

/// Runs [`PROCESSES`] children with `spec`, starts them together once each
/// is ready, and returns their reports.
fn fleet(spec: &str) -> Vec<Report> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut fleet = Fleet(Vec::new());
    let (tx, rx) = mpsc::channel();
    let mut stdins: Vec<ChildStdin> = Vec::new();
    for i in 0..usize::try_from(PROCESSES).unwrap() {
        let mut child = Command::new(&exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
            .env(CHILD, spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the test binary again");
        stdins.push(child.stdin.take().unwrap());
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((i, Output::Line(line))).is_err() {
                    return;
                }
            }
            let mut errors = String::new();
            let _ = stderr.read_to_string(&mut errors);
            let _ = tx.send((i, Output::Exited(errors)));
        });
        fleet.0.push(child);
    }
    drop(tx);
    let deadline = Instant::now() + PATIENCE;
    // Each child's lines in turn: first `ready`, then its report; its
    // exit after the report is waited for below.
    let mut said = vec![0; fleet.0.len()];
    let mut next = |what: &str| -> (usize, String) {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                // The harness's `test <name> ... ` may open the line.
                Ok((i, Output::Line(line))) => match line.split_once(TAG) {
                    Some((_, rest)) => {
                        said[i] += 1;
                        return (i, rest.trim().to_owned());
                    }
                    None => continue,
                },
                Ok((i, Output::Exited(_))) if said[i] == 2 => continue,
                Ok((i, Output::Exited(errors))) => {
                    panic!("child {i} exited before its {what}:\n{errors}")
                }
                Err(_) => panic!("no {what} from the children within {PATIENCE:?}"),
            }
        }
    };
    for _ in 0..PROCESSES {
        let (i, line) = next("ready");
        assert_eq!(line, "ready", "child {i}");
    }
    for stdin in &mut stdins {
        stdin.write_all(b"go\n").expect("tell a child to go");
    }
    let mut reports = Vec::new();
    for _ in 0..PROCESSES {
        let (i, line) = next("report");
        reports.push(parse(&line).unwrap_or_else(|| panic!("child {i} reported {line:?}")));
    }
    for (i, child) in fleet.0.iter_mut().enumerate() {
        let status = wait(child, deadline);
        assert!(status.success(), "child {i} exited with {status}");
    }
    reports
}

/// Waits for `child` to exit, until `deadline`.
fn wait(child: &mut Child, deadline: Instant) -> std::process::ExitStatus {
    loop {
        if let Some(status) = child.try_wait().expect("a child's status") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "a child did not exit within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `admitted=<n> [first=<ns> last=<ns>]`.
fn parse(line: &str) -> Option<Report> {
    let mut report = Report::default();
    for field in line.split_whitespace() {
        let (name, value) = field.split_once('=')?;
        match name {
            "admitted" => report.admitted = value.parse().ok()?,
            "first" => report.first_ns = value.parse().ok()?,
            "last" => report.last_ns = value.parse().ok()?,
            _ => return None,
        }
    }
    Some(report)
}

// ===== the children =====

fn child(spec: &str) {
    let words: Vec<&str> = spec.split(' ').collect();
    let &[mode, url, key, window_ms] = &words[..] else {
        panic!("{CHILD}={spec:?}");
    };
    let window = Duration::from_millis(window_ms.parse().expect("a window in ms"));
    let report = match mode {
        "redis" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(redis_child(url, key, window)),
        "local" => local_child(window),
        _ => panic!("{CHILD}={spec:?}"),
    };
    println!("{TAG} {report}");
}

/// Says it is ready and blocks until the parent says go.
fn ready_then_wait() {
    println!("{TAG} ready");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .expect("the parent's go");
    assert_eq!(line.trim(), "go", "the parent is gone");
}

/// Hammers `key` on the server at `url` for `window`, then until Redis
/// denies; a denial is waited out for the time it names (as a client
/// would, and so that four processes do not take the CPU from Redis).
async fn redis_child(url: &str, key: &str, window: Duration) -> String {
    // No call may time out: a call that timed out may still have taken a
    // cell, which would make the count inexact.
    let limiter: KeyedRedisRateLimiter<String> =
        KeyedRedisRateLimiter::builder(url, "", quota(), FailurePolicy::FailClosed)
            .timeout(PATIENCE)
            .build()
            .unwrap();
    // Connected, and the script loaded, before the window starts.
    let warm = format!("{key}:warm:{}", std::process::id());
    limiter.check(warm.as_str()).await.expect("Redis answers");
    tokio::task::spawn_blocking(ready_then_wait).await.unwrap();

    let deadline = Instant::now() + window;
    let (mut admitted, mut first, mut last) = (0u64, None, None);
    loop {
        let past = Instant::now() >= deadline;
        let decision = limiter.decide(key, 1).await;
        let source = decision.source();
        if let Some(now) = decision.redis_time() {
            first.get_or_insert(now);
            last = Some(now);
        }
        match decision.into_result() {
            Ok(()) => {
                assert_eq!(source, Source::Redis);
                admitted += 1;
            }
            Err(RedisNegative::NotUntil(denied)) => {
                if past && source == Source::Redis {
                    break;
                }
                tokio::time::sleep(denied.wait_time()).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (first, last) = (first.unwrap(), last.unwrap());
    format!(
        "admitted={admitted} first={} last={}",
        first.as_nanos(),
        last.as_nanos()
    )
}

/// The same with an in-process limiter: hammers it for `window` from just
/// before its first check, then until it denies.
fn local_child(window: Duration) -> String {
    let limiter = RateLimiter::new(quota());
    ready_then_wait();
    let deadline = Instant::now() + window;
    let mut admitted = 0u64;
    loop {
        let past = Instant::now() >= deadline;
        match limiter.check() {
            Ok(()) => admitted += 1,
            Err(_) if past => break,
            Err(denied) => std::thread::sleep(denied.wait_time()),
        }
    }
    format!("admitted={admitted}")
}
