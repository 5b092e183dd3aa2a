//! The service: the current flag set behind a wait-free snapshot, updated
//! incrementally through a persistent map.

use std::fmt;
use std::sync::Arc;

use acqrel_core::{Snapshot, SnapshotRef};
use imbl::OrdMap;
use serde_json::{Map, Value as Json};

use crate::eval::{self, EvaluationContext, FlagValue, Resolution};
use crate::model::{Flag, FlagSet, Value, ValueKind};

/// The flag map one generation publishes. `OrdMap` (a B+tree sharing
/// structure between versions): a clone is O(1), an insert or remove
/// O(log n), so a generation that changes k flags costs O(k log n) and
/// shares everything else with the previous one.
pub(crate) type FlagMap = OrdMap<String, Arc<Flag>>;

/// What one generation publishes: the flags, and the flag set's own
/// metadata (returned for a key that names no flag, as flagd does).
#[derive(Clone, Default)]
pub(crate) struct Generation {
    pub(crate) flags: FlagMap,
    pub(crate) metadata: Arc<Map<String, Json>>,
}

impl Generation {
    fn of(set: FlagSet) -> Self {
        let metadata = Arc::new(set.metadata().clone());
        let flags = set
            .into_iter()
            .map(|flag| (flag.key().to_owned(), Arc::new(flag)))
            .collect();
        Self { flags, metadata }
    }

    fn resolve<T>(
        &self,
        key: &str,
        requested: ValueKind,
        default: T,
        ctx: &EvaluationContext,
        convert: impl FnOnce(&Value) -> Option<T>,
    ) -> Resolution<T> {
        let flag = self.flags.get(key).map(|flag| &**flag);
        eval::resolve(flag, key, &self.metadata, requested, default, ctx, convert)
    }
}

/// One change to a [`FlagStore`], for [`FlagStore::apply`].
///
/// # Examples
///
/// ```
/// use acqrel_flags::{Change, FlagSet, FlagStore};
///
/// let store = FlagStore::new();
/// let (set, _) = FlagSet::parse(r#"{"flags": {"a": {"state": "ENABLED", "variants": {"on": true}}}}"#).unwrap();
/// store.apply(set.into_iter().map(Change::Put));
/// assert!(store.snapshot().get("a").is_some());
/// store.apply([Change::Remove("a".into())]);
/// assert!(store.snapshot().get("a").is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Adds the flag, or replaces the flag with its key.
    Put(Flag),
    /// Removes the flag with this key, if there is one.
    Remove(String),
}

/// Feature flags for a whole service: evaluations read the current flag set
/// with one atomic load and no lock; updates publish a new generation
/// without stopping them.
///
/// Replaces the Go idiom of a `map[string]Flag` behind an
/// `atomic.Pointer`, copied whole under a mutex on every change: here the
/// map is persistent, so [`apply`](Self::apply) of a few changes to a large
/// set costs O(changes × log n), not a copy. The **release** is
/// [`apply`](Self::apply) and [`replace`](Self::replace) publishing through
/// an [`acqrel_core::Snapshot`]; the **acquire** is
/// [`snapshot`](Self::snapshot) (and every `resolve`), which sees a whole
/// generation or the next, never a mix.
///
/// Writers are serialized (the snapshot's writer lock; the closure run
/// under it only edits the map). Memory: the current generation's flags,
/// plus, for as long as a [`Flags`] view of an older generation is held,
/// the parts of that generation not shared with the current one.
///
/// # Examples
///
/// ```
/// use acqrel_flags::{EvaluationContext, FlagSet, FlagStore, Reason};
///
/// let json = r#"{"flags": {"checkout-v2": {
///     "state": "ENABLED",
///     "variants": {"on": true, "off": false},
///     "defaultVariant": "off",
///     "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on"]}
/// }}}"#;
/// let (set, warnings) = FlagSet::parse(json)?;
/// assert!(warnings.is_empty());
/// let store = FlagStore::from_set(set);
///
/// let staff = EvaluationContext::new().with_attribute("email", "ada@example.com");
/// let r = store.resolve("checkout-v2", false, &staff);
/// assert!(r.value);
/// assert_eq!(r.reason, Reason::TargetingMatch);
///
/// let guest = EvaluationContext::new().with_attribute("email", "bob@elsewhere.org");
/// assert_eq!(store.resolve("checkout-v2", false, &guest).reason, Reason::Default);
/// # Ok::<(), acqrel_flags::LoadError>(())
/// ```
pub struct FlagStore {
    flags: Snapshot<Generation>,
    /// Change events, published in generation order (`events.rs`).
    #[cfg(feature = "events")]
    events: crate::events::Events,
}

impl FlagStore {
    /// An empty store, at generation 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = acqrel_flags::FlagStore::new();
    /// assert_eq!(store.generation(), 0);
    /// assert!(store.snapshot().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with(Generation::default())
    }

    /// A store holding `set`, at generation 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, FlagStore};
    /// let (set, _) = FlagSet::parse(r#"{"flags": {"a": {"state": "ENABLED", "variants": {"on": true}}}}"#).unwrap();
    /// assert_eq!(FlagStore::from_set(set).snapshot().len(), 1);
    /// ```
    pub fn from_set(set: FlagSet) -> Self {
        Self::with(Generation::of(set))
    }

    /// The current flag set: one generation, consistent for as long as it
    /// is held, whatever is published meanwhile. Evaluate every flag of a
    /// request on one snapshot so they agree with each other.
    ///
    /// One atomic load and a reference count; no lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{Change, EvaluationContext, FlagSet, FlagStore};
    ///
    /// let on = r#"{"flags": {"a": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#;
    /// let store = FlagStore::from_set(FlagSet::parse(on).unwrap().0);
    /// let view = store.snapshot();
    /// store.apply([Change::Remove("a".into())]);
    /// // The view still sees its generation.
    /// assert!(view.resolve("a", false, &EvaluationContext::new()).value);
    /// assert_eq!(view.generation() + 1, store.generation());
    /// ```
    pub fn snapshot(&self) -> Flags {
        Flags {
            flags: self.flags.load_full(),
        }
    }

    /// The generation of the current flag set: 0 at creation, one more
    /// after each [`apply`](Self::apply) or [`replace`](Self::replace).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, FlagStore};
    /// let store = FlagStore::new();
    /// assert_eq!(store.replace(FlagSet::default()), 1);
    /// assert_eq!(store.generation(), 1);
    /// ```
    pub fn generation(&self) -> u64 {
        self.flags.generation()
    }

    /// Replaces every flag with those of `set` (and the flag set's
    /// metadata with `set`'s), and returns the new generation.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, FlagStore};
    ///
    /// let store = FlagStore::from_set(FlagSet::parse(r#"{"flags": {"a": {"state": "ENABLED", "variants": {"x": 1}}}}"#).unwrap().0);
    /// store.replace(FlagSet::parse(r#"{"flags": {"b": {"state": "ENABLED", "variants": {"x": 1}}}}"#).unwrap().0);
    /// let flags = store.snapshot();
    /// assert_eq!(flags.keys().collect::<Vec<_>>(), ["b"]);
    /// ```
    pub fn replace(&self, set: FlagSet) -> u64 {
        let next = Generation::of(set);
        self.publish(|_| next)
    }

    /// Applies `changes` in order (a later change to a key overrides an
    /// earlier one) as one new generation, and returns it. Costs
    /// O(changes × log n) for n flags: the new generation shares every
    /// untouched flag with the old one.
    ///
    /// `changes` is collected before the writer lock is taken, so no caller
    /// code runs under it. The flag set's metadata (from the last
    /// [`replace`](Self::replace)) is kept; each flag carries its own merged
    /// metadata.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{Change, EvaluationContext, FlagSet, FlagStore};
    ///
    /// let v1 = r#"{"flags": {"limit": {"state": "ENABLED", "variants": {"low": 10, "high": 100}, "defaultVariant": "low"}}}"#;
    /// let v2 = r#"{"flags": {"limit": {"state": "ENABLED", "variants": {"low": 10, "high": 100}, "defaultVariant": "high"}}}"#;
    /// let store = FlagStore::from_set(FlagSet::parse(v1).unwrap().0);
    /// let generation = store.apply(FlagSet::parse(v2).unwrap().0.into_iter().map(Change::Put));
    /// assert_eq!(generation, 1);
    /// assert_eq!(store.resolve("limit", 0_i64, &EvaluationContext::new()).value, 100);
    /// ```
    pub fn apply(&self, changes: impl IntoIterator<Item = Change>) -> u64 {
        let changes: Vec<(String, Option<Arc<Flag>>)> = changes
            .into_iter()
            .map(|change| match change {
                Change::Put(flag) => (flag.key().to_owned(), Some(Arc::new(flag))),
                Change::Remove(key) => (key, None),
            })
            .collect();
        self.publish(|old| {
            let mut next = old.clone();
            let map = &mut next.flags;
            for (key, flag) in &changes {
                match flag {
                    Some(flag) => {
                        map.insert(key.clone(), Arc::clone(flag));
                    }
                    None => {
                        map.remove(key);
                    }
                }
            }
            next
        })
    }

    /// Evaluates one flag on the current generation: the same as
    /// `self.snapshot().resolve(..)`. See [`Flags::resolve`].
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{ErrorCode, EvaluationContext, FlagStore, Reason};
    ///
    /// let r = FlagStore::new().resolve("missing", 7_i64, &EvaluationContext::new());
    /// assert_eq!((r.value, r.reason, r.error_code), (7, Reason::Error, Some(ErrorCode::FlagNotFound)));
    /// ```
    pub fn resolve<T: FlagValue>(
        &self,
        key: &str,
        default: T,
        ctx: &EvaluationContext,
    ) -> Resolution<T> {
        self.flags
            .load()
            .resolve(key, T::KIND, default, ctx, T::from_value)
    }
}

impl FlagStore {
    fn with(generation: Generation) -> Self {
        Self {
            flags: Snapshot::new(generation),
            #[cfg(feature = "events")]
            events: crate::events::Events::new(),
        }
    }

    /// Publishes `next(current)` as the next generation and returns its
    /// number. `next` runs under the snapshot's writer lock and only builds
    /// the new value. With feature `events`, the generation's change event
    /// is published too, in generation order, after the lock is released
    /// (`events.rs`).
    fn publish(&self, next: impl FnOnce(&Generation) -> Generation) -> u64 {
        #[cfg(feature = "events")]
        {
            let mut ticket = None;
            let generation = self.flags.update(|old| {
                let new = next(old);
                // The last step under the writer lock: this generation's
                // place in the publish order (O(1) map clones).
                let metadata_changed =
                    !Arc::ptr_eq(&old.metadata, &new.metadata) && old.metadata != new.metadata;
                ticket = Some(self.events.reserve(
                    old.flags.clone(),
                    new.flags.clone(),
                    metadata_changed,
                ));
                new
            });
            if let Some(ticket) = ticket {
                ticket.publish(generation);
            }
            generation
        }
        #[cfg(not(feature = "events"))]
        self.flags.update(next)
    }

    /// The change events (`events.rs` adds the subscribe methods).
    #[cfg(feature = "events")]
    pub(crate) fn events(&self) -> &crate::events::Events {
        &self.events
    }
}

impl Default for FlagStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FlagStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = self.flags.load();
        f.debug_struct("FlagStore")
            .field("generation", &flags.generation())
            .field("flags", &flags.flags.len())
            .finish()
    }
}

/// One generation of a [`FlagStore`]'s flags, from
/// [`FlagStore::snapshot`]: immutable, cheap to clone and to send between
/// threads.
///
/// # Examples
///
/// ```
/// use acqrel_flags::{EvaluationContext, FlagSet, FlagStore};
///
/// let json = r#"{"flags": {
///     "new-search": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
///     "search-limit": {"state": "ENABLED", "variants": {"small": 20, "large": 50}, "defaultVariant": "large"}
/// }}"#;
/// let store = FlagStore::from_set(FlagSet::parse(json).unwrap().0);
///
/// // Both flags of one request from one generation.
/// let flags = store.snapshot();
/// let ctx = EvaluationContext::new().with_targeting_key("user-1");
/// assert!(flags.resolve("new-search", false, &ctx).value);
/// assert_eq!(flags.resolve("search-limit", 10_i64, &ctx).value, 50);
/// ```
#[derive(Clone)]
pub struct Flags {
    flags: SnapshotRef<Generation>,
}

impl Flags {
    /// The generation this view holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(acqrel_flags::FlagStore::new().snapshot().generation(), 0);
    /// ```
    pub fn generation(&self) -> u64 {
        self.flags.generation()
    }

    /// The flag `key`, if this generation has it.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, FlagStore};
    /// let (set, _) = FlagSet::parse(r#"{"flags": {"a": {"state": "ENABLED", "variants": {"on": true}}}}"#).unwrap();
    /// let flags = FlagStore::from_set(set).snapshot();
    /// assert_eq!(flags.get("a").map(|f| f.key()), Some("a"));
    /// ```
    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.flags.flags.get(key).map(|flag| &**flag)
    }

    /// How many flags this generation has.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(acqrel_flags::FlagStore::new().snapshot().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.flags.flags.len()
    }

    /// Whether this generation has no flags.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(acqrel_flags::FlagStore::new().snapshot().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.flags.flags.is_empty()
    }

    /// The flag keys, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, FlagStore};
    /// let json = r#"{"flags": {"b": {"state": "ENABLED", "variants": {"x": 1}}, "a": {"state": "ENABLED", "variants": {"x": 1}}}}"#;
    /// let flags = FlagStore::from_set(FlagSet::parse(json).unwrap().0).snapshot();
    /// assert_eq!(flags.keys().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.flags.flags.keys().map(String::as_str)
    }

    /// The flags, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, FlagStore};
    /// let json = r#"{"flags": {"b": {"state": "ENABLED", "variants": {"x": 1}}, "a": {"state": "DISABLED", "variants": {"x": 1}}}}"#;
    /// let flags = FlagStore::from_set(FlagSet::parse(json).unwrap().0).snapshot();
    /// let states: Vec<_> = flags.iter().map(|flag| (flag.key(), flag.state().as_str())).collect();
    /// assert_eq!(states, [("a", "DISABLED"), ("b", "ENABLED")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &Flag> {
        self.flags.flags.values().map(|flag| &**flag)
    }

    /// Evaluates flag `key` for `ctx` as whatever type the flag has, for
    /// callers that do not know the type: a remote evaluation API such as
    /// OFREP, whose requests carry none.
    ///
    /// The reasons and error codes are those of [`resolve`](Self::resolve),
    /// except that `TypeMismatch` cannot happen; `value` is `None` exactly
    /// where a typed `resolve` serves the caller's default (no such flag,
    /// disabled, no default variant to fall back on, or an error), so the
    /// caller applies its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{EvaluationContext, FlagSet, FlagStore, Reason, Value};
    ///
    /// let json = r#"{"flags": {
    ///     "limit": {"state": "ENABLED", "variants": {"low": 10, "high": 100}, "defaultVariant": "low"},
    ///     "later": {"state": "ENABLED", "variants": {"on": true}}
    /// }}"#;
    /// let flags = FlagStore::from_set(FlagSet::parse(json).unwrap().0).snapshot();
    /// let ctx = EvaluationContext::new();
    /// let r = flags.evaluate("limit", &ctx);
    /// assert_eq!((r.value, r.variant.as_deref(), r.reason), (Some(Value::Int(10)), Some("low"), Reason::Static));
    /// // No default variant: the caller's own default.
    /// assert_eq!((flags.evaluate("later", &ctx).value, flags.evaluate("later", &ctx).reason), (None, Reason::Default));
    /// ```
    pub fn evaluate(&self, key: &str, ctx: &EvaluationContext) -> Resolution<Option<Value>> {
        let generation = &*self.flags;
        let flag = generation.flags.get(key).map(|flag| &**flag);
        // A missing flag is reported before the kind is looked at.
        let kind = flag.map_or(ValueKind::Bool, Flag::kind);
        eval::resolve(flag, key, &generation.metadata, kind, None, ctx, |value| {
            Some(Some(value.clone()))
        })
    }

    /// Evaluates flag `key` as a `T` for `ctx`, with `default` as the
    /// caller's default.
    ///
    /// Which reason, in the order checked:
    ///
    /// | case | `value` | `variant` | `reason` | `error_code` |
    /// |---|---|---|---|---|
    /// | no such flag | `default` | `None` | `Error` | `FlagNotFound` (the metadata is the flag set's) |
    /// | flag disabled | `default` | `None` | `Disabled` | — |
    /// | flag not of type `T` | `default` | `None` | `Error` | `TypeMismatch` |
    /// | targeting could not be compiled (load warning) | `default` | `None` | `Error` | `ParseError` |
    /// | no targeting | default variant | its name | `Static` | — |
    /// | targeting returns a variant's name (`true`/`false` name the variants `"true"`/`"false"`) | that variant | its name | `TargetingMatch` | — |
    /// | targeting returns `null` | default variant | its name | `Default` | — |
    /// | targeting fails, or returns anything else | `default` | `None` | `Error` | `ParseError` |
    ///
    /// Where the row serves the default variant and the flag has none
    /// (`defaultVariant` absent or `null`), the result is `default` with
    /// reason `Default` (flagd's "code default"). The type is checked
    /// before targeting runs, so a mismatched request is an error whatever
    /// the rule would pick.
    ///
    /// Never panics, whatever the context: an error inside the JsonLogic
    /// engine, even a panic, is a `ParseError`.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{EvaluationContext, FlagSet, FlagStore, Reason};
    ///
    /// let json = r#"{"flags": {"theme": {"state": "DISABLED", "variants": {"dark": "dark"}, "defaultVariant": "dark"}}}"#;
    /// let flags = FlagStore::from_set(FlagSet::parse(json).unwrap().0).snapshot();
    /// let r = flags.resolve("theme", "light".to_owned(), &EvaluationContext::new());
    /// assert_eq!((r.value.as_str(), r.variant, r.reason), ("light", None, Reason::Disabled));
    /// ```
    pub fn resolve<T: FlagValue>(
        &self,
        key: &str,
        default: T,
        ctx: &EvaluationContext,
    ) -> Resolution<T> {
        self.flags
            .resolve(key, T::KIND, default, ctx, T::from_value)
    }

    /// The flag set's own metadata (the top-level `metadata` of the last
    /// [`FlagStore::replace`]), which is also what a key naming no flag
    /// resolves with.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{FlagSet, FlagStore};
    ///
    /// let (set, _) = FlagSet::parse(r#"{"metadata": {"flagSetId": "web"}, "flags": {}}"#).unwrap();
    /// let flags = FlagStore::from_set(set).snapshot();
    /// assert_eq!(flags.metadata()["flagSetId"], "web");
    /// ```
    pub fn metadata(&self) -> &Map<String, Json> {
        &self.flags.metadata
    }

    /// [`resolve`](Self::resolve) with the type chosen at run time: the
    /// requested type is `default.kind()`. For callers that learn the type
    /// from their input (the CLI, a remote evaluation API).
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flags::{EvaluationContext, FlagSet, FlagStore, Value};
    ///
    /// let json = r#"{"flags": {"banner": {"state": "ENABLED", "variants": {"a": "Hello"}, "defaultVariant": "a"}}}"#;
    /// let flags = FlagStore::from_set(FlagSet::parse(json).unwrap().0).snapshot();
    /// let r = flags.resolve_value("banner", Value::String(String::new()), &EvaluationContext::new());
    /// assert_eq!(r.value, Value::String("Hello".into()));
    /// ```
    pub fn resolve_value(
        &self,
        key: &str,
        default: Value,
        ctx: &EvaluationContext,
    ) -> Resolution<Value> {
        let requested = default.kind();
        self.flags.resolve(key, requested, default, ctx, |value| {
            Some(match (value, requested) {
                (Value::Int(i), ValueKind::Float) => Value::Float(*i as f64),
                _ => value.clone(),
            })
        })
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flags")
            .field("generation", &self.generation())
            .field("flags", &self.len())
            .finish()
    }
}
