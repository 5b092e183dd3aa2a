//! flagd's `sem_ver` operator: semantic-version comparisons (SemVer 2.0.0).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

/// flagd's `sem_ver`: compares two semantic versions.
///
/// `args` is `[version, operator, target]`, after evaluation. The operators:
///
/// | operator | true when                                           |
/// |----------|-----------------------------------------------------|
/// | `=`      | `version` and `target` have the same precedence     |
/// | `!=`     | they do not                                         |
/// | `<`, `<=`, `>`, `>=` | by SemVer 2.0.0 precedence (§11)        |
/// | `^`      | the major versions are equal                        |
/// | `~`      | the major and minor versions are equal              |
///
/// Versions are read the way flagd reads them: one leading `v` or `V` is
/// dropped; a partial version is padded with zeros (`"1"` is `1.0.0`,
/// `"1.2"` is `1.2.0`), but only when it has no pre-release or build part
/// (`"1.2-rc.1"` is invalid, as in flagd); a JSON number is read as its
/// decimal text (`1` is `1.0.0`, `1.5` is `1.5.0`); build metadata
/// (`+...`) is checked but takes no part in comparisons; a pre-release
/// sorts before its release (`2.0.0-alpha < 2.0.0`). Numeric parts have no
/// leading zeros and no size limit.
///
/// Returns `None` (flagd's `null`) unless there are exactly three
/// arguments, the operator is one of the above, and both versions are
/// valid: `"2.0.0.0"`, `"01.0.0"`, `"1.0.0-"`, `true` or a missing value
/// all give `None`.
///
/// # Examples
///
/// ```
/// use acqrel_flags::ops::sem_ver;
/// use serde_json::json;
///
/// assert_eq!(sem_ver(&[json!("2.0.0-alpha"), json!("<"), json!("2.0.0")]), Some(true));
/// assert_eq!(sem_ver(&[json!("v1.4.2"), json!("^"), json!(1)]), Some(true));
/// assert_eq!(sem_ver(&[json!("1.0.0+linux"), json!("="), json!("1.0.0")]), Some(true));
/// assert_eq!(sem_ver(&[json!("2.0.0.0"), json!("="), json!("2.0.0")]), None);
/// ```
#[must_use]
pub fn sem_ver(args: &[Value]) -> Option<bool> {
    let [version, operator, target] = args else {
        return None;
    };
    let (version, target) = (version_text(version)?, version_text(target)?);
    let version = Version::parse(&version)?;
    let target = Version::parse(&target)?;
    let Value::String(operator) = operator else {
        return None;
    };
    let ordering = version.cmp(&target);
    Some(match operator.as_str() {
        "=" => ordering == Ordering::Equal,
        "!=" => ordering != Ordering::Equal,
        "<" => ordering == Ordering::Less,
        "<=" => ordering != Ordering::Greater,
        ">" => ordering == Ordering::Greater,
        ">=" => ordering != Ordering::Less,
        "^" => version.major == target.major,
        "~" => version.major == target.major && version.minor == target.minor,
        _ => return None,
    })
}

/// The text of a version argument: a string as it is, a number as its
/// decimal text; anything else is not a version.
fn version_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        _ => None,
    }
}

/// A parsed version, borrowing its parts from the text. Build metadata is
/// validated and dropped: it never affects precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version<'a> {
    /// Digits, no leading zero (so numeric order is length, then text).
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// The dot-separated identifiers after `-`, validated; `None` for a
    /// release.
    pre: Option<&'a str>,
}

impl<'a> Version<'a> {
    /// Parses `[v|V]MAJOR[.MINOR[.PATCH[-PRE][+BUILD]]]`.
    fn parse(text: &'a str) -> Option<Self> {
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let (text, build) = match text.split_once('+') {
            Some((text, build)) => (text, Some(build)),
            None => (text, None),
        };
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        if !build.is_none_or(|build| build.split('.').all(is_build_identifier)) {
            return None;
        }
        if !pre.is_none_or(|pre| pre.split('.').all(is_pre_identifier)) {
            return None;
        }

        let mut numbers = core.split('.');
        let major = numbers.next().filter(|n| is_number(n))?;
        let (minor, patch, padded) = match (numbers.next(), numbers.next(), numbers.next()) {
            (None, None, None) => ("0", "0", true),
            (Some(minor), None, None) => (minor, "0", true),
            (Some(minor), Some(patch), None) => (minor, patch, false),
            _ => return None,
        };
        if !is_number(minor) || !is_number(patch) {
            return None;
        }
        // flagd pads only bare versions: "1.2-rc.1" and "1+build" are
        // invalid there, so they are here.
        if padded && (pre.is_some() || build.is_some()) {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre,
        })
    }
}

impl Ord for Version<'_> {
    /// SemVer 2.0.0 §11: major, minor, patch numerically; then a
    /// pre-release sorts before the release; two pre-releases compare
    /// identifier by identifier (numbers numerically and below
    /// alphanumerics, alphanumerics in ASCII order), the shorter list first
    /// when one is a prefix of the other.
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_number(self.major, other.major)
            .then_with(|| cmp_number(self.minor, other.minor))
            .then_with(|| cmp_number(self.patch, other.patch))
            .then_with(|| match (self.pre, other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(ours), Some(theirs)) => ours
                    .split('.')
                    .map(PreIdentifier)
                    .cmp(theirs.split('.').map(PreIdentifier)),
            })
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One pre-release identifier, ordered by SemVer's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PreIdentifier<'a>(&'a str);

impl Ord for PreIdentifier<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (is_digits(self.0), is_digits(other.0)) {
            (true, true) => cmp_number(self.0, other.0),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => self.0.cmp(other.0),
        }
    }
}

impl PartialOrd for PreIdentifier<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two numbers given as digits without leading zeros, of any
/// length: the longer is larger, and equal lengths compare as text.
fn cmp_number(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Non-empty and all ASCII digits.
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A SemVer numeric identifier: digits, no leading zero unless it is `0`.
fn is_number(text: &str) -> bool {
    is_digits(text) && (text == "0" || !text.starts_with('0'))
}

/// A build identifier: non-empty, `[0-9A-Za-z-]` (leading zeros allowed).
fn is_build_identifier(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A pre-release identifier: a build identifier, and if all digits, a
/// number without leading zeros.
fn is_pre_identifier(text: &str) -> bool {
    is_build_identifier(text) && (!is_digits(text) || is_number(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Option<(&str, &str, &str, Option<&str>)> {
        Version::parse(text).map(|v| (v.major, v.minor, v.patch, v.pre))
    }

    #[test]
    fn parse_pads_strips_and_rejects() {
        assert_eq!(parsed("1.2.3"), Some(("1", "2", "3", None)));
        assert_eq!(parsed("v1.2.3"), Some(("1", "2", "3", None)));
        assert_eq!(parsed("V1.2.3"), Some(("1", "2", "3", None)));
        assert_eq!(parsed("1"), Some(("1", "0", "0", None)));
        assert_eq!(parsed("1.2"), Some(("1", "2", "0", None)));
        assert_eq!(parsed("1.2.0"), Some(("1", "2", "0", None)));
        assert_eq!(
            parsed("1.0.0-rc.1+b.01"),
            Some(("1", "0", "0", Some("rc.1")))
        );
        assert_eq!(
            parsed("1.0.0-x-y--z"),
            Some(("1", "0", "0", Some("x-y--z")))
        );
        assert_eq!(
            parsed("123456789012345678901234567890.0.0"),
            Some(("123456789012345678901234567890", "0", "0", None))
        );
        for bad in [
            "",
            "v",
            "vv1.0.0",
            "1.",
            "1..0",
            ".1.0",
            "1.0.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0-a..b",
            "1.0.0+",
            "1.0.0+a..b",
            "1.0.0-a_b",
            " 1.0.0",
            "1.0.0 ",
            "1.2-rc.1",
            "1+build",
            "1.0-rc",
            "a.b.c",
            "-1.0.0",
            "1.0.0-é",
        ] {
            assert_eq!(parsed(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pre_identifiers_order() {
        let cmp = |a, b| PreIdentifier(a).cmp(&PreIdentifier(b));
        assert_eq!(cmp("2", "11"), Ordering::Less);
        assert_eq!(cmp("11", "alpha"), Ordering::Less);
        assert_eq!(cmp("beta", "alpha"), Ordering::Greater);
        assert_eq!(cmp("Beta", "alpha"), Ordering::Less);
        assert_eq!(cmp("1a", "1"), Ordering::Greater);
        assert_eq!(cmp("7", "7"), Ordering::Equal);
    }

    #[test]
    fn numbers_of_any_length() {
        assert_eq!(cmp_number("9", "10"), Ordering::Less);
        assert_eq!(cmp_number("100", "99"), Ordering::Greater);
        assert_eq!(
            cmp_number("18446744073709551616", "18446744073709551615"),
            Ordering::Greater
        );
    }
}
