//! Shared helpers: the workspace root, the target directory, and a small
//! command runner that echoes each command and times it.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The error type of every task: a message for the user.
pub(crate) type DynError = Box<dyn std::error::Error>;

/// Environment variables that change compiler flags.
///
/// Cargo reads all of them (`CARGO_ENCODED_*` take precedence over the plain
/// ones, which take precedence over `CARGO_BUILD_*`). A step that sets none of
/// them must not inherit the caller's: that would change what is checked and
/// invalidate the build cache the other steps share.
const FLAG_VARS: [&str; 6] = [
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_RUSTDOCFLAGS",
];

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The cargo target directory as an absolute path.
///
/// `CARGO_TARGET_DIR` if set (a relative value is taken relative to the
/// directory xtask was started in, as cargo does), else `<root>/target`.
/// A `build.target-dir` in a cargo config file is not consulted.
pub(crate) fn target_dir() -> PathBuf {
    env_path("CARGO_TARGET_DIR").unwrap_or_else(|| root().join("target"))
}

/// The path in environment variable `key`, made absolute against the
/// directory xtask was started in; `None` if unset or empty.
pub(crate) fn env_path(key: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env::var_os(key).filter(|v| !v.is_empty())?);
    if path.is_absolute() {
        Some(path)
    } else {
        Some(env::current_dir().map_or_else(|_| path.clone(), |cwd| cwd.join(&path)))
    }
}

/// Formats a duration for progress lines: `3.2s`, or `2m 05.3s` from one
/// minute on.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let tenths = (d.as_millis() + 50) / 100;
    let (minutes, tenths) = (tenths / 600, tenths % 600);
    if minutes == 0 {
        format!("{}.{}s", tenths / 10, tenths % 10)
    } else {
        format!("{minutes}m {:02}.{}s", tenths / 10, tenths % 10)
    }
}

// ===== impl Cmd =====

/// A command to run in the workspace root, with its stdout and stderr
/// inherited so its output shows as it happens.
#[derive(Debug)]
pub(crate) struct Cmd {
    /// What to execute.
    program: OsString,
    /// How to show `program` in the echoed command line.
    display_name: String,
    /// Arguments, in order.
    args: Vec<OsString>,
    /// Variables set for the child, in the order given.
    envs: Vec<(String, OsString)>,
    /// Variables removed from the child's environment (unless also set).
    removed: Vec<String>,
}

impl Cmd {
    /// `cargo`, from the `CARGO` variable cargo sets for `cargo run` (so the
    /// same toolchain runs every step), falling back to `cargo` on `PATH`.
    pub(crate) fn cargo() -> Cmd {
        Cmd {
            program: env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            display_name: "cargo".to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// Appends one argument.
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends several arguments.
    pub(crate) fn args<I>(mut self, args: I) -> Cmd
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub(crate) fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.envs.push((key.to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Removes every compiler-flag variable ([`FLAG_VARS`]) the caller set;
    /// variables set with [`Cmd::env`] are still passed.
    pub(crate) fn clean_flags(mut self) -> Cmd {
        self.removed.extend(FLAG_VARS.iter().map(|&v| v.to_owned()));
        self
    }

    /// Echoes the command to stderr, runs it in the workspace root, and
    /// returns how long it took.
    ///
    /// A `CARGO_TARGET_DIR` inherited from the caller is passed on as the
    /// absolute [`target_dir`].
    ///
    /// # Errors
    ///
    /// If the command cannot be started or exits unsuccessfully.
    pub(crate) fn run(&self) -> Result<Duration, DynError> {
        eprintln!("$ {self}");
        let mut command = Command::new(&self.program);
        command.args(&self.args).current_dir(root());
        for key in &self.removed {
            command.env_remove(key);
        }
        if env::var_os("CARGO_TARGET_DIR").is_some() {
            // Made absolute: the child runs in the workspace root, which may
            // not be where a relative value was meant from.
            command.env("CARGO_TARGET_DIR", target_dir());
        }
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        let start = Instant::now();
        let status = command
            .status()
            .map_err(|e| format!("could not start `{}`: {e}", self.display_name))?;
        let elapsed = start.elapsed();
        if status.success() {
            Ok(elapsed)
        } else {
            Err(format!("`{self}` failed ({status}) after {}", fmt_duration(elapsed)).into())
        }
    }
}

/// Shows the command as a shell line: set variables first, then the program
/// and its arguments, each quoted when needed.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.envs {
            write!(f, "{key}={} ", shell_quote(value))?;
        }
        f.write_str(&self.display_name)?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

/// Quotes `s` for display in a POSIX shell line when it holds anything but
/// plainly safe characters.
fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_millis(0)), "0.0s");
        assert_eq!(fmt_duration(Duration::from_millis(3_249)), "3.2s");
        assert_eq!(fmt_duration(Duration::from_millis(3_250)), "3.3s");
        assert_eq!(fmt_duration(Duration::from_millis(59_960)), "1m 00.0s");
        assert_eq!(fmt_duration(Duration::from_millis(125_300)), "2m 05.3s");
        assert_eq!(fmt_duration(Duration::from_secs(3_700)), "61m 40.0s");
    }

    #[test]
    fn display_quotes_only_when_needed() {
        let cmd = Cmd::cargo()
            .env("RUSTFLAGS", "--cfg acqrel_loom")
            .env("LOOM_MAX_PREEMPTIONS", "2")
            .args(["test", "--release", "-p", "acqrel-core", "it's", ""]);
        assert_eq!(
            cmd.to_string(),
            "RUSTFLAGS='--cfg acqrel_loom' LOOM_MAX_PREEMPTIONS=2 \
             cargo test --release -p acqrel-core 'it'\\''s' ''"
        );
    }

    #[test]
    fn root_holds_the_workspace_manifest() {
        assert!(root().join("Cargo.toml").is_file());
        assert!(root().join("xtask").is_dir());
    }
}
