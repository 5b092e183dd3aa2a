//! flagd's flag-definition format, parsed into a typed model.
//!
//! A flag file is a JSON object:
//!
//! ```json
//! {
//!   "$schema": "https://flagd.dev/schema/v0/flags.json",
//!   "metadata": {"team": "checkout"},
//!   "$evaluators": {"is_staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
//!   "flags": {
//!     "new-checkout": {
//!       "state": "ENABLED",
//!       "variants": {"on": true, "off": false},
//!       "defaultVariant": "off",
//!       "targeting": {"if": [{"$ref": "is_staff"}, "on", null]},
//!       "metadata": {"owner": "payments"}
//!     }
//!   }
//! }
//! ```
//!
//! [`FlagSet::parse`] checks the whole file (its docs list the checks):
//! a value of the wrong shape rejects it with a [`LoadError`] naming the
//! value's JSON path. A flag whose targeting cannot be resolved loads with
//! [`Targeting::Invalid`] and a [`LoadWarning`]. `$ref` resolution lives in
//! `refs`, JSON paths in `path`, values in `value`, errors in `error`.

mod error;
mod path;
mod refs;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

pub use self::error::{LoadError, LoadWarning};
use self::path::Path;
use self::refs::Resolver;
pub use self::value::{Value, ValueKind};
use crate::eval::rule::Rule;

// ===== FlagState =====

/// Whether a flag is served. A disabled flag is still fully checked when
/// loaded; evaluating it gives the caller's default with reason
/// `DISABLED`.
///
/// # Examples
///
/// ```
/// use acqrel_flags::{FlagSet, FlagState};
///
/// let json = r#"{"flags": {"f": {"state": "DISABLED", "variants": {"a": 1}}}}"#;
/// let (flags, _) = FlagSet::parse(json).unwrap();
/// assert_eq!(flags.get("f").unwrap().state(), FlagState::Disabled);
/// assert_eq!(FlagState::Disabled.to_string(), "DISABLED");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagState {
    /// `"state": "ENABLED"`.
    Enabled,
    /// `"state": "DISABLED"`.
    Disabled,
}

impl FlagState {
    /// The state as the file spells it: `"ENABLED"` or `"DISABLED"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagState;
    ///
    /// assert_eq!(FlagState::Enabled.as_str(), "ENABLED");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            FlagState::Enabled => "ENABLED",
            FlagState::Disabled => "DISABLED",
        }
    }
}

impl fmt::Display for FlagState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ===== Targeting =====

/// A flag's targeting rule, with shared evaluators pulled in.
///
/// - [`Static`](Targeting::Static): no rule. `targeting` absent, `null` or
///   `{}` (also after `$ref` expansion), as flagd treats them: the flag
///   serves its default variant with reason `STATIC`.
/// - [`Rule`](Targeting::Rule): a JsonLogic rule in which every
///   `{"$ref": "name"}` (an object whose only member is `"$ref"`, with a
///   string value) has been replaced by the resolved rule of
///   `$evaluators.name`. Evaluators may reference evaluators. For the form
///   flagd documents, a whole object `{"$ref": "name"}` and an object
///   evaluator, this is exactly the rule flagd's textual substitution
///   produces (it splices the evaluator's members into the object holding
///   the `$ref`); being structural, it also accepts any whitespace, such as
///   `"$ref" : "name"` which flagd's pattern misses. Anything else that is
///   not `null` or `{}` is kept as a rule, including literals: JsonLogic
///   evaluates a literal to itself.
/// - [`Invalid`](Targeting::Invalid): a `$ref` names no evaluator, is part
///   of a cycle, is not a string, shares its object with other members, or
///   expands the rule past 128 levels of nesting of arrays and objects (the
///   JSON parser's own limit) or past the file's copy budget (2²⁰ JSON
///   values plus 4 per byte of the file, over all the copies `$ref` makes:
///   evaluators that double one another stop there). The flag loads, a
///   [`LoadWarning`] is reported, and evaluation reports `PARSE_ERROR`.
///   Evaluators that no flag references are not examined, and `$ref` is
///   resolved in targeting only, not in variant values or metadata.
///
/// # Examples
///
/// ```
/// use acqrel_flags::{FlagSet, Targeting};
/// use serde_json::json;
///
/// let json = r#"{
///   "$evaluators": {"is_staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
///   "flags": {
///     "plain":  {"state": "ENABLED", "variants": {"on": true}, "targeting": {}},
///     "staff":  {"state": "ENABLED", "variants": {"on": true, "off": false},
///                "targeting": {"if": [{"$ref" : "is_staff"}, "on", "off"]}},
///     "broken": {"state": "ENABLED", "variants": {"on": true},
///                "targeting": {"$ref": "nobody"}}
///   }
/// }"#;
/// let (flags, warnings) = FlagSet::parse(json).unwrap();
/// assert_eq!(flags.get("plain").unwrap().targeting(), &Targeting::Static);
/// assert_eq!(
///     flags.get("staff").unwrap().targeting(),
///     &Targeting::Rule(json!({"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]})),
/// );
/// assert!(matches!(flags.get("broken").unwrap().targeting(), Targeting::Invalid { .. }));
/// assert_eq!(warnings.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targeting {
    /// No rule: serve the default variant.
    Static,
    /// A JsonLogic rule, every `$ref` resolved.
    Rule(Json),
    /// The rule cannot be resolved; evaluation reports `PARSE_ERROR`.
    Invalid {
        /// Why, in words (the same text as the load's [`LoadWarning`]).
        reason: String,
    },
}

// ===== Flag =====

/// One flag of a [`FlagSet`]: its state, typed variants, default variant,
/// targeting and merged metadata.
///
/// Built only by [`FlagSet::parse`], which guarantees that there is at
/// least one variant, that all variants have one [`ValueKind`] (the flag's
/// [`kind`](Flag::kind)), and that the default variant, if any, is one of
/// them.
///
/// # Examples
///
/// ```
/// use acqrel_flags::{FlagSet, FlagState, Value};
///
/// let json = r##"{"flags": {"banner": {
///     "state": "ENABLED",
///     "variants": {"red": "#f00", "blue": "#00f"},
///     "defaultVariant": "blue"
/// }}}"##;
/// let (flags, _) = FlagSet::parse(json).unwrap();
/// let banner = flags.get("banner").unwrap();
/// assert_eq!(banner.key(), "banner");
/// assert_eq!(banner.state(), FlagState::Enabled);
/// assert_eq!(banner.default_variant(), Some("blue"));
/// assert_eq!(banner.default_value(), Some(&Value::String("#00f".into())));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    key: String,
    state: FlagState,
    kind: ValueKind,
    /// Non-empty; every value of kind `kind`.
    variants: BTreeMap<String, Value>,
    /// `None`, or a key of `variants`.
    default_variant: Option<String>,
    targeting: Targeting,
    /// `targeting` compiled: `Some` exactly when it is `Targeting::Rule`.
    rule: Option<Rule>,
    /// The flag set's metadata with the flag's own over it (shared with
    /// every evaluation's result).
    metadata: Arc<Map<String, Json>>,
}

impl Flag {
    /// The flag's key.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}}}}"#).unwrap();
    /// assert_eq!(flags.get("f").unwrap().key(), "f");
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the flag is enabled.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, FlagState};
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}}}}"#).unwrap();
    /// assert_eq!(flags.get("f").unwrap().state(), FlagState::Enabled);
    /// ```
    pub fn state(&self) -> FlagState {
        self.state
    }

    /// The type of every variant value.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, ValueKind};
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": {"x": 1}}}}}"#).unwrap();
    /// assert_eq!(flags.get("f").unwrap().kind(), ValueKind::Object);
    /// ```
    pub fn kind(&self) -> ValueKind {
        self.kind
    }

    /// The variants, by name (never empty).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, Value};
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true, "off": false}}}}"#).unwrap();
    /// let variants = flags.get("f").unwrap().variants();
    /// let names: Vec<&str> = variants.keys().map(String::as_str).collect();
    /// assert_eq!(names, ["off", "on"]);
    /// assert_eq!(variants["on"], Value::Bool(true));
    /// ```
    pub fn variants(&self) -> &BTreeMap<String, Value> {
        &self.variants
    }

    /// The value of the variant `name`, if the flag has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, Value};
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}"#).unwrap();
    /// let flag = flags.get("f").unwrap();
    /// assert_eq!(flag.variant("on"), Some(&Value::Bool(true)));
    /// assert_eq!(flag.variant("off"), None);
    /// ```
    pub fn variant(&self, name: &str) -> Option<&Value> {
        self.variants.get(name)
    }

    /// The default variant's name: `None` when `defaultVariant` is absent or
    /// `null`, meaning the caller's default is served.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let json = r#"{"flags": {
    ///     "a": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"},
    ///     "b": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": null}
    /// }}"#;
    /// let (flags, _) = FlagSet::parse(json).unwrap();
    /// assert_eq!(flags.get("a").unwrap().default_variant(), Some("on"));
    /// assert_eq!(flags.get("b").unwrap().default_variant(), None);
    /// ```
    pub fn default_variant(&self) -> Option<&str> {
        self.default_variant.as_deref()
    }

    /// The default variant's value, if there is a default variant.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, Value};
    ///
    /// let json = r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#;
    /// let (flags, _) = FlagSet::parse(json).unwrap();
    /// assert_eq!(flags.get("f").unwrap().default_value(), Some(&Value::Bool(true)));
    /// ```
    pub fn default_value(&self) -> Option<&Value> {
        self.default_variant
            .as_deref()
            .and_then(|name| self.variants.get(name))
    }

    /// The targeting rule.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, Targeting};
    ///
    /// let json = r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "targeting": null}}}"#;
    /// let (flags, _) = FlagSet::parse(json).unwrap();
    /// assert_eq!(flags.get("f").unwrap().targeting(), &Targeting::Static);
    /// ```
    pub fn targeting(&self) -> &Targeting {
        &self.targeting
    }

    /// The flag's metadata: the flag set's `metadata`, with the flag's own
    /// `metadata` entries replacing those with the same key.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    /// use serde_json::json;
    ///
    /// let json = r#"{"metadata": {"team": "web", "version": "3"},
    ///     "flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "metadata": {"team": "payments"}}}}"#;
    /// let (flags, _) = FlagSet::parse(json).unwrap();
    /// let metadata = flags.get("f").unwrap().metadata();
    /// assert_eq!(metadata["team"], json!("payments"));
    /// assert_eq!(metadata["version"], json!("3"));
    /// ```
    pub fn metadata(&self) -> &Map<String, Json> {
        &self.metadata
    }

    pub(crate) fn metadata_arc(&self) -> Arc<Map<String, Json>> {
        Arc::clone(&self.metadata)
    }

    pub(crate) fn rule(&self) -> Option<&Rule> {
        self.rule.as_ref()
    }
}

// ===== FlagSet =====

/// The flags of one flag file, by key, with the file's metadata.
///
/// # Examples
///
/// ```
/// use acqrel_flags::{FlagSet, Value};
///
/// let json = r#"{"flags": {
///     "dark-mode": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
///     "max-items": {"state": "ENABLED", "variants": {"small": 10, "large": 100}, "defaultVariant": "small"}
/// }}"#;
/// let (flags, warnings) = FlagSet::parse(json)?;
/// assert!(warnings.is_empty());
/// assert_eq!(flags.len(), 2);
/// assert_eq!(flags.get("max-items").and_then(|f| f.default_value()), Some(&Value::Int(10)));
/// # Ok::<(), acqrel_flags::LoadError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagSet {
    flags: BTreeMap<String, Flag>,
    metadata: Map<String, Json>,
}

impl FlagSet {
    /// Parses a flagd flag file.
    ///
    /// Returns the flags and a warning per flag whose targeting cannot be
    /// resolved (such a flag loads with [`Targeting::Invalid`]). Anything
    /// else wrong rejects the whole file, so a file loads completely or not
    /// at all. What is checked, and where this is stricter than flagd's Go
    /// loader (which validates against flagd's JSON schema but only logs
    /// violations):
    ///
    /// - the top level is an object with a `flags` object; `$evaluators`, if
    ///   present, is an object; `metadata`, if present, is an object whose
    ///   values are strings, numbers or booleans (flagd's schema; `null` is
    ///   rejected too, which Go's flagd would skip);
    /// - each flag is an object with a non-empty key, and `state` is
    ///   `"ENABLED"` or `"DISABLED"` (required, as in flagd's schema);
    /// - `variants` is a non-empty object with non-empty names; each value is
    ///   a boolean, string, number or object (not `null`, not an array), and
    ///   all have one type, integers and floats counting as one (see
    ///   [`Value`] for how numbers are classified);
    /// - `defaultVariant` is absent, `null` (both mean "serve the caller's
    ///   default", flagd's code default), or the name of a variant;
    /// - a flag's `metadata` is checked as the top level's, and merged over
    ///   it: on a shared key the flag's entry wins.
    ///
    /// Members the format does not define are ignored, at the top level
    /// (`$schema` is common) and in flags (so files using newer flagd
    /// members, such as the proposed `flagType`, still load). flagd's array
    /// form of `flags` (the daemon's import format) is not accepted. If a
    /// JSON object repeats a key, the last one counts, as in serde_json.
    /// `targeting` is resolved as described on [`Targeting`]; it is compiled
    /// by the evaluator, not here.
    ///
    /// Never panics, whatever the text. Nesting deeper than 128 arrays and
    /// objects is rejected by the JSON parser (serde_json's limit), and
    /// `$ref` expansion is bounded (see [`Targeting`]).
    ///
    /// # Errors
    ///
    /// [`LoadError::NotJson`] if the text is not JSON;
    /// [`LoadError::Shape`] with the value's path if the file does not
    /// have the shape of a flag file.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}"#)?;
    /// assert_eq!(flags.len(), 1);
    ///
    /// let err = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {}}}}"#).unwrap_err();
    /// assert_eq!(err.to_string(), "$.flags.f.variants: expected at least one variant, found an empty object");
    /// # Ok::<(), acqrel_flags::LoadError>(())
    /// ```
    pub fn parse(json: &str) -> Result<(FlagSet, Vec<LoadWarning>), LoadError> {
        let document: Json = serde_json::from_str(json).map_err(|e| LoadError::not_json(&e))?;
        let root = Path::ROOT;
        let mut top = match document {
            Json::Object(top) => top,
            other => {
                return Err(shape(
                    &root,
                    "an object with a \"flags\" member",
                    describe(&other),
                ));
            }
        };
        let flags = match top.remove("flags") {
            Some(Json::Object(flags)) => flags,
            other => {
                return Err(shape(
                    &root.key("flags"),
                    "an object of flags",
                    describe_member(other.as_ref()),
                ));
            }
        };
        let evaluators = match top.remove("$evaluators") {
            None => Map::new(),
            Some(Json::Object(evaluators)) => evaluators,
            Some(other) => {
                return Err(shape(
                    &root.key("$evaluators"),
                    "an object of named rules",
                    describe(&other),
                ));
            }
        };
        let metadata = match top.remove("metadata") {
            None => Map::new(),
            Some(value) => metadata(value, &root.key("metadata"))?,
        };

        let mut resolver = Resolver::new(&evaluators, refs::expansion_budget(json.len()));
        let flags_path = root.key("flags");
        let mut out = BTreeMap::new();
        let mut warnings = Vec::new();
        for (key, value) in flags {
            let flag = parse_flag(
                key,
                value,
                &flags_path,
                &metadata,
                &mut resolver,
                &mut warnings,
            )?;
            out.insert(flag.key.clone(), flag);
        }
        Ok((
            FlagSet {
                flags: out,
                metadata,
            },
            warnings,
        ))
    }

    /// A flag set of `flags` (by key: a later flag with a key replaces an
    /// earlier one) and the flag set's own `metadata`. For programs that
    /// combine flag sets, such as several flag files served as one. The
    /// flags keep their own metadata as they are (each flag's
    /// [`metadata`](Flag::metadata) already includes the metadata of the set
    /// it was loaded with).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let (a, _) = FlagSet::parse(r#"{"metadata": {"team": "web"}, "flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}"#)?;
    /// let (b, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "DISABLED", "variants": {"on": true}}, "g": {"state": "ENABLED", "variants": {"n": 1}}}}"#)?;
    /// let metadata = a.metadata().clone();
    /// let merged = FlagSet::from_flags(a.into_iter().chain(b), metadata);
    /// assert_eq!(merged.len(), 2);
    /// assert_eq!(merged.get("f").unwrap().state(), acqrel_flags::FlagState::Disabled);
    /// assert_eq!(merged.metadata()["team"], "web");
    /// # Ok::<(), acqrel_flags::LoadError>(())
    /// ```
    pub fn from_flags(
        flags: impl IntoIterator<Item = Flag>,
        metadata: Map<String, Json>,
    ) -> FlagSet {
        let flags = flags
            .into_iter()
            .map(|flag| (flag.key().to_owned(), flag))
            .collect();
        FlagSet { flags, metadata }
    }

    /// The flag `key`, if the set has it.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}"#).unwrap();
    /// assert!(flags.get("f").is_some());
    /// assert!(flags.get("g").is_none());
    /// ```
    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.flags.get(key)
    }

    /// How many flags the set has.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {}}"#).unwrap();
    /// assert_eq!(flags.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether the set has no flags.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {}}"#).unwrap();
    /// assert!(flags.is_empty());
    /// assert!(FlagSet::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The flags, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let json = r#"{"flags": {
    ///     "b": {"state": "ENABLED", "variants": {"on": true}},
    ///     "a": {"state": "DISABLED", "variants": {"on": true}}
    /// }}"#;
    /// let (flags, _) = FlagSet::parse(json).unwrap();
    /// let keys: Vec<&str> = flags.iter().map(|flag| flag.key()).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Flag> + DoubleEndedIterator {
        self.flags.values()
    }

    /// The flag set's own metadata (the top-level `metadata`), which every
    /// flag's [`metadata`](Flag::metadata) already includes.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"metadata": {"flagSetId": "web"}, "flags": {}}"#).unwrap();
    /// assert_eq!(flags.metadata()["flagSetId"], "web");
    /// ```
    pub fn metadata(&self) -> &Map<String, Json> {
        &self.metadata
    }
}

impl IntoIterator for FlagSet {
    type Item = Flag;
    type IntoIter = std::collections::btree_map::IntoValues<String, Flag>;

    /// The flags, by value, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}"#).unwrap();
    /// let owned: Vec<_> = flags.into_iter().collect();
    /// assert_eq!(owned[0].key(), "f");
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.flags.into_values()
    }
}

impl<'a> IntoIterator for &'a FlagSet {
    type Item = &'a Flag;
    type IntoIter = std::collections::btree_map::Values<'a, String, Flag>;

    /// The flags, in key order (as [`FlagSet::iter`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let (flags, _) = FlagSet::parse(r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}"#).unwrap();
    /// for flag in &flags {
    ///     assert_eq!(flag.key(), "f");
    /// }
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.flags.values()
    }
}

// ===== parsing =====

/// One flag, `value` found at `flags_path[key]`.
fn parse_flag(
    key: String,
    value: Json,
    flags_path: &Path<'_>,
    set_metadata: &Map<String, Json>,
    resolver: &mut Resolver<'_>,
    warnings: &mut Vec<LoadWarning>,
) -> Result<Flag, LoadError> {
    let path = flags_path.key(&key);
    if key.is_empty() {
        return Err(shape(&path, "a non-empty flag key", "an empty key"));
    }
    let mut fields = match value {
        Json::Object(fields) => fields,
        other => return Err(shape(&path, "a flag object", describe(&other))),
    };
    let state = match fields.get("state") {
        Some(Json::String(s)) if s == "ENABLED" => FlagState::Enabled,
        Some(Json::String(s)) if s == "DISABLED" => FlagState::Disabled,
        other => {
            return Err(shape(
                &path.key("state"),
                "\"ENABLED\" or \"DISABLED\"",
                describe_member(other),
            ));
        }
    };
    let (kind, variants) = variants(fields.remove("variants"), &path.key("variants"))?;
    let default_variant = match fields.remove("defaultVariant") {
        None | Some(Json::Null) => None,
        Some(Json::String(name)) if variants.contains_key(&name) => Some(name),
        Some(other) => {
            let expected = match other {
                Json::String(_) => format!("the name of a variant ({})", list(variants.keys())),
                _ => "the name of a variant (a string) or null".to_owned(),
            };
            return Err(shape(
                &path.key("defaultVariant"),
                expected,
                describe(&other),
            ));
        }
    };
    let mut merged = set_metadata.clone();
    if let Some(own) = fields.remove("metadata") {
        merged.extend(metadata(own, &path.key("metadata"))?);
    }
    let targeting_path = path.key("targeting");
    let resolved = match fields.remove("targeting") {
        None => Ok(None),
        Some(rule) => match resolver.resolve(&rule, &targeting_path) {
            Ok(rule) if is_static(&rule) => Ok(None),
            Ok(rule) => Rule::compile(&rule)
                .map(|compiled| Some((rule, compiled)))
                .map_err(|reason| (targeting_path.to_string(), reason)),
            Err(error) => Err((error.path, error.reason)),
        },
    };
    let (targeting, rule) = match resolved {
        Ok(None) => (Targeting::Static, None),
        Ok(Some((rule, compiled))) => (Targeting::Rule(rule), Some(compiled)),
        Err((at, reason)) => {
            warnings.push(LoadWarning::new(key.clone(), at, reason.clone()));
            (Targeting::Invalid { reason }, None)
        }
    };
    Ok(Flag {
        key,
        state,
        kind,
        variants,
        default_variant,
        targeting,
        rule,
        metadata: Arc::new(merged),
    })
}

/// A flag's `variants` (found at `path`, `None` if missing), typed and
/// checked to share one type.
fn variants(
    value: Option<Json>,
    path: &Path<'_>,
) -> Result<(ValueKind, BTreeMap<String, Value>), LoadError> {
    let map = match value {
        Some(Json::Object(map)) if !map.is_empty() => map,
        Some(Json::Object(_)) => {
            return Err(shape(path, "at least one variant", "an empty object"));
        }
        other => {
            return Err(shape(
                path,
                "an object of variants",
                describe_member(other.as_ref()),
            ));
        }
    };
    let mut out = BTreeMap::new();
    // The first variant's name and type: every other must match its family.
    let mut first: Option<(String, ValueKind)> = None;
    let (mut ints, mut floats) = (false, false);
    for (name, json) in map {
        let variant_path = path.key(&name);
        if name.is_empty() {
            return Err(shape(
                &variant_path,
                "a non-empty variant name",
                "an empty name",
            ));
        }
        let value = variant_value(json, &variant_path)?;
        let kind = value.kind();
        match &first {
            None => first = Some((name.clone(), kind)),
            Some((first_name, first_kind)) if first_kind.family() != kind.family() => {
                return Err(shape(
                    &variant_path,
                    format!(
                        "{}, like variant {} (all variants of a flag have one type)",
                        first_kind.family(),
                        Json::from(first_name.as_str())
                    ),
                    kind.family(),
                ));
            }
            Some(_) => {}
        }
        ints |= kind == ValueKind::Int;
        floats |= kind == ValueKind::Float;
        out.insert(name, value);
    }
    if ints && floats {
        // Integers and floats mixed: the flag is a float flag.
        for value in out.values_mut() {
            if let Value::Int(i) = *value {
                *value = Value::Float(i as f64);
            }
        }
    }
    let kind = match first {
        Some(_) if floats => ValueKind::Float,
        Some((_, kind)) => kind,
        // Unreachable: `map` is not empty.
        None => ValueKind::Bool,
    };
    Ok((kind, out))
}

/// A variant value (found at `path`) as a [`Value`].
fn variant_value(json: Json, path: &Path<'_>) -> Result<Value, LoadError> {
    const EXPECTED: &str = "a boolean, string, number or object";
    Ok(match json {
        Json::Bool(b) => Value::Bool(b),
        Json::String(s) => Value::String(s),
        Json::Object(map) => Value::Object(map),
        Json::Number(ref n) => {
            let float = n.as_f64();
            // `-0` is a float, keeping its sign: serde_json reads it as one,
            // except with its `arbitrary_precision` feature (which another
            // crate of a build may turn on), where `as_i64` would give 0.
            let negative_zero = float.is_some_and(|f| f == 0.0 && f.is_sign_negative());
            match (n.as_i64(), float) {
                (Some(i), _) if !negative_zero => Value::Int(i),
                // serde_json rejects numbers out of `f64`'s range, except
                // with `arbitrary_precision`, where `as_f64` gives `None`.
                (_, Some(f)) if f.is_finite() => Value::Float(f),
                _ => return Err(shape(path, "a finite number", describe(&json))),
            }
        }
        other @ (Json::Null | Json::Array(_)) => {
            return Err(shape(path, EXPECTED, describe(&other)));
        }
    })
}

/// A `metadata` object (found at `path`), checked to hold only strings,
/// numbers and booleans.
fn metadata(value: Json, path: &Path<'_>) -> Result<Map<String, Json>, LoadError> {
    let map = match value {
        Json::Object(map) => map,
        other => {
            return Err(shape(
                path,
                "an object of metadata (string, number or boolean values)",
                describe(&other),
            ));
        }
    };
    for (key, entry) in &map {
        if !matches!(entry, Json::String(_) | Json::Number(_) | Json::Bool(_)) {
            return Err(shape(
                &path.key(key),
                "a string, number or boolean",
                describe(entry),
            ));
        }
    }
    Ok(map)
}

/// Whether a resolved rule means "no targeting": `null` or `{}`.
fn is_static(rule: &Json) -> bool {
    match rule {
        Json::Null => true,
        Json::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// A [`LoadError::Shape`].
fn shape(path: &Path<'_>, expected: impl Into<String>, found: impl Into<String>) -> LoadError {
    LoadError::Shape {
        path: path.to_string(),
        expected: expected.into(),
        found: found.into(),
    }
}

/// What the file has at a member's place, `None` if the member is missing.
fn describe_member(value: Option<&Json>) -> String {
    value.map_or_else(|| "nothing (the member is missing)".to_owned(), describe)
}

/// A JSON value in words, for messages: its type, and for scalars the value
/// (strings cut at 40 characters).
pub(crate) fn describe(value: &Json) -> String {
    const MAX_CHARS: usize = 40;
    match value {
        Json::Null => "null".to_owned(),
        Json::Bool(b) => format!("the boolean {b}"),
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) if s.chars().count() > MAX_CHARS => {
            let cut: String = s.chars().take(MAX_CHARS).collect();
            format!("the string {}...", Json::from(cut))
        }
        Json::String(s) => format!("the string {}", Json::from(s.as_str())),
        Json::Array(items) if items.is_empty() => "an empty array".to_owned(),
        Json::Array(_) => "an array".to_owned(),
        Json::Object(map) if map.is_empty() => "an empty object".to_owned(),
        Json::Object(_) => "an object".to_owned(),
    }
}

/// Variant names for a message: `"a", "b"`, the first 8 then `...`.
fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    const SHOWN: usize = 8;
    let mut names = names.peekable();
    let mut out: Vec<String> = names
        .by_ref()
        .take(SHOWN)
        .map(|name| Json::from(name.as_str()).to_string())
        .collect();
    if names.peek().is_some() {
        out.push("...".to_owned());
    }
    out.join(", ")
}
