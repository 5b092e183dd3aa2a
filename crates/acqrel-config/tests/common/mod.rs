//! Helpers shared by the integration tests on real files (each
//! `tests/*.rs` includes this module with `mod common;`): a temporary
//! directory, two ways of writing a file, and bounded waits for a new
//! generation or a refusal.
#![allow(dead_code)] // each test file uses its own subset

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use acqrel_config::{ConfigRef, HotConfig, Status};
use serde::de::DeserializeOwned;

// `scaled`, `HANG_GUARD` and `Rng`: one copy for the whole workspace.
#[path = "../../../acqrel-core/tests/common/mod.rs"]
mod core_common;

#[allow(unused_imports)] // each test file uses its own subset
pub(crate) use core_common::{HANG_GUARD, Rng, scaled};

/// How long a test waits for the reloader before it gives up and fails:
/// long enough never to fire on a healthy run, even under emulation.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A fresh directory under the system's temporary directory, removed (with
/// its content) when dropped.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/acqrel-config-<pid>-<n>-<name>`, unique within the
    /// process (the counter) and across processes (the pid).
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // Relaxed: only uniqueness matters; nothing is published.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("acqrel-config-{}-{n}-{name}", std::process::id()));
        // A leftover of a killed run with a recycled pid.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub(crate) fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a failure to clean up must not hide the test's own
        // outcome (or turn a panic into an abort).
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Writes `content` the way editors save: into a temporary file in the same
/// directory, then renamed over `path`, so a reader sees the old or the new
/// content, never a part.
pub(crate) fn write_atomic(path: &Path, content: impl AsRef<[u8]>) {
    let name = path.file_name().expect("a file path").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, content).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    fs::rename(&tmp, path)
        .unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), path.display()));
}

/// Writes `content` in place (truncate, then write): a reader may see the
/// file empty or partly written.
pub(crate) fn write_plain(path: &Path, content: impl AsRef<[u8]>) {
    fs::write(path, content).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Removes the file at `path`.
pub(crate) fn remove(path: &Path) {
    fs::remove_file(path).unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
}

/// Waits for a config newer than generation `since`, and returns the newest
/// one; fails the test with the status after [`WAIT`].
pub(crate) fn wait_generation<T>(config: &HotConfig<T>, since: u64) -> ConfigRef<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    config.wait_changed_timeout(since, WAIT).unwrap_or_else(|| {
        panic!(
            "no generation after {since} within {WAIT:?}; status: {:?}",
            config.status()
        )
    })
}

/// Waits until more than `failures_before` reloads have been refused, and
/// returns the status then; fails the test with the status after [`WAIT`].
pub(crate) fn wait_refused<T>(config: &HotConfig<T>, failures_before: u64) -> Status
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let deadline = Instant::now() + WAIT;
    loop {
        // The check count is read before the failures: an attempt counted
        // in it has recorded its refusal already (it is counted only once
        // it has completed), so waiting past it cannot miss that refusal.
        let checks = config.status().checks;
        let status = config.status();
        if status.failures > failures_before {
            return status;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if config.wait_checked_timeout(checks, left).is_none() {
            panic!(
                "no refusal past {failures_before} within {WAIT:?}; status: {:?}",
                config.status()
            );
        }
    }
}

/// Waits until at least `checks` reload attempts have completed, and
/// returns the count; fails the test with the status after [`WAIT`].
pub(crate) fn wait_checks<T>(config: &HotConfig<T>, checks: u64) -> u64
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    if checks == 0 {
        return config.status().checks;
    }
    config
        .wait_checked_timeout(checks - 1, WAIT)
        .unwrap_or_else(|| {
            panic!(
                "fewer than {checks} checks within {WAIT:?}; status: {:?}",
                config.status()
            )
        })
}

/// Whether `reason` is an I/O error of kind `kind`.
pub(crate) fn is_io(reason: &acqrel_config::Reason, kind: io::ErrorKind) -> bool {
    matches!(reason, acqrel_config::Reason::Io(e) if e.kind() == kind)
}
