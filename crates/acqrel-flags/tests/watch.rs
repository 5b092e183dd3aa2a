//! Feature `watch`: a `FlagStore` that follows a flag file through
//! `acqrel-config`. Reloads are driven by `reload_now` (with the file
//! watcher off and a manual clock) except in the test of the watcher
//! itself, which waits on `wait_applied_timeout`; no test sleeps.
#![cfg(feature = "watch")]

// `TempDir`, `write_atomic`, `WAIT` and `scaled`: acqrel-config's helpers
// for tests on real files.
#[path = "../../acqrel-config/tests/common/mod.rs"]
mod common;
mod flag_files;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use acqrel_core::ManualClock;
use acqrel_flags::watch::{Reason, ReloadOutcome, StartError};
use acqrel_flags::{
    Change, ErrorCode, EvaluationContext, FlagSet, FlagStore, LoadError, WatchedFlags,
};
use common::{TempDir, WAIT, scaled, write_atomic};
use serde_json::json;

use flag_files::int_file as file;

/// The value of integer flag `key` in the store, `None` if it has none.
fn value(store: &FlagStore, key: &str) -> Option<i64> {
    let r = store.resolve(key, -1_i64, &EvaluationContext::new());
    r.error_code.is_none().then_some(r.value)
}

/// Watches `path` with the file watcher off: only `reload_now` reloads.
fn start_manual(path: &Path, clock: &Arc<ManualClock>) -> WatchedFlags {
    WatchedFlags::builder(path)
        .watch(false)
        .clock(Arc::clone(clock))
        .start()
        .expect("starts")
}

/// The `LoadError` inside a refusal of JSON that is not a flag file.
fn load_error(reason: &Reason) -> &LoadError {
    match reason {
        Reason::Invalid(cause) => cause.downcast_ref::<LoadError>().expect("a LoadError"),
        other => panic!("expected a refused flag file, got {other}"),
    }
}

#[test]
fn the_initial_load_fills_a_new_store() {
    let dir = TempDir::new("flags_initial");
    let path = dir.join("flags.json");
    write_atomic(&path, file(&[("a", 1), ("b", 2)]));
    let watched = start_manual(&path, &Arc::new(ManualClock::new()));
    let store = watched.store();
    assert_eq!(store.generation(), 0);
    assert_eq!(store.snapshot().keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!((value(store, "a"), value(store, "b")), (Some(1), Some(2)));
    let status = watched.status();
    assert_eq!(
        (status.generation, status.reloads, status.failures),
        (0, 0, 0)
    );
    assert!(status.last_error.is_none());
    assert!(watched.warnings().is_empty());
}

#[test]
fn a_valid_rewrite_reaches_the_store() {
    let dir = TempDir::new("flags_rewrite");
    let path = dir.join("flags.json");
    write_atomic(&path, file(&[("a", 1), ("b", 2)]));
    let watched = start_manual(&path, &Arc::new(ManualClock::new()));
    let store = Arc::clone(watched.store());

    write_atomic(&path, file(&[("a", 10), ("c", 3)]));
    assert_eq!(
        watched.reload_now().expect("loads"),
        ReloadOutcome::Applied { generation: 1 }
    );
    assert_eq!(store.generation(), 1);
    assert_eq!(store.snapshot().keys().collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(
        (value(&store, "a"), value(&store, "c")),
        (Some(10), Some(3))
    );

    // The same content again: no new generation.
    write_atomic(&path, file(&[("a", 10), ("c", 3)]));
    assert_eq!(
        watched.reload_now().expect("loads"),
        ReloadOutcome::Unchanged { generation: 1 }
    );
    assert_eq!(store.generation(), 1);
    assert_eq!(watched.status().reloads, 1);
}

#[test]
fn a_rejected_file_keeps_the_flags_and_reports_why() {
    let dir = TempDir::new("flags_rejected");
    let path = dir.join("flags.json");
    write_atomic(&path, file(&[("a", 1)]));
    let clock = Arc::new(ManualClock::new());
    let watched = start_manual(&path, &clock);
    let store = watched.store();

    clock.advance(Duration::from_secs(5));
    write_atomic(&path, "{\"flags\": ");
    let error = watched.reload_now().expect_err("not JSON");
    assert!(
        matches!(error.reason(), Reason::Parse { line: 1, .. }),
        "{error}"
    );
    assert_eq!(error.at(), Duration::from_secs(5));
    assert_eq!((store.generation(), value(store, "a")), (0, Some(1)));

    clock.advance(Duration::from_secs(2));
    write_atomic(
        &path,
        r#"{"flags": {"a": {"state": "ENABLED", "variants": {}}}}"#,
    );
    let error = watched.reload_now().expect_err("not a flag file");
    assert_eq!(
        load_error(error.reason()).path(),
        Some("$.flags.a.variants")
    );
    assert_eq!((store.generation(), value(store, "a")), (0, Some(1)));

    write_atomic(&path, r#"{"flags": [{"key": "a"}]}"#);
    let error = watched.reload_now().expect_err("flags is not an object");
    assert_eq!(load_error(error.reason()).path(), Some("$.flags"));

    let status = watched.status();
    assert_eq!(
        (status.generation, status.reloads, status.failures),
        (0, 0, 3)
    );
    let last = status.last_error.expect("the last refusal");
    assert_eq!(load_error(last.reason()).path(), Some("$.flags"));
    assert_eq!(last.at(), Duration::from_secs(7));

    // A good file after the refusals loads.
    write_atomic(&path, file(&[("a", 2)]));
    assert_eq!(
        watched.reload_now().expect("loads"),
        ReloadOutcome::Applied { generation: 1 }
    );
    assert_eq!((store.generation(), value(store, "a")), (1, Some(2)));
}

#[test]
fn load_warnings_are_kept_and_readable() {
    let dir = TempDir::new("flags_warnings");
    let path = dir.join("flags.json");
    let broken = json!({"flags": {
        "ok": {"state": "ENABLED", "variants": {"v": 1}, "defaultVariant": "v"},
        "f": {"state": "ENABLED", "variants": {"v": 1}, "defaultVariant": "v",
              "targeting": {"$ref": "missing"}},
    }});
    write_atomic(&path, broken.to_string());
    let watched = start_manual(&path, &Arc::new(ManualClock::new()));

    let warnings = watched.warnings();
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        (warnings[0].flag_key(), warnings[0].path()),
        ("f", "$.flags.f.targeting")
    );
    // The flag loaded, and evaluates as a parse error.
    let r = watched
        .store()
        .resolve("f", 0_i64, &EvaluationContext::new());
    assert_eq!(r.error_code, Some(ErrorCode::ParseError));
    assert_eq!(value(watched.store(), "ok"), Some(1));

    write_atomic(&path, file(&[("f", 2)]));
    watched.reload_now().expect("loads");
    assert!(watched.warnings().is_empty());
    assert_eq!(value(watched.store(), "f"), Some(2));
}

#[test]
fn a_given_store_is_replaced_at_start_and_on_each_reload() {
    let dir = TempDir::new("flags_given_store");
    let path = dir.join("flags.json");
    write_atomic(&path, file(&[("from-file", 1)]));
    let store = Arc::new(FlagStore::from_set(
        FlagSet::parse(&file(&[("old", 1)])).expect("loads").0,
    ));
    let watched = WatchedFlags::builder(&path)
        .watch(false)
        .store(Arc::clone(&store))
        .start()
        .expect("starts");
    assert!(Arc::ptr_eq(watched.store(), &store));
    assert_eq!(store.generation(), 1);
    assert_eq!(store.snapshot().keys().collect::<Vec<_>>(), ["from-file"]);

    // Changes made to the store directly last until the next reload.
    store.apply([Change::Remove("from-file".to_owned())]);
    write_atomic(&path, file(&[("from-file", 2)]));
    watched.reload_now().expect("loads");
    assert_eq!(store.generation(), 3);
    assert_eq!(value(&store, "from-file"), Some(2));
}

#[test]
fn start_fails_without_a_loadable_file_unless_given_a_default() {
    let dir = TempDir::new("flags_start");
    let path = dir.join("flags.json");
    match WatchedFlags::builder(&path).watch(false).start() {
        Err(StartError::Load(error)) => {
            assert!(
                matches!(error.reason(), Reason::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
            );
        }
        other => panic!("expected a load error, got {other:?}"),
    }
    write_atomic(
        &path,
        r#"{"flags": {"a": {"state": "MAYBE", "variants": {"v": 1}}}}"#,
    );
    match WatchedFlags::builder(&path).watch(false).start() {
        Err(StartError::Load(error)) => {
            assert_eq!(load_error(error.reason()).path(), Some("$.flags.a.state"));
        }
        other => panic!("expected a load error, got {other:?}"),
    }

    // With a default, the broken file is reported and the default served.
    let default = FlagSet::parse(&file(&[("fallback", 7)])).expect("loads").0;
    let watched = WatchedFlags::builder(&path)
        .watch(false)
        .default(default)
        .start()
        .expect("starts");
    assert_eq!(value(watched.store(), "fallback"), Some(7));
    let status = watched.status();
    assert_eq!(
        (status.generation, status.failures, status.content_hash),
        (0, 1, None)
    );
    assert!(status.last_error.is_some());

    write_atomic(&path, file(&[("a", 1)]));
    assert_eq!(
        watched.reload_now().expect("loads"),
        ReloadOutcome::Applied { generation: 1 }
    );
    assert_eq!(watched.store().snapshot().keys().collect::<Vec<_>>(), ["a"]);
}

#[test]
fn the_file_watcher_reloads_on_its_own() {
    let dir = TempDir::new("flags_watcher");
    let path = dir.join("flags.json");
    write_atomic(&path, file(&[("a", 1)]));
    let watched = WatchedFlags::builder(&path)
        .debounce(Duration::ZERO)
        .start()
        .expect("starts");
    write_atomic(&path, file(&[("a", 2)]));
    let applied = watched.wait_applied_timeout(0, WAIT);
    assert!(
        applied.is_some(),
        "no reload within {WAIT:?}: {:?}",
        watched.status()
    );
    assert_eq!(value(watched.store(), "a"), Some(2));
}

#[test]
fn stop_keeps_the_flags_and_reload_now_still_applies() {
    let dir = TempDir::new("flags_stop");
    let path = dir.join("flags.json");
    write_atomic(&path, file(&[("a", 1)]));
    let watched = WatchedFlags::builder(&path).start().expect("starts");
    watched.stop();
    watched.stop(); // idempotent
    assert_eq!(value(watched.store(), "a"), Some(1));
    write_atomic(&path, file(&[("a", 2)]));
    assert_eq!(
        watched.reload_now().expect("loads"),
        ReloadOutcome::Applied { generation: 1 }
    );
    assert_eq!(value(watched.store(), "a"), Some(2));
}

/// Writers save versions 1, 2, ... of the file and reload them while the
/// file watcher reloads too: when `reload_now` returns, the store has that
/// version or a newer one, and a reader never sees the versions go back.
#[test]
fn reloads_from_many_threads_never_apply_an_older_file() {
    let dir = TempDir::new("flags_concurrent");
    let path = dir.join("flags.json");
    write_atomic(&path, file(&[("version", 0)]));
    let watched = WatchedFlags::builder(&path)
        .debounce(Duration::ZERO)
        .start()
        .expect("starts");
    let versions = i64::try_from(scaled(200)).expect("fits");
    let store = Arc::clone(watched.store());
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut last = 0;
            // Acquire: pairs with the Release store after the writer's last
            // reload, so the read after the loop sees the last version.
            while !done.load(Ordering::Acquire) {
                let seen = value(&store, "version").expect("the flag is always there");
                assert!(seen >= last, "went back from version {last} to {seen}");
                last = seen;
            }
            let seen = value(&store, "version").expect("the flag is always there");
            assert!(seen >= last, "went back from version {last} to {seen}");
            seen
        });
        let helper = s.spawn(|| {
            // Acquire: as the reader's.
            while !done.load(Ordering::Acquire) {
                watched.reload_now().expect("a whole file loads");
            }
        });
        for version in 1..=versions {
            write_atomic(&path, file(&[("version", version)]));
            watched.reload_now().expect("a whole file loads");
            let now = value(&store, "version").expect("the flag is always there");
            assert!(
                now >= version,
                "reload_now returned before version {version} was applied ({now})"
            );
        }
        // Release: pairs with the Acquire loads of the reader and the helper.
        done.store(true, Ordering::Release);
        helper.join().expect("helper");
        assert_eq!(reader.join().expect("reader"), versions);
    });
    assert_eq!(watched.status().failures, 0);
}
