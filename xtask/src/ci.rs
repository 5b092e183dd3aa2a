//! `cargo xtask ci`: every check CI runs, in order, stopping at the first
//! failure.
//!
//! Each step prints one summary line (`ci: fmt ... ok (3.2s)`); the commands
//! themselves print to the terminal as they run. Steps that set no compiler
//! flags run with the caller's `RUSTFLAGS`/`RUSTDOCFLAGS` removed, so the
//! result does not depend on the caller's shell and the steps share one build
//! cache. The loom step builds with `--cfg acqrel_loom` in its own target
//! directory for the same reason.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cmd::{self, Cmd, DynError, fmt_duration};
use crate::loom_mutants;

/// Usage of `cargo xtask ci`.
const HELP: &str = "\
Run every check CI runs, in order, stopping at the first failure.

Usage: cargo xtask ci [--skip STEP]... [--only STEP]...

Steps:
  fmt           cargo fmt --all --check
  clippy        cargo xtask install-protoc (acqrel-flagd's flagd provider
                runs protoc in its build script), then cargo clippy --workspace --all-targets --all-features -- -D
                warnings, then the same for each crate with optional features
                with none of them (-p <crate>)
  test          cargo xtask install-redis (the Redis tests start real
                redis-server processes) and cargo xtask install-node-clients
                (acqrel-flagd's tests drive flagd's JavaScript provider),
                then cargo test --workspace --all-features
  loom          cargo clippy -p <crate> --tests, then cargo test --release -p
                <crate> --test loom_<x>... for every crates/*/tests/loom_*.rs,
                with the features the models' #![cfg(..)] lines name,
                with RUSTFLAGS=\"--cfg acqrel_loom\", LOOM_MAX_PREEMPTIONS=2 and
                CARGO_TARGET_DIR=<target>/loom
  loom-mutants  cargo xtask loom-mutants: each weakened ordering listed in
                crates/*/tests/loom_mutants.txt must make its loom model fail
  bench-build   cargo build --workspace --all-features --benches (the benches
                compile and link, in the test build's profile, reusing its
                dependencies; cargo xtask bench builds them optimized)
  doc           cargo doc --workspace --no-deps --all-features, with
                RUSTDOCFLAGS=\"-D warnings\"

Options:
  --skip STEP  Do not run STEP (repeatable)
  --only STEP  Run only STEP (repeatable); --skip still applies
  -h, --help   Print this help
";

/// One CI step. [`Step::ALL`] gives the order they run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Formatting check.
    Fmt,
    /// Clippy on every target, warnings denied.
    Clippy,
    /// Unit, integration and doc tests.
    Test,
    /// Loom models, in release mode under `--cfg acqrel_loom`.
    Loom,
    /// Each listed weakening of an ordering makes its loom model fail.
    LoomMutants,
    /// The benches compile (they are not run).
    BenchBuild,
    /// Rustdoc, warnings denied.
    Doc,
}

impl Step {
    /// Every step, in the order CI runs them.
    const ALL: [Step; 7] = [
        Step::Fmt,
        Step::Clippy,
        Step::Test,
        Step::Loom,
        Step::LoomMutants,
        Step::BenchBuild,
        Step::Doc,
    ];

    /// The step's name on the command line and in summary lines.
    fn name(self) -> &'static str {
        match self {
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Test => "test",
            Step::Loom => "loom",
            Step::LoomMutants => "loom-mutants",
            Step::BenchBuild => "bench-build",
            Step::Doc => "doc",
        }
    }

    /// Looks a step up by name.
    ///
    /// # Errors
    ///
    /// If no step has that name; the message lists the valid names.
    fn from_name(name: &str) -> Result<Step, DynError> {
        Step::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Step::ALL.iter().map(|s| s.name()).collect();
                format!("unknown step `{name}` (steps: {})", names.join(", ")).into()
            })
    }

    /// Runs the step's commands.
    fn run(self) -> Result<(), DynError> {
        match self {
            Step::Fmt => cargo().args(["fmt", "--all", "--check"]).run()?,
            Step::Clippy => {
                // Every step that builds acqrel-flagd's tests (clippy,
                // test, bench-build) needs protoc for its flagd provider's
                // build script; clippy is the first.
                crate::protoc::ensure_installed()?;
                let mut took = cargo()
                    .args(["clippy", "--workspace", "--all-targets", "--all-features"])
                    .args(["--", "-D", "warnings"])
                    .run()?;
                for package in WITH_FEATURES {
                    took += cargo()
                        .args(["clippy", "-p", package, "--all-targets", "--"])
                        .args(["-D", "warnings"])
                        .run()?;
                }
                took
            }
            Step::Test => {
                crate::redis::ensure_installed()?;
                crate::node::ensure_installed()?;
                crate::protoc::ensure_installed()?;
                cargo()
                    .args(["test", "--workspace", "--all-features"])
                    .run()?
            }
            Step::Loom => return run_loom(),
            Step::LoomMutants => return loom_mutants::run_all(),
            // The dev profile, as `test` just built: only the bench targets
            // themselves are compiled here. An optimized build of every
            // anchor crate (what `cargo bench --no-run` does) cost two and a
            // half minutes of CI for no error the dev build would miss.
            Step::BenchBuild => cargo()
                .args(["build", "--workspace", "--all-features", "--benches"])
                .run()?,
            Step::Doc => cargo()
                .args(["doc", "--workspace", "--no-deps", "--all-features"])
                .env("RUSTDOCFLAGS", "-D warnings")
                .run()?,
        };
        Ok(())
    }
}

/// The crates with optional features. Tests and docs build with every
/// feature on; clippy also checks these crates with none, so code that
/// needs a feature cannot slip outside its `cfg`.
const WITH_FEATURES: [&str; 1] = ["acqrel-flags"];

/// Cargo with the caller's compiler flags removed.
fn cargo() -> Cmd {
    Cmd::cargo().clean_flags()
}

/// Runs `cargo xtask ci` with the arguments after `ci`.
pub(crate) fn run(args: &[String]) -> Result<(), DynError> {
    let Some(selected) = parse_args(args)? else {
        print!("{HELP}");
        return Ok(());
    };
    let start = Instant::now();
    let (mut ran, mut skipped) = (0, 0);
    for step in Step::ALL {
        let name = step.name();
        if !selected.contains(&step) {
            println!("ci: {name} ... skipped");
            skipped += 1;
            continue;
        }
        let step_start = Instant::now();
        let result = step.run();
        let took = fmt_duration(step_start.elapsed());
        match result {
            Ok(()) => println!("ci: {name} ... ok ({took})"),
            Err(e) => {
                println!("ci: {name} ... FAILED ({took})");
                println!(
                    "ci: total ... FAILED at {name} ({})",
                    fmt_duration(start.elapsed())
                );
                return Err(format!("ci step `{name}` failed: {e}").into());
            }
        }
        ran += 1;
    }
    if ran == 0 {
        return Err("every step was skipped; nothing ran".into());
    }
    println!(
        "ci: total ... ok ({}; {ran} ran, {skipped} skipped)",
        fmt_duration(start.elapsed())
    );
    Ok(())
}

/// Parses `--skip`/`--only` into the steps to run, in CI order; `None` when
/// help was asked for.
fn parse_args(args: &[String]) -> Result<Option<Vec<Step>>, DynError> {
    let mut skip = Vec::new();
    let mut only = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if crate::is_help(arg) {
            return Ok(None);
        } else if let Some(name) = crate::option_value("--skip", arg, &mut it)? {
            skip.push(Step::from_name(name)?);
        } else if let Some(name) = crate::option_value("--only", arg, &mut it)? {
            only.push(Step::from_name(name)?);
        } else {
            return Err(format!("unknown argument `{arg}` (see `cargo xtask ci --help`)").into());
        }
    }
    let selected = Step::ALL
        .into_iter()
        .filter(|s| (only.is_empty() || only.contains(s)) && !skip.contains(s))
        .collect();
    Ok(Some(selected))
}

// ===== loom =====

/// Runs every loom model, one cargo invocation per crate.
fn run_loom() -> Result<(), DynError> {
    let root = cmd::root();
    let models = find_loom_models(&root)?;
    if models.is_empty() {
        return Err("no loom models found (crates/*/tests/loom_*.rs); \
                    a missing model is an error, not a skip"
            .into());
    }
    // A separate target directory: `--cfg acqrel_loom` changes every
    // artifact, and sharing the normal one would throw its cache away.
    let target = cmd::target_dir().join("loom");
    for (package, (dir, tests)) in &models {
        let features = loom_features(dir)?;
        // The loom-only code (the models, the loom halves of the shims) is
        // invisible to the normal clippy step: lint it under the loom cfg.
        loom_cargo(&target)
            .args(["clippy", "-p", package, "--tests"])
            .args(&features)
            .args(["--", "-D", "warnings"])
            .run()?;
        let mut command = loom_cargo(&target)
            .args(["test", "--release", "-p", package])
            .args(&features);
        for test in tests {
            command = command.args(["--test", test]);
        }
        command.run()?;
    }
    Ok(())
}

/// Cargo set up for loom models: the caller's compiler flags replaced by
/// `--cfg acqrel_loom`, `LOOM_MAX_PREEMPTIONS=2`, and `target` as the target
/// directory.
pub(crate) fn loom_cargo(target: &Path) -> Cmd {
    cargo()
        .env("RUSTFLAGS", "--cfg acqrel_loom")
        .env("LOOM_MAX_PREEMPTIONS", "2")
        .env("CARGO_TARGET_DIR", target)
}

/// Finds `crates/*/tests/loom_*.rs` under `root` and groups the test target
/// names by package name, both sorted.
///
/// # Errors
///
/// If a directory cannot be read, or a crate with loom models has no
/// readable package name.
fn find_loom_models(root: &Path) -> Result<BTreeMap<String, (PathBuf, Vec<String>)>, DynError> {
    let mut models = BTreeMap::new();
    for crate_dir in cmd::crate_dirs(root)? {
        let tests_dir = crate_dir.join("tests");
        if !tests_dir.is_dir() {
            continue;
        }
        let mut tests = Vec::new();
        for entry in fs::read_dir(&tests_dir)? {
            let path = entry?.path();
            let stem = path.file_stem().and_then(|s| s.to_str());
            let is_rs = path.extension().is_some_and(|e| e == "rs");
            if let Some(stem) = stem.filter(|s| is_rs && s.starts_with("loom_") && path.is_file()) {
                tests.push(stem.to_owned());
            }
        }
        if tests.is_empty() {
            continue;
        }
        tests.sort();
        models.insert(cmd::read_package_name(&crate_dir)?, (crate_dir, tests));
    }
    Ok(models)
}

/// The cargo arguments that turn on the features a crate's loom models
/// need: each `feature = "name"` in the `#![cfg(..)]` line of a
/// `tests/loom_*.rs` (`#![cfg(all(acqrel_loom, feature = "events"))]`), as
/// `--features a,b`; nothing when they need none. Only those: every
/// feature would build dependencies no model uses, in release, twice.
///
/// # Errors
///
/// If the crate's `tests` directory or a model cannot be read.
pub(crate) fn loom_features(crate_dir: &Path) -> Result<Vec<String>, DynError> {
    let mut features = Vec::new();
    for entry in fs::read_dir(crate_dir.join("tests"))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with("loom_") && name.ends_with(".rs")) {
            continue;
        }
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with("#![cfg("))
        {
            let mut rest = line;
            while let Some(at) = rest.find("feature = \"") {
                rest = &rest[at + "feature = \"".len()..];
                if let Some(end) = rest.find('"') {
                    features.push(rest[..end].to_owned());
                    rest = &rest[end..];
                }
            }
        }
    }
    features.sort();
    features.dedup();
    Ok(if features.is_empty() {
        Vec::new()
    } else {
        vec!["--features".to_owned(), features.join(",")]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::ScratchDir;
    use crate::strings;

    #[test]
    fn step_names_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::from_name(step.name()).unwrap(), step);
        }
        let err = Step::from_name("lint").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown step `lint` (steps: fmt, clippy, test, loom, loom-mutants, \
             bench-build, doc)"
        );
    }

    #[test]
    fn selection() {
        assert_eq!(parse_args(&[]).unwrap(), Some(Step::ALL.to_vec()));
        assert_eq!(
            parse_args(&strings(&["--skip", "loom", "--skip=doc"])).unwrap(),
            Some(vec![
                Step::Fmt,
                Step::Clippy,
                Step::Test,
                Step::LoomMutants,
                Step::BenchBuild
            ])
        );
        // Order on the command line does not matter: CI order is kept.
        assert_eq!(
            parse_args(&strings(&["--only", "doc", "--only", "fmt"])).unwrap(),
            Some(vec![Step::Fmt, Step::Doc])
        );
        assert_eq!(
            parse_args(&strings(&["--only", "doc", "--skip", "doc"])).unwrap(),
            Some(vec![])
        );
        assert_eq!(
            parse_args(&strings(&["--skip", "doc", "--help"])).unwrap(),
            None
        );
        assert_eq!(parse_args(&strings(&["-h"])).unwrap(), None);
        assert_eq!(
            parse_args(&strings(&["--fast"])).unwrap_err().to_string(),
            "unknown argument `--fast` (see `cargo xtask ci --help`)"
        );
        assert_eq!(
            parse_args(&strings(&["--only"])).unwrap_err().to_string(),
            "`--only` needs a value"
        );
    }

    #[test]
    fn finds_loom_models_per_package() {
        let scratch = ScratchDir::new("loom");
        let root = scratch.path().to_path_buf();
        scratch.write(
            "crates/core/Cargo.toml",
            "[package]\nname = \"acqrel-core\"\n",
        );
        scratch.write("crates/core/tests/loom_latch.rs", "");
        scratch.write("crates/core/tests/loom_countdown.rs", "");
        scratch.write("crates/core/tests/latch.rs", "");
        scratch.write("crates/core/tests/loom_notes.txt", "");
        scratch.write("crates/other/Cargo.toml", "[package]\nname = \"other\"\n");
        scratch.write("crates/other/tests/stress.rs", "");
        scratch.write("crates/empty/Cargo.toml", "[package]\nname = \"empty\"\n");

        let models = find_loom_models(&root).unwrap();
        let expected = BTreeMap::from([(
            "acqrel-core".to_owned(),
            (
                root.join("crates/core"),
                vec!["loom_countdown".to_owned(), "loom_latch".to_owned()],
            ),
        )]);
        assert_eq!(models, expected);

        scratch.write("crates/core/tests/loom_x.rs", "");
        scratch.write("crates/core/Cargo.toml", "[lib]\n");
        let err = find_loom_models(&root).unwrap_err().to_string();
        assert!(err.starts_with("no `[package] name` in "), "{err}");

        drop(scratch);
        assert!(!root.exists());
        assert!(find_loom_models(&root).is_err());
    }

    #[test]
    fn loom_features_come_from_the_models_cfg_lines() {
        let scratch = ScratchDir::new("loom-features");
        let dir = scratch.path().join("crates/flags");
        scratch.write("crates/flags/tests/loom_plain.rs", "#![cfg(acqrel_loom)]\n");
        assert!(loom_features(&dir).unwrap().is_empty());

        scratch.write(
            "crates/flags/tests/loom_events.rs",
            "//! uses feature = \"not-this\"\n#![cfg(all(acqrel_loom, feature = \"events\"))]\n",
        );
        scratch.write(
            "crates/flags/tests/loom_both.rs",
            "#![cfg(all(acqrel_loom, feature = \"watch\", feature = \"events\"))]\n",
        );
        // Only loom models count.
        scratch.write(
            "crates/flags/tests/other.rs",
            "#![cfg(feature = \"openfeature\")]\n",
        );
        assert_eq!(loom_features(&dir).unwrap(), ["--features", "events,watch"]);
    }
}
