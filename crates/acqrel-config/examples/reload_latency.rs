//! Measures how long a saved config takes to be served: from the `rename`
//! that replaces the file until `wait_changed_timeout` returns the new
//! version.
//!
//! ```sh
//! cargo run --release -p acqrel-config --example reload_latency
//! cargo run --release -p acqrel-config --example reload_latency -- --debounce-ms 20
//! ```
//!
//! In a fresh temporary directory, it saves 50 versions the way editors and
//! deployment tools do (write a temporary file, rename it over the config),
//! each one only after the previous one is served, and prints the p50, p99
//! and maximum latency against the target `p99 <= debounce + 50 ms`. Exits
//! with 1 when the target is missed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use acqrel_config::{DEFAULT_DEBOUNCE, HotConfig};

const USAGE: &str = "\
usage: reload_latency [--debounce-ms N]

Saves 50 versions of a config (temporary file + rename) and prints how long
each took to be served, against the target p99 <= debounce + 50 ms.
  --debounce-ms N   the debounce period (default: 50)";

/// Versions saved.
const SAVES: usize = 50;
/// What the target allows on top of the debounce period.
const SLACK: Duration = Duration::from_millis(50);
/// How long one version may take before the run is abandoned.
const GIVE_UP: Duration = Duration::from_secs(10);

#[derive(serde::Deserialize)]
struct Versioned {
    version: u64,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let debounce = match args.as_slice() {
        [] => DEFAULT_DEBOUNCE,
        [flag, ms] if flag == "--debounce-ms" => match ms.parse() {
            Ok(ms) => Duration::from_millis(ms),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    match measure(debounce) {
        Ok(passed) if passed => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            eprintln!("reload_latency: {err}");
            ExitCode::from(1)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

/// Runs the measurement and prints it; `Ok(true)` when the target is met.
fn measure(debounce: Duration) -> Result<bool, Box<dyn std::error::Error>> {
    let dir = TempDir::new()?;
    let path = dir.0.join("config.json");
    std::fs::write(&path, content(0))?;
    let config = HotConfig::<Versioned>::builder(&path)
        .debounce(debounce)
        .start()?;

    let mut generation = config.generation();
    let mut latencies = Vec::with_capacity(SAVES);
    for version in 1..=SAVES as u64 {
        let tmp = dir.0.join("config.json.tmp");
        std::fs::write(&tmp, content(version))?;
        let saved = Instant::now();
        std::fs::rename(&tmp, &path)?;
        let served = config
            .wait_changed_timeout(generation, GIVE_UP)
            .ok_or_else(|| format!("version {version} was not served within {GIVE_UP:?}"))?;
        latencies.push(saved.elapsed());
        if served.version != version {
            return Err(format!("served version {}, expected {version}", served.version).into());
        }
        generation = served.generation();
    }
    drop(config);

    latencies.sort_unstable();
    let p50 = percentile(&latencies, 50);
    let p99 = percentile(&latencies, 99);
    let max = latencies[latencies.len() - 1];
    let target = debounce + SLACK;
    let passed = p99 <= target;
    println!("{SAVES} saves (temporary file + rename), debounce {debounce:?}");
    println!("p50 {p50:.1?}  p99 {p99:.1?}  max {max:.1?}");
    println!(
        "target p99 <= debounce + {SLACK:?} = {target:?}: {}",
        if passed { "PASS" } else { "FAIL" }
    );
    Ok(passed)
}

/// The file content of version `version`.
fn content(version: u64) -> String {
    format!(r#"{{"version": {version}}}"#)
}

/// The nearest-rank `p`-th percentile of sorted, non-empty `samples`.
fn percentile(samples: &[Duration], p: usize) -> Duration {
    let rank = (samples.len() * p).div_ceil(100).max(1);
    samples[rank - 1]
}

/// A fresh directory under the system's temporary directory, removed on
/// drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("acqrel-reload-latency-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
