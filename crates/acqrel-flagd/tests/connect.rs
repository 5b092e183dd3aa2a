//! The Connect form of the evaluation calls on the running binary's gRPC
//! port: plain HTTP/1.1 `POST`s with JSON bodies, written and read the way
//! curl sends them (the harness's own HTTP client), as in flagd's
//! documentation. The answers are protobuf JSON with every field written;
//! errors are Connect's codes and HTTP statuses.

mod common;

use common::{Daemon, HttpResponse, example_flags, request};
use serde_json::{Value, json};

/// A Connect call to `method` of the evaluation service `version`.
fn call(daemon: &Daemon, version: u8, method: &str, body: &str) -> HttpResponse {
    call_with(daemon, version, method, &[], body)
}

fn call_with(
    daemon: &Daemon,
    version: u8,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let path = format!("/flagd.evaluation.v{version}.Service/{method}");
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(daemon.evaluation, "POST", &path, &all, body.as_bytes())
}

fn ok(response: HttpResponse) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.json()
}

/// The flag set's metadata in the shipped example, merged under a flag's.
fn metadata(flag: Value) -> Value {
    let mut merged = json!({ "flagSetId": "shop-web", "team": "web" });
    for (key, value) in flag.as_object().into_iter().flatten() {
        merged[key] = value.clone();
    }
    merged
}

#[test]
fn the_curl_of_flagds_docs_resolves_every_type() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let staff = r#"{"flagKey": "staff-tools", "context": {"email": "ana@example.com"}}"#;
    assert_eq!(
        ok(call(&daemon, 1, "ResolveBoolean", staff)),
        json!({
            "value": true,
            "reason": "TARGETING_MATCH",
            "variant": "on",
            "metadata": metadata(json!({})),
        })
    );
    // protobuf JSON's other spelling of the key; an int64 is a string.
    let cart = ok(call(
        &daemon,
        1,
        "ResolveInt",
        r#"{"flag_key": "max-cart-items"}"#,
    ));
    assert_eq!(
        (&cart["value"], &cart["variant"]),
        (&json!("20"), &json!("standard"))
    );
    let rate = ok(call(
        &daemon,
        1,
        "ResolveFloat",
        r#"{"flagKey": "discount-rate"}"#,
    ));
    assert_eq!(rate["value"], json!(0.15));
    let support = r#"{"flagKey": "support-channel", "context": {"email": "bo@bigcorp.com"}}"#;
    let channel = ok(call(&daemon, 2, "ResolveString", support));
    assert_eq!(
        channel,
        json!({
            "value": "phone",
            "reason": "TARGETING_MATCH",
            "variant": "phone",
            "metadata": metadata(json!({ "owner": "support" })),
        })
    );
    let layout = ok(call(
        &daemon,
        1,
        "ResolveObject",
        r#"{"flagKey": "checkout-layout"}"#,
    ));
    assert_eq!(layout["value"], json!({ "steps": 3, "expressPay": false }));

    // A disabled flag: version 1 writes the zero and an empty variant,
    // version 2 neither.
    let legacy = r#"{"flagKey": "legacy-search"}"#;
    let one = ok(call(&daemon, 1, "ResolveBoolean", legacy));
    assert_eq!(
        (&one["value"], &one["reason"], &one["variant"]),
        (&json!(false), &json!("DISABLED"), &json!(""))
    );
    let two = ok(call(&daemon, 2, "ResolveBoolean", legacy));
    assert_eq!(
        two,
        json!({ "reason": "DISABLED", "metadata": metadata(json!({})) })
    );

    let all = ok(call(&daemon, 1, "ResolveAll", "{}"));
    assert_eq!(all["flags"]["dark-mode"]["boolValue"], json!(true));
    assert_eq!(
        all["flags"]["support-channel"]["stringValue"],
        json!("email")
    );
    assert_eq!(all["flags"]["max-cart-items"]["doubleValue"], json!(20.0));
    assert_eq!(all["flags"]["legacy-search"]["reason"], json!("DISABLED"));
    assert_eq!(all["metadata"]["flagSetId"], json!("shop-web"));

    // The calls went through the gRPC service's own accounting.
    let booleans = r#"acqrel_flagd_grpc_requests_total{method="ResolveBoolean",code="OK"}"#;
    assert_eq!(daemon.metric(booleans), 3.0);
}

#[test]
fn connect_errors_carry_connects_codes_and_statuses() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let error = |response: HttpResponse| {
        let body = response.json();
        (
            response.status,
            body["code"].clone(),
            body["message"].clone(),
        )
    };
    let (status, code, _) = error(call(&daemon, 1, "ResolveBoolean", r#"{"flagKey": "nope"}"#));
    assert_eq!((status, code), (404, json!("not_found")));

    let wrong = r#"{"flagKey": "dark-mode"}"#;
    let (status, code, message) = error(call(&daemon, 2, "ResolveString", wrong));
    assert_eq!((status, code), (400, json!("invalid_argument")));
    assert!(
        message.as_str().unwrap().starts_with("TYPE_MISMATCH"),
        "{message}"
    );

    for bad in [
        "",
        "[1]",
        r#"{"flagKey": 7}"#,
        r#"{"flagKey": "dark-mode", "context": 1}"#,
    ] {
        let (status, code, _) = error(call(&daemon, 1, "ResolveBoolean", bad));
        assert_eq!((status, code), (400, json!("invalid_argument")), "{bad:?}");
    }

    let other_set = [("Flagd-Selector", "flagSetId=other")];
    let (status, code, _) = error(call_with(&daemon, 1, "ResolveBoolean", &other_set, wrong));
    assert_eq!((status, code), (404, json!("not_found")));

    // Streams are gRPC only; version 2 has no ResolveAll.
    for (version, method) in [(1, "EventStream"), (2, "ResolveAll"), (1, "Nope")] {
        let (status, code, _) = error(call(&daemon, version, method, "{}"));
        assert_eq!(
            (status, code),
            (501, json!("unimplemented")),
            "v{version} {method}"
        );
    }

    // The server is still answering.
    let fine = ok(call(&daemon, 1, "ResolveBoolean", wrong));
    assert_eq!(fine["value"], json!(true));
}
