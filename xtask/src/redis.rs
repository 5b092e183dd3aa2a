//! `cargo xtask install-redis`: makes sure a `redis-server` is there for
//! the Redis tests and benches (acqrel-ratelimit-redis), installing
//! Debian's package when it is missing. `cargo xtask ci` and
//! `cargo xtask bench` call the same check first.
//!
//! The tests start and stop their own servers (on free loopback ports, no
//! persistence); this only provides the binary. `ACQREL_REDIS_SERVER`
//! names another binary, which is then used as it is.

use crate::apt::{Tool, install_task};
use crate::cmd::DynError;

/// Usage of `cargo xtask install-redis`.
const HELP: &str = "\
Make sure redis-server is installed (for acqrel-ratelimit-redis' tests and
benches), installing Debian's redis-server package if it is missing.

Usage: cargo xtask install-redis

Needs root (or the package already installed) on Debian 12. With
ACQREL_REDIS_SERVER set, checks that binary instead and installs nothing.
";

/// The Debian package with `redis-server` (7.0 on Debian 12).
const PACKAGE: &str = "redis-server";

/// Runs `cargo xtask install-redis` with the arguments after it.
pub(crate) fn run(args: &[String]) -> Result<(), DynError> {
    install_task("install-redis", HELP, args, ensure_installed)
}

/// Succeeds when a `redis-server` runs (`--version`), installing the
/// package first if there is none.
///
/// # Errors
///
/// When there is none and installing fails (no root, no network): the
/// message says how to provide one.
pub(crate) fn ensure_installed() -> Result<(), DynError> {
    Tool {
        name: "redis",
        binary: "redis-server",
        packages: &[PACKAGE],
        env: "ACQREL_REDIS_SERVER",
        needed_by: "the Redis tests",
    }
    .ensure_installed()
}
