//! Debian's package manager, for the tasks that install what they need
//! (`test-all-arches`: qemu and cross compilers; `install-redis`, `ci` and
//! `bench`: `redis-server`).

use crate::cmd::{Cmd, DynError};

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
