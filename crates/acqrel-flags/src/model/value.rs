//! A flag variant's value and its type.

use std::fmt;

/// The value of one variant of a flag.
///
/// flagd allows booleans, strings, numbers and objects; arrays and `null`
/// are rejected when the file is loaded. Integers and floats are distinct
/// types here (OpenFeature resolves them separately), so a JSON number is
/// classified when the file is parsed:
///
/// | written as | becomes | why |
/// |---|---|---|
/// | `1`, `-7`, `0` | `Int(1)`, `Int(-7)`, `Int(0)` | no fraction or exponent, fits in `i64` |
/// | `9007199254740993` | `Int(9007199254740993)`, exact | fits in `i64`; past JavaScript's safe range (±(2⁵³−1)), where flagd's schema rejects it and Go's flagd rounds it through `f64`: here it is kept exact |
/// | `1.0` | `Float(1.0)` | written with a fraction: the author asked for a float |
/// | `1e3` | `Float(1000.0)` | written with an exponent, likewise |
/// | `-0.0`, `-0` | `Float(-0.0)` | the sign of zero is kept (serde_json reads `-0` as a float for that) |
/// | `9223372036854775808` | `Float(9.223372036854776e18)` | an integer past `i64::MAX` |
///
/// The classification is by how the number is written, as in flagd's Java
/// and Python providers (Go's flagd keeps every number as an `f64`). Within
/// one flag, integers and floats are one kind, *number*: if any variant of
/// a flag is a float, its integer variants become floats too (`2` →
/// `Float(2.0)`, exact up to 2⁵³), so a flag has one type for every user.
///
/// # Examples
///
/// ```
/// use acqrel_flags::{FlagSet, Value, ValueKind};
///
/// let json = r#"{"flags": {
///     "retries": {"state": "ENABLED", "variants": {"few": 1, "many": 10}, "defaultVariant": "few"},
///     "ratio":   {"state": "ENABLED", "variants": {"none": 0, "half": 0.5}, "defaultVariant": "half"}
/// }}"#;
/// let (flags, _) = FlagSet::parse(json).unwrap();
///
/// let retries = flags.get("retries").unwrap();
/// assert_eq!(retries.variant("many"), Some(&Value::Int(10)));
/// assert_eq!(retries.kind(), ValueKind::Int);
///
/// // One float variant makes the whole flag a float flag.
/// let ratio = flags.get("ratio").unwrap();
/// assert_eq!(ratio.variant("none"), Some(&Value::Float(0.0)));
/// assert_eq!(ratio.kind(), ValueKind::Float);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A JSON `true` or `false`.
    Bool(bool),
    /// A JSON string.
    String(String),
    /// A JSON number written without a fraction or an exponent that fits in
    /// an `i64` (see the table above).
    Int(i64),
    /// Any other JSON number (see the table above). Always finite when it
    /// comes from [`FlagSet::parse`](crate::FlagSet::parse).
    Float(f64),
    /// A JSON object, kept as parsed.
    Object(serde_json::Map<String, serde_json::Value>),
}

impl Value {
    /// The type of this value.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{Value, ValueKind};
    ///
    /// assert_eq!(Value::Int(3).kind(), ValueKind::Int);
    /// assert_eq!(Value::Float(3.0).kind(), ValueKind::Float);
    /// assert_eq!(Value::String("red".into()).kind().name(), "string");
    /// ```
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Bool(_) => ValueKind::Bool,
            Value::String(_) => ValueKind::String,
            Value::Int(_) => ValueKind::Int,
            Value::Float(_) => ValueKind::Float,
            Value::Object(_) => ValueKind::Object,
        }
    }

    /// The boolean, if this is a [`Value::Bool`].
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::Value;
    ///
    /// assert_eq!(Value::Bool(true).as_bool(), Some(true));
    /// assert_eq!(Value::String("true".into()).as_bool(), None);
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The string, if this is a [`Value::String`].
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::Value;
    ///
    /// assert_eq!(Value::String("red".into()).as_str(), Some("red"));
    /// assert_eq!(Value::Int(1).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is a [`Value::Int`] (a float is never converted).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::Value;
    ///
    /// assert_eq!(Value::Int(10).as_i64(), Some(10));
    /// assert_eq!(Value::Float(10.0).as_i64(), None);
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The float, if this is a [`Value::Float`] (an integer is never
    /// converted).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::Value;
    ///
    /// assert_eq!(Value::Float(0.5).as_f64(), Some(0.5));
    /// assert_eq!(Value::Int(1).as_f64(), None);
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The object, if this is a [`Value::Object`].
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::Value;
    ///
    /// let mut map = serde_json::Map::new();
    /// map.insert("color".into(), "red".into());
    /// let value = Value::Object(map);
    /// assert_eq!(value.as_object().unwrap()["color"], "red");
    /// assert!(Value::Bool(false).as_object().is_none());
    /// ```
    pub fn as_object(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }
}

impl Value {
    /// A JSON value as a [`Value`], numbers classified as in a flag file
    /// (see the table above); `None` for `null`, arrays and non-finite
    /// numbers, which no variant can hold.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::Value;
    /// use serde_json::json;
    ///
    /// assert_eq!(Value::from_json(json!(3)), Some(Value::Int(3)));
    /// assert_eq!(Value::from_json(json!(3.0)), Some(Value::Float(3.0)));
    /// assert_eq!(Value::from_json(json!("on")), Some(Value::String("on".into())));
    /// assert_eq!(Value::from_json(json!([1])), None);
    /// ```
    pub fn from_json(json: serde_json::Value) -> Option<Value> {
        super::variant_value(json, &super::Path::ROOT).ok()
    }
}

impl From<Value> for serde_json::Value {
    /// The JSON form of the value. A non-finite float (which only code can
    /// build, never [`FlagSet::parse`](crate::FlagSet::parse)) becomes
    /// `null`, as in serde_json's own conversion from `f64`.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::Value;
    ///
    /// assert_eq!(serde_json::Value::from(Value::Int(3)), serde_json::json!(3));
    /// assert_eq!(serde_json::Value::from(Value::Float(0.5)), serde_json::json!(0.5));
    /// assert_eq!(serde_json::Value::from(Value::Float(f64::NAN)), serde_json::Value::Null);
    /// ```
    fn from(value: Value) -> Self {
        match value {
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::String(s) => serde_json::Value::String(s),
            Value::Int(i) => serde_json::Value::from(i),
            Value::Float(f) => serde_json::Value::from(f),
            Value::Object(map) => serde_json::Value::Object(map),
        }
    }
}

/// The type of a [`Value`], and so of a flag (all variants of a flag have
/// one type).
///
/// # Examples
///
/// ```
/// use acqrel_flags::{Value, ValueKind};
///
/// assert_eq!(Value::Bool(true).kind(), ValueKind::Bool);
/// assert_eq!(ValueKind::Float.to_string(), "float");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// [`Value::Bool`].
    Bool,
    /// [`Value::String`].
    String,
    /// [`Value::Int`].
    Int,
    /// [`Value::Float`].
    Float,
    /// [`Value::Object`].
    Object,
}

impl ValueKind {
    /// The type's name as OpenFeature and the CLI spell it: `"boolean"`,
    /// `"string"`, `"integer"`, `"float"` or `"object"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::ValueKind;
    ///
    /// assert_eq!(ValueKind::Bool.name(), "boolean");
    /// assert_eq!(ValueKind::Int.name(), "integer");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Bool => "boolean",
            ValueKind::String => "string",
            ValueKind::Int => "integer",
            ValueKind::Float => "float",
            ValueKind::Object => "object",
        }
    }

    /// The kind named `name` as [`name`](Self::name) spells it.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::ValueKind;
    ///
    /// assert_eq!(ValueKind::from_name("integer"), Some(ValueKind::Int));
    /// assert_eq!(ValueKind::from_name("int"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<ValueKind> {
        [
            ValueKind::Bool,
            ValueKind::String,
            ValueKind::Int,
            ValueKind::Float,
            ValueKind::Object,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }

    /// Integers and floats are both numbers: a flag may mix them (and its
    /// integers then become floats). This is the grouping used to check that
    /// a flag's variants share one type.
    pub(crate) fn family(self) -> &'static str {
        match self {
            ValueKind::Bool => "a boolean",
            ValueKind::String => "a string",
            ValueKind::Int | ValueKind::Float => "a number",
            ValueKind::Object => "an object",
        }
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
