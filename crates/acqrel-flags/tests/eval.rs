//! Evaluation end to end: flag files through `FlagSet::parse` and
//! `FlagStore`, every reason and error code, type rules, `$ref`, metadata,
//! flagd's operators inside real rules (the test bed's fractional and
//! sem_ver tables), and what a rule sees of the context.

use acqrel_flags::{
    ErrorCode, EvaluationContext, FlagSet, FlagStore, FlagValue, Reason, Resolution, Value,
};
use serde_json::{Map, Value as Json, json};

/// A store over `flags` (the members of the top-level `flags` object),
/// checked to load without warnings.
fn store(flags: Json) -> FlagStore {
    store_of(json!({ "flags": flags }))
}

fn store_of(file: Json) -> FlagStore {
    let (set, warnings) = FlagSet::parse(&file.to_string()).expect("the file loads");
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    FlagStore::from_set(set)
}

fn ctx(json: Json) -> EvaluationContext {
    match json {
        Json::Object(map) => EvaluationContext::from_json(map),
        other => panic!("not an object: {other}"),
    }
}

/// `(value, variant, reason, error code)` of a resolution.
fn summary<T>(r: Resolution<T>) -> (T, Option<String>, Reason, Option<ErrorCode>) {
    (r.value, r.variant, r.reason, r.error_code)
}

fn resolve<T: FlagValue>(
    store: &FlagStore,
    key: &str,
    default: T,
    context: Json,
) -> (T, Option<String>, Reason, Option<ErrorCode>) {
    summary(store.resolve(key, default, &ctx(context)))
}

fn some(name: &str) -> Option<String> {
    Some(name.to_owned())
}

/// A boolean flag `f` with variants on/off, default off, and `targeting`.
fn targeted_bool(targeting: Json) -> FlagStore {
    store(json!({"f": {
        "state": "ENABLED",
        "variants": {"on": true, "off": false},
        "defaultVariant": "off",
        "targeting": targeting
    }}))
}

// ===== reasons =====

#[test]
fn static_flag_serves_its_default_variant() {
    let s = store(
        json!({"f": {"state": "ENABLED", "variants": {"a": "x", "b": "y"}, "defaultVariant": "b"}}),
    );
    assert_eq!(
        resolve(&s, "f", String::from("dflt"), json!({})),
        ("y".to_owned(), some("b"), Reason::Static, None)
    );
}

#[test]
fn targeting_match_default_and_its_fallbacks() {
    let s = targeted_bool(json!({"if": [{"==": [{"var": "tier"}, "gold"]}, "on", null]}));
    assert_eq!(
        resolve(&s, "f", false, json!({"tier": "gold"})),
        (true, some("on"), Reason::TargetingMatch, None)
    );
    // `null` from the rule: the default variant, reason DEFAULT.
    assert_eq!(
        resolve(&s, "f", true, json!({"tier": "tin"})),
        (false, some("off"), Reason::Default, None)
    );
    // The rule naming the default variant is still a match.
    let s = targeted_bool(json!("off"));
    assert_eq!(
        resolve(&s, "f", true, json!({})),
        (false, some("off"), Reason::TargetingMatch, None)
    );
}

#[test]
fn disabled_flag_returns_the_callers_default() {
    let s = store(json!({"f": {
        "state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
        "targeting": {"/": [1, 0]}
    }}));
    // Targeting is not run, and even the type is not checked: the flag
    // behaves as switched off.
    assert_eq!(
        resolve(&s, "f", false, json!({})),
        (false, None, Reason::Disabled, None)
    );
    assert_eq!(
        resolve(&s, "f", 5_i64, json!({})),
        (5, None, Reason::Disabled, None)
    );
}

#[test]
fn flag_not_found() {
    let s = store(json!({}));
    let r = s.resolve("nope", 3_i64, &EvaluationContext::new());
    assert_eq!(
        r.error_message.as_deref(),
        Some("no flag has the key \"nope\"")
    );
    assert!(r.metadata.is_empty());
    assert_eq!(
        summary(r),
        (3, None, Reason::Error, Some(ErrorCode::FlagNotFound))
    );
}

#[test]
fn absent_or_null_default_variant_falls_back_to_the_callers_default() {
    for default_variant in [None, Some(Json::Null)] {
        let mut flag = json!({"state": "ENABLED", "variants": {"on": true, "off": false}});
        if let Some(d) = &default_variant {
            flag["defaultVariant"] = d.clone();
        }
        let mut targeted = flag.clone();
        targeted["targeting"] = json!({"if": [{"var": "beta"}, "on", null]});
        let s = store(json!({"static": flag, "targeted": targeted}));
        // Static: no variant to serve, so the code default, reason DEFAULT.
        assert_eq!(
            resolve(&s, "static", true, json!({})),
            (true, None, Reason::Default, None)
        );
        // Targeting returning null: likewise.
        assert_eq!(
            resolve(&s, "targeted", true, json!({"beta": false})),
            (true, None, Reason::Default, None)
        );
        // Targeting still matches.
        assert_eq!(
            resolve(&s, "targeted", false, json!({"beta": true})),
            (true, some("on"), Reason::TargetingMatch, None)
        );
    }
}

#[test]
fn targeting_returning_a_non_variant_is_a_parse_error() {
    let cases = [
        (
            json!("purple"),
            "targeting returned \"purple\", which is not a variant",
        ),
        (json!(7), "targeting returned 7, not a variant name"),
        (
            json!({"merge": [["on"]]}),
            "targeting returned [\"on\"], not a variant name",
        ),
    ];
    for (rule, message) in cases {
        let s = targeted_bool(rule.clone());
        let r = s.resolve("f", true, &EvaluationContext::new());
        assert_eq!(r.error_message.as_deref(), Some(message), "{rule}");
        assert_eq!(
            summary(r),
            (true, None, Reason::Error, Some(ErrorCode::ParseError)),
            "{rule}"
        );
    }
}

#[test]
fn boolean_results_name_the_true_and_false_variants() {
    let s = store(json!({
        "shorthand": {"state": "ENABLED", "variants": {"true": "yes", "false": "no"}, "defaultVariant": "false",
                      "targeting": {"in": [{"var": "country"}, ["NL", "BE"]]}},
        "no-such-variants": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                             "targeting": {"==": [1, 1]}}
    }));
    assert_eq!(
        resolve(&s, "shorthand", String::new(), json!({"country": "NL"})),
        ("yes".to_owned(), some("true"), Reason::TargetingMatch, None)
    );
    assert_eq!(
        resolve(&s, "shorthand", String::new(), json!({"country": "FR"})),
        ("no".to_owned(), some("false"), Reason::TargetingMatch, None)
    );
    assert_eq!(
        resolve(&s, "no-such-variants", false, json!({})),
        (false, None, Reason::Error, Some(ErrorCode::ParseError))
    );
}

#[test]
fn rule_errors_at_evaluation_are_parse_errors() {
    let s = targeted_bool(json!({"if": [{"/": [1, {"var": "zero"}]}, "on", "off"]}));
    let r = s.resolve("f", true, &ctx(json!({"zero": 0})));
    assert_eq!(
        r.error_message.as_deref(),
        Some(r#"the rule failed: it threw {"type":"NaN"}"#)
    );
    assert_eq!(
        summary(r),
        (true, None, Reason::Error, Some(ErrorCode::ParseError))
    );
}

#[test]
fn rules_that_do_not_compile_load_with_a_warning_and_resolve_parse_error() {
    let file = json!({"flags": {
        "unknown-op": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                       "targeting": {"no_such_operator": [1]}},
        "unknown-ref": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                        "targeting": {"$ref": "missing"}},
        "fine": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}
    }});
    let (set, warnings) = FlagSet::parse(&file.to_string()).expect("the file loads");
    let mut warned: Vec<(&str, &str)> = warnings.iter().map(|w| (w.flag_key(), w.path())).collect();
    warned.sort();
    assert_eq!(
        warned,
        [
            ("unknown-op", r#"$.flags["unknown-op"].targeting"#),
            ("unknown-ref", r#"$.flags["unknown-ref"].targeting"#)
        ]
    );
    assert_eq!(
        warnings
            .iter()
            .find(|w| w.flag_key() == "unknown-op")
            .map(|w| w.reason()),
        Some("unknown operator \"no_such_operator\"")
    );
    let s = FlagStore::from_set(set);
    for key in ["unknown-op", "unknown-ref"] {
        assert_eq!(
            resolve(&s, key, false, json!({})),
            (false, None, Reason::Error, Some(ErrorCode::ParseError)),
            "{key}"
        );
    }
    assert_eq!(
        resolve(&s, "fine", false, json!({})),
        (true, some("on"), Reason::Static, None)
    );
}

// ===== types =====

#[test]
fn every_type_resolves_and_mismatches_are_errors() {
    let s = store(json!({
        "bool": {"state": "ENABLED", "variants": {"v": true}, "defaultVariant": "v"},
        "string": {"state": "ENABLED", "variants": {"v": "s"}, "defaultVariant": "v"},
        "int": {"state": "ENABLED", "variants": {"v": 42}, "defaultVariant": "v"},
        "float": {"state": "ENABLED", "variants": {"v": 0.5}, "defaultVariant": "v"},
        "object": {"state": "ENABLED", "variants": {"v": {"a": [1]}}, "defaultVariant": "v"}
    }));
    let c = EvaluationContext::new();
    assert!(s.resolve("bool", false, &c).value);
    assert_eq!(s.resolve("string", String::new(), &c).value, "s");
    assert_eq!(s.resolve("int", 0_i64, &c).value, 42);
    assert_eq!(s.resolve("float", 0.0, &c).value, 0.5);
    let mut expected = Map::new();
    expected.insert("a".into(), json!([1]));
    assert_eq!(s.resolve("object", Map::new(), &c).value, expected);

    // An integer flag reads as a float; a float flag never as an integer.
    assert_eq!(
        summary(s.resolve("int", 0.0, &c)),
        (42.0, some("v"), Reason::Static, None)
    );
    let r = s.resolve("float", 7_i64, &c);
    assert_eq!(
        r.error_message.as_deref(),
        Some("the flag is of type float, asked as integer")
    );
    assert_eq!(
        summary(r),
        (7, None, Reason::Error, Some(ErrorCode::TypeMismatch))
    );
    for key in ["string", "int", "float", "object"] {
        assert_eq!(
            summary(s.resolve(key, true, &c)),
            (true, None, Reason::Error, Some(ErrorCode::TypeMismatch)),
            "{key}"
        );
    }
    assert_eq!(
        summary(s.resolve("bool", String::from("d"), &c)),
        (
            "d".to_owned(),
            None,
            Reason::Error,
            Some(ErrorCode::TypeMismatch)
        )
    );
}

#[test]
fn resolve_value_takes_the_type_from_the_default() {
    let s = store(json!({
        "int": {"state": "ENABLED", "variants": {"v": 3}, "defaultVariant": "v"}
    }));
    let flags = s.snapshot();
    let c = EvaluationContext::new();
    assert_eq!(
        flags.resolve_value("int", Value::Int(0), &c).value,
        Value::Int(3)
    );
    assert_eq!(
        flags.resolve_value("int", Value::Float(0.0), &c).value,
        Value::Float(3.0)
    );
    let r = flags.resolve_value("int", Value::Bool(false), &c);
    assert_eq!(
        (r.value, r.error_code),
        (Value::Bool(false), Some(ErrorCode::TypeMismatch))
    );
}

// ===== $ref and metadata =====

#[test]
fn shared_evaluators_are_evaluated_through_ref() {
    // Whitespace around the colon and inside the braces, as people write it.
    let text = r#"{
        "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
        "flags": {
            "a": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                  "targeting": {"if": [{"$ref":"staff"}, "on", "off"]}},
            "b": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                  "targeting": {"if": [ { "$ref" : "staff" } , "on", "off"]}}
        }
    }"#;
    let (set, warnings) = FlagSet::parse(text).expect("loads");
    assert!(warnings.is_empty());
    let s = FlagStore::from_set(set);
    for key in ["a", "b"] {
        assert_eq!(
            resolve(&s, key, false, json!({"email": "ada@example.com"})),
            (true, some("on"), Reason::TargetingMatch, None)
        );
        assert_eq!(
            resolve(&s, key, true, json!({"email": "ada@example.org"})),
            (false, some("off"), Reason::TargetingMatch, None)
        );
    }
}

#[test]
fn metadata_is_merged_and_returned_on_every_outcome() {
    let s = store_of(json!({
        "metadata": {"team": "web", "flagSetId": "shop"},
        "flags": {
            "f": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                  "metadata": {"team": "payments", "version": 3}},
            "off": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"}
        }
    }));
    let c = EvaluationContext::new();
    let expected = json!({"team": "payments", "flagSetId": "shop", "version": 3});
    assert_eq!(
        Json::Object((*s.resolve("f", false, &c).metadata).clone()),
        expected
    );
    // On errors and disabled flags too.
    assert_eq!(
        Json::Object((*s.resolve("f", 1_i64, &c).metadata).clone()),
        expected
    );
    assert_eq!(
        Json::Object((*s.resolve("off", false, &c).metadata).clone()),
        json!({"team": "web", "flagSetId": "shop"})
    );
    // A key that names no flag gets the flag set's metadata, as in flagd.
    assert_eq!(
        Json::Object((*s.resolve("missing", false, &c).metadata).clone()),
        json!({"team": "web", "flagSetId": "shop"})
    );
}

// ===== what rules see =====

#[test]
fn flagd_properties_and_targeting_key_are_injected() {
    let s = store(json!({"echo": {
        "state": "ENABLED",
        "variants": {"match": true, "miss": false},
        "defaultVariant": "miss",
        "targeting": {"if": [{"and": [
            {"==": [{"var": "$flagd.flagKey"}, "echo"]},
            {"==": [{"var": "$flagd.timestamp"}, 1_700_000_000]},
            {"==": [{"var": "targetingKey"}, "user-1"]}
        ]}, "match", "miss"]}
    }}));
    let c = EvaluationContext::new()
        .with_targeting_key("user-1")
        .at_unix_time(1_700_000_000);
    assert_eq!(
        summary(s.resolve("echo", false, &c)),
        (true, some("match"), Reason::TargetingMatch, None)
    );
    // Attributes named like the injected ones are replaced, not merged.
    let spoofed = EvaluationContext::new()
        .with_targeting_key("user-1")
        .with_attribute("$flagd", json!({"flagKey": "echo", "timestamp": 1}))
        .with_attribute("targetingKey", "someone-else")
        .at_unix_time(1_700_000_000);
    assert!(s.resolve("echo", false, &spoofed).value);
    let wrong_time = c.clone().at_unix_time(1_700_000_001);
    assert!(!s.resolve("echo", true, &wrong_time).value);
}

#[test]
fn the_system_clock_is_the_default_timestamp() {
    let s = targeted_bool(
        json!({"if": [{">": [{"var": "$flagd.timestamp"}, 1_700_000_000]}, "on", "off"]}),
    );
    assert!(s.resolve("f", false, &EvaluationContext::new()).value);
}

#[test]
fn nested_attributes_and_every_json_type_reach_the_rule() {
    let s = targeted_bool(json!({"if": [{"and": [
        {"==": [{"var": "user.plan.tier"}, "pro"]},
        {"==": [{"var": "user.seats"}, 12]},
        {"==": [{"var": "user.ratio"}, 0.25]},
        {"in": ["beta", {"var": "user.groups"}]},
        {"==": [{"var": "user.verified"}, true]},
        {"==": [{"var": "user.nothing"}, null]}
    ]}, "on", "off"]}));
    let user = json!({"user": {"plan": {"tier": "pro"}, "seats": 12, "ratio": 0.25,
                               "groups": ["alpha", "beta"], "verified": true, "nothing": null}});
    assert_eq!(
        resolve(&s, "f", false, user),
        (true, some("on"), Reason::TargetingMatch, None)
    );
}

// ===== flagd's operators in rules =====

/// The test bed's `fractional-flag`: bucketing on `$flagd.flagKey` + `user.name`.
#[test]
fn testbed_fractional_flag() {
    let s = store(json!({"fractional-flag": {
        "state": "ENABLED",
        "variants": {"clubs": "clubs", "diamonds": "diamonds", "hearts": "hearts", "spades": "spades", "wild": "wild"},
        "defaultVariant": "wild",
        "targeting": {"fractional": [
            {"cat": [{"var": "$flagd.flagKey"}, {"var": "user.name"}]},
            ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]
        ]}
    }}));
    for (name, suit) in [
        ("jack", "hearts"),
        ("queen", "spades"),
        ("ten", "clubs"),
        ("nine", "diamonds"),
        ("3", "clubs"),
    ] {
        assert_eq!(
            resolve(
                &s,
                "fractional-flag",
                String::new(),
                json!({"user": {"name": name}})
            ),
            (suit.to_owned(), some(suit), Reason::TargetingMatch, None),
            "{name}"
        );
    }
}

/// The default bucketing key is the flag key followed by the targeting
/// key; without a targeting key, `fractional` is null and the default
/// variant is served.
#[test]
fn fractional_on_the_targeting_key() {
    let s = store(json!({"fractional-flag": {
        "state": "ENABLED",
        "variants": {"clubs": "clubs", "diamonds": "diamonds", "hearts": "hearts", "spades": "spades", "wild": "wild"},
        "defaultVariant": "wild",
        "targeting": {"fractional": [["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]]}
    }}));
    // Same key bytes as the test bed's `cat` rule above.
    for (name, suit) in [
        ("jack", "hearts"),
        ("queen", "spades"),
        ("nine", "diamonds"),
    ] {
        assert_eq!(
            resolve(
                &s,
                "fractional-flag",
                String::new(),
                json!({"targetingKey": name})
            ),
            (suit.to_owned(), some(suit), Reason::TargetingMatch, None),
            "{name}"
        );
    }
    assert_eq!(
        resolve(&s, "fractional-flag", String::new(), json!({})),
        ("wild".to_owned(), some("wild"), Reason::Default, None)
    );
}

/// Nested `fractional` with weights and a variant computed from the
/// context, inside an `if`.
#[test]
fn nested_fractional_with_computed_weights() {
    let s = store(json!({"rollout": {
        "state": "ENABLED",
        "variants": {"new": "new", "old": "old", "internal": "internal"},
        "defaultVariant": "old",
        "targeting": {"if": [
            {"ends_with": [{"var": "email"}, "@example.com"]},
            "internal",
            {"fractional": [
                {"var": "targetingKey"},
                [{"if": [{"var": "beta"}, "new", "old"]}, {"var": "percent"}],
                ["old", {"-": [100, {"var": "percent"}]}]
            ]}
        ]}
    }}));
    let first = |percent: i64, beta: bool| {
        (0..200)
            .filter(|n| {
                let r = s.resolve(
                    "rollout",
                    String::new(),
                    &ctx(json!({"targetingKey": format!("user-{n}"), "percent": percent, "beta": beta})),
                );
                assert_eq!(r.reason, Reason::TargetingMatch);
                r.value == "new"
            })
            .count()
    };
    // Everyone, nobody, and (beta off) the computed variant is "old" for all.
    assert_eq!(first(100, true), 200);
    assert_eq!(first(0, true), 0);
    assert_eq!(first(100, false), 0);
    let some_share = first(50, true);
    assert!((50..150).contains(&some_share), "{some_share}");
    assert_eq!(
        resolve(
            &s,
            "rollout",
            String::new(),
            json!({"email": "ada@example.com"})
        ),
        (
            "internal".to_owned(),
            some("internal"),
            Reason::TargetingMatch,
            None
        )
    );
}

/// The test bed's `sem_ver` flags.
#[test]
fn testbed_sem_ver() {
    let s = store(json!({
        "equal-greater-lesser-version-flag": {
            "state": "ENABLED",
            "variants": {"equal": "equal", "greater": "greater", "lesser": "lesser", "none": "none"},
            "defaultVariant": "none",
            "targeting": {"if": [
                {"sem_ver": [{"var": "version"}, "=", "2.0.0"]}, "equal",
                {"sem_ver": [{"var": "version"}, ">", "2.0.0"]}, "greater",
                {"sem_ver": [{"var": "version"}, "<", "2.0.0"]}, "lesser",
                null
            ]}
        },
        "major-minor-version-flag": {
            "state": "ENABLED",
            "variants": {"minor": "minor", "major": "major", "none": "none"},
            "defaultVariant": "none",
            "targeting": {"if": [
                {"sem_ver": [{"var": "version"}, "~", "3.0.0"]}, "minor",
                {"sem_ver": [{"var": "version"}, "^", "3.0.0"]}, "major",
                null
            ]}
        }
    }));
    for (version, expected) in [
        ("2.0.0", "equal"),
        ("2.1.0", "greater"),
        ("1.9.0", "lesser"),
        ("2.0.0-alpha", "lesser"),
        ("2.0.0.0", "none"),
    ] {
        let r = s.resolve(
            "equal-greater-lesser-version-flag",
            String::new(),
            &ctx(json!({"version": version})),
        );
        assert_eq!(r.value, expected, "{version}");
    }
    for (version, expected) in [("3.0.1", "minor"), ("3.1.0", "major"), ("4.0.0", "none")] {
        let r = s.resolve(
            "major-minor-version-flag",
            String::new(),
            &ctx(json!({"version": version})),
        );
        assert_eq!(r.value, expected, "{version}");
    }
}

/// The test bed's substring flags: `starts_with` / `ends_with` on strings
/// only (a number pattern never matches).
#[test]
fn testbed_substring_operators() {
    let s = store(json!({
        "starts-ends-flag": {
            "state": "ENABLED",
            "variants": {"prefix": "prefix", "postfix": "postfix", "none": "none"},
            "defaultVariant": "none",
            "targeting": {"if": [
                {"starts_with": [{"var": "id"}, "abc"]}, "prefix",
                {"ends_with": [{"var": "id"}, "xyz"]}, "postfix",
                {"ends_with": [{"var": "id"}, 3]}, "number",
                null
            ]}
        }
    }));
    for (id, expected) in [
        (json!("abcdef"), "prefix"),
        (json!("uvwxyz"), "postfix"),
        (json!("abcxyz"), "prefix"),
        (json!("lmnopq"), "none"),
        (json!("3"), "none"),
        (json!(3), "none"),
    ] {
        let r = s.resolve("starts-ends-flag", String::new(), &ctx(json!({"id": id})));
        assert_eq!(r.value, expected, "{id}");
    }
}
