//! Hot-reload configuration: `acqrel_config::HotConfig::get` beside the
//! hand-rolled version, an `arc_swap::ArcSwap` that a reload loop stores
//! into.
//!
//! Each iteration reads the current config and one field of it through
//! `black_box`. The config is the same small struct on both sides (a few
//! `u64`s and a `String`), loaded from the same kind of JSON file.
//!
//! Groups (one per scenario):
//!
//! - `config/read_no_writer`: one reader, no reloads.
//! - `config/read_with_reloads`: one reader while one background thread
//!   reloads nonstop. Both sides do the whole reload: write a new version of
//!   the file, read it back, parse it and publish it. For `HotConfig` that is
//!   a file write and `reload_now` (its file watch is off, so only these
//!   reloads happen); for `ArcSwap` it is a file write, `fs::read`,
//!   `serde_json::from_slice` and `store`. Publishing at the rate a real
//!   reload can, rather than storing prebuilt values nonstop, is what a
//!   config's readers meet; `benches/snapshot.rs` measures the nonstop case.
//!   Each benchmark starts its own writer on its own file before measuring
//!   and stops and joins it before the next one starts.
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use acqrel_benches::BackgroundWriter;
use acqrel_config::{HotConfig, ReloadOutcome};
use arc_swap::ArcSwap;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

type Group<'a> = BenchmarkGroup<'a, WallTime>;

// ===== Config: the value being published =====

/// A small config. Readers read `timeout_ms`; the other fields give it a
/// realistic size and parsing cost.
#[derive(serde::Serialize, serde::Deserialize)]
struct Config {
    generation: u64,
    max_connections: u64,
    timeout_ms: u64,
    retries: u64,
    name: String,
}

impl Config {
    /// The file content of the `generation`-th version.
    fn json(generation: u64) -> Vec<u8> {
        let config = Config {
            generation,
            max_connections: 64 + generation % 8,
            timeout_ms: 1_000 + generation % 100,
            retries: 3,
            name: format!("config-{generation}"),
        };
        serde_json::to_vec(&config).expect("a Config always serializes")
    }

    /// Parses a version written by [`Config::json`].
    fn parse(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).expect("the bench wrote valid JSON")
    }
}

// ===== Files =====

/// A config file alone in a fresh directory under the system's temporary
/// directory (so no other benchmark's writes reach it), removed on drop.
struct ConfigFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ConfigFile {
    /// Creates the directory and writes generation 0 into the file.
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("acqrel-bench-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create the bench's directory");
        let path = dir.join("config.json");
        write(&path, 0);
        Self { dir, path }
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes the `generation`-th version to `path`.
fn write(path: &Path, generation: u64) {
    std::fs::write(path, Config::json(generation)).expect("cannot write the config file");
}

// ===== Scenarios =====

#[derive(Clone, Copy)]
enum Scenario {
    NoWriter,
    WithReloads,
}

impl Scenario {
    fn group_id(self) -> &'static str {
        match self {
            Self::NoWriter => "config/read_no_writer",
            Self::WithReloads => "config/read_with_reloads",
        }
    }

    /// Starts this scenario's writer: none, or one thread that writes the
    /// next version to `path` and then calls `reload` with the path, over and
    /// over until the returned guard is dropped.
    fn writer<C>(
        self,
        cell: &Arc<C>,
        path: &Path,
        reload: fn(&C, &Path),
    ) -> Option<BackgroundWriter>
    where
        C: Send + Sync + 'static,
    {
        match self {
            Self::NoWriter => None,
            Self::WithReloads => {
                let cell = Arc::clone(cell);
                let path = path.to_path_buf();
                let mut generation = 0;
                Some(BackgroundWriter::spawn(move || {
                    generation += 1;
                    write(&path, generation);
                    reload(&cell, &path);
                }))
            }
        }
    }
}

// ===== Benchmarks, one per function id =====

fn acqrel_hot_config_get(group: &mut Group<'_>, scenario: Scenario) {
    let file = ConfigFile::new("hot-config");
    let config = HotConfig::<Config>::builder(&file.path)
        .watch(false)
        .start()
        .expect("cannot start the config");
    let config = Arc::new(config);
    let _writer = scenario.writer(&config, &file.path, |config, _| {
        let outcome = config.reload_now().expect("the bench wrote valid JSON");
        assert!(matches!(outcome, ReloadOutcome::Applied { .. }));
    });
    let config = &*config;
    group.bench_function("acqrel::HotConfig::get", |b| {
        b.iter(|| black_box(config.get().timeout_ms));
    });
}

fn arc_swap_load(group: &mut Group<'_>, scenario: Scenario) {
    let file = ConfigFile::new("arc-swap");
    let bytes = std::fs::read(&file.path).expect("cannot read the config file");
    let cell = Arc::new(ArcSwap::from_pointee(Config::parse(&bytes)));
    let _writer = scenario.writer(&cell, &file.path, |cell, path| {
        let bytes = std::fs::read(path).expect("cannot read the config file");
        cell.store(Arc::new(Config::parse(&bytes)));
    });
    let cell = &*cell;
    group.bench_function("arc_swap::ArcSwap::load", |b| {
        b.iter(|| black_box(cell.load().timeout_ms));
    });
}

// ===== Groups =====

/// Runs every function id of one scenario in its own group, ours first.
fn read_group(c: &mut Criterion, scenario: Scenario) {
    let mut group = c.benchmark_group(scenario.group_id());
    acqrel_hot_config_get(&mut group, scenario);
    arc_swap_load(&mut group, scenario);
    group.finish();
}

fn read_no_writer(c: &mut Criterion) {
    read_group(c, Scenario::NoWriter);
}

fn read_with_reloads(c: &mut Criterion) {
    read_group(c, Scenario::WithReloads);
}

criterion_group!(benches, read_no_writer, read_with_reloads);
criterion_main!(benches);
