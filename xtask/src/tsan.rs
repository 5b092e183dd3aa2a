//! `cargo xtask tsan`: the multi-threaded and stress tests of every checked
//! crate under ThreadSanitizer, at full size, with std rebuilt
//! (`-Zbuild-std`) so std's own synchronization is instrumented too. Any
//! report fails the run (ThreadSanitizer makes the test binary exit non-zero).
//!
//! Doc tests are not run: rustdoc links them against the prebuilt,
//! uninstrumented std. No suppressions are needed; one would need a comment
//! naming the false positive and why it is one.

use crate::cmd::{self, Cmd, DynError};
use crate::nightly;

/// Usage of `cargo xtask tsan`.
const HELP: &str = "\
Run the multi-threaded and stress tests under ThreadSanitizer.

Usage: cargo xtask tsan [--selftest]

Runs on the nightly toolchain (installs its rust-src component) with
-Zsanitizer=thread and -Zbuild-std for the host target; unit and integration
tests of every crate with unsafe code or hand-written atomics, at full size.

Options:
  --selftest  Run only the deliberate bugs in crates/acqrel-core/tests/selftest.rs
              and require ThreadSanitizer to report each one
  -h, --help  Print this help
";

/// Runs `cargo xtask tsan` with the arguments after the task.
pub(crate) fn run(args: &[String]) -> Result<(), DynError> {
    let Some(selftest) = nightly::parse_args("tsan", args)? else {
        print!("{HELP}");
        return Ok(());
    };
    nightly::add_components("tsan", &["rust-src"])?;
    let host = host_triple()?;
    if selftest {
        return nightly::expect_reports("tsan", "WARNING: ThreadSanitizer", |test| {
            tsan_test(
                &host,
                "-Zsanitizer=thread --cfg acqrel_selftest",
                "tsan-selftest",
            )
            .args(nightly::selftest_args(test))
        });
    }
    for package in nightly::CHECKED_PACKAGES {
        tsan_test(&host, "-Zsanitizer=thread", "tsan")
            .args(["-p", package, "--lib", "--tests", "--no-fail-fast"])
            .run()?;
    }
    Ok(())
}

/// `cargo test -Zbuild-std` for `host` with `rustflags`, building into
/// `<target>/<dir>`.
fn tsan_test(host: &str, rustflags: &str, dir: &str) -> Cmd {
    nightly::cargo()
        .args(["test", "-Zbuild-std", "--target", host])
        .env("RUSTFLAGS", rustflags)
        // Let the sanitizer's allocator fail an impossible allocation the
        // way the system allocator does (return null) instead of aborting,
        // so tests of `try_reserve` error paths behave as they do natively.
        // It changes nothing about race detection.
        .env("TSAN_OPTIONS", "allocator_may_return_null=1")
        .env("CARGO_TARGET_DIR", cmd::target_dir().join(dir))
}

/// The nightly compiler's host triple (`rustc -vV`).
fn host_triple() -> Result<String, DynError> {
    let captured = Cmd::new("rustup")
        .args(["run", "nightly", "rustc", "-vV"])
        .run_captured()?;
    parse_host(&captured.output).ok_or_else(|| "no `host:` line in `rustc -vV`".into())
}

/// The `host:` line of `rustc -vV` output.
fn parse_host(version: &str) -> Option<String> {
    version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_line() {
        let out = "rustc 1.97.0-nightly\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.97.0\n";
        assert_eq!(parse_host(out).as_deref(), Some("x86_64-unknown-linux-gnu"));
        assert_eq!(parse_host("rustc 1.0"), None);
    }
}
