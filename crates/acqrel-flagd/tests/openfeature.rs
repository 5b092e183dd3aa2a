//! A real OpenFeature client against the running binary: the Rust
//! `open-feature` SDK with the `open-feature-ofrep` provider (0.1.2),
//! evaluating flags of every type over HTTP.
//!
//! What the checks say is what that provider reports, which is less than
//! the server sends. Reading its source (`src/resolver.rs`):
//!
//! - every success is reported with reason `STATIC` and empty flag
//!   metadata, whatever the server's `reason` and `metadata` were (the
//!   variant is passed through);
//! - every 400 is `INVALID_CONTEXT` (a `PARSE_ERROR` answer too), a 404
//!   `FLAG_NOT_FOUND`;
//! - a 200 without `value` (OFREP ADR-0006, "Optional value field for code
//!   default deferral": the flag defers to the caller's code default, here
//!   for a disabled flag and a flag with no default variant) goes through
//!   its JSON-to-type converter as `null` and fails as `PARSE_ERROR`
//!   ("Invalid value ..."), where the ADR asks the provider to resolve the
//!   caller's default with the server's reason. The SDK hands the error to
//!   the application, whose `unwrap_or(default)` then ends on its code
//!   default anyway, by another road;
//! - a type the flag does not have is `PARSE_ERROR`, not `TYPE_MISMATCH`.
//!
//! The server's answers follow the protocol and stay so; each test also
//! shows the server's own answer where the provider reports less.

mod common;

use common::{Daemon, example_flags, testbed_flags};
use open_feature::{
    Client, EvaluationContext, EvaluationErrorCode, EvaluationReason, OpenFeature, StructValue,
    Value,
};
use open_feature_ofrep::{OfrepOptions, OfrepProvider};
use serde_json::json;

/// An SDK client whose provider is OFREP at `daemon` (bound under `name`,
/// so that the tests of this file, which share the SDK's global API, each
/// get their own provider).
async fn client(daemon: &Daemon, name: &str) -> Client {
    let provider = OfrepProvider::new(OfrepOptions {
        base_url: format!("http://{}", daemon.ofrep),
        ..OfrepOptions::default()
    })
    .await
    .expect("an OFREP provider");
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider(name, provider).await;
    api.create_named_client(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_type_evaluates_through_the_sdk() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let client = client(&daemon, "types").await;
    let staff = EvaluationContext::default()
        .with_targeting_key("user-1")
        .with_custom_field("email", "ann@example.com");
    let bigcorp = EvaluationContext::default().with_custom_field("email", "bob@bigcorp.com");

    let bool_flag = client
        .get_bool_details("dark-mode", None, None)
        .await
        .expect("dark-mode");
    assert_eq!(
        (bool_flag.value, bool_flag.variant.as_deref()),
        (true, Some("on"))
    );
    assert_eq!(bool_flag.reason, Some(EvaluationReason::Static));

    let string_flag = client
        .get_string_details("support-channel", Some(&bigcorp), None)
        .await
        .expect("support-channel");
    assert_eq!(
        (string_flag.value.as_str(), string_flag.variant.as_deref()),
        ("phone", Some("phone"))
    );
    // The provider says STATIC; the server said TARGETING_MATCH, with the
    // flag's metadata, which the provider drops.
    assert_eq!(string_flag.reason, Some(EvaluationReason::Static));
    assert!(string_flag.flag_metadata.values.is_empty());
    let served = daemon
        .post(
            "/ofrep/v1/evaluate/flags/support-channel",
            r#"{"context": {"email": "bob@bigcorp.com"}}"#,
        )
        .json();
    assert_eq!(
        (
            served["reason"].clone(),
            served["metadata"]["owner"].clone()
        ),
        (json!("TARGETING_MATCH"), json!("support"))
    );

    // The context reaches the server: targeting through `$ref`.
    let int_flag = client
        .get_int_details("max-cart-items", Some(&staff), None)
        .await
        .expect("max-cart-items");
    assert_eq!(
        (int_flag.value, int_flag.variant.as_deref()),
        (100, Some("extended"))
    );
    assert_eq!(
        client
            .get_int_value("max-cart-items", None, None)
            .await
            .expect("max-cart-items"),
        20
    );

    let float_flag = client
        .get_float_details("discount-rate", None, None)
        .await
        .expect("discount-rate");
    assert_eq!(
        (float_flag.value, float_flag.variant.as_deref()),
        (0.15, Some("spring"))
    );
    // An int flag read as a float converts.
    assert_eq!(
        client
            .get_float_value("max-cart-items", None, None)
            .await
            .expect("max-cart-items"),
        20.0
    );

    let struct_flag = client
        .get_struct_details::<StructValue>("checkout-layout", None, None)
        .await
        .expect("checkout-layout");
    assert_eq!(struct_flag.variant.as_deref(), Some("classic"));
    let fields = &struct_flag.value.fields;
    assert_eq!(fields.len(), 2);
    assert_eq!(fields["steps"], Value::Int(3));
    assert_eq!(fields["expressPay"], Value::Bool(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targeting_operators_evaluate_through_the_sdk() {
    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    let client = client(&daemon, "operators").await;
    let jack = EvaluationContext::default().with_targeting_key("jack");
    let fractional = client
        .get_string_value("fractional-flag", Some(&jack), None)
        .await
        .expect("fractional-flag");
    assert_eq!(fractional, "hearts");
    let version = EvaluationContext::default().with_custom_field("version", "2.5.3");
    let semver = client
        .get_string_details("semver-flag", Some(&version), None)
        .await
        .expect("semver-flag");
    assert_eq!(
        (semver.value.as_str(), semver.variant.as_deref()),
        ("minor", Some("minor"))
    );
    let internal = EvaluationContext::default().with_custom_field("email", "me@internal.test");
    assert_eq!(
        client
            .get_int_value("ref-flag", Some(&internal), None)
            .await
            .expect("ref-flag"),
        1000
    );
    let admin = EvaluationContext::default().with_custom_field("id", "admin-1");
    assert_eq!(
        client
            .get_string_value("prefix-suffix-flag", Some(&admin), None)
            .await
            .expect("prefix-suffix-flag"),
        "admin"
    );
    let object = client
        .get_struct_value::<StructValue>("object-flag", None, None)
        .await
        .expect("object-flag");
    assert_eq!(object.fields["imagesPerPage"], Value::Int(100));
    assert_eq!(
        object.fields["title"],
        Value::String("Check out these pics!".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_flag_is_flag_not_found() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let client = client(&daemon, "missing").await;
    let error = client
        .get_bool_details("no-such-flag", None, None)
        .await
        .expect_err("no such flag");
    assert_eq!(error.code, EvaluationErrorCode::FlagNotFound);
    assert_eq!(
        error.message.as_deref(),
        Some("Flag: no-such-flag not found")
    );
    let error = client
        .get_struct_details::<StructValue>("no-such-flag", None, None)
        .await
        .expect_err("no such flag");
    assert_eq!(error.code, EvaluationErrorCode::FlagNotFound);
    // The application's default.
    assert!(
        client
            .get_bool_value("no-such-flag", None, None)
            .await
            .unwrap_or(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_default_answers_are_parse_errors_in_this_provider() {
    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    let client = client(&daemon, "code-default").await;
    for (key, reason) in [
        ("disabled-flag", "DISABLED"),
        ("no-default-variant", "DEFAULT"),
    ] {
        // The server answers ADR-0006's code default: 200, no value.
        let served = daemon.post(&format!("/ofrep/v1/evaluate/flags/{key}"), "");
        assert_eq!(served.status, 200);
        assert_eq!(served.json().get("value"), None, "{key}");
        assert_eq!(served.json()["reason"], reason);
        // open-feature-ofrep 0.1.2 takes the missing value for a null of
        // the wrong type (see the file's comment).
        let error = client
            .get_bool_details(key, None, None)
            .await
            .expect_err(key);
        assert_eq!(error.code, EvaluationErrorCode::ParseError, "{key}");
        assert_eq!(
            error.message.as_deref(),
            Some("Invalid value bool"),
            "{key}"
        );
        // What the application ends with: its code default, both ways.
        assert!(
            !client
                .get_bool_value(key, None, None)
                .await
                .unwrap_or(false),
            "{key}"
        );
        assert!(
            client.get_bool_value(key, None, None).await.unwrap_or(true),
            "{key}"
        );
    }
    let error = client
        .get_struct_details::<StructValue>("disabled-flag", None, None)
        .await
        .expect_err("disabled");
    assert_eq!(error.code, EvaluationErrorCode::ParseError);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_as_this_provider_maps_them() {
    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    let client = client(&daemon, "errors").await;
    // The server's 400 PARSE_ERROR becomes the provider's INVALID_CONTEXT
    // (it maps every 400 so).
    assert_eq!(
        daemon
            .post("/ofrep/v1/evaluate/flags/broken-targeting", "")
            .json()["errorCode"],
        "PARSE_ERROR"
    );
    let error = client
        .get_bool_details("broken-targeting", None, None)
        .await
        .expect_err("broken");
    assert_eq!(error.code, EvaluationErrorCode::InvalidContext);
    // A type the flag does not have: the provider's converter fails, as
    // PARSE_ERROR (OFREP requests carry no type; the server cannot tell).
    let error = client
        .get_string_details("boolean-flag", None, None)
        .await
        .expect_err("not a string");
    assert_eq!(error.code, EvaluationErrorCode::ParseError);
    let error = client
        .get_int_details("float-flag", None, None)
        .await
        .expect_err("not an int");
    assert_eq!(error.code, EvaluationErrorCode::ParseError);
    let error = client
        .get_struct_details::<StructValue>("integer-flag", None, None)
        .await
        .expect_err("not a struct");
    assert_eq!(error.code, EvaluationErrorCode::ParseError);
    // And the right type still works on the same client.
    assert!(
        client
            .get_bool_value("boolean-flag", None, None)
            .await
            .expect("boolean-flag")
    );
}
