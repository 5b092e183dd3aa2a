//! What the end-to-end tests share: the real `acqrel-flagd` binary started
//! on free loopback ports, and a small HTTP/1.1 client over a plain
//! `TcpStream` (what curl does, with nothing hidden), including a reader
//! of server-sent events.
//!
//! Every wait here is bounded by a deadline and polls for the condition it
//! waits for; no test asserts a time.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long any single wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The shipped example flags (`crates/acqrel-flags/examples/flags.json`).
pub fn example_flags() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../acqrel-flags/examples/flags.json")
}

/// A fresh directory under the target dir's tmp, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        // Relaxed: only makes names unique; publishes nothing.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("acqrel-flagd-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        TempDir(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    /// Writes `file` atomically (a temporary file renamed over it), as
    /// editors and deploy tools do.
    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.path(file);
        let tmp = self.path(&format!(".{file}.tmp"));
        std::fs::write(&tmp, text).expect("write the flag file");
        std::fs::rename(&tmp, &path).expect("rename the flag file into place");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `acqrel-flagd`, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub ofrep: SocketAddr,
    /// flagd's gRPC evaluation service (`--port`).
    pub evaluation: SocketAddr,
    /// flagd's gRPC sync service (`--sync-port`).
    pub sync: SocketAddr,
    pub management: SocketAddr,
    stdout: BufReader<ChildStdout>,
}

impl Daemon {
    /// `acqrel-flagd start --uri file:F ... EXTRA` on ports picked by the
    /// kernel; returns once both ports are listening (before "ready").
    pub fn start(files: &[&Path], extra: &[&str]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_acqrel-flagd"));
        command.arg("start");
        for file in files {
            command.arg("--uri").arg(format!("file:{}", file.display()));
        }
        command.args([
            "--ofrep-port",
            "0",
            "--management-port",
            "0",
            "--port",
            "0",
            "--sync-port",
            "0",
            "--debounce-ms",
            "20",
        ]);
        command.args(extra);
        command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("start acqrel-flagd");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let ofrep = listening(&mut stdout, "ofrep listening on ");
        let evaluation = listening(&mut stdout, "evaluation listening on ");
        let sync = listening(&mut stdout, "sync listening on ");
        let management = listening(&mut stdout, "management listening on ");
        Daemon {
            child,
            ofrep,
            evaluation,
            sync,
            management,
            stdout,
        }
    }

    /// Starts on `files` and waits for "ready".
    pub fn ready(files: &[&Path], extra: &[&str]) -> Daemon {
        let mut daemon = Daemon::start(files, extra);
        daemon.expect_line("ready");
        daemon
    }

    /// Reads standard output up to a line equal to `line`.
    pub fn expect_line(&mut self, line: &str) {
        let mut text = String::new();
        loop {
            text.clear();
            let n = self.stdout.read_line(&mut text).expect("read stdout");
            assert!(
                n > 0,
                "acqrel-flagd closed its stdout before printing {line:?}"
            );
            if text.trim_end() == line {
                return;
            }
        }
    }

    /// Sends `signal` (`libc`-free: through `kill`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "acqrel-flagd did not exit within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `POST` a JSON body to the OFREP port.
    pub fn post(&self, path: &str, body: &str) -> HttpResponse {
        request(
            self.ofrep,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    /// `GET` from the management port.
    pub fn manage(&self, path: &str) -> HttpResponse {
        request(self.management, "GET", path, &[], b"")
    }

    /// The value of one sample of `/metrics` (`name{labels}` as printed),
    /// 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let metrics = self.manage("/metrics");
        assert_eq!(metrics.status, 200);
        metrics
            .text()
            .lines()
            .find_map(|line| {
                line.strip_prefix(sample)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> SocketAddr {
    let mut line = String::new();
    let n = stdout.read_line(&mut line).expect("read stdout");
    assert!(n > 0, "acqrel-flagd exited before printing {prefix:?}");
    line.trim_end()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"))
        .parse()
        .expect("a socket address")
}

/// An HTTP response: status, headers (names lower-cased), body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// Connects with the test's patience as read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// One request on a new connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = connect(addr);
    write_request(&mut stream, method, path, headers, body, true);
    read_response(&mut BufReader::new(stream))
}

/// Writes one request; `close` adds `Connection: close`.
pub fn write_request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .expect("write the request head");
    stream.write_all(body).expect("write the request body");
}

/// Reads one response (Content-Length or chunked; a 304 has no body).
pub fn read_response(reader: &mut impl BufRead) -> HttpResponse {
    let (status, headers) = read_head(reader);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if status == 304 || status == 204 {
        // No body.
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().expect("content-length");
        body.resize(length, 0);
        reader.read_exact(&mut body).expect("read the body");
    } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).expect("chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("chunk");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body).expect("read to close");
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Reads a status line and headers.
pub fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header line");
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').expect("a header");
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    (status, headers)
}

/// A change stream being read: `GET /ofrep/v1/events`, chunked, one SSE
/// event (or comment block) per `next`.
pub struct EventStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    pending: String,
}

/// One block of the stream: its `id`, `data`, and comment lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseBlock {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub comments: Vec<String>,
}

impl EventStream {
    pub fn open(addr: SocketAddr, last_event_id: Option<&str>) -> EventStream {
        let mut stream = connect(addr);
        let mut headers = vec![("Accept", "text/event-stream")];
        if let Some(id) = last_event_id {
            headers.push(("Last-Event-ID", id));
        }
        write_request(&mut stream, "GET", "/ofrep/v1/events", &headers, b"", false);
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        EventStream {
            status,
            headers,
            reader,
            pending: String::new(),
        }
    }

    /// The next block, or `None` when the stream ended.
    pub fn next(&mut self) -> Option<SseBlock> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut parsed = SseBlock::default();
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        parsed.comments.push(comment.trim().to_owned());
                    } else if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                        match field {
                            "id" => parsed.id = Some(value),
                            "event" => parsed.event = Some(value),
                            "data" => parsed.data = Some(value),
                            _ => {}
                        }
                    }
                }
                return Some(parsed);
            }
            // One chunk: size line, data, CRLF.
            let mut size = String::new();
            match self.reader.read_line(&mut size) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                return None;
            }
            self.pending
                .push_str(&String::from_utf8_lossy(&chunk[..size]));
        }
    }

    /// The next block with an event (`data`), skipping comments.
    pub fn next_event(&mut self) -> Option<SseBlock> {
        loop {
            let block = self.next()?;
            if block.data.is_some() {
                return Some(block);
            }
        }
    }
}

/// Polls `condition` every 10 ms until it holds or [`PATIENCE`] runs out.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// [`eventually`] for async tests: polls `condition` every 10 ms, without
/// blocking the runtime, until it holds or [`PATIENCE`] runs out.
pub async fn eventually_async<F: std::future::Future<Output = bool>>(
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A tonic channel (one HTTP/2 connection) to a gRPC port.
pub async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .connect()
        .await
        .expect("connect to a gRPC port")
}

/// The flagd-testbed-like flag file of these tests
/// (`tests/flags/testbed.json`): every value type, every custom operator,
/// a broken rule, flags without a default variant, a disabled flag, and
/// keys that need percent-encoding.
pub fn testbed_flags() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flags/testbed.json")
}

/// Writes `bytes` as they are (whatever they are: a request the harness's
/// writer would not produce, or not HTTP at all) on a new connection, and
/// returns the connection, unread.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = connect(addr);
    stream.write_all(bytes).expect("write the raw request");
    stream
}

/// [`send_raw`], then reads one response.
pub fn request_raw(addr: SocketAddr, bytes: &[u8]) -> HttpResponse {
    read_response(&mut BufReader::new(send_raw(addr, bytes)))
}
