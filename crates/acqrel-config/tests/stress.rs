//! Stress tests: readers calling `get` in a loop while the config is
//! reloaded hundreds of times, through `reload_now` and through the
//! watcher. Every read is a whole config (its fields, which must agree,
//! never mix two versions), its generation matches its content, and no
//! reader ever sees the generation go backwards.
#![cfg(not(acqrel_loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use acqrel_config::{HotConfig, ReloadOutcome};
use acqrel_core::ManualClock;
use serde::Deserialize;

mod common;

use common::{HANG_GUARD, TempDir, scaled, wait_generation, write_atomic, write_plain};

/// Readers per run: more than the cores of a small CI machine, so that
/// reads are preempted mid-way too.
const READERS: usize = 3;

/// A config whose fields must agree: all derived from one `n`.
#[derive(Debug, Deserialize)]
struct Agreeing {
    a: u64,
    b: u64,
    sum: u64,
    list: [u64; 3],
}

/// The file content of version `n`.
fn json(n: u64) -> String {
    format!(
        r#"{{"a": {n}, "b": {n}, "sum": {}, "list": [{n}, {n}, {n}]}}"#,
        2 * n
    )
}

/// Asserts that `config`'s fields agree and that it is version
/// `generation` (every run starts from version 0 and applies 1, 2, ...).
fn assert_whole(config: &Agreeing, generation: u64) {
    let n = config.a;
    assert!(
        config.b == n && config.sum == 2 * n && config.list == [n; 3],
        "a torn config: {config:?}"
    );
    assert_eq!(n, generation, "content and generation disagree");
}

/// Sets the flag when dropped: the readers stop even if the writer panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        // Release: pairs with the readers' Acquire load, so that a reader
        // that sees the flag also sees the writer's last commit.
        self.0.store(true, Ordering::Release);
    }
}

/// Runs `writer` (which applies versions `1..=last` and returns `last`)
/// while [`READERS`] threads read `config` and check every read. Each
/// reader's final read, after the writer has finished, is version `last`.
fn with_readers(config: &HotConfig<Agreeing>, writer: impl FnOnce() -> u64) {
    let stop = AtomicBool::new(false);
    let (last, reads) = thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                s.spawn(|| {
                    let deadline = Instant::now() + HANG_GUARD;
                    let (mut seen, mut reads) = (0, 0_u64);
                    loop {
                        // Acquire: pairs with `StopOnDrop`'s Release store.
                        let stopping = stop.load(Ordering::Acquire);
                        let current = config.get();
                        assert_whole(&current, current.generation());
                        assert!(
                            current.generation() >= seen,
                            "generation went back from {seen} to {}",
                            current.generation()
                        );
                        seen = current.generation();
                        reads += 1;
                        if stopping {
                            return (seen, reads);
                        }
                        if reads % 1024 == 0 {
                            assert!(Instant::now() < deadline, "the writer hung");
                        }
                    }
                })
            })
            .collect();
        let last = {
            let _stop = StopOnDrop(&stop);
            writer()
        };
        let reads: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        (last, reads)
    });
    for (seen, count) in reads {
        assert_eq!(seen, last, "a reader's last read after the writer finished");
        assert!(count > 0);
    }
    let status = config.status();
    assert_eq!(
        (status.generation, status.reloads, status.failures),
        (last, last, 0)
    );
}

/// Hundreds of reloads through `reload_now` (no watch; a manual clock that
/// never moves keeps the reloader from reading the file too), each applied
/// as the next generation.
#[test]
fn readers_see_whole_configs_during_reload_now() {
    let reloads = scaled(1_000).max(20);
    let dir = TempDir::new("stress_reload_now");
    let path = dir.join("app.json");
    write_plain(&path, json(0));
    let config = HotConfig::<Agreeing>::builder(&path)
        .watch(false)
        .clock(ManualClock::new())
        .start()
        .unwrap();
    with_readers(&config, || {
        for n in 1..=reloads {
            write_plain(&path, json(n));
            assert_eq!(
                config.reload_now().unwrap(),
                ReloadOutcome::Applied { generation: n }
            );
        }
        reloads
    });
}

/// A hundred reloads through the watcher (editor-style saves), each waited
/// for before the next, so each is applied as the next generation.
#[test]
fn readers_see_whole_configs_during_watched_reloads() {
    let reloads = scaled(100).max(20);
    let dir = TempDir::new("stress_watched");
    let path = dir.join("app.json");
    write_atomic(&path, json(0));
    let config = HotConfig::<Agreeing>::builder(&path)
        .debounce(Duration::from_millis(20))
        .start()
        .unwrap();
    with_readers(&config, || {
        for n in 1..=reloads {
            write_atomic(&path, json(n));
            let new = wait_generation(&config, n - 1);
            assert_eq!(new.generation(), n);
            assert_whole(&new, n);
        }
        reloads
    });
}
