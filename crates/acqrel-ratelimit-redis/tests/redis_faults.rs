//! The limiters when Redis fails: killed mid-run and restarted on the same
//! port (each failure policy), down when the limiter is built, and too slow
//! (`DEBUG SLEEP`). Every call is bounded by [`common::PATIENCE`], so a
//! hang fails the test instead of stalling it.

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use acqrel_ratelimit::Quota;
use acqrel_ratelimit_redis::{
    Decision, FailurePolicy, RedisNegative, RedisRateLimiter, Source, Stats, Unavailable,
};
use common::PATIENCE;
use common::server::{self, RedisServer};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// No cell refills during a test: the burst is all there is.
fn hourly(burst: u32) -> Quota {
    Quota::per_hour(nz(1)).allow_burst(nz(burst))
}

/// The call timeout of the kill and restart tests: far past a loopback
/// round trip, so that once Redis is back no call times out on a loaded
/// machine (which would make the counts below inexact); a refused
/// connection is reported at once, well within it.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Calls made while the server is down.
const DOWN_CALLS: u32 = 20;

/// Calls checked after the first one Redis answers again.
const UP_CALLS: u32 = 20;

fn limiter(
    server: &RedisServer,
    key: &str,
    quota: Quota,
    policy: FailurePolicy,
) -> RedisRateLimiter {
    RedisRateLimiter::builder(&server.url(), key, quota, policy)
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

/// One check, failing the test if it does not return within `PATIENCE`
/// (the limiter's own timeout is far shorter: this only catches a hang).
async fn decide(limiter: &RedisRateLimiter) -> Decision {
    tokio::time::timeout(PATIENCE, limiter.decide(1))
        .await
        .unwrap_or_else(|_| panic!("a check hung past {PATIENCE:?}"))
}

/// Checks until Redis decides one, within `PATIENCE`: the reconnection
/// after a restart may take a few calls. Returns the calls that failed
/// first, each asserted to be `failed` (the policy's answer).
async fn until_redis_answers(limiter: &RedisRateLimiter, failed: impl Fn(&Decision)) -> u64 {
    let deadline = Instant::now() + PATIENCE;
    let mut failures = 0;
    loop {
        let decision = decide(limiter).await;
        if decision.source() == Source::Redis {
            decision.into_result().expect("a full bucket admits");
            return failures;
        }
        failed(&decision);
        failures += 1;
        assert!(
            Instant::now() < deadline,
            "Redis did not answer again within {PATIENCE:?} ({failures} calls failed)"
        );
        // A pause between attempts, only so that a reconnection that fails
        // fast is not retried in a busy loop; it plays no part in what is
        // asserted.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// After the first call Redis answered: every later one is Redis's.
async fn assert_back_on_redis(limiter: &RedisRateLimiter) {
    for i in 0..UP_CALLS {
        let decision = decide(limiter).await;
        assert_eq!(decision.source(), Source::Redis, "call {i}: {decision:?}");
        assert!(decision.redis_time().is_some());
    }
}

/// Restarts `server` and waits until `limiter` is back on Redis, every
/// failure on the way being `FailClosed`'s; asserts that every call made
/// while it was down (`DOWN_CALLS`) and on the way back counted as
/// unavailable, and returns the stats.
async fn restart_and_recover_closed(server: &mut RedisServer, limiter: &RedisRateLimiter) -> Stats {
    server.restart();
    let failures = until_redis_answers(limiter, refused).await;
    assert_back_on_redis(limiter).await;
    let stats = limiter.stats();
    assert_eq!(
        stats.unavailable,
        u64::from(DOWN_CALLS) + failures,
        "{stats:?}"
    );
    stats
}

/// Asserts `decision` is `FailClosed`'s refusal.
fn refused(decision: &Decision) {
    assert_eq!(decision.source(), Source::FailClosed, "{decision:?}");
    assert!(!decision.is_admitted());
}

/// Asserts `decision` is `FailOpen`'s admission.
fn admitted_open(decision: &Decision) {
    assert_eq!(decision.source(), Source::FailOpen, "{decision:?}");
    assert!(decision.is_admitted());
}

/// The script loaded once: the first call of a fresh limiter finds no
/// script on the server (`NOSCRIPT`) and sends it whole.
fn assert_loaded_once(stats: Stats) {
    assert_eq!(stats.script_loads, 1, "{stats:?}");
    assert_eq!(stats.unavailable, 0, "{stats:?}");
}

// ===== killed and restarted =====

#[tokio::test]
async fn redis_killed_fail_closed_errs_every_call_then_recovers_without_a_rebuild() {
    let mut server = RedisServer::start();
    let limiter = limiter(&server, "closed", hourly(1000), FailurePolicy::FailClosed);
    let up = decide(&limiter).await;
    assert_eq!(up.source(), Source::Redis);
    up.into_result().unwrap();
    assert_loaded_once(limiter.stats());

    server.kill();
    for _ in 0..DOWN_CALLS {
        let decision = decide(&limiter).await;
        refused(&decision);
        let e = decision.into_result().unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        assert!(matches!(e, RedisNegative::Unavailable(_)), "{e:?}");
    }
    let down = limiter.stats();
    assert_eq!(down.unavailable, u64::from(DOWN_CALLS), "{down:?}");
    assert_eq!((down.fail_open, down.fail_local), (0, 0), "{down:?}");

    let stats = restart_and_recover_closed(&mut server, &limiter).await;
    // The restarted server is empty: the script is loaded once more.
    assert_eq!(stats.script_loads, 2, "{stats:?}");
    assert_eq!(stats.redis, 1 + 1 + u64::from(UP_CALLS), "{stats:?}");
}

#[tokio::test]
async fn redis_killed_fail_open_admits_every_call_and_counts_it_then_recovers() {
    let mut server = RedisServer::start();
    // A burst of one: Redis would deny the calls below, so an admission
    // while it is down can only be `FailOpen`'s. Without the deny cache,
    // which would answer them first with Redis's last denial.
    let limiter =
        RedisRateLimiter::builder(&server.url(), "open", hourly(1), FailurePolicy::FailOpen)
            .timeout(TIMEOUT)
            .deny_cache(false)
            .build()
            .unwrap();
    limiter.check().await.unwrap();
    assert_loaded_once(limiter.stats());
    let denied = decide(&limiter).await;
    assert_eq!(denied.source(), Source::Redis);
    assert!(!denied.is_admitted());

    server.kill();
    for _ in 0..DOWN_CALLS {
        admitted_open(&decide(&limiter).await);
    }
    let down = limiter.stats();
    assert_eq!(down.unavailable, u64::from(DOWN_CALLS), "{down:?}");
    assert_eq!(down.fail_open, u64::from(DOWN_CALLS), "{down:?}");

    server.restart();
    // The restarted server holds no bucket: its first answer admits.
    let failures = until_redis_answers(&limiter, admitted_open).await;
    let stats = limiter.stats();
    assert_eq!(
        stats.unavailable,
        u64::from(DOWN_CALLS) + failures,
        "{stats:?}"
    );
    assert_eq!(
        stats.fail_open,
        u64::from(DOWN_CALLS) + failures,
        "{stats:?}"
    );
    assert_eq!(stats.script_loads, 2, "{stats:?}");
    // Back on Redis, the burst of one is spent again: denied by Redis.
    for _ in 0..UP_CALLS {
        let denied = decide(&limiter).await;
        assert_eq!(denied.source(), Source::Redis, "{denied:?}");
        assert!(denied.into_result().unwrap_err().not_until().is_some());
    }
    assert_eq!(limiter.stats().fail_open, stats.fail_open);
}

#[tokio::test]
async fn redis_killed_fail_local_admits_at_most_the_share_of_four_replicas() {
    let mut server = RedisServer::start();
    // 20 per second, a burst of 20; a replica's share is 5 per second
    // (one cell every 200 ms) with a burst of 5. A check takes a few
    // reconnection attempts while the server is down (tens of ms), so the
    // calls below ask for far more than the share.
    let quota = Quota::per_second(nz(20)).allow_burst(nz(20));
    let share_interval = Duration::from_millis(200);
    let share_burst = 5;
    let policy = FailurePolicy::FailLocal { replicas: nz(4) };
    let limiter = limiter(&server, "local", quota, policy);
    decide(&limiter).await.into_result().unwrap();

    server.kill();
    // Long enough for the share to refill a few cells.
    let hammer = Duration::from_millis(1000);
    let start = Instant::now();
    let (mut calls, mut admitted, mut denied) = (0u64, 0u64, 0u64);
    while start.elapsed() < hammer {
        let decision = decide(&limiter).await;
        assert_eq!(decision.source(), Source::FailLocal, "{decision:?}");
        calls += 1;
        match decision.into_result() {
            Ok(()) => admitted += 1,
            Err(RedisNegative::NotUntil(not_until)) => {
                denied += 1;
                assert!(not_until.wait_time() <= share_interval, "{not_until:?}");
            }
            Err(e) => panic!("FailLocal answered {e:?}"),
        }
    }
    // Every local decision was made between `start` and now, so the share
    // admits at most its burst plus a cell per 200 ms of that span: the
    // bound. And at least that less a cell per edge: the calls ask far more
    // often than the share refills, so no refill goes unused in between,
    // and the first and last local decisions are each one call (tens of
    // ms, well under 200 ms) from the span's ends.
    let elapsed = start.elapsed();
    let refilled = elapsed.as_nanos() / share_interval.as_nanos();
    let bound = share_burst + u64::try_from(refilled).unwrap();
    assert!(
        (bound - 2..=bound).contains(&admitted),
        "{admitted} admitted in {elapsed:?}: the share allows {} to {bound}",
        bound - 2
    );
    assert!(denied > 0, "{calls} calls, none denied");
    let down = limiter.stats();
    assert_eq!(down.unavailable, calls, "{down:?}");
    assert_eq!(down.fail_local, calls, "{down:?}");

    server.restart();
    let failures = until_redis_answers(&limiter, |d| {
        assert_eq!(d.source(), Source::FailLocal, "{d:?}");
    })
    .await;
    assert_back_on_redis(&limiter).await;
    let stats = limiter.stats();
    assert_eq!(stats.fail_local, calls + failures, "{stats:?}");
    assert_eq!(stats.unavailable, calls + failures, "{stats:?}");
    assert_eq!(stats.script_loads, 2, "{stats:?}");
}

#[tokio::test]
async fn redis_limiter_built_while_redis_is_down_works_once_it_starts() {
    let mut server = RedisServer::start();
    server.kill();
    // Building does not connect.
    let limiter = limiter(&server, "lazy", hourly(1000), FailurePolicy::FailClosed);
    for _ in 0..DOWN_CALLS {
        refused(&decide(&limiter).await);
    }
    assert_eq!(limiter.stats().unavailable, u64::from(DOWN_CALLS));

    let stats = restart_and_recover_closed(&mut server, &limiter).await;
    assert_eq!(stats.script_loads, 1, "{stats:?}");
}

/// Waits, within `PATIENCE`, until `counter` reaches `at_least`.
async fn until(counter: &AtomicU64, at_least: u64, what: &str) {
    tokio::time::timeout(PATIENCE, async {
        while counter.load(SeqCst) < at_least {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{what}: {} of {at_least} within {PATIENCE:?}",
            counter.load(SeqCst)
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_concurrent_checks_every_call_returns_and_all_recover() {
    const TASKS: usize = 4;
    let mut server = RedisServer::start();
    // More cells than the calls below take.
    let quota = hourly(1_000_000_000);
    let limiter = Arc::new(limiter(&server, "busy", quota, FailurePolicy::FailClosed));
    let (redis, refusals) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (limiter, redis, refusals, stop) = (
                limiter.clone(),
                redis.clone(),
                refusals.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(SeqCst) {
                    let decision = decide(&limiter).await;
                    match decision.source() {
                        Source::Redis => {
                            decision.into_result().expect("cells to spare");
                            redis.fetch_add(1, SeqCst);
                        }
                        _ => {
                            refused(&decision);
                            refusals.fetch_add(1, SeqCst);
                        }
                    }
                }
            })
        })
        .collect();

    // Killed while the checks are in flight: each returns, refused.
    until(&redis, 100, "checks answered before the kill").await;
    server.kill();
    until(&refusals, 100, "checks refused while down").await;
    let before_restart = redis.load(SeqCst);
    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    until(
        &redis,
        before_restart + 100,
        "checks answered after the restart",
    )
    .await;
    stop.store(true, SeqCst);
    for task in tasks {
        tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    }
    assert_back_on_redis(&limiter).await;
    let stats = limiter.stats();
    assert_eq!(stats.unavailable, refusals.load(SeqCst), "{stats:?}");
    assert_eq!(
        stats.redis,
        redis.load(SeqCst) + u64::from(UP_CALLS),
        "{stats:?}"
    );
    // Once at the start and once after the restart, by each check that
    // found the script missing before the first reload landed: up to one
    // per task each time.
    assert!(
        (2..=2 * TASKS as u64).contains(&stats.script_loads),
        "{stats:?}"
    );
    drop(server);
}

/// `Stats::round_trips` said "commands sent to Redis", yet a call made
/// while the server is down counts one too (it is counted before the
/// connection says whether it can send).
#[tokio::test]
async fn redis_round_trips_count_calls_made_while_the_server_is_down() {
    let mut server = RedisServer::start();
    let limiter = limiter(&server, "trips", hourly(1000), FailurePolicy::FailClosed);
    decide(&limiter).await.into_result().unwrap();
    // EVALSHA, NOSCRIPT, EVAL.
    assert_eq!(limiter.stats().round_trips, 2);
    server.kill();
    for _ in 0..DOWN_CALLS {
        refused(&decide(&limiter).await);
    }
    let stats = limiter.stats();
    assert_eq!(stats.round_trips, 2 + u64::from(DOWN_CALLS), "{stats:?}");
    assert_eq!(stats.unavailable, u64::from(DOWN_CALLS), "{stats:?}");
}

// ===== slow =====

#[tokio::test]
async fn redis_slow_server_times_out_as_configured_then_works_again() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(50);
    let limiter = RedisRateLimiter::builder(
        &server.url(),
        "slow",
        // Enough cells for every call made before the sleep begins.
        hourly(1_000_000),
        FailurePolicy::FailClosed,
    )
    .timeout(timeout)
    .build()
    .unwrap();
    // Connected, and the script loaded, before Redis is slowed down.
    let before = until_redis_answers(&limiter, refused).await;

    // `DEBUG SLEEP` blocks the whole server for half a second; `command`
    // returns when it is over.
    let sleeper = {
        let port = server.port();
        std::thread::spawn(move || server::command_on(port, &["DEBUG", "SLEEP", "0.5"]))
    };
    let mut timeouts = 0u64;
    while !sleeper.is_finished() {
        match decide(&limiter).await.into_result() {
            Ok(()) => {} // before the sleep began, or after it ended
            Err(RedisNegative::Unavailable(e)) if e.is_timeout() => {
                assert!(
                    matches!(e, Unavailable::Timeout(after) if after == timeout),
                    "{e:?}"
                );
                timeouts += 1;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(sleeper.join().unwrap(), "+OK");
    assert!(timeouts > 0, "no call met the sleeping server");
    // Redis answers again, on the same connection, within the same timeout.
    let after = until_redis_answers(&limiter, refused).await;
    let stats = limiter.stats();
    assert_eq!(stats.unavailable, before + timeouts + after, "{stats:?}");
    assert_eq!(stats.script_loads, 1, "{stats:?}");
}

// ===== a connection that goes silent =====

/// A TCP proxy in front of the server whose connections can be silenced:
/// a silenced connection stays open and swallows everything sent to it,
/// answering nothing, as a peer behind a partition or a moved address
/// does; connections made after the silencing pass traffic as usual.
struct SilencingProxy {
    port: u16,
    /// Connections accepted so far; those numbered below `silenced` are
    /// silent.
    silenced: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
}

impl SilencingProxy {
    fn start(upstream: u16) -> SilencingProxy {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let silenced = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (s, st, acc) = (silenced.clone(), stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            while !st.load(SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let number = acc.fetch_add(1, SeqCst);
                let server = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (s, st) = (s.clone(), st.clone());
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buf = [0u8; 4096];
                        while let Ok(n @ 1..) = from.read(&mut buf) {
                            if st.load(SeqCst) {
                                break;
                            }
                            if number >= s.load(SeqCst) && to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        SilencingProxy {
            port,
            silenced,
            stop,
            accepted,
        }
    }

    /// Silences every connection accepted so far.
    fn silence_existing(&self) {
        self.silenced.store(self.accepted.load(SeqCst), SeqCst);
    }
}

impl Drop for SilencingProxy {
    fn drop(&mut self) {
        // The acceptor stops within a poll; the pumps at their next read,
        // or when the server's end closes as the test's server is killed.
        self.stop.store(true, SeqCst);
    }
}

#[tokio::test]
async fn redis_connection_that_goes_silent_without_closing_is_replaced() {
    let server = RedisServer::start();
    let proxy = SilencingProxy::start(server.port());
    let timeout = Duration::from_millis(100);
    let limiter = RedisRateLimiter::builder(
        &format!("redis://127.0.0.1:{}/", proxy.port),
        "silent",
        hourly(1_000),
        FailurePolicy::FailClosed,
    )
    .timeout(timeout)
    .build()
    .unwrap();
    until_redis_answers(&limiter, refused).await;
    // The connection is now open and silent: no error, no reply, ever.
    // Without a replacement every later call would time out, until the
    // kernel gave up on the socket (minutes).
    proxy.silence_existing();
    let timeouts = AtomicU64::new(0);
    let failed = until_redis_answers(&limiter, |decision| {
        refused(decision);
        if let Err(RedisNegative::Unavailable(e)) = decision.as_result()
            && e.is_timeout()
        {
            timeouts.fetch_add(1, SeqCst);
        }
    })
    .await;
    // The silent connection's calls time out; the replacement comes after
    // three of them.
    assert!(
        timeouts.load(SeqCst) >= 3,
        "{timeouts:?} of {failed} failures timed out"
    );
    let stats = limiter.stats();
    assert!(stats.renewals >= 1, "{stats:?}");
    assert_back_on_redis(&limiter).await;
    drop(proxy);
}
