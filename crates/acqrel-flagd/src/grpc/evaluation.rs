//! `flagd.evaluation.v1.Service`: what flagd's RPC providers call.
//!
//! | case | answer |
//! |---|---|
//! | a value | `{value, reason, variant, metadata}` |
//! | no such flag (or not in the selected flag set) | `NOT_FOUND` |
//! | the flag is not of the requested type | `INVALID_ARGUMENT` (`TYPE_MISMATCH`) |
//! | targeting failed | `DATA_LOSS` (`PARSE_ERROR`) |
//! | anything else an evaluation reports | `UNKNOWN` (`GENERAL`) |
//! | a context with a non-finite number or absurd nesting, a selector this server does not know | `INVALID_ARGUMENT` |
//! | the flags are not loaded yet | `UNAVAILABLE` |
//!
//! A disabled flag, or one without a default variant, answers with the
//! type's zero value, no variant and its reason (`DISABLED`, `DEFAULT`):
//! the provider serves its caller's default. `ResolveAll` lists every
//! selected flag the same way, a flag that failed to evaluate with reason
//! `ERROR`.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use acqrel_bus::{Overflow, Receiver};
use acqrel_flags::{
    ErrorCode, FlagValue, Flags, FlagsChanged, Reason, Resolution, Value, ValueKind,
};
use futures_core::Stream;
use prost_types::Struct;
use serde_json::{Map, Value as Json, json};
use tokio::time::{Interval, MissedTickBehavior};
use tonic::{Request, Response, Status};

use super::convert::{self, Selector};
use super::proto::evaluation::v1::{self as pb, any_flag};
use super::{GrpcSlot, StreamKind, selector, unavailable_until_ready};
use crate::state::{Drained, State, drain};

/// The evaluation service.
pub(crate) struct Evaluation {
    pub(crate) state: Arc<State>,
}

/// A typed resolution, checked: an error is already a status.
pub(super) struct Resolved<T> {
    /// The flag's value, or the type's zero where `variant` is `None`.
    pub(super) value: T,
    pub(super) reason: String,
    /// `None`: the value is left to the caller (a disabled flag, or one
    /// without a default variant).
    pub(super) variant: Option<String>,
    pub(super) metadata: Option<Struct>,
}

impl Evaluation {
    /// Resolves the request's flag as a `T`, counting the call under
    /// `method` (both versions of the service count together).
    pub(super) fn resolve<T: FlagValue + Default>(
        &self,
        method: &'static str,
        request: Request<(String, Option<Struct>)>,
    ) -> Result<Resolved<T>, Status> {
        let result = self.try_resolve(request);
        self.state
            .metrics
            .grpc(method, result.as_ref().err().map(Status::code));
        result
    }

    fn try_resolve<T: FlagValue + Default>(
        &self,
        request: Request<(String, Option<Struct>)>,
    ) -> Result<Resolved<T>, Status> {
        unavailable_until_ready(&self.state)?;
        let selector = selector(request.metadata())?;
        let (key, context) = request.into_inner();
        let ctx = convert::context(context).map_err(Status::invalid_argument)?;
        let flags = self.state.live.store.snapshot();
        if let Some(flag) = flags.get(&key)
            && !selector.selects(flag)
        {
            self.state.metrics.evaluated(None, Reason::Error);
            return Err(not_found(&key));
        }
        let resolution = flags.resolve(&key, T::default(), &ctx);
        let known = flags.get(&key).map(|flag| flag.key());
        self.state.metrics.evaluated(known, resolution.reason);
        let Resolution {
            value,
            variant,
            reason,
            error_code,
            error_message,
            metadata,
        } = resolution;
        if let Some(code) = error_code {
            return Err(error_status(&key, code, error_message));
        }
        Ok(Resolved {
            value,
            reason: reason.as_str().to_owned(),
            variant,
            metadata: Some(convert::json_to_struct(&metadata)),
        })
    }
}

/// `NOT_FOUND` for `key`.
fn not_found(key: &str) -> Status {
    Status::not_found(format!("FLAG_NOT_FOUND: flag `{key}` not found"))
}

/// The status flagd answers for an evaluation's error code.
fn error_status(key: &str, code: ErrorCode, message: Option<String>) -> Status {
    let details = message.unwrap_or_default();
    match code {
        ErrorCode::FlagNotFound => not_found(key),
        ErrorCode::TypeMismatch => Status::invalid_argument(format!("TYPE_MISMATCH: {details}")),
        ErrorCode::ParseError => Status::data_loss(format!("PARSE_ERROR: {details}")),
        // GENERAL, and any code a later acqrel-flags adds.
        _ => Status::unknown(format!("{}: {details}", code.as_str())),
    }
}

/// Puts a request's flag key and context in one generic shape.
pub(super) fn generic<M>(
    request: Request<M>,
    parts: impl FnOnce(M) -> (String, Option<Struct>),
) -> Request<(String, Option<Struct>)> {
    let (metadata, extensions, message) = request.into_parts();
    Request::from_parts(metadata, extensions, parts(message))
}

#[tonic::async_trait]
impl pb::service_server::Service for Evaluation {
    async fn resolve_all(
        &self,
        request: Request<pb::ResolveAllRequest>,
    ) -> Result<Response<pb::ResolveAllResponse>, Status> {
        let result = self.resolve_all_now(request);
        self.state
            .metrics
            .grpc("ResolveAll", result.as_ref().err().map(Status::code));
        result.map(Response::new)
    }

    async fn resolve_boolean(
        &self,
        request: Request<pb::ResolveBooleanRequest>,
    ) -> Result<Response<pb::ResolveBooleanResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let r = self.resolve::<bool>("ResolveBoolean", request)?;
        Ok(Response::new(pb::ResolveBooleanResponse {
            value: r.value,
            reason: r.reason,
            variant: r.variant.unwrap_or_default(),
            metadata: r.metadata,
        }))
    }

    async fn resolve_string(
        &self,
        request: Request<pb::ResolveStringRequest>,
    ) -> Result<Response<pb::ResolveStringResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let r = self.resolve::<String>("ResolveString", request)?;
        Ok(Response::new(pb::ResolveStringResponse {
            value: r.value,
            reason: r.reason,
            variant: r.variant.unwrap_or_default(),
            metadata: r.metadata,
        }))
    }

    async fn resolve_float(
        &self,
        request: Request<pb::ResolveFloatRequest>,
    ) -> Result<Response<pb::ResolveFloatResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let r = self.resolve::<f64>("ResolveFloat", request)?;
        Ok(Response::new(pb::ResolveFloatResponse {
            value: r.value,
            reason: r.reason,
            variant: r.variant.unwrap_or_default(),
            metadata: r.metadata,
        }))
    }

    async fn resolve_int(
        &self,
        request: Request<pb::ResolveIntRequest>,
    ) -> Result<Response<pb::ResolveIntResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let r = self.resolve::<i64>("ResolveInt", request)?;
        Ok(Response::new(pb::ResolveIntResponse {
            value: r.value,
            reason: r.reason,
            variant: r.variant.unwrap_or_default(),
            metadata: r.metadata,
        }))
    }

    async fn resolve_object(
        &self,
        request: Request<pb::ResolveObjectRequest>,
    ) -> Result<Response<pb::ResolveObjectResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let r = self.resolve::<Map<String, Json>>("ResolveObject", request)?;
        // The caller's default (no variant) is no value at all.
        let value = r
            .variant
            .is_some()
            .then(|| convert::json_to_struct(&r.value));
        Ok(Response::new(pb::ResolveObjectResponse {
            value,
            reason: r.reason,
            variant: r.variant.unwrap_or_default(),
            metadata: r.metadata,
        }))
    }

    type EventStreamStream = EventStream;

    async fn event_stream(
        &self,
        request: Request<pb::EventStreamRequest>,
    ) -> Result<Response<EventStream>, Status> {
        self.open_event_stream(request.metadata())
            .map(Response::new)
    }
}

impl Evaluation {
    /// Opens an `EventStream` (either version), counting the call.
    pub(super) fn open_event_stream(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<EventStream, Status> {
        let result = (|| {
            let selector = selector(metadata)?;
            let slot = GrpcSlot::take(&self.state, StreamKind::Events)
                .ok_or_else(|| Status::resource_exhausted("too many event streams open"))?;
            Ok(EventStream::open(slot, selector))
        })();
        self.state
            .metrics
            .grpc("EventStream", result.as_ref().err().map(Status::code));
        result
    }
}

impl Evaluation {
    fn resolve_all_now(
        &self,
        request: Request<pb::ResolveAllRequest>,
    ) -> Result<pb::ResolveAllResponse, Status> {
        unavailable_until_ready(&self.state)?;
        let selector = selector(request.metadata())?;
        let ctx =
            convert::context(request.into_inner().context).map_err(Status::invalid_argument)?;
        let flags = self.state.live.store.snapshot();
        let mut out = std::collections::HashMap::with_capacity(flags.len());
        for flag in selector.flags(&flags) {
            let key = flag.key();
            let resolution = flags.evaluate(key, &ctx);
            self.state.metrics.evaluated(Some(key), resolution.reason);
            // Every selected flag is listed, as flagd lists them: a flag
            // that leaves the value to the caller (disabled, no default
            // variant) or failed to evaluate has its type's zero, no
            // variant and its reason (`DISABLED`, `DEFAULT`, `ERROR`).
            let value = match resolution.value {
                Some(value) => value,
                None => zero(flag.kind()),
            };
            let value = match value {
                Value::Bool(b) => any_flag::Value::BoolValue(b),
                Value::String(s) => any_flag::Value::StringValue(s),
                Value::Int(i) => any_flag::Value::DoubleValue(i as f64),
                Value::Float(f) => any_flag::Value::DoubleValue(f),
                Value::Object(o) => any_flag::Value::ObjectValue(convert::json_to_struct(&o)),
            };
            out.insert(
                key.to_owned(),
                pb::AnyFlag {
                    reason: resolution.reason.as_str().to_owned(),
                    variant: resolution.variant.unwrap_or_default(),
                    value: Some(value),
                    metadata: Some(convert::json_to_struct(&resolution.metadata)),
                },
            );
        }
        Ok(pb::ResolveAllResponse {
            flags: out,
            metadata: Some(convert::json_to_struct(flags.metadata())),
        })
    }
}

/// The zero value of a flag type, what version 1 sends where there is no
/// value.
fn zero(kind: ValueKind) -> Value {
    match kind {
        ValueKind::Bool => Value::Bool(false),
        ValueKind::String => Value::String(String::new()),
        ValueKind::Int => Value::Int(0),
        ValueKind::Float => Value::Float(0.0),
        ValueKind::Object => Value::Object(Map::new()),
    }
}

// ===== EventStream =====

/// One `EventStream`: `provider_ready` at once, then a
/// `configuration_change` naming the changed keys for each new
/// generation, and `keep_alive` messages while nothing changes; at
/// shutdown, `provider_shutdown` and then the status `UNAVAILABLE`.
///
/// Like the SSE stream, it subscribes a queue of one event under
/// `DropOldest`, so a reload's publish never waits on a client. The keys
/// are computed against the flags this stream last reported, not taken
/// from the event: a client that read too slowly to see every
/// generation gets one message with every key changed since its last.
pub(crate) struct EventStream {
    slot: GrpcSlot,
    selector: Selector,
    events: Receiver<FlagsChanged>,
    keep_alive: Interval,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The flags the last message described.
    reported: Flags,
    ready_sent: bool,
    shutdown_sent: bool,
    done: bool,
}

impl EventStream {
    pub(super) fn open(slot: GrpcSlot, selector: Selector) -> EventStream {
        let state = Arc::clone(slot.state());
        let store = &state.live.store;
        // Subscribed before the snapshot is taken: a change published after
        // it is in the queue.
        let events = store.subscribe(NonZeroUsize::MIN, Overflow::DropOldest);
        let reported = store.snapshot();
        let period = state.options.sse_keep_alive.max(Duration::from_millis(10));
        let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        EventStream {
            stopped: Box::pin(state.stop.cancelled_owned()),
            slot,
            selector,
            events,
            keep_alive,
            reported,
            ready_sent: false,
            shutdown_sent: false,
            done: false,
        }
    }

    /// The changed keys between what was reported and `now`, with flagd's
    /// change types.
    fn changes(&self, now: &Flags) -> Map<String, Json> {
        let old = &self.reported;
        let selected =
            |flags: &Flags, key: &str| flags.get(key).filter(|f| self.selector.selects(f)).cloned();
        let keys: BTreeSet<&str> = old.keys().chain(now.keys()).collect();
        let mut changes = Map::new();
        for key in keys {
            let kind = match (selected(old, key), selected(now, key)) {
                (None, Some(_)) => "write",
                (Some(_), None) => "delete",
                (Some(a), Some(b)) if a != b => "update",
                _ => continue,
            };
            changes.insert(key.to_owned(), json!({ "type": kind }));
        }
        changes
    }
}

fn message(kind: &str, data: Option<Map<String, Json>>) -> pb::EventStreamResponse {
    pb::EventStreamResponse {
        r#type: kind.to_owned(),
        data: data.map(|d| convert::json_to_struct(&d)),
    }
}

impl Stream for EventStream {
    type Item = Result<pb::EventStreamResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.ready_sent {
            this.ready_sent = true;
            // An empty `data`, as flagd sends it.
            return Poll::Ready(Some(Ok(message("provider_ready", Some(Map::new())))));
        }
        // `stopped` is not polled again once it has completed.
        if this.shutdown_sent || this.stopped.as_mut().poll(cx).is_ready() {
            if !this.shutdown_sent {
                // flagd's last message, with an empty `data`.
                this.shutdown_sent = true;
                return Poll::Ready(Some(Ok(message("provider_shutdown", Some(Map::new())))));
            }
            this.done = true;
            // UNAVAILABLE: the providers' signal to reconnect (elsewhere,
            // or here once the server is back).
            return Poll::Ready(Some(Err(Status::unavailable(
                "acqrel-flagd is shutting down",
            ))));
        }
        let drained = drain(&mut this.events, cx);
        if drained == Drained::Closed {
            this.done = true;
            return Poll::Ready(Some(Err(Status::unavailable("the flag store closed"))));
        }
        if drained == Drained::Changed {
            let now = this.slot.state().live.store.snapshot();
            if now.generation() > this.reported.generation() {
                let changes = this.changes(&now);
                let metadata_changed = now.metadata() != this.reported.metadata();
                this.reported = now;
                if !changes.is_empty() || metadata_changed {
                    let mut data = Map::new();
                    data.insert("flags".into(), Json::Object(changes));
                    return Poll::Ready(Some(Ok(message("configuration_change", Some(data)))));
                }
            }
        }
        if this.keep_alive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(message("keep_alive", None))));
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("reported", &self.reported.generation())
            .finish_non_exhaustive()
    }
}
