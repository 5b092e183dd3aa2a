//! OFREP's answers, end to end: the real binary on loopback, asked over
//! HTTP, on the shipped example flags and on `tests/flags/testbed.json`
//! (every value type, flagd's custom operators, a broken rule, flags with
//! no default variant, a disabled flag, keys that need percent-encoding).
//!
//! Each status the OFREP contract names is shown here: 200 with a value,
//! 200 without one (the code default, OFREP ADR-0006), 304, 400
//! `PARSE_ERROR` and `INVALID_CONTEXT`, 404 `FLAG_NOT_FOUND` and unknown
//! paths, 405 with `Allow`, 413 and 429 with `Retry-After`; and the
//! server's answers are those of `acqrel-flags`' own `Flags::evaluate` on
//! the same file.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use acqrel_flags::{ErrorCode, EvaluationContext, FlagSet, FlagStore, Flags};
use common::{
    Daemon, EventStream, HttpResponse, eventually, example_flags, request, request_raw,
    testbed_flags,
};
use serde_json::{Map, Value as Json, json};

const EVALUATE: &str = "/ofrep/v1/evaluate/flags";

/// `POST /ofrep/v1/evaluate/flags/{key}` (`key` already encoded) with `body`.
fn evaluate(daemon: &Daemon, key: &str, body: &str) -> HttpResponse {
    daemon.post(&format!("{EVALUATE}/{key}"), body)
}

/// `{"context": context}` as a request body.
fn with_context(context: &Json) -> String {
    json!({ "context": context }).to_string()
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The keys of a JSON object, sorted.
fn fields(body: &Json) -> Vec<&str> {
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// A bulk request with a `Host` that names the port (as a real client's
/// does), so the answer's event-stream URL can be followed.
fn bulk(daemon: &Daemon, body: &str, if_none_match: Option<&str>) -> HttpResponse {
    let mut head = format!(
        "POST {EVALUATE} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        daemon.ofrep,
        body.len()
    );
    if let Some(tags) = if_none_match {
        head.push_str(&format!("If-None-Match: {tags}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    request_raw(daemon.ofrep, head.as_bytes())
}

/// The file's flags, loaded in process by `acqrel-flags`.
fn in_process(path: &Path) -> Flags {
    let text = std::fs::read_to_string(path).expect("read the flag file");
    let (set, _warnings) = FlagSet::parse(&text).expect("a valid flag file");
    FlagStore::from_set(set).snapshot()
}

/// What the OFREP contract says the server answers for `key` and
/// `context`, given what `Flags::evaluate` returns: status and body.
fn expected(flags: &Flags, key: &str, context: &Json) -> (u16, Json) {
    let ctx = EvaluationContext::from_json(context.as_object().expect("a context object").clone());
    let r = flags.evaluate(key, &ctx);
    let details = r.error_message.clone().unwrap_or_default();
    match r.error_code {
        Some(ErrorCode::FlagNotFound) => (
            404,
            json!({"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": details}),
        ),
        Some(code) => (
            400,
            json!({"key": key, "errorCode": code.as_str(), "errorDetails": details, "metadata": *r.metadata}),
        ),
        None => {
            let mut body = Map::new();
            body.insert("key".into(), key.into());
            if let Some(value) = r.value {
                body.insert("value".into(), Json::from(value));
            }
            body.insert("reason".into(), r.reason.as_str().into());
            if let Some(variant) = r.variant {
                body.insert("variant".into(), variant.into());
            }
            body.insert("metadata".into(), Json::Object((*r.metadata).clone()));
            (200, Json::Object(body))
        }
    }
}

// ===== 200 =====

#[test]
fn every_value_type_answers_200_with_value_reason_variant_and_metadata() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let set = json!({"flagSetId": "shop-web", "team": "web"});
    let cases = [
        // (key, context, value, reason, variant)
        ("dark-mode", json!({}), json!(true), "STATIC", "on"),
        ("discount-rate", json!({}), json!(0.15), "STATIC", "spring"),
        (
            "checkout-layout",
            json!({}),
            json!({"steps": 3, "expressPay": false}),
            "STATIC",
            "classic",
        ),
        // Targeting returns null without an email: the default variant.
        (
            "support-channel",
            json!({}),
            json!("email"),
            "DEFAULT",
            "email",
        ),
        (
            "support-channel",
            json!({"email": "bob@bigcorp.com"}),
            json!("phone"),
            "TARGETING_MATCH",
            "phone",
        ),
        (
            "max-cart-items",
            json!({}),
            json!(20),
            "DEFAULT",
            "standard",
        ),
        // `$ref` to the shared `is_staff` evaluator.
        (
            "max-cart-items",
            json!({"email": "ann@example.com"}),
            json!(100),
            "TARGETING_MATCH",
            "extended",
        ),
        (
            "search-v2",
            json!({"appVersion": "2.4.0"}),
            json!(true),
            "TARGETING_MATCH",
            "on",
        ),
        (
            "search-v2",
            json!({"appVersion": "2.3.9"}),
            json!(false),
            "TARGETING_MATCH",
            "off",
        ),
    ];
    for (key, context, value, reason, variant) in cases {
        let answer = evaluate(&daemon, key, &with_context(&context));
        assert_eq!(answer.status, 200, "{key} {context}: {}", answer.text());
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body = answer.json();
        assert_eq!(
            fields(&body),
            ["key", "metadata", "reason", "value", "variant"],
            "{body}"
        );
        assert_eq!(body["key"], key);
        assert_eq!(body["value"], value, "{key} {context}");
        assert_eq!(body["reason"], reason, "{key} {context}");
        assert_eq!(body["variant"], variant, "{key} {context}");
        let mut metadata = set.clone();
        if key == "support-channel" {
            metadata["owner"] = json!("support");
        }
        assert_eq!(body["metadata"], metadata, "{key}");
    }
    // A flag's own metadata wins over the flag set's (`team`).
    let body = evaluate(
        &daemon,
        "new-checkout",
        &with_context(&json!({"targetingKey": "user-1234"})),
    )
    .json();
    assert_eq!(body["reason"], "TARGETING_MATCH");
    assert_eq!(body["value"], json!(body["variant"] == "on"));
    assert_eq!(
        body["metadata"],
        json!({"flagSetId": "shop-web", "team": "checkout", "owner": "payments"})
    );
}

#[test]
fn testbed_types_and_operators_answer_200() {
    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    let cases = [
        ("boolean-flag", json!({}), json!(true), "STATIC", "on"),
        ("string-flag", json!({}), json!("hi"), "STATIC", "greeting"),
        ("integer-flag", json!({}), json!(10), "STATIC", "ten"),
        ("float-flag", json!({}), json!(0.5), "STATIC", "half"),
        (
            "object-flag",
            json!({}),
            json!({"showImages": true, "title": "Check out these pics!", "imagesPerPage": 100}),
            "STATIC",
            "template",
        ),
        // fractional: "fractional-flag" + "jack" hashes into the third
        // quarter (the vector of acqrel-flags' `fractional` docs).
        (
            "fractional-flag",
            json!({"targetingKey": "jack"}),
            json!("hearts"),
            "TARGETING_MATCH",
            "hearts",
        ),
        // No targeting key to bucket on: null, the default variant.
        (
            "fractional-flag",
            json!({}),
            json!("clubs"),
            "DEFAULT",
            "clubs",
        ),
        (
            "semver-flag",
            json!({"version": "3.1.0"}),
            json!("major"),
            "TARGETING_MATCH",
            "major",
        ),
        (
            "semver-flag",
            json!({"version": "2.5.7"}),
            json!("minor"),
            "TARGETING_MATCH",
            "minor",
        ),
        (
            "semver-flag",
            json!({"version": "2.6.0"}),
            json!("old"),
            "DEFAULT",
            "old",
        ),
        (
            "prefix-suffix-flag",
            json!({"id": "admin-7"}),
            json!("admin"),
            "TARGETING_MATCH",
            "admin",
        ),
        (
            "prefix-suffix-flag",
            json!({"email": "x@partner.test"}),
            json!("partner"),
            "TARGETING_MATCH",
            "partner",
        ),
        (
            "prefix-suffix-flag",
            json!({"id": "user-7", "email": "x@else.test"}),
            json!("user"),
            "DEFAULT",
            "user",
        ),
        (
            "ref-flag",
            json!({"email": "a@internal.test"}),
            json!(1000),
            "TARGETING_MATCH",
            "internal",
        ),
        (
            "ref-flag",
            json!({"email": "a@outside.test"}),
            json!(10),
            "TARGETING_MATCH",
            "external",
        ),
        (
            "null-default-variant",
            json!({"pick": "b"}),
            json!("b"),
            "TARGETING_MATCH",
            "b",
        ),
    ];
    for (key, context, value, reason, variant) in cases {
        let answer = evaluate(&daemon, key, &with_context(&context));
        assert_eq!(answer.status, 200, "{key} {context}: {}", answer.text());
        let body = answer.json();
        assert_eq!(
            (&body["value"], &body["reason"], &body["variant"]),
            (&value, &json!(reason), &json!(variant)),
            "{key} {context}"
        );
    }
    // The flag's metadata over the set's: `version` 4 replaces 3.
    let body = evaluate(&daemon, "string-flag", "").json();
    assert_eq!(
        body["metadata"],
        json!({"flagSetId": "testbed", "version": 4, "owner": "words"})
    );
    // An explicit bucketing value (`email`): the targeting key plays no
    // part, and the bucket is `fractional`'s for that string.
    let by_email = |targeting_key: &str| {
        let ctx = json!({"targetingKey": targeting_key, "email": "someone@else.test"});
        evaluate(&daemon, "fractional-by-email", &with_context(&ctx)).json()["variant"].clone()
    };
    let args = [
        json!("someone@else.test"),
        json!(["red", 50]),
        json!(["blue", 50]),
    ];
    let bucket =
        acqrel_flags::ops::fractional("fractional-by-email", None, &args).expect("a bucket");
    assert_eq!(by_email("u1"), bucket);
    assert_eq!(by_email("u2"), bucket);
}

#[test]
fn code_defaults_answer_200_without_a_value() {
    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    let set = json!({"flagSetId": "testbed", "version": 3});
    let cases = [
        ("disabled-flag", json!({}), "DISABLED"),
        ("no-default-variant", json!({}), "DEFAULT"),
        // Targeting returns null and the default variant is null.
        ("null-default-variant", json!({"pick": "a"}), "DEFAULT"),
    ];
    for (key, context, reason) in cases {
        let answer = evaluate(&daemon, key, &with_context(&context));
        assert_eq!(answer.status, 200, "{key}: {}", answer.text());
        // Exactly: no `value` (the caller's code default applies), no
        // `variant`, no error.
        assert_eq!(
            answer.json(),
            json!({"key": key, "reason": reason, "metadata": set}),
            "{key}"
        );
    }
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let answer = evaluate(&daemon, "legacy-search", "");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"key": "legacy-search", "reason": "DISABLED", "metadata": {"flagSetId": "shop-web", "team": "web"}})
    );
}

// ===== errors =====

#[test]
fn unknown_flag_is_404_flag_not_found() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    for key in ["no-such-flag", ""] {
        let answer = evaluate(&daemon, key, r#"{"context": {"targetingKey": "u1"}}"#);
        assert_eq!(answer.status, 404, "{key:?}: {}", answer.text());
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body = answer.json();
        assert_eq!(
            fields(&body),
            ["errorCode", "errorDetails", "key"],
            "{body}"
        );
        assert_eq!(body["key"], key);
        assert_eq!(body["errorCode"], "FLAG_NOT_FOUND");
        assert!(!body["errorDetails"].as_str().unwrap().is_empty(), "{body}");
    }
}

#[test]
fn broken_targeting_is_400_parse_error() {
    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    let answer = evaluate(
        &daemon,
        "broken-targeting",
        r#"{"context": {"targetingKey": "u1"}}"#,
    );
    assert_eq!(answer.status, 400, "{}", answer.text());
    let body = answer.json();
    assert_eq!(
        fields(&body),
        ["errorCode", "errorDetails", "key", "metadata"],
        "{body}"
    );
    assert_eq!(body["key"], "broken-targeting");
    assert_eq!(body["errorCode"], "PARSE_ERROR");
    assert!(
        body["errorDetails"]
            .as_str()
            .unwrap()
            .contains("no-such-variant"),
        "{body}"
    );
    assert_eq!(
        body["metadata"],
        json!({"flagSetId": "testbed", "version": 3})
    );
}

#[test]
fn bodies_that_are_no_context_are_400_invalid_context() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let bad = [
        r#"{"context": "#,     // not JSON
        "context=1",           // not JSON either
        "[1, 2]",              // JSON, not an object
        r#""text""#,           // a string
        "null",                // null is not an object
        r#"{"context": [1]}"#, // context not an object
        r#"{"context": "u1"}"#,
        r#"{"context": 5}"#,
    ];
    for body in bad {
        let answer = evaluate(&daemon, "dark-mode", body);
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        let json = answer.json();
        assert_eq!(json["key"], "dark-mode", "{body}");
        assert_eq!(json["errorCode"], "INVALID_CONTEXT", "{body}");
        assert!(!json["errorDetails"].as_str().unwrap().is_empty(), "{body}");
        assert!(json.get("value").is_none());
        // The bulk endpoint refuses them the same way (with no key).
        let answer = daemon.post(EVALUATE, body);
        assert_eq!(answer.status, 400, "bulk {body}: {}", answer.text());
        let json = answer.json();
        assert_eq!(fields(&json), ["errorCode", "errorDetails"], "bulk {body}");
        assert_eq!(json["errorCode"], "INVALID_CONTEXT");
    }
    // No context at all is fine: an empty body, `{}`, a null context.
    for body in ["", "{}", r#"{"context": null}"#, r#"{"context": {}}"#] {
        assert_eq!(evaluate(&daemon, "dark-mode", body).status, 200, "{body:?}");
    }
}

#[test]
fn wrong_method_is_405_with_allow() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let cases = [
        ("GET", "/ofrep/v1/evaluate/flags/dark-mode", "POST"),
        ("PUT", "/ofrep/v1/evaluate/flags/dark-mode", "POST"),
        ("GET", EVALUATE, "POST"),
        ("POST", "/ofrep/v1/events", "GET"),
        ("DELETE", "/ofrep/v1/configuration", "GET"),
    ];
    for (method, path, allow) in cases {
        let answer = request(daemon.ofrep, method, path, &[], b"");
        assert_eq!(answer.status, 405, "{method} {path}: {}", answer.text());
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
        assert!(answer.json()["errorDetails"].is_string());
    }
    let answer = request(daemon.management, "POST", "/metrics", &[], b"");
    assert_eq!(
        (answer.status, answer.header("allow")),
        (405, Some("GET, HEAD"))
    );
}

#[test]
fn unknown_paths_are_404() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    for path in [
        "/",
        "/ofrep/v1/evaluate",
        "/ofrep/v2/evaluate/flags/dark-mode",
        "/ofrep/v1/eventsx",
        "/healthz",
    ] {
        for method in ["GET", "POST"] {
            let answer = request(daemon.ofrep, method, path, &[], b"{}");
            assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text());
            assert!(answer.json()["errorDetails"].is_string());
        }
    }
    assert_eq!(daemon.manage("/ofrep/v1/configuration").status, 404);
}

#[test]
fn bodies_over_max_body_are_413() {
    let daemon = Daemon::ready(&[&example_flags()], &["--max-body", "1024"]);
    let head = |path: &str, framing: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"
        )
    };
    for path in ["/ofrep/v1/evaluate/flags/dark-mode", EVALUATE] {
        // A Content-Length over the limit: refused on the header alone
        // (the body is never sent).
        let answer = request_raw(daemon.ofrep, head(path, "Content-Length: 1025").as_bytes());
        assert_eq!(answer.status, 413, "{path}: {}", answer.text());
        assert!(
            answer.json()["errorDetails"]
                .as_str()
                .unwrap()
                .contains("1024")
        );
        // Exactly the limit is accepted (JSON with trailing spaces).
        let body = format!("{:<1024}", r#"{"context": {}}"#);
        assert_eq!(daemon.post(path, &body).status, 200, "{path}: 1024 bytes");
        // A chunked body that grows past the limit, in one write.
        let mut chunked = head(path, "Transfer-Encoding: chunked");
        for _ in 0..3 {
            chunked.push_str(&format!("190\r\n{:400}\r\n", ""));
        }
        chunked.push_str("0\r\n\r\n");
        let answer = request_raw(daemon.ofrep, chunked.as_bytes());
        assert_eq!(answer.status, 413, "{path} chunked: {}", answer.text());
        // The same framing under the limit is read and evaluated.
        let small = format!(
            "{}f\r\n{{\"context\": {{}}}}\r\n0\r\n\r\n",
            head(path, "Transfer-Encoding: chunked")
        );
        assert_eq!(
            request_raw(daemon.ofrep, small.as_bytes()).status,
            200,
            "{path} small chunked"
        );
    }
}

// ===== bulk, ETag, 304 =====

#[test]
fn bulk_lists_every_flag_with_metadata_event_streams_and_etag() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let answer = bulk(
        &daemon,
        r#"{"context": {"email": "bob@bigcorp.com"}}"#,
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let etag = answer.header("etag").expect("an ETag").to_owned();
    let body = answer.json();
    assert_eq!(fields(&body), ["eventStreams", "flags", "metadata"]);
    assert_eq!(
        body["metadata"],
        json!({"flagSetId": "shop-web", "team": "web"})
    );
    let flags: BTreeMap<&str, &Json> = body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|flag| (flag["key"].as_str().unwrap(), flag))
        .collect();
    let keys: Vec<&str> = flags.keys().copied().collect();
    assert_eq!(
        keys,
        [
            "checkout-layout",
            "dark-mode",
            "discount-rate",
            "legacy-search",
            "max-cart-items",
            "new-checkout",
            "search-v2",
            "staff-tools",
            "support-channel"
        ]
    );
    assert_eq!(flags["support-channel"]["value"], "phone");
    assert_eq!(flags["support-channel"]["reason"], "TARGETING_MATCH");
    assert_eq!(flags["dark-mode"]["value"], true);
    assert_eq!(flags["legacy-search"].get("value"), None);
    assert_eq!(flags["legacy-search"]["reason"], "DISABLED");
    // The event stream, at the address the client asked (its Host), with
    // the generation this answer was evaluated on as `since`.
    let generation = daemon.metric("acqrel_flagd_flag_set_generation");
    let streams = body["eventStreams"].as_array().expect("eventStreams");
    assert_eq!(streams.len(), 1);
    assert_eq!(
        (&streams[0]["type"], &streams[0]["inactivityDelaySec"]),
        (&json!("sse"), &json!(120))
    );
    let url = streams[0]["url"].as_str().expect("a url");
    let prefix = format!("http://{}/ofrep/v1/events?since=", daemon.ofrep);
    let since = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    assert!(since.ends_with(&format!("-{generation}")), "{since}");
    let stream = EventStream::open(daemon.ofrep, None);
    assert_eq!(stream.status, 200);
    // `"<instance>-<generation>-<hash of the body>"`, the generation being
    // the one `/metrics` reports.
    let inner = etag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .expect("a quoted ETag");
    let parts: Vec<&str> = inner.split('-').collect();
    assert_eq!(parts.len(), 3, "{etag}");
    let generation = daemon.metric("acqrel_flagd_flag_set_generation");
    assert_eq!(parts[1].parse::<f64>().unwrap(), generation, "{etag}");

    // Errors are entries too: the broken rule among the testbed's flags.
    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    let body = bulk(&daemon, "", None).json();
    let flags = body["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 16);
    let broken = flags
        .iter()
        .find(|f| f["key"] == "broken-targeting")
        .unwrap();
    assert_eq!(broken["errorCode"], "PARSE_ERROR");
    assert_eq!(broken.get("value"), None);
}

#[test]
fn matching_if_none_match_is_304_and_another_context_another_etag() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let body = r#"{"context": {"targetingKey": "u1"}}"#;
    let first = bulk(&daemon, body, None);
    let etag = first.header("etag").expect("an ETag").to_owned();
    // The same request on the same generation: the same tag.
    assert_eq!(
        bulk(&daemon, body, None).header("etag"),
        Some(etag.as_str())
    );
    for tags in [
        etag.clone(),
        format!("\"stale\", {etag}"),
        format!("W/{etag}"),
    ] {
        let answer = bulk(&daemon, body, Some(&tags));
        assert_eq!(answer.status, 304, "If-None-Match: {tags}");
        assert!(answer.body.is_empty());
        assert_eq!(answer.header("etag"), Some(etag.as_str()));
    }
    // `*` on a POST asks for 412 (RFC 9110), never "not modified": the
    // answer is evaluated.
    assert_eq!(bulk(&daemon, body, Some("*")).status, 200);
    // Another context: another tag, and the old one does not match it.
    let other = r#"{"context": {"targetingKey": "u2"}}"#;
    let answer = bulk(&daemon, other, Some(&etag));
    assert_eq!(answer.status, 200);
    let other_tag = answer.header("etag").expect("an ETag");
    assert_ne!(other_tag, etag);
    assert_eq!(answer.json()["flags"].as_array().unwrap().len(), 9);
    // A tag from elsewhere (another process, an older generation).
    let foreign = format!("\"{}-0-0\"", "0");
    assert_eq!(bulk(&daemon, body, Some(&foreign)).status, 200);
}

// ===== keys, configuration, rate limit =====

#[test]
fn percent_encoded_keys_are_decoded() {
    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    for (path_key, key, value) in [
        ("team%2Frollout%2050%25", "team/rollout 50%", "yes"),
        ("caf%C3%A9", "café", "espresso"),
        ("caf%c3%a9", "café", "espresso"),
        ("%62oolean-flag", "boolean-flag", "true"),
    ] {
        let answer = evaluate(&daemon, path_key, "");
        assert_eq!(answer.status, 200, "{path_key}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["key"], key);
        assert_eq!(body["value"].to_string().trim_matches('"'), value);
    }
    let answer = evaluate(&daemon, "no%20such", "");
    assert_eq!(
        (answer.status, answer.json()["key"].clone()),
        (404, json!("no such"))
    );
    // Escapes that are not hex, cut short, or not UTF-8.
    for bad in ["%zz", "caf%C3", "%FF", "abc%4"] {
        let answer = evaluate(&daemon, bad, "");
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text());
        assert!(
            answer.json()["errorDetails"]
                .as_str()
                .unwrap()
                .contains("percent"),
            "{bad}"
        );
    }
}

#[test]
fn configuration_describes_the_provider() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let answer = request(daemon.ofrep, "GET", "/ofrep/v1/configuration", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    assert_eq!(body["name"], "acqrel-flagd");
    assert_eq!(
        body["capabilities"]["flagEvaluation"]["supportedTypes"],
        json!(["boolean", "string", "int", "float", "object"])
    );
    assert_eq!(
        body["capabilities"]["cacheInvalidation"]["polling"]["enabled"],
        true
    );
}

#[test]
fn rate_limit_answers_429_with_retry_after_and_spares_the_management_port() {
    let daemon = Daemon::ready(&[&example_flags()], &["--rate-limit", "2/s"]);
    // The first request of a fresh client is allowed; at 2/s, one of the
    // next 50 back-to-back ones is not (they would have to take 25 s).
    assert_eq!(evaluate(&daemon, "dark-mode", "").status, 200);
    let limited = (0..50)
        .map(|_| evaluate(&daemon, "dark-mode", ""))
        .find(|answer| answer.status != 200)
        .expect("a refusal within 50 requests at 2/s");
    assert_eq!(limited.status, 429, "{}", limited.text());
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    assert!(limited.json()["errorDetails"].is_string());
    // The management port is not limited, even right now.
    for _ in 0..10 {
        assert_eq!(daemon.manage("/healthz").status, 200);
    }
    let refused = daemon.metric(
        r#"acqrel_flagd_http_requests_total{route="/ofrep/v1/evaluate/flags/{key}",status="429"}"#,
    );
    assert!(refused >= 1.0, "{refused}");
    // A rate, not a ban: tokens come back.
    eventually("an allowed request after the refusal", || {
        evaluate(&daemon, "dark-mode", "").status == 200
    });
}

// ===== the server answers what the library answers =====

#[test]
fn answers_match_the_in_process_evaluate() {
    let contexts = [
        json!({}),
        json!({"targetingKey": "jack"}),
        json!({"targetingKey": "user-1234", "email": "ann@example.com", "appVersion": "2.4.1"}),
        json!({"targetingKey": "queen", "email": "x@internal.test", "version": "3.1.0", "id": "admin-7"}),
        json!({"email": "bob@bigcorp.com", "version": "2.5.9", "pick": "b", "appVersion": "1.0.0"}),
        json!({"email": "a@partner.test", "pick": "a", "appVersion": "not a version"}),
    ];
    for path in [example_flags(), testbed_flags()] {
        let flags = in_process(&path);
        let daemon = Daemon::ready(&[&path], &[]);
        let keys: Vec<String> = flags
            .keys()
            .map(str::to_owned)
            .chain(["missing".to_owned()])
            .collect();
        assert!(keys.len() >= 10, "{}", path.display());
        for context in &contexts {
            let body = with_context(context);
            for key in &keys {
                let answer = evaluate(&daemon, &percent_encode(key), &body);
                let (status, expected) = expected(&flags, key, context);
                assert_eq!(answer.status, status, "{key} {context}: {}", answer.text());
                assert_eq!(answer.json(), expected, "{key} {context}");
            }
            // The bulk answer's entries are the single answers.
            let bulk = bulk(&daemon, &body, None).json();
            let entries = bulk["flags"].as_array().unwrap();
            assert_eq!(entries.len(), flags.len());
            for entry in entries {
                let key = entry["key"].as_str().unwrap();
                assert_eq!(
                    *entry,
                    expected(&flags, key, context).1,
                    "bulk {key} {context}"
                );
            }
            assert_eq!(bulk["metadata"], Json::Object(flags.metadata().clone()));
        }
    }
}
