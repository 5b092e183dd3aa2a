//! Shared helpers: the workspace root, the target directory, the
//! workspace's crates, and a small command runner that echoes each command
//! and times it.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
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

/// The directories under `<root>/crates`, sorted, each with a `Cargo.toml`.
///
/// # Errors
///
/// If `<root>/crates` cannot be read.
pub(crate) fn crate_dirs(root: &Path) -> Result<Vec<PathBuf>, DynError> {
    let crates = root.join("crates");
    let entries =
        fs::read_dir(&crates).map_err(|e| format!("cannot read {}: {e}", crates.display()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// The package name in `<crate_dir>/Cargo.toml`.
///
/// # Errors
///
/// If the manifest cannot be read or has no `[package] name`.
pub(crate) fn read_package_name(crate_dir: &Path) -> Result<String, DynError> {
    let manifest = crate_dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    package_name(&text)
        .ok_or_else(|| format!("no `[package] name` in {}", manifest.display()).into())
}

/// Reads `name = "..."` from the `[package]` table of a manifest.
///
/// A line scanner, not a TOML parser: it handles the plain form cargo
/// manifests use (`name = "x"` or `name = 'x'` on its own line, optional
/// trailing comment).
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        let Some(rest) = line.strip_prefix("name") else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let quote = value.chars().next().filter(|&c| c == '"' || c == '\'')?;
        let value = &value[1..];
        let end = value.find(quote)?;
        return Some(value[..end].to_owned());
    }
    None
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

/// A command to run, by default in the workspace root, either with its
/// stdout and stderr inherited so its output shows as it happens
/// ([`Cmd::run`]), or with both captured ([`Cmd::run_captured`]).
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
    /// Where the child runs; the workspace root when `None`.
    dir: Option<PathBuf>,
}

/// What [`Cmd::run_captured`] returns: how the command ended and what it
/// printed.
#[derive(Debug)]
pub(crate) struct Captured {
    /// The child's exit status.
    pub(crate) status: ExitStatus,
    /// Its stdout and stderr, interleaved as written (one pipe for both, as
    /// `2>&1` does), decoded lossily as UTF-8.
    pub(crate) output: String,
    /// How long it ran.
    pub(crate) elapsed: Duration,
}

impl Cmd {
    /// `cargo`, from the `CARGO` variable cargo sets for `cargo run` (so the
    /// same toolchain runs every step), falling back to `cargo` on `PATH`.
    pub(crate) fn cargo() -> Cmd {
        let mut cmd = Cmd::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.display_name = "cargo".to_owned();
        cmd
    }

    /// Any other program, found on `PATH` unless `program` is a path.
    pub(crate) fn new(program: impl Into<OsString>) -> Cmd {
        let program = program.into();
        Cmd {
            display_name: program.to_string_lossy().into_owned(),
            program,
            args: Vec::new(),
            envs: Vec::new(),
            removed: Vec::new(),
            dir: None,
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

    /// Removes `key` from the child's environment (unless also set with
    /// [`Cmd::env`]).
    pub(crate) fn env_remove(mut self, key: &str) -> Cmd {
        self.removed.push(key.to_owned());
        self
    }

    /// Runs the child in `dir` instead of the workspace root.
    pub(crate) fn current_dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    /// Echoes the command to stderr, runs it with its output shown, and
    /// returns how long it took.
    ///
    /// A `CARGO_TARGET_DIR` inherited from the caller is passed on as the
    /// absolute [`target_dir`].
    ///
    /// # Errors
    ///
    /// If the command cannot be started or exits unsuccessfully.
    pub(crate) fn run(&self) -> Result<Duration, DynError> {
        let (status, elapsed) = self.timed(|mut command| command.status())?;
        if status.success() {
            Ok(elapsed)
        } else {
            Err(format!("`{self}` failed ({status}) after {}", fmt_duration(elapsed)).into())
        }
    }

    /// Echoes the command to stderr and runs it like [`Cmd::run`], but
    /// captures its stdout and stderr instead of showing them. An
    /// unsuccessful exit is not an error: the caller reads
    /// [`Captured::status`].
    ///
    /// # Errors
    ///
    /// If the command cannot be started or its output cannot be read.
    pub(crate) fn run_captured(&self) -> Result<Captured, DynError> {
        let ((status, bytes), elapsed) = self.timed(|mut command| {
            let (mut reader, writer) = io::pipe()?;
            command.stdout(writer.try_clone()?).stderr(writer);
            let mut child = command.spawn()?;
            // The command holds the pipe's write ends: close them, or the
            // read below never sees end-of-file.
            drop(command);
            let mut bytes = Vec::new();
            let read = reader.read_to_end(&mut bytes);
            // Closed before waiting, so a child still writing after a failed
            // read gets an error instead of blocking forever.
            drop(reader);
            let status = child.wait()?;
            read?;
            Ok((status, bytes))
        })?;
        Ok(Captured {
            status,
            output: String::from_utf8_lossy(&bytes).into_owned(),
            elapsed,
        })
    }

    /// Echoes the command, builds it, and times `execute` on it.
    ///
    /// # Errors
    ///
    /// If `execute` fails (the command could not be started or read).
    fn timed<R>(
        &self,
        execute: impl FnOnce(Command) -> io::Result<R>,
    ) -> Result<(R, Duration), DynError> {
        eprintln!("$ {self}");
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(self.dir.clone().unwrap_or_else(root));
        for key in &self.removed {
            command.env_remove(key);
        }
        if env::var_os("CARGO_TARGET_DIR").is_some() {
            // Made absolute: the child runs in another directory, which may
            // not be where a relative value was meant from.
            command.env("CARGO_TARGET_DIR", target_dir());
        }
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        let start = Instant::now();
        let result =
            execute(command).map_err(|e| format!("could not run `{}`: {e}", self.display_name))?;
        Ok((result, start.elapsed()))
    }
}

/// Shows the command as a shell line: `cd DIR && ` when it does not run in
/// the workspace root, set variables, then the program and its arguments,
/// each quoted when needed.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(dir) = &self.dir {
            write!(f, "cd {} && ", shell_quote(dir.as_os_str()))?;
        }
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

/// A scratch directory for a test, under the system's temporary directory,
/// removed (errors ignored) when dropped.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct ScratchDir {
    /// The directory: `<temp dir>/xtask-<name>-<pid>`.
    path: PathBuf,
}

#[cfg(test)]
impl ScratchDir {
    /// Creates `<temp dir>/xtask-<name>-<pid>`, empty: whatever an earlier
    /// run left there is removed first. Tests run in parallel in one
    /// process, so each must pass its own `name`.
    pub(crate) fn new(name: &str) -> ScratchDir {
        let path = env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        ScratchDir { path }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to the file at `rel`, relative to the directory,
    /// creating its parent directories.
    pub(crate) fn write(&self, rel: &str, text: &str) {
        let path = self.path.join(rel);
        let parent = path.parent().expect("a file in the directory has a parent");
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

/// Removes the directory and everything in it, ignoring errors.
#[cfg(test)]
impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
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
    fn package_names() {
        let manifest = "\
[workspace]
name = \"not-this\"

[package]
description = \"name = 'nor this'\"
name    =   \"acqrel-core\" # the core
version.workspace = true

[dependencies]
name = \"nor-this\"
";
        assert_eq!(package_name(manifest).as_deref(), Some("acqrel-core"));
        assert_eq!(
            package_name("[package]\nname='single'\n").as_deref(),
            Some("single")
        );
        assert_eq!(package_name("[package]\nnamespace = \"x\"\n"), None);
        assert_eq!(package_name("[package]\nname = \"open\n"), None);
        assert_eq!(package_name("[lib]\nname = \"lib\"\n"), None);
    }

    #[test]
    fn the_workspace_crates() {
        let root = root();
        let dirs = crate_dirs(&root).unwrap();
        assert!(dirs.contains(&root.join("crates").join("acqrel-core")));
        assert!(dirs.is_sorted());
        let core = root.join("crates").join("acqrel-core");
        assert_eq!(read_package_name(&core).unwrap(), "acqrel-core");
    }

    #[test]
    fn display_shows_the_directory() {
        let cmd = Cmd::cargo()
            .current_dir("/tmp/my ws")
            .env("A", "1")
            .arg("test");
        assert_eq!(cmd.to_string(), "cd '/tmp/my ws' && A=1 cargo test");
    }

    #[test]
    #[cfg(unix)]
    fn captures_interleaved_output_and_status() {
        let cmd = |script: &str| Cmd {
            program: "sh".into(),
            display_name: "sh".to_owned(),
            args: vec!["-c".into(), script.into()],
            envs: Vec::new(),
            removed: Vec::new(),
            dir: None,
        };
        let ok = cmd("echo out; echo err >&2; echo out2; pwd")
            .current_dir("/")
            .run_captured()
            .unwrap();
        assert!(ok.status.success());
        assert_eq!(ok.output, "out\nerr\nout2\n/\n");
        let failed = cmd("echo bye; exit 3").run_captured().unwrap();
        assert_eq!(
            (failed.status.code(), failed.output.as_str()),
            (Some(3), "bye\n")
        );
    }

    #[test]
    fn scratch_dirs_start_empty_and_are_removed() {
        let first = ScratchDir::new("scratch");
        first.write("a/b/c.txt", "stale");
        let path = first.path().to_path_buf();
        // A later one of the same name starts empty, whatever was left.
        std::mem::forget(first);
        let scratch = ScratchDir::new("scratch");
        assert_eq!(scratch.path(), path);
        assert_eq!(fs::read_dir(&path).unwrap().count(), 0);
        scratch.write("d/e.txt", "text");
        assert_eq!(fs::read_to_string(path.join("d/e.txt")).unwrap(), "text");
        drop(scratch);
        assert!(!path.exists());
    }

    #[test]
    fn root_holds_the_workspace_manifest() {
        assert!(root().join("Cargo.toml").is_file());
        assert!(root().join("xtask").is_dir());
    }
}
