//! What loading a flag file can report: a fatal [`LoadError`], or a
//! [`LoadWarning`] for a flag that loads but cannot be evaluated.

use std::fmt;

/// Why a flag file was rejected whole.
///
/// Either the text is not JSON, or some value has the wrong shape: then
/// [`path`](LoadError::path) names it in JSONPath's normalized style
/// (`$.flags["my-flag"].variants`: a dot before keys that are identifiers,
/// a bracketed JSON string for the others) and the message says what was
/// expected there and what was found.
///
/// # Examples
///
/// ```
/// use acqrel_flags::{FlagSet, LoadError};
///
/// let err = FlagSet::parse(r#"{"flags": {"my-flag": {"state": "ON", "variants": {"a": 1}}}}"#)
///     .unwrap_err();
/// assert_eq!(err.path(), Some(r#"$.flags["my-flag"].state"#));
/// assert_eq!(
///     err.to_string(),
///     r#"$.flags["my-flag"].state: expected "ENABLED" or "DISABLED", found the string "ON""#,
/// );
///
/// let err = FlagSet::parse("{\"flags\": {}").unwrap_err();
/// assert!(matches!(err, LoadError::NotJson { line: 1, column: 12, .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The text is not JSON (or nests arrays and objects more than 128
    /// deep, serde_json's limit, which keeps every later walk of the
    /// document off the end of the stack).
    #[error("not JSON: {message} at line {line}, column {column}")]
    NotJson {
        /// The line of the error, from 1.
        line: usize,
        /// The column of the error, from 1 (0 when nothing was read on that
        /// line, as for an empty text).
        column: usize,
        /// serde_json's description of the error, without its position.
        message: String,
    },
    /// A value does not have the shape of a flagd flag file.
    #[error("{path}: expected {expected}, found {found}")]
    Shape {
        /// Where the value is (or, for a missing member, would be).
        path: String,
        /// What the format allows there.
        expected: String,
        /// What the file has there.
        found: String,
    },
}

impl LoadError {
    /// The JSON path of the offending value, for a [`LoadError::Shape`].
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let err = FlagSet::parse(r#"{"flags": []}"#).unwrap_err();
    /// assert_eq!(err.path(), Some("$.flags"));
    /// assert_eq!(FlagSet::parse("nope").unwrap_err().path(), None);
    /// ```
    pub fn path(&self) -> Option<&str> {
        match self {
            LoadError::Shape { path, .. } => Some(path),
            LoadError::NotJson { .. } => None,
        }
    }

    /// A serde_json error, with the position taken out of its message.
    pub(crate) fn not_json(error: &serde_json::Error) -> Self {
        let (line, column) = (error.line(), error.column());
        let full = error.to_string();
        let position = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&position).unwrap_or(&full).to_owned();
        LoadError::NotJson {
            line,
            column,
            message,
        }
    }
}

/// A flag that loaded but whose targeting cannot be compiled: an unknown
/// `$ref`, a `$ref` cycle, or a rule too large or too deep once its `$ref`s
/// are expanded. The flag's [`Targeting`](crate::Targeting) is
/// [`Invalid`](crate::Targeting::Invalid), and evaluating it reports
/// `PARSE_ERROR`; the rest of the file is unaffected.
///
/// # Examples
///
/// ```
/// use acqrel_flags::FlagSet;
///
/// let json = r#"{"flags": {"beta": {
///     "state": "ENABLED",
///     "variants": {"on": true, "off": false},
///     "defaultVariant": "off",
///     "targeting": {"if": [{"$ref": "is_staff"}, "on", null]}
/// }}}"#;
/// let (flags, warnings) = FlagSet::parse(json).unwrap();
/// assert_eq!(flags.len(), 1);
/// assert_eq!(warnings.len(), 1);
/// assert_eq!(warnings[0].flag_key(), "beta");
/// assert_eq!(warnings[0].path(), "$.flags.beta.targeting.if[0]");
/// assert_eq!(warnings[0].reason(), r#"unknown $ref "is_staff": $evaluators has no such entry"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadWarning {
    flag_key: String,
    path: String,
    reason: String,
}

impl LoadWarning {
    pub(crate) fn new(flag_key: String, path: String, reason: String) -> Self {
        LoadWarning {
            flag_key,
            path,
            reason,
        }
    }

    /// The key of the flag whose targeting is invalid.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let json = r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1},
    ///     "targeting": {"$ref": "missing"}}}}"#;
    /// let (_, warnings) = FlagSet::parse(json).unwrap();
    /// assert_eq!(warnings[0].flag_key(), "f");
    /// ```
    pub fn flag_key(&self) -> &str {
        &self.flag_key
    }

    /// Where the problem is: the `$ref` object that cannot be resolved, in
    /// the flag's targeting or in the `$evaluators` entry it pulls in.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let json = r#"{"$evaluators": {"a": {"in": ["x", {"$ref": "missing"}]}},
    ///     "flags": {"f": {"state": "ENABLED", "variants": {"a": 1},
    ///     "targeting": {"$ref": "a"}}}}"#;
    /// let (_, warnings) = FlagSet::parse(json).unwrap();
    /// assert_eq!(warnings[0].path(), r#"$["$evaluators"].a.in[1]"#);
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, in words.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::FlagSet;
    ///
    /// let json = r#"{"$evaluators": {"a": {"$ref": "a"}},
    ///     "flags": {"f": {"state": "ENABLED", "variants": {"a": 1},
    ///     "targeting": {"$ref": "a"}}}}"#;
    /// let (_, warnings) = FlagSet::parse(json).unwrap();
    /// assert_eq!(warnings[0].reason(), "$ref cycle: a -> a");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: flag {} will resolve with PARSE_ERROR: {}",
            self.path,
            serde_json::Value::from(self.flag_key.as_str()),
            self.reason
        )
    }
}
