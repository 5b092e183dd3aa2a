//! [`Connection`]: the client's connection to Redis, re-established by
//! redis-rs's `ConnectionManager` when it drops, and replaced whole when
//! calls keep failing in ways the manager does not notice.
//!
//! The manager reconnects when the socket reports an error. It does not
//! when replies simply stop coming (a peer that vanished without a reset:
//! a partition, a failover moving an address), which the kernel may take
//! many minutes to call an error, nor when its (re)connection attempt
//! failed with something other than an I/O error (a rejected password while
//! credentials rotate): it keeps returning that error. So after
//! [`RENEW_AFTER`] calls in a row that timed out or failed below the
//! server's own error replies (or with `READONLY`: a primary demoted by a
//! failover), a new manager replaces the old one, connecting afresh; calls
//! already in flight on the old one finish or fail on their own.
//!
//! # Orderings
//!
//! The manager is published through a [`Snapshot`] (its store is the
//! release, each call's load the acquire). `failures` is Relaxed: a count
//! that only decides when to renew, publishing nothing; two calls that race
//! on it at worst renew once more or one failure later.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use acqrel_core::Snapshot;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind};

/// Calls in a row that may have failed for the connection's sake before it
/// is replaced.
pub(crate) const RENEW_AFTER: u32 = 3;

/// The connection: a manager, and what it takes to make another.
pub(crate) struct Connection {
    client: redis::Client,
    config: ConnectionManagerConfig,
    manager: Snapshot<ConnectionManager>,
    failures: AtomicU32,
}

/// How a call went, as far as the connection is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A reply came (a server error reply about the key counts: the
    /// connection works).
    Replied,
    /// No reply in time, or an error below the server's replies.
    Failed,
}

impl Outcome {
    /// The outcome of a call that failed with `error`.
    pub(crate) fn of(error: &RedisError) -> Outcome {
        match error.kind() {
            ErrorKind::Server(ServerErrorKind::ReadOnly) => Outcome::Failed,
            ErrorKind::Server(_) => Outcome::Replied,
            _ => Outcome::Failed,
        }
    }
}

impl Connection {
    /// A connection that connects on first use.
    pub(crate) fn new(
        client: redis::Client,
        config: ConnectionManagerConfig,
    ) -> Result<Connection, RedisError> {
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        Ok(Connection {
            client,
            config,
            manager: Snapshot::new(manager),
            failures: AtomicU32::new(0),
        })
    }

    /// The manager to send a call on (a cheap handle).
    pub(crate) fn manager(&self) -> ConnectionManager {
        self.manager.load().clone()
    }

    /// Records how a call went; returns whether the connection was replaced.
    pub(crate) fn record(&self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Replied => {
                // Relaxed: see the module docs. A load first, so the common
                // case writes nothing to a shared line.
                if self.failures.load(Relaxed) != 0 {
                    self.failures.store(0, Relaxed);
                }
                false
            }
            Outcome::Failed => {
                // Relaxed: see the module docs.
                if self.failures.fetch_add(1, Relaxed) + 1 < RENEW_AFTER {
                    return false;
                }
                // Relaxed: see the module docs (a racing failure may be
                // counted towards the next renewal, or lost).
                self.failures.store(0, Relaxed);
                match ConnectionManager::new_lazy_with_config(
                    self.client.clone(),
                    self.config.clone(),
                ) {
                    Ok(fresh) => {
                        self.manager.store(fresh);
                        true
                    }
                    // Only a configuration error fails here, and the same
                    // configuration built the first manager: keep it.
                    Err(_) => false,
                }
            }
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Relaxed: a statistic for display; no pair.
        f.debug_struct("Connection")
            .field("failures", &self.failures.load(Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_connection_is_replaced_after_three_failures_in_a_row_and_not_after_replies() {
        let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
        let con = Connection::new(client, ConnectionManagerConfig::new()).unwrap();
        assert!(!con.record(Outcome::Failed));
        assert!(!con.record(Outcome::Failed));
        assert!(!con.record(Outcome::Replied));
        assert!(!con.record(Outcome::Failed));
        assert!(!con.record(Outcome::Failed));
        assert!(con.record(Outcome::Failed));
        assert!(!con.record(Outcome::Failed));
    }

    #[test]
    fn server_error_replies_are_replies_but_readonly_is_a_failure() {
        let reply = RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "ERR"));
        assert_eq!(Outcome::of(&reply), Outcome::Replied);
        let demoted = RedisError::from((ErrorKind::Server(ServerErrorKind::ReadOnly), "READONLY"));
        assert_eq!(Outcome::of(&demoted), Outcome::Failed);
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(Outcome::of(&io), Outcome::Failed);
        let auth = RedisError::from((ErrorKind::AuthenticationFailed, "WRONGPASS"));
        assert_eq!(Outcome::of(&auth), Outcome::Failed);
    }
}
