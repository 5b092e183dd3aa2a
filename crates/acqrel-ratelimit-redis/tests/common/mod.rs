//! What the Redis tests share: a real server ([`server::RedisServer`]).
//!
//! Beside it, `fixed_window.rs` (the hand-written `INCR` + `EXPIRE`
//! limiter) and `scenario.rs` (the sides and scenarios measured) belong to
//! the benches (`benches/benches/ratelimit_redis.rs`) and the `latency`
//! example, which include them by path along with `server.rs`.

#![allow(dead_code, unreachable_pub)]

pub mod server;

use std::time::Duration;

/// The bound on any one wait in these tests: far past what a loopback
/// round trip takes, so it only ends a test that would otherwise hang.
pub const PATIENCE: Duration = Duration::from_secs(10);
