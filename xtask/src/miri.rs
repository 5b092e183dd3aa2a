//! `cargo xtask miri`: the tests of every checked crate under Miri, which
//! reports undefined behaviour (use-after-free, invalid provenance, aliasing
//! violations, data races on non-atomics) on the real code paths.
//!
//! Two passes, both with tree borrows:
//!
//! * **strict provenance** for every test whose name does not mention
//!   `snapshot`/`Snapshot`;
//! * **permissive provenance** for those that do. `Snapshot` stores its
//!   value in arc-swap, whose hybrid strategy turns a stored integer back
//!   into a pointer when it pays a reader's debt under contention (arc-swap
//!   1.9.5, `src/strategy/hybrid.rs:68`). Strict provenance rejects that
//!   cast, which is arc-swap's design, not undefined behaviour, so the tests
//!   that go through arc-swap run with exposed provenance allowed. Every other
//!   Miri check stays on for them.
//!
//! Tests scale their sizes down under `cfg(miri)` (see
//! `crates/acqrel-core/tests/stress.rs`); none is skipped.

use crate::cmd::{self, Cmd, DynError};
use crate::nightly;

/// Usage of `cargo xtask miri`.
const HELP: &str = "\
Run the tests of every crate with unsafe code or hand-written atomics under Miri.

Usage: cargo xtask miri [--selftest]

Runs on the nightly toolchain (installs its miri and rust-src components), with
-Zmiri-tree-borrows, and -Zmiri-strict-provenance except for the Snapshot tests,
which go through arc-swap's integer-to-pointer casts (see xtask/src/miri.rs).

Options:
  --selftest  Run only the deliberate bugs in crates/acqrel-core/tests/selftest.rs
              and require Miri to report each one
  -h, --help  Print this help
";

/// Test-name filter that selects the tests going through arc-swap.
const ARC_SWAP_FILTERS: [&str; 2] = ["snapshot", "Snapshot"];

/// Runs `cargo xtask miri` with the arguments after the task.
pub(crate) fn run(args: &[String]) -> Result<(), DynError> {
    let Some(selftest) = nightly::parse_args("miri", args)? else {
        print!("{HELP}");
        return Ok(());
    };
    nightly::add_components("miri", &["miri", "rust-src"])?;
    if selftest {
        return nightly::expect_reports("miri", "Undefined Behavior", |test| {
            miri_test(STRICT, "miri-selftest")
                .env("RUSTFLAGS", "--cfg acqrel_selftest")
                .args([
                    "-p",
                    nightly::SELFTEST_PACKAGE,
                    "--test",
                    "selftest",
                    "--",
                    "--exact",
                    test,
                ])
        });
    }
    for package in nightly::CHECKED_PACKAGES {
        let mut strict = miri_test(STRICT, "miri").args(["-p", package, "--no-fail-fast", "--"]);
        for filter in ARC_SWAP_FILTERS {
            strict = strict.args(["--skip", filter]);
        }
        strict.run()?;
        miri_test(PERMISSIVE, "miri")
            .args(["-p", package, "--no-fail-fast", "--"])
            .args(ARC_SWAP_FILTERS)
            .run()?;
    }
    Ok(())
}

/// Miri flags for code that keeps strict provenance.
const STRICT: &str = "-Zmiri-strict-provenance -Zmiri-tree-borrows";
/// Miri flags for code that goes through arc-swap (see the module docs).
const PERMISSIVE: &str = "-Zmiri-permissive-provenance -Zmiri-tree-borrows";

/// `cargo miri test` with `flags`, building into `<target>/<dir>`.
fn miri_test(flags: &str, dir: &str) -> Cmd {
    nightly::cargo()
        .args(["miri", "test"])
        .env("MIRIFLAGS", flags)
        .env("CARGO_TARGET_DIR", cmd::target_dir().join(dir))
}
