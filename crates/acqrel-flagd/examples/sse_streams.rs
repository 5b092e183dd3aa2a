//! Measures what idle change streams cost the server: memory per stream
//! with N streams open, its thread count, and how long one reload takes
//! to reach all N.
//!
//! ```sh
//! cargo build --release -p acqrel-flagd
//! cargo run --release -p acqrel-flagd --example sse_streams            # 10,000 streams
//! cargo run --release -p acqrel-flagd --example sse_streams -- 2000
//! ```
//!
//! It starts the release `acqrel-flagd` (the one next to this example's
//! directory, `target/release/acqrel-flagd`) on a flag file in a fresh
//! temporary directory, with `--max-sse-streams` and `--max-connections`
//! above N and keep-alives too rare to fire, and reads the server's
//! `VmRSS` from `/proc/PID/status`. It then opens N streams on plain
//! blocking sockets, reads each one's opening block and nothing more,
//! waits until `/metrics` reports N streams open, and reads `VmRSS` and
//! `Threads` again. Last it renames a new version over the flag file and
//! reads every stream until its `refetchEvaluation` event for the new
//! generation: the time from the rename to the first stream's event, and
//! to the last one's (the streams are read one after the other, so the
//! last time is an upper bound on the fan-out).
//!
//! Each stream takes one file descriptor here and one in the server; N is
//! capped below this process's open-file limit (`ulimit -n`).
//!
//! This is a measurement, not a test: it prints rows and exits 1 only if
//! it could not measure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Streams opened when no N is given.
const DEFAULT_STREAMS: usize = 10_000;
/// File descriptors this process keeps for itself besides the streams.
const SPARE_FDS: usize = 64;
/// How long any one step may take before the run is abandoned.
const GIVE_UP: Duration = Duration::from_secs(120);

const USAGE: &str = "\
usage: sse_streams [N]

Starts target/release/acqrel-flagd, opens N idle change streams (default
10000), and prints the server's memory per stream, its threads, and how
long one reload takes to reach every stream.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let streams = match args.as_slice() {
        [] => DEFAULT_STREAMS,
        [n] => match n.replace(['_', ','], "").parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return usage(),
        },
        _ => return usage(),
    };
    match measure(streams) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sse_streams: {err}");
            ExitCode::from(1)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

/// The flag file, version `version`.
fn flag_file(version: u64) -> String {
    format!(
        r#"{{"flags": {{"version": {{"state": "ENABLED", "variants": {{"v": {version}}}, "defaultVariant": "v"}}}}}}"#
    )
}

fn measure(requested: usize) -> Result<(), String> {
    let binary = server_binary()?;
    let limit = open_file_limit()?;
    let streams = requested.min(limit.saturating_sub(SPARE_FDS));
    if streams < requested {
        println!("open-file limit {limit} (ulimit -n): opening {streams} streams, not {requested}");
    }
    if streams == 0 {
        return Err(format!(
            "the open-file limit ({limit}) leaves no room for streams"
        ));
    }

    let dir = TempDir::new()?;
    let file = dir.0.join("flags.json");
    write_atomically(&file, &flag_file(1))?;
    let server = Server::start(&binary, &file, streams)?;
    let pid = server.child.id();
    let rss_before = proc_status(pid, "VmRSS")?;
    let threads_before = proc_status(pid, "Threads")?;

    let started = Instant::now();
    let mut open = Vec::with_capacity(streams);
    for i in 0..streams {
        open.push(Stream::open(server.ofrep).map_err(|err| format!("stream {i}: {err}"))?);
    }
    let opened_in = started.elapsed();
    let deadline = Instant::now() + GIVE_UP;
    loop {
        let held = server.metric("acqrel_flagd_sse_streams")?;
        if held == streams as u64 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the server reports {held} streams open, not {streams}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss_after = proc_status(pid, "VmRSS")?;
    let threads_after = proc_status(pid, "Threads")?;
    let generation = server.metric("acqrel_flagd_flag_set_generation")?;

    let edited = Instant::now();
    write_atomically(&file, &flag_file(2))?;
    let mut first = None;
    for (i, stream) in open.iter_mut().enumerate() {
        let got = stream
            .event()
            .map_err(|err| format!("stream {i} after the reload: {err}"))?;
        if got <= generation {
            return Err(format!(
                "stream {i} named generation {got}, not a newer one than {generation}"
            ));
        }
        first.get_or_insert_with(|| edited.elapsed());
    }
    let last = edited.elapsed();
    let first = first.unwrap_or(last);

    let per_stream = (rss_after.saturating_sub(rss_before) * 1024) as f64 / streams as f64;
    println!("{:<44} {streams}", "streams held");
    println!(
        "{:<44} {:.2} s",
        "time to open them (one after the other)",
        opened_in.as_secs_f64()
    );
    println!("{:<44} {rss_before} KiB", "server RSS before the streams");
    println!("{:<44} {rss_after} KiB", "server RSS with the streams");
    println!("{:<44} {per_stream:.0} B", "server memory per stream");
    println!(
        "{:<44} {threads_before} before, {threads_after} with the streams",
        "server threads"
    );
    println!(
        "{:<44} {:.1} ms",
        "rename to the first stream's event",
        ms(first)
    );
    println!(
        "{:<44} {:.1} ms",
        format!("rename to all {streams} streams' events"),
        ms(last)
    );
    println!(
        "{:<44} {:.1} ms",
        "fan-out (first event to last)",
        ms(last - first)
    );
    drop(open);
    server.stop();
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// `target/release/acqrel-flagd`, next to this example's directory.
fn server_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|err| format!("cannot find this program: {err}"))?;
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("acqrel-flagd"))
        .ok_or("this program is not in a cargo target directory")?;
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{} is missing: run `cargo build --release -p acqrel-flagd` first",
            binary.display()
        ))
    }
}

/// This process's soft limit on open files (`/proc/self/limits`).
fn open_file_limit() -> Result<usize, String> {
    let limits = std::fs::read_to_string("/proc/self/limits")
        .map_err(|err| format!("cannot read /proc/self/limits: {err}"))?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .ok_or("no \"Max open files\" in /proc/self/limits")?;
    let soft = line["Max open files".len()..]
        .split_whitespace()
        .next()
        .ok_or("no soft limit in /proc/self/limits")?;
    Ok(if soft == "unlimited" {
        usize::MAX
    } else {
        soft.parse().map_err(|_| format!("not a limit: {soft:?}"))?
    })
}

/// A field of `/proc/PID/status` (`VmRSS` in KiB, `Threads`).
fn proc_status(pid: u32, field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|err| format!("cannot read /proc/{pid}/status: {err}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))
}

/// Writes `text` to a temporary file and renames it over `path`.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|err| format!("cannot write {}: {err}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|err| format!("cannot rename over {}: {err}", path.display()))
}

// ===== the server =====

/// The running server, killed on drop.
struct Server {
    child: Child,
    ofrep: SocketAddr,
    management: SocketAddr,
}

impl Server {
    fn start(binary: &Path, file: &Path, streams: usize) -> Result<Server, String> {
        let above = (streams + 16).to_string();
        let mut child = Command::new(binary)
            .arg("start")
            .arg("--uri")
            .arg(format!("file:{}", file.display()))
            .args([
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
            ])
            .args(["--max-sse-streams", &above, "--max-connections", &above])
            .args(["--sse-keep-alive", "3600"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        // Server's stdout: the two addresses, then "ready".
        let mut text = String::new();
        let mut byte = [0; 1];
        while text.matches('\n').count() < 3 {
            match stdout.read(&mut byte) {
                Ok(1) => text.push(char::from(byte[0])),
                _ => {
                    let _ = child.kill();
                    return Err(format!(
                        "acqrel-flagd stopped before it was ready: {text:?}"
                    ));
                }
            }
        }
        let address = |prefix: &str| -> Result<SocketAddr, String> {
            text.lines()
                .find_map(|line| line.strip_prefix(prefix))
                .and_then(|addr| addr.parse().ok())
                .ok_or_else(|| format!("no {prefix:?} line in {text:?}"))
        };
        let server = Server {
            ofrep: address("ofrep listening on ")?,
            management: address("management listening on ")?,
            child,
        };
        if !text.lines().any(|line| line == "ready") {
            return Err(format!("acqrel-flagd is not ready: {text:?}"));
        }
        Ok(server)
    }

    /// One unlabelled sample of `/metrics`.
    fn metric(&self, name: &str) -> Result<u64, String> {
        let mut socket =
            TcpStream::connect(self.management).map_err(|err| format!("/metrics: {err}"))?;
        socket
            .set_read_timeout(Some(GIVE_UP))
            .map_err(|err| err.to_string())?;
        socket
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .map_err(|err| format!("/metrics: {err}"))?;
        let mut answer = String::new();
        socket
            .read_to_string(&mut answer)
            .map_err(|err| format!("/metrics: {err}"))?;
        answer
            .lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .ok_or_else(|| format!("no {name} in /metrics"))
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ===== one stream =====

/// A change stream, read only to its opening block and, later, its event.
struct Stream {
    socket: TcpStream,
    /// Bytes read and not yet looked at.
    pending: Vec<u8>,
}

impl Stream {
    fn open(ofrep: SocketAddr) -> Result<Stream, String> {
        let mut socket = TcpStream::connect(ofrep).map_err(|err| format!("connect: {err}"))?;
        socket
            .set_read_timeout(Some(GIVE_UP))
            .map_err(|err| err.to_string())?;
        socket
            .write_all(b"GET /ofrep/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            .map_err(|err| format!("request: {err}"))?;
        let mut stream = Stream {
            socket,
            pending: Vec::new(),
        };
        let head = stream.read_past(b"\r\n\r\n")?;
        if !head.starts_with(b"HTTP/1.1 200") {
            return Err(format!("refused: {}", String::from_utf8_lossy(&head)));
        }
        stream.read_past(b"retry: 1000\n\n")?;
        Ok(stream)
    }

    /// Reads up to the next `refetchEvaluation` event; returns the
    /// generation its id names.
    fn event(&mut self) -> Result<u64, String> {
        let block = self.read_past(b"\"}\n\n")?;
        let text = String::from_utf8_lossy(&block);
        let id = text
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("id: "))
            .ok_or_else(|| format!("no event id in {text:?}"))?;
        id.rsplit_once('-')
            .and_then(|(_, generation)| generation.parse().ok())
            .ok_or_else(|| format!("not <instance>-<generation>: {id:?}"))
    }

    /// Reads until `marker` has arrived; returns what came up to it and
    /// keeps the rest.
    fn read_past(&mut self, marker: &[u8]) -> Result<Vec<u8>, String> {
        let mut buf = [0; 1024];
        loop {
            if let Some(at) = self.pending.windows(marker.len()).position(|w| w == marker) {
                let rest = self.pending.split_off(at + marker.len());
                return Ok(std::mem::replace(&mut self.pending, rest));
            }
            match self.socket.read(&mut buf) {
                Ok(0) => return Err("the stream ended".into()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(err) => return Err(format!("read: {err}")),
            }
        }
    }
}

// ===== a scratch directory =====

/// A fresh directory under the system's temporary directory, removed on
/// drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let dir =
            std::env::temp_dir().join(format!("acqrel-flagd-sse-streams-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
