//! Targeting rules: JsonLogic compiled once per load with datalogic-rs,
//! flagd's operators plugged in, and the evaluation data built straight into
//! a per-thread arena.

use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::datavalue::NumberValue;
use datalogic_rs::operator::EvalContext;
use datalogic_rs::{ArenaExt, CustomOperator, DataValue, Engine, ErrorKind, Logic};
use serde_json::{Map, Value as Json};

use crate::ops;

/// The engine every rule is compiled with and evaluated by: JsonLogic's
/// standard operators plus flagd's four. Built on first use; `Engine` is
/// `Send + Sync` and holds no per-evaluation state.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::builder()
            .add_operator("fractional", Op::Fractional)
            .add_operator("sem_ver", Op::SemVer)
            .add_operator("starts_with", Op::StartsWith)
            .add_operator("ends_with", Op::EndsWith)
            .build()
    })
}

/// A targeting rule compiled for evaluation. Cheap to clone (shared).
#[derive(Clone)]
pub(crate) struct Rule(Arc<Logic>);

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rule(..)")
    }
}

/// Rules are compiled from a flag's `targeting`, which the flag's own
/// comparison covers; two compilations of one rule compare equal.
impl PartialEq for Rule {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// What a rule evaluated to, as far as choosing a variant goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// `null`: serve the default variant.
    Null,
    /// A string, or a boolean read as the variant named `"true"`/`"false"`.
    Name(String),
    /// Anything else (a number, array or object), described in words.
    Other(String),
}

/// The evaluation's inputs besides the rule.
pub(crate) struct Input<'c> {
    pub(crate) flag_key: &'c str,
    pub(crate) targeting_key: Option<&'c str>,
    pub(crate) attributes: &'c Map<String, Json>,
    pub(crate) timestamp: u64,
}

/// Deepest nesting of context attributes handed to a rule; deeper values
/// become `null` (serde_json's parser stops at the same depth).
const MAX_DEPTH: usize = 128;

/// An arena that grew past this is dropped after the evaluation instead of
/// being kept for the thread's next one.
const ARENA_KEEP: usize = 64 * 1024;

thread_local! {
    static ARENA: RefCell<Bump> = RefCell::new(Bump::new());
}

impl Rule {
    /// Compiles `rule` (every `$ref` already resolved).
    ///
    /// The engine accepts an unknown operator at compile time and fails
    /// only when evaluation reaches it; such a rule is rejected here, so the
    /// load warns about it instead of every evaluation failing silently.
    pub(crate) fn compile(rule: &Json) -> Result<Rule, String> {
        if let Some(name) = unknown_operator(rule) {
            return Err(format!("unknown operator {name:?}"));
        }
        let text = rule.to_string();
        engine()
            .compile(text.as_str())
            .map(|logic| Rule(Arc::new(logic)))
            .map_err(|e| format!("the rule does not compile: {e}"))
    }

    /// Evaluates the rule over `input`. Never panics: an error of the rule
    /// (or a panic inside the JsonLogic engine) comes back as `Err` in words.
    pub(crate) fn evaluate(&self, input: &Input<'_>) -> Result<Outcome, String> {
        ARENA.with(|cell| match cell.try_borrow_mut() {
            Ok(mut arena) => {
                let outcome = self.evaluate_in(&arena, input);
                if arena.allocated_bytes() > ARENA_KEEP {
                    *arena = Bump::new();
                } else {
                    arena.reset();
                }
                outcome
            }
            // Only reachable if evaluation re-entered itself on this thread,
            // which nothing here does; stay correct anyway.
            Err(_) => self.evaluate_in(&Bump::new(), input),
        })
    }

    fn evaluate_in(&self, arena: &Bump, input: &Input<'_>) -> Result<Outcome, String> {
        // The engine is third-party code run on caller-controlled data:
        // a panic there becomes an error, never the caller's.
        panic::catch_unwind(AssertUnwindSafe(|| {
            let data = data(arena, input);
            match engine().evaluate(&self.0, data, arena) {
                Ok(result) => Ok(outcome(result)),
                Err(e) => Err(failure(&e)),
            }
        }))
        .unwrap_or_else(|_| Err("the rule's evaluation panicked".to_owned()))
    }
}

/// The first operator in `rule` (every single-member object is an
/// operator application in JsonLogic) that the engine does not know.
fn unknown_operator(rule: &Json) -> Option<&str> {
    let mut pending = vec![rule];
    while let Some(node) = pending.pop() {
        match node {
            Json::Array(items) => pending.extend(items),
            Json::Object(map) => {
                if let [(name, _)] = map.iter().collect::<Vec<_>>()[..] {
                    let known = engine().has_custom_operator(name)
                        || engine().builtin_operator_names().any(|op| op == name);
                    if !known {
                        return Some(name);
                    }
                }
                pending.extend(map.values());
            }
            _ => {}
        }
    }
    None
}

/// An evaluation error in words: the operator, and what went wrong, with a
/// value thrown by the engine (division by zero throws `{"type": "NaN"}`)
/// written as JSON rather than as the engine's debug form.
fn failure(e: &datalogic_rs::Error) -> String {
    let what = match &e.kind {
        ErrorKind::Thrown(value) => format!("it threw {value}"),
        ErrorKind::InvalidOperator(text)
        | ErrorKind::InvalidArguments(text)
        | ErrorKind::VariableNotFound(text)
        | ErrorKind::TypeError(text)
        | ErrorKind::ArithmeticError(text)
        | ErrorKind::ParseError(text)
        | ErrorKind::FormatError(text)
        | ErrorKind::ConfigurationError(text) => text.to_string(),
        ErrorKind::IndexOutOfBounds { index, length } => {
            format!("index {index} out of bounds for length {length}")
        }
        ErrorKind::Custom(source) => source.to_string(),
        other => format!("{other:?}"),
    };
    // (`e.operator()` names the outermost operator, the `if` around a
    // failing `/`, which misleads more than it helps.)
    format!("the rule failed: {what}")
}

fn outcome(result: &DataValue<'_>) -> Outcome {
    match result {
        DataValue::Null => Outcome::Null,
        DataValue::String(name) => Outcome::Name((*name).to_owned()),
        DataValue::Bool(b) => Outcome::Name(if *b { "true" } else { "false" }.to_owned()),
        other => Outcome::Other(other.to_string()),
    }
}

/// The data a rule sees: the attributes, `targetingKey` and `$flagd`
/// (`flagKey`, `timestamp`). The last two replace attributes of the same
/// name, as in flagd.
fn data<'a>(arena: &'a Bump, input: &Input<'_>) -> DataValue<'a> {
    let mut pairs: Vec<(&'a str, DataValue<'a>)> = Vec::with_capacity(input.attributes.len() + 2);
    for (name, value) in input.attributes {
        if name == "targetingKey" || name == "$flagd" {
            continue;
        }
        pairs.push((arena.alloc_str(name), to_data(arena, value, 1)));
    }
    if let Some(key) = input.targeting_key {
        pairs.push(("targetingKey", DataValue::String(arena.alloc_str(key))));
    }
    let flagd = arena.alloc_slice_copy(&[
        (
            "flagKey",
            DataValue::String(arena.alloc_str(input.flag_key)),
        ),
        ("timestamp", number(input.timestamp)),
    ]);
    pairs.push(("$flagd", DataValue::Object(flagd)));
    DataValue::Object(arena.alloc_slice_copy(&pairs))
}

fn number<'a>(n: u64) -> DataValue<'a> {
    DataValue::Number(match i64::try_from(n) {
        Ok(n) => NumberValue::from_i64(n),
        Err(_) => NumberValue::from_f64(n as f64),
    })
}

/// serde_json → arena value. Past [`MAX_DEPTH`] levels, `null`.
fn to_data<'a>(arena: &'a Bump, value: &Json, depth: usize) -> DataValue<'a> {
    if depth > MAX_DEPTH {
        return DataValue::Null;
    }
    match value {
        Json::Null => DataValue::Null,
        Json::Bool(b) => DataValue::Bool(*b),
        Json::Number(n) => DataValue::Number(match n.as_i64() {
            Some(i) => NumberValue::from_i64(i),
            None => NumberValue::from_f64(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Json::String(s) => DataValue::String(arena.alloc_str(s)),
        Json::Array(items) => {
            let items: Vec<DataValue<'a>> = items
                .iter()
                .map(|item| to_data(arena, item, depth + 1))
                .collect();
            DataValue::Array(arena.alloc_slice_copy(&items))
        }
        Json::Object(map) => {
            let pairs: Vec<(&'a str, DataValue<'a>)> = map
                .iter()
                .map(|(k, v)| (&*arena.alloc_str(k), to_data(arena, v, depth + 1)))
                .collect();
            DataValue::Object(arena.alloc_slice_copy(&pairs))
        }
    }
}

/// Arena value → serde_json, for the operators in [`ops`]. A non-finite
/// number becomes `null`, as JSON has none.
fn to_json(value: &DataValue<'_>) -> Json {
    match value {
        DataValue::Null => Json::Null,
        DataValue::Bool(b) => Json::Bool(*b),
        DataValue::Number(NumberValue::Integer(i)) => Json::from(*i),
        DataValue::Number(NumberValue::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
        DataValue::String(s) => Json::String((*s).to_owned()),
        DataValue::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        DataValue::Object(pairs) => Json::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), to_json(v)))
                .collect(),
        ),
        #[allow(unreachable_patterns)] // date-time variants, behind a feature we do not enable
        _ => Json::Null,
    }
}

/// flagd's operators, adapted to the engine: arguments (already evaluated)
/// go to the pure functions in [`ops`], whose `None` is JsonLogic's `null`.
#[derive(Debug, Clone, Copy)]
enum Op {
    Fractional,
    SemVer,
    StartsWith,
    EndsWith,
}

impl CustomOperator for Op {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let args: Vec<Json> = args.iter().map(|arg| to_json(arg)).collect();
        let result = match self {
            Op::Fractional => {
                let root = ctx.root_input();
                let flag_key = root["$flagd"]["flagKey"].as_str().unwrap_or("");
                ops::fractional(flag_key, root["targetingKey"].as_str(), &args)
            }
            Op::SemVer => ops::sem_ver(&args).map(Json::Bool),
            Op::StartsWith => ops::starts_with(&args).map(Json::Bool),
            Op::EndsWith => ops::ends_with(&args).map(Json::Bool),
        };
        Ok(match result {
            None => arena.null(),
            Some(value) => arena.alloc(to_data(arena, &value, 1)),
        })
    }
}
