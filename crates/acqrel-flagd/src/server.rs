//! The network side: four listeners (OFREP, flagd's gRPC evaluation and
//! sync services, management), a task per connection in an acqrel-pool
//! [`TaskGroup`], routing, body limits, rate limiting, and the drain on
//! shutdown.
//!
//! # Shutdown
//!
//! [`Running::shutdown`] cancels the server's [`Shutdown`]: the OFREP and
//! gRPC accept loops stop (their listeners close), every connection
//! finishes the requests it is serving and closes (hyper's graceful
//! shutdown: HTTP/2 connections get a GOAWAY; idle keep-alive connections
//! close at once), change streams end (the SSE ones with the end of their
//! body, the gRPC ones with status `UNAVAILABLE`, which flagd's providers
//! answer by reconnecting), which lets their connections close too, and
//! `/readyz` answers 503. It then waits up to the grace period for those
//! connections; those still running after it are aborted (their futures
//! dropped, the sockets closed). Only then does the management port stop,
//! so probes and scrapes see the drain.
//!
//! Each port has its own connection limit: OFREP and each gRPC port
//! `--max-connections`, management [`MANAGEMENT_CONNECTIONS`], so clients
//! of the one can never starve another.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acqrel_core::Latch;
use acqrel_flags::FlagStore;
use acqrel_pool::{Shutdown, TaskGroup};
use acqrel_ratelimit::{KeyedRateLimiter, Quota};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};

use crate::cli::Options;
use crate::grpc;
use crate::metrics::Metrics;
use crate::ofrep::{self, Answer};
use crate::sources::{LoadFailure, Sources};
use crate::sse::{EventStream, StreamSlot};
use crate::state::{Live, State};

/// A response body: a whole one, or a change stream.
type Body = Either<Full<Bytes>, EventStream>;

/// How long a client gets to send a request's headers (hyper also counts
/// an idle keep-alive connection's wait for its next request against it),
/// and its body.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections open at once on the management port (probes and scrapes).
pub const MANAGEMENT_CONNECTIONS: usize = 64;

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Port {
    Ofrep,
    Grpc(grpc::Service),
    Management,
}

/// Why the server could not start listening.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut options = acqrel_flagd::Options::new(vec!["flags.json".into()]);
/// options.ofrep_port = taken.local_addr().unwrap().port();
/// (options.port, options.sync_port, options.management_port) = (0, 0, 0);
/// let err = acqrel_flagd::Server::bind(options).await.unwrap_err();
/// assert!(err.to_string().contains("OFREP"), "{err}");
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for {what} on {addr}: {source}")]
pub struct BindError {
    /// Which port: `OFREP`, `gRPC evaluation`, `gRPC sync` or
    /// `management`.
    pub what: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// A server bound to its ports, not yet serving.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = std::env::temp_dir().join(format!("acqrel-flagd-doc-server-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("flags.json");
/// # std::fs::write(&path, r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#).unwrap();
/// let mut options = acqrel_flagd::Options::new(vec![path]);
/// (options.ofrep_port, options.management_port) = (0, 0);
/// (options.port, options.sync_port) = (0, 0);
/// let server = acqrel_flagd::Server::bind(options).await?;
/// let ofrep = server.ofrep_addr();
/// let running = server.serve();
/// running.load().await?;
/// assert!(running.is_ready());
/// let report = running.shutdown().await;
/// assert_eq!(report.aborted, 0);
/// # let _ = ofrep;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Server {
    state: Arc<State>,
    ofrep: TcpListener,
    evaluation: TcpListener,
    sync: TcpListener,
    management: TcpListener,
}

impl Server {
    /// Binds the OFREP, gRPC evaluation (`--port`), gRPC sync
    /// (`--sync-port`) and management ports of `options` (port 0 picks a
    /// free one; see [`ofrep_addr`](Self::ofrep_addr)).
    ///
    /// # Errors
    ///
    /// [`BindError`] if a port cannot be bound.
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub async fn bind(options: Options) -> Result<Server, BindError> {
        let bind = |what, port| async move {
            let addr = SocketAddr::new(options.bind, port);
            TcpListener::bind(addr)
                .await
                .map_err(|source| BindError { what, addr, source })
        };
        let ofrep = bind("OFREP", options.ofrep_port).await?;
        let evaluation = bind("gRPC evaluation", options.port).await?;
        let sync = bind("gRPC sync", options.sync_port).await?;
        let management = bind("management", options.management_port).await?;
        // Port 0 picks a free port: from here on the options name the
        // ports bound (the bulk answer's event-stream URL falls back on
        // them when a request has no usable Host).
        let mut options = options;
        if let Ok(addr) = ofrep.local_addr() {
            options.ofrep_port = addr.port();
        }
        if let Ok(addr) = management.local_addr() {
            options.management_port = addr.port();
        }
        if let Ok(addr) = evaluation.local_addr() {
            options.port = addr.port();
        }
        if let Ok(addr) = sync.local_addr() {
            options.sync_port = addr.port();
        }
        let live = Arc::new(Live {
            store: Arc::new(FlagStore::new()),
            sources: std::sync::OnceLock::new(),
            ready: Latch::new(),
            sse_open: AtomicUsize::new(0),
            grpc_open: [AtomicUsize::new(0), AtomicUsize::new(0)],
        });
        let limiter = options
            .rate_limit
            .map(|rate| KeyedRateLimiter::<IpAddr>::new(Quota::per_second(rate)));
        let state = Arc::new(State {
            metrics: Metrics::new(Arc::clone(&live)),
            live,
            options,
            instance: instance(),
            limiter,
            stop: Shutdown::new(),
        });
        Ok(Server {
            state,
            ofrep,
            evaluation,
            sync,
            management,
        })
    }

    /// The address the OFREP port is bound to.
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub fn ofrep_addr(&self) -> SocketAddr {
        self.ofrep.local_addr().unwrap_or_else(|_| {
            SocketAddr::new(self.state.options.bind, self.state.options.ofrep_port)
        })
    }

    /// The address flagd's gRPC evaluation service is bound to (`--port`).
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub fn evaluation_addr(&self) -> SocketAddr {
        self.evaluation
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(self.state.options.bind, self.state.options.port))
    }

    /// The address flagd's gRPC sync service is bound to (`--sync-port`).
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub fn sync_addr(&self) -> SocketAddr {
        self.sync.local_addr().unwrap_or_else(|_| {
            SocketAddr::new(self.state.options.bind, self.state.options.sync_port)
        })
    }

    /// The address the management port is bound to.
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub fn management_addr(&self) -> SocketAddr {
        self.management.local_addr().unwrap_or_else(|_| {
            SocketAddr::new(self.state.options.bind, self.state.options.management_port)
        })
    }

    /// Starts accepting on every port, on the current tokio runtime. Until
    /// [`Running::load`] succeeds, `/readyz` answers 503, the OFREP
    /// endpoints 503 with `Retry-After`, and the gRPC methods
    /// `UNAVAILABLE`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub fn serve(self) -> Running {
        let management_limit =
            NonZeroUsize::new(MANAGEMENT_CONNECTIONS).unwrap_or(NonZeroUsize::MIN);
        let ofrep_limit = self.state.options.max_connections;
        let ofrep = Listening::start(self.ofrep, Port::Ofrep, &self.state, ofrep_limit);
        let evaluation = Listening::start(
            self.evaluation,
            Port::Grpc(grpc::Service::Evaluation),
            &self.state,
            ofrep_limit,
        );
        let sync = Listening::start(
            self.sync,
            Port::Grpc(grpc::Service::Sync),
            &self.state,
            ofrep_limit,
        );
        let management = Listening::start(
            self.management,
            Port::Management,
            &self.state,
            management_limit,
        );
        Running {
            state: self.state,
            ofrep,
            evaluation,
            sync,
            management,
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("ofrep", &self.ofrep_addr())
            .field("evaluation", &self.evaluation_addr())
            .field("sync", &self.sync_addr())
            .field("management", &self.management_addr())
            .finish()
    }
}

/// A serving server: load its flags, then shut it down.
///
/// # Examples
///
/// See [`Server`].
pub struct Running {
    state: Arc<State>,
    ofrep: Listening,
    evaluation: Listening,
    sync: Listening,
    management: Listening,
}

/// One port being served: its accept loop and its connections, stopped by
/// its own signal.
struct Listening {
    stop: Shutdown,
    connections: Arc<TaskGroup<io::Error>>,
    accepting: TaskGroup<io::Error>,
}

impl Listening {
    fn start(
        listener: TcpListener,
        port: Port,
        state: &Arc<State>,
        limit: NonZeroUsize,
    ) -> Listening {
        // The OFREP and gRPC ports stop with the server's signal; the
        // management port with its own, after the drain.
        let stop = match port {
            Port::Ofrep | Port::Grpc(_) => state.stop.clone(),
            Port::Management => Shutdown::new(),
        };
        let connections = Arc::new(TaskGroup::new().limit(limit));
        let accepting = TaskGroup::new();
        let task = accept(
            listener,
            port,
            Arc::clone(state),
            stop.clone(),
            Arc::clone(&connections),
        );
        // The accept loop never fails: a group of one, only waited on.
        let spawned = accepting.try_spawn(async move {
            task.await;
            Ok::<(), io::Error>(())
        });
        if spawned.is_err() {
            tracing::error!("the accept loop could not be started");
        }
        Listening {
            stop,
            connections,
            accepting,
        }
    }

    /// Stops accepting, waits up to `grace` for the connections, aborts
    /// the rest; returns whether they all finished and how many were left.
    async fn stop(self, grace: Duration) -> (bool, usize) {
        self.stop.cancel("shutting down");
        let _ = self.accepting.wait().await;
        let drained = tokio::time::timeout(grace, self.connections.wait())
            .await
            .is_ok();
        let left = self.connections.len();
        // Dropping the last handle to the group aborts what runs in it.
        drop(self.connections);
        (drained, left)
    }
}

/// What a shutdown did.
///
/// # Examples
///
/// See [`Server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every OFREP and gRPC connection finished within the grace
    /// period.
    pub drained: bool,
    /// OFREP and gRPC connections still running when the grace period
    /// ended, aborted.
    pub aborted: usize,
}

impl Running {
    /// Loads every flag file and starts watching them; the server is ready
    /// once it returns `Ok`. The files are read on a blocking thread.
    ///
    /// # Errors
    ///
    /// [`LoadFailure`] for the first file that does not load; the server
    /// stays unready.
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub async fn load(&self) -> Result<(), LoadFailure> {
        let files = self.state.options.files.clone();
        let store = Arc::clone(&self.state.live.store);
        let debounce = self.state.options.debounce;
        let loading = tokio::task::spawn_blocking(move || Sources::start(&files, store, debounce));
        let loaded = match loading.await {
            Ok(loaded) => loaded?,
            Err(join) => match join.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Cancelled: only when the runtime is shutting down, which
                // drops this future too.
                Err(_) => return std::future::pending().await,
            },
        };
        let _ = self.state.live.sources.set(loaded);
        self.state.live.ready.open();
        tracing::info!(
            generation = self.state.live.store.generation(),
            "flags loaded; ready"
        );
        Ok(())
    }

    /// Whether every flag file loaded.
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub fn is_ready(&self) -> bool {
        self.state.live.ready.is_open()
    }

    /// The store being served (the merge of every flag file).
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub fn store(&self) -> &Arc<FlagStore> {
        &self.state.live.store
    }

    /// The signal [`shutdown`](Self::shutdown) cancels; cancel it (or a
    /// child's parent) to stop accepting and end the change streams
    /// without waiting.
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub fn stop_signal(&self) -> &Shutdown {
        &self.state.stop
    }

    /// Stops accepting, lets every connection finish its requests within
    /// `--shutdown-grace`, ends the change streams, and aborts what is
    /// left after the grace period. The flag files' watches are stopped
    /// on a blocking thread it does not wait for (a reload stuck reading
    /// a file cannot hold it up).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes aborts every connection
    /// at once (as the grace period ending would).
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub async fn shutdown(self) -> ShutdownReport {
        let grace = self.state.options.shutdown_grace;
        // One signal stops all three; their drains run side by side, so
        // the grace period is one period, not three.
        let ((ofrep_drained, ofrep_left), (eval_drained, eval_left), (sync_drained, sync_left)) = tokio::join!(
            self.ofrep.stop(grace),
            self.evaluation.stop(grace),
            self.sync.stop(grace)
        );
        let drained = ofrep_drained && eval_drained && sync_drained;
        let aborted = ofrep_left + eval_left + sync_left;
        if !drained {
            tracing::warn!(aborted, "grace period over: aborted the connections left");
        }
        // Probes and scrapes may be mid-request: a short grace of their own.
        let _ = self.management.stop(Duration::from_millis(500)).await;
        // The state holds the flag files' watches, whose threads are
        // joined when it is dropped: a reload stuck reading a file (a hung
        // mount, a FIFO no one writes) must not hold the shutdown up. It
        // is dropped on a blocking thread, not waited for.
        let state = self.state;
        drop(tokio::task::spawn_blocking(move || drop(state)));
        ShutdownReport { drained, aborted }
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("ready", &self.is_ready())
            .field("connections", &self.ofrep.connections.len())
            .finish()
    }
}

/// The ETag and event-id prefix of this process: its start time and pid.
fn instance() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos as u64, std::process::id())
}

// ===== accepting =====

async fn accept(
    listener: TcpListener,
    port: Port,
    state: Arc<State>,
    stop: Shutdown,
    connections: Arc<TaskGroup<io::Error>>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let task = connection(stream, peer, port, Arc::clone(&state), stop.clone());
        let task = CatchUnwind(Box::pin(task));
        // Waits while the port's limit of connections are open (the
        // kernel's backlog holds the rest), unless the port stops meanwhile.
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = connections.spawn(task) => {}
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    port: Port,
    state: Arc<State>,
    stop: Shutdown,
) -> Result<(), io::Error> {
    if let Port::Grpc(service) = port {
        return grpc_connection(stream, peer, service, state, stop).await;
    }
    let service_state = Arc::clone(&state);
    let service = service_fn(move |request| {
        let state = Arc::clone(&service_state);
        async move { Ok::<_, Infallible>(handle(&state, port, peer, request).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT);
    let serving = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let result = serve_until_stopped(serving, &stop, |serving| serving.graceful_shutdown()).await;
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
    Ok(())
}

/// Serves a connection to its end; once `stop` is cancelled, asks it to
/// shut down gracefully (`graceful`: HTTP/1.1 closes after the answer in
/// progress, HTTP/2 sends a GOAWAY) and waits for that.
///
/// Biased to the connection: a request already received when the stop
/// comes is read and answered before the graceful shutdown, which would
/// otherwise close a connection hyper has read nothing from yet.
async fn serve_until_stopped<C: Future>(
    mut serving: Pin<&mut C>,
    stop: &Shutdown,
    graceful: impl FnOnce(Pin<&mut C>),
) -> C::Output {
    tokio::select! {
        biased;
        result = serving.as_mut() => result,
        () = stop.cancelled() => {
            graceful(serving.as_mut());
            serving.await
        }
    }
}

/// One connection of a gRPC port: HTTP/2 (with prior knowledge, as gRPC
/// clients speak it) or HTTP/1.1, through hyper-util's `auto` builder.
async fn grpc_connection(
    stream: TcpStream,
    peer: SocketAddr,
    service: grpc::Service,
    state: Arc<State>,
    stop: Shutdown,
) -> Result<(), io::Error> {
    let service_state = Arc::clone(&state);
    let service = service_fn(move |request: Request<Incoming>| {
        let state = Arc::clone(&service_state);
        async move {
            if let Some(wait) = refused_for(&state, peer) {
                state
                    .metrics
                    .grpc("rate-limited", Some(tonic::Code::ResourceExhausted));
                let status = tonic::Status::resource_exhausted(format!(
                    "rate limit exceeded; retry in {} ms",
                    wait.as_millis().max(1)
                ));
                return Ok::<_, Infallible>(status.into_http());
            }
            Ok::<_, Infallible>(grpc::handle(&state, service, request).await)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Pings from the server find dead peers of idle streams (a
        // provider's EventStream can be quiet for hours).
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let serving = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let result = serve_until_stopped(serving, &stop, |serving| serving.graceful_shutdown()).await;
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "gRPC connection ended with an error");
    }
    Ok(())
}

/// Runs a connection's future, turning a panic in it into a log line: the
/// connection is closed, the server goes on, and nothing is kept (a
/// [`TaskGroup`] would keep each panic until it is waited on, at shutdown).
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future<Output = Result<(), io::Error>>> Future for CatchUnwind<F> {
    type Output = Result<(), io::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(%message, "a connection task panicked; its connection is closed");
                Poll::Ready(Ok(()))
            }
        }
    }
}

// ===== routing =====

async fn handle(
    state: &Arc<State>,
    port: Port,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Body> {
    let (route, response) = match port {
        Port::Ofrep => ofrep_route(state, peer, request).await,
        Port::Management => management_route(state, &request),
        // Served by `grpc_connection`, never through here.
        Port::Grpc(_) => ("other", text(404, "not found\n")),
    };
    state.metrics.answered(route, response.status().as_u16());
    response
}

/// The routes, as `/metrics` labels them.
const EVALUATE_ONE: &str = "/ofrep/v1/evaluate/flags/{key}";
const EVALUATE_ALL: &str = "/ofrep/v1/evaluate/flags";
const EVENTS: &str = "/ofrep/v1/events";
const CONFIGURATION: &str = "/ofrep/v1/configuration";

async fn ofrep_route(
    state: &Arc<State>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> (&'static str, Response<Body>) {
    let path = request.uri().path();
    let (route, method) = if path == EVALUATE_ALL {
        (EVALUATE_ALL, Method::POST)
    } else if path.starts_with("/ofrep/v1/evaluate/flags/") {
        (EVALUATE_ONE, Method::POST)
    } else if path == EVENTS {
        (EVENTS, Method::GET)
    } else if path == CONFIGURATION {
        (CONFIGURATION, Method::GET)
    } else {
        return ("other", answer(ofrep::general(404, "no such endpoint")));
    };
    if request.method() != method {
        let mut response = answer(ofrep::general(405, "method not allowed"));
        response.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static(if method == Method::GET { "GET" } else { "POST" }),
        );
        return (route, response);
    }
    if let Some(limited) = rate_limited(state, peer) {
        return (route, limited);
    }
    if !state.live.ready.is_open() {
        let mut response = answer(ofrep::general(503, "the flags are not loaded yet"));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return (route, response);
    }
    let response = match route {
        EVALUATE_ONE => evaluate_one(state, request).await,
        EVALUATE_ALL => evaluate_all(state, request).await,
        EVENTS => events(state, &request),
        _ => answer(ofrep::configuration()),
    };
    (route, response)
}

fn management_route(state: &State, request: &Request<Incoming>) -> (&'static str, Response<Body>) {
    let route = match request.uri().path() {
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        _ => return ("other", text(404, "not found\n")),
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(405, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return (route, response);
    }
    let response = match route {
        "/healthz" => text(200, "ok\n"),
        "/readyz" if state.stop.is_cancelled() => text(503, "shutting down\n"),
        "/readyz" if state.live.ready.is_open() => text(200, "ready\n"),
        "/readyz" => text(503, "loading flags\n"),
        _ => {
            let mut response = text(200, &state.metrics.encode());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
    };
    (route, response)
}

/// 429 with `Retry-After` (whole seconds, rounded up) if `--rate-limit`
/// refuses `peer` now.
fn rate_limited(state: &State, peer: SocketAddr) -> Option<Response<Body>> {
    let wait = refused_for(state, peer)?;
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = answer(ofrep::general(429, "rate limit exceeded"));
    if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Some(response)
}

/// How long `peer` must wait if `--rate-limit` refuses it now (every
/// port's requests draw on the same per-client bucket).
fn refused_for(state: &State, peer: SocketAddr) -> Option<Duration> {
    let limiter = state.limiter.as_ref()?;
    let refused = limiter.check(&client_key(peer.ip())).err()?;
    Some(
        refused
            .not_until()
            .map_or(Duration::from_secs(1), |n| n.wait_time()),
    )
}

/// The rate limiter's key for a client address: IPv4 as it is (an
/// IPv4-mapped IPv6 address as its IPv4), IPv6 by its /64, the block one
/// host is usually given, so a host cannot get a fresh bucket per address.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1_u128 << 64) - 1))),
        },
    }
}

// ===== endpoints =====

async fn evaluate_one(state: &State, request: Request<Incoming>) -> Response<Body> {
    let raw = &request.uri().path()["/ofrep/v1/evaluate/flags/".len()..];
    let key = match percent_decode(raw) {
        Some(key) => key,
        None => {
            return answer(ofrep::general(
                400,
                "the flag key is not valid percent-encoded UTF-8",
            ));
        }
    };
    let body = match read_body(state, request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let ctx = match ofrep::context(Some(&key), &body) {
        Ok(ctx) => ctx,
        Err(invalid) => return answer(invalid),
    };
    answer(ofrep::evaluate_one(state, &key, &ctx))
}

async fn evaluate_all(state: &State, request: Request<Incoming>) -> Response<Body> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_owned);
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = match read_body(state, request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    // One generation for the tag and the answer.
    let flags = state.live.store.snapshot();
    let etag = ofrep::bulk_etag(state, flags.generation(), &body);
    let etag_value = HeaderValue::from_str(&etag).ok();
    if if_none_match.is_some_and(|tags| ofrep::matches(&tags, &etag)) {
        let mut response = Response::new(Either::Left(Full::new(Bytes::new())));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        if let Some(etag) = etag_value {
            response.headers_mut().insert(header::ETAG, etag);
        }
        return response;
    }
    let ctx = match ofrep::context(None, &body) {
        Ok(ctx) => ctx,
        Err(invalid) => return answer(invalid),
    };
    // Without a usable Host, the bound address (`Display` brackets IPv6).
    let host = host.unwrap_or_else(|| {
        SocketAddr::new(state.options.bind, state.options.ofrep_port).to_string()
    });
    // `since` names the generation this answer was evaluated on: a stream
    // opened after a newer one was published tells the client at once.
    let since = ofrep::config_tag(state, flags.generation());
    let events_url = format!("http://{host}{EVENTS}?since={since}");
    let mut response = answer(ofrep::evaluate_all(state, &flags, &ctx, &events_url));
    if let Some(etag) = etag_value {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

fn events(state: &Arc<State>, request: &Request<Incoming>) -> Response<Body> {
    let Some(slot) = StreamSlot::take(state) else {
        let mut response = answer(ofrep::general(503, "too many change streams open"));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    // The header (a reconnecting client's) wins over the URL's `since`
    // (the bulk answer's generation, for the first connection).
    let since = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("since="))
    });
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .or(since);
    let stream = EventStream::open(slot, last_event_id);
    let mut response = Response::new(Either::Right(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The request body, at most `--max-body` bytes, within [`READ_TIMEOUT`].
async fn read_body(state: &State, request: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    let max = state.options.max_body;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(too_large(max));
    }
    let limited = Limited::new(request.into_body(), max);
    match tokio::time::timeout(READ_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(too_large(max)),
        Ok(Err(error)) => Err(answer(ofrep::general(
            400,
            &format!("the request body could not be read: {error}"),
        ))),
        Err(_) => Err(answer(ofrep::general(
            400,
            "the request body did not arrive in time",
        ))),
    }
}

fn too_large(max: usize) -> Response<Body> {
    answer(ofrep::general(
        413,
        &format!("the request body is larger than {max} bytes"),
    ))
}

fn answer(answer: Answer) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn text(status: u16, body: &str) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(body.to_owned()))));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not
/// UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("plain-key").as_deref(), Some("plain-key"));
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
