//! Fuzz-style tests: thousands of hostile files (random bytes, token soup,
//! mutations and truncations of a valid file, and hand-picked extremes:
//! empty, `1e400`, a 100 000-digit number, 10 000 nested brackets, NUL
//! bytes, invalid UTF-8, a 1 MiB string) are loaded through `reload_now`
//! and through `start`. Nothing panics, and each outcome is exactly the one
//! serde_json and the validator call for: a refused file never replaces the
//! config served, and is counted once.
//!
//! Deterministic: a fixed-seed generator, and configs that only
//! `reload_now` reads (no watch, and a manual clock that never moves, so
//! the check the start schedules never comes due).
#![cfg(not(acqrel_loom))]

use std::fmt::Debug;
use std::path::Path;

use acqrel_config::{Builder, HotConfig, Reason, ReloadOutcome, StartError};
use acqrel_core::ManualClock;
use serde::Deserialize;
use serde::de::DeserializeOwned;

mod common;

use common::{Rng, TempDir, scaled, write_plain};

/// A config with required fields: random bytes essentially never parse.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
struct Cfg {
    version: u32,
    name: String,
}

/// The validator's limit on `Cfg::version`.
const MAX_VERSION: u32 = 100;

/// The validator of every `Cfg` config here.
fn validate(c: &Cfg) -> Result<(), String> {
    if c.version > MAX_VERSION {
        Err(format!("version {} above {MAX_VERSION}", c.version))
    } else {
        Ok(())
    }
}

/// The valid file every run starts from.
const GOOD: &[u8] = br#"{"version": 1, "name": "good"}"#;

/// What a file should lead to, by serde_json and the validator themselves.
#[derive(Debug)]
enum Expected<T> {
    Valid(T),
    Parse,
    Invalid,
}

fn expect_cfg(bytes: &[u8]) -> Expected<Cfg> {
    match serde_json::from_slice::<Cfg>(bytes) {
        Err(_) => Expected::Parse,
        Ok(cfg) if validate(&cfg).is_err() => Expected::Invalid,
        Ok(cfg) => Expected::Valid(cfg),
    }
}

fn expect_value(bytes: &[u8]) -> Expected<serde_json::Value> {
    match serde_json::from_slice(bytes) {
        Err(_) => Expected::Parse,
        Ok(value) => Expected::Valid(value),
    }
}

/// Whether `reason` is the refusal `expected` calls for.
fn reason_matches<T>(reason: &Reason, expected: &Expected<T>) -> bool {
    matches!(
        (reason, expected),
        (Reason::Parse { .. }, Expected::Parse) | (Reason::Invalid(_), Expected::Invalid)
    )
}

// ===== input generator =====

impl Rng {
    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

/// Pieces of JSON and of things that are almost JSON.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b" ",
    b"\n",
    b"\"version\"",
    b"\"name\"",
    b"0",
    b"1",
    b"42",
    b"-",
    b".",
    b"e",
    b"E+",
    b"1e400",
    b"true",
    b"false",
    b"null",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\"good\"",
    b"\xff",
    b"\xc3",
    b"\0",
    b"/*",
    b"NaN",
    b"Infinity",
];

/// The hand-picked extremes, each tried once.
fn extremes() -> Vec<Vec<u8>> {
    let digits: Vec<u8> = (0..100_000).map(|i| b'1' + (i % 9) as u8).collect();
    let in_version =
        |number: &[u8]| [br#"{"version": "#.as_slice(), number, br#", "name": "x"}"#].concat();
    let huge_string = vec![b'a'; 1 << 20];
    vec![
        Vec::new(),
        b"   \n\t\r  ".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        b"1e400".to_vec(),
        b"-1e400".to_vec(),
        in_version(b"1e400"),
        in_version(b"-1"),
        in_version(b"4294967296"),
        in_version(b"1.5"),
        digits.clone(),
        in_version(&digits),
        vec![b'['; 10_000],
        [vec![b'['; 10_000], vec![b']'; 10_000]].concat(),
        b"{\"a\":".repeat(10_000),
        [
            b"{\"a\":".repeat(10_000),
            b"1".to_vec(),
            b"}".repeat(10_000),
        ]
        .concat(),
        vec![0; 4096],
        [GOOD, b"\0"].concat(),
        br#"{"version": 1, "name": "bad \xff\xfe utf-8"}"#.to_vec(),
        br#"{"version": 1, "name": "lone \ud800 surrogate"}"#.to_vec(),
        [b"\xEF\xBB\xBF", GOOD].concat(),
        [GOOD, b" trailing".as_slice()].concat(),
        br#"{"version": 1, "name": "a", "version": 2}"#.to_vec(),
        br#"{"version": 1, "name": null}"#.to_vec(),
        br#"{"version": 1000, "name": "refused by validation"}"#.to_vec(),
        [br#"{"name": ""#.as_slice(), &huge_string, b"\"}"].concat(),
        [br#"{"version": 1, "name": ""#.as_slice(), &huge_string].concat(),
        huge_string,
    ]
}

/// One random input: random bytes, token soup, a mutation of [`GOOD`], or a
/// truncation of it.
fn random_input(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => (0..rng.below(64)).map(|_| rng.byte()).collect(),
        1 => (0..rng.below(32))
            .flat_map(|_| TOKENS[rng.below(TOKENS.len())].iter().copied())
            .collect(),
        2 => {
            let mut bytes = GOOD.to_vec();
            for _ in 0..=rng.below(3) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(3) {
                    0 if at < bytes.len() => bytes[at] = rng.byte(),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, TOKENS[rng.below(TOKENS.len())][0]),
                }
            }
            bytes
        }
        _ => GOOD[..rng.below(GOOD.len())].to_vec(),
    }
}

/// The extremes, then random inputs, `count` in all (at least the
/// extremes).
fn inputs(seed: u64, count: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = Rng(seed);
    let extremes = extremes();
    let random = count.saturating_sub(extremes.len());
    extremes
        .into_iter()
        .chain((0..random).map(move |_| random_input(&mut rng)))
}

// ===== reload_now =====

/// Names input `i` in a failure message (its first 80 bytes).
fn describe(i: usize, bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]);
    format!("input {i} ({} bytes): {shown:?}", bytes.len())
}

/// Loads each input with `reload_now` and checks the outcome, the config
/// served and the failure count against a model: new valid content is
/// applied as the next generation, the content served is unchanged, and
/// anything else is refused for the reason `expect` gives, counted unless
/// it repeats the latest refusal.
fn fuzz_reload_now<T>(
    name: &str,
    builder: impl FnOnce(&Path) -> Builder<T>,
    expect: impl Fn(&[u8]) -> Expected<T>,
    initial: T,
) where
    T: DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static,
{
    let dir = TempDir::new(name);
    let path = dir.join("app.json");
    write_plain(&path, GOOD);
    let config = builder(&path)
        .watch(false)
        .clock(ManualClock::new())
        .start()
        .unwrap();

    let (mut served, mut served_bytes) = (initial, GOOD.to_vec());
    let (mut generation, mut failures) = (0, 0);
    let mut last_refused: Option<Vec<u8>> = None;
    let mut outcomes = [0_u32; 3]; // applied, unchanged, refused
    for (i, bytes) in inputs(0x00AC_4E1C_0FF1_6000, scaled(3_000) as usize).enumerate() {
        // Now and then the content served, or a fresh valid file, so that
        // every branch of the model is taken.
        let bytes = match i % 50 {
            0 => served_bytes.clone(),
            25 => format!(r#"{{"version": {}, "name": "fresh {i}"}}"#, i % 100).into_bytes(),
            _ => bytes,
        };
        write_plain(&path, &bytes);
        let context = describe(i, &bytes);
        let outcome = config.reload_now();
        if bytes == served_bytes {
            let outcome = outcome.unwrap_or_else(|e| panic!("{context}: {e:?}"));
            assert_eq!(
                outcome,
                ReloadOutcome::Unchanged { generation },
                "{context}"
            );
            last_refused = None;
            outcomes[1] += 1;
        } else {
            match expect(&bytes) {
                Expected::Valid(value) => {
                    let outcome = outcome.unwrap_or_else(|e| panic!("{context}: {e:?}"));
                    generation += 1;
                    assert_eq!(outcome, ReloadOutcome::Applied { generation }, "{context}");
                    (served, served_bytes) = (value, bytes);
                    last_refused = None;
                    outcomes[0] += 1;
                }
                expected => {
                    let err = outcome.expect_err(&context);
                    assert!(
                        reason_matches(err.reason(), &expected),
                        "{context}: {err:?}, expected {expected:?}"
                    );
                    if last_refused.as_ref() != Some(&bytes) {
                        failures += 1;
                    }
                    last_refused = Some(bytes);
                    outcomes[2] += 1;
                }
            }
        }
        let current = config.get();
        assert_eq!(
            (&*current, current.generation()),
            (&served, generation),
            "{context}"
        );
        assert_eq!(config.status().failures, failures, "{context}");
    }
    assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
    let status = config.status();
    assert_eq!(
        (status.generation, status.reloads),
        (generation, generation)
    );
}

/// A config type with required fields and a validator: almost every input is
/// refused, and the good config stays.
#[test]
fn hostile_files_never_replace_a_good_typed_config() {
    fuzz_reload_now(
        "fuzz_typed",
        |path| HotConfig::<Cfg>::builder(path).validate(validate),
        expect_cfg,
        Cfg {
            version: 1,
            name: "good".to_owned(),
        },
    );
}

/// `serde_json::Value` accepts any JSON, so the parser's own limits (depth,
/// number range, UTF-8) are what refuses here.
#[test]
fn hostile_files_never_replace_a_good_value_config() {
    fuzz_reload_now(
        "fuzz_value",
        |path| HotConfig::<serde_json::Value>::builder(path),
        expect_value,
        serde_json::from_slice(GOOD).unwrap(),
    );
}

// ===== start =====

/// `start` on a hostile file: with a default, the default is served and the
/// refusal recorded; without one, the start fails with the refusal.
#[test]
fn hostile_files_at_start() {
    let dir = TempDir::new("fuzz_start");
    let path = dir.join("app.json");
    let default = Cfg {
        version: 0,
        name: "default".to_owned(),
    };
    let mut refused = 0;
    for (i, bytes) in inputs(0x5EED_0F57_A470, scaled(100) as usize).enumerate() {
        write_plain(&path, &bytes);
        let context = describe(i, &bytes);
        let builder = || HotConfig::<Cfg>::builder(&path).validate(validate);
        let with_default = builder().default(default.clone()).start().expect(&context);
        let without_default = builder().start();
        match expect_cfg(&bytes) {
            Expected::Valid(cfg) => {
                assert_eq!(*with_default.get(), cfg, "{context}");
                assert!(with_default.status().content_hash.is_some(), "{context}");
                assert_eq!(*without_default.expect(&context).get(), cfg, "{context}");
            }
            expected => {
                refused += 1;
                let status = with_default.status();
                assert_eq!(*with_default.get(), default, "{context}");
                assert_eq!(
                    (status.generation, status.content_hash, status.failures),
                    (0, None, 1),
                    "{context}"
                );
                let err = status.last_error.expect("the refusal is recorded");
                assert!(
                    reason_matches(err.reason(), &expected),
                    "{context}: {err:?}"
                );
                match without_default {
                    Err(StartError::Load(err)) => {
                        assert!(
                            reason_matches(err.reason(), &expected),
                            "{context}: {err:?}"
                        );
                        assert_eq!(err.path(), path);
                    }
                    other => panic!("{context}: unexpected {other:?}"),
                }
            }
        }
    }
    // Every extreme at least (all of them are refused).
    assert!(refused >= extremes().len(), "{refused}");
}
