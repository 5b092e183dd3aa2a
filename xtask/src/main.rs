//! Development tasks for the acqrel workspace, run as `cargo xtask <task>`.
//!
//! The same commands serve CI and people: `.ci/run` calls `cargo xtask ci`,
//! nothing else. Each task lives in its own module; [`cmd`] holds what they
//! share (the workspace root, running and timing a command). The crate has no
//! dependencies, so it builds in seconds on a cold cache.

mod apt;
mod bench;
mod ci;
mod cmd;
mod loom_mutants;
mod miri;
mod nightly;
mod node;
mod protoc;
mod redis;
mod test_all_arches;
mod tsan;

use std::env;
use std::process::ExitCode;

use cmd::DynError;

/// Top-level usage, shown by `cargo xtask --help`.
const HELP: &str = "\
Development tasks for the acqrel workspace.

Usage: cargo xtask <TASK> [OPTIONS]

Tasks:
  ci            Run every check CI runs: fmt, clippy, test, loom, loom-mutants,
                bench-build, doc
  loom-mutants  Weaken each ordering listed in crates/*/tests/loom_mutants.txt
                and check that its loom model fails
  bench         Run the criterion benches and compare ours against the anchors
  test-all-arches
                Run the tests cross-compiled for arm64, riscv64, ppc64le, s390x
                and armv7 under qemu-user (installs what it needs)
  miri          Run the tests under Miri (nightly; strict provenance, tree borrows)
  tsan          Run the threaded and stress tests under ThreadSanitizer (nightly)
  install-redis Make sure redis-server is installed for the Redis tests and
                benches (installs Debian's package; ci and bench do it too)
  install-protoc
                Make sure protoc is installed for acqrel-flagd's tests (its
                flagd provider needs it to build; ci and bench do it too)
  install-node-clients
                Make sure node and npm are installed and npm ci the JavaScript
                flagd provider acqrel-flagd's tests drive (ci does it too)
  help          Print this help

Run `cargo xtask <TASK> --help` for the options of a task.
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the task name and hands the remaining arguments to its module.
fn run() -> Result<(), DynError> {
    let args = env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument is not valid UTF-8: {a:?}"))
        })
        .collect::<Result<Vec<String>, String>>()?;
    let Some((task, rest)) = args.split_first() else {
        eprint!("{HELP}");
        return Err("no task given".into());
    };
    match task.as_str() {
        "ci" => ci::run(rest),
        "loom-mutants" => loom_mutants::run(rest),
        "bench" => bench::run(rest),
        "test-all-arches" => test_all_arches::run(rest),
        "miri" => miri::run(rest),
        "tsan" => tsan::run(rest),
        "install-redis" => redis::run(rest),
        "install-protoc" => protoc::run(rest),
        "install-node-clients" => node::run(rest),
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown task `{other}` (see `cargo xtask --help`)").into()),
    }
}

/// Whether `arg` asks for help.
fn is_help(arg: &str) -> bool {
    arg == "-h" || arg == "--help"
}

/// Reads the value of option `name` from `arg` (`--name=value`) or, when
/// `arg` is exactly `--name`, from the next argument in `rest`.
///
/// Returns `None` if `arg` is not this option.
///
/// # Errors
///
/// If the option is given without a value.
fn option_value<'a>(
    name: &str,
    arg: &'a str,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Result<Option<&'a str>, DynError> {
    if arg == name {
        match rest.next() {
            Some(value) => Ok(Some(value)),
            None => Err(format!("`{name}` needs a value").into()),
        }
    } else if let Some(value) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
        Ok(Some(value))
    } else {
        Ok(None)
    }
}

/// Owned `String`s from string literals (as `env::args` gives, in tests).
fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&a| a.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values() {
        let args = ["--skip".to_owned(), "doc".to_owned()];
        let mut it = args.iter();
        let first = it.next().unwrap();
        assert_eq!(option_value("--skip", first, &mut it).unwrap(), Some("doc"));
        assert!(it.next().is_none());

        let mut none = [].iter();
        assert_eq!(
            option_value("--skip", "--skip=fmt", &mut none).unwrap(),
            Some("fmt")
        );
        assert_eq!(option_value("--skip", "--skipx", &mut none).unwrap(), None);
        assert_eq!(option_value("--skip", "--only", &mut none).unwrap(), None);
        let err = option_value("--skip", "--skip", &mut none).unwrap_err();
        assert_eq!(err.to_string(), "`--skip` needs a value");
    }
}
