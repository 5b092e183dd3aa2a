//! Flag files for the store, events and watch tests (each includes this
//! module with `mod flag_files;`).
#![allow(dead_code)] // each test file uses its own subset

use acqrel_flags::{Flag, FlagSet};
use serde_json::{Map, Value, json};

/// The text of a flag file of integer flags `(key, value)`: each has one
/// variant, `v`, holding `value`, which is also its default.
pub(crate) fn int_file(flags: &[(&str, i64)]) -> String {
    let flags: Map<String, Value> = flags
        .iter()
        .map(|(key, value)| {
            let flag = json!({"state": "ENABLED", "variants": {"v": value}, "defaultVariant": "v"});
            ((*key).to_owned(), flag)
        })
        .collect();
    json!({ "flags": flags }).to_string()
}

/// [`int_file`], parsed.
pub(crate) fn int_set(flags: &[(&str, i64)]) -> FlagSet {
    FlagSet::parse(&int_file(flags)).expect("a flag file").0
}

/// The one integer flag `key` of value `value`.
pub(crate) fn int_flag(key: &str, value: i64) -> Flag {
    int_set(&[(key, value)])
        .into_iter()
        .next()
        .expect("one flag")
}
