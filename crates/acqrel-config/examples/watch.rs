//! Watches a JSON file and prints every config it serves and every refused
//! edit, with its reason.
//!
//! ```sh
//! cargo run -p acqrel-config --example watch -- config.json
//! cargo run -p acqrel-config --example watch -- config.json --exit-after 3
//! ```
//!
//! Edit the file in another terminal: save it, break it, rename another file
//! over it, delete it. Each new config is printed once, with its generation;
//! each new refusal is printed once, with why the last good config is still
//! served. Runs until Ctrl-C, or until `--exit-after N` changes and refusals
//! have been printed.

use std::process::ExitCode;
use std::time::Duration;

use acqrel_config::{HotConfig, Status};
use serde_json::Value;

const USAGE: &str = "\
usage: watch <config.json> [--exit-after N]

Prints the JSON config served from <config.json> (null while the file is
missing or refused), then every new config and every refused edit.
  --exit-after N   exit after N changes and refusals (default: run until Ctrl-C)";

/// How long one wait lasts before the loop waits again; any value works, a
/// wait returns as soon as a reload attempt completes.
const WAIT: Duration = Duration::from_secs(3600);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((path, exit_after)) = parse_args(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let config = match HotConfig::<Value>::builder(&path)
        .default(Value::Null)
        .start()
    {
        Ok(config) => config,
        Err(err) => {
            eprintln!("watch: {err}");
            return ExitCode::FAILURE;
        }
    };

    let status = config.status();
    println!("watching {}", config.path().display());
    if status.content_hash.is_none() {
        // The builder's default is served: the first load was refused.
        let why = status
            .last_error
            .as_ref()
            .map_or_else(String::new, |err| format!(": {}", err.reason()));
        println!("no usable config yet{why}; serving the default (null)");
    }
    print_config(&config);

    let mut shown_generation = config.generation();
    let mut shown_failures = status.failures;
    let mut checks = status.checks;
    let mut shown = 0;
    while exit_after.is_none_or(|limit| shown < limit) {
        let Some(now) = config.wait_checked_timeout(checks, WAIT) else {
            continue;
        };
        checks = now;
        if config.generation() > shown_generation {
            shown_generation = print_config(&config);
            shown += 1;
        }
        let status = config.status();
        if status.failures > shown_failures {
            print_refusal(&status, status.failures - shown_failures);
            shown_failures = status.failures;
            shown += 1;
        }
    }
    ExitCode::SUCCESS
}

/// The config file and the `--exit-after` limit, or `None` for a usage
/// error.
fn parse_args(args: &[String]) -> Option<(String, Option<u64>)> {
    match args {
        [path] if !path.starts_with("--") => Some((path.clone(), None)),
        [path, flag, n] if !path.starts_with("--") && flag == "--exit-after" => {
            Some((path.clone(), Some(n.parse().ok()?)))
        }
        _ => None,
    }
}

/// Prints the config served, and returns its generation.
fn print_config(config: &HotConfig<Value>) -> u64 {
    let current = config.get();
    let json = serde_json::to_string_pretty(&*current).expect("a Value always serializes");
    println!("generation {}:\n{json}", current.generation());
    current.generation()
}

/// Prints the latest refusal; `new` refusals happened since the last one
/// printed (they can arrive faster than this loop looks).
fn print_refusal(status: &Status, new: u64) {
    let Some(err) = &status.last_error else {
        return;
    };
    let more = if new > 1 {
        format!(" (latest of {new})")
    } else {
        String::new()
    };
    println!(
        "refused{more}: {}; still serving generation {}",
        err.reason(),
        status.generation
    );
}
