//! What a client sends cannot crash the server or stop it answering the
//! others: truncated and oversized bodies, contexts that are no objects or
//! nest 10,000 deep, invalid UTF-8, bytes that are not HTTP, a header that
//! never ends, and a flood of change streams that never read. Every test
//! ends with a well-behaved client on another connection being answered
//! and the process still running.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};

use common::{
    Daemon, EventStream, HttpResponse, TempDir, connect, eventually, example_flags, read_response,
    request, request_raw, send_raw, write_request,
};
use serde_json::json;

const DARK_MODE: &str = "/ofrep/v1/evaluate/flags/dark-mode";

/// A well-behaved client is answered on both ports, and the process runs.
fn assert_serving(daemon: &mut Daemon) {
    let answer = daemon.post(DARK_MODE, r#"{"context": {"targetingKey": "u1"}}"#);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["value"], true);
    assert_eq!(daemon.post("/ofrep/v1/evaluate/flags", "").status, 200);
    assert_eq!(daemon.manage("/healthz").status, 200);
    assert!(
        daemon.child.try_wait().expect("try_wait").is_none(),
        "acqrel-flagd exited"
    );
}

/// SIGTERM, then a clean exit: nothing left the server in a state that
/// keeps it from draining.
fn assert_stops_cleanly(mut daemon: Daemon) {
    daemon.signal("TERM");
    let status = daemon.wait();
    assert!(status.success(), "{status}");
}

/// A request head for `path` with `framing` (a Content-Length or
/// Transfer-Encoding line) and `Connection: close`.
fn head(method: &str, path: &str, framing: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"
    )
}

/// Everything the server sends until it closes the connection.
fn read_to_close(mut stream: TcpStream) -> String {
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .expect("the server closes the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// The status of the first response in `text`.
fn status_of(text: &str) -> Option<u16> {
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn truncated_bodies_get_400_or_nothing_and_others_are_answered() {
    let mut daemon = Daemon::ready(&[&example_flags()], &[]);
    // Content-Length 100, 10 bytes, then the client's half-close: the body
    // can never arrive, and the server says so.
    let stream = send_raw(
        daemon.ofrep,
        format!(
            "{}{{\"context\"",
            head("POST", DARK_MODE, "Content-Length: 100")
        )
        .as_bytes(),
    );
    stream.shutdown(Shutdown::Write).unwrap();
    let response = read_response(&mut BufReader::new(stream));
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        response.json()["errorDetails"]
            .as_str()
            .unwrap()
            .contains("could not be read")
    );
    // The same, closed outright (nobody to answer), on both endpoints.
    for path in [DARK_MODE, "/ofrep/v1/evaluate/flags"] {
        for _ in 0..20 {
            drop(send_raw(
                daemon.ofrep,
                format!("{}{{\"cont", head("POST", path, "Content-Length: 100")).as_bytes(),
            ));
        }
    }
    // A chunked body cut off in the middle of a chunk.
    let chunked = format!(
        "{}20\r\n{{\"context\"",
        head("POST", DARK_MODE, "Transfer-Encoding: chunked")
    );
    let stream = send_raw(daemon.ofrep, chunked.as_bytes());
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_response(&mut BufReader::new(stream)).status, 400);
    // And one that stays connected, its body never finished: the others
    // are answered meanwhile.
    let _stalled = send_raw(
        daemon.ofrep,
        format!("{}{{", head("POST", DARK_MODE, "Content-Length: 100")).as_bytes(),
    );
    assert_serving(&mut daemon);
}

#[test]
fn oversized_bodies_get_413_and_others_are_answered() {
    let mut daemon = Daemon::ready(&[&example_flags()], &["--max-body", "65536"]);
    // Declared too large, and far too large: refused on the header.
    for length in ["65537", "1099511627776"] {
        let answer = request_raw(
            daemon.ofrep,
            head("POST", DARK_MODE, &format!("Content-Length: {length}")).as_bytes(),
        );
        assert_eq!(
            answer.status,
            413,
            "Content-Length: {length}: {}",
            answer.text()
        );
    }
    // Lengths hyper cannot frame (u64::MAX is its own sentinel; the other
    // fits no u64) are refused before any handler runs.
    for length in ["18446744073709551615", "99999999999999999999999"] {
        let answer = request_raw(
            daemon.ofrep,
            head("POST", DARK_MODE, &format!("Content-Length: {length}")).as_bytes(),
        );
        assert!(
            matches!(answer.status, 400 | 413 | 431),
            "Content-Length: {length}: {}",
            answer.status
        );
    }
    // A chunked body streamed past the limit by a writer that does not
    // stop: the server answers 413 and closes (the writer may see the
    // connection reset; it ignores that).
    let mut stream = send_raw(
        daemon.ofrep,
        head("POST", DARK_MODE, "Transfer-Encoding: chunked").as_bytes(),
    );
    let mut writer = stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let chunk = format!("4000\r\n{:16384}\r\n", "");
        for _ in 0..64 {
            if writer.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut first = [0u8; 12];
    // The status line comes before the reset, if one comes at all: a
    // 413, never a 200 or a 5xx.
    if stream.read_exact(&mut first).is_ok() {
        assert_eq!(
            &first,
            b"HTTP/1.1 413",
            "{:?}",
            String::from_utf8_lossy(&first)
        );
    }
    flood.join().unwrap();
    assert_serving(&mut daemon);
    assert_stops_cleanly(daemon);
}

#[test]
fn non_object_and_deeply_nested_contexts_are_400_never_a_crash() {
    let mut daemon = Daemon::ready(&[&example_flags()], &[]);
    let invalid = |answer: HttpResponse, what: &str| {
        assert_eq!(answer.status, 400, "{what}: {}", answer.text());
        assert_eq!(answer.json()["errorCode"], "INVALID_CONTEXT", "{what}");
    };
    for body in [
        "[]",
        "42",
        "true",
        r#""ctx""#,
        r#"{"context": ["a"]}"#,
        r#"{"context": false}"#,
    ] {
        invalid(daemon.post(DARK_MODE, body), body);
        invalid(daemon.post("/ofrep/v1/evaluate/flags", body), body);
    }
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    for (what, body) in [
        ("10,000 nested arrays as the body", arrays.clone()),
        (
            "10,000 nested arrays as the context",
            format!(r#"{{"context": {arrays}}}"#),
        ),
        (
            "10,000 nested arrays in an attribute",
            format!(r#"{{"context": {{"email": {arrays}}}}}"#),
        ),
        (
            "10,000 nested objects as the context",
            format!(r#"{{"context": {objects}}}"#),
        ),
        (
            "10,000 nested objects in an attribute",
            format!(r#"{{"context": {{"email": {objects}}}}}"#),
        ),
    ] {
        invalid(
            daemon.post("/ofrep/v1/evaluate/flags/staff-tools", &body),
            what,
        );
        invalid(daemon.post("/ofrep/v1/evaluate/flags", &body), what);
    }
    // Nesting JSON allows (100 deep) reaches the targeting rule, which
    // sees an email that is no string: no match, the default.
    let nested = format!(
        r#"{{"context": {{"email": {}1{}}}}}"#,
        r#"{"a":"#.repeat(100),
        "}".repeat(100)
    );
    let answer = daemon.post("/ofrep/v1/evaluate/flags/staff-tools", &nested);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        (
            answer.json()["value"].clone(),
            answer.json()["reason"].clone()
        ),
        (json!(false), json!("DEFAULT"))
    );
    assert_serving(&mut daemon);
}

#[test]
fn invalid_utf8_in_body_path_and_headers_is_refused_or_ignored() {
    let mut daemon = Daemon::ready(&[&example_flags()], &[]);
    // In the body: not JSON.
    for body in [
        &b"\xff\xfe\xfd"[..],
        b"{\"context\": {\"name\": \"\xff\xfe\"}}",
        b"{\"context\": {\"\xc3\x28\": 1}}",
    ] {
        let mut raw = head(
            "POST",
            DARK_MODE,
            &format!("Content-Length: {}", body.len()),
        )
        .into_bytes();
        raw.extend_from_slice(body);
        let answer = request_raw(daemon.ofrep, &raw);
        assert_eq!(answer.status, 400, "{body:?}: {}", answer.text());
        assert_eq!(answer.json()["errorCode"], "INVALID_CONTEXT");
    }
    // In the path, raw: no URI (hyper's 400, and the connection closes).
    let raw = b"POST /ofrep/v1/evaluate/flags/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        status_of(&read_to_close(send_raw(daemon.ofrep, raw))),
        Some(400)
    );
    // In the path, percent-encoded: a key that is no UTF-8.
    let answer = daemon.post("/ofrep/v1/evaluate/flags/%C3%28", "");
    assert_eq!(answer.status, 400, "{}", answer.text());
    // Raw UTF-8 in the path is taken as the key it spells.
    let raw = head(
        "POST",
        "/ofrep/v1/evaluate/flags/dark-modé",
        "Content-Length: 0",
    );
    let answer = request_raw(daemon.ofrep, raw.as_bytes());
    assert_eq!(
        (answer.status, answer.json()["key"].clone()),
        (404, json!("dark-modé"))
    );
    // In headers the server reads (Host, If-None-Match, Last-Event-ID):
    // ignored, as if absent.
    let raw = b"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: \xff\r\nIf-None-Match: \"\xfe\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let answer = request_raw(daemon.ofrep, raw);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let raw = b"GET /ofrep/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: \xff\r\nConnection: close\r\n\r\n";
    let mut reader = BufReader::new(send_raw(daemon.ofrep, raw));
    let (status, _) = common::read_head(&mut reader);
    assert_eq!(status, 200);
    drop(reader);
    assert_serving(&mut daemon);
}

/// Regression: with `--ofrep-port 0`, a bulk request without a usable
/// `Host` was sent to `http://127.0.0.1:0/ofrep/v1/events` (the port asked
/// for, not the port bound).
#[test]
fn event_stream_url_without_host_named_port_zero() {
    let mut daemon = Daemon::ready(&[&example_flags()], &[]);
    let url = format!("http://{}/ofrep/v1/events", daemon.ofrep);
    for raw in [
        &b"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: \xff\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..],
        b"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: a b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"POST /ofrep/v1/evaluate/flags HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    ] {
        let answer = request_raw(daemon.ofrep, raw);
        assert_eq!(answer.status, 200, "{}", answer.text());
        let got = answer.json()["eventStreams"][0]["url"].as_str().map(str::to_owned);
        let got = got.unwrap_or_default();
        assert!(got.starts_with(&format!("{url}?since=")), "{got} for {:?}", String::from_utf8_lossy(raw));
    }
    assert_serving(&mut daemon);
}

#[test]
fn bytes_that_are_not_http_get_400_and_a_close() {
    let mut daemon = Daemon::ready(&[&example_flags()], &[]);
    let garbage: [&[u8]; 6] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello's start
        b"HELLO THERE\r\n\r\n",
        b"\0\0\0\0\0\0\0\0\r\n\r\n",
        b"GET /ofrep/v1/configuration HTTP/9.9\r\n\r\n",
        b"POST /ofrep/v1/evaluate/flags/dark-mode HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
    ];
    for bytes in garbage {
        let stream = send_raw(daemon.ofrep, bytes);
        stream.shutdown(Shutdown::Write).unwrap();
        let text = read_to_close(stream);
        assert_eq!(status_of(&text), Some(400), "{bytes:?}: {text:?}");
    }
    // A head larger than hyper's buffer (about 400 KiB): 431, and a close.
    let mut stream = connect(daemon.ofrep);
    let mut huge = b"GET /".to_vec();
    huge.resize(600_000, b'A');
    // The server may close before taking it all; only its answer matters.
    let _ = stream.write_all(&huge);
    let mut first = [0u8; 12];
    if stream.read_exact(&mut first).is_ok() {
        assert_eq!(&first, b"HTTP/1.1 431");
    }
    // The same on the management port.
    let stream = send_raw(daemon.management, b"\x16\x03\x01\x02\x00");
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(status_of(&read_to_close(stream)), Some(400));
    assert_serving(&mut daemon);
    assert_stops_cleanly(daemon);
}

#[test]
fn a_header_that_never_ends_does_not_hold_up_others() {
    let mut daemon = Daemon::ready(&[&example_flags()], &[]);
    // The header read timeout is 10 s; this test does not wait for it. It
    // shows that 50 such connections, each parked mid-header, take nothing
    // from the others.
    let stalled: Vec<TcpStream> = (0..50)
        .map(|i| {
            send_raw(
                daemon.ofrep,
                format!("POST {DARK_MODE} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{i}: aaaa")
                    .as_bytes(),
            )
        })
        .collect();
    let on_management: Vec<TcpStream> = (0..10)
        .map(|_| send_raw(daemon.management, b"GET /healthz HTTP/1.1\r\nHo"))
        .collect();
    for _ in 0..20 {
        assert_serving(&mut daemon);
    }
    // One connection can also keep a request going while a second request
    // on another connection is answered in full (keep-alive).
    let mut keep_alive = connect(daemon.ofrep);
    let mut reader = BufReader::new(keep_alive.try_clone().unwrap());
    for _ in 0..5 {
        write_request(&mut keep_alive, "POST", DARK_MODE, &[], b"", false);
        assert_eq!(read_response(&mut reader).status, 200);
    }
    drop((stalled, on_management));
    assert_serving(&mut daemon);
}

#[test]
fn a_flood_of_change_streams_that_never_read_does_not_stop_others() {
    let dir = TempDir::new("sse-flood");
    let original = std::fs::read_to_string(example_flags()).unwrap();
    let path = dir.write("flags.json", &original);
    let mut daemon = Daemon::ready(
        &[&path],
        &["--max-sse-streams", "64", "--sse-keep-alive", "1"],
    );
    // 64 streams asked for, never read from (not even the response head).
    let silent: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut stream = connect(daemon.ofrep);
            write_request(
                &mut stream,
                "GET",
                "/ofrep/v1/events",
                &[("Accept", "text/event-stream")],
                b"",
                false,
            );
            stream
        })
        .collect();
    eventually("64 streams open", || {
        daemon.metric("acqrel_flagd_sse_streams") == 64.0
    });
    // The rest are refused, at once and in full.
    for _ in 0..8 {
        let answer = request(daemon.ofrep, "GET", "/ofrep/v1/events", &[], b"");
        assert_eq!(answer.status, 503, "{}", answer.text());
        assert!(
            answer
                .header("retry-after")
                .is_some_and(|s| s.parse::<u64>().is_ok())
        );
    }
    let refused =
        daemon.metric(r#"acqrel_flagd_http_requests_total{route="/ofrep/v1/events",status="503"}"#);
    assert_eq!(refused, 8.0);
    // A reload publishes to all 64 queues; none is read, and still the new
    // flags are served to everyone else.
    let generation = daemon.metric("acqrel_flagd_flag_set_generation");
    dir.write(
        "flags.json",
        &original.replacen(r#""defaultVariant": "on""#, r#""defaultVariant": "off""#, 1),
    );
    eventually("the edit to be served", || {
        daemon.post(DARK_MODE, "").json()["value"] == false
    });
    assert!(daemon.metric("acqrel_flagd_flag_set_generation") > generation);
    assert_serving_changed(&mut daemon);
    // Their slots come back when they go.
    drop(silent);
    eventually("the streams to close", || {
        daemon.metric("acqrel_flagd_sse_streams") == 0.0
    });
    let mut stream = EventStream::open(daemon.ofrep, None);
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.next().expect("the opening comment").comments,
        ["acqrel-flagd change stream"]
    );
    drop(stream);
    assert_stops_cleanly(daemon);
}

/// [`assert_serving`] after `dark-mode` was switched off.
fn assert_serving_changed(daemon: &mut Daemon) {
    let answer = daemon.post(DARK_MODE, "");
    assert_eq!(
        (answer.status, answer.json()["value"].clone()),
        (200, json!(false))
    );
    assert_eq!(daemon.post("/ofrep/v1/evaluate/flags", "").status, 200);
    assert_eq!(daemon.manage("/readyz").status, 200);
    assert!(
        daemon.child.try_wait().expect("try_wait").is_none(),
        "acqrel-flagd exited"
    );
}
