//! flagd's `fractional` operator: deterministic weighted bucketing.

use std::borrow::Cow;

use serde_json::{Number, Value};

use super::murmur3::murmur3_x86_32;

/// The largest weight, and the largest sum of weights: flagd's limit, which
/// keeps `hash × total` within 63 bits.
const MAX_WEIGHT: u32 = i32::MAX as u32;

/// flagd's `fractional`: picks one of weighted variants for a user, the same
/// one every flagd SDK picks.
///
/// `args` are the operator's arguments after JsonLogic has evaluated them:
///
/// - An optional **bucketing value** first. A string is hashed as it is. A
///   null (say, a `var` that is missing) is dropped and the default key is
///   used. If the first argument is already a distribution (an array), the
///   default key is used. Any other first argument (a number, a bool, an
///   object) gives `None`: turn a number into a string with `cat` first.
/// - Then the **distributions**: `[variant]` (weight 1) or `[variant,
///   weight]`; a null weight also means 1, and elements after the weight
///   are ignored. A variant is a string, bool, number or null, and is
///   returned as the JSON value it is (mapping it to a variant name is the
///   caller's job). Weights are whole numbers (`25` or `25.0`); a negative
///   weight counts as 0 (rollout arithmetic can produce one).
///
/// The **default key** is `flag_key` followed directly by `targeting_key`.
/// The key's UTF-8 bytes are hashed with [`murmur3_x86_32`] (seed 0) to
/// `h`; the bucket is `(h × total) >> 32`, a number in `0..total`, and the
/// result is the first variant whose cumulative weight exceeds the bucket.
///
/// [`murmur3_x86_32`]: crate::ops::murmur3_x86_32
///
/// Returns `None` (flagd's `null`, which sends the flag to its default
/// variant) when the arguments are empty; the default key is needed and
/// `targeting_key` is `None`; a distribution is not a non-empty array; a
/// variant is an array or object; a weight is not a number or null, not
/// whole, or more than 2,147,483,647; the weights sum to more than
/// 2,147,483,647, or to 0.
///
/// # Examples
///
/// ```
/// use acqrel_flags::ops::fractional;
/// use serde_json::json;
///
/// let suits = [
///     json!(["clubs", 25]),
///     json!(["diamonds", 25]),
///     json!(["hearts", 25]),
///     json!(["spades", 25]),
/// ];
///
/// // {"fractional": [["clubs", 25], ...]}: the key is "fractional-flag" + "jack".
/// assert_eq!(fractional("fractional-flag", Some("jack"), &suits), Some(json!("hearts")));
///
/// // An explicit bucketing value is hashed as it is, with no flag key in front.
/// let mut args = vec![json!("fractional-flagjack")];
/// args.extend(suits.iter().cloned());
/// assert_eq!(fractional("any-flag", None, &args), Some(json!("hearts")));
///
/// // No bucketing value and no targeting key: null.
/// assert_eq!(fractional("fractional-flag", None, &suits), None);
/// ```
#[must_use]
pub fn fractional(flag_key: &str, targeting_key: Option<&str>, args: &[Value]) -> Option<Value> {
    let (explicit, distributions) = match args.split_first()? {
        (Value::String(bucketing), rest) => (Some(bucketing.as_str()), rest),
        (Value::Null, rest) => (None, rest),
        (Value::Array(_), _) => (None, args),
        _ => return None,
    };
    let key = bucketing_bytes(explicit, flag_key, targeting_key)?;

    // First pass: validate every distribution and sum the weights, so that
    // a malformed entry after the chosen one still gives `None`.
    let mut total: u64 = 0;
    for entry in distributions {
        let (_, weight) = distribution(entry)?;
        total += u64::from(weight);
    }
    if total == 0 || total > u64::from(MAX_WEIGHT) {
        return None;
    }

    let bucket = (u64::from(murmur3_x86_32(&key, 0)) * total) >> 32;
    let mut end: u64 = 0;
    for entry in distributions {
        let (variant, weight) = distribution(entry)?;
        end += u64::from(weight);
        if bucket < end {
            return Some(variant.clone());
        }
    }
    // Unreachable: `bucket < total`, and the last `end` is `total`.
    None
}

/// The bytes flagd hashes to place a user: an explicit bucketing string as
/// it is, otherwise the flag key followed by the targeting key (UTF-8, no
/// separator); `None` when the targeting key is needed and absent.
///
/// This is flagd's v2 key. Its pending v3 hashes a CBOR encoding instead
/// (of the bucketing value, or of `[flag key, targeting key]`): that change
/// belongs here.
fn bucketing_bytes<'a>(
    explicit: Option<&'a str>,
    flag_key: &str,
    targeting_key: Option<&str>,
) -> Option<Cow<'a, [u8]>> {
    if let Some(value) = explicit {
        return Some(Cow::Borrowed(value.as_bytes()));
    }
    let targeting_key = targeting_key?;
    let mut key = Vec::with_capacity(flag_key.len() + targeting_key.len());
    key.extend_from_slice(flag_key.as_bytes());
    key.extend_from_slice(targeting_key.as_bytes());
    Some(Cow::Owned(key))
}

/// One distribution `[variant]` or `[variant, weight, ...]`: the variant and
/// its weight (negative clamped to 0), or `None` if malformed.
fn distribution(entry: &Value) -> Option<(&Value, u32)> {
    let Value::Array(items) = entry else {
        return None;
    };
    let (variant, rest) = items.split_first()?;
    if matches!(variant, Value::Array(_) | Value::Object(_)) {
        return None;
    }
    let weight = match rest.first() {
        None | Some(Value::Null) => 1,
        Some(Value::Number(weight)) => whole_weight(weight)?,
        Some(_) => return None,
    };
    Some((variant, weight))
}

/// A JSON number as a weight: whole (an integer, or a float with no
/// fractional part), negative clamped to 0, at most [`MAX_WEIGHT`].
fn whole_weight(number: &Number) -> Option<u32> {
    if let Some(int) = number.as_i64() {
        return if int < 0 {
            Some(0)
        } else {
            u32::try_from(int).ok().filter(|w| *w <= MAX_WEIGHT)
        };
    }
    if number.is_u64() {
        // Above `i64::MAX`, so above the limit.
        return None;
    }
    let float = number.as_f64()?;
    if float.fract() != 0.0 {
        // Also rejects infinities and NaN, whose `fract` is NaN.
        return None;
    }
    if float < 0.0 {
        Some(0)
    } else if float <= f64::from(MAX_WEIGHT) {
        // Whole and within `0..=MAX_WEIGHT`: the conversion is exact.
        Some(float as u32)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bucketing_bytes_explicit_default_and_missing() {
        assert_eq!(
            bucketing_bytes(Some("seed"), "flag", Some("user")).as_deref(),
            Some(&b"seed"[..])
        );
        assert_eq!(
            bucketing_bytes(None, "flag", Some("user")).as_deref(),
            Some(&b"flaguser"[..])
        );
        assert_eq!(
            bucketing_bytes(None, "flag", Some("")).as_deref(),
            Some(&b"flag"[..])
        );
        assert_eq!(bucketing_bytes(None, "flag", None), None);
    }

    #[test]
    fn whole_weight_limits() {
        let weight = |value: Value| match value {
            Value::Number(number) => whole_weight(&number),
            other => panic!("not a number: {other}"),
        };
        assert_eq!(weight(json!(0)), Some(0));
        assert_eq!(weight(json!(25)), Some(25));
        assert_eq!(weight(json!(25.0)), Some(25));
        assert_eq!(weight(json!(-3)), Some(0));
        assert_eq!(weight(json!(-3.0)), Some(0));
        assert_eq!(weight(json!(i64::MIN)), Some(0));
        assert_eq!(weight(json!(2_147_483_647)), Some(MAX_WEIGHT));
        assert_eq!(weight(json!(2_147_483_647.0)), Some(MAX_WEIGHT));
        assert_eq!(weight(json!(2_147_483_648_u64)), None);
        assert_eq!(weight(json!(2_147_483_648.0)), None);
        assert_eq!(weight(json!(u64::MAX)), None);
        assert_eq!(weight(json!(1e300)), None);
        assert_eq!(weight(json!(0.5)), None);
        assert_eq!(weight(json!(-0.5)), None);
    }

    #[test]
    fn distribution_shapes() {
        let bare = json!(["a"]);
        let weighted = json!(["a", 3, "ignored"]);
        assert_eq!(distribution(&bare), Some((&json!("a"), 1)));
        assert_eq!(distribution(&json!(["a", null])), Some((&json!("a"), 1)));
        assert_eq!(distribution(&weighted), Some((&json!("a"), 3)));
        assert_eq!(distribution(&json!([null, 2])), Some((&Value::Null, 2)));
        assert_eq!(distribution(&json!([])), None);
        assert_eq!(distribution(&json!("a")), None);
        assert_eq!(distribution(&json!([["a"], 1])), None);
        assert_eq!(distribution(&json!([{"a": 1}, 1])), None);
        assert_eq!(distribution(&json!(["a", "1"])), None);
        assert_eq!(distribution(&json!(["a", true])), None);
    }
}
