//! OFREP's evaluation endpoints: request bodies in, JSON answers out (the
//! HTTP plumbing is in `server.rs`).
//!
//! | case | status | body |
//! |---|---|---|
//! | a value | 200 | `{key, value, reason, variant, metadata}` |
//! | disabled, or no default variant (the caller's default applies) | 200 | `{key, reason, metadata}` (OFREP's code default: no `value`) |
//! | no such flag | 404 | `{key, errorCode: FLAG_NOT_FOUND, errorDetails}` |
//! | targeting failed | 400 | `{key, errorCode: PARSE_ERROR, errorDetails, metadata}` |
//! | body not JSON, not an object, `context` not an object | 400 | `{key, errorCode: INVALID_CONTEXT, errorDetails}` |
//!
//! OFREP requests carry no type (its ADR-0003), so `TYPE_MISMATCH` is the
//! provider's to report, never the server's.

use std::hash::{DefaultHasher, Hash, Hasher};

use acqrel_flags::{ErrorCode, EvaluationContext, Flags, Resolution, Value};
use bytes::Bytes;
use serde_json::{Map, Value as Json, json};

use crate::state::State;

/// An answer: status and JSON body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Answer {
    fn json(status: u16, body: &Json) -> Answer {
        // Serializing a `Value` into a Vec does not fail.
        let body = serde_json::to_vec(body).unwrap_or_default();
        Answer {
            status,
            body: Bytes::from(body),
        }
    }
}

/// A 400 `INVALID_CONTEXT` for `key` (`None` for the bulk endpoint).
pub(crate) fn invalid_context(key: Option<&str>, details: &str) -> Answer {
    let mut body = Map::new();
    if let Some(key) = key {
        body.insert("key".into(), key.into());
    }
    body.insert("errorCode".into(), "INVALID_CONTEXT".into());
    body.insert("errorDetails".into(), details.into());
    Answer::json(400, &Json::Object(body))
}

/// A body with only `errorDetails` (OFREP's `generalErrorResponse`), for
/// answers that are about the request rather than a flag.
pub(crate) fn general(status: u16, details: &str) -> Answer {
    Answer::json(status, &json!({ "errorDetails": details }))
}

/// The evaluation context of a request body: `{"context": {...}}`, an
/// empty body meaning no context.
pub(crate) fn context(key: Option<&str>, body: &[u8]) -> Result<EvaluationContext, Answer> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(EvaluationContext::new());
    }
    let request: Json = serde_json::from_slice(body)
        .map_err(|error| invalid_context(key, &format!("the request body is not JSON: {error}")))?;
    let Json::Object(mut request) = request else {
        return Err(invalid_context(
            key,
            "the request body must be a JSON object",
        ));
    };
    match request.remove("context") {
        None | Some(Json::Null) => Ok(EvaluationContext::new()),
        Some(Json::Object(context)) => Ok(EvaluationContext::from_json(context)),
        Some(_) => Err(invalid_context(key, "\"context\" must be a JSON object")),
    }
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub(crate) fn evaluate_one(state: &State, key: &str, ctx: &EvaluationContext) -> Answer {
    let flags = state.live.store.snapshot();
    let resolution = flags.evaluate(key, ctx);
    count(state, &flags, key, &resolution);
    match resolution.error_code {
        Some(ErrorCode::FlagNotFound) => Answer::json(
            404,
            &json!({
                "key": key,
                "errorCode": "FLAG_NOT_FOUND",
                "errorDetails": resolution.error_message.unwrap_or_default(),
            }),
        ),
        Some(_) => Answer::json(400, &failure(key, resolution)),
        None => Answer::json(200, &success(key, resolution)),
    }
}

/// The ETag of the bulk answer for `body` on generation `generation`: the
/// process, the generation and the request body, so it changes exactly
/// when the flag set does, for a given context (two contexts get two
/// tags: a client that changes its context is not told "not modified").
pub(crate) fn bulk_etag(state: &State, generation: u64, body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!(
        "\"{}-{generation}-{:016x}\"",
        state.instance,
        hasher.finish()
    )
}

/// The change streams' event id and `etag` for `generation`: the flag
/// configuration's version, whatever the context.
pub(crate) fn config_tag(state: &State, generation: u64) -> String {
    format!("{}-{generation}", state.instance)
}

/// Whether an `If-None-Match` header value names `etag`. (`*` is not a
/// match: on a POST it asks for 412, never 304.)
pub(crate) fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of `flags`, with the event
/// stream to follow (`events_url`).
pub(crate) fn evaluate_all(
    state: &State,
    flags: &Flags,
    ctx: &EvaluationContext,
    events_url: &str,
) -> Answer {
    let mut entries = Vec::with_capacity(flags.len());
    for flag in flags.iter() {
        let key = flag.key();
        let resolution = flags.evaluate(key, ctx);
        count(state, flags, key, &resolution);
        entries.push(match resolution.error_code {
            Some(_) => failure(key, resolution),
            None => success(key, resolution),
        });
    }
    Answer::json(
        200,
        &json!({
            "flags": entries,
            "metadata": flags.metadata(),
            "eventStreams": [{
                "type": "sse",
                "url": events_url,
                "inactivityDelaySec": 120,
            }],
        }),
    )
}

/// `GET /ofrep/v1/configuration` (OFREP's optional provider configuration).
pub(crate) fn configuration() -> Answer {
    Answer::json(
        200,
        &json!({
            "name": "acqrel-flagd",
            "capabilities": {
                "cacheInvalidation": {"polling": {"enabled": true, "minPollingIntervalMs": 1000}},
                "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]},
            },
        }),
    )
}

fn count(state: &State, flags: &Flags, key: &str, resolution: &Resolution<Option<Value>>) {
    let known = flags.get(key).map(|flag| flag.key());
    state.metrics.evaluated(known, resolution.reason);
}

fn success(key: &str, resolution: Resolution<Option<Value>>) -> Json {
    let mut body = Map::new();
    body.insert("key".into(), key.into());
    if let Some(value) = resolution.value {
        body.insert("value".into(), Json::from(value));
    }
    body.insert("reason".into(), resolution.reason.as_str().into());
    if let Some(variant) = resolution.variant {
        body.insert("variant".into(), variant.into());
    }
    body.insert(
        "metadata".into(),
        Json::Object((*resolution.metadata).clone()),
    );
    Json::Object(body)
}

fn failure(key: &str, resolution: Resolution<Option<Value>>) -> Json {
    // Only PARSE_ERROR and GENERAL reach here: FLAG_NOT_FOUND is answered
    // as a 404, TYPE_MISMATCH cannot happen without a requested type.
    let code = resolution.error_code.map_or("GENERAL", ErrorCode::as_str);
    json!({
        "key": key,
        "errorCode": code,
        "errorDetails": resolution.error_message.unwrap_or_default(),
        "metadata": *resolution.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(matches("\"a-1-f\"", "\"a-1-f\""));
        assert!(matches("\"x\", W/\"a-1-f\"", "\"a-1-f\""));
        assert!(!matches("*", "\"a-1-f\""));
        assert!(!matches("\"a-2-f\"", "\"a-1-f\""));
        assert!(!matches("", "\"a-1-f\""));
    }

    #[test]
    fn contexts_from_bodies() {
        assert!(context(None, b"").is_ok());
        assert!(context(None, b" \n").is_ok());
        assert!(context(None, b"{}").is_ok());
        assert!(context(None, b"{\"context\": null}").is_ok());
        let ctx = context(None, br#"{"context": {"targetingKey": "u1", "a": 1}}"#)
            .ok()
            .unwrap();
        assert_eq!(ctx.targeting_key(), Some("u1"));
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"context\": 3}",
            b"{\"context\": []}",
            b"\xff\xfe",
            b"\"text\"",
        ] {
            let answer = context(Some("k"), bad).err().unwrap();
            assert_eq!(answer.status, 400);
            let body: Json = serde_json::from_slice(&answer.body).unwrap();
            assert_eq!(body["errorCode"], "INVALID_CONTEXT");
            assert_eq!(body["key"], "k");
        }
    }
}
