//! The daemon's life from the outside: its command line and exit statuses,
//! readiness before and after the first load, the metrics moving, and the
//! drain on SIGTERM (a second signal, and a grace period running out).

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{
    Daemon, EventStream, TempDir, connect, eventually, example_flags, read_head, read_response,
};

/// Runs the binary with `args` to its end (only for runs that stop by
/// themselves: usage errors, load failures, `--help`).
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acqrel-flagd"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run acqrel-flagd")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `start --uri file:PATH` on free ports, for a start that must fail.
fn start_on(path: &Path) -> Output {
    let uri = format!("file:{}", path.display());
    run(&[
        "start",
        "--uri",
        &uri,
        "--ofrep-port",
        "0",
        "--management-port",
        "0",
        "--port",
        "0",
        "--sync-port",
        "0",
    ])
}

/// A flag file with one boolean flag `dark-mode`, on.
const ONE_FLAG: &str = r#"{"flags": {"dark-mode": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}}}"#;

// ===== the command line =====

#[test]
fn help_and_version_exit_0() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0), "{}", stderr(&help));
    assert!(String::from_utf8_lossy(&help.stdout).contains("acqrel-flagd start --uri file:PATH"));
    let help = run(&["start", "--help"]);
    assert_eq!(help.status.code(), Some(0), "{}", stderr(&help));
    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0), "{}", stderr(&version));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim_end(),
        format!("acqrel-flagd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_mistakes_exit_2_with_a_message_naming_the_mistake() {
    let flags = format!("file:{}", example_flags().display());
    let cases: [(&[&str], &str); 5] = [
        (
            &["start", "--uri", &flags, "--no-such-flag"],
            "unknown flag \"--no-such-flag\"",
        ),
        (&["start", "--uri"], "--uri needs a value"),
        (
            &["start", "--uri", &flags, "--ofrep-port"],
            "--ofrep-port needs a value",
        ),
        (
            &["start", "--uri", "http://flags.example/flags.json"],
            "only file:PATH sources",
        ),
        (&["start"], "start needs at least one --uri"),
    ];
    for (args, message) in cases {
        let output = run(args);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains(message),
            "{args:?}: {message:?} not in {text:?}"
        );
        // Nothing was started: no port was bound.
        assert!(
            output.stdout.is_empty(),
            "{args:?}: {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn a_flag_file_that_does_not_load_at_start_exits_1_naming_the_file_and_the_json_path() {
    let dir = TempDir::new("bad-start");
    let bad = dir.write(
        "bad.json",
        r#"{"flags": {"x": {"state": "ON", "variants": {"on": true}}}}"#,
    );
    let output = start_on(&bad);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&bad.display().to_string()),
        "the file is not named: {text}"
    );
    assert!(
        text.contains("$.flags.x.state"),
        "the JSON path is not named: {text}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("ready"));
}

#[test]
fn a_missing_flag_file_exits_1_naming_the_file() {
    let dir = TempDir::new("missing-start");
    let missing = dir.path("missing.json");
    let output = start_on(&missing);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&missing.display().to_string()),
        "the file is not named: {text}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("ready"));
}

// ===== readiness =====

/// A FIFO at `dir/flags.json`: a flag file whose loader's `open` blocks
/// until the test opens it for writing, so "still loading" lasts exactly
/// as long as the test wants, with no hook in the binary.
fn fifo(dir: &TempDir) -> PathBuf {
    let fifo = dir.path("flags.json");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    fifo
}

#[test]
fn readyz_is_503_while_the_flags_load_and_200_once_they_have() {
    let dir = TempDir::new("fifo");
    let fifo = fifo(&dir);
    let mut daemon = Daemon::start(&[&fifo], &[]);

    assert_eq!(daemon.manage("/healthz").status, 200, "alive while loading");
    let readyz = daemon.manage("/readyz");
    assert_eq!(
        (readyz.status, readyz.text().as_str()),
        (503, "loading flags\n")
    );
    assert_eq!(daemon.metric("acqrel_flagd_ready"), 0.0);
    for path in [
        "/ofrep/v1/evaluate/flags/dark-mode",
        "/ofrep/v1/evaluate/flags",
    ] {
        let early = daemon.post(path, r#"{"context": {}}"#);
        assert_eq!(early.status, 503, "{path}: {}", early.text());
        assert_eq!(early.header("retry-after"), Some("1"), "{path}");
    }

    // Opening for writing meets the loader's open for reading; closing
    // ends its read.
    let writer = feed(&fifo);
    daemon.expect_line("ready");
    writer.join().expect("the writer");

    let readyz = daemon.manage("/readyz");
    assert_eq!((readyz.status, readyz.text().as_str()), (200, "ready\n"));
    assert_eq!(daemon.metric("acqrel_flagd_ready"), 1.0);
    let answer = daemon.post("/ofrep/v1/evaluate/flags/dark-mode", r#"{"context": {}}"#);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["value"], true);
}

/// Regression: SIGTERM while the first load was stuck reading a flag file
/// (a hung mount; here a FIFO no one writes) left the process running
/// after it logged "stopped": dropping the runtime waited for the blocked
/// loader thread, and the signal handlers were gone with the runtime.
#[test]
fn sigterm_while_a_flag_file_is_still_loading_exits_0() {
    let dir = TempDir::new("fifo-term");
    let fifo = fifo(&dir);
    let mut daemon = Daemon::start(&[&fifo], &[]);
    assert_eq!(daemon.manage("/readyz").status, 503, "still loading");
    daemon.signal("TERM");
    let status = daemon.wait();
    assert_eq!(status.code(), Some(0), "{status}");
}

/// Writes `ONE_FLAG` into the FIFO `path` on a thread: its open for writing
/// meets the loader's open for reading, and closing ends the loader's read.
fn feed(path: &Path) -> std::thread::JoinHandle<()> {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let mut fifo = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the FIFO");
        fifo.write_all(ONE_FLAG.as_bytes())
            .expect("write the flags");
    })
}

/// Whether process `pid` has `path` open (Linux's `/proc/PID/fd`).
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

/// Regression: SIGTERM while a reload was stuck reading a flag file (a
/// hung mount; here a FIFO the test holds open for writing, so the read
/// never ends) hung the process in its shutdown: dropping the server's
/// state joined the watch's reloader thread, blocked in that read.
#[test]
fn sigterm_while_a_reload_is_stuck_reading_a_flag_file_exits_0() {
    let dir = TempDir::new("fifo-reload-term");
    let fifo = fifo(&dir);
    let mut daemon = Daemon::start(&[&fifo], &[]);
    let writer = feed(&fifo);
    daemon.expect_line("ready");
    writer.join().expect("the writer");
    // Held open read-write (which does not block on a FIFO): the next
    // reader's open returns and its read waits for data that never comes.
    let _held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("hold the FIFO");
    // The watch re-reads the file once after starting; once the daemon
    // has it open again, that reload is stuck in its read.
    let pid = daemon.child.id();
    eventually("a reload to be reading the FIFO", || has_open(pid, &fifo));
    daemon.signal("TERM");
    let status = daemon.wait();
    assert_eq!(status.code(), Some(0), "{status}");
}

// ===== metrics =====

#[test]
fn metrics_count_evaluations_requests_generations_streams_and_reloads() {
    let dir = TempDir::new("metrics");
    let file = dir.write("flags.json", ONE_FLAG);
    // A short keep-alive, so a stream whose client left is noticed by the
    // next write even if the close itself is not.
    let daemon = Daemon::ready(&[&file], &["--sse-keep-alive", "0.2"]);
    let applied = format!(
        "acqrel_flagd_reloads_total{{file=\"{}\",outcome=\"applied\"}}",
        file.display()
    );
    let refused = format!(
        "acqrel_flagd_reloads_total{{file=\"{}\",outcome=\"refused\"}}",
        file.display()
    );

    // Evaluations by flag and reason; requests by route and status.
    for _ in 0..2 {
        assert_eq!(
            daemon
                .post("/ofrep/v1/evaluate/flags/dark-mode", "{}")
                .status,
            200
        );
    }
    assert_eq!(
        daemon
            .post("/ofrep/v1/evaluate/flags/no-such-flag", "{}")
            .status,
        404
    );
    assert_eq!(
        daemon
            .post("/ofrep/v1/evaluate/flags/dark-mode", "[1]")
            .status,
        400
    );
    assert_eq!(
        daemon.metric(r#"acqrel_flagd_evaluations_total{flag="dark-mode",reason="STATIC"}"#),
        2.0
    );
    // A made-up key is counted under flag="" (the registry stays bounded).
    assert_eq!(
        daemon.metric(r#"acqrel_flagd_evaluations_total{flag="",reason="ERROR"}"#),
        1.0
    );
    let one = "/ofrep/v1/evaluate/flags/{key}";
    assert_eq!(
        daemon.metric(&format!(
            "acqrel_flagd_http_requests_total{{route=\"{one}\",status=\"200\"}}"
        )),
        2.0
    );
    assert_eq!(
        daemon.metric(&format!(
            "acqrel_flagd_http_requests_total{{route=\"{one}\",status=\"404\"}}"
        )),
        1.0
    );
    assert_eq!(
        daemon.metric(&format!(
            "acqrel_flagd_http_requests_total{{route=\"{one}\",status=\"400\"}}"
        )),
        1.0
    );
    assert_eq!(daemon.manage("/nowhere").status, 404);
    assert_eq!(
        daemon.metric(r#"acqrel_flagd_http_requests_total{route="other",status="404"}"#),
        1.0
    );
    // The scrapes count themselves: each one sees the ones before it.
    let scrapes =
        daemon.metric(r#"acqrel_flagd_http_requests_total{route="/metrics",status="200"}"#);
    assert_eq!(
        daemon.metric(r#"acqrel_flagd_http_requests_total{route="/metrics",status="200"}"#),
        scrapes + 1.0
    );

    // The generation after a reload; the reload counted as applied.
    assert_eq!(daemon.metric("acqrel_flagd_flags"), 1.0);
    let generation = daemon.metric("acqrel_flagd_flag_set_generation");
    assert_eq!(
        (daemon.metric(&applied), daemon.metric(&refused)),
        (0.0, 0.0)
    );
    dir.write(
        "flags.json",
        &ONE_FLAG.replace(r#""defaultVariant": "on""#, r#""defaultVariant": "off""#),
    );
    eventually("the generation to move", || {
        daemon.metric("acqrel_flagd_flag_set_generation") == generation + 1.0
    });
    assert_eq!(daemon.metric(&applied), 1.0);
    // A broken file: refused, and the generation stays.
    dir.write("flags.json", "{ not json");
    eventually("the refusal to be counted", || {
        daemon.metric(&refused) == 1.0
    });
    assert_eq!(
        daemon.metric("acqrel_flagd_flag_set_generation"),
        generation + 1.0
    );
    assert_eq!(daemon.metric(&applied), 1.0);

    // Streams open, then closed.
    assert_eq!(daemon.metric("acqrel_flagd_sse_streams"), 0.0);
    let mut stream = EventStream::open(daemon.ofrep, None);
    assert_eq!(stream.status, 200);
    stream.next().expect("the opening comment");
    assert_eq!(daemon.metric("acqrel_flagd_sse_streams"), 1.0);
    drop(stream);
    eventually("the closed stream to be uncounted", || {
        daemon.metric("acqrel_flagd_sse_streams") == 0.0
    });
    assert_eq!(
        daemon.metric(r#"acqrel_flagd_http_requests_total{route="/ofrep/v1/events",status="200"}"#),
        1.0
    );
}

// ===== shutdown =====

/// A request to the OFREP port whose body is still arriving: the head
/// (with `Expect: 100-continue`, so the server's `100 Continue` shows the
/// handler is reading the body), then the first `sent` bytes of `body`.
fn partial_request(addr: SocketAddr, body: &str, sent: usize) -> BufReader<TcpStream> {
    let mut stream = connect(addr);
    let head = format!(
        "POST /ofrep/v1/evaluate/flags/dark-mode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write the head");
    let mut reader = BufReader::new(stream);
    let (status, _) = read_head(&mut reader);
    assert_eq!(status, 100, "the server did not start reading the body");
    reader
        .get_mut()
        .write_all(&body.as_bytes()[..sent])
        .expect("write part of the body");
    reader
}

/// Whether a fresh connection to `addr` is refused (its listener closed).
fn refuses_connections(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).is_err()
}

#[test]
fn sigterm_finishes_the_in_flight_request_ends_the_streams_and_exits_0() {
    let flags = example_flags();
    let mut daemon = Daemon::ready(&[&flags], &["--sse-keep-alive", "60"]);
    let body = r#"{"context": {"targetingKey": "user-1"}}"#;
    let mut in_flight = partial_request(daemon.ofrep, body, 5);
    let mut stream = EventStream::open(daemon.ofrep, None);
    assert_eq!(
        stream.next().expect("the opening comment").comments,
        ["acqrel-flagd change stream"]
    );

    daemon.signal("TERM");
    eventually("the OFREP port to stop accepting", || {
        refuses_connections(daemon.ofrep)
    });
    // The management port serves through the drain: probes see it.
    assert_eq!(
        daemon.manage("/readyz").status,
        503,
        "/readyz during the drain"
    );
    assert_eq!(
        daemon.manage("/healthz").status,
        200,
        "/healthz during the drain"
    );
    // The stream ends (the keep-alive is a minute away). Were streams not
    // ended, only the grace period's abort would end this one, and that
    // would abort the request below too (its read would fail).
    assert_eq!(stream.next(), None, "the change stream did not end");
    // The drain waits for the request.
    assert!(
        daemon.child.try_wait().expect("try_wait").is_none(),
        "exited before the request finished"
    );

    in_flight
        .get_mut()
        .write_all(&body.as_bytes()[5..])
        .expect("write the rest of the body");
    let answer = read_response(&mut in_flight);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["value"], true);
    let status = daemon.wait();
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn sigint_drains_as_sigterm_does_and_exits_0() {
    let flags = example_flags();
    let mut daemon = Daemon::ready(&[&flags], &["--sse-keep-alive", "60"]);
    let mut stream = EventStream::open(daemon.ofrep, None);
    stream.next().expect("the opening comment");
    daemon.signal("INT");
    assert_eq!(stream.next(), None, "the change stream did not end");
    let status = daemon.wait();
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn a_second_sigterm_during_the_drain_exits_at_once_with_130() {
    let flags = example_flags();
    let mut daemon = Daemon::ready(&[&flags], &["--shutdown-grace", "30"]);
    // Never completed: the drain cannot finish by itself for 10 s (the
    // server's body timeout), far past the harness's wait below.
    let _in_flight = partial_request(daemon.ofrep, r#"{"context": {}}"#, 3);
    daemon.signal("TERM");
    eventually("the drain to start", || refuses_connections(daemon.ofrep));
    daemon.signal("TERM");
    let status = daemon.wait();
    assert_eq!(status.code(), Some(130), "{status}");
}

#[test]
fn when_the_grace_period_ends_an_unfinished_request_is_aborted_and_the_exit_is_0() {
    let flags = example_flags();
    let mut daemon = Daemon::ready(&[&flags], &["--shutdown-grace", "1"]);
    let mut in_flight = partial_request(daemon.ofrep, r#"{"context": {}}"#, 3);
    daemon.signal("TERM");
    let status = daemon.wait();
    assert_eq!(status.code(), Some(0), "{status}");
    // Aborted: the connection closed without an answer (a server that
    // answered it, 400 or otherwise, would have sent a status line).
    let mut rest = Vec::new();
    let _ = in_flight.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "the aborted request got an answer: {:?}",
        String::from_utf8_lossy(&rest)
    );
}
