//! `cargo xtask install-node-clients`: makes sure `node` and `npm` run,
//! installing Debian's `nodejs` and `npm` when they are missing, then
//! installs the JavaScript flagd provider that acqrel-flagd's tests drive
//! (`crates/acqrel-flagd/tests/node`, versions pinned by its
//! `package-lock.json`) with `npm ci`. `cargo xtask ci` calls the same
//! check before its test step.
//!
//! The provider is there because flagd's Rust provider never opens
//! `EventStream`: only a provider that does shows a file edit reaching it
//! as a configuration-changed event (`tests/node_provider.rs`).
//! `ACQREL_NODE` and `ACQREL_NPM` name other binaries, which are then used
//! as they are.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::apt::{Tool, install_task};
use crate::cmd::{self, Cmd, DynError};

/// Usage of `cargo xtask install-node-clients`.
const HELP: &str = "\
Make sure node and npm are installed (installing Debian's nodejs and npm
packages if they are missing), then install the JavaScript flagd provider
acqrel-flagd's tests drive: npm ci in crates/acqrel-flagd/tests/node,
skipped when its node_modules is already newer than its package-lock.json.

Usage: cargo xtask install-node-clients

Needs root (or the packages already installed) on Debian 12, and the npm
registry unless node_modules is up to date. With ACQREL_NODE or ACQREL_NPM
set, checks that binary instead and installs nothing for it.
";

/// Where the Node.js clients live, from the workspace root.
const CLIENTS: &str = "crates/acqrel-flagd/tests/node";

/// Runs `cargo xtask install-node-clients` with the arguments after it.
pub(crate) fn run(args: &[String]) -> Result<(), DynError> {
    install_task("install-node-clients", HELP, args, ensure_installed)
}

/// Succeeds when `node` and `npm` run and the clients' `node_modules`
/// matches their lock file, installing what is missing first.
///
/// # Errors
///
/// When node or npm is missing and cannot be installed, or `npm ci` fails
/// (no registry, a lock file that does not match `package.json`).
pub(crate) fn ensure_installed() -> Result<(), DynError> {
    // One package each: NodeSource's `nodejs` (what some images carry)
    // bundles npm, and a one-package tool that runs is taken as it is, so
    // its npm never brings Debian's `npm` in beside it.
    Tool {
        name: "node",
        binary: "node",
        packages: &["nodejs"],
        env: "ACQREL_NODE",
        needed_by: "acqrel-flagd's JavaScript provider tests",
    }
    .ensure_installed()?;
    Tool {
        name: "npm",
        binary: "npm",
        packages: &["npm"],
        env: "ACQREL_NPM",
        needed_by: "acqrel-flagd's JavaScript provider tests (to install the provider)",
    }
    .ensure_installed()?;

    let dir = cmd::root().join(CLIENTS);
    if up_to_date(&dir)? {
        println!("node clients: up to date ({CLIENTS}/node_modules)");
        return Ok(());
    }
    let npm = cmd::env_path("ACQREL_NPM").unwrap_or_else(|| PathBuf::from("npm"));
    Cmd::new(npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .run()?;
    println!("node clients: installed ({CLIENTS}/node_modules)");
    Ok(())
}

/// Whether `npm ci` can be skipped in `dir`: `node_modules/.package-lock.json`
/// (what npm writes last, once an install is complete) exists and was
/// written after `package-lock.json` last changed.
///
/// Times, not contents: xtask has no JSON parser (no dependencies), and the
/// two files are not byte-comparable (npm's own copy drops the root
/// package and some fields). A checkout or pull that changes the lock file
/// gives it a new time, so a changed lock is never missed; a lock only
/// touched costs one needless `npm ci`, never a stale install.
///
/// # Errors
///
/// If `package-lock.json` is missing.
fn up_to_date(dir: &Path) -> Result<bool, DynError> {
    let lock = dir.join("package-lock.json");
    let lock_time = modified(&lock).ok_or_else(|| format!("cannot read {}", lock.display()))?;
    Ok(
        modified(&dir.join("node_modules").join(".package-lock.json"))
            .is_some_and(|installed| installed > lock_time),
    )
}

/// When `path` was last modified; `None` if it cannot be read.
fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::ScratchDir;
    use std::time::Duration;

    /// Sets `path`'s modification time `secs` seconds after the epoch.
    fn set_time(path: &Path, secs: u64) {
        fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)))
            .unwrap_or_else(|e| panic!("cannot set the time of {}: {e}", path.display()));
    }

    #[test]
    fn an_install_newer_than_the_lock_is_up_to_date() {
        let scratch = ScratchDir::new("node-clients");
        let dir = scratch.path();
        assert!(up_to_date(dir).is_err(), "no lock file is an error");

        scratch.write("package-lock.json", "{}");
        assert!(!up_to_date(dir).unwrap(), "no node_modules");

        scratch.write("node_modules/.package-lock.json", "{}");
        let (lock, installed) = (
            dir.join("package-lock.json"),
            dir.join("node_modules/.package-lock.json"),
        );
        set_time(&lock, 1_000);
        set_time(&installed, 2_000);
        assert!(up_to_date(dir).unwrap());

        // The lock changed after the install (a pull, an edit).
        set_time(&lock, 3_000);
        assert!(!up_to_date(dir).unwrap());
    }

    #[test]
    fn the_clients_are_in_the_workspace() {
        let dir = cmd::root().join(CLIENTS);
        assert!(dir.join("package.json").is_file());
        assert!(dir.join("package-lock.json").is_file());
    }
}
