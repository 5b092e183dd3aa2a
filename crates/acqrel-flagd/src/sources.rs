//! The flag files: each watched on its own (acqrel-flags' `watch`), merged
//! into the one store the server evaluates.
//!
//! # How a reload reaches the served store
//!
//! Each `--uri` file gets a [`WatchedFlags`] with a store of its own. A
//! callback subscribed to that store's change events (before the file is
//! first loaded, so none is missed) re-merges every file into the served
//! store: flags by key, a later file winning a key two define; the flag
//! set's metadata the same way. The merge replaces the served store's
//! flags only when the result differs from what it serves, so a reload
//! that changes nothing (an edit that only moves whitespace, a file that
//! another file overrides entirely) publishes no generation: the ETag and
//! the change streams stay quiet.
//!
//! Merges are serialized by a mutex (two files' reloader threads can
//! finish at once); it is held while the served store is replaced, whose
//! own subscribers are the change streams' bus queues (no user code: a
//! push into a bounded queue each).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use acqrel_bus::Subscription;
use acqrel_flags::watch::{StartError as WatchStartError, Status};
use acqrel_flags::{Flag, FlagSet, FlagStore, FlagsChanged, LoadWarning, WatchedFlags};
use serde_json::{Map, Value as Json};

/// Why the flag files could not be loaded at start.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use acqrel_flagd::LoadFailure;
///
/// let dir = std::env::temp_dir().join(format!("acqrel-flagd-doc-load-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("flags.json");
/// std::fs::write(&path, r#"{"flags": {"f": {"state": "ON", "variants": {"on": true}}}}"#)?;
/// let store = std::sync::Arc::new(acqrel_flags::FlagStore::new());
/// let err: LoadFailure = acqrel_flagd::Sources::start(&[path.clone()], store, Duration::from_millis(50)).unwrap_err();
/// assert_eq!(err.path, path);
/// assert!(err.to_string().contains("$.flags.f.state"), "{err}");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct LoadFailure {
    /// The file.
    pub path: PathBuf,
    /// What went wrong (for a file that is not a flag file, its message
    /// names the JSON path at fault).
    #[source]
    pub source: WatchStartError,
}

/// The flag files being served: one watch per file, merged into one store.
///
/// Dropping it stops every watch (their threads are joined); the served
/// store keeps the last merged flags.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use acqrel_flags::{EvaluationContext, FlagStore};
///
/// let dir = std::env::temp_dir().join(format!("acqrel-flagd-doc-sources-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let (a, b) = (dir.join("a.json"), dir.join("b.json"));
/// std::fs::write(&a, r#"{"flags": {"x": {"state": "ENABLED", "variants": {"v": 1}, "defaultVariant": "v"}}}"#)?;
/// std::fs::write(&b, r#"{"flags": {"x": {"state": "ENABLED", "variants": {"v": 2}, "defaultVariant": "v"}}}"#)?;
/// let store = Arc::new(FlagStore::new());
/// let sources = acqrel_flagd::Sources::start(&[a, b], Arc::clone(&store), Duration::from_millis(50))?;
/// // The later file wins the key both define.
/// assert_eq!(store.resolve("x", 0_i64, &EvaluationContext::new()).value, 2);
/// # drop(sources);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sources {
    /// Declared first, so dropped first: the callbacks stop before the
    /// watches do.
    _subscriptions: Vec<Subscription<FlagsChanged>>,
    files: Vec<(PathBuf, WatchedFlags)>,
    merger: Arc<Merger>,
}

/// What every file's callback shares: the files' stores and the served one.
struct Merger {
    files: Vec<Arc<FlagStore>>,
    served: Arc<FlagStore>,
    /// Serializes merges; holds no data.
    lock: Mutex<()>,
}

impl Merger {
    /// Merges the files' current flags into the served store, unless that
    /// is what it serves already. Returns whether a generation was
    /// published.
    fn merge(&self) -> bool {
        let _merging = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut flags: BTreeMap<String, Flag> = BTreeMap::new();
        let mut metadata: Map<String, Json> = Map::new();
        for file in &self.files {
            let snapshot = file.snapshot();
            for flag in snapshot.iter() {
                flags.insert(flag.key().to_owned(), flag.clone());
            }
            for (key, value) in snapshot.metadata() {
                metadata.insert(key.clone(), value.clone());
            }
        }
        let current = self.served.snapshot();
        let unchanged = current.len() == flags.len()
            && current.metadata() == &metadata
            && flags
                .iter()
                .all(|(key, flag)| current.get(key) == Some(flag));
        if unchanged {
            return false;
        }
        let count = flags.len();
        let generation = self
            .served
            .replace(FlagSet::from_flags(flags.into_values(), metadata));
        tracing::info!(generation, flags = count, "published a new flag set");
        true
    }
}

impl Sources {
    /// Loads every file (in order; the first that fails stops the start),
    /// merges them into `served`, and watches them from then on with
    /// `debounce`.
    ///
    /// Blocks while it reads the files: call it off the async runtime
    /// (`spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`LoadFailure`] for the first file that is missing, unreadable, not
    /// JSON or not a flag file.
    ///
    /// # Examples
    ///
    /// See [`Sources`].
    pub fn start(
        paths: &[PathBuf],
        served: Arc<FlagStore>,
        debounce: Duration,
    ) -> Result<Sources, LoadFailure> {
        let stores: Vec<Arc<FlagStore>> = paths.iter().map(|_| Arc::new(FlagStore::new())).collect();
        let merger = Arc::new(Merger {
            files: stores.clone(),
            served,
            lock: Mutex::new(()),
        });
        // Subscribed before the first load, so no reload falls between
        // the load and the subscription.
        let subscriptions = stores
            .iter()
            .map(|store| {
                let merger = Arc::clone(&merger);
                store.subscribe_fn(move |_| {
                    merger.merge();
                })
            })
            .collect();
        let mut files = Vec::with_capacity(paths.len());
        for (path, store) in paths.iter().zip(stores) {
            let watched = WatchedFlags::builder(path)
                .store(store)
                .debounce(debounce)
                .start()
                .map_err(|source| LoadFailure {
                    path: path.clone(),
                    source,
                })?;
            for warning in watched.warnings() {
                tracing::warn!(file = %path.display(), %warning, "flag loads with a warning");
            }
            files.push((path.clone(), watched));
        }
        // The callbacks merged as each file loaded; once more in case every
        // file was empty (no change event, nothing merged yet).
        merger.merge();
        Ok(Sources {
            _subscriptions: subscriptions,
            files,
            merger,
        })
    }

    /// The store the files are merged into.
    ///
    /// # Examples
    ///
    /// See [`Sources`].
    pub fn served(&self) -> &Arc<FlagStore> {
        &self.merger.served
    }

    /// Each file with its watch's status (reloads applied and refused,
    /// the last refusal).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # let dir = std::env::temp_dir().join(format!("acqrel-flagd-doc-status-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("flags.json");
    /// # std::fs::write(&path, r#"{"flags": {}}"#)?;
    /// let sources = acqrel_flagd::Sources::start(&[path], Arc::default(), Duration::from_millis(50))?;
    /// let (_, status) = &sources.statuses()[0];
    /// assert_eq!(status.failures, 0);
    /// # drop(sources);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn statuses(&self) -> Vec<(&Path, Status)> {
        self.files
            .iter()
            .map(|(path, watched)| (path.as_path(), watched.status()))
            .collect()
    }

    /// The warnings of every file's version being served.
    ///
    /// # Examples
    ///
    /// See [`Sources::statuses`].
    pub fn warnings(&self) -> Vec<LoadWarning> {
        self.files
            .iter()
            .flat_map(|(_, watched)| watched.warnings())
            .collect()
    }
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("files", &self.files.iter().map(|(path, _)| path).collect::<Vec<_>>())
            .field("generation", &self.merger.served.generation())
            .finish()
    }
}
