//! What `cargo xtask miri` and `cargo xtask tsan` share: the nightly
//! toolchain, its components, and the self-test that proves a checker bites.

use crate::cmd::{Cmd, DynError, fmt_duration};

/// The crates checked by Miri and ThreadSanitizer: every crate with `unsafe`
/// code or hand-written atomics. Add a crate here when it gains either.
pub(crate) const CHECKED_PACKAGES: [&str; 1] = ["acqrel-core"];

/// The integration test holding the deliberate bugs, built only under
/// `--cfg acqrel_selftest` (`crates/acqrel-core/tests/selftest.rs`).
const SELFTEST_PACKAGE: &str = "acqrel-core";

/// The deliberate bugs, one test each.
pub(crate) const SELFTESTS: [&str; 2] = ["deliberate_data_race", "deliberate_use_after_free"];

/// Cargo arguments selecting self-test `test` alone.
pub(crate) fn selftest_args(test: &str) -> [&str; 7] {
    [
        "-p",
        SELFTEST_PACKAGE,
        "--test",
        "selftest",
        "--",
        "--exact",
        test,
    ]
}

/// Cargo on the nightly toolchain, whatever `rust-toolchain.toml` pins.
///
/// `rustup run` puts nightly's tools first on `PATH`; the variables an outer
/// `cargo xtask` set for the pinned toolchain are removed so they cannot
/// point the child back at it.
pub(crate) fn cargo() -> Cmd {
    Cmd::new("rustup")
        .args(["run", "nightly", "cargo"])
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .clean_flags()
}

/// Parses the arguments of `task` (`miri` or `tsan`): `Some(true)` with
/// `--selftest`, `None` when help was asked for.
///
/// # Errors
///
/// On any other argument.
pub(crate) fn parse_args(task: &str, args: &[String]) -> Result<Option<bool>, DynError> {
    let mut selftest = false;
    for arg in args {
        if crate::is_help(arg) {
            return Ok(None);
        } else if arg == "--selftest" {
            selftest = true;
        } else {
            return Err(
                format!("unknown argument `{arg}` (see `cargo xtask {task} --help`)").into(),
            );
        }
    }
    Ok(Some(selftest))
}

/// Installs `components` for the nightly toolchain.
///
/// # Errors
///
/// If they cannot be had: the check must fail, not pass silently.
pub(crate) fn add_components(task: &str, components: &[&str]) -> Result<(), DynError> {
    Cmd::new("rustup")
        .args(["component", "add", "--toolchain", "nightly"])
        .args(components)
        .run()
        .map(drop)
        .map_err(|e| {
            format!(
                "{task} needs the nightly toolchain with {}; installing them failed: {e}",
                components.join(" and ")
            )
            .into()
        })
}

/// Runs each self-test with `command(test)` and requires it to fail with
/// `marker` in its output: the checker reported the deliberate bug.
///
/// # Errors
///
/// If a self-test passes, or fails without the checker's report.
pub(crate) fn expect_reports(
    task: &str,
    marker: &str,
    command: impl Fn(&str) -> Cmd,
) -> Result<(), DynError> {
    let mut missed = Vec::new();
    for test in SELFTESTS {
        let captured = command(test).run_captured()?;
        let verdict = selftest_verdict(captured.status.success(), &captured.output, marker);
        println!(
            "{task} --selftest: {test} ... {verdict} ({})",
            fmt_duration(captured.elapsed)
        );
        if verdict != Verdict::Reported {
            let lines: Vec<&str> = captured.output.lines().collect();
            eprintln!("{}", lines[lines.len().saturating_sub(30)..].join("\n"));
            missed.push(test);
        }
    }
    if missed.is_empty() {
        Ok(())
    } else {
        Err(format!("{task} did not report: {}", missed.join(", ")).into())
    }
}

/// What a self-test run showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It failed with the checker's report: the check bites.
    Reported,
    /// It passed: the checker missed the bug.
    Missed,
    /// It failed without the checker's report (a build error, say).
    FailedOtherwise,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Reported => "reported",
            Verdict::Missed => "MISSED",
            Verdict::FailedOtherwise => "FAILED without a report",
        })
    }
}

/// Classifies a self-test run.
pub(crate) fn selftest_verdict(success: bool, output: &str, marker: &str) -> Verdict {
    match (success, output.contains(marker)) {
        (true, _) => Verdict::Missed,
        (false, true) => Verdict::Reported,
        (false, false) => Verdict::FailedOtherwise,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let marker = "Undefined Behavior";
        assert_eq!(
            selftest_verdict(false, "error: Undefined Behavior: data race", marker),
            Verdict::Reported
        );
        assert_eq!(
            selftest_verdict(true, "Undefined Behavior in a comment", marker),
            Verdict::Missed
        );
        assert_eq!(
            selftest_verdict(false, "error[E0425]: cannot find value", marker),
            Verdict::FailedOtherwise
        );
        assert_eq!(Verdict::Missed.to_string(), "MISSED");
    }

    #[test]
    fn arguments() {
        use crate::strings;
        assert_eq!(parse_args("miri", &[]).unwrap(), Some(false));
        assert_eq!(
            parse_args("miri", &strings(&["--selftest"])).unwrap(),
            Some(true)
        );
        assert_eq!(parse_args("tsan", &strings(&["-h"])).unwrap(), None);
        assert_eq!(
            parse_args("tsan", &strings(&["--fast"]))
                .unwrap_err()
                .to_string(),
            "unknown argument `--fast` (see `cargo xtask tsan --help`)"
        );
    }

    #[test]
    fn nightly_cargo_is_shown_as_run() {
        assert_eq!(
            cargo().arg("miri").to_string(),
            "rustup run nightly cargo miri"
        );
    }
}
