//! An OpenFeature provider over a [`FlagStore`] (feature `openfeature`).
//!
//! [`AcqrelProvider`] implements the `open-feature` crate's (0.3)
//! [`FeatureProvider`], so an application that evaluates flags through the
//! OpenFeature Rust SDK switches to this crate with one line:
//!
//! ```text
//! OpenFeature::singleton_mut().await.set_provider(AcqrelProvider::new(store)).await;
//! ```
//!
//! Every evaluation reads the store's current generation, so flags the
//! application later puts in the store ([`FlagStore::apply`],
//! [`FlagStore::replace`], or a hot-reloaded file) take effect at once.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//!
//! use acqrel_flags::openfeature::AcqrelProvider;
//! use acqrel_flags::{FlagSet, FlagStore};
//! use open_feature::{EvaluationContext, EvaluationReason, OpenFeature};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (set, _warnings) = FlagSet::parse(r#"{"flags": {"new-checkout": {
//!     "state": "ENABLED",
//!     "variants": {"on": true, "off": false},
//!     "defaultVariant": "off",
//!     "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "on", null]}
//! }}}"#)
//! .unwrap();
//! let store = Arc::new(FlagStore::from_set(set));
//!
//! // The one line that switches the application to this crate.
//! OpenFeature::singleton_mut().await.set_provider(AcqrelProvider::new(store)).await;
//!
//! let client = OpenFeature::singleton().await.create_client();
//! let pro = EvaluationContext::default()
//!     .with_targeting_key("user-1")
//!     .with_custom_field("plan", "pro");
//! let details = client.get_bool_details("new-checkout", Some(&pro), None).await.unwrap();
//! assert!(details.value);
//! assert_eq!(details.variant.as_deref(), Some("on"));
//! assert_eq!(details.reason, Some(EvaluationReason::TargetingMatch));
//!
//! // The application keeps its own default when the flag cannot give one.
//! let on = client.get_bool_value("no-such-flag", None, None).await.unwrap_or(true);
//! assert!(on);
//! # }
//! ```
//!
//! # When the application's default applies
//!
//! In flagd's format some outcomes mean "use the caller's default value": a
//! `DISABLED` flag (reason `DISABLED`), a flag whose `defaultVariant` is
//! null or absent when no targeting rule picks a variant (reason
//! `DEFAULT`), and every error (reason `ERROR`). The `open-feature` 0.3 SDK
//! gives the provider no default value: `Client::get_bool_value(key,
//! context, options)` returns `Result<bool, EvaluationError>`, a successful
//! [`ResolutionDetails`] must carry a value, and whatever value the provider
//! returns is what the application gets. A placeholder (`false`, `0`, `""`)
//! would silently replace the application's default, so the provider
//! reports all three outcomes as an [`EvaluationError`], the one thing the
//! SDK hands to the application untouched, and the application applies its
//! default itself (`.unwrap_or(default)`):
//!
//! | the flag's outcome | `get_*_value` / `get_*_details` return | [`fallback_reason`] |
//! |---|---|---|
//! | a variant (reasons `STATIC`, `TARGETING_MATCH`, `DEFAULT`) | `Ok`: the variant's value; details with the variant's name, the reason and the flag's metadata | - |
//! | `DISABLED` | `Err(EvaluationError { code: General("DISABLED"), message })` | `Some(Disabled)` |
//! | no default variant (`DEFAULT`) | `Err(EvaluationError { code: General("DEFAULT"), message })` | `Some(Default)` |
//! | `ERROR` | `Err(EvaluationError { code, message })`, `code` one of `FlagNotFound`, `TypeMismatch`, `ParseError`, `General("GENERAL")` | `None` |
//!
//! The SDK's error type has a code and a message but no reason, so the two
//! use-your-default outcomes travel as `General` codes named after the
//! reason flagd reports for them (`General`'s text is also what the code
//! displays as, `DISABLED` or `DEFAULT`), and [`fallback_reason`] turns
//! such an error back into the reason. What an application sees:
//!
//! - `client.get_bool_value(key, ctx, None).await.unwrap_or(default)` is
//!   `default` for a disabled flag, a flag without a default variant, and
//!   every error, as in flagd's other SDKs.
//! - `get_*_details` returns the same `Err`, so the reason is not in an
//!   `EvaluationDetails`; [`fallback_reason`] recovers `DISABLED` or
//!   `DEFAULT` from the error.
//! - The SDK runs the `error` hooks for these outcomes, then the `finally`
//!   hooks with reason `ERROR` and the type's `Default` value (the SDK's own
//!   placeholder, not the application's default), so a logging hook logs a
//!   disabled flag at the error level.
//! - The flag's metadata is not returned with an error (the SDK's error has
//!   no place for it).
//!
//! # Mappings
//!
//! **Evaluation context.** The targeting key becomes the targeting key
//! (`targetingKey` in rules). A context without one takes a string custom
//! field `targetingKey` as the key instead (OpenFeature's other SDKs keep
//! the key as a context attribute of that name). Each other custom field
//! becomes an attribute:
//!
//! | `EvaluationContextFieldValue` | JSON attribute |
//! |---|---|
//! | `Bool`, `Int`, `String` | the same JSON value |
//! | `Float` | a number; `null` if not finite |
//! | `DateTime` | an RFC 3339 string in UTC, `"2024-05-06T07:08:09Z"`, with `.mmm`, `.uuuuuu` or `.nnnnnnnnn` when the instant has a fraction of a second (ISO 8601, the form JSON gives dates in OpenFeature's other SDKs; strings of this one form compare in time order; flagd's own Rust provider writes the `time` crate's `Display` form, which is not RFC 3339) |
//! | `Struct` holding an `open_feature::StructValue` | a JSON object, nested values converted likewise (`Array` → array) |
//! | `Struct` holding an `open_feature::Value`, a `serde_json::Value` or a `serde_json::Map<String, serde_json::Value>` | the same, as JSON |
//! | `Struct` holding anything else | `null` (a rule cannot look inside an arbitrary Rust type) |
//!
//! The same conversion is available as `EvaluationContext::from(&ctx)`
//! (`impl From<&open_feature::EvaluationContext> for EvaluationContext`),
//! for evaluating several flags of one request on one
//! [`FlagStore::snapshot`].
//!
//! **Object flags.** An object variant becomes a [`StructValue`]: objects
//! become `Struct`, arrays `Array`, strings and booleans themselves, a
//! number that fits in an `i64` `Int` and any other number `Float`. The
//! SDK's `Value` has no null, so a `null` member of an object, or a `null`
//! element of an array, is left out (so later array elements move down one
//! index).
//!
//! **Metadata.** The flag's merged metadata becomes the details'
//! `flag_metadata`: strings and booleans as they are, a number that fits
//! in an `i64` as `Int` and any other number as `Float` (flagd's format,
//! and so [`FlagSet::parse`](crate::FlagSet::parse), allows no other
//! metadata types; OpenFeature's flag metadata holds only these).
//!
//! **Numbers.** `get_int_*` of a float flag is `TYPE_MISMATCH`;
//! `get_float_*` of an integer flag returns the integer as a float.

// `Arc` comes from std, not from `crate::sync`: it is the type in this
// module's public API (the application shares its store with it), and this
// module has no atomics or locks of its own.
use std::sync::Arc;

use async_trait::async_trait;
use open_feature::provider::{FeatureProvider, ProviderMetadata, ResolutionDetails};
use open_feature::{
    EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode, EvaluationReason,
    EvaluationResult, FlagMetadata, FlagMetadataValue, StructValue,
};
use serde_json::{Map, Value as Json};
use time::UtcDateTime;

use crate::{ErrorCode, EvaluationContext, FlagStore, FlagValue, Reason, Resolution};

/// The provider's name in its [`ProviderMetadata`].
const NAME: &str = "acqrel-flags";

/// The `General` error code of a disabled flag (see the
/// [module docs](self#when-the-applications-default-applies)).
const DISABLED: &str = "DISABLED";

/// The `General` error code of a flag without a default variant.
const DEFAULT: &str = "DEFAULT";

/// The `General` error code of our `GENERAL` errors.
const GENERAL: &str = "GENERAL";

// ===== impl AcqrelProvider =====

/// An OpenFeature [`FeatureProvider`] that evaluates flags from a
/// [`FlagStore`]; its provider metadata's name is `"acqrel-flags"`.
///
/// A disabled flag, a flag without a default variant, and an error all
/// come back as an [`EvaluationError`] so that the application applies its
/// own default: see the [module docs](self#when-the-applications-default-applies)
/// for the exact results and [`fallback_reason`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use acqrel_flags::openfeature::AcqrelProvider;
/// use acqrel_flags::{FlagSet, FlagStore};
/// use open_feature::OpenFeature;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (set, _) = FlagSet::parse(r#"{"flags": {"banner": {
///     "state": "ENABLED", "variants": {"a": "Hello", "b": "Hi"}, "defaultVariant": "a"
/// }}}"#)
/// .unwrap();
/// let store = Arc::new(FlagStore::from_set(set));
/// let provider = AcqrelProvider::new(Arc::clone(&store));
///
/// // An API instance of its own; applications usually use the singleton.
/// let mut api = OpenFeature::default();
/// api.set_provider(provider).await;
/// assert_eq!(api.provider_metadata().await.name, "acqrel-flags");
///
/// let client = api.create_client();
/// assert_eq!(client.get_string_value("banner", None, None).await.unwrap(), "Hello");
///
/// // The provider sees every later generation of the store.
/// let (set, _) = FlagSet::parse(r#"{"flags": {"banner": {
///     "state": "ENABLED", "variants": {"a": "Hello", "b": "Hi"}, "defaultVariant": "b"
/// }}}"#)
/// .unwrap();
/// store.replace(set);
/// assert_eq!(client.get_string_value("banner", None, None).await.unwrap(), "Hi");
/// # }
/// ```
#[derive(Debug)]
pub struct AcqrelProvider {
    store: Arc<FlagStore>,
    metadata: ProviderMetadata,
}

impl AcqrelProvider {
    /// A provider that evaluates flags from `store`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use acqrel_flags::FlagStore;
    /// use acqrel_flags::openfeature::AcqrelProvider;
    /// use open_feature::provider::FeatureProvider;
    ///
    /// let provider = AcqrelProvider::new(Arc::new(FlagStore::new()));
    /// assert_eq!(provider.metadata().name, "acqrel-flags");
    /// ```
    pub fn new(store: Arc<FlagStore>) -> Self {
        AcqrelProvider {
            store,
            metadata: ProviderMetadata::new(NAME),
        }
    }

    /// The store this provider evaluates flags from.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use acqrel_flags::FlagStore;
    /// use acqrel_flags::openfeature::AcqrelProvider;
    ///
    /// let store = Arc::new(FlagStore::new());
    /// let provider = AcqrelProvider::new(Arc::clone(&store));
    /// assert!(Arc::ptr_eq(provider.store(), &store));
    /// ```
    pub fn store(&self) -> &Arc<FlagStore> {
        &self.store
    }

    /// Resolves `key` as a `T` and converts the outcome to the SDK's form.
    /// `T::default()` is only a placeholder: an outcome that would return
    /// it becomes an error (see [`details`]).
    fn resolve<T: FlagValue + Default>(
        &self,
        key: &str,
        context: &open_feature::EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let resolution = self
            .store
            .resolve(key, T::default(), &EvaluationContext::from(context));
        details(key, resolution)
    }
}

#[async_trait]
impl FeatureProvider for AcqrelProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &open_feature::EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(flag_key, evaluation_context)
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        evaluation_context: &open_feature::EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(flag_key, evaluation_context)
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        evaluation_context: &open_feature::EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(flag_key, evaluation_context)
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        evaluation_context: &open_feature::EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(flag_key, evaluation_context)
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        evaluation_context: &open_feature::EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        let details = self.resolve::<Map<String, Json>>(flag_key, evaluation_context)?;
        Ok(ResolutionDetails {
            value: json_struct(details.value),
            variant: details.variant,
            reason: details.reason,
            flag_metadata: details.flag_metadata,
        })
    }
}

/// The reason behind an error that [`AcqrelProvider`] returned so that the
/// application applies its own default: `Some(Disabled)` for a disabled
/// flag, `Some(Default)` for a flag without a default variant, and `None`
/// for a real error (and for errors of other providers, unless they use the
/// same codes).
///
/// See the [module docs](self#when-the-applications-default-applies).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use acqrel_flags::openfeature::{AcqrelProvider, fallback_reason};
/// use acqrel_flags::{FlagSet, FlagStore};
/// use open_feature::{EvaluationErrorCode, EvaluationReason, OpenFeature};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (set, _) = FlagSet::parse(r#"{"flags": {
///     "paused": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
///     "unset":  {"state": "ENABLED",  "variants": {"on": true, "off": false}, "defaultVariant": null}
/// }}"#)
/// .unwrap();
/// let mut api = OpenFeature::default();
/// api.set_provider(AcqrelProvider::new(Arc::new(FlagStore::from_set(set)))).await;
/// let client = api.create_client();
///
/// let disabled = client.get_bool_details("paused", None, None).await.unwrap_err();
/// assert_eq!(fallback_reason(&disabled), Some(EvaluationReason::Disabled));
/// assert_eq!(disabled.code.to_string(), "DISABLED");
///
/// let unset = client.get_bool_value("unset", None, None).await;
/// assert_eq!(fallback_reason(unset.as_ref().unwrap_err()), Some(EvaluationReason::Default));
/// // The application's default, whatever the reason.
/// assert!(unset.unwrap_or(true));
///
/// let missing = client.get_bool_value("missing", None, None).await.unwrap_err();
/// assert_eq!(missing.code, EvaluationErrorCode::FlagNotFound);
/// assert_eq!(fallback_reason(&missing), None);
/// # }
/// ```
pub fn fallback_reason(error: &EvaluationError) -> Option<EvaluationReason> {
    match &error.code {
        EvaluationErrorCode::General(code) if code == DISABLED => Some(EvaluationReason::Disabled),
        EvaluationErrorCode::General(code) if code == DEFAULT => Some(EvaluationReason::Default),
        _ => None,
    }
}

// ===== resolution → the SDK's result =====

/// The SDK's form of `resolution`, an evaluation of flag `key`: the
/// details when a variant was chosen, otherwise the error that makes the
/// application use its default.
fn details<T>(key: &str, resolution: Resolution<T>) -> EvaluationResult<ResolutionDetails<T>> {
    let reason = match resolution.reason {
        Reason::Static => EvaluationReason::Static,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Default => EvaluationReason::Default,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::Error => {
            let code = match resolution.error_code {
                Some(ErrorCode::FlagNotFound) => EvaluationErrorCode::FlagNotFound,
                Some(ErrorCode::TypeMismatch) => EvaluationErrorCode::TypeMismatch,
                Some(ErrorCode::ParseError) => EvaluationErrorCode::ParseError,
                Some(ErrorCode::General) | None => EvaluationErrorCode::General(GENERAL.into()),
            };
            return Err(EvaluationError {
                code,
                message: resolution.error_message,
            });
        }
    };
    let Some(variant) = resolution.variant else {
        // No variant: the value is our placeholder, and the caller's
        // default applies.
        let (code, why) = match reason {
            EvaluationReason::Disabled => (DISABLED, "is disabled"),
            _ => (DEFAULT, "has no default variant"),
        };
        return Err(EvaluationError {
            code: EvaluationErrorCode::General(code.into()),
            message: Some(format!(
                "flag {key:?} {why}: the application's default value applies"
            )),
        });
    };
    Ok(ResolutionDetails {
        value: resolution.value,
        variant: Some(variant),
        reason: Some(reason),
        flag_metadata: Some(flag_metadata(&resolution.metadata)),
    })
}

/// A flag's metadata in OpenFeature's form. `FlagSet::parse` admits only
/// strings, numbers and booleans; anything else (which only a hand-built
/// `Resolution` can hold) is left out, as OpenFeature's metadata cannot
/// hold it.
fn flag_metadata(metadata: &Map<String, Json>) -> FlagMetadata {
    let values = metadata
        .iter()
        .filter_map(|(name, value)| {
            let value = match value {
                Json::Bool(b) => FlagMetadataValue::Bool(*b),
                Json::String(s) => FlagMetadataValue::String(s.clone()),
                Json::Number(n) => match n.as_i64() {
                    Some(i) => FlagMetadataValue::Int(i),
                    None => FlagMetadataValue::Float(n.as_f64()?),
                },
                Json::Null | Json::Array(_) | Json::Object(_) => return None,
            };
            Some((name.clone(), value))
        })
        .collect();
    FlagMetadata { values }
}

/// An object variant as the SDK's struct (`null` members left out).
fn json_struct(object: Map<String, Json>) -> StructValue {
    let fields = object
        .into_iter()
        .filter_map(|(name, value)| Some((name, json_value(value)?)))
        .collect();
    StructValue { fields }
}

/// A JSON value as the SDK's value; `None` for `null`, which it cannot
/// hold.
fn json_value(value: Json) -> Option<open_feature::Value> {
    Some(match value {
        Json::Null => return None,
        Json::Bool(b) => open_feature::Value::Bool(b),
        Json::String(s) => open_feature::Value::String(s),
        Json::Number(n) => match n.as_i64() {
            Some(i) => open_feature::Value::Int(i),
            None => open_feature::Value::Float(n.as_f64()?),
        },
        Json::Array(items) => {
            open_feature::Value::Array(items.into_iter().filter_map(json_value).collect())
        }
        Json::Object(object) => open_feature::Value::Struct(json_struct(object)),
    })
}

// ===== the SDK's context → ours =====

impl From<&open_feature::EvaluationContext> for EvaluationContext {
    /// Our evaluation context for an OpenFeature one: its targeting key,
    /// and its custom fields as JSON attributes (see the
    /// [module docs](crate::openfeature#mappings)).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::EvaluationContext;
    /// use open_feature::{EvaluationContextFieldValue, StructValue};
    /// use serde_json::json;
    ///
    /// let theirs = open_feature::EvaluationContext::default()
    ///     .with_targeting_key("user-7")
    ///     .with_custom_field("beta", true)
    ///     .with_custom_field("score", f64::NAN)
    ///     .with_custom_field(
    ///         "user",
    ///         EvaluationContextFieldValue::new_struct(StructValue::default().with_field("plan", "pro")),
    ///     );
    /// let ours = EvaluationContext::from(&theirs);
    /// assert_eq!(ours.targeting_key(), Some("user-7"));
    /// assert_eq!(ours.attributes().get("beta"), Some(&json!(true)));
    /// assert_eq!(ours.attributes().get("score"), Some(&json!(null)));
    /// assert_eq!(ours.attributes().get("user"), Some(&json!({"plan": "pro"})));
    /// ```
    fn from(context: &open_feature::EvaluationContext) -> Self {
        let attributes = context
            .custom_fields
            .iter()
            .map(|(name, value)| (name.clone(), field_json(value)))
            .collect();
        // `from_json` takes a string `targetingKey` member as the key.
        let ours = EvaluationContext::from_json(attributes);
        match &context.targeting_key {
            Some(key) => ours.with_targeting_key(key.clone()),
            None => ours,
        }
    }
}

/// A custom field of an OpenFeature context as JSON.
fn field_json(value: &EvaluationContextFieldValue) -> Json {
    match value {
        EvaluationContextFieldValue::Bool(b) => Json::Bool(*b),
        EvaluationContextFieldValue::Int(i) => Json::from(*i),
        EvaluationContextFieldValue::Float(f) => Json::from(*f),
        EvaluationContextFieldValue::String(s) => Json::String(s.clone()),
        // `None`: an instant at the edge of `time`'s range whose UTC date
        // falls outside it.
        EvaluationContextFieldValue::DateTime(at) => at
            .checked_to_utc()
            .map_or(Json::Null, |at| Json::String(rfc3339_utc(at))),
        EvaluationContextFieldValue::Struct(any) => {
            if let Some(fields) = any.downcast_ref::<StructValue>() {
                struct_json(fields)
            } else if let Some(value) = any.downcast_ref::<open_feature::Value>() {
                value_json(value)
            } else if let Some(json) = any.downcast_ref::<Json>() {
                json.clone()
            } else if let Some(object) = any.downcast_ref::<Map<String, Json>>() {
                Json::Object(object.clone())
            } else {
                Json::Null
            }
        }
    }
}

/// An OpenFeature struct as a JSON object.
fn struct_json(fields: &StructValue) -> Json {
    Json::Object(
        fields
            .fields
            .iter()
            .map(|(name, value)| (name.clone(), value_json(value)))
            .collect(),
    )
}

/// An OpenFeature value as JSON (a non-finite float becomes `null`).
fn value_json(value: &open_feature::Value) -> Json {
    match value {
        open_feature::Value::Bool(b) => Json::Bool(*b),
        open_feature::Value::Int(i) => Json::from(*i),
        open_feature::Value::Float(f) => Json::from(*f),
        open_feature::Value::String(s) => Json::String(s.clone()),
        open_feature::Value::Array(items) => Json::Array(items.iter().map(value_json).collect()),
        open_feature::Value::Struct(fields) => struct_json(fields),
    }
}

/// `at` as an RFC 3339 string: `2024-05-06T07:08:09Z`, with a fraction of
/// 3, 6 or 9 digits when there is one (the fewest that are exact). A year
/// before 0 is written with a sign and six digits (ISO 8601's expanded
/// form), which RFC 3339 itself cannot express.
fn rfc3339_utc(at: UtcDateTime) -> String {
    let year = at.year();
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{year:+07}")
    };
    let (month, day) = (u8::from(at.month()), at.day());
    let (hour, minute, second, nanos) = at.as_hms_nano();
    let fraction = if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    format!("{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instant `secs` seconds and `nanos` nanoseconds after the epoch.
    fn utc(secs: i64, nanos: u32) -> UtcDateTime {
        let at = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        UtcDateTime::from_unix_timestamp_nanos(at).expect("in range")
    }

    /// `rfc3339_utc` against instants whose dates are known.
    #[test]
    fn rfc3339_dates() {
        let cases: [(i64, u32, &str); 12] = [
            (0, 0, "1970-01-01T00:00:00Z"),
            (-1, 0, "1969-12-31T23:59:59Z"),
            (951_782_400, 0, "2000-02-29T00:00:00Z"),
            (951_868_799, 0, "2000-02-29T23:59:59Z"),
            (951_868_800, 0, "2000-03-01T00:00:00Z"),
            (1_715_000_000, 0, "2024-05-06T12:53:20Z"),
            (1_715_000_000, 5_000_000, "2024-05-06T12:53:20.005Z"),
            (1_715_000_000, 120_000, "2024-05-06T12:53:20.000120Z"),
            (1_715_000_000, 7, "2024-05-06T12:53:20.000000007Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00Z"),
            (253_402_300_799, 999_000_000, "9999-12-31T23:59:59.999Z"),
            (-62_167_219_200, 0, "0000-01-01T00:00:00Z"),
        ];
        for (secs, nanos, expected) in cases {
            assert_eq!(
                rfc3339_utc(utc(secs, nanos)),
                expected,
                "{secs} s {nanos} ns"
            );
        }
        assert_eq!(
            rfc3339_utc(utc(-62_167_219_201, 0)),
            "-000001-12-31T23:59:59Z"
        );
        // Past year 9999 `time` has no instant (without its `large-dates`
        // feature): such a date cannot reach the conversion.
        assert!(UtcDateTime::from_unix_timestamp(253_402_300_800).is_err());
    }

    fn resolution<T>(value: T, variant: Option<&str>, reason: Reason) -> Resolution<T> {
        Resolution {
            value,
            variant: variant.map(str::to_owned),
            reason,
            error_code: None,
            error_message: None,
            metadata: Arc::new(Map::new()),
        }
    }

    /// A `GENERAL` error (which flag definitions cannot provoke through
    /// the store) keeps its code and message.
    #[test]
    fn general_error() {
        let mut general = resolution(false, None, Reason::Error);
        general.error_code = Some(ErrorCode::General);
        general.error_message = Some("boom".to_owned());
        let error = details("f", general).unwrap_err();
        assert_eq!(
            error,
            EvaluationError {
                code: EvaluationErrorCode::General("GENERAL".to_owned()),
                message: Some("boom".to_owned()),
            }
        );
        assert_eq!(fallback_reason(&error), None);
    }

    /// A `DEFAULT` or `STATIC` outcome without a variant (as a static flag
    /// with a null default variant may report) is the caller's default.
    #[test]
    fn no_variant_is_a_fallback() {
        for reason in [Reason::Default, Reason::Static, Reason::TargetingMatch] {
            let error = details("f", resolution(0_i64, None, reason)).unwrap_err();
            assert_eq!(error.code, EvaluationErrorCode::General("DEFAULT".into()));
            assert_eq!(fallback_reason(&error), Some(EvaluationReason::Default));
        }
        let error = details("f", resolution(0_i64, None, Reason::Disabled)).unwrap_err();
        assert_eq!(fallback_reason(&error), Some(EvaluationReason::Disabled));
    }
}
