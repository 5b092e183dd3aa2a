//! A feature-flag service on a wait-free snapshot, compatible with flagd's
//! flag definitions and bucketing.
//!
//! The guide's flags service keeps a `map[string]Flag` behind an
//! `atomic.Pointer` with a generation counter: a lookup is one load, and
//! `Apply` copies the whole map under a mutex. Users of flags need more than
//! that: a standard flag format (flagd's JSON, which OpenFeature users
//! already write), targeting rules, percentage rollouts that put each user
//! in the same bucket whichever flagd-compatible SDK evaluates them, cheap
//! updates of large flag sets, and change events.
//!
//! | Go idiom | Type | Release | Acquire |
//! |---|---|---|---|
//! | `atomic.Pointer[map[string]Flag]` + generation; `Apply` copying the map under a mutex | [`FlagStore`] | [`apply`](FlagStore::apply) / [`replace`](FlagStore::replace): the new generation is published by `acqrel_core::Snapshot` (an arc-swap store, Release, under the snapshot's writer lock) | [`snapshot`](FlagStore::snapshot) and every `resolve` (the snapshot's Acquire load) |
//! | holding `p.Load()` for a whole request | [`Flags`] | — | one view, one generation, however long it is held |
//! | `json.Unmarshal` of the flag file into the map | [`FlagSet::parse`] | — | — |
//! | a goroutine watching the flag file and calling `Apply` | `watch::WatchedFlags` (feature `watch`) | a reload's [`replace`](FlagStore::replace) | as above |
//! | a `chan FlagChange` fed after each `Apply` | `FlagStore::subscribe`, `FlagStore::subscribe_fn` (feature `events`) | a slot filled, then handed to the one drainer, both under the events queue's mutex | the drainer taking it under that mutex, then the bus's publish |
//!
//! The crate has no atomics of its own: its one lock-free publication is
//! `acqrel_core::Snapshot`'s, whose orderings are loom-checked there
//! (`crates/acqrel-core/tests/loom_snapshot.rs`). What this crate adds is
//! what travels through it: flag sets that are immutable once published
//! (a persistent map of `Arc<Flag>`s, shared between generations), so a
//! reader that acquired a generation reads it whole while writers move on;
//! and, with `events`, a protocol that publishes change events in
//! generation order without running a subscriber under a lock (described in
//! the `events` module, loom-modelled in `tests/loom_events.rs` with two
//! mutants that must fail).
//!
//! # Contents
//!
//! - [`FlagSet::parse`]: flagd's flag-definition JSON, checked whole (an
//!   error names the JSON path), with shared `$evaluators` resolved, metadata
//!   merged, and each targeting rule compiled once (a rule that cannot be
//!   compiled loads with a warning and evaluates to `PARSE_ERROR`).
//! - [`FlagStore`], [`Flags`]: the service; [`Flags::resolve`] evaluates a
//!   flag as a [`FlagValue`] type for an [`EvaluationContext`] and returns a
//!   [`Resolution`] (value, variant, [`Reason`], [`ErrorCode`], metadata).
//! - [`ops`]: flagd's custom targeting operators, `fractional` (MurmurHash3
//!   x86-32 bucketing, flagd's current algorithm), `sem_ver`, `starts_with`
//!   and `ends_with`, as pure functions.
//! - Features: `watch` (load a flag file and hot-reload it through
//!   acqrel-config; a rejected file keeps the flags), `events` (which keys
//!   each generation added, changed or removed, through acqrel-bus),
//!   `openfeature` (an `open-feature` `FeatureProvider` over a store).
//! - The `acqrel-flags` binary: `validate FILE` and `eval --flags FILE`.
//!
//! How evaluation matches flagd, where it deliberately differs, and what it
//! costs: `docs/patterns/feature-flags.md`.
//!
//! # Example
//!
//! ```
//! use acqrel_flags::{EvaluationContext, FlagSet, FlagStore, Reason};
//!
//! let json = r#"{"flags": {"new-checkout": {
//!     "state": "ENABLED",
//!     "variants": {"on": true, "off": false},
//!     "defaultVariant": "off",
//!     "targeting": {"fractional": [["on", 10], ["off", 90]]}
//! }}}"#;
//! let (set, warnings) = FlagSet::parse(json)?;
//! assert!(warnings.is_empty());
//! let store = FlagStore::from_set(set);
//!
//! let ctx = EvaluationContext::new().with_targeting_key("user-1234");
//! let r = store.resolve("new-checkout", false, &ctx);
//! assert_eq!(r.reason, Reason::TargetingMatch);
//! // The same user gets the same answer every time (and in every
//! // flagd-compatible SDK).
//! assert_eq!(store.resolve("new-checkout", false, &ctx).value, r.value);
//! # Ok::<(), acqrel_flags::LoadError>(())
//! ```

#![doc(test(attr(deny(warnings))))]

mod eval;
mod model;
pub mod ops;
mod store;
mod sync;

#[cfg(feature = "events")]
pub mod events;
#[cfg(feature = "openfeature")]
pub mod openfeature;
#[cfg(feature = "watch")]
pub mod watch;

pub use crate::eval::{ErrorCode, EvaluationContext, FlagValue, Reason, Resolution};
#[cfg(feature = "events")]
pub use crate::events::FlagsChanged;
pub use crate::model::{
    Flag, FlagSet, FlagState, LoadError, LoadWarning, Targeting, Value, ValueKind,
};
pub use crate::store::{Change, FlagStore, Flags};
#[cfg(feature = "watch")]
pub use crate::watch::{WatchBuilder, WatchedFlags};

/// The guide page's examples, compiled and run as doc tests so that they
/// cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/patterns/feature-flags.md")]
struct FeatureFlagsGuide;
