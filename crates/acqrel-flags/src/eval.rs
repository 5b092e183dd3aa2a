//! Evaluation: a flag, the caller's type and default, and an evaluation
//! context in; a value with its variant, reason, error code and metadata
//! out.

pub(crate) mod rule;

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value as Json};

use self::rule::{Input, Outcome};
use crate::model::{Flag, FlagState, Targeting, Value, ValueKind};

// ===== EvaluationContext =====

/// Who is asking: a targeting key (the user, session or device a rollout
/// buckets) and arbitrary JSON attributes that targeting rules read with
/// `{"var": "name"}`.
///
/// A rule also sees `targetingKey` (the targeting key) and `$flagd`
/// (`{"flagKey": …, "timestamp": …}`, the flag's key and the evaluation's
/// time in Unix seconds), as flagd injects them; both replace attributes of
/// the same name.
///
/// # Examples
///
/// ```
/// use acqrel_flags::EvaluationContext;
/// use serde_json::json;
///
/// let ctx = EvaluationContext::new()
///     .with_targeting_key("user-42")
///     .with_attribute("email", "ada@example.com")
///     .with_attribute("plan", json!({"tier": "pro"}));
/// assert_eq!(ctx.targeting_key(), Some("user-42"));
/// assert_eq!(ctx.attributes()["plan"]["tier"], "pro");
///
/// // The same, from a JSON object (an HTTP request's body, a CLI line):
/// let json = json!({"targetingKey": "user-42", "email": "ada@example.com"});
/// let ctx = EvaluationContext::from_json(json.as_object().unwrap().clone());
/// assert_eq!(ctx.targeting_key(), Some("user-42"));
/// assert!(ctx.attributes().get("targetingKey").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationContext {
    targeting_key: Option<String>,
    attributes: Map<String, Json>,
    timestamp: Option<u64>,
}

impl EvaluationContext {
    /// An empty context: no targeting key, no attributes.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = acqrel_flags::EvaluationContext::new();
    /// assert_eq!(ctx.targeting_key(), None);
    /// assert!(ctx.attributes().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A context from a JSON object: a string member `targetingKey` becomes
    /// the targeting key, every other member an attribute. (A `targetingKey`
    /// that is not a string is dropped: flagd's targeting key is a string.)
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::EvaluationContext;
    /// use serde_json::json;
    ///
    /// let json = json!({"targetingKey": "u1", "country": "NL"});
    /// let ctx = EvaluationContext::from_json(json.as_object().unwrap().clone());
    /// assert_eq!(ctx.targeting_key(), Some("u1"));
    /// assert_eq!(ctx.attributes()["country"], "NL");
    /// ```
    pub fn from_json(mut map: Map<String, Json>) -> Self {
        let targeting_key = match map.remove("targetingKey") {
            Some(Json::String(key)) => Some(key),
            _ => None,
        };
        Self {
            targeting_key,
            attributes: map,
            timestamp: None,
        }
    }

    /// Sets the targeting key.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = acqrel_flags::EvaluationContext::new().with_targeting_key("u1");
    /// assert_eq!(ctx.targeting_key(), Some("u1"));
    /// ```
    pub fn with_targeting_key(mut self, key: impl Into<String>) -> Self {
        self.targeting_key = Some(key.into());
        self
    }

    /// Adds (or replaces) an attribute.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = acqrel_flags::EvaluationContext::new().with_attribute("age", 42);
    /// assert_eq!(ctx.attributes()["age"], 42);
    /// ```
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Json>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Fixes the time rules see as `$flagd.timestamp` (Unix seconds);
    /// without it, the system clock is read when a rule is evaluated. For
    /// tests and for replaying a decision.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{EvaluationContext, FlagSet, FlagStore};
    ///
    /// let json = r#"{"flags": {"after-launch": {
    ///     "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    ///     "targeting": {"if": [{">=": [{"var": "$flagd.timestamp"}, 1800000000]}, "on", "off"]}
    /// }}}"#;
    /// let store = FlagStore::from_set(FlagSet::parse(json).unwrap().0);
    /// let before = EvaluationContext::new().at_unix_time(1_799_999_999);
    /// let after = EvaluationContext::new().at_unix_time(1_800_000_000);
    /// assert!(!store.resolve("after-launch", false, &before).value);
    /// assert!(store.resolve("after-launch", false, &after).value);
    /// ```
    pub fn at_unix_time(mut self, secs: u64) -> Self {
        self.timestamp = Some(secs);
        self
    }

    /// The targeting key, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(acqrel_flags::EvaluationContext::new().targeting_key(), None);
    /// ```
    pub fn targeting_key(&self) -> Option<&str> {
        self.targeting_key.as_deref()
    }

    /// The attributes.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = acqrel_flags::EvaluationContext::new().with_attribute("beta", true);
    /// assert_eq!(ctx.attributes().len(), 1);
    /// ```
    pub fn attributes(&self) -> &Map<String, Json> {
        &self.attributes
    }

    fn timestamp(&self) -> u64 {
        self.timestamp.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
    }
}

// ===== Reason, ErrorCode =====

/// Why an evaluation returned what it did (OpenFeature's reasons, the
/// subset flagd's evaluator produces).
///
/// # Examples
///
/// ```
/// use acqrel_flags::Reason;
/// assert_eq!(Reason::TargetingMatch.as_str(), "TARGETING_MATCH");
/// assert_eq!(Reason::Disabled.to_string(), "DISABLED");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The flag has no targeting: its default variant.
    Static,
    /// Targeting picked a variant.
    TargetingMatch,
    /// Targeting returned `null`, or the flag has no default variant: the
    /// flag's default variant, or the caller's default if it has none.
    Default,
    /// The flag is disabled: the caller's default.
    Disabled,
    /// Something went wrong (see [`ErrorCode`]): the caller's default.
    Error,
}

impl Reason {
    /// The reason as OpenFeature and flagd spell it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(acqrel_flags::Reason::Static.as_str(), "STATIC");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, when the reason is [`Reason::Error`].
///
/// # Examples
///
/// ```
/// use acqrel_flags::ErrorCode;
/// assert_eq!(ErrorCode::FlagNotFound.as_str(), "FLAG_NOT_FOUND");
/// assert_eq!(ErrorCode::ParseError.to_string(), "PARSE_ERROR");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No flag has this key.
    FlagNotFound,
    /// The flag's type is not the requested one.
    TypeMismatch,
    /// The flag's targeting could not be compiled or evaluated, or
    /// returned something that is not one of its variants.
    ParseError,
    /// Anything else.
    General,
}

impl ErrorCode {
    /// The code as OpenFeature and flagd spell it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(acqrel_flags::ErrorCode::TypeMismatch.as_str(), "TYPE_MISMATCH");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::General => "GENERAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ===== Resolution =====

/// The result of evaluating a flag.
///
/// `value` is always usable: the flag's variant, or the caller's default
/// when the flag is disabled, has no default variant to fall back on, or
/// the evaluation failed. `variant` says which (`None`: the caller's
/// default).
///
/// # Examples
///
/// ```
/// use acqrel_flags::{EvaluationContext, FlagSet, FlagStore, Reason};
///
/// let json = r#"{"metadata": {"team": "web"}, "flags": {"dark-mode": {
///     "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"
/// }}}"#;
/// let store = FlagStore::from_set(FlagSet::parse(json).unwrap().0);
/// let r = store.resolve("dark-mode", true, &EvaluationContext::new());
/// assert_eq!(r.value, false);
/// assert_eq!(r.variant.as_deref(), Some("off"));
/// assert_eq!(r.reason, Reason::Static);
/// assert_eq!(r.error_code, None);
/// assert_eq!(r.metadata["team"], "web");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution<T> {
    /// The flag's value, or the caller's default.
    pub value: T,
    /// The variant `value` came from; `None` when it is the caller's default.
    pub variant: Option<String>,
    /// Why.
    pub reason: Reason,
    /// What went wrong: `Some` exactly when `reason` is [`Reason::Error`].
    pub error_code: Option<ErrorCode>,
    /// The error in words, when there is one.
    pub error_message: Option<String>,
    /// The flag's metadata, merged over the flag set's (the flag set's alone
    /// when the flag does not exist, as in flagd).
    pub metadata: Arc<Map<String, Json>>,
}

// ===== FlagValue =====

mod sealed {
    pub trait Sealed {}
}

/// A type a flag can be resolved as: `bool`, `String`, `i64`, `f64` or a
/// JSON object (`serde_json::Map<String, Value>`), one per [`ValueKind`].
///
/// Integers and floats are distinct: an `i64` asked of a float flag is a
/// `TYPE_MISMATCH` (flagd's Go evaluator would truncate; here a float is
/// never silently cut), while an `f64` asked of an integer flag converts
/// (exactly up to 2⁵³, as flagd's own `f64` numbers).
///
/// Sealed: [`Value`] is the dynamic form (see
/// [`Flags::resolve_value`](crate::Flags::resolve_value)).
///
/// # Examples
///
/// ```
/// use acqrel_flags::{ErrorCode, EvaluationContext, FlagSet, FlagStore};
///
/// let json = r#"{"flags": {"ratio": {"state": "ENABLED", "variants": {"a": 0.25}, "defaultVariant": "a"},
///                         "retries": {"state": "ENABLED", "variants": {"a": 3}, "defaultVariant": "a"}}}"#;
/// let store = FlagStore::from_set(FlagSet::parse(json).unwrap().0);
/// let ctx = EvaluationContext::new();
/// assert_eq!(store.resolve("ratio", 0.0, &ctx).value, 0.25);
/// assert_eq!(store.resolve("ratio", 0_i64, &ctx).error_code, Some(ErrorCode::TypeMismatch));
/// assert_eq!(store.resolve("retries", 0.0, &ctx).value, 3.0);
/// ```
pub trait FlagValue: Sized + sealed::Sealed {
    /// The kind of flag this type reads.
    const KIND: ValueKind;

    /// The variant's value as `Self`, if its type allows.
    #[doc(hidden)]
    fn from_value(value: &Value) -> Option<Self>;
}

impl sealed::Sealed for bool {}
impl FlagValue for bool {
    const KIND: ValueKind = ValueKind::Bool;
    fn from_value(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl sealed::Sealed for String {}
impl FlagValue for String {
    const KIND: ValueKind = ValueKind::String;
    fn from_value(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }
}

impl sealed::Sealed for i64 {}
impl FlagValue for i64 {
    const KIND: ValueKind = ValueKind::Int;
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl sealed::Sealed for f64 {}
impl FlagValue for f64 {
    const KIND: ValueKind = ValueKind::Float;
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl sealed::Sealed for Map<String, Json> {}
impl FlagValue for Map<String, Json> {
    const KIND: ValueKind = ValueKind::Object;
    fn from_value(value: &Value) -> Option<Self> {
        value.as_object().cloned()
    }
}

/// Whether a flag of kind `flag` can be read as `requested`.
fn readable_as(flag: ValueKind, requested: ValueKind) -> bool {
    flag == requested || (flag == ValueKind::Int && requested == ValueKind::Float)
}

// ===== resolution =====

/// Evaluates `flag` (found under `key`, or not) as `requested`, converting
/// the chosen variant's value with `convert`; `default` is the caller's.
/// `set_metadata` is the flag set's, returned when there is no flag.
///
/// The order of the checks, and so which reason wins when several apply:
/// not found; disabled; wrong type; invalid targeting; then the rule.
pub(crate) fn resolve<T>(
    flag: Option<&Flag>,
    key: &str,
    set_metadata: &Arc<Map<String, Json>>,
    requested: ValueKind,
    default: T,
    ctx: &EvaluationContext,
    convert: impl FnOnce(&Value) -> Option<T>,
) -> Resolution<T> {
    let Some(flag) = flag else {
        return fallback(
            default,
            Reason::Error,
            Some((
                ErrorCode::FlagNotFound,
                format!("no flag has the key {key:?}"),
            )),
            Arc::clone(set_metadata),
        );
    };
    let metadata = flag.metadata_arc();
    if flag.state() == FlagState::Disabled {
        return fallback(default, Reason::Disabled, None, metadata);
    }
    if !readable_as(flag.kind(), requested) {
        let message = format!("the flag is of type {}, asked as {requested}", flag.kind());
        let error = Some((ErrorCode::TypeMismatch, message));
        return fallback(default, Reason::Error, error, metadata);
    }
    let (name, reason) = match choose(flag, ctx) {
        Ok(choice) => choice,
        Err(error) => return fallback(default, Reason::Error, Some(error), metadata),
    };
    let Some(name) = name else {
        // No default variant: flagd's "code default".
        return fallback(default, Reason::Default, None, metadata);
    };
    let converted = flag.variant(name).and_then(convert);
    match converted {
        Some(value) => Resolution {
            value,
            variant: Some(name.to_owned()),
            reason,
            error_code: None,
            error_message: None,
            metadata,
        },
        // Unreachable after the kind check (every variant has the flag's
        // kind); kept as an error rather than a panic.
        None => fallback(
            default,
            Reason::Error,
            Some((
                ErrorCode::TypeMismatch,
                format!("variant {name:?} is not a {requested}"),
            )),
            metadata,
        ),
    }
}

/// The variant an enabled flag serves `ctx` (`None`: no default variant to
/// fall back on), and why; or the error.
fn choose<'f>(
    flag: &'f Flag,
    ctx: &EvaluationContext,
) -> Result<(Option<&'f str>, Reason), (ErrorCode, String)> {
    let rule = match (flag.targeting(), flag.rule()) {
        (Targeting::Static, _) => return Ok((flag.default_variant(), Reason::Static)),
        (Targeting::Invalid { reason }, _) => return Err((ErrorCode::ParseError, reason.clone())),
        (Targeting::Rule(_), Some(rule)) => rule,
        // `FlagSet::parse` compiles every rule or marks it invalid.
        (Targeting::Rule(_), None) => {
            return Err((ErrorCode::General, "the rule was not compiled".to_owned()));
        }
    };
    let input = Input {
        flag_key: flag.key(),
        targeting_key: ctx.targeting_key(),
        attributes: ctx.attributes(),
        timestamp: ctx.timestamp(),
    };
    match rule.evaluate(&input) {
        Ok(Outcome::Null) => Ok((flag.default_variant(), Reason::Default)),
        Ok(Outcome::Name(name)) => match flag.variants().get_key_value(name.as_str()) {
            Some((name, _)) => Ok((Some(name.as_str()), Reason::TargetingMatch)),
            None => Err((
                ErrorCode::ParseError,
                format!("targeting returned {name:?}, which is not a variant"),
            )),
        },
        Ok(Outcome::Other(what)) => Err((
            ErrorCode::ParseError,
            format!("targeting returned {what}, not a variant name"),
        )),
        Err(message) => Err((ErrorCode::ParseError, message)),
    }
}

fn fallback<T>(
    default: T,
    reason: Reason,
    error: Option<(ErrorCode, String)>,
    metadata: Arc<Map<String, Json>>,
) -> Resolution<T> {
    let (error_code, error_message) = match error {
        Some((code, message)) => (Some(code), Some(message)),
        None => (None, None),
    };
    Resolution {
        value: default,
        variant: None,
        reason,
        error_code,
        error_message,
        metadata,
    }
}
