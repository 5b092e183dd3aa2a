//! The change stream (`GET /ofrep/v1/events`, OFREP ADR-0008) end to end:
//! the real binary, a flag file edited on disk, and streams read over
//! plain sockets.
//!
//! Event ids and `etag`s are `<instance>-<generation>`; the bulk ETag is
//! `"<instance>-<generation>-<hash of the request body>"`. The tests read
//! the generation from the tag and from `/metrics`, and never wait for a
//! time: a block is read when the server writes it, and every wait is an
//! `eventually` bounded by the harness's patience.

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use common::{Daemon, EventStream, PATIENCE, SseBlock, TempDir, eventually};

// ===== helpers =====

/// A flag file with one string flag, `banner`, whose value is `value`.
fn flag_file(value: &str) -> String {
    format!(
        r#"{{"flags": {{"banner": {{"state": "ENABLED", "variants": {{"v": "{value}"}}, "defaultVariant": "v"}}}}}}"#
    )
}

/// The same flags as [`flag_file`], laid out differently: a new content
/// hash (so the file reloads) with nothing changed in the flags.
fn flag_file_reformatted(value: &str) -> String {
    format!(
        "{{\n  \"flags\": {{\n    \"banner\": {{\n      \"state\": \"ENABLED\",\n      \"variants\": {{ \"v\": \"{value}\" }},\n      \"defaultVariant\": \"v\"\n    }}\n  }}\n}}\n"
    )
}

/// A directory with `flags.json` holding [`flag_file`]`("a")`.
fn flags_dir(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("flags.json", &flag_file("a"));
    dir
}

/// The bulk ETag for an empty context, as sent (quoted).
fn bulk_etag(daemon: &Daemon) -> String {
    let answer = daemon.post("/ofrep/v1/evaluate/flags", r#"{"context": {}}"#);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer
        .header("etag")
        .expect("the bulk answer has an ETag")
        .to_owned()
}

/// The configuration part of a bulk ETag: `"<instance>-<generation>-<hash>"`
/// to `<instance>-<generation>`.
fn config_part(etag: &str) -> String {
    let inner = etag
        .strip_prefix('"')
        .and_then(|tag| tag.strip_suffix('"'))
        .unwrap_or_else(|| panic!("a strong ETag is quoted: {etag}"));
    let (config, hash) = inner.rsplit_once('-').expect("the ETag ends in -<hash>");
    assert!(
        !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{etag}"
    );
    config.to_owned()
}

/// The generation an event id (`<instance>-<generation>`) names.
fn generation_of(tag: &str) -> u64 {
    let (_, generation) = tag
        .rsplit_once('-')
        .unwrap_or_else(|| panic!("not <instance>-<generation>: {tag}"));
    generation
        .parse()
        .unwrap_or_else(|_| panic!("not a generation: {tag}"))
}

/// The generation `/metrics` reports.
fn served_generation(daemon: &Daemon) -> u64 {
    daemon.metric("acqrel_flagd_flag_set_generation") as u64
}

/// Reloads of `file` that `/metrics` counts as applied.
fn applied_reloads(daemon: &Daemon, file: &Path) -> u64 {
    let sample = format!(
        "acqrel_flagd_reloads_total{{file=\"{}\",outcome=\"applied\"}}",
        file.display()
    );
    daemon.metric(&sample) as u64
}

/// Writes `text` to `file` and waits until the server serves a newer
/// generation than `before`; returns it.
fn edit(dir: &TempDir, file: &str, daemon: &Daemon, text: &str, before: u64) -> u64 {
    dir.write(file, text);
    let mut now = before;
    eventually("the edit to be served", || {
        now = served_generation(daemon);
        now > before
    });
    now
}

/// Opens a stream and reads its opening block.
fn open(daemon: &Daemon, last_event_id: Option<&str>) -> EventStream {
    let mut stream = EventStream::open(daemon.ofrep, last_event_id);
    assert_eq!(stream.status, 200);
    let opening = stream.next().expect("the opening block");
    assert_eq!(
        opening.comments,
        ["acqrel-flagd change stream"],
        "{opening:?}"
    );
    assert!(opening.data.is_none(), "{opening:?}");
    stream
}

/// Checks that `block` is a well-formed `refetchEvaluation` event and
/// returns its id.
fn refetch_event(block: &SseBlock) -> String {
    assert_eq!(block.event.as_deref(), Some("message"), "{block:?}");
    let id = block
        .id
        .clone()
        .unwrap_or_else(|| panic!("an event has an id: {block:?}"));
    let data: serde_json::Value = serde_json::from_str(block.data.as_deref().expect("data"))
        .unwrap_or_else(|e| panic!("data is JSON ({e}): {block:?}"));
    assert_eq!(data["type"], "refetchEvaluation", "{block:?}");
    assert_eq!(
        data["etag"].as_str(),
        Some(id.as_str()),
        "the etag is the event id: {block:?}"
    );
    id
}

fn is_keep_alive(block: &SseBlock) -> bool {
    block.data.is_none() && block.comments == ["keep-alive"]
}

/// Reads `stream` on a thread of its own, handing each block over; the
/// channel disconnects when the stream ends.
fn read_on_a_thread(mut stream: EventStream) -> mpsc::Receiver<SseBlock> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Some(block) = stream.next() {
            if tx.send(block).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next event (data block) from a stream read on a thread.
fn recv_event(blocks: &mpsc::Receiver<SseBlock>) -> SseBlock {
    loop {
        let block = blocks
            .recv_timeout(PATIENCE)
            .expect("an event within the patience");
        if block.data.is_some() {
            return block;
        }
    }
}

// ===== tests =====

#[test]
fn a_file_edit_sends_refetch_evaluation_naming_the_new_generation() {
    let dir = flags_dir("sse-edit");
    let daemon = Daemon::ready(&[&dir.path("flags.json")], &[]);
    let mut stream = open(&daemon, None);
    assert_eq!(
        stream
            .headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| v.as_str()),
        Some("text/event-stream")
    );
    let before = config_part(&bulk_etag(&daemon));

    dir.write("flags.json", &flag_file("b"));
    let block = stream.next_event().expect("an event after the edit");
    let id = refetch_event(&block);

    assert_ne!(id, before, "the event names a new generation");
    assert!(generation_of(&id) > generation_of(&before));
    let after = config_part(&bulk_etag(&daemon));
    assert_eq!(
        id, after,
        "the event's etag is the config part of the bulk ETag now"
    );
    assert_eq!(generation_of(&id), served_generation(&daemon));
}

#[test]
fn an_edit_that_changes_nothing_sends_no_event() {
    // `base.json` defines `banner`, which `override.json` (the later
    // `--uri`) defines too: the served `banner` is override's.
    let dir = TempDir::new("sse-noop");
    let base = dir.write("base.json", &flag_file("a"));
    let overriding = dir.write("override.json", &flag_file("z"));
    let daemon = Daemon::ready(&[&base, &overriding], &["--sse-keep-alive", "1"]);
    let mut stream = open(&daemon, None);
    let etag = bulk_etag(&daemon);
    let generation = served_generation(&daemon);

    // Two edits of base.json that change nothing served: a new layout of
    // the same flags (the file reloads, its flags do not change), and a
    // new value of the flag override.json wins (the file's flags change,
    // the merge does not).
    for (n, text) in [(1, flag_file_reformatted("a")), (2, flag_file("b"))] {
        dir.write("base.json", &text);
        eventually("base.json to reload", || {
            applied_reloads(&daemon, &base) == n
        });
    }
    // The stream is live and says nothing else: a keep-alive, no event.
    let block = stream.next().expect("a keep-alive");
    assert!(
        is_keep_alive(&block),
        "no event for an edit that changes nothing: {block:?}"
    );
    assert_eq!(bulk_etag(&daemon), etag, "the ETag stays");
    assert_eq!(served_generation(&daemon), generation);

    // The reload counter moves before the merge runs; a real edit of the
    // same file is merged after the no-op ones (one reloader thread per
    // file), so had a no-op published, the real edit would be two or more
    // generations ahead (and its event would say so).
    let real = flag_file("b").replace(r#""banner""#, r#""extra""#);
    let after = edit(&dir, "base.json", &daemon, &real, generation);
    assert_eq!(after, generation + 1, "only the real edit published");
    let event = stream.next_event().expect("the real edit's event");
    assert_eq!(generation_of(&refetch_event(&event)), generation + 1);
}

#[test]
fn an_idle_stream_gets_keep_alive_comments() {
    let dir = flags_dir("sse-keep-alive");
    let daemon = Daemon::ready(&[&dir.path("flags.json")], &["--sse-keep-alive", "1"]);
    let mut stream = open(&daemon, None);
    for _ in 0..2 {
        // Without keep-alives the read would wait out the patience.
        let block = stream.next().expect("a keep-alive");
        assert!(is_keep_alive(&block), "{block:?}");
    }
}

#[test]
fn last_event_id_current_gets_nothing_older_or_foreign_gets_one_event_at_once() {
    let dir = flags_dir("sse-last-event-id");
    let daemon = Daemon::ready(&[&dir.path("flags.json")], &["--sse-keep-alive", "1"]);
    let old = config_part(&bulk_etag(&daemon));
    let current_generation = edit(
        &dir,
        "flags.json",
        &daemon,
        &flag_file("b"),
        generation_of(&old),
    );
    let current = config_part(&bulk_etag(&daemon));
    assert_eq!(generation_of(&current), current_generation);

    // The current id: the stream starts quiet (the next block is a
    // keep-alive; a catch-up event would come first, in the opening).
    let mut up_to_date = open(&daemon, Some(&current));
    let block = up_to_date.next().expect("a keep-alive");
    assert!(
        is_keep_alive(&block),
        "no catch-up for the current id: {block:?}"
    );

    let (instance, _) = current.rsplit_once('-').unwrap();
    let foreign_instance = format!("{instance}0-{current_generation}");
    for stale in [old.as_str(), foreign_instance.as_str(), "not-an-id"] {
        let mut stream = open(&daemon, Some(stale));
        // At once: the block right after the opening, before any
        // keep-alive.
        let block = stream.next().expect("the catch-up event");
        assert!(
            block.data.is_some(),
            "Last-Event-ID {stale:?} gets an event at once: {block:?}"
        );
        assert_eq!(refetch_event(&block), current, "Last-Event-ID {stale:?}");
    }
}

#[test]
fn a_client_that_does_not_read_holds_up_neither_reloads_nor_other_streams() {
    let dir = flags_dir("sse-slow");
    let file = dir.path("flags.json");
    let daemon = Daemon::ready(&[&file], &[]);
    let mut slow = open(&daemon, None);
    let fast = read_on_a_thread(open(&daemon, None));

    const EDITS: u64 = 8;
    let first = served_generation(&daemon);
    let mut generation = first;
    for n in 0..EDITS {
        // The generation moves and the reading stream hears of it while
        // `slow` reads nothing.
        generation = edit(
            &dir,
            "flags.json",
            &daemon,
            &flag_file(&format!("v{n}")),
            generation,
        );
        let mut heard = 0;
        while heard < generation {
            heard = generation_of(&refetch_event(&recv_event(&fast)));
        }
        assert_eq!(
            heard, generation,
            "the reading stream hears each generation"
        );
    }
    assert_eq!(applied_reloads(&daemon, &file), EDITS);

    // Now `slow` reads: events in order, none repeated, none invented,
    // the last naming the newest generation. Its events were written into
    // the socket as they came: on loopback the kernel takes hundreds of
    // KiB from a client that reads nothing (more than 190 KiB after 10 s
    // of 1 ms keep-alives, and still taking), so the queue of one event
    // only coalesces once a client has been silent far longer than a test
    // may take; what this test can see is that reloads and the reading
    // stream never waited for `slow`, and that `slow` ends up current.
    let mut seen = Vec::new();
    while seen.last() != Some(&generation) {
        let id = refetch_event(&slow.next_event().expect("the slow stream's events"));
        seen.push(generation_of(&id));
    }
    assert!(seen.len() as u64 <= EDITS, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "strictly newer each time: {seen:?}"
    );
    assert!(seen[0] > first, "{seen:?}");
}

#[test]
fn max_sse_streams_refuses_the_next_with_503_until_one_closes() {
    let dir = flags_dir("sse-max");
    let daemon = Daemon::ready(&[&dir.path("flags.json")], &["--max-sse-streams", "3"]);
    let mut streams: Vec<EventStream> = (0..3).map(|_| open(&daemon, None)).collect();
    assert_eq!(daemon.metric("acqrel_flagd_sse_streams"), 3.0);

    let refused = EventStream::open(daemon.ofrep, None);
    assert_eq!(refused.status, 503);
    let retry_after = refused
        .headers
        .iter()
        .find(|(n, _)| n == "retry-after")
        .map(|(_, v)| v.clone())
        .expect("a 503 for streams carries Retry-After");
    assert!(
        retry_after.parse::<u64>().is_ok_and(|secs| secs >= 1),
        "{retry_after:?}"
    );
    drop(refused);
    assert_eq!(
        daemon.metric("acqrel_flagd_sse_streams"),
        3.0,
        "a refused stream holds no slot"
    );

    // Closing a stream's socket frees its slot once the server notices.
    drop(streams.pop());
    eventually("the closed stream's slot to be given back", || {
        daemon.metric("acqrel_flagd_sse_streams") == 2.0
    });
    streams.push(open(&daemon, None));
    assert_eq!(daemon.metric("acqrel_flagd_sse_streams"), 3.0);
    let refused = EventStream::open(daemon.ofrep, None);
    assert_eq!(refused.status, 503, "full again");
}

#[test]
fn sigterm_ends_the_streams_and_exits_0() {
    let dir = flags_dir("sse-sigterm");
    // A grace period longer than the patience: the streams end (and the
    // process exits) within it only if they end by themselves rather than
    // being aborted after the grace period. Keep-alives every second keep
    // a stream that does not end from ever going quiet for long.
    let mut daemon = Daemon::ready(
        &[&dir.path("flags.json")],
        &["--shutdown-grace", "60", "--sse-keep-alive", "1"],
    );
    let streams: Vec<_> = (0..2)
        .map(|_| read_on_a_thread(open(&daemon, None)))
        .collect();
    daemon.signal("TERM");
    let deadline = Instant::now() + PATIENCE;
    for blocks in &streams {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match blocks.recv_timeout(left) {
                Ok(block) => assert!(block.data.is_none(), "no event on shutdown: {block:?}"),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the stream did not end within {PATIENCE:?}")
                }
            }
        }
    }
    let status = daemon.wait();
    assert!(status.success(), "{status:?}");
}
