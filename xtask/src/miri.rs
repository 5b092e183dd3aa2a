//! `cargo xtask miri`: the tests of every checked crate under Miri, which
//! reports undefined behaviour (use-after-free, invalid provenance, aliasing
//! violations, data races on non-atomics) on the real code paths.
//!
//! Two passes, both with tree borrows:
//!
//! * **strict provenance** for every test whose name matches none of
//!   [`PERMISSIVE_FILTERS`];
//! * **permissive provenance** for those that do, each for a stated reason:
//!   - `snapshot`/`Snapshot`, `registry`/`Registry`: `Snapshot` (and the
//!     `CounterRegistry` built on it) stores its value in arc-swap, whose
//!     hybrid strategy turns a stored integer back into a pointer when it
//!     pays a reader's debt under contention (arc-swap 1.9.5,
//!     `src/strategy/hybrid.rs:68`). That is arc-swap's design, not undefined
//!     behaviour.
//!   - `transfer_stack`/`TransferStack`: the stack stores its links as
//!     addresses and follows them with `with_exposed_provenance`, on purpose:
//!     with pointer links, a push that races an ABA reuse of the head would
//!     carry the freed node's provenance (see the module docs of
//!     `crates/acqrel-core/src/transfer_stack.rs`).
//!
//!   Every other Miri check stays on for them.
//!
//! Tests scale their sizes down under `cfg(miri)` (see
//! `crates/acqrel-core/tests/common/mod.rs`). One is skipped, with its
//! reason at the test: `AtomicBloom`'s check that an impossible allocation
//! is an error (Miri stops on resource exhaustion instead of failing it).

use crate::cmd::{self, Cmd, DynError};
use crate::nightly;

/// Usage of `cargo xtask miri`.
const HELP: &str = "\
Run the tests of every crate with unsafe code or hand-written atomics under Miri.

Usage: cargo xtask miri [--selftest]

Runs on the nightly toolchain (installs its miri and rust-src components), with
-Zmiri-tree-borrows, and -Zmiri-strict-provenance except for the tests that need
exposed provenance: Snapshot and CounterRegistry (arc-swap's integer-to-pointer
casts) and TransferStack (address links); see xtask/src/miri.rs.

Options:
  --selftest  Run only the deliberate bugs in crates/acqrel-core/tests/selftest.rs
              and require Miri to report each one
  -h, --help  Print this help
";

/// Test-name filters selecting the tests that need exposed provenance (see
/// the module docs for why each does).
const PERMISSIVE_FILTERS: [&str; 6] = [
    "snapshot",
    "Snapshot",
    "registry",
    "Registry",
    "transfer_stack",
    "TransferStack",
];

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
                .args(nightly::selftest_args(test))
        });
    }
    for package in nightly::CHECKED_PACKAGES {
        let mut strict = miri_test(STRICT, "miri").args(["-p", package, "--no-fail-fast", "--"]);
        for filter in PERMISSIVE_FILTERS {
            strict = strict.args(["--skip", filter]);
        }
        strict.run()?;
        miri_test(PERMISSIVE, "miri")
            .args(["-p", package, "--no-fail-fast", "--"])
            .args(PERMISSIVE_FILTERS)
            .run()?;
    }
    Ok(())
}

/// Miri flags for code that keeps strict provenance.
const STRICT: &str = "-Zmiri-strict-provenance -Zmiri-tree-borrows";
/// Miri flags for the tests that need exposed provenance (see the module docs).
const PERMISSIVE: &str = "-Zmiri-permissive-provenance -Zmiri-tree-borrows";

/// `cargo miri test` with `flags`, building into `<target>/<dir>`.
fn miri_test(flags: &str, dir: &str) -> Cmd {
    nightly::cargo()
        .args(["miri", "test"])
        .env("MIRIFLAGS", flags)
        .env("CARGO_TARGET_DIR", cmd::target_dir().join(dir))
}
