//! Hot reload through the running binary: every way a file gets replaced
//! is picked up, a broken file is refused while the last good flags keep
//! serving, the bulk ETag changes exactly when the served flags do, and
//! several files merge with the later one winning.
//!
//! Every daemon here runs with the harness's `--debounce-ms 20`; every
//! wait polls the server's answers or its counters.

mod common;

use std::path::Path;

use common::{Daemon, HttpResponse, TempDir, eventually, request};
use serde_json::{Value as Json, json};

/// A flag file of enabled flags, each with one variant `v` holding the
/// JSON text given.
fn flags(entries: &[(&str, &str)]) -> String {
    let flags: Vec<String> = entries
        .iter()
        .map(|(key, value)| {
            format!(r#""{key}": {{"state": "ENABLED", "variants": {{"v": {value}}}, "defaultVariant": "v"}}"#)
        })
        .collect();
    format!(r#"{{"flags": {{{}}}}}"#, flags.join(", "))
}

/// The value `key` evaluates to (with no context).
fn value(daemon: &Daemon, key: &str) -> Json {
    let answer = daemon.post(
        &format!("/ofrep/v1/evaluate/flags/{key}"),
        r#"{"context": {}}"#,
    );
    assert_eq!(answer.status, 200, "{key}: {}", answer.text());
    answer.json()["value"].clone()
}

/// `reloads_total` of `file` for `outcome` (`applied` or `refused`).
fn reloads(daemon: &Daemon, file: &Path, outcome: &str) -> f64 {
    daemon.metric(&format!(
        "acqrel_flagd_reloads_total{{file=\"{}\",outcome=\"{outcome}\"}}",
        file.display()
    ))
}

fn generation(daemon: &Daemon) -> f64 {
    daemon.metric("acqrel_flagd_flag_set_generation")
}

/// The bulk evaluation (always the same body, so the ETag's request part
/// stays the same), with `If-None-Match` when given.
fn bulk(daemon: &Daemon, if_none_match: Option<&str>) -> HttpResponse {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(tag) = if_none_match {
        headers.push(("If-None-Match", tag));
    }
    request(
        daemon.ofrep,
        "POST",
        "/ofrep/v1/evaluate/flags",
        &headers,
        br#"{"context": {}}"#,
    )
}

fn etag(response: &HttpResponse) -> String {
    response.header("etag").expect("an ETag").to_owned()
}

/// The value of `key` in a bulk answer.
fn bulk_value(response: &HttpResponse, key: &str) -> Json {
    let body = response.json();
    body["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .find(|flag| flag["key"] == key)
        .unwrap_or_else(|| panic!("{key} not in {body}"))["value"]
        .clone()
}

// ===== the ways a file changes =====

#[test]
fn an_edit_in_place_is_picked_up() {
    let dir = TempDir::new("edit-in-place");
    let file = dir.write("flags.json", &flags(&[("color", r#""red""#)]));
    let daemon = Daemon::ready(&[&file], &[]);
    assert_eq!(value(&daemon, "color"), "red");
    // Truncated and rewritten through the same inode (no rename).
    std::fs::write(&file, flags(&[("color", r#""blue""#)])).expect("edit the file");
    eventually("the edit to be served", || {
        value(&daemon, "color") == "blue"
    });
}

#[test]
fn a_file_renamed_over_the_flag_file_is_picked_up() {
    let dir = TempDir::new("rename-over");
    let file = dir.write("flags.json", &flags(&[("color", r#""red""#)]));
    let daemon = Daemon::ready(&[&file], &[]);
    assert_eq!(value(&daemon, "color"), "red");
    // A new inode renamed into place, as editors and deploy tools do.
    dir.write("flags.json", &flags(&[("color", r#""green""#)]));
    eventually("the renamed file to be served", || {
        value(&daemon, "color") == "green"
    });
}

#[test]
fn a_deleted_then_recreated_file_is_picked_up_and_the_old_flags_serve_meanwhile() {
    let dir = TempDir::new("delete-recreate");
    let file = dir.write("flags.json", &flags(&[("color", r#""red""#)]));
    let daemon = Daemon::ready(&[&file], &[]);
    std::fs::remove_file(&file).expect("delete the file");
    // The deletion is seen (the missing file refused) before the file
    // comes back, so this is not just one more rewrite.
    eventually("the deletion to be refused", || {
        reloads(&daemon, &file, "refused") == 1.0
    });
    assert_eq!(
        value(&daemon, "color"),
        "red",
        "the last good flags keep serving"
    );
    std::fs::write(&file, flags(&[("color", r#""yellow""#)])).expect("recreate the file");
    eventually("the recreated file to be served", || {
        value(&daemon, "color") == "yellow"
    });
}

#[test]
fn a_broken_edit_is_refused_and_a_fixed_edit_after_it_is_applied() {
    let dir = TempDir::new("broken-edit");
    let file = dir.write("flags.json", &flags(&[("color", r#""red""#)]));
    let daemon = Daemon::ready(&[&file], &[]);
    let served = generation(&daemon);
    // Valid JSON, not a flag file: a state flagd does not have.
    dir.write(
        "flags.json",
        &flags(&[("color", r#""blue""#)]).replace("ENABLED", "ON"),
    );
    eventually("the broken edit to be refused", || {
        reloads(&daemon, &file, "refused") == 1.0
    });
    assert_eq!(
        value(&daemon, "color"),
        "red",
        "the last good flags keep serving"
    );
    assert_eq!(
        generation(&daemon),
        served,
        "a refused file published nothing"
    );
    assert_eq!(
        daemon.manage("/readyz").status,
        200,
        "a refusal does not make the server unready"
    );
    assert_eq!(reloads(&daemon, &file, "applied"), 0.0);

    dir.write("flags.json", &flags(&[("color", r#""blue""#)]));
    eventually("the fixed edit to be served", || {
        value(&daemon, "color") == "blue"
    });
    assert_eq!(reloads(&daemon, &file, "applied"), 1.0);
    assert_eq!(reloads(&daemon, &file, "refused"), 1.0);
    assert_eq!(generation(&daemon), served + 1.0);
}

// ===== ETags across reloads =====

#[test]
fn the_bulk_etag_changes_when_a_reload_changes_a_flag_and_only_then() {
    let dir = TempDir::new("etag");
    let base = dir.write(
        "base.json",
        &flags(&[("shadowed", "1"), ("plain", r#""one""#)]),
    );
    let top = dir.write("top.json", &flags(&[("shadowed", "2")]));
    let daemon = Daemon::ready(&[&base, &top], &[]);

    let first = bulk(&daemon, None);
    assert_eq!(first.status, 200, "{}", first.text());
    let e1 = etag(&first);
    let unchanged = bulk(&daemon, Some(&e1));
    assert_eq!(unchanged.status, 304);
    assert!(unchanged.body.is_empty());

    // A change: E1 no longer matches; the answer carries E2 and the change.
    dir.write(
        "base.json",
        &flags(&[("shadowed", "1"), ("plain", r#""two""#)]),
    );
    eventually("the edit to change the ETag", || {
        bulk(&daemon, Some(&e1)).status == 200
    });
    let changed = bulk(&daemon, Some(&e1));
    let e2 = etag(&changed);
    assert_ne!(e1, e2);
    assert_eq!(bulk_value(&changed, "plain"), "two");
    assert_eq!(bulk(&daemon, Some(&e2)).status, 304);
    let served = generation(&daemon);
    eventually("the edit to be counted", || {
        reloads(&daemon, &base, "applied") == 1.0
    });

    // Whitespace and key order only: the file is re-read and applied (its
    // counter moves), and the served set, its generation and E2 stay.
    let reordered = r#"{
        "flags": {
            "plain": {"defaultVariant": "v", "variants": {"v": "two"}, "state": "ENABLED"},
            "shadowed": {"variants": {"v": 1}, "state": "ENABLED", "defaultVariant": "v"}
        }
    }"#;
    dir.write("base.json", reordered);
    eventually("the reordered file to be applied", || {
        reloads(&daemon, &base, "applied") == 2.0
    });
    let same = bulk(&daemon, Some(&e2));
    assert_eq!(
        same.status,
        304,
        "a reload that changed nothing changed the ETag: {}",
        same.text()
    );
    assert_eq!(generation(&daemon), served);

    // The earlier file's definition of a key the later file overrides
    // changes: the merged set does not, so nothing is published.
    dir.write(
        "base.json",
        &flags(&[("shadowed", "100"), ("plain", r#""two""#)]),
    );
    eventually("the overridden edit to be applied", || {
        reloads(&daemon, &base, "applied") == 3.0
    });
    assert_eq!(bulk(&daemon, Some(&e2)).status, 304);
    assert_eq!(generation(&daemon), served);
    assert_eq!(value(&daemon, "shadowed"), 2);
    // And the later file rewritten with only its whitespace changed.
    dir.write(
        "top.json",
        &format!("\n{}\n", flags(&[("shadowed", "2")]).replace(", ", ",\n  ")),
    );
    eventually("the reformatted file to be applied", || {
        reloads(&daemon, &top, "applied") == 1.0
    });
    assert_eq!(bulk(&daemon, Some(&e2)).status, 304);
    assert_eq!(generation(&daemon), served);
}

// ===== merging =====

#[test]
fn several_files_merge_the_later_winning_and_a_key_removed_from_it_reveals_the_earlier() {
    let dir = TempDir::new("merge");
    let base = dir.write(
        "base.json",
        &flags(&[("both", r#""base""#), ("base-only", "1")]),
    );
    let top = dir.write(
        "top.json",
        &flags(&[("both", r#""top""#), ("top-only", "2")]),
    );
    let daemon = Daemon::ready(&[&base, &top], &[]);
    assert_eq!(
        value(&daemon, "both"),
        "top",
        "the later --uri wins a key both define"
    );
    assert_eq!(value(&daemon, "base-only"), 1);
    assert_eq!(value(&daemon, "top-only"), 2);
    assert_eq!(daemon.metric("acqrel_flagd_flags"), 3.0);

    dir.write("top.json", &flags(&[("top-only", "2")]));
    eventually("the earlier definition to be revealed", || {
        value(&daemon, "both") == "base"
    });
    assert_eq!(daemon.metric("acqrel_flagd_flags"), 3.0);
    let all = bulk(&daemon, None);
    assert_eq!(bulk_value(&all, "both"), json!("base"));

    // Removed from both: gone.
    dir.write("base.json", &flags(&[("base-only", "1")]));
    eventually("the key to be gone", || {
        daemon.post("/ofrep/v1/evaluate/flags/both", "{}").status == 404
    });
    assert_eq!(daemon.metric("acqrel_flagd_flags"), 2.0);
}
