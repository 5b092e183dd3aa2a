//! `flagd.evaluation.v2.Service`: what newer flagd RPC providers call
//! (the JavaScript provider from 0.14 on, for one), served on the same
//! port as version 1 and by the same code.
//!
//! Version 2 has version 1's resolvers and `EventStream`, and no
//! `ResolveAll`. The one difference on the wire is that `value` and
//! `variant` are optional: where the caller's default applies (a disabled
//! flag, reason `DISABLED`; a flag without a default variant, reason
//! `DEFAULT`), the answer has neither, where version 1 sends the type's
//! zero and an empty variant. Errors are the same statuses as in version 1
//! (see `evaluation.rs`), and the two versions count together in
//! `acqrel_flagd_grpc_requests_total`.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use serde_json::{Map, Value as Json};
use tonic::{Request, Response, Status};

use super::convert;
use super::evaluation::{Evaluation, EventStream, Resolved, generic};
use super::proto::evaluation::v2 as pb;

/// A version 1 answer in version 2's shape: no value where there is no
/// variant.
fn optional<T>(
    r: Resolved<T>,
) -> (
    Option<T>,
    String,
    Option<String>,
    Option<prost_types::Struct>,
) {
    let value = r.variant.is_some().then_some(r.value);
    (value, r.reason, r.variant, r.metadata)
}

#[tonic::async_trait]
impl pb::service_server::Service for Evaluation {
    async fn resolve_boolean(
        &self,
        request: Request<pb::ResolveBooleanRequest>,
    ) -> Result<Response<pb::ResolveBooleanResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let (value, reason, variant, metadata) =
            optional(self.resolve::<bool>("ResolveBoolean", request)?);
        Ok(Response::new(pb::ResolveBooleanResponse {
            value,
            reason,
            variant,
            metadata,
        }))
    }

    async fn resolve_string(
        &self,
        request: Request<pb::ResolveStringRequest>,
    ) -> Result<Response<pb::ResolveStringResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let (value, reason, variant, metadata) =
            optional(self.resolve::<String>("ResolveString", request)?);
        Ok(Response::new(pb::ResolveStringResponse {
            value,
            reason,
            variant,
            metadata,
        }))
    }

    async fn resolve_float(
        &self,
        request: Request<pb::ResolveFloatRequest>,
    ) -> Result<Response<pb::ResolveFloatResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let (value, reason, variant, metadata) =
            optional(self.resolve::<f64>("ResolveFloat", request)?);
        Ok(Response::new(pb::ResolveFloatResponse {
            value,
            reason,
            variant,
            metadata,
        }))
    }

    async fn resolve_int(
        &self,
        request: Request<pb::ResolveIntRequest>,
    ) -> Result<Response<pb::ResolveIntResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let (value, reason, variant, metadata) =
            optional(self.resolve::<i64>("ResolveInt", request)?);
        Ok(Response::new(pb::ResolveIntResponse {
            value,
            reason,
            variant,
            metadata,
        }))
    }

    async fn resolve_object(
        &self,
        request: Request<pb::ResolveObjectRequest>,
    ) -> Result<Response<pb::ResolveObjectResponse>, Status> {
        let request = generic(request, |m| (m.flag_key, m.context));
        let (value, reason, variant, metadata) =
            optional(self.resolve::<Map<String, Json>>("ResolveObject", request)?);
        Ok(Response::new(pb::ResolveObjectResponse {
            value: value.map(|object| convert::json_to_struct(&object)),
            reason,
            variant,
            metadata,
        }))
    }

    type EventStreamStream = EventStreamV2;

    async fn event_stream(
        &self,
        request: Request<pb::EventStreamRequest>,
    ) -> Result<Response<EventStreamV2>, Status> {
        self.open_event_stream(request.metadata())
            .map(|events| Response::new(EventStreamV2(events)))
    }
}

/// Version 1's `EventStream` (the same messages, in the same order, with
/// the same keep-alives and end), in version 2's message type.
pub(crate) struct EventStreamV2(EventStream);

impl Stream for EventStreamV2 {
    type Item = Result<pb::EventStreamResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().0).poll_next(cx).map(|item| {
            item.map(|message| {
                message.map(|m| pb::EventStreamResponse {
                    r#type: m.r#type,
                    data: m.data,
                })
            })
        })
    }
}

impl std::fmt::Debug for EventStreamV2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EventStreamV2").field(&self.0).finish()
    }
}
