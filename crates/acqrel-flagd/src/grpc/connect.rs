//! The Connect form of the unary evaluation calls, on the evaluation port:
//! JSON over HTTP/1.1 or HTTP/2, as flagd serves it beside gRPC, so the
//! curl that flagd's documentation teaches works as written:
//!
//! ```sh
//! curl -X POST localhost:8013/flagd.evaluation.v1.Service/ResolveBoolean \
//!   -H 'Content-Type: application/json' -d '{"flagKey": "new-checkout", "context": {}}'
//! ```
//!
//! A `POST` whose `Content-Type` is `application/json` (Connect's unary
//! JSON) to any resolver of version 1 or 2, or to version 1's
//! `ResolveAll`, is answered here; everything else on the port is gRPC.
//! The call goes through the same service code as over gRPC (same
//! answers, same `acqrel_flagd_grpc_requests_total` counts), and only the
//! encoding differs:
//!
//! - The request is the protobuf JSON of the request message (`flagKey`
//!   or `flag_key`, `context`); other fields are ignored, as flagd ignores
//!   them.
//! - A success is `200` with the protobuf JSON of the response, every
//!   field written, as flagd writes it (`"variant": ""` included, an int
//!   flag's value as a string, as protobuf JSON writes 64-bit integers);
//!   version 2 leaves out the value and variant it does not have.
//! - An error is Connect's: the HTTP status of the gRPC code and
//!   `{"code": "not_found", "message": "..."}`.
//!
//! Streaming calls (`EventStream`) are gRPC only; over Connect they are
//! `unimplemented`.

use std::sync::Arc;
use std::time::Duration;

use acqrel_flags::FlagValue;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use prost_types::value::Kind;
use prost_types::{Struct, Value as ProtoValue};
use serde_json::{Map, Value as Json, json};
use tonic::body::Body as GrpcBody;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::convert;
use super::evaluation::Evaluation;
use super::proto::evaluation::v1;
use crate::state::State;

/// How long a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `request` is a Connect unary call with a JSON body.
pub(crate) fn is_unary_json<B>(request: &Request<B>) -> bool {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/json"));
    request.method() == Method::POST && json
}

/// Answers one Connect unary call.
pub(crate) async fn handle(
    state: &Arc<State>,
    request: Request<Incoming>,
) -> hyper::Response<GrpcBody> {
    match answer(state, request).await {
        Ok(body) => respond(StatusCode::OK, &body),
        Err(status) => {
            let body = json!({ "code": code_name(status.code()), "message": status.message() });
            respond(http_status(status.code()), &body)
        }
    }
}

/// The two versions of the evaluation service.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

async fn answer(state: &Arc<State>, request: Request<Incoming>) -> Result<Json, Status> {
    let path = request.uri().path().to_owned();
    let (version, method) = if let Some(method) = path.strip_prefix("/flagd.evaluation.v1.Service/")
    {
        (Version::V1, method)
    } else if let Some(method) = path.strip_prefix("/flagd.evaluation.v2.Service/") {
        (Version::V2, method)
    } else {
        state.metrics.grpc("other", Some(Code::Unimplemented));
        return Err(Status::unimplemented(format!(
            "no such service or method: {path}"
        )));
    };
    let known = matches!(
        method,
        "ResolveBoolean" | "ResolveString" | "ResolveFloat" | "ResolveInt" | "ResolveObject"
    ) || (version == Version::V1 && method == "ResolveAll");
    if !known {
        state.metrics.grpc("other", Some(Code::Unimplemented));
        return Err(Status::unimplemented(format!(
            "{path} is not a unary call served over Connect"
        )));
    }
    let metadata = MetadataMap::from_headers(request.headers().clone());
    let body = read_body(state, request).await?;
    let (flag_key, context) = parse(&body)?;
    let evaluation = Evaluation {
        state: Arc::clone(state),
    };
    if method == "ResolveAll" {
        let all = v1::service_server::Service::resolve_all(
            &evaluation,
            call(&metadata, v1::ResolveAllRequest { context }),
        )
        .await?
        .into_inner();
        return Ok(resolve_all(all));
    }
    let request = call(&metadata, (flag_key, context));
    match method {
        "ResolveBoolean" => unary::<bool>(&evaluation, "ResolveBoolean", version, request),
        "ResolveString" => unary::<String>(&evaluation, "ResolveString", version, request),
        "ResolveFloat" => unary::<f64>(&evaluation, "ResolveFloat", version, request),
        "ResolveInt" => unary::<i64>(&evaluation, "ResolveInt", version, request),
        _ => unary::<Map<String, Json>>(&evaluation, "ResolveObject", version, request),
    }
}

/// One resolver's answer, as the gRPC service gives it (same code, same
/// counts), in `version`'s protobuf JSON.
fn unary<T: FlagValue + Default + ProtoJson>(
    evaluation: &Evaluation,
    method: &'static str,
    version: Version,
    request: tonic::Request<(String, Option<Struct>)>,
) -> Result<Json, Status> {
    let r = evaluation.resolve::<T>(method, request)?;
    let has_value = r.variant.is_some();
    let (value, variant) = match version {
        // Version 1 writes the type's zero where there is no value (an
        // object's zero is an unset message: `null`).
        Version::V1 if !has_value && T::MESSAGE => (Some(Json::Null), Some(String::new())),
        Version::V1 => (Some(r.value.to_json()), Some(r.variant.unwrap_or_default())),
        Version::V2 => (has_value.then(|| r.value.to_json()), r.variant),
    };
    Ok(resolution(value, r.reason, variant, r.metadata.as_ref()))
}

/// A flag value in protobuf JSON.
trait ProtoJson {
    /// Whether the value is a message field (`google.protobuf.Struct`).
    const MESSAGE: bool = false;

    fn to_json(self) -> Json;
}

impl ProtoJson for bool {
    fn to_json(self) -> Json {
        Json::Bool(self)
    }
}

impl ProtoJson for String {
    fn to_json(self) -> Json {
        Json::String(self)
    }
}

impl ProtoJson for f64 {
    fn to_json(self) -> Json {
        float(self)
    }
}

impl ProtoJson for i64 {
    /// A 64-bit integer in protobuf JSON is a string.
    fn to_json(self) -> Json {
        Json::String(self.to_string())
    }
}

impl ProtoJson for Map<String, Json> {
    const MESSAGE: bool = true;

    fn to_json(self) -> Json {
        Json::Object(self)
    }
}

/// The service call for `message`, with the HTTP request's headers (the
/// `Flagd-Selector` among them) as its metadata.
fn call<M>(metadata: &MetadataMap, message: M) -> tonic::Request<M> {
    let mut call = tonic::Request::new(message);
    *call.metadata_mut() = metadata.clone();
    call
}

/// A resolver's response in protobuf JSON (keys come out sorted, as
/// serde_json's map keeps them).
fn resolution(
    value: Option<Json>,
    reason: String,
    variant: Option<String>,
    metadata: Option<&Struct>,
) -> Json {
    let mut out = Map::new();
    if let Some(value) = value {
        out.insert("value".into(), value);
    }
    out.insert("reason".into(), Json::String(reason));
    if let Some(variant) = variant {
        out.insert("variant".into(), Json::String(variant));
    }
    out.insert(
        "metadata".into(),
        metadata.map_or(Json::Null, struct_to_json),
    );
    Json::Object(out)
}

/// `ResolveAll`'s response in protobuf JSON: each flag's value under its
/// `oneof` field's name (`boolValue`, `stringValue`, `doubleValue`,
/// `objectValue`).
fn resolve_all(all: v1::ResolveAllResponse) -> Json {
    let mut flags = Map::new();
    for (key, flag) in all.flags {
        let mut out = Map::new();
        out.insert("reason".into(), Json::String(flag.reason));
        out.insert("variant".into(), Json::String(flag.variant));
        match flag.value {
            Some(v1::any_flag::Value::BoolValue(b)) => out.insert("boolValue".into(), b.into()),
            Some(v1::any_flag::Value::StringValue(s)) => out.insert("stringValue".into(), s.into()),
            Some(v1::any_flag::Value::DoubleValue(f)) => out.insert("doubleValue".into(), float(f)),
            Some(v1::any_flag::Value::ObjectValue(o)) => {
                out.insert("objectValue".into(), struct_to_json(&o))
            }
            None => None,
        };
        out.insert(
            "metadata".into(),
            flag.metadata.as_ref().map_or(Json::Null, struct_to_json),
        );
        flags.insert(key, Json::Object(out));
    }
    json!({
        "flags": flags,
        "metadata": all.metadata.as_ref().map_or(Json::Null, struct_to_json),
    })
}

/// A double in protobuf JSON (flag values are finite: they come from JSON).
fn float(value: f64) -> Json {
    serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number)
}

/// A `google.protobuf.Struct` as the JSON object it stands for.
fn struct_to_json(value: &Struct) -> Json {
    Json::Object(
        value
            .fields
            .iter()
            .map(|(key, value)| (key.clone(), value_to_json(value)))
            .collect(),
    )
}

fn value_to_json(value: &ProtoValue) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => float(*n),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(value_to_json).collect()),
    }
}

/// The request's flag key and context, from its protobuf JSON.
fn parse(body: &[u8]) -> Result<(String, Option<Struct>), Status> {
    let request: Json = serde_json::from_slice(body)
        .map_err(|error| Status::invalid_argument(format!("the request is not JSON: {error}")))?;
    let Json::Object(mut request) = request else {
        return Err(Status::invalid_argument(
            "the request must be a JSON object",
        ));
    };
    let flag_key = match request
        .remove("flagKey")
        .or_else(|| request.remove("flag_key"))
    {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(key)) => key,
        Some(_) => return Err(Status::invalid_argument("`flagKey` must be a string")),
    };
    let context = match request.remove("context") {
        None | Some(Json::Null) => None,
        Some(Json::Object(context)) => Some(convert::json_to_struct(&context)),
        Some(_) => return Err(Status::invalid_argument("`context` must be a JSON object")),
    };
    Ok((flag_key, context))
}

/// The request body, at most `--max-body` bytes, within [`BODY_TIMEOUT`].
async fn read_body(state: &State, request: Request<Incoming>) -> Result<Bytes, Status> {
    let max = state.options.max_body;
    let limited = Limited::new(request.into_body(), max);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(
            Status::resource_exhausted(format!("the request body is larger than {max} bytes")),
        ),
        Ok(Err(error)) => Err(Status::invalid_argument(format!(
            "the request body could not be read: {error}"
        ))),
        Err(_) => Err(Status::deadline_exceeded(
            "the request body did not arrive in time",
        )),
    }
}

fn respond(status: StatusCode, body: &Json) -> hyper::Response<GrpcBody> {
    let bytes = Bytes::from(body.to_string());
    let mut response = hyper::Response::new(GrpcBody::new(Full::new(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Connect's name for a gRPC code.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status Connect gives a gRPC code.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_either_spelling_of_the_flag_key() {
        let (key, context) = parse(br#"{"flagKey": "a", "context": {"x": 1}}"#).unwrap();
        assert_eq!(key, "a");
        assert_eq!(struct_to_json(&context.unwrap()), json!({"x": 1.0}));
        assert_eq!(
            parse(br#"{"flag_key": "b", "other": 1}"#).unwrap(),
            ("b".into(), None)
        );
        for bad in [&b""[..], b"[]", br#"{"flagKey": 1}"#, br#"{"context": []}"#] {
            let status = parse(bad).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn only_json_posts_are_connect_calls() {
        let request = |method: &str, kind: &str| {
            Request::builder()
                .method(method)
                .header(header::CONTENT_TYPE, kind)
                .body(())
                .unwrap()
        };
        assert!(is_unary_json(&request("POST", "application/json")));
        assert!(is_unary_json(&request(
            "POST",
            "Application/JSON; charset=utf-8"
        )));
        assert!(!is_unary_json(&request("POST", "application/grpc")));
        assert!(!is_unary_json(&request("POST", "application/connect+json")));
        assert!(!is_unary_json(&request("GET", "application/json")));
    }

    #[test]
    fn errors_carry_connects_code_and_status() {
        assert_eq!(code_name(Code::NotFound), "not_found");
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(
            http_status(Code::DataLoss),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
