//! Measures the OFREP and gRPC evaluation ports under load: requests per
//! second and p50/p99 latency over keep-alive connections on loopback,
//! each beside a bare endpoint of the same HTTP stack in the same run.
//!
//! ```sh
//! cargo run --release -p acqrel-flagd --example load
//! cargo run --release -p acqrel-flagd --example load -- --connections 8 --seconds 3
//! ```
//!
//! In one process and one multi-thread tokio runtime it starts the server
//! through the library (`Server::bind` on ports 0, `serve`, `load`) on the
//! shipped example flags (`crates/acqrel-flags/examples/flags.json`), and,
//! on ports 0 too, bare hyper servers: the same `http1::Builder` settings
//! as the server's (hyper-util's timer and a header read timeout), a
//! service that reads the request body and answers every request with one
//! fixed JSON body, `Content-Type: application/json`, the length hyper
//! sets. Each bare body is the server's own answer for the flag it stands
//! beside, fetched once first, so the two answers have the same bytes and
//! the difference is what the server adds: routing, the body's parse into
//! an evaluation context, the evaluation, the JSON answer, the metrics.
//!
//! The client is the same for every endpoint: `--connections` keep-alive
//! connections (2 × the available cores by default), each a task that
//! sends one precomputed request, reads the answer (status line, headers,
//! `Content-Length` bytes of body) and sends the next, for a warm-up and
//! then `--seconds`, recording each request's latency in microseconds.
//! Every answer's status is checked; an unexpected one stops the run.
//!
//! Scenarios (the bare endpoint is each one's anchor):
//!
//! | scenario | request | anchor | target |
//! |---|---|---|---|
//! | single, targeting | `POST /ofrep/v1/evaluate/flags/support-channel`, a small context (`ends_with` matches) | bare, same body | ≥ 0.5× |
//! | single, static | `POST /ofrep/v1/evaluate/flags/dark-mode`, the same context | bare, same body | ≥ 0.5× |
//! | bulk, `If-None-Match` | `POST /ofrep/v1/evaluate/flags` with the answer's ETag: 304, no evaluation | the targeting flag's bare endpoint, measured again next to it | ≥ 0.9× |
//! | bulk | the same without `If-None-Match`: 200, every flag evaluated | the same | none (reported) |
//! | gRPC, 1 connection | `ResolveBoolean` for the static flag, the same context as a `Struct`, over one HTTP/2 connection, `--connections` calls in flight | bare gRPC endpoint, one connection | none (reported) |
//! | gRPC, 16 connections | the same over 16 HTTP/2 connections, one call in flight on each (or `--connections`, if more) | the same | none (reported) |
//!
//! The bare gRPC endpoint is hyper's HTTP/2 with the same timer, answering
//! every call with the server's own `ResolveBooleanResponse` bytes in one
//! frame and `grpc-status: 0`. Its client is the generated tonic client the
//! gRPC scenarios use, so the ratio is what the server adds to a call;
//! the gRPC rows beside the OFREP ones show the two protocols in one run,
//! client costs included (tonic's client does more per call than the
//! hand-written HTTP/1.1 one).
//!
//! The scenarios run in `--rounds` rounds, in the listed order in even
//! rounds and reversed in odd ones, each next to its anchor, so that drift
//! in the machine's speed (other jobs, where the scheduler puts the client
//! and the server) hits a scenario and its anchor alike; throughput is all
//! the requests of a scenario over its measured time, the percentiles are
//! over all its latencies, and the ratio column also shows the range of
//! the rounds' own ratios, a measure of the noise.
//!
//! The client and the servers share the machine's cores (on a 2-core
//! machine, one core's worth each at best): the numbers are this machine's,
//! and the ratios, measured side by side, are what the targets check.
//! Exits with 1 when a target is missed, as the scenario examples
//! `cargo xtask bench` runs do; timings on a busy machine are noisy, so a
//! miss is a report, not a failure.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use acqrel_flagd::proto::evaluation::v1::ResolveBooleanRequest;
use acqrel_flagd::proto::evaluation::v1::service_client::ServiceClient;
use acqrel_flagd::{Command, Options, Server};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "\
usage: load [--connections N] [--seconds S] [--warm-up-ms MS] [--rounds R]

Drives the OFREP port, the gRPC evaluation port (ResolveBoolean over 1 and
16 HTTP/2 connections) and bare hyper endpoints of the same HTTP stacks
with keep-alive connections on loopback and prints requests/s and p50/p99
latency per scenario, against the targets (single evaluation >= 0.5x the
bare endpoint, bulk with a matching ETag >= 0.9x).
  --connections N   keep-alive connections (default: 2 x available cores)
  --seconds S       measured time per scenario and round (default: 1)
  --warm-up-ms MS   unmeasured time before each (default: 250)
  --rounds R        rounds over the scenarios (default: 4)";

/// The shipped example flags.
const FLAGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../acqrel-flags/examples/flags.json"
);
/// A flag with targeting (`ends_with` on `email`), matched by [`CONTEXT`].
const TARGETING_FLAG: &str = "support-channel";
/// A flag without targeting.
const STATIC_FLAG: &str = "dark-mode";
/// Every request's body.
const CONTEXT: &str =
    r#"{"context":{"targetingKey":"user-4711","email":"ann@bigcorp.com","appVersion":"2.5.0"}}"#;
/// The same header read timeout as the server's.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The command line.
struct Settings {
    connections: usize,
    measured: Duration,
    warm_up: Duration,
    rounds: usize,
}

fn main() -> ExitCode {
    let settings = match parse(std::env::args().skip(1).collect()) {
        Some(settings) => settings,
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("load: cannot start a runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(measure(&settings)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("load: {err}");
            ExitCode::from(1)
        }
    }
}

fn parse(args: Vec<String>) -> Option<Settings> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut settings = Settings {
        connections: 2 * cores,
        measured: Duration::from_secs(1),
        warm_up: Duration::from_millis(250),
        rounds: 4,
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let value: u64 = it.next()?.parse().ok()?;
        match flag.as_str() {
            "--connections" if value > 0 => settings.connections = usize::try_from(value).ok()?,
            "--seconds" if value > 0 => settings.measured = Duration::from_secs(value),
            "--warm-up-ms" => settings.warm_up = Duration::from_millis(value),
            "--rounds" if value > 0 => settings.rounds = usize::try_from(value).ok()?,
            _ => return None,
        }
    }
    Some(settings)
}

type Error = Box<dyn std::error::Error + Send + Sync>;

// ===== the scenarios =====

/// One kind of request, sent to one address.
struct Scenario {
    name: String,
    load: Load,
    /// Index of the anchor scenario, and the least ratio of throughputs.
    anchor: Option<(usize, Option<f64>)>,
}

/// How a scenario's requests travel.
enum Load {
    /// One precomputed HTTP/1.1 request on each of `--connections`
    /// keep-alive connections, each answer's status checked.
    Http1 {
        addr: SocketAddr,
        request: Bytes,
        expect_status: u16,
    },
    /// `ResolveBoolean` calls through the generated tonic client over
    /// `connections` HTTP/2 connections, with `in_flight` calls at a time
    /// (one task each, spread over the connections), each answer's value
    /// checked.
    Grpc {
        addr: SocketAddr,
        connections: usize,
        in_flight: usize,
        request: ResolveBooleanRequest,
        expect: bool,
    },
}

impl Scenario {
    fn http1(name: &str, addr: SocketAddr, request: Bytes, expect_status: u16) -> Scenario {
        Scenario {
            name: name.to_owned(),
            load: Load::Http1 {
                addr,
                request,
                expect_status,
            },
            anchor: None,
        }
    }

    fn anchored(self, anchor: usize, least: Option<f64>) -> Scenario {
        Scenario {
            anchor: Some((anchor, least)),
            ..self
        }
    }
}

/// What the runs of one scenario add up to.
#[derive(Default)]
struct Tally {
    requests: u64,
    time: Duration,
    latencies_us: Vec<u32>,
    /// Requests per second in each round, in round order.
    per_round: Vec<f64>,
    /// CPU time of the whole process (client, servers, runtime) in the
    /// measured time; `None` where it cannot be read.
    cpu: Option<Duration>,
}

/// Runs the measurement and prints it; `Ok(true)` when every target is
/// met.
async fn measure(settings: &Settings) -> Result<bool, Error> {
    let Command::Start(mut options) = Options::parse(["start", "--uri", &format!("file:{FLAGS}")])?
    else {
        return Err("`start` did not parse as a start command".into());
    };
    (options.ofrep_port, options.management_port) = (0, 0);
    (options.port, options.sync_port) = (0, 0);
    let server = Server::bind(options).await?;
    let (ofrep, evaluation) = (server.ofrep_addr(), server.evaluation_addr());
    let running = server.serve();
    running.load().await?;

    let single = |flag: &str| {
        post(
            ofrep,
            &format!("/ofrep/v1/evaluate/flags/{flag}"),
            &[],
            CONTEXT,
        )
    };
    let bulk_path = "/ofrep/v1/evaluate/flags";
    // Our answers, fetched once: the bare endpoints serve their bytes, and
    // the bulk answer's ETag goes into `If-None-Match`.
    let targeting_answer = fetch(ofrep, &single(TARGETING_FLAG), 200).await?;
    let static_answer = fetch(ofrep, &single(STATIC_FLAG), 200).await?;
    let bulk_answer = fetch(ofrep, &post(ofrep, bulk_path, &[], CONTEXT), 200).await?;
    let etag = bulk_answer.etag.ok_or("the bulk answer carries no ETag")?;
    let bare_targeting = bare_server(targeting_answer.body.clone()).await?;
    let bare_static = bare_server(static_answer.body.clone()).await?;
    // The bare endpoints answer what they were given, and would answer it
    // to the scenarios' requests too.
    for (bare, answer) in [
        (bare_targeting, &targeting_answer),
        (bare_static, &static_answer),
    ] {
        let echoed = fetch(
            bare,
            &post(bare, "/ofrep/v1/evaluate/flags/x", &[], CONTEXT),
            200,
        )
        .await?;
        if echoed.body != answer.body {
            return Err("a bare endpoint answered other bytes than it was given".into());
        }
    }

    // The gRPC scenarios ask the evaluation port for the static flag with
    // the same context, as `ResolveBoolean`.
    let grpc_request = ResolveBooleanRequest {
        flag_key: STATIC_FLAG.to_owned(),
        context: Some(grpc_context()?),
    };
    let grpc = |connections: usize| {
        let in_flight = settings.connections.max(connections);
        Scenario {
            name: format!(
                "gRPC ResolveBoolean, static, {connections} HTTP/2 connection(s), \
                 {in_flight} in flight"
            ),
            load: Load::Grpc {
                addr: evaluation,
                connections,
                in_flight,
                request: grpc_request.clone(),
                expect: true,
            },
            anchor: Some((4, None)),
        }
    };

    let grpc_answer = {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{evaluation}"))?
            .connect()
            .await?;
        ServiceClient::new(channel)
            .resolve_boolean(grpc_request.clone())
            .await?
            .into_inner()
    };
    let bare_grpc = bare_grpc_server(Bytes::from(grpc_answer.encode_to_vec())).await?;
    let bare_grpc_scenario = Scenario {
        name: "bare gRPC endpoint (ResolveBoolean's bytes, 1 connection)".to_owned(),
        load: Load::Grpc {
            addr: bare_grpc,
            connections: 1,
            in_flight: settings.connections,
            request: grpc_request.clone(),
            expect: true,
        },
        anchor: None,
    };

    let scenarios = [
        Scenario::http1(
            "bare endpoint (targeting flag's bytes)",
            bare_targeting,
            single(TARGETING_FLAG),
            200,
        ),
        Scenario::http1(
            "single evaluation, targeting",
            ofrep,
            single(TARGETING_FLAG),
            200,
        )
        .anchored(0, Some(0.5)),
        Scenario::http1(
            "bare endpoint (static flag's bytes)",
            bare_static,
            single(STATIC_FLAG),
            200,
        ),
        Scenario::http1("single evaluation, static", ofrep, single(STATIC_FLAG), 200)
            .anchored(2, Some(0.5)),
        bare_grpc_scenario,
        grpc(1),
        grpc(16),
        // The first anchor again, measured next to the bulk scenarios (as
        // the others are next to theirs).
        Scenario::http1(
            "bare endpoint (targeting flag's bytes, again)",
            bare_targeting,
            single(TARGETING_FLAG),
            200,
        ),
        Scenario::http1(
            "bulk, matching If-None-Match (304)",
            ofrep,
            post(ofrep, bulk_path, &[("if-none-match", &etag)], CONTEXT),
            304,
        )
        .anchored(7, Some(0.9)),
        Scenario::http1(
            "bulk, no If-None-Match (200)",
            ofrep,
            post(ofrep, bulk_path, &[], CONTEXT),
            200,
        )
        .anchored(7, None),
    ];

    let mut tallies: Vec<Tally> = scenarios.iter().map(|_| Tally::default()).collect();
    for round in 0..settings.rounds {
        let mut order: Vec<usize> = (0..scenarios.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let run = drive(&scenarios[index], settings).await?;
            let tally = &mut tallies[index];
            tally.requests += run.requests;
            tally.time += run.time;
            tally
                .per_round
                .push(run.requests as f64 / run.time.as_secs_f64().max(1e-9));
            tally.latencies_us.extend(run.latencies_us);
            tally.cpu = if round == 0 {
                run.cpu
            } else {
                tally.cpu.zip(run.cpu).map(|(sum, cpu)| sum + cpu)
            };
        }
    }
    let report = running.shutdown().await;
    if !report.drained {
        eprintln!(
            "load: the server did not drain its connections ({} aborted)",
            report.aborted
        );
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = String::new();
    writeln!(
        out,
        "OFREP and gRPC under load: {} keep-alive connections (gRPC: as many calls in \
         flight), {} round(s) of {:?} per scenario (after {:?} warm-up each), on loopback",
        settings.connections, settings.rounds, settings.measured, settings.warm_up
    )?;
    writeln!(
        out,
        "client, server and bare endpoints share one tokio runtime and this machine's \
         {cores} core(s): numbers are this machine's, ratios are side by side"
    )?;
    writeln!(
        out,
        "bodies: targeting answer {} bytes, static answer {} bytes, bulk answer {} bytes\n",
        targeting_answer.body.len(),
        static_answer.body.len(),
        bulk_answer.body.len()
    )?;
    writeln!(
        out,
        "| scenario | requests/s | p50 µs | p99 µs | ratio to bare (rounds' range) | target | verdict \
         | CPU µs/request | CPU ratio |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---|---:|---:|")?;
    for tally in &mut tallies {
        tally.latencies_us.sort_unstable();
    }
    let rps: Vec<f64> = tallies
        .iter()
        .map(|tally| tally.requests as f64 / tally.time.as_secs_f64().max(1e-9))
        .collect();
    // CPU time of the whole process per request: what the machine's other
    // jobs barely change, unlike the throughput.
    let cpu_per_request: Vec<Option<f64>> = tallies
        .iter()
        .map(|tally| {
            let cpu = tally.cpu?;
            (tally.requests > 0).then(|| cpu.as_secs_f64() * 1e6 / tally.requests as f64)
        })
        .collect();
    let mut passed = true;
    for (index, (scenario, tally)) in scenarios.iter().zip(&tallies).enumerate() {
        let cpu = cpu_per_request[index].map_or_else(|| "n/a".to_owned(), |us| format!("{us:.1}"));
        let cpu_ratio = match (scenario.anchor, cpu_per_request[index]) {
            (Some((anchor, _)), Some(ours)) => cpu_per_request[anchor].map_or_else(
                || "n/a".to_owned(),
                |bare| format!("{:.2}×", bare / ours.max(1e-9)),
            ),
            (Some(_), None) => "n/a".to_owned(),
            (None, _) => "—".to_owned(),
        };
        let (ratio, target, verdict) = match scenario.anchor {
            None => ("—".to_owned(), "—".to_owned(), "anchor"),
            Some((anchor, least)) => {
                let ratio = rps[index] / rps[anchor].max(1e-9);
                // Each round's ratio, ours against the anchor measured in
                // the same round: how much of the ratio is noise.
                let (low, high) = tally
                    .per_round
                    .iter()
                    .zip(&tallies[anchor].per_round)
                    .map(|(ours, bare)| ours / bare.max(1e-9))
                    .fold((f64::INFINITY, 0_f64), |(low, high), r| {
                        (low.min(r), high.max(r))
                    });
                let shown = format!("{ratio:.2}× ({low:.2}–{high:.2})");
                match least {
                    None => (shown, "—".to_owned(), "reported"),
                    Some(least) => {
                        let met = ratio >= least;
                        passed &= met;
                        (
                            shown,
                            format!("≥ {least}×"),
                            if met { "met" } else { "MISSED" },
                        )
                    }
                }
            }
        };
        writeln!(
            out,
            "| {} | {:.0} | {} | {} | {ratio} | {target} | {verdict} | {cpu} | {cpu_ratio} |",
            scenario.name,
            rps[index],
            percentile(&tally.latencies_us, 50),
            percentile(&tally.latencies_us, 99),
        )?;
    }
    writeln!(
        out,
        "\nCPU µs/request: this process's CPU time (client, servers and runtime, user and \
         system) over the requests; CPU ratio: the anchor's over the scenario's, the \
         throughput ratio the scenario would have if the process had the cores to itself"
    )?;
    writeln!(
        out,
        "targets (on the requests/s ratios): {}",
        if passed {
            "all met"
        } else {
            "MISSED (see the table)"
        }
    )?;
    print!("{out}");
    Ok(passed)
}

/// The nearest-rank `p`-th percentile of sorted `samples` (0 when empty).
fn percentile(samples: &[u32], p: usize) -> u32 {
    let rank = (samples.len() * p).div_ceil(100).max(1);
    samples.get(rank - 1).copied().unwrap_or(0)
}

// ===== the bare endpoint =====

/// Starts a bare hyper server on a free loopback port that reads each
/// request's body and answers `body` as JSON; returns its address.
async fn bare_server(body: Bytes) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        // Read as the server reads a body; what it says
                        // does not matter.
                        let _ = request.into_body().collect().await;
                        let mut response = Response::new(Full::new(body));
                        response.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(READ_TIMEOUT);
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Starts a bare gRPC server on a free loopback port: hyper's HTTP/2 with
/// the server's builder settings, a service that reads each request's body
/// and answers `message` (an encoded `ResolveBooleanResponse`) in one gRPC
/// frame with `grpc-status: 0`; returns its address.
async fn bare_grpc_server(message: Bytes) -> Result<SocketAddr, Error> {
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0); // not compressed
    framed.extend_from_slice(&u32::try_from(message.len())?.to_be_bytes());
    framed.extend_from_slice(&message);
    let framed = Bytes::from(framed);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let framed = framed.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let framed = framed.clone();
                    async move {
                        let _ = request.into_body().collect().await;
                        let mut trailers = hyper::HeaderMap::new();
                        trailers.insert("grpc-status", HeaderValue::from_static("0"));
                        let mut response = Response::new(OneMessage {
                            data: Some(framed),
                            trailers: Some(trailers),
                        });
                        response.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/grpc"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// A response body of one data frame, then trailers.
struct OneMessage {
    data: Option<Bytes>,
    trailers: Option<hyper::HeaderMap>,
}

impl hyper::body::Body for OneMessage {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let frame = match self.data.take() {
            Some(data) => Some(hyper::body::Frame::data(data)),
            None => self.trailers.take().map(hyper::body::Frame::trailers),
        };
        std::task::Poll::Ready(frame.map(Ok))
    }
}

// ===== the client =====

/// The bytes of a keep-alive `POST path` with a JSON `body`.
fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Bytes {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    Bytes::from(request)
}

/// One answer, as the client reads it.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Bytes,
}

/// A keep-alive connection that reads answers into one buffer.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Connection, Error> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `request` and reads the answer: its status and the length of
    /// its head and body (both in `buffer` afterwards).
    async fn exchange(&mut self, request: &[u8]) -> Result<(u16, usize, usize), Error> {
        self.stream.write_all(request).await?;
        self.buffer.clear();
        let head = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await?;
        };
        let (status, length) = parse_head(&self.buffer[..head])?;
        while self.buffer.len() < head + length {
            self.fill().await?;
        }
        if self.buffer.len() > head + length {
            return Err("the server sent more than one answer".into());
        }
        Ok((status, head, length))
    }

    async fn fill(&mut self) -> Result<(), Error> {
        let mut chunk = [0_u8; 8192];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            return Err("the server closed the connection".into());
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

/// The status and `Content-Length` (0 when absent) of a response head.
fn parse_head(head: &[u8]) -> Result<(u16, usize), Error> {
    let text = std::str::from_utf8(head)?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or("no status line")?;
    let mut length = 0;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err("a chunked answer (the client reads Content-Length only)".into());
            }
        }
    }
    Ok((status, length))
}

fn header_value(head: &[u8], wanted: &str) -> Option<String> {
    std::str::from_utf8(head)
        .ok()?
        .split("\r\n")
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case(wanted)
                .then(|| value.trim().to_owned())
        })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Sends `request` once on a fresh connection; the answer must have
/// status `expect`.
async fn fetch(addr: SocketAddr, request: &[u8], expect: u16) -> Result<Answer, Error> {
    let mut connection = Connection::open(addr).await?;
    let (status, head, length) = connection.exchange(request).await?;
    let answer = Answer {
        status,
        etag: header_value(&connection.buffer[..head], "etag"),
        body: Bytes::copy_from_slice(&connection.buffer[head..head + length]),
    };
    if answer.status != expect {
        return Err(format!(
            "{addr} answered {} (expected {expect}): {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )
        .into());
    }
    Ok(answer)
}

/// What one run of a scenario measured.
struct Run {
    requests: u64,
    time: Duration,
    latencies_us: Vec<u32>,
    /// CPU time this process spent in the measured time, if known.
    cpu: Option<Duration>,
}

/// Runs `scenario` (HTTP/1.1 on `settings.connections` connections, or
/// its gRPC calls): a warm-up, then `settings.measured` with every latency
/// recorded.
async fn drive(scenario: &Scenario, settings: &Settings) -> Result<Run, Error> {
    let start = Instant::now() + settings.warm_up;
    let end = start + settings.measured;
    let mut tasks = Vec::new();
    match &scenario.load {
        Load::Http1 {
            addr,
            request,
            expect_status,
        } => {
            for _ in 0..settings.connections {
                let mut connection = Connection::open(*addr).await?;
                let (request, expect) = (request.clone(), *expect_status);
                tasks.push(tokio::spawn(repeat(start, end, async move || {
                    let (status, _, _) = connection.exchange(&request).await?;
                    if status != expect {
                        return Err(format!("answered {status}, expected {expect}").into());
                    }
                    Ok(())
                })));
            }
        }
        Load::Grpc {
            addr,
            connections,
            in_flight,
            request,
            expect,
        } => {
            let mut channels = Vec::with_capacity(*connections);
            for _ in 0..*connections {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                    .tcp_nodelay(true)
                    .connect()
                    .await?;
                channels.push(channel);
            }
            for task in 0..*in_flight {
                let mut client = ServiceClient::new(channels[task % channels.len()].clone());
                let (request, expect) = (request.clone(), *expect);
                tasks.push(tokio::spawn(repeat(start, end, async move || {
                    let answer = client.resolve_boolean(request.clone()).await?;
                    if answer.get_ref().value != expect {
                        return Err(format!("answered {answer:?}, expected {expect}").into());
                    }
                    Ok(())
                })));
            }
        }
    }
    tokio::time::sleep_until(start.into()).await;
    let cpu_start = process_cpu();
    tokio::time::sleep_until(end.into()).await;
    let cpu = process_cpu()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await??);
    }
    Ok(Run {
        requests: latencies_us.len() as u64,
        time: end.saturating_duration_since(start),
        latencies_us,
        cpu,
    })
}

/// Calls `once` back to back until `end`, recording the latency of each
/// call sent from `start` on, in microseconds.
async fn repeat(
    start: Instant,
    end: Instant,
    mut once: impl AsyncFnMut() -> Result<(), Error>,
) -> Result<Vec<u32>, Error> {
    let mut latencies = Vec::with_capacity(64 * 1024);
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        once().await?;
        if sent >= start {
            let micros = sent.elapsed().as_micros();
            latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
        }
    }
    Ok(latencies)
}

/// [`CONTEXT`] as the evaluation service's context struct.
fn grpc_context() -> Result<prost_types::Struct, Error> {
    let json: serde_json::Value = serde_json::from_str(CONTEXT)?;
    let serde_json::Value::Object(context) = &json["context"] else {
        return Err("CONTEXT holds no context object".into());
    };
    let fields = context
        .iter()
        .map(|(key, value)| {
            let text = value.as_str().ok_or("CONTEXT holds only strings")?;
            let value = prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(text.to_owned())),
            };
            Ok((key.clone(), value))
        })
        .collect::<Result<_, Error>>()?;
    Ok(prost_types::Struct { fields })
}

/// The CPU time (user and system, every thread) this process has used:
/// Linux's `/proc/self/stat`, in `USER_HZ` ticks of 10 ms; `None`
/// elsewhere.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces: state is field 3, utime 14, stime 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}
