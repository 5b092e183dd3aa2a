//! Feature flags: `acqrel_flags::FlagStore` beside `flagd-evaluation-engine`
//! 0.1 (flagd's own Rust engine, the evaluator of OpenFeature's flagd
//! provider for Rust) on the same flag definitions and the same contexts,
//! and `FlagStore::apply` beside the copy-the-whole-map update it replaces.
//!
//! Every measurement is single-threaded: one thread evaluates (or applies)
//! while nothing else runs. Evaluation from several threads at once is not
//! measured here (the development machine has 2 cores).
//!
//! # Evaluation groups
//!
//! Both sides load one flag file ([`FLAGS_JSON`]) once, before measuring:
//! ours with `FlagSet::parse` into a `FlagStore`, the anchor with
//! `FlagParser::parse_string` into its `HashMap<String, FeatureFlag>`. Both
//! get the same [`USERS`] users, each with a targeting key (`user-0000`,
//! ...) and an `email` attribute (`@example.com` for even users,
//! `@example.org` for odd ones), built once as each side's evaluation
//! context (ours `acqrel_flags::EvaluationContext`, the anchor's
//! `open_feature::EvaluationContext`). One iteration evaluates the group's
//! flag for the next user, round-robin, so no side answers one cached key.
//!
//! - `flags/static`: a string flag with no targeting (the default variant).
//! - `flags/attribute_rule`: a boolean flag whose targeting is
//!   `{"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}`.
//! - `flags/fractional`: a string flag whose targeting is
//!   `{"fractional": [["a", 50], ["b", 30], ["c", 20]]}`, bucketed by the
//!   targeting key.
//!
//! Ours: `FlagStore::resolve::<T>(key, default, &ctx)` (a snapshot load, then
//! the flag's targeting, compiled when the file was loaded), which returns
//! the value, the variant's name, the reason and the flag's metadata.
//!
//! The anchor, used as its README shows and as its provider does, with
//! everything reusable built once: one `Operator` (its JsonLogic engine with
//! flagd's operators registered), the parsed flags, and each flag's rule
//! already turned into the JSON text `Operator::apply` takes (what
//! `FeatureFlag::get_targeting` would rebuild on every call). Per
//! evaluation ([`Flagd::evaluate`]): the map lookup, the state check, then
//! for a flag with targeting `Operator::apply(key, rule, &ctx)`, which
//! returns the variant's name; a flag without targeting skips `apply` and
//! serves its default variant; the name is then looked up in the flag's
//! variants and the value converted to the asked type. That is the least a
//! correct evaluation with this crate can do. `Operator::apply` itself, by
//! its design, parses and re-serializes the rule text, compiles it, builds
//! the context as JSON (reading the clock for `$flagd.timestamp`),
//! serializes that to text for the engine to parse again, and parses the
//! result text: every evaluation with targeting pays all of it.
//!
//! Each side's answer for each user (value and variant) is computed once
//! before measuring and then checked inside the measured loop on every
//! evaluation, on both sides alike, so a wrong or unstable answer panics
//! instead of being measured. For the static flag and the attribute rule
//! both sides must give the same answers. For the fractional rule they are
//! not required to: the anchor hashes the CBOR encoding of
//! `[flagKey, targetingKey]` (the bucketing of flagd's newer ADR on
//! non-string bucketing values), ours the concatenation
//! `flagKey + targetingKey` (flagd's fractional specification), so they
//! put some users in different buckets; the bench prints how many of the
//! [`USERS`] agree before the groups run. Each side's distribution still
//! follows the weights (both hash with MurmurHash3), and the work per
//! evaluation is nearly the same: one hash over a short key (the anchor
//! CBOR-encodes it first) and a walk over three weights.
//!
//! # `flags/apply_1_of_100000`
//!
//! A set of [`APPLY_FLAGS`] flags ([`many_flags_json`], parsed once); one
//! iteration replaces one of them (`flag-050000`, alternating between two
//! versions that differ in their default variant) and publishes the new
//! set.
//!
//! - Ours: `FlagStore::apply([Change::Put(flag)])`, a persistent map's
//!   insert (O(log n) new nodes) and one publication.
//! - Anchor: the update the issue's guide describes, the flags in a
//!   `HashMap<String, Arc<Flag>>` behind an atomic pointer with a
//!   generation: clone the whole map under the writer lock, insert the
//!   changed flag, publish the copy (`acqrel_core::Snapshot::update`, the
//!   same publication ours uses, so the two differ only in the map). The
//!   old map is freed inside the iteration, as it would be in a service
//!   with no reader holding it.
//!
//! The changed flag is made ready outside the timing on both sides
//! (`iter_batched`: ours clones a `Flag`, the anchor clones an `Arc<Flag>`).
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use acqrel_core::Snapshot;
use acqrel_flags::{Change, EvaluationContext, Flag, FlagSet, FlagStore, FlagValue};
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group};
use flagd_evaluation_engine::{FeatureFlag, FlagParser, Operator};
use serde_json::Value as Json;

/// Users each evaluation group cycles through; a power of two.
const USERS: usize = 1_024;

const _: () = assert!(USERS.is_power_of_two());

/// Flags in the `apply` group's set.
const APPLY_FLAGS: usize = 100_000;

const OURS_RESOLVE: &str = "acqrel::FlagStore::resolve";
const FLAGD: &str = "flagd_evaluation_engine::FeatureFlag+Operator::apply";
const OURS_APPLY: &str = "acqrel::FlagStore::apply";
const HASHMAP_COPY: &str = "std::HashMap<String,Arc<Flag>>::clone+insert";

/// The evaluation groups' flag file, loaded by both sides.
const FLAGS_JSON: &str = r##"{
  "flags": {
    "banner-color": {
      "state": "ENABLED",
      "variants": {"red": "#f00", "blue": "#00f"},
      "defaultVariant": "blue"
    },
    "staff-beta": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}
    },
    "checkout-rollout": {
      "state": "ENABLED",
      "variants": {"a": "checkout-a", "b": "checkout-b", "c": "checkout-c"},
      "defaultVariant": "a",
      "targeting": {"fractional": [["a", 50], ["b", 30], ["c", 20]]}
    }
  }
}"##;

// ===== The anchor =====

/// `flagd-evaluation-engine` as a user of the crate holds it: the parsed
/// flags and one `Operator`, built once.
struct Flagd {
    operator: Operator,
    flags: HashMap<String, FlagdFlag>,
}

/// One parsed flag and its rule as the text `Operator::apply` takes.
struct FlagdFlag {
    flag: FeatureFlag,
    /// `None` for a flag without targeting.
    rule: Option<String>,
}

impl Flagd {
    /// Parses `json` with the crate's `FlagParser`.
    fn load(json: &str) -> Self {
        let parsed = FlagParser::parse_string(json).expect("the anchor loads the flag file");
        let flags = parsed
            .flags
            .into_iter()
            .map(|(key, flag)| {
                let rule = flag.targeting.as_ref().map(|_| flag.get_targeting());
                (key, FlagdFlag { flag, rule })
            })
            .collect();
        Self {
            operator: Operator::new(),
            flags,
        }
    }

    /// The value and the variant's name of flag `key` for `ctx`; `None`
    /// where the caller's default would be served (no such flag, disabled,
    /// a rule that failed or named no variant). A rule returning `null`
    /// serves the default variant.
    #[inline]
    fn evaluate(
        &self,
        key: &str,
        ctx: &open_feature::EvaluationContext,
    ) -> Option<(&Json, String)> {
        let FlagdFlag { flag, rule } = self.flags.get(key)?;
        if flag.state != "ENABLED" {
            return None;
        }
        let variant = match rule {
            None => flag.default_variant.clone(),
            Some(rule) => match self.operator.apply(key, rule, ctx) {
                Ok(Some(name)) => name,
                Ok(None) => flag.default_variant.clone(),
                Err(_) => return None,
            },
        };
        let value = flag.variants.get(&variant)?;
        Some((value, variant))
    }
}

// ===== Users =====

/// One user, as each side's evaluation context.
struct User {
    ours: EvaluationContext,
    flagd: open_feature::EvaluationContext,
}

/// [`USERS`] users: targeting key `user-NNNN`, `email` at `example.com`
/// for even users and at `example.org` for odd ones.
fn users() -> Vec<User> {
    (0..USERS)
        .map(|i| {
            let key = format!("user-{i:04}");
            let domain = if i % 2 == 0 {
                "example.com"
            } else {
                "example.org"
            };
            let email = format!("{key}@{domain}");
            User {
                ours: EvaluationContext::new()
                    .with_targeting_key(key.clone())
                    .with_attribute("email", email.clone()),
                flagd: open_feature::EvaluationContext::default()
                    .with_targeting_key(key)
                    .with_custom_field("email", email),
            }
        })
        .collect()
}

// ===== Evaluation groups =====

/// A type both sides are asked for.
trait Asked: FlagValue + Clone + PartialEq + fmt::Debug {
    /// The caller's default: never served in these groups.
    fn default_value() -> Self;
    /// The anchor's JSON variant value as this type.
    fn from_flagd(value: &Json) -> Option<Self>;
}

impl Asked for String {
    fn default_value() -> Self {
        // Allocates nothing: the default costs no side anything.
        String::new()
    }

    #[inline]
    fn from_flagd(value: &Json) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }
}

impl Asked for bool {
    fn default_value() -> Self {
        false
    }

    #[inline]
    fn from_flagd(value: &Json) -> Option<Self> {
        value.as_bool()
    }
}

/// An answer: the value and the variant's name.
type Answer<T> = (T, String);

/// Everything the evaluation groups share, built once.
struct Setup {
    store: FlagStore,
    flagd: Flagd,
    users: Vec<User>,
}

impl Setup {
    fn new() -> Self {
        let (set, warnings) = FlagSet::parse(FLAGS_JSON).expect("ours loads the flag file");
        assert!(warnings.is_empty(), "{warnings:?}");
        Self {
            store: FlagStore::from_set(set),
            flagd: Flagd::load(FLAGS_JSON),
            users: users(),
        }
    }

    /// Ours: flag `key` for `user`. Panics unless a variant was served.
    #[inline]
    fn ours<T: Asked>(&self, key: &str, user: &User) -> Answer<T> {
        let resolution = self.store.resolve(key, T::default_value(), &user.ours);
        match resolution.variant {
            Some(variant) => (resolution.value, variant),
            None => panic!("ours served no variant of {key}: {:?}", resolution.reason),
        }
    }

    /// The anchor: flag `key` for `user`. Panics unless a variant of type
    /// `T` was served.
    #[inline]
    fn flagd<T: Asked>(&self, key: &str, user: &User) -> Answer<T> {
        let (value, variant) = self
            .flagd
            .evaluate(key, &user.flagd)
            .unwrap_or_else(|| panic!("the anchor served no variant of {key}"));
        let value = T::from_flagd(value).unwrap_or_else(|| {
            panic!("the anchor's {key} is not a {}", std::any::type_name::<T>())
        });
        (value, variant)
    }

    /// Each side's answer for each user.
    fn answers<T: Asked>(&self, key: &str) -> (Vec<Answer<T>>, Vec<Answer<T>>) {
        let ours = self.users.iter().map(|u| self.ours(key, u)).collect();
        let flagd = self.users.iter().map(|u| self.flagd(key, u)).collect();
        (ours, flagd)
    }
}

/// Whether the two sides must give every user the same answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Agree {
    /// They must: the flag's semantics are the same on both sides.
    Always,
    /// They may differ (the fractional bucketing, see the file's docs).
    NotRequired,
}

/// Group `flags/{name}`: flag `key` asked as a `T`, ours and the anchor,
/// each iteration the next user, each answer checked against the one that
/// side gave that user before measuring.
fn eval_group<T: Asked>(c: &mut Criterion, setup: &Setup, name: &str, key: &str, agree: Agree) {
    let (ours_answers, flagd_answers) = setup.answers::<T>(key);
    if agree == Agree::Always {
        assert_eq!(ours_answers, flagd_answers, "{key}: the two sides disagree");
    }
    let mut group = c.benchmark_group(format!("flags/{name}"));
    round_robin(&mut group, OURS_RESOLVE, &setup.users, &ours_answers, |u| {
        setup.ours(key, u)
    });
    round_robin(&mut group, FLAGD, &setup.users, &flagd_answers, |u| {
        setup.flagd(key, u)
    });
    group.finish();
}

/// Measures `evaluate` under `id`: each iteration evaluates for the next
/// user, round-robin, and panics unless the answer is `answers[user]`.
fn round_robin<T: Asked>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    users: &[User],
    answers: &[Answer<T>],
    evaluate: impl Fn(&User) -> Answer<T>,
) {
    group.bench_function(id, |b| {
        let mut next = 0;
        b.iter(|| {
            let i = next;
            next = (next + 1) & (USERS - 1);
            let answer = evaluate(&users[i]);
            assert!(answer == answers[i], "{id} changed its answer for user {i}");
            answer
        });
    });
}

fn evaluation(c: &mut Criterion) {
    let setup = Setup::new();
    eval_group::<String>(c, &setup, "static", "banner-color", Agree::Always);
    eval_group::<bool>(c, &setup, "attribute_rule", "staff-beta", Agree::Always);
    eval_group::<String>(
        c,
        &setup,
        "fractional",
        "checkout-rollout",
        Agree::NotRequired,
    );
}

/// Prints how many users the two sides put in the same fractional bucket,
/// and each side's bucket counts.
fn print_fractional_agreement() {
    let setup = Setup::new();
    let (ours, flagd) = setup.answers::<String>("checkout-rollout");
    let same = ours.iter().zip(&flagd).filter(|(a, b)| a == b).count();
    let counts = |answers: &[Answer<String>]| {
        ["a", "b", "c"].map(|v| answers.iter().filter(|(_, name)| name == v).count())
    };
    println!(
        "flags/fractional: the two sides agree on {same} of {USERS} users \
         (buckets a/b/c: ours {:?}, flagd-evaluation-engine {:?}; weights 50/30/20)",
        counts(&ours),
        counts(&flagd),
    );
}

// ===== flags/apply_1_of_100000 =====

/// The key of flag `i` of the `apply` group's set.
fn flag_key(i: usize) -> String {
    format!("flag-{i:06}")
}

/// One flag of the `apply` group's set, as a JSON member.
fn write_flag(out: &mut String, key: &str, default_variant: &str) {
    write!(
        out,
        r#""{key}": {{"state": "ENABLED", "variants": {{"on": true, "off": false}}, "defaultVariant": "{default_variant}"}}"#
    )
    .expect("writing to a String does not fail");
}

/// A flag file of `n` boolean flags `flag-000000`, ..., all off.
fn many_flags_json(n: usize) -> String {
    let mut json = String::with_capacity(n * 100);
    json.push_str(r#"{"flags": {"#);
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        write_flag(&mut json, &flag_key(i), "off");
    }
    json.push_str("}}");
    json
}

/// Flag `key` of the `apply` group's set with `default_variant`, parsed
/// from a file of its own.
fn one_flag(key: &str, default_variant: &str) -> Flag {
    let mut json = String::from(r#"{"flags": {"#);
    write_flag(&mut json, key, default_variant);
    json.push_str("}}");
    let (set, _) = FlagSet::parse(&json).expect("one flag parses");
    set.get(key).expect("the flag just parsed").clone()
}

/// Which of the changed flag's two versions the set holds after `puts`
/// alternating puts (starting from version 0, as loaded).
fn current(puts: u64) -> usize {
    usize::from(puts % 2 == 1)
}

fn apply_1_of_100000(c: &mut Criterion) {
    let (set, warnings) =
        FlagSet::parse(&many_flags_json(APPLY_FLAGS)).expect("the big set parses");
    assert!(warnings.is_empty());
    assert_eq!(set.len(), APPLY_FLAGS);
    let key = flag_key(APPLY_FLAGS / 2);
    // The changed flag's two versions: as loaded (off), then on. Each
    // iteration puts the one the last did not, so after `puts` puts the
    // set holds `versions[current(puts)]`.
    let versions = [one_flag(&key, "off"), one_flag(&key, "on")];
    let map: HashMap<String, Arc<Flag>> = set
        .iter()
        .map(|flag| (flag.key().to_owned(), Arc::new(flag.clone())))
        .collect();
    let store = FlagStore::from_set(set);
    let cell = Snapshot::new(map);

    let mut group = c.benchmark_group(format!("flags/apply_1_of_{APPLY_FLAGS}"));
    // Criterion runs a side zero times when a filter leaves it out, so the
    // checks below count the puts instead of assuming them.
    let start = store.generation();
    let mut puts = 0_u64;
    group.bench_function(OURS_APPLY, |b| {
        b.iter_batched(
            || {
                puts += 1;
                versions[current(puts)].clone()
            },
            |flag| store.apply([Change::Put(flag)]),
            BatchSize::SmallInput,
        );
    });
    let snapshot = store.snapshot();
    assert_eq!(
        snapshot.generation(),
        start + puts,
        "one generation per apply"
    );
    assert_eq!(snapshot.len(), APPLY_FLAGS);
    assert_eq!(snapshot.get(&key), Some(&versions[current(puts)]));

    let shared = versions.clone().map(Arc::new);
    let start = cell.generation();
    let mut puts = 0_u64;
    group.bench_function(HASHMAP_COPY, |b| {
        b.iter_batched(
            || {
                puts += 1;
                Arc::clone(&shared[current(puts)])
            },
            |flag| {
                cell.update(|map| {
                    let mut copy = map.clone();
                    copy.insert(flag.key().to_owned(), flag);
                    copy
                })
            },
            BatchSize::SmallInput,
        );
    });
    let map = cell.load();
    assert_eq!(cell.generation(), start + puts, "one generation per update");
    assert_eq!(map.len(), APPLY_FLAGS);
    assert_eq!(
        map.get(&key).map(|flag| &**flag),
        Some(&versions[current(puts)])
    );
    group.finish();
}

// ===== main =====

criterion_group!(benches, evaluation, apply_1_of_100000);

/// `criterion_main!`, with the fractional agreement printed first.
fn main() {
    print_fractional_agreement();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
