//! `HotConfig` on real files in temporary directories: the ways files
//! really change (editor saves, truncate-and-write, delete and re-create,
//! Kubernetes ConfigMap symlink swaps, symlinks into other directories),
//! refusals that keep the last good config, and every way of hearing about
//! a change.
//!
//! No test sleeps a guessed time: each waits for a new generation or a
//! completed attempt with a generous bound (see `common`), or uses a
//! `ManualClock` that makes nothing due until the test moves it.
#![cfg(not(acqrel_loom))]

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant, SystemTime};

use acqrel_config::{HotConfig, Reason, ReloadOutcome, StartError};
use acqrel_core::ManualClock;
use serde::Deserialize;

mod common;

use common::{
    TempDir, WAIT, is_io, remove, scaled, wait_checks, wait_generation, wait_refused, write_atomic,
    write_plain,
};

/// A config whose content names its version.
#[derive(Debug, PartialEq, Eq, Deserialize)]
struct Cfg {
    version: u32,
    name: String,
}

impl Cfg {
    /// The config [`json`]`(version)` parses to.
    fn v(version: u32) -> Self {
        Cfg {
            version,
            name: format!("v{version}"),
        }
    }
}

/// The file content of version `version`.
fn json(version: u32) -> String {
    format!(r#"{{"version": {version}, "name": "v{version}"}}"#)
}

/// Starts a config with the default knobs, watching `path`.
fn start(path: &Path) -> HotConfig<Cfg> {
    HotConfig::builder(path)
        .start()
        .unwrap_or_else(|e| panic!("cannot start on {}: {e}", path.display()))
}

/// Starts a config that only `reload_now` reads: no watch and no polling
/// (and a manual clock that never moves, to be sure nothing comes due).
fn start_quiet(path: &Path) -> HotConfig<Cfg> {
    HotConfig::builder(path)
        .watch(false)
        .clock(ManualClock::new())
        .start()
        .unwrap_or_else(|e| panic!("cannot start on {}: {e}", path.display()))
}

/// Asserts that `config` serves version `version` as generation
/// `generation`.
fn assert_serves(config: &HotConfig<Cfg>, version: u32, generation: u64) {
    let served = config.get();
    assert_eq!(
        (&*served, served.generation()),
        (&Cfg::v(version), generation)
    );
}

/// An editor's save (write a temporary file, rename it over) replaces the
/// watched inode; each save is served as the next generation, so the watch
/// survives the replacement.
#[test]
fn rename_replace() {
    let dir = TempDir::new("rename_replace");
    let path = dir.join("app.json");
    write_atomic(&path, json(1));
    let config = start(&path);
    assert_serves(&config, 1, 0);

    write_atomic(&path, json(2));
    let new = wait_generation(&config, 0);
    assert_eq!((&*new, new.generation()), (&Cfg::v(2), 1));

    write_atomic(&path, json(3));
    let new = wait_generation(&config, 1);
    assert_eq!((&*new, new.generation()), (&Cfg::v(3), 2));

    let status = config.status();
    assert_eq!((status.reloads, status.failures), (2, 0));
    assert!(status.last_error.is_none());
}

/// A file truncated and written in two steps: the half-written content is
/// refused (the old config stays, the generation does not move), and the
/// completed file is served.
#[test]
fn truncate_then_write() {
    let dir = TempDir::new("truncate_then_write");
    let path = dir.join("app.json");
    write_atomic(&path, json(1));
    let config = start(&path);

    let full = json(2);
    let (first, rest) = full.split_at(full.len() / 2);
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.write_all(first.as_bytes()).unwrap();
    file.flush().unwrap();

    // Refused: the half (or, read between the truncation and the write, the
    // empty file); both are syntax errors.
    let status = wait_refused(&config, 0);
    let err = status.last_error.expect("a refusal is recorded");
    assert!(
        matches!(err.reason(), Reason::Parse { .. }),
        "unexpected {err:?}"
    );
    assert_eq!((status.generation, status.reloads), (0, 0));
    assert_serves(&config, 1, 0);

    file.write_all(rest.as_bytes()).unwrap();
    drop(file);
    let new = wait_generation(&config, 0);
    assert_eq!((&*new, new.generation()), (&Cfg::v(2), 1));
    assert_eq!(config.status().reloads, 1);
}

/// A deleted file is refused as missing (counted once however often it is
/// seen missing) and the old config stays; the re-created file is served.
#[test]
fn delete_then_recreate() {
    let dir = TempDir::new("delete_then_recreate");
    let path = dir.join("app.json");
    write_atomic(&path, json(1));
    let config = start(&path);

    remove(&path);
    let status = wait_refused(&config, 0);
    let err = status.last_error.expect("a refusal is recorded");
    assert!(
        is_io(err.reason(), ErrorKind::NotFound),
        "unexpected {err:?}"
    );
    assert_eq!(err.path(), path);
    assert_eq!((status.generation, status.failures), (0, 1));
    assert_serves(&config, 1, 0);

    write_atomic(&path, json(2));
    let new = wait_generation(&config, 0);
    assert_eq!((&*new, new.generation()), (&Cfg::v(2), 1));
    let status = config.status();
    assert_eq!((status.reloads, status.failures), (1, 1));
}

/// Adds the ConfigMap revision directory `dir/name` holding `app.json` of
/// version `version`.
fn configmap_revision(dir: &TempDir, name: &str, version: u32) {
    fs::create_dir(dir.join(name)).unwrap();
    write_plain(&dir.join(name).join("app.json"), json(version));
}

/// Publishes the revision `new` the way the kubelet does: a new `..data_tmp`
/// symlink renamed over `..data`, then the revision `old` removed.
fn configmap_swap(dir: &TempDir, old: &str, new: &str, version: u32) {
    configmap_revision(dir, new, version);
    symlink(new, dir.join("..data_tmp")).unwrap();
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    fs::remove_dir_all(dir.join(old)).unwrap();
}

/// The Kubernetes ConfigMap layout: `app.json -> ..data/app.json` and
/// `..data -> ..<revision>`. No event names `app.json` when `..data` is
/// swapped, yet each of two successive swaps is served.
#[test]
fn configmap_symlink_swap() {
    let dir = TempDir::new("configmap_symlink_swap");
    configmap_revision(&dir, "..2024_01", 1);
    symlink("..2024_01", dir.join("..data")).unwrap();
    symlink("..data/app.json", dir.join("app.json")).unwrap();
    let config = start(&dir.join("app.json"));
    assert_serves(&config, 1, 0);

    configmap_swap(&dir, "..2024_01", "..2024_02", 2);
    let new = wait_generation(&config, 0);
    assert_eq!((&*new, new.generation()), (&Cfg::v(2), 1));

    configmap_swap(&dir, "..2024_02", "..2024_03", 3);
    let new = wait_generation(&config, 1);
    assert_eq!((&*new, new.generation()), (&Cfg::v(3), 2));

    let status = config.status();
    assert_eq!((status.reloads, status.failures), (2, 0));
}

/// Invalid JSON is refused with its position: counted, recorded, the old
/// config served, the generation unchanged. A valid file afterwards is
/// served, and the refusal stays recorded from before that load.
#[test]
fn invalid_json_keeps_old() {
    let dir = TempDir::new("invalid_json_keeps_old");
    let path = dir.join("app.json");
    write_atomic(&path, json(1));
    let config = start(&path);
    let before = config.status();

    write_atomic(&path, "{\n  \"version\": 2,\n  \"name\": ,\n}\n");
    let status = wait_refused(&config, 0);
    let err = status.last_error.expect("a refusal is recorded");
    match err.reason() {
        Reason::Parse {
            line,
            column,
            message,
        } => {
            assert_eq!((*line, *column), (3, 11), "{message}");
            assert!(message.contains("line 3 column 11"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.path(), path);
    assert_eq!(status.failures, 1);
    assert_eq!((status.generation, status.reloads), (0, 0));
    assert_eq!(status.content_hash, before.content_hash);
    assert_serves(&config, 1, 0);

    write_atomic(&path, json(2));
    let new = wait_generation(&config, 0);
    assert_eq!((&*new, new.generation()), (&Cfg::v(2), 1));
    let status = config.status();
    assert_eq!((status.reloads, status.failures), (1, 1));
    assert_ne!(status.content_hash, before.content_hash);
    let err = status.last_error.expect("kept after a later success");
    assert!(err.at() <= status.loaded_at);
}

/// Content that parses but fails the builder's validator is refused with
/// the validator's message; the old config stays.
#[test]
fn validation_failure_keeps_old() {
    let dir = TempDir::new("validation_failure_keeps_old");
    let path = dir.join("app.json");
    write_atomic(&path, json(1));
    let config = HotConfig::<Cfg>::builder(&path)
        .validate(|c: &Cfg| {
            if c.version == 0 {
                Err("version must be positive")
            } else {
                Ok(())
            }
        })
        .start()
        .unwrap();

    write_atomic(&path, json(0));
    let status = wait_refused(&config, 0);
    let err = status.last_error.expect("a refusal is recorded");
    match err.reason() {
        Reason::Invalid(e) => assert_eq!(e.to_string(), "version must be positive"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        (status.generation, status.reloads, status.failures),
        (0, 0, 1)
    );
    assert_serves(&config, 1, 0);

    write_atomic(&path, json(2));
    let new = wait_generation(&config, 0);
    assert_eq!((&*new, new.generation()), (&Cfg::v(2), 1));
}

/// Rewriting the same bytes in place, moving the mtime, and replacing the
/// file by an identical copy are all checked and all found unchanged: no
/// new generation, no reload, no refusal.
#[test]
fn touch_without_change_keeps_generation() {
    let dir = TempDir::new("touch_without_change");
    let path = dir.join("app.json");
    let content = json(1);
    write_atomic(&path, &content);
    let config = start(&path);
    // The start schedules one check a debounce period later; the checks
    // counted below must come after this test's own changes.
    wait_checks(&config, 1);
    let before = config.status();

    // In place, without truncating: the content is the same at every moment.
    let mut file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all(content.as_bytes()).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(3600))
        .unwrap();
    drop(file);
    let checks = wait_checks(&config, before.checks + 1);

    write_atomic(&path, &content);
    wait_checks(&config, checks + 1);

    let status = config.status();
    assert_eq!(
        (status.generation, status.reloads, status.failures),
        (0, 0, 0)
    );
    assert_eq!(status.content_hash, before.content_hash);
    assert_eq!(status.loaded_at, before.loaded_at);
    assert!(status.last_error.is_none());
    assert_serves(&config, 1, 0);
}

/// Twenty writes in a burst, with the clock standing still, are read once
/// the clock moves past the debounce period: one reload, of the last
/// version.
#[test]
fn burst_of_20_writes() {
    const DEBOUNCE: Duration = Duration::from_millis(50);
    const STEP: Duration = Duration::from_millis(60);
    let dir = TempDir::new("burst_of_20_writes");
    let path = dir.join("app.json");
    write_atomic(&path, json(0));
    let clock = Arc::new(ManualClock::new());
    let config = HotConfig::<Cfg>::builder(&path)
        .debounce(DEBOUNCE)
        .clock(clock.clone())
        .start()
        .unwrap();
    // The start's own check, once the clock passes its debounce period.
    clock.advance(STEP);
    assert_eq!(wait_checks(&config, 1), 1);

    for version in 1..=20 {
        write_plain(&path, json(version));
    }
    // The writes' events make a check due one debounce period after them,
    // on a clock that does not move: none can have run.
    let status = config.status();
    assert_eq!((status.generation, status.checks), (0, 1));
    assert_serves(&config, 0, 0);

    // Move the clock until a check has read the last write (its events may
    // reach the watcher after one of the steps; each step makes the ones
    // that arrived due).
    let deadline = Instant::now() + WAIT;
    while config.get().version != 20 {
        assert!(
            Instant::now() < deadline,
            "version 20 not served within {WAIT:?}; status: {:?}",
            config.status()
        );
        let checks = config.status().checks;
        clock.advance(STEP);
        // A bounded wait, not an assertion on timing: without events due
        // at this step, the next one makes them due.
        config.wait_checked_timeout(checks, Duration::from_millis(200));
    }
    // Every check after the first step read the complete last write.
    let status = config.status();
    assert_eq!(
        (status.generation, status.reloads, status.failures),
        (1, 1, 0)
    );
    assert_serves(&config, 20, 1);
}

/// Without a file and without a default, the start fails with the missing
/// file's error.
#[test]
fn missing_at_start_without_default_fails() {
    let dir = TempDir::new("missing_without_default");
    let path = dir.join("app.json");
    match HotConfig::<Cfg>::builder(&path).start() {
        Err(StartError::Load(err)) => {
            assert!(
                is_io(err.reason(), ErrorKind::NotFound),
                "unexpected {err:?}"
            );
            assert_eq!(err.path(), path);
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Without a file but with a default, the default is served (no content
/// hash, the refusal counted); the file, once created, is served.
#[test]
fn missing_at_start_with_default_serves_default_then_file() {
    let dir = TempDir::new("missing_with_default");
    let path = dir.join("app.json");
    let config = HotConfig::<Cfg>::builder(&path)
        .default(Cfg::v(0))
        .start()
        .unwrap();
    assert_serves(&config, 0, 0);
    let status = config.status();
    assert_eq!(status.content_hash, None);
    assert_eq!(
        (status.generation, status.reloads, status.failures),
        (0, 0, 1)
    );
    let err = status.last_error.expect("the initial refusal is recorded");
    assert!(
        is_io(err.reason(), ErrorKind::NotFound),
        "unexpected {err:?}"
    );

    write_atomic(&path, json(1));
    let new = wait_generation(&config, 0);
    assert_eq!((&*new, new.generation()), (&Cfg::v(1), 1));
    let status = config.status();
    assert!(status.content_hash.is_some());
    // The file seen missing again before it appeared is the same refusal.
    assert_eq!((status.reloads, status.failures), (1, 1));
}

/// Every outcome of `reload_now`, and the rule that a refusal repeating the
/// latest one is returned again without being counted again.
#[test]
fn reload_now_outcomes() {
    let dir = TempDir::new("reload_now_outcomes");
    let path = dir.join("app.json");
    write_plain(&path, json(1));
    let config = start_quiet(&path);
    let mut calls = 0;
    let mut reload = || {
        calls += 1;
        config.reload_now()
    };

    assert_eq!(
        reload().unwrap(),
        ReloadOutcome::Unchanged { generation: 0 }
    );
    write_plain(&path, json(2));
    assert_eq!(reload().unwrap(), ReloadOutcome::Applied { generation: 1 });
    assert_eq!(
        reload().unwrap(),
        ReloadOutcome::Unchanged { generation: 1 }
    );

    // A refusal, then the same refusal again: returned, counted once.
    write_plain(&path, "{");
    let err = reload().unwrap_err();
    assert!(
        matches!(
            err.reason(),
            Reason::Parse {
                line: 1,
                column: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let again = reload().unwrap_err();
    assert_eq!(again.to_string(), err.to_string());
    assert_eq!(again.at(), err.at());
    assert_eq!(config.status().failures, 1);

    // Other bytes are another refusal.
    write_plain(&path, "[");
    assert!(matches!(
        reload().unwrap_err().reason(),
        Reason::Parse { .. }
    ));
    assert_eq!(config.status().failures, 2);

    // Back to the content served: unchanged, and the next refusal of the
    // same bad bytes is news again.
    write_plain(&path, json(2));
    assert_eq!(
        reload().unwrap(),
        ReloadOutcome::Unchanged { generation: 1 }
    );
    write_plain(&path, "[");
    assert!(reload().is_err());
    assert_eq!(config.status().failures, 3);

    // A missing file, twice: counted once.
    remove(&path);
    let err = reload().unwrap_err();
    assert!(is_io(err.reason(), ErrorKind::NotFound), "{err:?}");
    assert!(is_io(reload().unwrap_err().reason(), ErrorKind::NotFound));
    assert_eq!(config.status().failures, 4);

    write_plain(&path, json(3));
    assert_eq!(reload().unwrap(), ReloadOutcome::Applied { generation: 2 });
    assert_serves(&config, 3, 2);

    let status = config.status();
    assert_eq!(
        (status.generation, status.reloads, status.failures),
        (2, 2, 4)
    );
    // The reloader never checked: every attempt was one of these calls.
    assert_eq!(status.checks, calls);
}

/// A subscription that falls behind two reloads yields one item, the
/// newest; it ends when the handle is stopped or dropped.
#[test]
fn subscription_coalesces_and_ends() {
    let dir = TempDir::new("subscription");
    let path = dir.join("app.json");
    write_plain(&path, json(1));
    let config = start_quiet(&path);
    let mut updates = config.subscribe();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(updates.poll_recv(&mut cx).is_pending());

    write_plain(&path, json(2));
    config.reload_now().unwrap();
    write_plain(&path, json(3));
    config.reload_now().unwrap();
    let newest = pollster::block_on(updates.recv()).expect("not stopped");
    assert_eq!((&*newest, newest.generation()), (&Cfg::v(3), 2));
    // No backlog: the older reload is not delivered afterwards.
    assert!(updates.poll_recv(&mut cx).is_pending());
    // A later subscriber starts from the config served when it subscribed.
    let mut late = config.subscribe();
    assert!(late.poll_recv(&mut cx).is_pending());

    config.stop();
    assert!(pollster::block_on(updates.recv()).is_none());
    assert!(pollster::block_on(late.recv()).is_none());

    // Dropping the handle ends them too.
    let other = start_quiet(&path);
    let mut updates = other.subscribe();
    drop(other);
    assert!(pollster::block_on(updates.recv()).is_none());
}

/// Callbacks run after each change with the new config; one that panics is
/// caught, stays registered, and does not keep the others from running.
#[test]
fn on_change_runs_after_each_change_and_survives_panics() {
    let dir = TempDir::new("on_change");
    let path = dir.join("app.json");
    write_atomic(&path, json(1));
    let config = start(&path);

    let panicking_calls = Arc::new(AtomicU64::new(0));
    let panicking = config.on_change({
        let calls = panicking_calls.clone();
        move |_| {
            // Relaxed: a plain count, read after the channel below has
            // delivered the same change (which orders it).
            if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                panic!("the first change callback call panics");
            }
        }
    });
    let (tx, rx) = mpsc::channel();
    let sending = config.on_change(move |new| {
        // The test may have finished and dropped the receiver.
        let _ = tx.send((new.generation(), new.version));
    });

    write_atomic(&path, json(2));
    wait_generation(&config, 0);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (1, 2));

    write_atomic(&path, json(3));
    wait_generation(&config, 1);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (2, 3));
    // Callbacks run in registration order: the panicking one ran for both.
    assert_eq!(panicking_calls.load(Ordering::Relaxed), 2);

    assert!(config.remove_on_change(panicking));
    assert!(!config.remove_on_change(panicking));
    assert!(config.remove_on_change(sending));
}

/// Regression: the reloader thread took the generation current when it got
/// to run as the last one announced, so a `reload_now` committed between
/// `start` returning and the thread running was never announced, and a
/// callback waiting for it waited forever. Each round races a reload
/// against a fresh thread's start.
#[test]
fn on_change_hears_a_reload_now_made_before_the_reloader_thread_runs() {
    let dir = TempDir::new("announce_race");
    let path = dir.join("app.json");
    for round in 0..scaled(200) {
        write_plain(&path, json(1));
        let config = start_quiet(&path);
        let (tx, rx) = mpsc::channel();
        config.on_change(move |new| {
            let _ = tx.send((new.generation(), new.version));
        });
        write_plain(&path, json(2));
        assert_eq!(
            config.reload_now().unwrap(),
            ReloadOutcome::Applied { generation: 1 }
        );
        assert_eq!(rx.recv_timeout(WAIT), Ok((1, 2)), "round {round}");
    }
}

/// Polling without watching: the file is re-read each time the clock passes
/// the poll interval, and only then.
#[test]
fn poll_only() {
    const DEBOUNCE: Duration = Duration::from_millis(50);
    // The reloader sleeps in real time for the clock time left before the
    // next poll (at most a second) before it reads the manual clock again:
    // a short interval keeps that wait short.
    const INTERVAL: Duration = Duration::from_millis(200);
    let dir = TempDir::new("poll_only");
    let path = dir.join("app.json");
    write_atomic(&path, json(1));
    let clock = Arc::new(ManualClock::new());
    let config = HotConfig::<Cfg>::builder(&path)
        .watch(false)
        .poll_interval(INTERVAL)
        .debounce(DEBOUNCE)
        .clock(clock.clone())
        .start()
        .unwrap();
    // Without a watch the start schedules no check of its own: the first
    // read is the first poll, of unchanged content.
    assert_eq!(config.status().checks, 0);
    clock.advance(INTERVAL);
    assert_eq!(wait_checks(&config, 1), 1);
    assert_serves(&config, 1, 0);

    for version in 2..=3 {
        let since = config.generation();
        write_atomic(&path, json(version));
        // Nothing watches, and the clock has not reached the next poll.
        assert_eq!(config.status().checks, u64::from(version) - 1);
        assert_serves(&config, version - 1, since);
        clock.advance(INTERVAL);
        let new = wait_generation(&config, since);
        assert_eq!((&*new, new.generation()), (&Cfg::v(version), since + 1));
        // The poll's check is counted just after its commit; one check per
        // step of the clock.
        assert_eq!(wait_checks(&config, version.into()), u64::from(version));
    }
}

/// A symlink to a file in another directory: editing the target in place
/// is seen through the target directory's watch.
#[test]
fn symlink_to_other_directory() {
    let dir_a = TempDir::new("symlink_a");
    let dir_b = TempDir::new("symlink_b");
    let real = dir_b.join("real.json");
    write_atomic(&real, json(1));
    let link = dir_a.join("app.json");
    symlink(&real, &link).unwrap();
    assert!(real.is_absolute());
    let config = start(&link);
    assert_eq!(config.path(), link);
    assert_serves(&config, 1, 0);

    for version in 2..=3 {
        let since = config.generation();
        write_plain(&real, json(version));
        // A read between truncation and write is refused; the next event
        // brings the complete file.
        let new = wait_generation(&config, since);
        assert_eq!((&*new, new.generation()), (&Cfg::v(version), since + 1));
    }
}
