//! The limiter people write by hand over Redis, the anchor the benches
//! (`benches/benches/ratelimit_redis.rs`) and the `latency` example measure
//! this crate against: a fixed window, counted with `INCR` on one key that
//! `EXPIRE` gives the window's lifetime. It admits while the count is at
//! most the limit (so up to twice the limit across a window's edge, and
//! nothing is given back), and it decides for real: every check compares
//! the count Redis returned with the limit.
//!
//! Three forms of it, the [`Form`]s, differing only in how the two
//! commands travel. Each check counts the round trips it made, so a
//! measurement can report round trips per decision by construction.

#![allow(dead_code, unreachable_pub)]

use std::cell::Cell;

use redis::RedisResult;
use redis::aio::ConnectionManager;

/// How `INCR` and `EXPIRE` are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `INCR`, then, once its reply is in, `EXPIRE key window NX` on every
    /// call: two round trips per decision. (`NX`, Redis 7's, sets the
    /// lifetime only when the key has none, so traffic does not keep
    /// pushing the window's end back.)
    TwoRoundTrips,
    /// `INCR`, then `EXPIRE key window` only when `INCR` returned 1 (the
    /// window's first call): one round trip per decision except the first
    /// of each window. The shortest form, and the one that leaves a key
    /// with no lifetime (a window that never ends) when the client stops
    /// between the two commands.
    ExpireWhenFirst,
    /// `INCR` and `EXPIRE key window NX` in one pipeline: one round trip
    /// per decision, both commands sent every time.
    Pipeline,
}

/// A fixed-window limiter on one key: `limit` calls per `window_secs`.
#[derive(Debug)]
pub struct FixedWindow {
    con: ConnectionManager,
    key: String,
    limit: u64,
    window_secs: u64,
    form: Form,
    /// Round trips made so far (this limiter is used from one task).
    round_trips: Cell<u64>,
}

impl FixedWindow {
    /// A limiter on `key` sending its commands over `con` in the form
    /// `form`.
    pub fn new(
        con: ConnectionManager,
        key: &str,
        limit: u64,
        window_secs: u64,
        form: Form,
    ) -> Self {
        FixedWindow {
            con,
            key: key.to_owned(),
            limit,
            window_secs,
            form,
            round_trips: Cell::new(0),
        }
    }

    /// One decision: whether this call is within the window's limit.
    ///
    /// # Errors
    ///
    /// What the connection returned, when a command failed.
    pub async fn check(&self) -> RedisResult<bool> {
        let mut con = self.con.clone();
        let count: u64 = match self.form {
            Form::TwoRoundTrips => {
                let count = redis::cmd("INCR")
                    .arg(&self.key)
                    .query_async(&mut con)
                    .await?;
                self.expire(true).exec_async(&mut con).await?;
                self.bump(2);
                count
            }
            Form::ExpireWhenFirst => {
                let count = redis::cmd("INCR")
                    .arg(&self.key)
                    .query_async(&mut con)
                    .await?;
                self.bump(1);
                if count == 1 {
                    self.expire(false).exec_async(&mut con).await?;
                    self.bump(1);
                }
                count
            }
            Form::Pipeline => {
                let (count,): (u64,) = redis::pipe()
                    .cmd("INCR")
                    .arg(&self.key)
                    .add_command(self.expire(true))
                    .ignore()
                    .query_async(&mut con)
                    .await?;
                self.bump(1);
                count
            }
        };
        Ok(count <= self.limit)
    }

    /// Round trips made by all checks so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.get()
    }

    /// `EXPIRE key window`, with `NX` when `nx`.
    fn expire(&self, nx: bool) -> redis::Cmd {
        let mut cmd = redis::cmd("EXPIRE");
        cmd.arg(&self.key).arg(self.window_secs);
        if nx {
            cmd.arg("NX");
        }
        cmd
    }

    fn bump(&self, round_trips: u64) {
        self.round_trips.set(self.round_trips.get() + round_trips);
    }
}
