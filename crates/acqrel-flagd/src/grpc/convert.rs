//! Between protobuf's `Struct` and JSON, between a request and an
//! evaluation context, and from the served flags to flagd's flag
//! configuration document (what the sync service streams).

use acqrel_flags::{EvaluationContext, Flag, Flags, Targeting};
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as ProtoValue};
use serde_json::{Map, Number, Value as Json};

/// Nesting deeper than this in a context is refused (prost's decoder
/// already stops at 100 levels; this keeps the conversion's recursion
/// bounded whatever produced the `Struct`).
const MAX_DEPTH: usize = 64;

/// A request's `context` as an evaluation context (none: empty).
///
/// # Errors
///
/// A number that is not finite, or nesting deeper than [`MAX_DEPTH`]:
/// the reason, in words (the caller answers `INVALID_ARGUMENT`).
pub(crate) fn context(context: Option<Struct>) -> Result<EvaluationContext, String> {
    match context {
        None => Ok(EvaluationContext::new()),
        Some(context) => Ok(EvaluationContext::from_json(struct_to_json(context, 0)?)),
    }
}

fn struct_to_json(value: Struct, depth: usize) -> Result<Map<String, Json>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("the context nests deeper than {MAX_DEPTH} levels"));
    }
    value
        .fields
        .into_iter()
        .map(|(name, value)| {
            let json = value_to_json(value, depth + 1).map_err(|e| format!("{name}: {e}"))?;
            Ok((name, json))
        })
        .collect()
}

fn value_to_json(value: ProtoValue, depth: usize) -> Result<Json, String> {
    Ok(match value.kind {
        // An unset kind reads as null, as protobuf's own conversions do.
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(b),
        Some(Kind::StringValue(s)) => Json::String(s),
        Some(Kind::NumberValue(n)) => number(n)?,
        Some(Kind::StructValue(s)) => Json::Object(struct_to_json(s, depth)?),
        Some(Kind::ListValue(list)) => {
            if depth > MAX_DEPTH {
                return Err(format!("nests deeper than {MAX_DEPTH} levels"));
            }
            Json::Array(
                list.values
                    .into_iter()
                    .map(|v| value_to_json(v, depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// A protobuf number as JSON: a whole number within `i64` as an integer
/// (how flagd's Go evaluator prints it, e.g. in a string concatenation),
/// any other finite number as a float.
fn number(n: f64) -> Result<Json, String> {
    if !n.is_finite() {
        return Err(format!("{n} is not a finite number"));
    }
    // 2^63 is exact in f64; the range check keeps the cast lossless.
    if n.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n)
    {
        return Ok(Json::Number(Number::from(n as i64)));
    }
    // Finite, so `from_f64` succeeds.
    Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
}

/// A JSON object as a protobuf `Struct`.
pub(crate) fn json_to_struct(map: &Map<String, Json>) -> Struct {
    Struct {
        fields: map
            .iter()
            .map(|(name, value)| (name.clone(), json_to_value(value)))
            .collect(),
    }
}

/// A JSON value as a protobuf `Value` (every number becomes an `f64`, as
/// protobuf has no other).
pub(crate) fn json_to_value(value: &Json) -> ProtoValue {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    ProtoValue { kind: Some(kind) }
}

// ===== selectors =====

/// Which flags a request selects: flagd's selector, from the
/// `Flagd-Selector` header or a sync request's `selector` field.
///
/// `flagSetId=ID` selects the flags whose `flagSetId` metadata (their own,
/// or the flag set's they inherit) is `ID`; an empty selector selects
/// every flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selector {
    /// Every flag.
    All,
    /// The flags of one flag set.
    FlagSet(String),
}

impl Selector {
    /// Parses a selector.
    ///
    /// # Errors
    ///
    /// Anything but empty or `flagSetId=ID` (the reason, in words; the
    /// caller answers `INVALID_ARGUMENT`). flagd's older `source=` form
    /// names a sync source by its URI, which this server does not expose.
    pub(crate) fn parse(text: &str) -> Result<Selector, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Selector::All);
        }
        let mut selected = None;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("flagSetId", id)) if selected.is_none() => {
                    selected = Some(id.trim().to_owned());
                }
                Some(("flagSetId", _)) => {
                    return Err("the selector names flagSetId twice".to_owned());
                }
                _ => {
                    return Err(format!(
                        "unsupported selector `{part}`: acqrel-flagd selects by `flagSetId=<id>`"
                    ));
                }
            }
        }
        Ok(selected.map_or(Selector::All, Selector::FlagSet))
    }

    /// Whether `flag` is selected.
    pub(crate) fn selects(&self, flag: &Flag) -> bool {
        match self {
            Selector::All => true,
            Selector::FlagSet(id) => {
                flag.metadata().get("flagSetId").and_then(Json::as_str) == Some(id.as_str())
            }
        }
    }

    /// The selected flags of `flags`.
    pub(crate) fn flags<'a>(&'a self, flags: &'a Flags) -> impl Iterator<Item = &'a Flag> + 'a {
        flags.iter().filter(move |flag| self.selects(flag))
    }
}

// ===== the flag configuration =====

/// The selected flags of `flags` as flagd's flag configuration document
/// (`{"flags": {...}, "metadata": {...}}`, the schema the in-process
/// providers load), every `$ref` already resolved.
///
/// A flag whose targeting could not be compiled is left out (this server
/// answers `PARSE_ERROR` for it; a provider that cannot find it answers
/// `FLAG_NOT_FOUND`, and serves its default either way).
pub(crate) fn flag_configuration(flags: &Flags, selector: &Selector) -> String {
    let mut out = Map::new();
    for flag in selector.flags(flags) {
        let targeting = match flag.targeting() {
            Targeting::Static => None,
            Targeting::Rule(rule) => Some(rule.clone()),
            Targeting::Invalid { .. } => continue,
        };
        let mut entry = Map::new();
        entry.insert("state".into(), flag.state().as_str().into());
        let variants: Map<String, Json> = flag
            .variants()
            .iter()
            .map(|(name, value)| (name.clone(), Json::from(value.clone())))
            .collect();
        entry.insert("variants".into(), Json::Object(variants));
        entry.insert(
            "defaultVariant".into(),
            flag.default_variant().map_or(Json::Null, Json::from),
        );
        if let Some(targeting) = targeting {
            entry.insert("targeting".into(), targeting);
        }
        if !flag.metadata().is_empty() {
            entry.insert("metadata".into(), Json::Object(flag.metadata().clone()));
        }
        out.insert(flag.key().to_owned(), Json::Object(entry));
    }
    let mut document = Map::new();
    document.insert("flags".into(), Json::Object(out));
    if !flags.metadata().is_empty() {
        document.insert("metadata".into(), Json::Object(flags.metadata().clone()));
    }
    Json::Object(document).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use acqrel_flags::{FlagSet, FlagStore};
    use serde_json::json;

    #[test]
    fn structs_round_trip_and_numbers_become_integers_when_whole() {
        let json = json!({"a": 1, "b": 1.5, "c": "x", "d": [true, null], "e": {"f": -3}});
        let Json::Object(map) = json else { panic!() };
        let back = struct_to_json(json_to_struct(&map), 0).unwrap();
        assert_eq!(
            Json::Object(back),
            json!({"a": 1, "b": 1.5, "c": "x", "d": [true, null], "e": {"f": -3}})
        );
    }

    #[test]
    fn bad_numbers_and_deep_nesting_are_refused() {
        let nan = Struct {
            fields: [(
                "n".to_owned(),
                ProtoValue {
                    kind: Some(Kind::NumberValue(f64::NAN)),
                },
            )]
            .into(),
        };
        assert!(context(Some(nan)).unwrap_err().contains("finite"));
        let mut deep = ProtoValue {
            kind: Some(Kind::NullValue(0)),
        };
        for _ in 0..200 {
            deep = ProtoValue {
                kind: Some(Kind::ListValue(ListValue { values: vec![deep] })),
            };
        }
        let deep = Struct {
            fields: [("d".to_owned(), deep)].into(),
        };
        assert!(context(Some(deep)).unwrap_err().contains("deeper"));
    }

    #[test]
    fn selectors_parse() {
        assert_eq!(Selector::parse(""), Ok(Selector::All));
        assert_eq!(
            Selector::parse(" flagSetId=web "),
            Ok(Selector::FlagSet("web".into()))
        );
        assert!(Selector::parse("source=file:a.json").is_err());
        assert!(Selector::parse("flagSetId=a,flagSetId=b").is_err());
        assert!(Selector::parse("nonsense").is_err());
    }

    #[test]
    fn the_configuration_document_reloads_as_the_same_flags() {
        let json = r#"{"metadata": {"flagSetId": "web"}, "flags": {
            "a": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                  "targeting": {"if": [{"==": [{"var": "x"}, 1]}, "on", null]}},
            "b": {"state": "DISABLED", "variants": {"n": 3}, "defaultVariant": "n", "metadata": {"flagSetId": "api"}},
            "c": {"state": "ENABLED", "variants": {"o": {"k": [1]}}}
        }}"#;
        let (set, _) = FlagSet::parse(json).unwrap();
        let flags = FlagStore::from_set(set.clone()).snapshot();
        let document = flag_configuration(&flags, &Selector::All);
        let (again, warnings) = FlagSet::parse(&document).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let again = FlagStore::from_set(again).snapshot();
        for flag in flags.iter() {
            assert_eq!(again.get(flag.key()), Some(flag), "{}", flag.key());
        }
        let web = flag_configuration(&flags, &Selector::FlagSet("web".into()));
        let web: Json = serde_json::from_str(&web).unwrap();
        let keys: Vec<_> = web["flags"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["a", "c"]);
    }
}
