//! Debian's package manager, for the tasks that install what they need
//! (`test-all-arches`: qemu and cross compilers; `install-redis`,
//! `install-protoc`, `ci` and `bench`: `redis-server` and `protoc`).

use std::path::Path;

use crate::cmd::{Cmd, DynError};

/// Runs an install task (`cargo xtask install-redis`, `install-protoc`,
/// `install-node-clients`): no arguments installs with `ensure`, `--help`
/// prints `help`, anything else is an error naming `task`.
///
/// # Errors
///
/// An unknown argument, or what `ensure` reports.
pub(crate) fn install_task(
    task: &str,
    help: &str,
    args: &[String],
    ensure: fn() -> Result<(), DynError>,
) -> Result<(), DynError> {
    match args.first().map(String::as_str) {
        None => ensure(),
        Some("-h" | "--help") => {
            print!("{help}");
            Ok(())
        }
        Some(other) => {
            Err(format!("unknown argument `{other}` (see `cargo xtask {task} --help`)").into())
        }
    }
}

/// A program the tests need, from a Debian package unless an environment
/// variable names another binary.
pub(crate) struct Tool {
    /// For messages: `redis`, `protoc`.
    pub(crate) name: &'static str,
    /// The program, looked up on `PATH`.
    pub(crate) binary: &'static str,
    /// The Debian packages it needs: the one that has it first (named in
    /// messages), then what it needs beside it.
    pub(crate) packages: &'static [&'static str],
    /// The variable naming another binary, used as it is.
    pub(crate) env: &'static str,
    /// For the error message: what needs it.
    pub(crate) needed_by: &'static str,
}

impl Tool {
    /// Succeeds when the tool runs (`--version`), installing its package
    /// first if it does not.
    ///
    /// # Errors
    ///
    /// When it does not run and installing fails (no root, no network):
    /// the message says how to provide it.
    pub(crate) fn ensure_installed(&self) -> Result<(), DynError> {
        if let Some(binary) = std::env::var_os(self.env) {
            return version(Path::new(&binary))
                .map(|v| println!("{}: {v}", self.name))
                .map_err(|e| format!("{}={}: {e}", self.env, Path::new(&binary).display()).into());
        }
        let binary = Path::new(self.binary);
        let complete = || missing_packages(self.packages).is_ok_and(|m| m.is_empty());
        if let Ok(v) = version(binary)
            && (self.packages.len() == 1 || complete())
        {
            println!("{}: {v}", self.name);
            return Ok(());
        }
        Apt::new(self.name)
            .install_missing(self.packages)
            .map_err(|e| {
                format!(
                    "{} is missing and could not be installed ({e}); {} need it: install \
                 Debian's `{}`, or set {} to a {} binary",
                    self.binary,
                    self.needed_by,
                    self.packages.join("` and `"),
                    self.env,
                    self.binary
                )
            })?;
        let v = version(binary)?;
        println!("{}: installed {v}", self.name);
        Ok(())
    }
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

/// Debian's package manager, updated at most once per run.
pub(crate) struct Apt {
    /// The task installing, for its messages.
    task: &'static str,
    /// Whether `apt-get update` has run.
    updated: bool,
}

impl Apt {
    /// A package manager that has not run `apt-get update` yet.
    pub(crate) fn new(task: &'static str) -> Apt {
        Apt {
            task,
            updated: false,
        }
    }

    /// Installs the packages of `packages` that are not installed yet,
    /// running `apt-get update` first if this run has not yet.
    pub(crate) fn install_missing(&mut self, packages: &[&str]) -> Result<(), DynError> {
        let missing = missing_packages(packages)?;
        if missing.is_empty() {
            return Ok(());
        }
        eprintln!("{}: installing {}", self.task, missing.join(" "));
        if !self.updated {
            Cmd::new("apt-get").args(["update", "-q"]).run()?;
            self.updated = true;
        }
        Cmd::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .run()?;
        let still = missing_packages(packages)?;
        if still.is_empty() {
            Ok(())
        } else {
            Err(format!("still not installed after apt-get: {}", still.join(" ")).into())
        }
    }
}

/// The packages of `packages` that dpkg does not report as installed.
fn missing_packages<'a>(packages: &[&'a str]) -> Result<Vec<&'a str>, DynError> {
    // `dpkg-query -W` exits non-zero when any package is unknown, but still
    // prints the known ones: the status is read from the output alone.
    let captured = Cmd::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Status}\\n"])
        .args(packages)
        .run_captured()?;
    Ok(not_installed(packages, &captured.output))
}

/// The packages of `packages` without an `install ok installed` line in
/// `dpkg-query -W -f '${Package} ${Status}\n'` output.
pub(crate) fn not_installed<'a>(packages: &[&'a str], dpkg_output: &str) -> Vec<&'a str> {
    let installed: Vec<&str> = dpkg_output
        .lines()
        .filter_map(|line| line.strip_suffix(" install ok installed"))
        .map(|name| name.split(':').next().unwrap_or(name))
        .collect();
    let mut missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect();
    missing.dedup();
    missing
}
