//! flagd's `starts_with` and `ends_with` operators.

use serde_json::Value;

/// flagd's `starts_with`: whether a string begins with a prefix.
///
/// `args` is `[value, prefix]`, after evaluation. The test is
/// case-sensitive and byte-exact (no Unicode normalization).
///
/// Returns `None` (flagd's `null`) unless there are exactly two arguments
/// and both are strings: nothing is converted, so a number prefix such as
/// `3` gives `None` even for the value `"3"`.
///
/// # Examples
///
/// ```
/// use acqrel_flags::ops::starts_with;
/// use serde_json::json;
///
/// assert_eq!(starts_with(&[json!("user@faas.com"), json!("user@")]), Some(true));
/// assert_eq!(starts_with(&[json!("User@faas.com"), json!("user@")]), Some(false));
/// assert_eq!(starts_with(&[json!("3"), json!(3)]), None);
/// ```
#[must_use]
pub fn starts_with(args: &[Value]) -> Option<bool> {
    let (value, prefix) = string_pair(args)?;
    Some(value.starts_with(prefix))
}

/// flagd's `ends_with`: whether a string ends with a suffix.
///
/// `args` is `[value, suffix]`, after evaluation. The test is
/// case-sensitive and byte-exact (no Unicode normalization).
///
/// Returns `None` (flagd's `null`) unless there are exactly two arguments
/// and both are strings: nothing is converted, so a number suffix such as
/// `3` gives `None` even for the value `"3"`.
///
/// # Examples
///
/// ```
/// use acqrel_flags::ops::ends_with;
/// use serde_json::json;
///
/// assert_eq!(ends_with(&[json!("user@faas.com"), json!("@faas.com")]), Some(true));
/// assert_eq!(ends_with(&[json!("user@faas.com"), json!("@FAAS.com")]), Some(false));
/// assert_eq!(ends_with(&[json!("3"), json!(3)]), None);
/// ```
#[must_use]
pub fn ends_with(args: &[Value]) -> Option<bool> {
    let (value, suffix) = string_pair(args)?;
    Some(value.ends_with(suffix))
}

/// The two string arguments of `starts_with` / `ends_with`, or `None`.
fn string_pair(args: &[Value]) -> Option<(&str, &str)> {
    match args {
        [Value::String(value), Value::String(pattern)] => Some((value, pattern)),
        _ => None,
    }
}
