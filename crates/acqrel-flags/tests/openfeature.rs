//! The OpenFeature provider through the SDK's own client: every flag type,
//! every reason, every error code, disabled flags and flags without a
//! default variant giving the application's default, the evaluation
//! context's mapping (targeting key, nested structs read by a rule), flag
//! metadata, and later generations of the store.

#![cfg(feature = "openfeature")]

use std::fmt::Debug;
use std::sync::Arc;

use acqrel_flags::openfeature::{AcqrelProvider, fallback_reason};
use acqrel_flags::{Change, FlagSet, FlagStore};
use open_feature::{
    Client, EvaluationContext, EvaluationContextFieldValue, EvaluationDetails, EvaluationError,
    EvaluationErrorCode, EvaluationReason, EvaluationResult, FlagMetadata, FlagMetadataValue,
    OpenFeature, StructValue, Value,
};
use serde_json::{Map, Value as Json, json};

// ===== helpers =====

/// One flag of every type, and one for each outcome.
const FLAGS: &str = r#"{
  "metadata": {"team": "web", "flagSetId": "main"},
  "flags": {
    "bool-flag":   {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "int-flag":    {"state": "ENABLED", "variants": {"few": 3, "many": 30}, "defaultVariant": "many"},
    "float-flag":  {"state": "ENABLED", "variants": {"low": 0.25, "high": 0.75}, "defaultVariant": "low"},
    "string-flag": {"state": "ENABLED", "variants": {"a": "Hello", "b": "Hi"}, "defaultVariant": "b"},
    "object-flag": {"state": "ENABLED", "defaultVariant": "v1", "variants": {"v1": {
        "name": "blue", "size": 3, "ratio": 0.5, "whole": 2.0, "huge": 18446744073709551615,
        "gone": null,
        "deep": {"on": true, "tags": ["x", null, 2, [1.5]], "empty": {}}
    }}},
    "plan": {
      "state": "ENABLED", "variants": {"gold": "gold", "silver": "silver"}, "defaultVariant": "silver",
      "targeting": {"if": [{"==": [{"var": "user.account.tier"}, "pro"]}, "gold", null]}
    },
    "by-key": {
      "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"==": [{"var": "targetingKey"}, "alice"]}, "on", null]}
    },
    "disabled":        {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "disabled-object": {"state": "DISABLED", "variants": {"v": {"k": 1}}, "defaultVariant": "v"},
    "null-default":    {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": null},
    "absent-default": {
      "state": "ENABLED", "variants": {"gold": "gold"},
      "targeting": {"if": [{"==": [{"var": "user.account.tier"}, "pro"]}, "gold", null]}
    },
    "unknown-ref":     {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                        "targeting": {"$ref": "nowhere"}},
    "unknown-variant": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                        "targeting": {"if": [true, "bronze", null]}},
    "meta": {
      "state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
      "metadata": {"team": "checkout", "ticket": 42, "rollout": 0.5, "public": false,
                   "big": 18446744073709551615}
    }
  }
}"#;

/// The store of [`FLAGS`] (whose only load warning is `unknown-ref`'s).
fn store() -> Arc<FlagStore> {
    let (set, warnings) = FlagSet::parse(FLAGS).unwrap_or_else(|err| panic!("{err}"));
    let warned: Vec<&str> = warnings.iter().map(|w| w.flag_key()).collect();
    assert_eq!(warned, ["unknown-ref"]);
    Arc::new(FlagStore::from_set(set))
}

/// A client of an OpenFeature API of its own (not the process-wide
/// singleton, so tests do not share providers) served by `store`.
async fn client_of(store: &Arc<FlagStore>) -> Client {
    let mut api = OpenFeature::default();
    api.set_provider(AcqrelProvider::new(Arc::clone(store)))
        .await;
    assert_eq!(api.provider_metadata().await.name, "acqrel-flags");
    api.create_client()
}

async fn client() -> Client {
    client_of(&store()).await
}

/// Asserts a successful evaluation and returns its metadata.
#[track_caller]
fn assert_served<T: PartialEq + Debug>(
    details: EvaluationResult<EvaluationDetails<T>>,
    value: T,
    variant: &str,
    reason: EvaluationReason,
) -> FlagMetadata {
    let details = details.unwrap_or_else(|err| panic!("expected a value, got {err:?}"));
    assert_eq!(details.value, value);
    assert_eq!(details.variant.as_deref(), Some(variant));
    assert_eq!(details.reason, Some(reason));
    details.flag_metadata
}

/// The metadata every flag without its own inherits from [`FLAGS`].
fn set_metadata() -> FlagMetadata {
    FlagMetadata::default()
        .with_value("team", "web")
        .with_value("flagSetId", "main")
}

/// Asserts the error of an evaluation that must fail.
#[track_caller]
fn assert_error<T: Debug>(
    result: EvaluationResult<T>,
    code: EvaluationErrorCode,
) -> EvaluationError {
    let error = result.expect_err("expected an error");
    assert_eq!(error.code, code);
    error
}

/// The error a disabled flag (or one without a default variant) gives:
/// code `General(code)`, a message naming the flag, and `reason` from
/// `fallback_reason`.
#[track_caller]
fn assert_fallback<T: Debug>(
    result: EvaluationResult<T>,
    key: &str,
    code: &str,
    reason: EvaluationReason,
) {
    let error = assert_error(result, EvaluationErrorCode::General(code.to_owned()));
    assert_eq!(error.code.to_string(), code);
    let why = match reason {
        EvaluationReason::Disabled => "is disabled",
        _ => "has no default variant",
    };
    assert_eq!(
        error.message,
        Some(format!(
            "flag {key:?} {why}: the application's default value applies"
        ))
    );
    assert_eq!(fallback_reason(&error), Some(reason));
}

/// A context with a `user` struct whose `account.tier` is `tier`.
fn user_with_tier(tier: &str) -> EvaluationContext {
    let account = StructValue::default().with_field("tier", tier);
    let user = StructValue::default().with_field("account", account);
    EvaluationContext::default()
        .with_custom_field("user", EvaluationContextFieldValue::new_struct(user))
}

// ===== every type =====

#[tokio::test]
async fn every_type_resolves_through_the_client() {
    let client = client().await;
    let reason = EvaluationReason::Static;

    let details = client.get_bool_details("bool-flag", None, None).await;
    assert_eq!(
        assert_served(details, true, "on", reason.clone()),
        set_metadata()
    );
    let details = client.get_int_details("int-flag", None, None).await;
    assert_eq!(
        assert_served(details, 30, "many", reason.clone()),
        set_metadata()
    );
    let details = client.get_float_details("float-flag", None, None).await;
    assert_eq!(
        assert_served(details, 0.25, "low", reason.clone()),
        set_metadata()
    );
    let details = client.get_string_details("string-flag", None, None).await;
    assert_eq!(
        assert_served(details, "Hi".to_owned(), "b", reason.clone()),
        set_metadata()
    );

    // Objects become structs; numbers stay integers where they are; null
    // members and elements are left out.
    let deep = StructValue::default()
        .with_field("on", true)
        .with_field(
            "tags",
            Value::Array(vec!["x".into(), 2.into(), Value::Array(vec![1.5.into()])]),
        )
        .with_field("empty", StructValue::default());
    let object = StructValue::default()
        .with_field("name", "blue")
        .with_field("size", 3)
        .with_field("ratio", 0.5)
        .with_field("whole", 2.0)
        .with_field("huge", u64::MAX as f64)
        .with_field("deep", deep);
    let details = client
        .get_struct_details::<StructValue>("object-flag", None, None)
        .await;
    assert_eq!(
        assert_served(details, object.clone(), "v1", reason),
        set_metadata()
    );
    let value = client
        .get_struct_value::<StructValue>("object-flag", None, None)
        .await;
    assert_eq!(value, Ok(object));

    // The plain `get_*_value` calls return the same values.
    assert_eq!(
        client.get_bool_value("bool-flag", None, None).await,
        Ok(true)
    );
    assert_eq!(client.get_int_value("int-flag", None, None).await, Ok(30));
    assert_eq!(
        client.get_float_value("float-flag", None, None).await,
        Ok(0.25)
    );
    assert_eq!(
        client.get_string_value("string-flag", None, None).await,
        Ok("Hi".to_owned())
    );
}

#[tokio::test]
async fn an_integer_flag_reads_as_float_but_not_the_reverse() {
    let client = client().await;
    let details = client.get_float_details("int-flag", None, None).await;
    assert_served(details, 30.0, "many", EvaluationReason::Static);
    let result = client.get_int_details("float-flag", None, None).await;
    assert_error(result, EvaluationErrorCode::TypeMismatch);
}

// ===== reasons =====

#[tokio::test]
async fn targeting_match_and_default_reasons() {
    let client = client().await;

    let pro = user_with_tier("pro");
    let details = client.get_string_details("plan", Some(&pro), None).await;
    assert_served(
        details,
        "gold".to_owned(),
        "gold",
        EvaluationReason::TargetingMatch,
    );

    // The rule returns null: the flag's default variant, reason DEFAULT.
    let free = user_with_tier("free");
    let details = client.get_string_details("plan", Some(&free), None).await;
    assert_served(
        details,
        "silver".to_owned(),
        "silver",
        EvaluationReason::Default,
    );
    let details = client.get_string_details("plan", None, None).await;
    assert_served(
        details,
        "silver".to_owned(),
        "silver",
        EvaluationReason::Default,
    );
}

// ===== the application's default =====

#[tokio::test]
async fn a_disabled_flag_gives_the_applications_default() {
    let client = client().await;

    // The flag's default variant is `on` (true) and the provider's
    // placeholder is `false`: the application's `false` and `true` both
    // come back as given.
    let result = client.get_bool_value("disabled", None, None).await;
    assert!(!result.clone().unwrap_or(false));
    assert!(result.clone().unwrap_or(true));
    assert_fallback(result, "disabled", "DISABLED", EvaluationReason::Disabled);
    let result = client.get_bool_details("disabled", None, None).await;
    assert_fallback(result, "disabled", "DISABLED", EvaluationReason::Disabled);

    let app_default = StructValue::default().with_field("app", 7);
    let result = client
        .get_struct_value::<StructValue>("disabled-object", None, None)
        .await;
    assert_eq!(result.clone().unwrap_or(app_default.clone()), app_default);
    assert_fallback(
        result,
        "disabled-object",
        "DISABLED",
        EvaluationReason::Disabled,
    );
}

#[tokio::test]
async fn a_flag_without_a_default_variant_gives_the_applications_default() {
    let client = client().await;

    // `defaultVariant: null`, no targeting.
    let result = client.get_bool_value("null-default", None, None).await;
    assert!(result.clone().unwrap_or(true));
    assert_fallback(result, "null-default", "DEFAULT", EvaluationReason::Default);

    // No `defaultVariant`: the rule's match is served, its null is not.
    let pro = user_with_tier("pro");
    let details = client
        .get_string_details("absent-default", Some(&pro), None)
        .await;
    assert_served(
        details,
        "gold".to_owned(),
        "gold",
        EvaluationReason::TargetingMatch,
    );
    let free = user_with_tier("free");
    let result = client
        .get_string_value("absent-default", Some(&free), None)
        .await;
    assert_eq!(result.clone().unwrap_or_else(|_| "app".to_owned()), "app");
    assert_fallback(
        result,
        "absent-default",
        "DEFAULT",
        EvaluationReason::Default,
    );
}

// ===== errors =====

#[tokio::test]
async fn every_error_code_with_our_message() {
    let store = store();
    let client = client_of(&store).await;
    let ours = |key: &str| {
        let resolution = store.resolve(key, false, &acqrel_flags::EvaluationContext::new());
        resolution.error_message.expect("an error message")
    };

    let cases = [
        ("no-such-flag", EvaluationErrorCode::FlagNotFound),
        ("string-flag", EvaluationErrorCode::TypeMismatch),
        ("unknown-ref", EvaluationErrorCode::ParseError),
        ("unknown-variant", EvaluationErrorCode::ParseError),
    ];
    for (key, code) in cases {
        let result = client.get_bool_details(key, None, None).await;
        let error = assert_error(result, code.clone());
        assert_eq!(error.message, Some(ours(key)), "{key}");
        assert_eq!(fallback_reason(&error), None, "{key}");
        // The application's default, as for every failed evaluation.
        assert!(client.get_bool_value(key, None, None).await.unwrap_or(true));
    }

    // Each typed call checks its own type.
    let result = client.get_string_value("bool-flag", None, None).await;
    assert_error(result, EvaluationErrorCode::TypeMismatch);
    let result = client
        .get_struct_value::<StructValue>("int-flag", None, None)
        .await;
    assert_error(result, EvaluationErrorCode::TypeMismatch);
    let result = client.get_float_value("object-flag", None, None).await;
    assert_error(result, EvaluationErrorCode::TypeMismatch);
}

// ===== context =====

#[tokio::test]
async fn the_targeting_key_reaches_rules() {
    let mut client = client().await;

    let alice = EvaluationContext::default().with_targeting_key("alice");
    let details = client.get_bool_details("by-key", Some(&alice), None).await;
    assert_served(details, true, "on", EvaluationReason::TargetingMatch);
    let bob = EvaluationContext::default().with_targeting_key("bob");
    let details = client.get_bool_details("by-key", Some(&bob), None).await;
    assert_served(details, false, "off", EvaluationReason::Default);

    // A string custom field `targetingKey` is the targeting key when the
    // context has none (other SDKs keep the key as that attribute).
    let attribute = EvaluationContext::default().with_custom_field("targetingKey", "alice");
    let details = client
        .get_bool_details("by-key", Some(&attribute), None)
        .await;
    assert_served(details, true, "on", EvaluationReason::TargetingMatch);
    let both = attribute.with_targeting_key("bob");
    let details = client.get_bool_details("by-key", Some(&both), None).await;
    assert_served(details, false, "off", EvaluationReason::Default);

    // The SDK merges the client's context under the invocation's.
    client.set_evaluation_context(alice);
    let details = client.get_bool_details("by-key", None, None).await;
    assert_served(details, true, "on", EvaluationReason::TargetingMatch);
    let details = client.get_bool_details("by-key", Some(&bob), None).await;
    assert_served(details, false, "off", EvaluationReason::Default);
}

#[tokio::test]
async fn nested_struct_attributes_reach_rules_whatever_their_container() {
    let client = client().await;
    let account = StructValue::default().with_field("tier", "pro");
    let user = StructValue::default().with_field("account", account);
    let json = json!({"account": {"tier": "pro"}});
    let map = json.as_object().cloned().unwrap_or_default();
    let with_user = |user: EvaluationContextFieldValue| {
        EvaluationContext::default().with_custom_field("user", user)
    };

    // An `open_feature::StructValue`, an `open_feature::Value`, a
    // `serde_json::Value` or a `serde_json::Map` is read as JSON.
    let readable = [
        with_user(EvaluationContextFieldValue::new_struct(user.clone())),
        with_user(EvaluationContextFieldValue::new_struct(Value::Struct(user))),
        with_user(EvaluationContextFieldValue::new_struct(json)),
        with_user(EvaluationContextFieldValue::new_struct(map.clone())),
    ];
    for ctx in &readable {
        let details = client.get_string_details("plan", Some(ctx), None).await;
        assert_served(
            details,
            "gold".to_owned(),
            "gold",
            EvaluationReason::TargetingMatch,
        );
    }

    // Any other type is `null` to rules (here an `Option` of a map).
    let opaque = with_user(EvaluationContextFieldValue::new_struct(Some(map)));
    let details = client.get_string_details("plan", Some(&opaque), None).await;
    assert_served(
        details,
        "silver".to_owned(),
        "silver",
        EvaluationReason::Default,
    );
}

#[test]
fn context_fields_map_to_json_exactly() {
    let nested = StructValue::default()
        .with_field("n", 1)
        .with_field("x", 0.5)
        .with_field("nan", f64::NAN)
        .with_field(
            "list",
            Value::Array(vec![true.into(), "s".into(), f64::INFINITY.into()]),
        )
        .with_field("inner", StructValue::default().with_field("k", "v"));
    let theirs = EvaluationContext::default()
        .with_targeting_key("user-9")
        .with_custom_field("flag", true)
        .with_custom_field("count", -3)
        .with_custom_field("ratio", 0.75)
        .with_custom_field("nan", f64::NAN)
        .with_custom_field("inf", f64::NEG_INFINITY)
        .with_custom_field("name", "ada")
        .with_custom_field("nested", EvaluationContextFieldValue::new_struct(nested))
        .with_custom_field(
            "value",
            EvaluationContextFieldValue::new_struct(Value::Int(5)),
        )
        .with_custom_field(
            "json",
            EvaluationContextFieldValue::new_struct(json!([1, null])),
        )
        .with_custom_field("opaque", EvaluationContextFieldValue::new_struct(42_u8));
    let ours = acqrel_flags::EvaluationContext::from(&theirs);
    assert_eq!(ours.targeting_key(), Some("user-9"));
    let expected = json!({
        "flag": true,
        "count": -3,
        "ratio": 0.75,
        "nan": null,
        "inf": null,
        "name": "ada",
        "nested": {"n": 1, "x": 0.5, "nan": null, "list": [true, "s", null], "inner": {"k": "v"}},
        "value": 5,
        "json": [1, null],
        "opaque": null
    });
    assert_eq!(Json::Object(ours.attributes().clone()), expected);

    // No targeting key at all.
    let empty = acqrel_flags::EvaluationContext::from(&EvaluationContext::default());
    assert_eq!(empty.targeting_key(), None);
    assert_eq!(empty.attributes(), &Map::new());
}

// ===== metadata =====

#[tokio::test]
async fn flag_metadata_is_merged_and_typed() {
    let client = client().await;
    let details = client.get_bool_details("meta", None, None).await;
    let metadata = assert_served(details, true, "on", EvaluationReason::Static);
    let expected = FlagMetadata::default()
        .with_value("team", "checkout")
        .with_value("flagSetId", "main")
        .with_value("ticket", 42)
        .with_value("rollout", 0.5)
        .with_value("public", false)
        .with_value("big", u64::MAX as f64);
    assert_eq!(metadata, expected);
    assert_eq!(
        metadata.values.get("ticket"),
        Some(&FlagMetadataValue::Int(42))
    );
}

// ===== the store's generations =====

#[tokio::test]
async fn the_provider_serves_the_stores_current_generation() {
    let store = store();
    let client = client_of(&store).await;
    assert_eq!(
        client.get_bool_value("bool-flag", None, None).await,
        Ok(true)
    );

    let (set, _) = FlagSet::parse(
        r#"{"flags": {"bool-flag": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#,
    )
    .unwrap_or_else(|err| panic!("{err}"));
    store.apply(set.into_iter().map(Change::Put));
    let details = client.get_bool_details("bool-flag", None, None).await;
    // The new flag has no metadata of its own and its file none either.
    assert_eq!(
        assert_served(details, false, "off", EvaluationReason::Static),
        FlagMetadata::default()
    );

    store.apply([Change::Remove("bool-flag".to_owned())]);
    let result = client.get_bool_value("bool-flag", None, None).await;
    assert_error(result, EvaluationErrorCode::FlagNotFound);
}
