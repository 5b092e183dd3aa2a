//! flagd's custom operators against flagd's published vectors: MurmurHash3
//! reference hashes, the flagd test bed's `fractional` (v2) and `sem_ver`
//! tables, SemVer 2.0.0 precedence, a bucketing distribution check, and a
//! fixed-seed fuzz that feeds random JSON to every operator.

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;

use acqrel_flags::ops::{ends_with, fractional, murmur3_x86_32, sem_ver, starts_with};
use common::Rng;
use serde_json::{Value, json};

// ===== MurmurHash3 =====

/// The SMHasher verification inputs plus the common string vectors.
#[test]
fn murmur3_reference_vectors() {
    let vectors: [(&[u8], u32, u32); 14] = [
        (b"", 0, 0x0000_0000),
        (b"", 1, 0x514E_28B7),
        (b"", 0xFFFF_FFFF, 0x81F1_6F39),
        (&[0x00, 0x00, 0x00, 0x00], 0, 0x2362_F9DE),
        (&[0xFF, 0xFF, 0xFF, 0xFF], 0, 0x7629_3B50),
        (&[0x21, 0x43, 0x65, 0x87], 0, 0xF55B_516B),
        (&[0x21], 0, 0x7266_1CF4),
        (b"test", 0, 0xBA6B_D213),
        (b"hello", 0, 0x248B_FA47),
        (b"abc", 0, 0xB3DD_93FA),
        (b"Hello, world!", 0, 0xC036_3E43),
        (
            b"The quick brown fox jumps over the lazy dog",
            0,
            0x2E4F_F723,
        ),
        ("special characters açb↓c".as_bytes(), 0, 0xBE83_B140),
        (b"aaaa", 0x9747_B28C, 0x5A97_808A),
    ];
    for (input, seed, expected) in vectors {
        assert_eq!(
            murmur3_x86_32(input, seed),
            expected,
            "input {input:02x?}, seed {seed:#010x}"
        );
    }
}

// ===== fractional =====

/// The test bed's four equal suits.
fn suits(weight: Value) -> Vec<Value> {
    ["clubs", "diamonds", "hearts", "spades"]
        .into_iter()
        .map(|suit| json!([suit, weight]))
        .collect()
}

/// `distributions` behind an explicit (evaluated) bucketing value.
fn bucketed(bucketing: Value, distributions: &[Value]) -> Vec<Value> {
    let mut args = vec![bucketing];
    args.extend_from_slice(distributions);
    args
}

/// `fractional` with an explicit bucketing string and no targeting key.
fn pick(bucketing: &str, distributions: &[Value]) -> Option<Value> {
    fractional(
        "unused-flag",
        None,
        &bucketed(json!(bucketing), distributions),
    )
}

/// Test-bed names with their v2 suit for flag `fractional-flag`, whose rule
/// buckets by `cat($flagd.flagKey, user.name)`.
const FRACTIONAL_FLAG: [(&str, &str); 5] = [
    ("jack", "hearts"),
    ("queen", "spades"),
    ("ten", "clubs"),
    ("nine", "diamonds"),
    ("3", "clubs"),
];

#[test]
fn testbed_fractional_flag() {
    for (name, suit) in FRACTIONAL_FLAG {
        let expected = Some(json!(suit));
        let key = format!("fractional-flag{name}");
        assert_eq!(pick(&key, &suits(json!(25))), expected, "{name}");
        // The default key is the same bytes: flag key, then targeting key.
        assert_eq!(
            fractional("fractional-flag", Some(name), &suits(json!(25))),
            expected,
            "{name} by targeting key"
        );
        // A null bucketing value (a missing `var`) falls back to the default key.
        assert_eq!(
            fractional(
                "fractional-flag",
                Some(name),
                &bucketed(Value::Null, &suits(json!(25)))
            ),
            expected,
            "{name} after null"
        );
    }
}

/// Rules that bucket by `cat("shared-seed", user.name)`: the same users land
/// together whichever flag uses the seed, and the explicit value wins over
/// the targeting key.
#[test]
fn testbed_shared_seed() {
    for (name, suit) in [
        ("jack", "hearts"),
        ("queen", "hearts"),
        ("ten", "hearts"),
        ("nine", "clubs"),
        ("3", "clubs"),
    ] {
        let args = bucketed(json!(format!("shared-seed{name}")), &suits(json!(25)));
        for flag_key in ["flag-one", "flag-two"] {
            assert_eq!(
                fractional(flag_key, Some("someone-else"), &args),
                Some(json!(suit)),
                "{name} on {flag_key}"
            );
        }
    }
}

/// With three weight-1 variants, "fractional-flag" + jack/queen/ten fall in
/// buckets 1, 2 and 0 (`(hash × 3) >> 32`).
const THREE_WAY: [(&str, &str); 3] = [("jack", "b"), ("queen", "c"), ("ten", "a")];

#[test]
fn bare_variant_has_weight_one() {
    let bare = [json!(["a"]), json!(["b"]), json!(["c"])];
    for (name, variant) in THREE_WAY {
        let key = format!("fractional-flag{name}");
        assert_eq!(pick(&key, &bare), Some(json!(variant)), "{name}");
    }
    assert_eq!(pick("anyone", &[json!(["only"])]), Some(json!("only")));
}

#[test]
fn null_weight_is_one() {
    let mixed = [json!(["a", null]), json!(["b", 1]), json!(["c"])];
    for (name, variant) in THREE_WAY {
        let key = format!("fractional-flag{name}");
        assert_eq!(pick(&key, &mixed), Some(json!(variant)), "{name}");
    }
}

/// Weights that nested JsonLogic computed: arithmetic yields whole floats,
/// which count like integers; a fraction is rejected.
#[test]
fn computed_weights() {
    for (name, suit) in FRACTIONAL_FLAG {
        let key = format!("fractional-flag{name}");
        assert_eq!(pick(&key, &suits(json!(25.0))), Some(json!(suit)), "{name}");
    }
    // {"-": [100, {"var": "rollout"}]} evaluated with rollout 30: 70.0.
    let rollout = [json!(["on", 30]), json!(["off", 70.0])];
    let on = (0..1_000)
        .filter(|i| pick(&format!("user-{i}"), &rollout) == Some(json!("on")))
        .count();
    assert_eq!(on, count_in_first_bucket(1_000, 30, 100));
    assert_eq!(
        pick("user-1", &[json!(["on", 33.3]), json!(["off", 66.7])]),
        None
    );
}

/// How many of `user-0`..`user-{n-1}` hash below `first` of `total`, by the
/// formula, for cross-checking computed weights.
fn count_in_first_bucket(n: u32, first: u64, total: u64) -> usize {
    (0..n)
        .filter(|i| {
            let hash = u64::from(murmur3_x86_32(format!("user-{i}").as_bytes(), 0));
            (hash * total) >> 32 < first
        })
        .count()
}

#[test]
fn negative_weight_counts_as_zero() {
    let args = [json!(["a", -5]), json!(["b", 1]), json!(["c", -1.0])];
    for (name, _) in FRACTIONAL_FLAG {
        assert_eq!(
            pick(&format!("fractional-flag{name}"), &args),
            Some(json!("b"))
        );
    }
    assert_eq!(pick("anyone", &[json!(["a", -5])]), None, "total 0");
    assert_eq!(
        pick("anyone", &[json!(["a", 0]), json!(["b", 0])]),
        None,
        "total 0"
    );
}

#[test]
fn weights_over_the_int32_limit() {
    let max = i32::MAX;
    // At the limit: "fractional-flagjack" lands in bucket 1,341,399,535.
    assert_eq!(
        pick(
            "fractional-flagjack",
            &[json!(["a", max - 1]), json!(["b", 1])]
        ),
        Some(json!("a"))
    );
    assert_eq!(
        pick("fractional-flagjack", &[json!(["a", max])]),
        Some(json!("a"))
    );
    // Over it: one weight, or the sum.
    assert_eq!(
        pick("fractional-flagjack", &[json!(["a", i64::from(max) + 1])]),
        None
    );
    assert_eq!(
        pick("fractional-flagjack", &[json!(["a", max]), json!(["b", 1])]),
        None
    );
    assert_eq!(
        pick(
            "fractional-flagjack",
            &[json!(["a", 1 << 30]), json!(["b", 1 << 30])]
        ),
        None
    );
    assert_eq!(pick("fractional-flagjack", &[json!(["a", u64::MAX])]), None);
    assert_eq!(pick("fractional-flagjack", &[json!(["a", 1e300])]), None);
}

#[test]
fn missing_targeting_key_is_null() {
    assert_eq!(fractional("fractional-flag", None, &suits(json!(25))), None);
    assert_eq!(
        fractional(
            "fractional-flag",
            None,
            &bucketed(Value::Null, &suits(json!(25)))
        ),
        None
    );
}

#[test]
fn non_string_bucketing_value_is_null() {
    for bucketing in [json!(3), json!(3.5), json!(true), json!({"name": "jack"})] {
        let args = bucketed(bucketing.clone(), &suits(json!(25)));
        assert_eq!(
            fractional("fractional-flag", Some("jack"), &args),
            None,
            "{bucketing}"
        );
    }
}

#[test]
fn non_string_variants_are_returned_as_json() {
    // "fractional-flagjack" is in bucket 1 of 2, "fractional-flagten" in 0.
    let booleans = [json!([true, 1]), json!([false, 1])];
    assert_eq!(
        pick("fractional-flagjack", &booleans),
        Some(Value::Bool(false))
    );
    assert_eq!(
        pick("fractional-flagten", &booleans),
        Some(Value::Bool(true))
    );
    let others = [json!([null, 1]), json!([7, 1])];
    assert_eq!(pick("fractional-flagjack", &others), Some(json!(7)));
    assert_eq!(pick("fractional-flagten", &others), Some(Value::Null));
}

#[test]
fn malformed_arguments_are_null() {
    let cases: [(&str, Vec<Value>); 9] = [
        ("no arguments", vec![]),
        ("no distributions", vec![json!("key")]),
        ("distribution not an array", vec![json!("key"), json!("a")]),
        ("empty distribution", vec![json!("key"), json!([])]),
        ("object variant", vec![json!("key"), json!([{"a": 1}, 1])]),
        ("array variant", vec![json!("key"), json!([["a"], 1])]),
        ("string weight", vec![json!("key"), json!(["a", "1"])]),
        ("bool weight", vec![json!("key"), json!(["a", true])]),
        // Every entry is checked, not only those before the chosen one.
        (
            "bad entry last",
            vec![json!("key"), json!(["a", 1]), json!(["b", "x"])],
        ),
    ];
    for (what, args) in cases {
        assert_eq!(fractional("flag", Some("user"), &args), None, "{what}");
    }
}

/// 50/30/20 over `user-0`.. (at least 20,000 keys, 100,000 natively), each
/// share within one percentage point of its weight.
#[test]
fn distribution_50_30_20() {
    let keys = common::scaled(100_000).max(20_000);
    let weights: [(&str, u64); 3] = [("a", 50), ("b", 30), ("c", 20)];
    let args: Vec<Value> = weights.iter().map(|(v, w)| json!([v, w])).collect();
    let mut counts = [0_u64; 3];
    for i in 0..keys {
        let picked = fractional("distribution-flag", Some(&format!("user-{i}")), &args);
        let index = weights
            .iter()
            .position(|(variant, _)| picked == Some(json!(variant)));
        match index {
            Some(index) => counts[index] += 1,
            None => panic!("user-{i} got {picked:?}"),
        }
    }
    assert_eq!(counts.iter().sum::<u64>(), keys);
    for ((variant, weight), count) in weights.iter().zip(counts) {
        // |count / keys - weight / 100| <= 1 / 100, in integers.
        let error = (count * 100).abs_diff(weight * keys);
        assert!(
            error <= keys,
            "{variant}: {count} of {keys}, expected {weight}% ± 1%"
        );
    }
}

// ===== sem_ver =====

fn sem(version: Value, op: &str, target: Value) -> Option<bool> {
    sem_ver(&[version, json!(op), target])
}

/// The test bed's `equal-greater-lesser-version-flag`: `=`, then `>`, then
/// `<`, else (also when every operator is null) "none".
fn equal_greater_lesser(version: &str, target: &str) -> &'static str {
    let (version, target) = (json!(version), json!(target));
    if sem(version.clone(), "=", target.clone()) == Some(true) {
        "equal"
    } else if sem(version.clone(), ">", target.clone()) == Some(true) {
        "greater"
    } else if sem(version, "<", target) == Some(true) {
        "lesser"
    } else {
        "none"
    }
}

#[test]
fn testbed_equal_greater_lesser() {
    for (version, expected) in [
        ("2.0.0", "equal"),
        ("2.1.0", "greater"),
        ("1.9.0", "lesser"),
        ("2.0.0-alpha", "lesser"),
        ("2.0.0.0", "none"),
    ] {
        assert_eq!(
            equal_greater_lesser(version, "2.0.0"),
            expected,
            "{version}"
        );
    }
    assert_eq!(sem(json!("2.0.0.0"), "=", json!("2.0.0")), None);
}

#[test]
fn testbed_major_minor() {
    // `major-minor-version-flag`: `~` gives "minor", then `^` gives "major".
    for (version, tilde, caret) in [
        ("3.0.1", true, true),
        ("3.1.0", false, true),
        ("4.0.0", false, false),
    ] {
        assert_eq!(
            sem(json!(version), "~", json!("3.0.0")),
            Some(tilde),
            "{version} ~"
        );
        assert_eq!(
            sem(json!(version), "^", json!("3.0.0")),
            Some(caret),
            "{version} ^"
        );
    }
}

/// Every operator on every pair of a list sorted by precedence.
fn assert_strictly_increasing(versions: &[&str]) {
    for (i, lower) in versions.iter().enumerate() {
        for (j, upper) in versions.iter().enumerate() {
            let (a, b) = (json!(lower), json!(upper));
            let expected = [
                ("=", i == j),
                ("!=", i != j),
                ("<", i < j),
                ("<=", i <= j),
                (">", i > j),
                (">=", i >= j),
            ];
            for (op, holds) in expected {
                assert_eq!(
                    sem(a.clone(), op, b.clone()),
                    Some(holds),
                    "{lower} {op} {upper}"
                );
            }
        }
    }
}

#[test]
fn semver_spec_precedence() {
    // SemVer 2.0.0 §11, both of its examples.
    assert_strictly_increasing(&["1.0.0", "2.0.0", "2.1.0", "2.1.1"]);
    assert_strictly_increasing(&[
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]);
    // Numeric parts compare as numbers, however long.
    assert_strictly_increasing(&["1.9.0", "1.10.0", "10.0.0", "99999999999999999999.0.0"]);
}

#[test]
fn v_prefix_is_stripped() {
    for (version, target) in [
        ("v1.0.0", "1.0.0"),
        ("1.0.0", "v1.0.0"),
        ("V1.0.0", "v1.0.0"),
    ] {
        assert_eq!(
            sem(json!(version), "=", json!(target)),
            Some(true),
            "{version}"
        );
    }
    assert_eq!(sem(json!("2.0.0"), "=", json!("v1.0.0")), Some(false));
    assert_eq!(sem(json!("vv1.0.0"), "=", json!("1.0.0")), None);
}

#[test]
fn partial_versions_are_padded() {
    assert_eq!(sem(json!("1"), "=", json!("1.0.0")), Some(true));
    assert_eq!(sem(json!("1.2"), "=", json!("1.2.0")), Some(true));
    assert_eq!(sem(json!("v1.2"), "<", json!("1.2.1")), Some(true));
    // The test bed's `semver-partial-version-flag` (`^` against "1").
    for (version, matches) in [("1.5.0", true), ("1.0.0", true), ("2.0.0", false)] {
        assert_eq!(
            sem(json!(version), "^", json!("1")),
            Some(matches),
            "{version}"
        );
    }
    // As in flagd, a padded version takes no pre-release or build part.
    assert_eq!(sem(json!("1.2-rc.1"), "<", json!("1.2.0")), None);
    assert_eq!(sem(json!("1+build"), "=", json!("1.0.0")), None);
}

#[test]
fn numbers_are_read_as_versions() {
    assert_eq!(sem(json!(1), "=", json!("1.0.0")), Some(true));
    assert_eq!(sem(json!(1.5), "=", json!("1.5.0")), Some(true));
    assert_eq!(sem(json!("2.3.4"), "^", json!(2)), Some(true));
    assert_eq!(sem(json!("2.3.4"), "~", json!(2.3)), Some(true));
    assert_eq!(sem(json!(2), ">", json!(1.9)), Some(true));
    assert_eq!(sem(json!(-1), "=", json!("1.0.0")), None);
}

#[test]
fn build_metadata_is_ignored() {
    // The test bed's `semver-build-metadata-flag` (`=` against "1.0.0+build").
    for (version, matches) in [("1.0.0", true), ("1.0.0+other", true), ("2.0.0", false)] {
        assert_eq!(
            sem(json!(version), "=", json!("1.0.0+build")),
            Some(matches),
            "{version}"
        );
    }
    assert_eq!(
        sem(json!("1.0.0-rc.1+b.2"), "<", json!("1.0.0+a")),
        Some(true)
    );
    assert_eq!(sem(json!("1.0.0+"), "=", json!("1.0.0")), None);
}

#[test]
fn invalid_sem_ver_arguments_are_null() {
    let valid = json!("1.0.0");
    let cases: [(&str, Vec<Value>); 11] = [
        ("no arguments", vec![]),
        ("two arguments", vec![valid.clone(), json!("=")]),
        (
            "four arguments",
            vec![valid.clone(), json!("="), valid.clone(), valid.clone()],
        ),
        (
            "unknown operator",
            vec![valid.clone(), json!("=="), valid.clone()],
        ),
        (
            "operator not a string",
            vec![valid.clone(), json!(1), valid.clone()],
        ),
        ("null version", vec![Value::Null, json!("="), valid.clone()]),
        ("bool target", vec![valid.clone(), json!("="), json!(true)]),
        (
            "leading zero",
            vec![json!("01.0.0"), json!("="), valid.clone()],
        ),
        (
            "pre-release leading zero",
            vec![json!("1.0.0-01"), json!("<"), valid.clone()],
        ),
        (
            "empty pre-release",
            vec![json!("1.0.0-"), json!("<"), valid.clone()],
        ),
        ("empty", vec![json!(""), json!("<"), valid.clone()]),
    ];
    for (what, args) in cases {
        assert_eq!(sem_ver(&args), None, "{what}");
    }
}

// ===== starts_with / ends_with =====

#[test]
fn starts_with_and_ends_with() {
    let email = json!("user@faas.com");
    assert_eq!(starts_with(&[email.clone(), json!("user@")]), Some(true));
    assert_eq!(starts_with(&[email.clone(), json!("USER@")]), Some(false));
    assert_eq!(starts_with(&[email.clone(), json!("")]), Some(true));
    assert_eq!(ends_with(&[email.clone(), json!("faas.com")]), Some(true));
    assert_eq!(ends_with(&[email.clone(), json!("FAAS.com")]), Some(false));
    assert_eq!(ends_with(&[email.clone(), json!("user@")]), Some(false));
    assert_eq!(ends_with(&[json!("çb↓"), json!("↓")]), Some(true));
}

/// The test bed's `ends_with [{"var": "id"}, 3]` with id "3": no match,
/// because nothing is converted to a string.
#[test]
fn non_string_arguments_are_null() {
    for op in [starts_with, ends_with] {
        assert_eq!(op(&[json!("3"), json!(3)]), None);
        assert_eq!(op(&[json!(3), json!("3")]), None);
        assert_eq!(op(&[Value::Null, json!("a")]), None);
        assert_eq!(op(&[json!("a")]), None);
        assert_eq!(op(&[json!("a"), json!("a"), json!("a")]), None);
    }
}

// ===== fuzz =====

/// This file's inputs, from the shared fixed-seed generator.
impl Rng {
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    /// A version-like string: half the time a well-formed version, else
    /// valid pieces and near misses glued together.
    fn version(&mut self) -> String {
        const PIECES: [&str; 14] = [
            "1", "0", "2", "10", "01", ".", ".", "-", "+", "alpha", "beta.11", "v", "rc.1", "é",
        ];
        const NUMBERS: [&str; 4] = ["0", "1", "2", "10"];
        const SUFFIXES: [&str; 6] = ["", "", "-alpha", "-alpha.1", "-rc.1+b", "+build.7"];
        if self.below(2) == 0 {
            let [major, minor, patch] = [(); 3].map(|()| self.pick(&NUMBERS));
            format!("{major}.{minor}.{patch}{}", self.pick(&SUFFIXES))
        } else {
            (0..1 + self.below(7)).map(|_| self.pick(&PIECES)).collect()
        }
    }

    /// Any JSON value, biased towards the shapes the operators read.
    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 7 } else { 9 }) {
            0 => Value::Null,
            1 => Value::Bool(self.next_u64() & 1 == 1),
            2 => json!(self.pick(&[0, 1, -1, 25, 2_147_483_647, 2_147_483_648, i64::MIN])),
            3 => json!(self.pick(&[u64::MAX, 7])),
            4 => json!(self.pick(&[0.5, 25.0, -3.0, 1e300, 1.5, -0.0])),
            5 => json!(self.pick(&["", "a", "clubs", "=", "<", "^", "~", ">=", "!=", "↓"])),
            6 => json!(self.version()),
            7 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            _ => json!({ "k": self.value(depth - 1) }),
        }
    }

    /// A list of 0 to 4 arguments.
    fn args(&mut self) -> Vec<Value> {
        (0..self.below(5)).map(|_| self.value(2)).collect()
    }

    /// A version argument: usually version-like text, else any value.
    fn version_arg(&mut self) -> Value {
        if self.below(4) == 0 {
            self.value(1)
        } else {
            json!(self.version())
        }
    }

    /// Two short strings half the time, else any arguments.
    fn string_args(&mut self) -> Vec<Value> {
        const WORDS: [&str; 5] = ["", "a", "ab", "ba", "↓"];
        if self.below(2) == 0 {
            vec![json!(self.pick(&WORDS)), json!(self.pick(&WORDS))]
        } else {
            self.args()
        }
    }

    /// Mostly well-formed `fractional` arguments, with random entries mixed in.
    fn fractional_args(&mut self) -> Vec<Value> {
        let mut args = Vec::new();
        if self.below(2) == 0 {
            args.push(self.value(1));
        }
        for _ in 0..self.below(5) {
            let entry = match self.below(4) {
                0 => self.value(2),
                1 => json!([self.value(0)]),
                _ => json!([self.value(0), self.value(0)]),
            };
            args.push(entry);
        }
        args
    }
}

/// Checks a `fractional` answer against its arguments: a variant comes
/// from one of the distributions, and a first argument that is neither a
/// string, null nor an array gives none. Returns whether there was one.
fn check_fractional(args: &[Value], targeting_key: Option<&str>) -> bool {
    let answer = fractional("fuzz-flag", targeting_key, args);
    if matches!(
        args.first(),
        Some(Value::Bool(_) | Value::Number(_) | Value::Object(_))
    ) {
        assert_eq!(answer, None, "{args:?}");
    }
    let Some(variant) = answer else {
        return false;
    };
    let offered = args
        .iter()
        .any(|entry| entry.as_array().and_then(|items| items.first()) == Some(&variant));
    assert!(offered, "{variant} not offered in {args:?}");
    true
}

/// Random input never panics, and whatever each operator returns is
/// consistent with its arguments.
#[test]
fn fuzz_never_panics() {
    let mut rng = Rng(0x0AC0_4E1F_1A65);
    let mut answered = [0_u32; 3];
    // At least 500 rounds, so that every operator answers some (checked at
    // the end) under Miri too.
    for _ in 0..common::scaled(20_000).max(500) {
        // fractional: a result is one of the variants offered.
        let targeting_key = rng.pick(&[None, Some(""), Some("user-1")]);
        if check_fractional(&rng.fractional_args(), targeting_key) {
            answered[0] += 1;
        }
        check_fractional(&rng.args(), targeting_key);

        // sem_ver: all or none of the operators answer, and they agree.
        let version = rng.version_arg();
        let target = rng.version_arg();
        let table = ["=", "!=", "<", "<=", ">", ">=", "^", "~"]
            .map(|op| sem(version.clone(), op, target.clone()));
        if let [
            Some(eq),
            Some(ne),
            Some(lt),
            Some(le),
            Some(gt),
            Some(ge),
            Some(_),
            Some(_),
        ] = table
        {
            answered[1] += 1;
            assert_eq!((ne, le, ge), (!eq, !gt, !lt), "{version} vs {target}");
            assert_eq!(u8::from(eq) + u8::from(lt) + u8::from(gt), 1);
            assert_eq!(sem(target.clone(), "<", version.clone()), Some(gt));
        } else {
            assert_eq!(table, [None; 8], "{version} vs {target}");
        }
        let args = rng.args();
        if args.len() != 3 {
            assert_eq!(sem_ver(&args), None, "{args:?}");
        }

        // starts_with / ends_with: only two strings get an answer.
        let args = rng.string_args();
        let expected = match args.as_slice() {
            [Value::String(value), Value::String(pattern)] => {
                answered[2] += 1;
                Some((
                    value.starts_with(pattern.as_str()),
                    value.ends_with(pattern.as_str()),
                ))
            }
            _ => None,
        };
        assert_eq!(
            starts_with(&args).zip(ends_with(&args)),
            expected,
            "{args:?}"
        );
    }
    assert!(answered.iter().all(|&n| n > 0), "answers: {answered:?}");
}
