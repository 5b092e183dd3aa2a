//! A feature-flag service on a wait-free snapshot, compatible with flagd's
//! flag definitions and bucketing.
//!
//! The guide's flags service keeps a map of flags behind an atomic pointer
//! with a generation counter: a lookup is one load, and `Apply` copies the
//! whole map under a mutex. Users of flags need more than that: a standard
//! flag format (flagd's JSON, which OpenFeature users already write),
//! targeting rules, percentage rollouts that put each user in the same
//! bucket in every SDK, cheap updates of large flag sets, and change
//! events.
//!
//! # Contents
//!
//! - [`FlagSet::parse`]: flagd's flag-definition JSON, checked whole (an
//!   error names the JSON path), with shared `$evaluators` resolved and
//!   metadata merged.
//! - [`ops`]: flagd's custom targeting operators, `fractional` (MurmurHash3
//!   x86-32 bucketing, flagd's current algorithm), `sem_ver`, `starts_with`
//!   and `ends_with`, over already-evaluated JSON arguments.

mod eval;
mod model;
pub mod ops;
mod store;

#[cfg(feature = "events")]
mod events;
#[cfg(feature = "openfeature")]
pub mod openfeature;
#[cfg(feature = "watch")]
mod watch;

pub use crate::eval::{ErrorCode, EvaluationContext, FlagValue, Reason, Resolution};
pub use crate::model::{
    Flag, FlagSet, FlagState, LoadError, LoadWarning, Targeting, Value, ValueKind,
};
pub use crate::store::{Change, FlagStore, Flags};
