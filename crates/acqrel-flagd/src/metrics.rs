//! `/metrics`: a prometheus-client registry, in Prometheus's text format.
//!
//! Counted as they happen: evaluations (by flag and reason) and HTTP
//! requests (by route and status). Read at each scrape, from the state
//! that already holds them (so they cannot drift from it): reloads applied
//! and refused per file (the watches' statuses), the flag set's generation
//! and size, and the change streams open.
//!
//! Label values are bounded: a flag label is a key of the served flag set
//! (a key that names no flag is counted under `flag=""`, so clients asking
//! for made-up keys cannot grow the registry), routes and statuses are the
//! server's own fixed sets.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use acqrel_flags::Reason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::state::Live;

type EvaluationLabels = [(&'static str, String); 2];
type RequestLabels = [(&'static str, &'static str); 2];
type GrpcLabels = [(&'static str, &'static str); 2];

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    evaluations: Family<EvaluationLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    grpc: Family<GrpcLabels, Counter>,
}

impl Metrics {
    pub(crate) fn new(live: Arc<Live>) -> Metrics {
        let mut registry = Registry::with_prefix("acqrel_flagd");
        let evaluations = Family::<EvaluationLabels, Counter>::default();
        registry.register(
            "evaluations",
            "Flag evaluations, by flag key (\"\" for a key that names no flag) and reason",
            evaluations.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status code",
            requests.clone(),
        );
        let grpc = Family::<GrpcLabels, Counter>::default();
        registry.register(
            "grpc_requests",
            "gRPC calls answered (a stream counts once, when it opens), by method and status code",
            grpc.clone(),
        );
        registry.register_collector(Box::new(LiveCollector { live }));
        Metrics {
            registry,
            evaluations,
            requests,
            grpc,
        }
    }

    /// Counts one evaluation of `flag` (`None`: a key that names no flag).
    pub(crate) fn evaluated(&self, flag: Option<&str>, reason: Reason) {
        let labels = [
            ("flag", flag.unwrap_or_default().to_owned()),
            ("reason", reason.as_str().to_owned()),
        ];
        self.evaluations.get_or_create(&labels).inc();
    }

    /// Counts one answered request.
    pub(crate) fn answered(&self, route: &'static str, status: u16) {
        self.requests
            .get_or_create(&[("route", route), ("status", status_label(status))])
            .inc();
    }

    /// Counts one answered gRPC call (`None`: `OK`). `method` is one of
    /// the services' fixed method names.
    pub(crate) fn grpc(&self, method: &'static str, code: Option<tonic::Code>) {
        let code = code.map_or("OK", code_label);
        self.grpc
            .get_or_create(&[("method", method), ("code", code)])
            .inc();
    }

    /// The registry in Prometheus's text format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String does not fail; a collector that fails
        // leaves what it wrote so far.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%error, "metrics encoding stopped early");
        }
        text
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The status codes the server answers with, as label values.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        304 => "304",
        400 => "400",
        404 => "404",
        405 => "405",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

/// A gRPC status code as a label value (gRPC's own names).
fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Reads, at each scrape, what the server's live state already holds.
struct LiveCollector {
    live: Arc<Live>,
}

impl fmt::Debug for LiveCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCollector").finish_non_exhaustive()
    }
}

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let live = &self.live;
        gauge(
            &mut encoder,
            "flag_set_generation",
            "Generation of the flag set served (one more for each published change)",
            live.store.generation(),
        )?;
        gauge(
            &mut encoder,
            "flags",
            "Flags in the flag set served",
            live.store.snapshot().len() as u64,
        )?;
        gauge(
            &mut encoder,
            "sse_streams",
            "Change streams (server-sent events) open",
            // Relaxed: a statistic; the count publishes nothing.
            live.sse_open.load(Ordering::Relaxed) as u64,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "grpc_streams",
                "gRPC streams open, by method (EventStream, SyncFlags)",
                None,
                ConstGauge::new(0_i64).metric_type(),
            )?;
            for (method, open) in [
                ("EventStream", &live.grpc_open[0]),
                ("SyncFlags", &live.grpc_open[1]),
            ] {
                // Relaxed: a statistic; the count publishes nothing.
                let open = i64::try_from(open.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
                ConstGauge::new(open).encode(family.encode_family(&[("method", method)])?)?;
            }
        }
        gauge(
            &mut encoder,
            "ready",
            "1 once every flag file loaded",
            u64::from(live.ready.is_open()),
        )?;
        if let Some(sources) = live.sources.get() {
            let statuses = sources.statuses();
            let counter = ConstCounter::new(0_u64);
            let mut family = encoder.encode_descriptor(
                "reloads",
                "Flag file reloads since start, by file and outcome (applied, or refused: the last good flags kept serving)",
                None,
                counter.metric_type(),
            )?;
            for (path, status) in &statuses {
                let file = path.display().to_string();
                for (outcome, count) in [("applied", status.reloads), ("refused", status.failures)]
                {
                    let labels = [("file", file.as_str()), ("outcome", outcome)];
                    ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    // Gauges are i64 in prometheus-client; the values here stay far below.
    let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}
