//! `cargo xtask install-redis`: makes sure a `redis-server` is there for
//! the Redis tests and benches (acqrel-ratelimit-redis), installing
//! Debian's package when it is missing. `cargo xtask ci` and
//! `cargo xtask bench` call the same check first.
//!
//! The tests start and stop their own servers (on free loopback ports, no
//! persistence); this only provides the binary. `ACQREL_REDIS_SERVER`
//! names another binary, which is then used as it is.

use std::path::Path;

use crate::apt::Apt;
use crate::cmd::{Cmd, DynError};

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
    match args.first().map(String::as_str) {
        None => ensure_installed(),
        Some("-h" | "--help") => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown argument `{other}` (see `cargo xtask install-redis --help`)"
        )
        .into()),
    }
}

/// Succeeds when a `redis-server` runs (`--version`), installing the
/// package first if there is none.
///
/// # Errors
///
/// When there is none and installing fails (no root, no network): the
/// message says how to provide one.
pub(crate) fn ensure_installed() -> Result<(), DynError> {
    if let Some(binary) = std::env::var_os("ACQREL_REDIS_SERVER") {
        return version(Path::new(&binary))
            .map(|v| println!("redis: {v}"))
            .map_err(|e| {
                format!("ACQREL_REDIS_SERVER={}: {e}", Path::new(&binary).display()).into()
            });
    }
    let binary = Path::new("redis-server");
    if let Ok(v) = version(binary) {
        println!("redis: {v}");
        return Ok(());
    }
    Apt::new("install-redis")
        .install_missing(&[PACKAGE])
        .map_err(|e| {
            format!(
                "redis-server is missing and could not be installed ({e}); the Redis tests \
             need it: install Debian's `{PACKAGE}` package, or set ACQREL_REDIS_SERVER \
             to a redis-server binary"
            )
        })?;
    let v = version(binary)?;
    println!("redis: installed {v}");
    Ok(())
}

/// What `binary --version` prints.
fn version(binary: &Path) -> Result<String, DynError> {
    let captured = Cmd::new(binary).arg("--version").run_captured()?;
    if !captured.status.success() {
        return Err(format!(
            "`{} --version` failed: {}",
            binary.display(),
            captured.output.trim()
        )
        .into());
    }
    Ok(captured.output.trim().to_owned())
}
