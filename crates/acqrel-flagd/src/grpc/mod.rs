//! flagd's gRPC services: evaluation (`--port`) and sync (`--sync-port`),
//! served on hyper's HTTP/2 by the same accept loops, connection tasks
//! and drain as the OFREP port (see `server.rs`).
//!
//! Each port's connections speak HTTP/2 with prior knowledge, as gRPC
//! clients do, or HTTP/1.1. The path picks the service; tonic's generated
//! servers decode, call and encode. On the evaluation port a JSON `POST`
//! is a Connect unary call instead (`connect.rs`), over either HTTP
//! version; any other HTTP/1.1 request gets gRPC's `UNIMPLEMENTED`
//! status, so a stray curl gets an answer rather than a reset.

pub(crate) mod connect;
pub(crate) mod convert;
pub(crate) mod evaluation;
pub(crate) mod evaluation_v2;
pub mod proto;
pub(crate) mod sync;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::Request;
use hyper::body::Incoming;
use tonic::Status;
use tonic::body::Body as GrpcBody;
use tonic::codegen::Service as _;
use tonic::metadata::MetadataMap;

use self::convert::Selector;
use crate::state::State;

/// The header flagd's providers send to select a flag set.
pub(crate) const SELECTOR_HEADER: &str = "flagd-selector";

/// Which gRPC port a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    /// `flagd.evaluation.v1.Service` and `flagd.evaluation.v2.Service`.
    Evaluation,
    /// `flagd.sync.v1.FlagSyncService`.
    Sync,
}

/// The kinds of gRPC stream, each counted and bounded on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// `EventStream`.
    Events = 0,
    /// `SyncFlags`.
    Sync = 1,
}

/// A slot of `--max-sse-streams` for one kind of gRPC stream, given back
/// when the stream is dropped (the client went away, or the server
/// stopped).
pub(crate) struct GrpcSlot {
    state: Arc<State>,
    kind: StreamKind,
}

impl GrpcSlot {
    /// Takes a slot, if fewer than `--max-sse-streams` streams of `kind`
    /// are open.
    pub(crate) fn take(state: &Arc<State>, kind: StreamKind) -> Option<GrpcSlot> {
        let max = state.options.max_sse_streams.get();
        // Relaxed: the count only bounds how many streams are open; it
        // publishes nothing (each stream's data is its own).
        state.live.grpc_open[kind as usize]
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()?;
        Some(GrpcSlot {
            state: Arc::clone(state),
            kind,
        })
    }

    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }
}

impl Drop for GrpcSlot {
    fn drop(&mut self) {
        // Relaxed: as in `take`.
        self.state.live.grpc_open[self.kind as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// The request's selector (the `Flagd-Selector` header; none: every
/// flag).
pub(crate) fn selector(metadata: &MetadataMap) -> Result<Selector, Status> {
    match metadata.get(SELECTOR_HEADER) {
        None => Ok(Selector::All),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| Status::invalid_argument("the Flagd-Selector header is not text"))?;
            Selector::parse(text).map_err(Status::invalid_argument)
        }
    }
}

/// `UNAVAILABLE` until every flag file loaded (a provider retries).
pub(crate) fn unavailable_until_ready(state: &State) -> Result<(), Status> {
    // Acquire (inside `is_open`) pairs with the Release of `Latch::open`
    // after the first merge: a request that sees it open sees the store
    // merged.
    if state.live.ready.is_open() {
        Ok(())
    } else {
        Err(Status::unavailable("the flags are not loaded yet"))
    }
}

/// The service a request's path names.
enum Served {
    V1,
    V2,
    Sync,
}

/// Answers one request of a gRPC port.
pub(crate) async fn handle(
    state: &Arc<State>,
    service: Service,
    request: Request<Incoming>,
) -> hyper::Response<GrpcBody> {
    if service == Service::Evaluation && connect::is_unary_json(&request) {
        return connect::handle(state, request).await;
    }
    let path = request.uri().path();
    let served = match service {
        Service::Evaluation if path.starts_with("/flagd.evaluation.v1.Service/") => Served::V1,
        Service::Evaluation if path.starts_with("/flagd.evaluation.v2.Service/") => Served::V2,
        Service::Sync if path.starts_with("/flagd.sync.v1.FlagSyncService/") => Served::Sync,
        _ => {
            state
                .metrics
                .grpc("other", Some(tonic::Code::Unimplemented));
            return Status::unimplemented(format!("no such service or method: {path}")).into_http();
        }
    };
    let evaluation = || evaluation::Evaluation {
        state: Arc::clone(state),
    };
    let response = match served {
        Served::V1 => {
            proto::evaluation::v1::service_server::ServiceServer::new(evaluation())
                .call(request)
                .await
        }
        Served::V2 => {
            proto::evaluation::v2::service_server::ServiceServer::new(evaluation())
                .call(request)
                .await
        }
        Served::Sync => {
            let sync = sync::Sync {
                state: Arc::clone(state),
            };
            proto::sync::v1::flag_sync_service_server::FlagSyncServiceServer::new(sync)
                .call(request)
                .await
        }
    };
    // tonic's generated servers never fail: errors are gRPC statuses.
    match response {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
