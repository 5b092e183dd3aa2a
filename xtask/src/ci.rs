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
use std::path::Path;
use std::time::Instant;

use crate::cmd::{self, Cmd, DynError, fmt_duration};

/// Usage of `cargo xtask ci`.
const HELP: &str = "\
Run every check CI runs, in order, stopping at the first failure.

Usage: cargo xtask ci [--skip STEP]... [--only STEP]...

Steps:
  fmt          cargo fmt --all --check
  clippy       cargo clippy --workspace --all-targets -- -D warnings
  test         cargo test --workspace
  loom         cargo test --release -p <crate> --test loom_<x>... for every
               crates/*/tests/loom_*.rs, with RUSTFLAGS=\"--cfg acqrel_loom\",
               LOOM_MAX_PREEMPTIONS=2 and CARGO_TARGET_DIR=<target>/loom
  bench-build  cargo bench --workspace --no-run
  doc          cargo doc --workspace --no-deps, with RUSTDOCFLAGS=\"-D warnings\"

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
    /// The benches compile (they are not run).
    BenchBuild,
    /// Rustdoc, warnings denied.
    Doc,
}

impl Step {
    /// Every step, in the order CI runs them.
    const ALL: [Step; 6] = [
        Step::Fmt,
        Step::Clippy,
        Step::Test,
        Step::Loom,
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
            Step::Clippy => cargo()
                .args(["clippy", "--workspace", "--all-targets", "--"])
                .args(["-D", "warnings"])
                .run()?,
            Step::Test => cargo().args(["test", "--workspace"]).run()?,
            Step::Loom => return run_loom(),
            Step::BenchBuild => cargo().args(["bench", "--workspace", "--no-run"]).run()?,
            Step::Doc => cargo()
                .args(["doc", "--workspace", "--no-deps"])
                .env("RUSTDOCFLAGS", "-D warnings")
                .run()?,
        };
        Ok(())
    }
}

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
    for (package, tests) in &models {
        let mut command = cargo()
            .env("RUSTFLAGS", "--cfg acqrel_loom")
            .env("LOOM_MAX_PREEMPTIONS", "2")
            .env("CARGO_TARGET_DIR", &target)
            .args(["test", "--release", "-p", package]);
        for test in tests {
            command = command.args(["--test", test]);
        }
        command.run()?;
    }
    Ok(())
}

/// Finds `crates/*/tests/loom_*.rs` under `root` and groups the test target
/// names by package name, both sorted.
///
/// # Errors
///
/// If a directory cannot be read, or a crate with loom models has no
/// readable package name.
fn find_loom_models(root: &Path) -> Result<BTreeMap<String, Vec<String>>, DynError> {
    let crates = root.join("crates");
    let mut models = BTreeMap::new();
    let entries =
        fs::read_dir(&crates).map_err(|e| format!("cannot read {}: {e}", crates.display()))?;
    for entry in entries {
        let crate_dir = entry?.path();
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
        let manifest = crate_dir.join("Cargo.toml");
        let text = fs::read_to_string(&manifest)
            .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
        let package = package_name(&text)
            .ok_or_else(|| format!("no `[package] name` in {}", manifest.display()))?;
        models.insert(package, tests);
    }
    Ok(models)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&a| a.to_owned()).collect()
    }

    #[test]
    fn step_names_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::from_name(step.name()).unwrap(), step);
        }
        let err = Step::from_name("lint").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown step `lint` (steps: fmt, clippy, test, loom, bench-build, doc)"
        );
    }

    #[test]
    fn selection() {
        assert_eq!(parse_args(&[]).unwrap(), Some(Step::ALL.to_vec()));
        assert_eq!(
            parse_args(&strings(&["--skip", "loom", "--skip=doc"])).unwrap(),
            Some(vec![Step::Fmt, Step::Clippy, Step::Test, Step::BenchBuild])
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
    fn finds_loom_models_per_package() {
        let root = std::env::temp_dir().join(format!("xtask-loom-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(
            "crates/core/Cargo.toml",
            "[package]\nname = \"acqrel-core\"\n",
        );
        write("crates/core/tests/loom_latch.rs", "");
        write("crates/core/tests/loom_countdown.rs", "");
        write("crates/core/tests/latch.rs", "");
        write("crates/core/tests/loom_notes.txt", "");
        write("crates/other/Cargo.toml", "[package]\nname = \"other\"\n");
        write("crates/other/tests/stress.rs", "");
        write("crates/empty/Cargo.toml", "[package]\nname = \"empty\"\n");

        let models = find_loom_models(&root).unwrap();
        let expected = BTreeMap::from([(
            "acqrel-core".to_owned(),
            vec!["loom_countdown".to_owned(), "loom_latch".to_owned()],
        )]);
        assert_eq!(models, expected);

        write("crates/core/tests/loom_x.rs", "");
        fs::write(root.join("crates/core/Cargo.toml"), "[lib]\n").unwrap();
        let err = find_loom_models(&root).unwrap_err().to_string();
        assert!(err.starts_with("no `[package] name` in "), "{err}");

        fs::remove_dir_all(&root).unwrap();
        assert!(find_loom_models(&root).is_err());
    }
}
