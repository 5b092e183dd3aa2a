//! Stopping and dropping configs releases their threads and file
//! descriptors. One test only: it counts the threads and descriptors of the
//! whole process, so it needs the test binary to itself.
#![cfg(not(acqrel_loom))]

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use acqrel_config::{HotConfig, ReloadOutcome};

mod common;

use common::{TempDir, write_plain};

/// How many configs are started.
const CONFIGS: usize = 20;

/// The process's threads and open file descriptors.
fn census() -> (usize, usize) {
    let count = |dir| {
        fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
            .count()
    };
    (count("/proc/self/task"), count("/proc/self/fd"))
}

/// Waits up to 10 s for the census to return to `baseline`, and returns the
/// last census.
///
/// The only polling wait in these tests, and a justified one: `stop` joins
/// the reloader thread, which drops the file watcher, but notify's inotify
/// backend only asks its own event-loop thread to quit; that thread exits,
/// and closes the inotify descriptor, asynchronously, and notify offers
/// nothing to wait on.
fn settle(baseline: (usize, usize)) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = census();
        if now == baseline || Instant::now() >= deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Twenty watching configs: while they run, each has at least its reloader
/// thread and its watcher's descriptor; once half are stopped (twice: stop
/// is idempotent) and half dropped, the process is back to its threads and
/// descriptors from before. Stopped handles keep serving and reloading on
/// demand.
#[test]
fn stop_and_drop_release_threads_and_descriptors() {
    let dir = TempDir::new("lifecycle");
    let paths: Vec<_> = (0..CONFIGS)
        .map(|i| {
            let path = dir.join(format!("app{i}.json"));
            write_plain(&path, i.to_string());
            path
        })
        .collect();

    let baseline = census();
    let mut configs: Vec<HotConfig<usize>> = paths
        .iter()
        .map(|path| HotConfig::builder(path).start().unwrap())
        .collect();
    let (threads, fds) = census();
    assert!(
        threads >= baseline.0 + CONFIGS,
        "{threads} threads, from {baseline:?}"
    );
    assert!(fds >= baseline.1 + CONFIGS, "{fds} fds, from {baseline:?}");

    let stopped = configs.split_off(CONFIGS / 2);
    drop(configs);
    for (config, (i, path)) in stopped
        .iter()
        .zip(paths.iter().enumerate().skip(CONFIGS / 2))
    {
        config.stop();
        config.stop();
        assert_eq!((*config.get(), config.generation()), (i, 0));
        write_plain(path, (i + 100).to_string());
        assert_eq!(
            config.reload_now().unwrap(),
            ReloadOutcome::Applied { generation: 1 }
        );
        assert_eq!(*config.get(), i + 100);
    }

    // The stopped handles are still alive: stopping alone released
    // everything.
    assert_eq!(
        settle(baseline),
        baseline,
        "(threads, fds) after stop and drop"
    );
    drop(stopped);
    assert_eq!(
        census(),
        baseline,
        "(threads, fds) after dropping the stopped handles"
    );
}
