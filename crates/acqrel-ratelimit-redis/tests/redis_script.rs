//! The script's arithmetic at its edges, run by `EVAL` on a real server
//! with states written by hand: the carry and the borrow between the
//! halves of a time, the equality at the tolerance, and times near 2⁵³
//! seconds, where a double stops holding every integer.

mod common;

use acqrel_ratelimit_redis::SCRIPT;
use common::server::RedisServer;

/// Runs the script once on `key` with `op` and the cost and tolerance as
/// `(s, ns)` pairs, returning its five integers.
async fn eval(
    con: &mut redis::aio::MultiplexedConnection,
    key: &str,
    op: &str,
    cost: (u64, u64),
    tau: (u64, u64),
) -> Vec<i64> {
    redis::cmd("EVAL")
        .arg(SCRIPT)
        .arg(1)
        .arg(key)
        .arg(op)
        .arg(cost.0)
        .arg(cost.1)
        .arg(tau.0)
        .arg(tau.1)
        .query_async(con)
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

async fn connect(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Redis's clock, in whole seconds.
fn now_s(server: &RedisServer) -> u64 {
    // TIME's first element, read from the raw reply.
    let client = server.client();
    let mut con = client.get_connection().unwrap();
    let (s, _): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    s
}

#[tokio::test]
async fn redis_script_carries_nanoseconds_into_seconds() {
    let server = RedisServer::start();
    let mut con = connect(&server).await;
    let tat = now_s(&server) + 1000;
    let state = format!("{tat}:500000000");
    assert_eq!(server.command(&["SET", "carry", &state]), "+OK");
    let reply = eval(&mut con, "carry", "c", (0, 500_000_000), (1 << 40, 0)).await;
    assert_eq!(reply[0], 1);
    assert_eq!(&reply[3..], &[tat as i64 + 1, 0], "TAT {tat}.5 s + 0.5 s");
    let stored = format!("${}", format!("{}:0", tat + 1).len());
    assert_eq!(server.command(&["GET", "carry"]), stored);
}

#[tokio::test]
async fn redis_script_borrows_a_second_for_the_nanoseconds() {
    let server = RedisServer::start();
    let mut con = connect(&server).await;
    let tat = now_s(&server) + 1000;
    let state = format!("{tat}:0");
    assert_eq!(server.command(&["SET", "borrow", &state]), "+OK");
    // A refund of 0.25 s from a whole-second TAT.
    let reply = eval(&mut con, "borrow", "r", (0, 250_000_000), (1 << 40, 0)).await;
    assert_eq!(&reply[3..], &[tat as i64 - 1, 750_000_000]);
    // Equal nanoseconds: nothing to borrow, the pair stays normal.
    let reply = eval(&mut con, "borrow", "r", (0, 750_000_000), (1 << 40, 0)).await;
    assert_eq!(&reply[3..], &[tat as i64 - 1, 0]);
    let reply = eval(&mut con, "borrow", "c", (0, 750_000_000), (1 << 40, 0)).await;
    assert_eq!(&reply[3..], &[tat as i64 - 1, 750_000_000]);
    // A denial whose earliest time borrows: TAT + cost - tau with tau's
    // nanoseconds above the sum's.
    let reply = eval(&mut con, "borrow", "c", (0, 1), (1, 999_999_999)).await;
    assert_eq!(reply[0], 0);
    // (tat - 1 s + 0.75 s + 1 ns) - (1 s + 0.999999999 s)
    assert_eq!(&reply[3..], &[tat as i64 - 3, 750_000_002]);
}

#[tokio::test]
async fn redis_script_admits_at_exactly_the_tolerance_and_denies_one_nanosecond_past() {
    let server = RedisServer::start();
    let mut con = connect(&server).await;
    // A fresh key: TAT = now. Cost = tau: admitted, TAT = now + tau.
    let reply = eval(&mut con, "edge", "c", (3, 7), (3, 7)).await;
    assert_eq!(reply[0], 1);
    let (now, tat) = ((reply[1], reply[2]), (reply[3], reply[4]));
    let ns = now.1 + 7;
    assert_eq!(tat, (now.0 + 3 + ns / 1_000_000_000, ns % 1_000_000_000));
    // One nanosecond over the tolerance on a fresh key: denied.
    let reply = eval(&mut con, "edge-over", "c", (3, 8), (3, 7)).await;
    assert_eq!(reply[0], 0);
    // Earliest = now + 1 ns.
    let ns = reply[2] + 1;
    assert_eq!(
        &reply[3..],
        &[reply[1] + ns / 1_000_000_000, ns % 1_000_000_000]
    );
}

#[tokio::test]
async fn redis_script_is_exact_near_two_to_the_fifty_third_seconds() {
    let server = RedisServer::start();
    let mut con = connect(&server).await;
    // The largest tolerance the limiters send (2^51 s) on a TAT already
    // 2^51 s ahead: sums reach 2^52 s plus now, each second still exact.
    let tau = (1u64 << 51, 999_999_999);
    let first = eval(&mut con, "far", "c", tau, tau).await;
    assert_eq!(first[0], 1);
    let tat = (first[3], first[4]);
    let ns = first[2] + 999_999_999;
    assert_eq!(
        tat,
        (
            first[1] + (1 << 51) + ns / 1_000_000_000,
            ns % 1_000_000_000
        )
    );
    // The whole burst again at once: denied until the TAT itself.
    let denied = eval(&mut con, "far", "c", tau, tau).await;
    assert_eq!(denied[0], 0);
    assert_eq!((denied[3], denied[4]), tat, "earliest = TAT + tau - tau");
    // The stored text is the exact integer, not an exponent form.
    let stored = format!("{}:{}", tat.0, tat.1);
    assert_eq!(
        server.command(&["GET", "far"]),
        format!("${}", stored.len())
    );
    // A refund of the whole tolerance empties the key.
    eval(&mut con, "far", "r", tau, tau).await;
    assert_eq!(server.command(&["EXISTS", "far"]), ":0");
    // A TTL this long (2^51 s) is not set: Redis's milliseconds would
    // overflow; the key stays until refunded or full.
    eval(&mut con, "far", "c", tau, tau).await;
    assert_eq!(server.command(&["PTTL", "far"]), ":-1");
}
