//! `cargo xtask bench`: runs the criterion benches, then reports ours against
//! the anchors measured in the same groups, and checks `benches/targets.txt`.
//!
//! Convention the bench files follow: in each criterion group, the
//! `function_id` of our implementation starts with `acqrel`; every other
//! function in the group is an anchor. The report reads criterion's
//! `new/benchmark.json` and `new/estimates.json` files, keeping only those
//! written by this run, so results of older runs never appear.

mod json;
mod report;
mod targets;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cmd::{self, Cmd, DynError};
use report::Measured;
use targets::Target;

/// Usage of `cargo xtask bench`.
const HELP: &str = "\
Run the criterion benches and compare ours against the anchors.

Usage: cargo xtask bench [--full] [--bench NAME]... [-- CRITERION_ARGS...]

Runs `cargo bench -p acqrel-benches` (every bench target, or each NAME),
prints a markdown table per criterion group (ours / anchor ratios of mean
times), checks benches/targets.txt, runs the scenario examples that go with
the selected benches (config: acqrel-config's reload_latency;
ratelimit_redis: acqrel-ratelimit-redis's latency, p50/p99 and round trips
per decision; flagd: acqrel-flagd's load, OFREP and gRPC requests/s and p50/p99
beside bare hyper endpoints; each checks its own targets), and writes the
same report to <target dir>/acqrel-bench/report.md. A NAME that only a
scenario example answers to (flagd: no benches/benches/flagd.rs) runs that
example alone.

Options:
  --full          Criterion's default measurement (slow); without it a quick
                  run: --warm-up-time 0.5 --measurement-time 2 --sample-size 30
  --bench NAME    Run only bench target NAME (repeatable)
  -h, --help      Print this help
  -- ARGS...      Passed to criterion after the quick-mode arguments, e.g.
                  `-- snapshot/` to filter. Results are read from criterion's
                  `new/` directories, so `--save-baseline` runs are not
                  reported.

Results are read from $CRITERION_HOME if set, else <target dir>/criterion
(the target dir is $CARGO_TARGET_DIR or <root>/target).

A missed target is marked MISSED but does not fail the command (timings on a
busy machine are noisy); a malformed targets.txt line does.
";

/// Criterion arguments for a quick run.
const QUICK_ARGS: [&str; 6] = [
    "--warm-up-time",
    "0.5",
    "--measurement-time",
    "2",
    "--sample-size",
    "30",
];

/// How deep under `criterion/` to look for results
/// (`<group>/<function>/<value>/new/` is three levels).
const MAX_WALK_DEPTH: usize = 6;

/// Parsed command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Options {
    /// Criterion's default measurement instead of the quick one.
    full: bool,
    /// Bench targets to run; all when empty.
    benches: Vec<String>,
    /// Arguments for criterion, after `--`.
    extra: Vec<String>,
}

/// Runs `cargo xtask bench` with the arguments after `bench`.
pub(crate) fn run(args: &[String]) -> Result<(), DynError> {
    let Some(options) = parse_args(args)? else {
        print!("{HELP}");
        return Ok(());
    };
    let root = cmd::root();
    // Read the targets first: a malformed file fails before a long run.
    let targets_path = root.join("benches").join("targets.txt");
    let targets = read_targets(&targets_path)?;
    let target_dir = cmd::target_dir();
    // The Redis limiter's benches start their own redis-server.
    crate::redis::ensure_installed()?;
    // acqrel-flagd's load example builds with its dev-dependencies, one of
    // which (the flagd provider) runs protoc in its build script.
    crate::protoc::ensure_installed()?;

    // Whole seconds: a file system may store coarser times than the clock.
    let since = UNIX_EPOCH + Duration::from_secs(unix_secs(SystemTime::now()));
    let bench_dir = root.join("benches").join("benches");
    let criterion = criterion_options(&options, |name| {
        bench_dir.join(format!("{name}.rs")).is_file()
    });
    if let Some(criterion) = criterion {
        bench_command(&criterion).run()?;
    }

    let criterion_dir = criterion_dir(&target_dir);
    let results = collect(&criterion_dir, since)?;

    let mut body = String::new();
    if results.is_empty() {
        body.push_str(&format!(
            "No criterion results from this run under `{}`.\n\n",
            criterion_dir.display()
        ));
    }
    body.push_str(&report::render_groups(&results));
    let counts = match &targets {
        Some(targets) => {
            let (text, counts) = report::render_targets(&results, targets);
            body.push_str(&text);
            counts
        }
        None => {
            body.push_str("## Targets\n\nNo `benches/targets.txt`; no targets checked.\n");
            report::TargetCounts::default()
        }
    };
    let missed_latency = latency_sections(&options, &mut body)?;
    print!("\n{body}");

    let report_path = target_dir.join("acqrel-bench").join("report.md");
    let report = format!("{}\n{body}", header(&options));
    write_file(&report_path, &report)?;
    println!("\nreport written to {}", report_path.display());
    let missed = counts.missed + missed_latency;
    if missed > 0 {
        eprintln!(
            "warning: {missed} bench target(s) MISSED (not an error: timings are noisy; \
             rerun with --full on a quiet machine before acting on it)"
        );
    }
    Ok(())
}

/// Measurements that are not criterion benches: examples that time a whole
/// scenario, print their own target line and exit with 1 when they miss it.
/// Each runs with the bench target it belongs to: (bench, package, example).
const SCENARIO_EXAMPLES: [(&str, &str, &str); 3] = [
    ("config", "acqrel-config", "reload_latency"),
    ("ratelimit_redis", "acqrel-ratelimit-redis", "latency"),
    // No criterion bench: the answer's parts are timed by the flags bench.
    ("flagd", "acqrel-flagd", "load"),
];

/// `options` for the criterion run: without the selected names that only a
/// scenario example answers to (`is_bench_target` false for them), or
/// `None` when nothing is left to run. Other names stay, so that cargo
/// reports one that names nothing.
fn criterion_options(options: &Options, is_bench_target: impl Fn(&str) -> bool) -> Option<Options> {
    if options.benches.is_empty() {
        return Some(options.clone());
    }
    let scenario_only = |name: &str| {
        SCENARIO_EXAMPLES.iter().any(|(bench, _, _)| *bench == name) && !is_bench_target(name)
    };
    let benches: Vec<String> = options
        .benches
        .iter()
        .filter(|name| !scenario_only(name))
        .cloned()
        .collect();
    (!benches.is_empty()).then(|| Options {
        benches,
        ..options.clone()
    })
}

/// Runs the scenario examples that go with the selected benches, appends
/// their output to `body`, and returns how many missed their target.
fn latency_sections(options: &Options, body: &mut String) -> Result<usize, DynError> {
    let mut missed = 0;
    for (bench, package, example) in SCENARIO_EXAMPLES {
        if !options.benches.is_empty() && !options.benches.iter().any(|b| b == bench) {
            continue;
        }
        let captured = Cmd::cargo()
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                package,
                "--example",
                example,
            ])
            .run_captured()?;
        let verdict = if captured.status.success() {
            "target met"
        } else {
            missed += 1;
            "MISSED (or failed: see the output)"
        };
        body.push_str(&format!(
            "\n## {example} ({verdict})\n\n`cargo run --release -p {package} --example {example}`\n\n```text\n{}```\n",
            captured.output
        ));
    }
    Ok(missed)
}

/// Parses `--full`, `--bench NAME` and everything after `--`; `None` when
/// help was asked for.
fn parse_args(args: &[String]) -> Result<Option<Options>, DynError> {
    let mut options = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            options.extra = it.cloned().collect();
            break;
        } else if crate::is_help(arg) {
            return Ok(None);
        } else if arg == "--full" {
            options.full = true;
        } else if let Some(name) = crate::option_value("--bench", arg, &mut it)? {
            options.benches.push(name.to_owned());
        } else {
            return Err(format!(
                "unknown argument `{arg}` (see `cargo xtask bench --help`; \
                 criterion arguments go after `--`)"
            )
            .into());
        }
    }
    Ok(Some(options))
}

/// The `cargo bench` command for `options`.
fn bench_command(options: &Options) -> Cmd {
    let mut command = Cmd::cargo().args(["bench", "-p", "acqrel-benches"]);
    if options.benches.is_empty() {
        // Every bench target, but not the library's unit tests: libtest
        // would reject criterion's arguments.
        command = command.args(["--bench", "*"]);
    }
    for name in &options.benches {
        command = command.args(["--bench", name]);
    }
    if let Some(home) = cmd::env_path("CRITERION_HOME") {
        // Made absolute: criterion runs in the bench crate's directory.
        command = command.env("CRITERION_HOME", home);
    }
    let mut criterion_args: Vec<&str> = Vec::new();
    if !options.full {
        criterion_args.extend(QUICK_ARGS);
    }
    criterion_args.extend(options.extra.iter().map(String::as_str));
    if !criterion_args.is_empty() {
        command = command.arg("--").args(criterion_args);
    }
    command
}

/// Where criterion writes its results: `CRITERION_HOME` if set (as
/// criterion itself decides), else `<target dir>/criterion`.
fn criterion_dir(target_dir: &Path) -> PathBuf {
    cmd::env_path("CRITERION_HOME").unwrap_or_else(|| target_dir.join("criterion"))
}

/// Reads and parses `targets.txt`; `None` if there is no such file.
fn read_targets(path: &Path) -> Result<Option<Vec<Target>>, DynError> {
    match fs::read_to_string(path) {
        Ok(text) => targets::parse(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display()).into()),
    }
}

/// The report's header line.
fn header(options: &Options) -> String {
    let now = unix_secs(SystemTime::now());
    let parallelism = std::thread::available_parallelism()
        .map_or_else(|_| "unknown".to_owned(), |n| n.to_string());
    let mode = if options.full {
        "full".to_owned()
    } else {
        format!("quick (`{}`)", QUICK_ARGS.join(" "))
    };
    let benches = if options.benches.is_empty() {
        "all".to_owned()
    } else {
        options.benches.join(", ")
    };
    let mut header = format!(
        "# acqrel bench report\n\n{} (unix {now}) · available_parallelism: {parallelism} \
         · mode: {mode} · benches: {benches}",
        report::fmt_utc(now)
    );
    if !options.extra.is_empty() {
        header.push_str(&format!(" · criterion args: `{}`", options.extra.join(" ")));
    }
    header.push('\n');
    header
}

/// Seconds since the Unix epoch (0 for a clock set before it).
fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Writes `text` to `path`, creating the directories above it.
fn write_file(path: &Path, text: &str) -> Result<(), DynError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

// ===== reading criterion's results =====

/// Every benchmark under `dir` whose `new/benchmark.json` was modified at or
/// after `since`, sorted by group, parameter and function.
fn collect(dir: &Path, since: SystemTime) -> Result<Vec<Measured>, DynError> {
    let mut found = Vec::new();
    if dir.is_dir() {
        walk(dir, 0, since, &mut found)?;
    }
    found.sort_by(|a, b| (&a.group, &a.value, &a.function).cmp(&(&b.group, &b.value, &b.function)));
    Ok(found)
}

/// Looks for results in `dir` and below it, without following symlinks.
fn walk(
    dir: &Path,
    depth: usize,
    since: SystemTime,
    found: &mut Vec<Measured>,
) -> Result<(), DynError> {
    let new = dir.join("new");
    let benchmark = new.join("benchmark.json");
    let estimates = new.join("estimates.json");
    if benchmark.is_file() && estimates.is_file() {
        let modified = fs::metadata(&benchmark)?.modified()?;
        if modified >= since {
            found.push(read_measured(&benchmark, &estimates)?);
        }
    }
    if depth >= MAX_WALK_DEPTH {
        return Ok(());
    }
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), depth + 1, since, found)?;
        }
    }
    Ok(())
}

/// Reads one benchmark's ids and mean time.
fn read_measured(benchmark: &Path, estimates: &Path) -> Result<Measured, DynError> {
    let read = |path: &Path| {
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let in_file = |path: &Path| {
        let path = path.display().to_string();
        move |e: json::JsonError| format!("{path}: {e}")
    };
    let text = read(benchmark)?;
    let group = json::string(&text, &["group_id"]).map_err(in_file(benchmark))?;
    let function = json::opt_string(&text, &["function_id"]).map_err(in_file(benchmark))?;
    let value = json::opt_string(&text, &["value_str"]).map_err(in_file(benchmark))?;
    let text = read(estimates)?;
    let mean_ns = json::number(&text, &["mean", "point_estimate"]).map_err(in_file(estimates))?;
    Ok(Measured {
        function: function.unwrap_or_else(|| group.clone()),
        group,
        value,
        mean_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::ScratchDir;
    use crate::strings;

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&[]).unwrap(), Some(Options::default()));
        assert_eq!(
            parse_args(&strings(&[
                "--full",
                "--bench",
                "snapshot",
                "--bench=latch",
                "--",
                "--help",
                "snapshot/"
            ]))
            .unwrap(),
            Some(Options {
                full: true,
                benches: strings(&["snapshot", "latch"]),
                extra: strings(&["--help", "snapshot/"]),
            })
        );
        assert_eq!(parse_args(&strings(&["--full", "-h"])).unwrap(), None);
        assert_eq!(
            parse_args(&strings(&["--quick"])).unwrap_err().to_string(),
            "unknown argument `--quick` (see `cargo xtask bench --help`; \
             criterion arguments go after `--`)"
        );
        assert_eq!(
            parse_args(&strings(&["--bench"])).unwrap_err().to_string(),
            "`--bench` needs a value"
        );
    }

    #[test]
    fn scenario_only_names_skip_criterion() {
        let select = |names: &[&str]| Options {
            benches: strings(names),
            ..Options::default()
        };
        let targets = |name: &str| name != "flagd";
        assert_eq!(
            criterion_options(&Options::default(), targets),
            Some(Options::default())
        );
        assert_eq!(criterion_options(&select(&["flagd"]), targets), None);
        assert_eq!(
            criterion_options(&select(&["flagd", "config"]), targets),
            Some(select(&["config"]))
        );
        // A name no scenario example has goes to cargo, which reports it.
        assert_eq!(
            criterion_options(&select(&["nosuch"]), |_| false),
            Some(select(&["nosuch"]))
        );
        // A scenario's name that is also a criterion target stays.
        assert_eq!(
            criterion_options(&select(&["flagd"]), |_| true),
            Some(select(&["flagd"]))
        );
    }

    #[test]
    fn commands() {
        assert_eq!(
            bench_command(&Options::default()).to_string(),
            "cargo bench -p acqrel-benches --bench '*' -- \
             --warm-up-time 0.5 --measurement-time 2 --sample-size 30"
        );
        let options = Options {
            full: true,
            benches: strings(&["snapshot", "latch"]),
            extra: Vec::new(),
        };
        assert_eq!(
            bench_command(&options).to_string(),
            "cargo bench -p acqrel-benches --bench snapshot --bench latch"
        );
        let options = Options {
            extra: strings(&["--noplot"]),
            ..Options::default()
        };
        let extra = bench_command(&options).to_string();
        assert!(extra.ends_with("--sample-size 30 --noplot"), "{extra}");
    }

    #[test]
    fn collects_only_fresh_results() {
        let scratch = ScratchDir::new("criterion");
        let dir = scratch.path();
        let benchmark = |group: &str, function: &str, value: &str| {
            format!(
                r#"{{"group_id":"{group}","function_id":{function},"value_str":{value},"throughput":null}}"#
            )
        };
        let estimates = |mean: f64| {
            format!(
                r#"{{"mean":{{"confidence_interval":{{}},"point_estimate":{mean}}},"median":{{"point_estimate":1}}}}"#
            )
        };
        scratch.write(
            "g/acqrel__a/new/benchmark.json",
            &benchmark("g", r#""acqrel::a""#, "null"),
        );
        scratch.write("g/acqrel__a/new/estimates.json", &estimates(2.5));
        scratch.write(
            "g/acqrel__a/base/benchmark.json",
            &benchmark("g", r#""stale""#, "null"),
        );
        scratch.write("g/acqrel__a/base/estimates.json", &estimates(9.0));
        scratch.write(
            "g/std__b/4/new/benchmark.json",
            &benchmark("g", r#""std::b""#, r#""4""#),
        );
        scratch.write("g/std__b/4/new/estimates.json", &estimates(5.0));
        scratch.write(
            "solo/new/benchmark.json",
            &benchmark("solo", "null", "null"),
        );
        scratch.write("solo/new/estimates.json", &estimates(7.0));
        scratch.write("g/report/index.html", "");
        scratch.write(
            "half/new/benchmark.json",
            &benchmark("half", "null", "null"),
        );

        let measured = |group: &str, function: &str, value: Option<&str>, mean_ns: f64| Measured {
            group: group.to_owned(),
            function: function.to_owned(),
            value: value.map(str::to_owned),
            mean_ns,
        };
        assert_eq!(
            collect(dir, UNIX_EPOCH).unwrap(),
            vec![
                measured("g", "acqrel::a", None, 2.5),
                measured("g", "std::b", Some("4"), 5.0),
                measured("solo", "solo", None, 7.0),
            ]
        );
        // Written before `since`: left out.
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert_eq!(collect(dir, later).unwrap(), vec![]);
        assert_eq!(collect(&dir.join("missing"), UNIX_EPOCH).unwrap(), vec![]);

        scratch.write("bad/new/benchmark.json", r#"{"group_id": 3}"#);
        scratch.write("bad/new/estimates.json", &estimates(1.0));
        let err = collect(dir, UNIX_EPOCH).unwrap_err().to_string();
        assert!(
            err.ends_with("benchmark.json: `group_id` should be a string, found Num(3.0)"),
            "{err}"
        );
    }

    #[test]
    fn targets_file() {
        let scratch = ScratchDir::new("targets");
        let path = scratch.path().join("targets.txt");
        assert_eq!(read_targets(&path).unwrap(), None);
        scratch.write("targets.txt", "# none yet\n");
        assert_eq!(read_targets(&path).unwrap(), Some(vec![]));
        scratch.write("targets.txt", "\ng | acqrel::a | b\n");
        let err = read_targets(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: line 2: expected 4 fields `group | ours | anchor | max ratio`, found 3",
                path.display()
            )
        );
    }
}
