//! `cargo xtask loom-mutants`: checks that the loom models would notice a
//! weakened ordering.
//!
//! A loom model that passes proves little unless it fails when the ordering
//! it exists to check is weakened. Each crate lists such weakenings in
//! `crates/<crate>/tests/loom_mutants.txt`, one per line:
//!
//! ```text
//! # file | original text | mutated text | test target::test name
//! src/latch.rs | self.open.swap(true, Ordering::Release) | self.open.swap(true, Ordering::Relaxed) | loom_latch::open_publishes_prior_writes
//! ```
//!
//! Fields are separated by ` | ` (space, bar, space) and trimmed, so a
//! closure's `|n|` can appear in a text. Lines whose first non-blank
//! character is `#`, and blank lines, are ignored. The file is relative to
//! the crate's directory, and the original text must occur in it exactly
//! once.
//!
//! The command copies the workspace to `<target dir>/mutants/ws` and works
//! only on that copy, so an interrupted run never leaves a mutated file in
//! the real tree. In the copy it first runs the listed models unmutated
//! (they must pass), then applies each mutant in turn, runs its model,
//! restores the file, and classifies the result ([`classify`]). Every
//! mutant must be killed.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use crate::ci::loom_cargo;
use crate::cmd::{self, Cmd, DynError, fmt_duration};

/// Usage of `cargo xtask loom-mutants`.
const HELP: &str = "\
Weaken each ordering listed in crates/*/tests/loom_mutants.txt and check
that its loom model fails.

Usage: cargo xtask loom-mutants [--package NAME]...

Each line of a loom_mutants.txt file names a file of the crate, a text that
occurs in it exactly once, what to replace it with, and the loom test that
must then fail:

  src/latch.rs | self.open.swap(true, Ordering::Release) | self.open.swap(true, Ordering::Relaxed) | loom_latch::open_publishes_prior_writes

The workspace is copied to <target dir>/mutants/ws and only the copy is
mutated. The listed tests must first pass unmutated; then each mutant is
applied alone and its test run with RUSTFLAGS=\"--cfg acqrel_loom\",
LOOM_MAX_PREEMPTIONS=2 and CARGO_TARGET_DIR=<target dir>/mutants/target.

Fails if a mutant survives (its test passes), if a mutated crate does not
compile or its test does not report a result, or if there are no mutants.

Options:
  --package NAME   Only the mutants of this package (repeatable); CI checks all
  -h, --help       Print this help
";

/// Where a crate lists its mutants, relative to the crate's directory.
const MUTANTS_FILE: &str = "tests/loom_mutants.txt";

/// The line libtest prints when a test in the binary failed.
const FAILED_RESULT: &str = "test result: FAILED";

/// The line libtest prints when its filters matched no test.
const NO_TEST_RAN: &str = "running 0 tests";

/// The line libtest prints before running the one model a mutant names.
const ONE_TEST_RAN: &str = "running 1 test\n";

/// What a panicking thread prints.
const PANICKED: &str = "panicked at";

/// How many lines of output to show for a mutant that did not compile.
const TAIL_LINES: usize = 20;

/// Runs `cargo xtask loom-mutants` with the arguments after `loom-mutants`.
pub(crate) fn run(args: &[String]) -> Result<(), DynError> {
    let mut packages = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if crate::is_help(arg) {
            print!("{HELP}");
            return Ok(());
        } else if let Some(package) = crate::option_value("--package", arg, &mut it)? {
            packages.push(package.to_owned());
        } else {
            return Err(format!(
                "unknown argument `{arg}` (see `cargo xtask loom-mutants --help`)"
            )
            .into());
        }
    }
    run_packages(&packages)
}

/// Checks every mutant of every crate (the whole command, also CI's
/// `loom-mutants` step).
///
/// # Errors
///
/// If there are no mutants, a mutants file is malformed, the unmutated
/// models fail, or a mutant is not killed.
pub(crate) fn run_all() -> Result<(), DynError> {
    run_packages(&[])
}

/// Checks the mutants of the named packages, or of every crate when
/// `packages` is empty.
///
/// # Errors
///
/// As [`run_all`], and if a named package has no mutants file.
fn run_packages(packages: &[String]) -> Result<(), DynError> {
    let start = Instant::now();
    let root = cmd::root();
    let mut crates = find_mutants(&root)?;
    if !packages.is_empty() {
        if let Some(missing) = packages
            .iter()
            .find(|p| !crates.iter().any(|c| &c.package == *p))
        {
            return Err(format!("package `{missing}` has no {MUTANTS_FILE}").into());
        }
        crates.retain(|c| packages.contains(&c.package));
    }
    let count: usize = crates.iter().map(|c| c.mutants.len()).sum();
    if count == 0 {
        return Err(format!(
            "no loom mutants found (crates/*/{MUTANTS_FILE}); \
             a missing list is an error, not a skip"
        )
        .into());
    }

    let scratch = cmd::target_dir().join("mutants");
    let ws = scratch.join("ws");
    copy_workspace(&root, &ws, &cmd::target_dir())
        .map_err(|e| format!("cannot copy the workspace to {}: {e}", ws.display()))?;
    // Its own target directory: the copy's paths differ from the real
    // tree's, and every mutant rebuilds the crate it mutates.
    let target = scratch.join("target");

    for krate in &crates {
        baseline(krate, &ws, &target)
            .map_err(|e| format!("the unmutated loom models must pass first: {e}"))?;
    }
    let mut tally = Tally::default();
    for krate in &crates {
        for mutant in &krate.mutants {
            let outcome = check(krate, mutant, &ws, &target)?;
            tally.add(outcome);
        }
    }

    let took = fmt_duration(start.elapsed());
    if tally.all_killed() {
        println!("loom-mutants: total ... ok ({count} killed; {took})");
        Ok(())
    } else {
        println!("loom-mutants: total ... FAILED ({tally}; {took})");
        Err(format!("not every loom mutant was killed ({tally})").into())
    }
}

// ===== the mutants files =====

/// One line of a mutants file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mutant {
    /// 1-based line number in the mutants file.
    line: usize,
    /// The file to mutate, relative to the crate's directory.
    file: String,
    /// The text to replace; occurs exactly once in `file`.
    original: String,
    /// What replaces it.
    mutated: String,
    /// The integration test target (`tests/<target>.rs`) holding the model.
    target: String,
    /// The model's full libtest name inside `target`.
    test: String,
}

impl Mutant {
    /// The mutant on line `line`: replace `original` with `mutated` in
    /// `file` and run test `test` of target `target`.
    fn new(
        line: usize,
        file: &str,
        original: &str,
        mutated: &str,
        target: &str,
        test: &str,
    ) -> Mutant {
        Mutant {
            line,
            file: file.to_owned(),
            original: original.to_owned(),
            mutated: mutated.to_owned(),
            target: target.to_owned(),
            test: test.to_owned(),
        }
    }
}

/// A malformed line of a mutants file, or one that does not fit the source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LineError {
    /// 1-based line number.
    line: usize,
    /// What is wrong with it.
    msg: String,
}

/// The mutants of one crate, checked against its sources.
#[derive(Debug)]
struct CrateMutants {
    /// The crate's directory relative to the workspace root
    /// (`crates/acqrel-core`).
    dir: PathBuf,
    /// Its package name, for `cargo -p`.
    package: String,
    /// The `--features` arguments its loom models need
    /// ([`crate::ci::loom_features`]).
    features: Vec<String>,
    /// Its mutants, in file order.
    mutants: Vec<Mutant>,
}

/// Reads every `crates/*/tests/loom_mutants.txt` under `root` and checks
/// each mutant against the crate's sources.
///
/// # Errors
///
/// If a directory or file cannot be read, or a line is malformed or does not
/// fit its source file; the message names the mutants file and line.
fn find_mutants(root: &Path) -> Result<Vec<CrateMutants>, DynError> {
    let mut crates = Vec::new();
    for crate_dir in cmd::crate_dirs(root)? {
        let path = crate_dir.join(MUTANTS_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
        };
        let at = |e: LineError| format!("{}:{}: {}", path.display(), e.line, e.msg);
        let mutants = parse(&text).map_err(at)?;
        for mutant in &mutants {
            locate(&crate_dir, mutant).map_err(at)?;
        }
        let dir = crate_dir.strip_prefix(root).unwrap_or(&crate_dir);
        crates.push(CrateMutants {
            dir: dir.to_path_buf(),
            package: cmd::read_package_name(&crate_dir)?,
            features: crate::ci::loom_features(&crate_dir)?,
            mutants,
        });
    }
    Ok(crates)
}

/// Parses a whole mutants file.
///
/// # Errors
///
/// On the first malformed line (see [`parse_line`]).
fn parse(text: &str) -> Result<Vec<Mutant>, LineError> {
    let mut mutants = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let line = index + 1;
        mutants.push(parse_line(line, trimmed).map_err(|msg| LineError { line, msg })?);
    }
    Ok(mutants)
}

/// Parses one non-comment line, numbered `line`.
///
/// # Errors
///
/// If it does not have four non-empty fields, the file is not a plain
/// relative path, the mutated text equals the original, or the last field
/// is not `target::test`.
fn parse_line(line: usize, text: &str) -> Result<Mutant, String> {
    // Padded so that an empty first or last field (`| x | y | t::n`, trimmed
    // from ` | x | ...`) still has its separator.
    let padded = format!(" {text} ");
    let fields: Vec<&str> = padded.split(" | ").map(str::trim).collect();
    let [file, original, mutated, test] = fields[..] else {
        return Err(format!(
            "expected 4 fields `file | original | mutated | target::test`, found {}",
            fields.len()
        ));
    };
    let named = [
        ("file", file),
        ("original", original),
        ("mutated", mutated),
        ("test", test),
    ];
    if let Some((name, _)) = named.iter().find(|(_, value)| value.is_empty()) {
        return Err(format!("the {name} field is empty"));
    }
    let plain = |c: Component<'_>| matches!(c, Component::Normal(_));
    if !Path::new(file).components().all(plain) {
        return Err(format!("`{file}` is not a relative path inside the crate"));
    }
    if original == mutated {
        return Err("the mutated text is the same as the original".to_owned());
    }
    let Some((target, test)) = test
        .split_once("::")
        .filter(|(t, n)| !t.is_empty() && !n.is_empty())
    else {
        return Err(format!("`{test}` is not `<test target>::<test name>`"));
    };
    Ok(Mutant::new(line, file, original, mutated, target, test))
}

/// Reads the mutant's file in `crate_dir` and returns its text with the
/// 1-based line on which the original text starts.
///
/// # Errors
///
/// If the file cannot be read, or the original text does not occur in it
/// exactly once.
fn locate(crate_dir: &Path, mutant: &Mutant) -> Result<(String, usize), LineError> {
    let error = |msg: String| LineError {
        line: mutant.line,
        msg,
    };
    let path = crate_dir.join(&mutant.file);
    let source = fs::read_to_string(&path).map_err(|e| {
        error(match e.kind() {
            io::ErrorKind::NotFound => format!("{} does not exist", mutant.file),
            _ => format!("cannot read {}: {e}", mutant.file),
        })
    })?;
    let source_line = find_once(&source, &mutant.original).map_err(|found| {
        error(format!(
            "the original text occurs {found} times in {} (it must occur exactly once)",
            mutant.file
        ))
    })?;
    Ok((source, source_line))
}

/// The 1-based line on which `needle` starts in `haystack`.
///
/// # Errors
///
/// With the number of (non-overlapping) occurrences, if it is not one.
fn find_once(haystack: &str, needle: &str) -> Result<usize, usize> {
    let found: Vec<usize> = haystack.match_indices(needle).map(|(i, _)| i).collect();
    match found[..] {
        [at] => Ok(haystack[..at].matches('\n').count() + 1),
        _ => Err(found.len()),
    }
}

// ===== running them =====

/// What running a mutant's model showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The model failed: the mutant was caught.
    Killed,
    /// The command failed without the model failing: the mutated crate did
    /// not compile (or the test binary died before running the model).
    DidNotCompile,
    /// The model passed with the mutant in place.
    Survived,
    /// The command passed but its filter matched no test.
    NoSuchTest,
}

/// Classifies a mutant's run from whether the command succeeded and what it
/// printed.
///
/// Killed needs a failure and proof that the model itself failed: libtest's
/// `test result: FAILED`, or the model started and panicked, and the binary
/// died before reporting (loom aborts that way when a deadlock's unwinding
/// drops a loom object of a suspended thread). A failure without either
/// means cargo never got to run the model.
fn classify(success: bool, output: &str) -> Outcome {
    let model_failed = output.contains(FAILED_RESULT)
        || (output.contains(ONE_TEST_RAN) && output.contains(PANICKED));
    match (success, model_failed) {
        (false, true) => Outcome::Killed,
        (false, false) => Outcome::DidNotCompile,
        (true, _) if output.contains(NO_TEST_RAN) => Outcome::NoSuchTest,
        (true, _) => Outcome::Survived,
    }
}

/// Counts of each outcome.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Mutants killed.
    killed: usize,
    /// Mutants whose crate or test did not build or report.
    did_not_compile: usize,
    /// Mutants whose model passed.
    survived: usize,
    /// Mutants whose test name matched nothing.
    no_such_test: usize,
}

impl Tally {
    /// Counts one outcome.
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Killed => self.killed += 1,
            Outcome::DidNotCompile => self.did_not_compile += 1,
            Outcome::Survived => self.survived += 1,
            Outcome::NoSuchTest => self.no_such_test += 1,
        }
    }

    /// Whether every mutant counted was killed.
    fn all_killed(&self) -> bool {
        self.did_not_compile + self.survived + self.no_such_test == 0
    }
}

/// `3 killed, 1 survived`: the non-zero counts, killed always shown.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} killed", self.killed)?;
        let others = [
            (self.survived, "survived"),
            (self.did_not_compile, "did not compile"),
            (self.no_such_test, "ran no test"),
        ];
        for (n, what) in others.into_iter().filter(|&(n, _)| n > 0) {
            write!(f, ", {n} {what}")?;
        }
        Ok(())
    }
}

/// `cargo test --release -p <package> --test <target>...` in the copy, for
/// loom, with the libtest arguments still to add.
fn test_command(ws: &Path, target: &Path, krate: &CrateMutants, targets: &[&str]) -> Cmd {
    let mut command = loom_cargo(target)
        .current_dir(ws)
        .args(["test", "--release", "-p", &krate.package])
        .args(&krate.features);
    for t in targets {
        command = command.args(["--test", t]);
    }
    command
}

/// Runs the crate's listed models unmutated, showing cargo's output (the
/// first run builds loom and its dependencies).
///
/// # Errors
///
/// If they fail.
fn baseline(krate: &CrateMutants, ws: &Path, target: &Path) -> Result<(), DynError> {
    let mut targets: Vec<&str> = krate.mutants.iter().map(|m| m.target.as_str()).collect();
    let mut tests: Vec<&str> = krate.mutants.iter().map(|m| m.test.as_str()).collect();
    targets.sort_unstable();
    targets.dedup();
    tests.sort_unstable();
    tests.dedup();
    // With `--exact`, each name is a filter matching that full test name;
    // a binary runs the ones it has.
    let took = test_command(ws, target, krate, &targets)
        .args(["--", "--exact"])
        .args(&tests)
        .run()?;
    println!(
        "loom-mutants: {} unmutated ({} tests) ... ok ({})",
        krate.package,
        tests.len(),
        fmt_duration(took)
    );
    Ok(())
}

/// Applies one mutant to the copy, runs its model, restores the file, and
/// prints the outcome line.
///
/// # Errors
///
/// If the file cannot be read or written, the mutant no longer fits it, or
/// cargo cannot be started.
fn check(
    krate: &CrateMutants,
    mutant: &Mutant,
    ws: &Path,
    target: &Path,
) -> Result<Outcome, DynError> {
    let crate_dir = ws.join(&krate.dir);
    let path = crate_dir.join(&mutant.file);
    let (source, source_line) = locate(&crate_dir, mutant).map_err(|e| {
        let list = krate.dir.join(MUTANTS_FILE);
        format!("{}:{}: {} (in the copy)", list.display(), e.line, e.msg)
    })?;
    let write = |text: &str| {
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(&source.replacen(&mutant.original, &mutant.mutated, 1))?;
    let run = test_command(ws, target, krate, &[&mutant.target])
        .args(["--", "--exact", &mutant.test])
        .run_captured();
    // Restored before looking at the result, so no error leaves the copy
    // mutated for the next mutant.
    write(&source)?;
    let run = run?;

    let outcome = classify(run.status.success(), &run.output);
    let model = format!("{}::{}", mutant.target, mutant.test);
    let verdict = match outcome {
        Outcome::Killed => format!("killed by {model}"),
        Outcome::DidNotCompile => "did not compile".to_owned(),
        Outcome::Survived => format!("SURVIVED {model}"),
        Outcome::NoSuchTest => format!("ran no test: {model} does not exist"),
    };
    println!(
        "loom-mutants: {} {}:{source_line}: {} ... {verdict} ({})",
        krate.package,
        mutant.file,
        mutant.mutated,
        fmt_duration(run.elapsed)
    );
    if outcome == Outcome::DidNotCompile {
        for line in tail(&run.output, TAIL_LINES) {
            println!("    {line}");
        }
    }
    Ok(outcome)
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

// ===== the scratch copy =====

/// Re-creates `dest` as a copy of the workspace at `root`, leaving out every
/// `.git` and `target` directory and the target directory `target_dir`
/// (which holds `dest`, when it lies inside the workspace).
///
/// # Errors
///
/// If a file cannot be read, copied or removed.
fn copy_workspace(root: &Path, dest: &Path, target_dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dest) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    copy_dir(root, dest, &|path: &Path| {
        path == target_dir
            || path
                .file_name()
                .is_some_and(|n| n == ".git" || n == "target")
    })
}

/// Copies the directory `from` to `to` recursively, skipping the entries
/// `skip` accepts. Symbolic links are followed.
fn copy_dir(from: &Path, to: &Path, skip: &dyn Fn(&Path) -> bool) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let path = entry?.path();
        if skip(&path) {
            continue;
        }
        let dest = to.join(path.file_name().expect("a directory entry has a name"));
        if path.is_dir() {
            copy_dir(&path, &dest, skip)?;
        } else {
            fs::copy(&path, &dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::ScratchDir;

    /// A mutant whose test is named `target::test` in `model`.
    fn mutant(line: usize, file: &str, original: &str, mutated: &str, model: &str) -> Mutant {
        let (target, test) = model.split_once("::").unwrap();
        Mutant::new(line, file, original, mutated, target, test)
    }

    fn error(line: usize, msg: &str) -> LineError {
        LineError {
            line,
            msg: msg.to_owned(),
        }
    }

    #[test]
    fn parses_mutants_comments_and_blanks() {
        let text = "\
# file | original | mutated | target::test

src/latch.rs | self.open.swap(true, Ordering::Release) | self.open.swap(true, Ordering::Relaxed) | loom_latch::open_publishes_prior_writes
   # indented comment
\tsrc/countdown.rs|x | .fetch_update(Ordering::Release, Ordering::Relaxed, |n| | .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| | loom_countdown::inner::waiter\t
";
        assert_eq!(
            parse(text).unwrap(),
            vec![
                mutant(
                    3,
                    "src/latch.rs",
                    "self.open.swap(true, Ordering::Release)",
                    "self.open.swap(true, Ordering::Relaxed)",
                    "loom_latch::open_publishes_prior_writes"
                ),
                mutant(
                    5,
                    "src/countdown.rs|x",
                    ".fetch_update(Ordering::Release, Ordering::Relaxed, |n|",
                    ".fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n|",
                    "loom_countdown::inner::waiter"
                ),
            ]
        );
        assert_eq!(parse("# only a comment\n\n").unwrap(), vec![]);
    }

    #[test]
    fn rejects_malformed_lines() {
        let cases = [
            (
                "src/a.rs | x | y",
                "expected 4 fields `file | original | mutated | target::test`, found 3",
            ),
            (
                "src/a.rs | x | y | t::n | extra",
                "expected 4 fields `file | original | mutated | target::test`, found 5",
            ),
            (
                "src/a.rs|x|y|t::n",
                "expected 4 fields `file | original | mutated | target::test`, found 1",
            ),
            (" | x | y | t::n", "the file field is empty"),
            ("src/a.rs |  | y | t::n", "the original field is empty"),
            ("src/a.rs | x |   | t::n", "the mutated field is empty"),
            ("src/a.rs | x | y | ", "the test field is empty"),
            (
                "/etc/passwd | x | y | t::n",
                "`/etc/passwd` is not a relative path inside the crate",
            ),
            (
                "../other/src/a.rs | x | y | t::n",
                "`../other/src/a.rs` is not a relative path inside the crate",
            ),
            (
                "src/a.rs | x | x | t::n",
                "the mutated text is the same as the original",
            ),
            (
                "src/a.rs | x | y | t_n",
                "`t_n` is not `<test target>::<test name>`",
            ),
            (
                "src/a.rs | x | y | ::n",
                "`::n` is not `<test target>::<test name>`",
            ),
            (
                "src/a.rs | x | y | t::",
                "`t::` is not `<test target>::<test name>`",
            ),
        ];
        for (line, msg) in cases {
            let text = format!("# header\n{line}\n");
            assert_eq!(parse(&text), Err(error(2, msg)), "{line}");
        }
    }

    #[test]
    fn original_must_occur_exactly_once() {
        let scratch = ScratchDir::new("mutants");
        scratch.write(
            "src/a.rs",
            "fn a() {\n    x.load(Acquire);\n    y.load(Acquire);\n}\n",
        );
        let at = |original: &str, file: &str| {
            locate(scratch.path(), &mutant(7, file, original, "z", "t::n")).map(|(_, line)| line)
        };
        assert_eq!(at("x.load(Acquire)", "src/a.rs"), Ok(2));
        assert_eq!(at("Acquire);\n    y", "src/a.rs"), Ok(2));
        assert_eq!(at("fn a", "src/a.rs"), Ok(1));
        assert_eq!(
            at("load(Acquire)", "src/a.rs"),
            Err(error(
                7,
                "the original text occurs 2 times in src/a.rs (it must occur exactly once)"
            ))
        );
        assert_eq!(
            at("Release", "src/a.rs"),
            Err(error(
                7,
                "the original text occurs 0 times in src/a.rs (it must occur exactly once)"
            ))
        );
        assert_eq!(
            at("x", "src/b.rs"),
            Err(error(7, "src/b.rs does not exist"))
        );
    }

    #[test]
    fn finds_and_checks_mutants_files() {
        let scratch = ScratchDir::new("find-mutants");
        let root = scratch.path();
        scratch.write(
            "crates/core/Cargo.toml",
            "[package]\nname = \"acqrel-core\"\n",
        );
        scratch.write("crates/core/src/a.rs", "a.store(1, Release);\n");
        scratch.write(
            "crates/core/tests/loom_mutants.txt",
            "# comment\nsrc/a.rs | Release | Relaxed | loom_a::publishes\n",
        );
        scratch.write("crates/other/Cargo.toml", "[package]\nname = \"other\"\n");

        let crates = find_mutants(root).unwrap();
        assert_eq!(crates.len(), 1);
        assert_eq!(crates[0].dir, Path::new("crates").join("core"));
        assert_eq!(crates[0].package, "acqrel-core");
        assert_eq!(
            crates[0].mutants,
            vec![mutant(
                2,
                "src/a.rs",
                "Release",
                "Relaxed",
                "loom_a::publishes"
            )]
        );

        scratch.write(
            "crates/core/tests/loom_mutants.txt",
            "src/a.rs | Acquire | Relaxed | loom_a::publishes\n",
        );
        let err = find_mutants(root).unwrap_err().to_string();
        let path = root.join("crates/core/tests/loom_mutants.txt");
        assert_eq!(
            err,
            format!(
                "{}:1: the original text occurs 0 times in src/a.rs \
                 (it must occur exactly once)",
                path.display()
            )
        );
    }

    #[test]
    fn classification() {
        let failed =
            "running 1 test\ntest m ... FAILED\n\ntest result: FAILED. 0 passed; 1 failed\n";
        let passed = "running 1 test\ntest m ... ok\n\ntest result: ok. 1 passed; 0 failed\n";
        let no_test = "running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 1 filtered out\n";
        let compile_error =
            "error[E0308]: mismatched types\nerror: could not compile `acqrel-core`\n";
        let aborted = "running 1 test\n\nthread 'm' (7) panicked at loom/src/rt/execution.rs:215:13:\n\
                       deadlock; threads = [..]\nthread caused non-unwinding panic. aborting.\n";
        let ice = "thread 'rustc' panicked at compiler/x.rs:1:1:\nerror: could not compile\n";
        assert_eq!(classify(false, failed), Outcome::Killed);
        assert_eq!(classify(false, aborted), Outcome::Killed);
        assert_eq!(classify(false, ice), Outcome::DidNotCompile);
        assert_eq!(classify(false, compile_error), Outcome::DidNotCompile);
        assert_eq!(classify(false, passed), Outcome::DidNotCompile);
        assert_eq!(classify(false, ""), Outcome::DidNotCompile);
        assert_eq!(classify(true, passed), Outcome::Survived);
        assert_eq!(classify(true, no_test), Outcome::NoSuchTest);
        assert_eq!(classify(true, ""), Outcome::Survived);
    }

    #[test]
    fn tallies() {
        let mut tally = Tally::default();
        for outcome in [Outcome::Killed, Outcome::Killed] {
            tally.add(outcome);
        }
        assert!(tally.all_killed());
        assert_eq!(tally.to_string(), "2 killed");
        for outcome in [
            Outcome::Survived,
            Outcome::NoSuchTest,
            Outcome::DidNotCompile,
        ] {
            tally.add(outcome);
        }
        assert!(!tally.all_killed());
        assert_eq!(
            tally.to_string(),
            "2 killed, 1 survived, 1 did not compile, 1 ran no test"
        );
        assert_eq!(Tally::default().to_string(), "0 killed");
    }

    #[test]
    fn tails() {
        assert_eq!(tail("a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(tail("a\nb", 5), ["a", "b"]);
        assert_eq!(tail("", 3), Vec::<&str>::new());
    }

    #[test]
    fn copies_the_workspace_without_git_or_targets() {
        let scratch = ScratchDir::new("copy");
        let root = scratch.path();
        for path in [
            "Cargo.toml",
            ".cargo/config.toml",
            "crates/a/src/lib.rs",
            "crates/a/target/debug/x",
            ".git/HEAD",
            "target/debug/x",
            "build/mutants/ws/stale",
        ] {
            scratch.write(path, root.join(path).to_str().unwrap());
        }
        let dest = root.join("build/mutants/ws");
        copy_workspace(root, &dest, &root.join("build")).unwrap();
        let mut copied = Vec::new();
        let mut stack = vec![dest.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(&dest).unwrap();
                    copied.push(rel.to_str().unwrap().replace('\\', "/"));
                }
            }
        }
        copied.sort();
        assert_eq!(
            copied,
            [".cargo/config.toml", "Cargo.toml", "crates/a/src/lib.rs"]
        );
        let text = fs::read_to_string(dest.join("crates/a/src/lib.rs")).unwrap();
        assert_eq!(text, root.join("crates/a/src/lib.rs").to_str().unwrap());
    }
}
