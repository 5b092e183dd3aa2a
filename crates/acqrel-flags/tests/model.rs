//! flagd's flag-definition format: what `FlagSet::parse` accepts, what it
//! rejects (with the exact JSON path), how `$ref` is resolved, how numbers
//! are classified, and that no input makes it panic.

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;

use acqrel_flags::{Flag, FlagSet, FlagState, LoadError, LoadWarning, Targeting, Value, ValueKind};
use common::Rng;
use serde_json::{Value as Json, json};

// ===== helpers =====

/// Parses a file that must load.
fn load(text: &str) -> (FlagSet, Vec<LoadWarning>) {
    match FlagSet::parse(text) {
        Ok(loaded) => loaded,
        Err(err) => panic!("expected the file to load, got {err}\n{}", excerpt(text)),
    }
}

/// Parses a file that must load without warnings.
fn load_clean(text: &str) -> FlagSet {
    let (flags, warnings) = load(text);
    assert_eq!(warnings, [], "{}", excerpt(text));
    flags
}

/// A file of one flag `f` with the given members (JSON object body).
fn one_flag(members: &str) -> String {
    format!(r#"{{"flags": {{"f": {{{members}}}}}}}"#)
}

/// A file of one enabled boolean flag `f` (variants `on` and `off`) with
/// this `targeting`, and `evaluators` as the file's `$evaluators`.
fn targeted(evaluators: &str, targeting: &str) -> String {
    format!(
        r#"{{"$evaluators": {evaluators}, "flags": {{"f": {{"state": "ENABLED", "variants": {{"on": true, "off": false}}, "targeting": {targeting}}}}}}}"#
    )
}

/// The resolved targeting of flag `f` of a file that must load.
fn targeting_of(text: &str) -> (Targeting, Vec<LoadWarning>) {
    let (flags, warnings) = load(text);
    (flag(&flags, "f").targeting().clone(), warnings)
}

fn flag<'a>(flags: &'a FlagSet, key: &str) -> &'a Flag {
    flags.get(key).unwrap_or_else(|| panic!("no flag {key:?}"))
}

/// The `LoadError::Shape` of a file that must be rejected, as
/// `(path, expected, found)`.
fn shape_error(text: &str) -> (String, String, String) {
    match FlagSet::parse(text) {
        Err(LoadError::Shape {
            path,
            expected,
            found,
        }) => (path, expected, found),
        other => panic!("expected a shape error, got {other:?}\n{}", excerpt(text)),
    }
}

/// Asserts that `text` is rejected with exactly this shape error.
fn assert_shape(text: &str, path: &str, expected: &str, found: &str) {
    assert_eq!(
        shape_error(text),
        (path.to_owned(), expected.to_owned(), found.to_owned()),
        "{}",
        excerpt(text)
    );
}

/// The start of `text`, for assertion messages (some inputs are huge).
fn excerpt(text: &str) -> String {
    const SHOWN: usize = 300;
    if text.chars().count() <= SHOWN {
        return text.to_owned();
    }
    let start: String = text.chars().take(SHOWN).collect();
    format!("{start}... ({} bytes)", text.len())
}

/// Asserts that `text` is not JSON, with this position and message.
fn assert_not_json(text: &str, line: usize, column: usize, message: &str) {
    assert_eq!(
        FlagSet::parse(text),
        Err(LoadError::NotJson {
            line,
            column,
            message: message.to_owned()
        }),
        "{}",
        excerpt(text)
    );
}

fn object(value: Json) -> serde_json::Map<String, Json> {
    match value {
        Json::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn variants(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

fn variants_of(flag: &Flag) -> Vec<(String, Value)> {
    flag.variants()
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

// ===== a complete file =====

const FULL: &str = r##"{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "metadata": {"flagSetId": "shop", "version": "7", "team": "web"},
  "$evaluators": {
    "is_staff": {"ends_with": [{"var": "email"}, "@example.com"]},
    "beta_users": {"in": [{"var": "targetingKey"}, ["alice", "bob"]]}
  },
  "flags": {
    "new-checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"or": [{"$ref": "is_staff"}, {"$ref": "beta_users"}]}, "on", null]},
      "metadata": {"team": "payments", "ticket": 1234, "experimental": true}
    },
    "banner_color": {
      "state": "ENABLED",
      "variants": {"red": "#ff0000", "green": "#00ff00"},
      "defaultVariant": "red",
      "targeting": {"fractional": [["red", 50], ["green", 50]]}
    },
    "max-items": {
      "state": "DISABLED",
      "variants": {"small": 10, "large": 1000},
      "defaultVariant": "small",
      "flagType": "integer",
      "description": "members flagd does not define are ignored"
    },
    "discount": {
      "state": "ENABLED",
      "variants": {"none": 0, "some": 0.15},
      "defaultVariant": null,
      "targeting": {}
    },
    "theme": {
      "state": "ENABLED",
      "variants": {
        "light": {"bg": "#fff", "fg": "#000", "sizes": [1, 2]},
        "dark": {"bg": "#000", "fg": "#fff", "sizes": []}
      }
    }
  },
  "x-unknown-top-level": [1, 2, 3]
}"##;

#[test]
fn full_file_loads_every_field() {
    let flags = load_clean(FULL);
    let set_metadata = object(json!({"flagSetId": "shop", "version": "7", "team": "web"}));
    assert_eq!(flags.metadata(), &set_metadata);
    assert_eq!(flags.len(), 5);
    assert!(!flags.is_empty());
    let keys: Vec<&str> = flags.iter().map(|f| f.key()).collect();
    assert_eq!(
        keys,
        [
            "banner_color",
            "discount",
            "max-items",
            "new-checkout",
            "theme"
        ]
    );

    let checkout = flag(&flags, "new-checkout");
    assert_eq!(checkout.key(), "new-checkout");
    assert_eq!(checkout.state(), FlagState::Enabled);
    assert_eq!(checkout.kind(), ValueKind::Bool);
    assert_eq!(
        variants_of(checkout),
        variants(&[("off", Value::Bool(false)), ("on", Value::Bool(true))])
    );
    assert_eq!(checkout.default_variant(), Some("off"));
    assert_eq!(checkout.default_value(), Some(&Value::Bool(false)));
    assert_eq!(
        checkout.targeting(),
        &Targeting::Rule(json!({"if": [
            {"or": [
                {"ends_with": [{"var": "email"}, "@example.com"]},
                {"in": [{"var": "targetingKey"}, ["alice", "bob"]]}
            ]},
            "on",
            null
        ]}))
    );
    assert_eq!(
        checkout.metadata(),
        &object(json!({
            "flagSetId": "shop", "version": "7", "team": "payments",
            "ticket": 1234, "experimental": true
        }))
    );

    let banner = flag(&flags, "banner_color");
    assert_eq!(banner.state(), FlagState::Enabled);
    assert_eq!(banner.kind(), ValueKind::String);
    assert_eq!(
        variants_of(banner),
        variants(&[
            ("green", Value::String("#00ff00".into())),
            ("red", Value::String("#ff0000".into())),
        ])
    );
    assert_eq!(banner.default_variant(), Some("red"));
    assert_eq!(
        banner.targeting(),
        &Targeting::Rule(json!({"fractional": [["red", 50], ["green", 50]]}))
    );
    assert_eq!(banner.metadata(), &set_metadata);

    let items = flag(&flags, "max-items");
    assert_eq!(items.state(), FlagState::Disabled);
    assert_eq!(items.kind(), ValueKind::Int);
    assert_eq!(
        variants_of(items),
        variants(&[("large", Value::Int(1000)), ("small", Value::Int(10))])
    );
    assert_eq!(items.default_value(), Some(&Value::Int(10)));
    assert_eq!(items.targeting(), &Targeting::Static);

    let discount = flag(&flags, "discount");
    assert_eq!(discount.kind(), ValueKind::Float);
    assert_eq!(
        variants_of(discount),
        variants(&[("none", Value::Float(0.0)), ("some", Value::Float(0.15))])
    );
    assert_eq!(discount.default_variant(), None);
    assert_eq!(discount.default_value(), None);
    assert_eq!(discount.targeting(), &Targeting::Static);

    let theme = flag(&flags, "theme");
    assert_eq!(theme.kind(), ValueKind::Object);
    assert_eq!(
        variants_of(theme),
        variants(&[
            (
                "dark",
                Value::Object(object(json!({"bg": "#000", "fg": "#fff", "sizes": []})))
            ),
            (
                "light",
                Value::Object(object(json!({"bg": "#fff", "fg": "#000", "sizes": [1, 2]})))
            ),
        ])
    );
    assert_eq!(theme.default_variant(), None);
    assert_eq!(theme.targeting(), &Targeting::Static);

    assert!(flags.get("nope").is_none());
    // Both iterators, owned and borrowed, give the same flags in key order.
    let borrowed: Vec<String> = (&flags).into_iter().map(|f| f.key().to_owned()).collect();
    let owned: Vec<String> = flags
        .clone()
        .into_iter()
        .map(|f| f.key().to_owned())
        .collect();
    assert_eq!(borrowed, owned);
    assert_eq!(borrowed, keys);
}

#[test]
fn empty_flags_object_is_an_empty_set() {
    let flags = load_clean(r#"{"flags": {}}"#);
    assert!(flags.is_empty());
    assert_eq!(flags.len(), 0);
    assert_eq!(flags.iter().count(), 0);
    assert_eq!(flags, FlagSet::default());
}

// ===== rejected files =====

#[test]
fn top_level_shape_errors_name_their_path() {
    assert_shape(
        "[]",
        "$",
        r#"an object with a "flags" member"#,
        "an empty array",
    );
    assert_shape(
        r#""flags""#,
        "$",
        r#"an object with a "flags" member"#,
        r#"the string "flags""#,
    );
    assert_shape(
        "{}",
        "$.flags",
        "an object of flags",
        "nothing (the member is missing)",
    );
    assert_shape(
        r#"{"flags": [{"key": "f"}]}"#,
        "$.flags",
        "an object of flags",
        "an array",
    );
    assert_shape(
        r#"{"flags": null}"#,
        "$.flags",
        "an object of flags",
        "null",
    );
    assert_shape(
        r#"{"flags": {}, "$evaluators": ["x"]}"#,
        r#"$["$evaluators"]"#,
        "an object of named rules",
        "an array",
    );
    assert_shape(
        r#"{"flags": {}, "metadata": "shop"}"#,
        "$.metadata",
        "an object of metadata (string, number or boolean values)",
        r#"the string "shop""#,
    );
    assert_shape(
        r#"{"flags": {}, "metadata": {"owners": ["a", "b"]}}"#,
        "$.metadata.owners",
        "a string, number or boolean",
        "an array",
    );
    assert_shape(
        r#"{"flags": {}, "metadata": {"release date": null}}"#,
        r#"$.metadata["release date"]"#,
        "a string, number or boolean",
        "null",
    );
}

#[test]
fn flag_shape_errors_name_their_path() {
    assert_shape(
        r#"{"flags": {"my-flag": true}}"#,
        r#"$.flags["my-flag"]"#,
        "a flag object",
        "the boolean true",
    );
    assert_shape(
        r#"{"flags": {"": {"state": "ENABLED", "variants": {"a": 1}}}}"#,
        r#"$.flags[""]"#,
        "a non-empty flag key",
        "an empty key",
    );
    // state
    assert_shape(
        &one_flag(r#""variants": {"a": 1}"#),
        "$.flags.f.state",
        r#""ENABLED" or "DISABLED""#,
        "nothing (the member is missing)",
    );
    assert_shape(
        &one_flag(r#""state": "enabled", "variants": {"a": 1}"#),
        "$.flags.f.state",
        r#""ENABLED" or "DISABLED""#,
        r#"the string "enabled""#,
    );
    assert_shape(
        &one_flag(r#""state": true, "variants": {"a": 1}"#),
        "$.flags.f.state",
        r#""ENABLED" or "DISABLED""#,
        "the boolean true",
    );
    // variants
    assert_shape(
        &one_flag(r#""state": "ENABLED""#),
        "$.flags.f.variants",
        "an object of variants",
        "nothing (the member is missing)",
    );
    assert_shape(
        &one_flag(r#""state": "ENABLED", "variants": {}"#),
        "$.flags.f.variants",
        "at least one variant",
        "an empty object",
    );
    assert_shape(
        &one_flag(r#""state": "ENABLED", "variants": [true, false]"#),
        "$.flags.f.variants",
        "an object of variants",
        "an array",
    );
    assert_shape(
        &one_flag(r#""state": "ENABLED", "variants": {"": 1}"#),
        r#"$.flags.f.variants[""]"#,
        "a non-empty variant name",
        "an empty name",
    );
    assert_shape(
        &one_flag(r#""state": "ENABLED", "variants": {"on": null}"#),
        "$.flags.f.variants.on",
        "a boolean, string, number or object",
        "null",
    );
    assert_shape(
        &one_flag(r#""state": "ENABLED", "variants": {"on-list": [1, 2]}"#),
        r#"$.flags.f.variants["on-list"]"#,
        "a boolean, string, number or object",
        "an array",
    );
    // defaultVariant
    assert_shape(
        &one_flag(
            r#""state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "maybe""#,
        ),
        "$.flags.f.defaultVariant",
        r#"the name of a variant ("off", "on")"#,
        r#"the string "maybe""#,
    );
    assert_shape(
        &one_flag(r#""state": "ENABLED", "variants": {"on": true}, "defaultVariant": 1"#),
        "$.flags.f.defaultVariant",
        "the name of a variant (a string) or null",
        "the number 1",
    );
    assert_shape(
        &one_flag(r#""state": "ENABLED", "variants": {"on": true}, "defaultVariant": true"#),
        "$.flags.f.defaultVariant",
        "the name of a variant (a string) or null",
        "the boolean true",
    );
    // metadata
    assert_shape(
        &one_flag(r#""state": "ENABLED", "variants": {"on": true}, "metadata": ["owner"]"#),
        "$.flags.f.metadata",
        "an object of metadata (string, number or boolean values)",
        "an array",
    );
    assert_shape(
        &one_flag(
            r#""state": "ENABLED", "variants": {"on": true}, "metadata": {"owner": {"team": "x"}}"#,
        ),
        "$.flags.f.metadata.owner",
        "a string, number or boolean",
        "an object",
    );
}

#[test]
fn default_variant_error_lists_at_most_eight_names() {
    let names: Vec<String> = (0..10).map(|i| format!(r#""v{i}": {i}"#)).collect();
    let text = one_flag(&format!(
        r#""state": "ENABLED", "variants": {{{}}}, "defaultVariant": "v10""#,
        names.join(", ")
    ));
    assert_shape(
        &text,
        "$.flags.f.defaultVariant",
        r#"the name of a variant ("v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", ...)"#,
        r#"the string "v10""#,
    );
}

#[test]
fn variants_of_mixed_types_are_rejected_naming_both() {
    let cases = [
        (r#"{"a": true, "b": "yes"}"#, "b", "a boolean", "a string"),
        (r#"{"a": "x", "b": 1}"#, "b", "a string", "a number"),
        (r#"{"a": 1.5, "b": {"x": 1}}"#, "b", "a number", "an object"),
        (r#"{"a": {}, "b": false}"#, "b", "an object", "a boolean"),
    ];
    for (variants, bad, first_family, found) in cases {
        assert_shape(
            &one_flag(&format!(r#""state": "ENABLED", "variants": {variants}"#)),
            &format!("$.flags.f.variants.{bad}"),
            &format!(r#"{first_family}, like variant "a" (all variants of a flag have one type)"#),
            found,
        );
    }
}

#[test]
fn long_strings_are_cut_in_messages() {
    let long = "x".repeat(50);
    assert_shape(
        &one_flag(&format!(r#""state": "{long}", "variants": {{"a": 1}}"#)),
        "$.flags.f.state",
        r#""ENABLED" or "DISABLED""#,
        &format!(r#"the string "{}"..."#, "x".repeat(40)),
    );
}

#[test]
fn shape_error_display_and_path() {
    let err = FlagSet::parse(&one_flag(r#""state": "ENABLED", "variants": {}"#)).unwrap_err();
    assert_eq!(err.path(), Some("$.flags.f.variants"));
    assert_eq!(
        err.to_string(),
        "$.flags.f.variants: expected at least one variant, found an empty object"
    );
}

#[test]
fn text_that_is_not_json_reports_line_and_column() {
    assert_not_json("", 1, 0, "EOF while parsing a value");
    assert_not_json("nope", 1, 2, "expected ident");
    assert_not_json(r#"{"flags": {}"#, 1, 12, "EOF while parsing an object");
    assert_not_json(r#"{"flags": {}} x"#, 1, 15, "trailing characters");
    assert_not_json(
        "{\n  \"flags\": {\n    \"f\": {\"state\": \"ENABLED\",}\n  }\n}",
        3,
        30,
        "trailing comma",
    );
    // Past f64's range: serde_json refuses the number itself. (With its
    // `arbitrary_precision` feature, which no crate of this workspace turns
    // on, it would parse, and the load would fail on the variant instead:
    // `$.flags.f.variants.a: expected a finite number`.)
    assert_not_json(
        &one_flag(r#""state": "ENABLED", "variants": {"a": 1e400}"#),
        1,
        60,
        "number out of range",
    );
    let err = FlagSet::parse("nope").unwrap_err();
    assert_eq!(err.path(), None);
    assert_eq!(
        err.to_string(),
        "not JSON: expected ident at line 1, column 2"
    );
}

/// The prefix of a file whose flag `f`'s targeting follows.
const TARGETING_PREFIX: &str =
    r#"{"flags":{"f":{"state":"ENABLED","variants":{"a":true},"targeting":"#;

/// A file whose targeting is `depth` nested arrays around `"a"`.
fn nested_targeting(depth: usize) -> String {
    format!(
        "{TARGETING_PREFIX}{}\"a\"{}}}}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[test]
fn deep_nesting_is_a_load_error_not_a_crash() {
    // serde_json allows 127 nested arrays and objects; the file's own three
    // objects leave 124 for the targeting.
    let (targeting, warnings) = targeting_of(&nested_targeting(124));
    assert_eq!(warnings, []);
    let mut expected = json!("a");
    for _ in 0..124 {
        expected = json!([expected]);
    }
    assert_eq!(targeting, Targeting::Rule(expected));

    // One more, or a hundred thousand, stops at the 125th `[`.
    let column = TARGETING_PREFIX.len() + 125;
    for depth in [125, 100_000] {
        assert_not_json(
            &nested_targeting(depth),
            1,
            column,
            "recursion limit exceeded",
        );
    }
    // Objects nest the same way, and so do evaluators.
    let deep_objects = format!(
        "{TARGETING_PREFIX}{}1{}}}}}}}",
        r#"{"and":"#.repeat(100_000),
        "}".repeat(100_000)
    );
    assert_not_json(
        &deep_objects,
        1,
        TARGETING_PREFIX.len() + 124 * r#"{"and":"#.len() + 1,
        "recursion limit exceeded",
    );
    // Two objects above the evaluator leave it 125 arrays.
    let evaluator_prefix = r#"{"flags":{},"$evaluators":{"e":"#;
    let deep_evaluator = format!(
        "{evaluator_prefix}{}1{}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_not_json(
        &deep_evaluator,
        1,
        evaluator_prefix.len() + 126,
        "recursion limit exceeded",
    );
}

// ===== numbers =====

/// The single variant `v` of a flag whose variants are `variants`.
fn number_variant(variants: &str) -> (Value, ValueKind) {
    let flags = load_clean(&one_flag(&format!(
        r#""state": "ENABLED", "variants": {variants}"#
    )));
    let f = flag(&flags, "f");
    (f.variant("v").cloned().unwrap(), f.kind())
}

#[test]
fn numbers_are_classified_by_how_they_are_written() {
    // No fraction or exponent, in i64's range: an integer.
    assert_eq!(
        number_variant(r#"{"v": 1}"#),
        (Value::Int(1), ValueKind::Int)
    );
    assert_eq!(
        number_variant(r#"{"v": -9223372036854775808}"#),
        (Value::Int(i64::MIN), ValueKind::Int)
    );
    // Past JavaScript's safe range (flagd's schema rejects it, Go's flagd
    // rounds it to ...992): kept exact.
    assert_eq!(
        number_variant(r#"{"v": 9007199254740993}"#),
        (Value::Int(9_007_199_254_740_993), ValueKind::Int)
    );
    // Written with a fraction or an exponent: a float, even when whole.
    assert_eq!(
        number_variant(r#"{"v": 1.0}"#),
        (Value::Float(1.0), ValueKind::Float)
    );
    assert_eq!(
        number_variant(r#"{"v": 1e3}"#),
        (Value::Float(1000.0), ValueKind::Float)
    );
    assert_eq!(
        number_variant(r#"{"v": 25E-1}"#),
        (Value::Float(2.5), ValueKind::Float)
    );
    // Negative zero is a float that keeps its sign, however it is written
    // (serde_json reads `-0` as a float for that reason).
    for zero in ["-0.0", "-0"] {
        match number_variant(&format!(r#"{{"v": {zero}}}"#)) {
            (Value::Float(zero), ValueKind::Float) => {
                assert_eq!(zero, 0.0);
                assert!(zero.is_sign_negative());
            }
            other => panic!("{zero}: {other:?}"),
        }
    }
    assert_eq!(
        number_variant(r#"{"v": 0}"#),
        (Value::Int(0), ValueKind::Int)
    );
    // An integer past i64::MAX: a float.
    assert_eq!(
        number_variant(r#"{"v": 9223372036854775808}"#),
        (Value::Float(9_223_372_036_854_775_808.0), ValueKind::Float)
    );
}

#[test]
fn one_float_variant_makes_every_number_variant_a_float() {
    let flags = load_clean(&one_flag(
        r#""state": "ENABLED", "variants": {"a": 1, "b": 2.5, "c": -3}, "defaultVariant": "a""#,
    ));
    let f = flag(&flags, "f");
    assert_eq!(f.kind(), ValueKind::Float);
    assert_eq!(
        variants_of(f),
        variants(&[
            ("a", Value::Float(1.0)),
            ("b", Value::Float(2.5)),
            ("c", Value::Float(-3.0)),
        ])
    );
    assert_eq!(f.default_value(), Some(&Value::Float(1.0)));
}

// ===== defaultVariant, targeting, metadata =====

#[test]
fn absent_and_null_default_variants_are_none() {
    let text = r#"{"flags": {
        "absent":  {"state": "ENABLED", "variants": {"on": true}},
        "null":    {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": null},
        "present": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}
    }}"#;
    let flags = load_clean(text);
    assert_eq!(flag(&flags, "absent").default_variant(), None);
    assert_eq!(flag(&flags, "absent").default_value(), None);
    assert_eq!(flag(&flags, "null").default_variant(), None);
    assert_eq!(flag(&flags, "null").default_value(), None);
    assert_eq!(flag(&flags, "present").default_variant(), Some("on"));
    assert_eq!(
        flag(&flags, "present").default_value(),
        Some(&Value::Bool(true))
    );
}

#[test]
fn absent_null_and_empty_targeting_are_static() {
    for targeting in [
        "",
        r#", "targeting": null"#,
        r#", "targeting": {}"#,
        r#", "targeting": { }"#,
    ] {
        let text = one_flag(&format!(
            r#""state": "ENABLED", "variants": {{"on": true}}{targeting}"#
        ));
        assert_eq!(
            targeting_of(&text),
            (Targeting::Static, vec![]),
            "{}",
            excerpt(&text)
        );
    }
    // A `$ref` to an empty rule is static too, as after flagd's substitution.
    assert_eq!(
        targeting_of(&targeted(r#"{"nothing": {}}"#, r#"{"$ref": "nothing"}"#)),
        (Targeting::Static, vec![])
    );
    assert_eq!(
        targeting_of(&targeted(r#"{"nothing": null}"#, r#"{"$ref": "nothing"}"#)),
        (Targeting::Static, vec![])
    );
    // A literal is a JsonLogic rule (it evaluates to itself).
    assert_eq!(
        targeting_of(&targeted("{}", r#""on""#)),
        (Targeting::Rule(json!("on")), vec![])
    );
}

#[test]
fn flag_metadata_is_merged_over_the_flag_sets() {
    let text = r#"{
        "metadata": {"team": "web", "version": 3, "beta": false, "region": "eu"},
        "flags": {
            "own": {"state": "ENABLED", "variants": {"on": true},
                    "metadata": {"team": "payments", "beta": true, "owner": "ana", "version": 3.5}},
            "inherits": {"state": "ENABLED", "variants": {"on": true}},
            "empty": {"state": "ENABLED", "variants": {"on": true}, "metadata": {}}
        }
    }"#;
    let flags = load_clean(text);
    let set = object(json!({"team": "web", "version": 3, "beta": false, "region": "eu"}));
    assert_eq!(flags.metadata(), &set);
    assert_eq!(
        flag(&flags, "own").metadata(),
        &object(json!({
            "team": "payments", "version": 3.5, "beta": true, "region": "eu", "owner": "ana"
        }))
    );
    assert_eq!(flag(&flags, "inherits").metadata(), &set);
    assert_eq!(flag(&flags, "empty").metadata(), &set);

    // Without flag-set metadata a flag has only its own.
    let flags = load_clean(&one_flag(
        r#""state": "ENABLED", "variants": {"on": true}, "metadata": {"owner": "ana"}"#,
    ));
    assert_eq!(
        flag(&flags, "f").metadata(),
        &object(json!({"owner": "ana"}))
    );
    assert!(flags.metadata().is_empty());
}

// ===== $ref =====

const STAFF: &str = r#"{"is_staff": {"ends_with": [{"var": "email"}, "@example.com"]}}"#;

#[test]
fn ref_resolves_whatever_the_whitespace() {
    let expected = Targeting::Rule(json!({"if": [
        {"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"
    ]}));
    let spellings = [
        r#"{"$ref":"is_staff"}"#,
        r#"{"$ref": "is_staff"}"#,
        r#"{"$ref" : "is_staff"}"#,
        r#"{ "$ref"   :   "is_staff" }"#,
        "{\n  \"$ref\"\n  :\n  \"is_staff\"\n}",
        "{\t\"$ref\":\t\"is_staff\"\r\n}",
        // An escaped key is the same key once parsed.
        r#"{"\u0024ref": "is_staff"}"#,
    ];
    for spelling in spellings {
        let text = targeted(STAFF, &format!(r#"{{"if": [{spelling}, "on", "off"]}}"#));
        assert_eq!(
            targeting_of(&text),
            (expected.clone(), vec![]),
            "{}",
            excerpt(&text)
        );
    }
}

#[test]
fn ref_as_the_whole_rule_and_repeated() {
    let text = targeted(STAFF, r#"{"$ref": "is_staff"}"#);
    assert_eq!(
        targeting_of(&text),
        (
            Targeting::Rule(json!({"ends_with": [{"var": "email"}, "@example.com"]})),
            vec![]
        )
    );
    let text = targeted(
        STAFF,
        r#"{"and": [{"$ref": "is_staff"}, {"!": {"$ref": "is_staff"}}]}"#,
    );
    let staff = json!({"ends_with": [{"var": "email"}, "@example.com"]});
    assert_eq!(
        targeting_of(&text),
        (
            Targeting::Rule(json!({"and": [staff, {"!": staff}]})),
            vec![]
        )
    );
}

#[test]
fn nested_refs_are_resolved() {
    let evaluators = r#"{
        "is_staff": {"ends_with": [{"var": "email"}, "@example.com"]},
        "is_beta": {"in": [{"var": "targetingKey"}, ["alice", "bob"]]},
        "early": {"or": [{"$ref": "is_staff"}, {"$ref": "is_beta"}]},
        "alias": {"$ref": "early"},
        "alias_of_alias": {"$ref": "alias"},
        "on_variant": "on"
    }"#;
    let text = targeted(
        evaluators,
        r#"{"if": [{"$ref": "alias_of_alias"}, {"$ref": "on_variant"}, null]}"#,
    );
    assert_eq!(
        targeting_of(&text),
        (
            Targeting::Rule(json!({"if": [
                {"or": [
                    {"ends_with": [{"var": "email"}, "@example.com"]},
                    {"in": [{"var": "targetingKey"}, ["alice", "bob"]]}
                ]},
                "on",
                null
            ]})),
            vec![]
        )
    );
}

#[test]
fn refs_are_resolved_in_targeting_only() {
    // Variant values and metadata are data: a `$ref` there stays as written.
    let text = r#"{"$evaluators": {"x": {"var": "y"}}, "flags": {"f": {
        "state": "ENABLED",
        "variants": {"a": {"$ref": "x"}},
        "metadata": {"$ref": "x"}
    }}}"#;
    let flags = load_clean(text);
    let f = flag(&flags, "f");
    assert_eq!(
        f.variant("a"),
        Some(&Value::Object(object(json!({"$ref": "x"}))))
    );
    assert_eq!(f.metadata(), &object(json!({"$ref": "x"})));
}

/// The one warning of a file whose flag `f`'s targeting is invalid,
/// checked against the flag's `Targeting::Invalid` reason.
fn invalid(text: &str) -> LoadWarning {
    let (targeting, warnings) = targeting_of(text);
    assert_eq!(warnings.len(), 1, "{}", excerpt(text));
    let warning = warnings[0].clone();
    assert_eq!(warning.flag_key(), "f");
    assert_eq!(
        targeting,
        Targeting::Invalid {
            reason: warning.reason().to_owned()
        }
    );
    warning
}

fn assert_invalid(text: &str, path: &str, reason: &str) {
    let warning = invalid(text);
    assert_eq!(
        (warning.path(), warning.reason()),
        (path, reason),
        "{}",
        excerpt(text)
    );
}

#[test]
fn unknown_ref_loads_the_flag_with_a_warning() {
    let text = r#"{
        "$evaluators": {"is_staff": {"==": [1, 1]}},
        "flags": {
            "f": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                  "targeting": {"if": [{"$ref": "is_stuff"}, "on", "off"]}},
            "g": {"state": "ENABLED", "variants": {"on": true, "off": false},
                  "targeting": {"if": [{"$ref": "is_staff"}, "on", "off"]}}
        }
    }"#;
    assert_invalid(
        text,
        "$.flags.f.targeting.if[0]",
        r#"unknown $ref "is_stuff": $evaluators has no such entry"#,
    );
    // The flag is otherwise whole, and the other flag is unaffected.
    let (flags, warnings) = load(text);
    assert_eq!(flags.len(), 2);
    let f = flag(&flags, "f");
    assert_eq!(f.default_value(), Some(&Value::Bool(false)));
    assert_eq!(
        flag(&flags, "g").targeting(),
        &Targeting::Rule(json!({"if": [{"==": [1, 1]}, "on", "off"]}))
    );
    assert_eq!(
        warnings[0].to_string(),
        r#"$.flags.f.targeting.if[0]: flag "f" will resolve with PARSE_ERROR: unknown $ref "is_stuff": $evaluators has no such entry"#
    );

    // Without any `$evaluators` at all.
    assert_invalid(
        &one_flag(r#""state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "x"}"#),
        "$.flags.f.targeting",
        r#"unknown $ref "x": $evaluators has no such entry"#,
    );
    // Inside an evaluator: the path is the evaluator's.
    assert_invalid(
        &targeted(
            r#"{"outer": {"and": [true, {"$ref": "inner"}]}}"#,
            r#"{"$ref": "outer"}"#,
        ),
        r#"$["$evaluators"].outer.and[1]"#,
        r#"unknown $ref "inner": $evaluators has no such entry"#,
    );
}

#[test]
fn ref_cycles_make_targeting_invalid() {
    let evaluators = r#"{
        "a": {"or": [{"var": "x"}, {"$ref": "b"}]},
        "b": {"$ref": "a"},
        "self": {"!": {"$ref": "self"}},
        "uses_cycle": {"and": [{"$ref": "b"}]}
    }"#;
    assert_invalid(
        &targeted(evaluators, r#"{"$ref": "a"}"#),
        r#"$["$evaluators"].b"#,
        "$ref cycle: a -> b -> a",
    );
    assert_invalid(
        &targeted(evaluators, r#"{"$ref": "b"}"#),
        r#"$["$evaluators"].a.or[1]"#,
        "$ref cycle: b -> a -> b",
    );
    assert_invalid(
        &targeted(evaluators, r#"{"if": [{"$ref": "self"}, "on", "off"]}"#),
        r#"$["$evaluators"].self["!"]"#,
        "$ref cycle: self -> self",
    );
    assert_invalid(
        &targeted(evaluators, r#"{"$ref": "uses_cycle"}"#),
        r#"$["$evaluators"].a.or[1]"#,
        "$ref cycle: b -> a -> b",
    );
}

#[test]
fn every_flag_that_reaches_a_broken_evaluator_is_warned_about() {
    let text = r#"{
        "$evaluators": {"loop": {"$ref": "loop"}},
        "flags": {
            "a": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "loop"}},
            "b": {"state": "DISABLED", "variants": {"on": true}, "targeting": {"!": {"$ref": "loop"}}},
            "c": {"state": "ENABLED", "variants": {"on": true}}
        }
    }"#;
    let (flags, warnings) = load(text);
    let reason = "$ref cycle: loop -> loop";
    let mut keys: Vec<(&str, &str, &str)> = warnings
        .iter()
        .map(|w| (w.flag_key(), w.path(), w.reason()))
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            ("a", r#"$["$evaluators"].loop"#, reason),
            ("b", r#"$["$evaluators"].loop"#, reason),
        ]
    );
    for key in ["a", "b"] {
        assert_eq!(
            flag(&flags, key).targeting(),
            &Targeting::Invalid {
                reason: reason.to_owned()
            }
        );
    }
    assert_eq!(flag(&flags, "c").targeting(), &Targeting::Static);
}

#[test]
fn malformed_refs_make_targeting_invalid() {
    assert_invalid(
        &targeted(STAFF, r#"{"if": [{"$ref": 3}, "on", "off"]}"#),
        r#"$.flags.f.targeting.if[0]["$ref"]"#,
        "$ref must be a string naming an evaluator, found the number 3",
    );
    assert_invalid(
        &targeted(STAFF, r#"{"$ref": "is_staff", "var": "x"}"#),
        "$.flags.f.targeting",
        "an object with $ref must have no other member, this one has 2",
    );
    assert_invalid(
        &targeted(r#"{"bad": {"$ref": null}}"#, r#"{"$ref": "bad"}"#),
        r#"$["$evaluators"].bad["$ref"]"#,
        "$ref must be a string naming an evaluator, found null",
    );
}

#[test]
fn expansion_past_the_nesting_limit_is_invalid() {
    // An evaluator 100 arrays deep, used 30 arrays deep: 130 > 128.
    let evaluators = format!(r#"{{"deep": {}1{}}}"#, "[".repeat(100), "]".repeat(100));
    let targeting = format!(r#"{}{{"$ref": "deep"}}{}"#, "[".repeat(30), "]".repeat(30));
    let path = format!("$.flags.f.targeting{}", "[0]".repeat(30));
    assert_invalid(
        &targeted(&evaluators, &targeting),
        &path,
        r#"the rule nests deeper than 128 arrays and objects once $ref "deep" is expanded"#,
    );
    // 28 arrays deep: exactly 128, allowed.
    let targeting = format!(r#"{}{{"$ref": "deep"}}{}"#, "[".repeat(28), "]".repeat(28));
    let (resolved, warnings) = targeting_of(&targeted(&evaluators, &targeting));
    assert_eq!(warnings, []);
    let mut expected = json!(1);
    for _ in 0..128 {
        expected = json!([expected]);
    }
    assert_eq!(resolved, Targeting::Rule(expected));

    // Chained evaluators can nest past the limit though each is shallow.
    let mut evaluators = vec![r#""e0": 1"#.to_owned()];
    for i in 1..=5 {
        evaluators.push(format!(
            r#""e{i}": {}{{"$ref": "e{}"}}{}"#,
            "[".repeat(30),
            i - 1,
            "]".repeat(30)
        ));
    }
    let evaluators = format!("{{{}}}", evaluators.join(", "));
    assert_invalid(
        &targeted(&evaluators, r#"{"$ref": "e5"}"#),
        &format!(r#"$["$evaluators"].e5{}"#, "[0]".repeat(30)),
        r#"the rule nests deeper than 128 arrays and objects once $ref "e4" is expanded"#,
    );
}

#[test]
fn exponential_expansion_stops_at_the_budget() {
    // e0 is one value; e(k) is an array of two references to e(k-1), so it
    // expands to 2^(k+1) - 1 values: e40 would be two trillion.
    const LEVELS: u32 = 40;
    let mut evaluators = vec![r#""e0": "x""#.to_owned()];
    for k in 1..=LEVELS {
        evaluators.push(format!(
            r#""e{k}": [{{"$ref": "e{0}"}}, {{"$ref": "e{0}"}}]"#,
            k - 1
        ));
    }
    let text = targeted(
        &format!("{{{}}}", evaluators.join(", ")),
        &format!(r#"{{"$ref": "e{LEVELS}"}}"#),
    );
    let budget = (1usize << 20) + 4 * text.len();

    // Where it stops: evaluators are resolved from e1 up, each copying its
    // two references in order, until a copy would pass the budget.
    let (mut spent, mut stop) = (0usize, None);
    'levels: for k in 1..=LEVELS {
        let copied = (1usize << k) - 1; // values in e(k-1)
        for slot in 0..2 {
            if spent + copied > budget {
                stop = Some((k, slot));
                break 'levels;
            }
            spent += copied;
        }
    }
    let (k, slot) = stop.expect("the budget is exceeded before e40");
    assert_invalid(
        &text,
        &format!(r#"$["$evaluators"].e{k}[{slot}]"#),
        &format!(
            r#"expanding $ref "e{}" goes past this file's budget of {budget} copied JSON values"#,
            k - 1
        ),
    );
}

#[test]
fn evaluators_no_flag_uses_are_not_examined() {
    let text = r#"{
        "$evaluators": {"broken": {"$ref": "missing"}, "loop": {"$ref": "loop"}},
        "flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}
    }"#;
    let flags = load_clean(text);
    assert_eq!(flag(&flags, "f").targeting(), &Targeting::Static);
}

// ===== no input panics =====

/// This file's inputs, from the shared fixed-seed generator.
impl Rng {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &[
    "a", "on", "off", "f", "my-flag", "", "$ref", "e0", "e1", "x y",
];

/// A random JSON value at most `depth` levels deep, biased towards the
/// pieces of a flag file (variants, states, `$ref`s).
fn random_value(rng: &mut Rng, depth: usize) -> String {
    let scalars = [
        "null",
        "true",
        "false",
        "0",
        "-0",
        "1",
        "1.5",
        "-0.0",
        "1e3",
        "9007199254740993",
        "18446744073709551616",
        r#""ENABLED""#,
        r#""DISABLED""#,
        r#""on""#,
        r#""""#,
    ];
    match rng.below(if depth == 0 { 3 } else { 7 }) {
        0 | 1 => rng.pick(&scalars).to_owned(),
        2 => format!(r#"{{"$ref": "{}"}}"#, rng.pick(NAMES)),
        3 | 4 => {
            let members: Vec<String> = (0..rng.below(4))
                .map(|_| {
                    let key = rng.pick(&[
                        "state",
                        "variants",
                        "defaultVariant",
                        "targeting",
                        "metadata",
                        "$ref",
                        "on",
                        "off",
                        "var",
                        "if",
                    ]);
                    format!(r#""{key}": {}"#, random_value(rng, depth - 1))
                })
                .collect();
            format!("{{{}}}", members.join(", "))
        }
        _ => {
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect();
            format!("[{}]", items.join(", "))
        }
    }
}

/// A random flag file: well-formed JSON, each flag well-formed seven times
/// in eight (so that many files load and reach `$ref` resolution) and
/// otherwise carrying one random mistake.
fn random_file(rng: &mut Rng) -> String {
    const VARIANTS: &[(&str, &str)] = &[
        (r#"{"on": true, "off": false}"#, r#""on""#),
        (r#"{"a": 1, "b": 2.5}"#, r#""b""#),
        (r#"{"a": {"x": 1}, "b": {"y": "s"}}"#, r#""a""#),
        (r#"{"red": "f00"}"#, "null"),
    ];
    let flags: Vec<String> = (0..rng.below(4))
        .map(|i| {
            let (variants, default) = VARIANTS[rng.below(VARIANTS.len())];
            let targeting = match rng.below(3) {
                0 => format!(r#"{{"$ref": "{}"}}"#, rng.pick(NAMES)),
                _ => random_value(rng, 4),
            };
            let mut fields = [
                format!("flag-{i}"),
                r#""ENABLED""#.to_owned(),
                variants.to_owned(),
                rng.pick(&[default, "null"]).to_owned(),
            ];
            if rng.below(8) == 0 {
                // One mistake: an empty key, a bad state, bad variants or a
                // default naming no variant.
                let slot = rng.below(fields.len());
                fields[slot] = match slot {
                    0 => String::new(),
                    1 => rng.pick(&[r#""enabled""#, "1", "null"]).to_owned(),
                    2 => random_value(rng, 2),
                    _ => rng.pick(&[r#""zzz""#, "7"]).to_owned(),
                };
            }
            let [key, state, variants, default] = fields;
            format!(
                r#""{key}": {{"state": {state}, "variants": {variants}, "defaultVariant": {default}, "targeting": {targeting}}}"#
            )
        })
        .collect();
    let evaluators: Vec<String> = (0..rng.below(4))
        .map(|_| format!(r#""{}": {}"#, rng.pick(NAMES), random_value(rng, 4)))
        .collect();
    let metadata = match rng.below(8) {
        0 => r#"{"bad": []}"#,
        1..=3 => "{}",
        _ => r#"{"team": "web", "version": 2}"#,
    };
    format!(
        r#"{{"$evaluators": {{{}}}, "metadata": {metadata}, "flags": {{{}}}}}"#,
        evaluators.join(", "),
        flags.join(", ")
    )
}

/// `text` with a few random byte-level edits (always valid UTF-8).
fn mutate(rng: &mut Rng, text: &str) -> String {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "null",
        "1e999",
        "-",
        "$ref",
        "\u{e9}",
        "\u{1F600}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ];
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 => chars
                .splice(at..at, rng.pick(PIECES).chars())
                .for_each(drop),
            2 => chars.truncate(at),
            _ if at < chars.len() => {
                let end = (at + rng.below(16)).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, copy).for_each(drop);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Whether any object in `value` still has a `"$ref"` member.
fn has_ref(value: &Json) -> bool {
    match value {
        Json::Object(map) => map.contains_key("$ref") || map.values().any(has_ref),
        Json::Array(items) => items.iter().any(has_ref),
        _ => false,
    }
}

/// What a successful load guarantees, checked on an arbitrary result.
fn check_invariants(text: &str, flags: &FlagSet, warnings: &[LoadWarning]) {
    let mut invalid = 0;
    for f in flags {
        assert!(!f.key().is_empty(), "{}", excerpt(text));
        assert!(!f.variants().is_empty(), "{}", excerpt(text));
        for value in f.variants().values() {
            assert_eq!(value.kind(), f.kind(), "{}", excerpt(text));
        }
        if let Some(name) = f.default_variant() {
            assert!(f.variant(name).is_some(), "{}", excerpt(text));
        }
        if let Targeting::Rule(rule) = f.targeting() {
            assert!(!has_ref(rule), "{}", excerpt(text));
        }
        if let Targeting::Invalid { reason } = f.targeting() {
            invalid += 1;
            let warning = warnings
                .iter()
                .find(|w| w.flag_key() == f.key())
                .unwrap_or_else(|| panic!("no warning for {}: {}", f.key(), excerpt(text)));
            assert_eq!(warning.reason(), reason, "{}", excerpt(text));
            assert!(warning.path().starts_with('$'), "{}", excerpt(text));
        }
    }
    assert_eq!(warnings.len(), invalid, "{}", excerpt(text));
}

#[test]
fn random_and_mutated_files_never_panic() {
    const CASES: usize = 2_000;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = [FULL.to_owned(), nested_targeting(120)];
    let (mut loaded, mut warned, mut not_json, mut shape) = (0, 0, 0, 0);
    for case in 0..CASES {
        let text = match case % 4 {
            0 | 1 => random_file(&mut rng),
            2 => {
                let base = random_file(&mut rng);
                mutate(&mut rng, &base)
            }
            _ => {
                let base = &seeds[rng.below(seeds.len())];
                mutate(&mut rng, base)
            }
        };
        let result = FlagSet::parse(&text);
        // Parsing is a function of the text.
        assert_eq!(result, FlagSet::parse(&text), "{}", excerpt(&text));
        match result {
            Ok((flags, warnings)) => {
                loaded += 1;
                if !warnings.is_empty() {
                    warned += 1;
                }
                check_invariants(&text, &flags, &warnings);
            }
            Err(LoadError::NotJson { line, .. }) => {
                not_json += 1;
                assert!(line >= 1, "{}", excerpt(&text));
            }
            Err(LoadError::Shape { path, .. }) => {
                shape += 1;
                assert!(path.starts_with('$'), "{}", excerpt(&text));
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(loaded + not_json + shape, CASES);
    println!("loaded {loaded} (warned {warned}), not JSON {not_json}, wrong shape {shape}");
    // The inputs reach every outcome, not just the parser's rejections.
    for (outcome, count) in [
        ("loaded", loaded),
        ("loaded with warnings", warned),
        ("not JSON", not_json),
        ("wrong shape", shape),
    ] {
        assert!(count >= 100, "only {count} inputs were {outcome}");
    }
}
