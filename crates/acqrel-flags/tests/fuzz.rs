//! Property test: random well-formed flag files (random variants, states,
//! default variants, JsonLogic rules mixing standard and flagd operators,
//! shared evaluators pulled in with `$ref`) evaluated against random
//! contexts, as every type. The evaluator must never panic, and every
//! result must be consistent: an error code exactly on `ERROR`, a variant
//! exactly when the flag's value (not the caller's default) is returned,
//! and that value the variant's.

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;

use acqrel_flags::{
    ErrorCode, EvaluationContext, FlagSet, FlagStore, Reason, Resolution, Value, ValueKind,
};
use common::Rng;
use serde_json::{Map, Value as Json, json};

const ATTRIBUTES: [&str; 5] = ["email", "version", "tier", "n", "user.name"];
const OPERATORS: [&str; 16] = [
    "==",
    "!=",
    "<",
    ">",
    "in",
    "and",
    "or",
    "!",
    "if",
    "cat",
    "+",
    "/",
    "fractional",
    "sem_ver",
    "starts_with",
    "ends_with",
];

/// This file's inputs, from the shared fixed-seed generator.
impl Rng {
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// A context value: scalars of every type, and small arrays and objects.
    fn json(&mut self, depth: u32) -> Json {
        match self.below(if depth == 0 { 6 } else { 8 }) {
            0 => Json::Null,
            1 => json!(self.chance(2)),
            2 => json!(self.pick(&[0_i64, 1, -7, 42, i64::MAX, i64::MIN])),
            3 => json!(self.pick(&[0.5, -0.0, 1e300, 3.0])),
            4 => json!(self.pick(&[
                "",
                "a",
                "ada@example.com",
                "1.2.3",
                "v2.0.0-rc.1",
                "gold",
                "↓é"
            ])),
            5 => json!(self.pick(&["on", "off", "red", "true", "false"])),
            6 => Json::Array((0..self.below(3)).map(|_| self.json(depth - 1)).collect()),
            _ => {
                let mut map = Map::new();
                for _ in 0..self.below(3) {
                    map.insert(
                        self.pick(&["name", "k", "tier"]).to_owned(),
                        self.json(depth - 1),
                    );
                }
                Json::Object(map)
            }
        }
    }

    /// A JsonLogic expression: literals, `var`s, variant names, `$ref`s
    /// (when `refs` is non-empty) and operator applications.
    fn rule(&mut self, depth: u32, variants: &[String], refs: &[String]) -> Json {
        let leaf = depth == 0 || self.chance(3);
        if leaf {
            return match self.below(5) {
                0 => self.json(1),
                1 | 2 => json!({"var": self.pick(&ATTRIBUTES)}),
                3 if !refs.is_empty() => json!({"$ref": self.pick(refs)}),
                _ => json!(self.pick(variants)),
            };
        }
        let op = self.pick(&OPERATORS);
        let args: Vec<Json> = match op {
            "fractional" => {
                let mut args = Vec::new();
                if self.chance(2) {
                    args.push(self.rule(depth - 1, variants, refs));
                }
                for _ in 0..self.below(4) {
                    let name = if self.chance(4) {
                        self.rule(depth - 1, variants, refs)
                    } else {
                        json!(self.pick(variants))
                    };
                    let weight = if self.chance(3) {
                        self.rule(depth - 1, variants, refs)
                    } else {
                        json!(self.below(100))
                    };
                    args.push(json!([name, weight]));
                }
                args
            }
            "sem_ver" => vec![
                self.rule(depth - 1, variants, refs),
                json!(self.pick(&["=", "!=", "<", "<=", ">", ">=", "^", "~", "?"])),
                self.rule(depth - 1, variants, refs),
            ],
            _ => (0..self.below(4))
                .map(|_| self.rule(depth - 1, variants, refs))
                .collect(),
        };
        json!({ op: args })
    }

    /// A variant value of `kind`.
    fn variant(&mut self, kind: ValueKind) -> Json {
        match kind {
            ValueKind::Bool => json!(self.chance(2)),
            ValueKind::String => json!(self.pick(&["a", "b", ""])),
            ValueKind::Int => json!(self.pick(&[0_i64, 1, -5, i64::MAX])),
            ValueKind::Float => json!(self.pick(&[0.5, -1.25, 1e10])),
            ValueKind::Object => json!({"k": self.json(1)}),
        }
    }

    /// A well-formed flag file: each flag one type, an optional default
    /// variant naming a variant, optional targeting.
    fn file(&mut self) -> Json {
        let evaluator_names: Vec<String> = (0..self.below(3)).map(|i| format!("e{i}")).collect();
        let plain_variants = ["on", "off", "red", "true", "false"].map(String::from);
        let mut evaluators = Map::new();
        for name in &evaluator_names {
            // Shared rules use no `$ref` themselves (no cycles by design;
            // cycles are a load warning, tested elsewhere).
            evaluators.insert(name.clone(), self.rule(2, &plain_variants, &[]));
        }
        let mut flags = Map::new();
        for i in 0..1 + self.below(4) {
            let kind = self.pick(&[
                ValueKind::Bool,
                ValueKind::String,
                ValueKind::Int,
                ValueKind::Float,
                ValueKind::Object,
            ]);
            let count = 1 + self.below(3);
            let names: Vec<String> = plain_variants[..count].to_vec();
            let variants: Map<String, Json> = names
                .iter()
                .map(|n| (n.clone(), self.variant(kind)))
                .collect();
            let mut flag = json!({
                "state": if self.chance(5) { "DISABLED" } else { "ENABLED" },
                "variants": variants,
            });
            match self.below(3) {
                0 => {}
                1 => flag["defaultVariant"] = Json::Null,
                _ => flag["defaultVariant"] = json!(self.pick(&names)),
            }
            if !self.chance(4) {
                flag["targeting"] = self.rule(4, &names, &evaluator_names);
            }
            if self.chance(3) {
                flag["metadata"] = json!({"owner": "team", "n": i});
            }
            flags.insert(format!("flag-{i}"), flag);
        }
        json!({"$evaluators": evaluators, "metadata": {"set": "fuzz"}, "flags": flags})
    }

    fn context(&mut self) -> EvaluationContext {
        let mut ctx = EvaluationContext::new().at_unix_time(self.next_u64() >> 33);
        if !self.chance(4) {
            ctx = ctx.with_targeting_key(self.pick(&["", "user-1", "user-2", "ü"]));
        }
        for name in ["email", "version", "tier", "n", "user"] {
            if !self.chance(3) {
                ctx = ctx.with_attribute(name, self.json(2));
            }
        }
        ctx
    }
}

/// Checks one resolution's internal consistency against the flag it came
/// from (`None` if absent).
fn check<T: PartialEq + std::fmt::Debug>(
    r: &Resolution<T>,
    default: &T,
    variant_value: impl Fn(&str) -> Option<T>,
    what: &str,
) {
    assert_eq!(
        r.error_code.is_some(),
        r.reason == Reason::Error,
        "{what}: {r:?}"
    );
    assert_eq!(
        r.error_message.is_some(),
        r.error_code.is_some(),
        "{what}: {r:?}"
    );
    match &r.variant {
        Some(name) => {
            assert!(
                matches!(
                    r.reason,
                    Reason::Static | Reason::TargetingMatch | Reason::Default
                ),
                "{what}: {r:?}"
            );
            assert_eq!(
                Some(&r.value),
                variant_value(name).as_ref(),
                "{what}: {r:?}"
            );
        }
        None => assert_eq!(&r.value, default, "{what}: {r:?}"),
    }
}

#[test]
fn random_files_and_contexts_never_panic_and_stay_consistent() {
    let mut rng = Rng(0xF1A6_5EED);
    let mut reasons = [0_u32; 5];
    let mut parse_errors = 0_u32;
    for round in 0..common::scaled(3_000).max(300) {
        let file = rng.file();
        let text = file.to_string();
        let (set, _warnings) =
            FlagSet::parse(&text).unwrap_or_else(|e| panic!("round {round}: {e}\n{text}"));
        let store = FlagStore::from_set(set);
        let flags = store.snapshot();
        for _ in 0..4 {
            let ctx = rng.context();
            for key in flags.keys().chain(["missing"]) {
                let flag = flags.get(key);
                for default in [
                    Value::Bool(true),
                    Value::String("dflt".into()),
                    Value::Int(-99),
                    Value::Float(-9.5),
                    Value::Object(Map::new()),
                ] {
                    let kind = default.kind();
                    let r = flags.resolve_value(key, default.clone(), &ctx);
                    let what = format!("round {round}, {key} as {kind}\n{text}");
                    check(
                        &r,
                        &default,
                        |name| {
                            let value = flag?.variant(name)?.clone();
                            Some(match (value, kind) {
                                (Value::Int(i), ValueKind::Float) => Value::Float(i as f64),
                                (value, _) => value,
                            })
                        },
                        &what,
                    );
                    if flag.is_none() {
                        assert_eq!(r.error_code, Some(ErrorCode::FlagNotFound), "{what}");
                    }
                    reasons[r.reason as usize] += 1;
                    parse_errors += u32::from(r.error_code == Some(ErrorCode::ParseError));
                }
                // The typed API agrees with the dynamic one.
                let typed = flags.resolve(key, false, &ctx);
                let dynamic = flags.resolve_value(key, Value::Bool(false), &ctx);
                assert_eq!(
                    (
                        Value::Bool(typed.value),
                        typed.variant,
                        typed.reason,
                        typed.error_code
                    ),
                    (
                        dynamic.value,
                        dynamic.variant,
                        dynamic.reason,
                        dynamic.error_code
                    )
                );
            }
        }
    }
    // The generator reaches every reason, and rules that fail.
    assert!(reasons.iter().all(|&n| n > 0), "{reasons:?}");
    assert!(parse_errors > 0);
}
