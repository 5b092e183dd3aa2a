//! Flags loaded from a flag file and kept current (feature `watch`):
//! [`WatchedFlags`], an `acqrel-config` [`HotConfig`] feeding a
//! [`FlagStore`].
//!
//! # How a reload reaches the store
//!
//! The [`HotConfig`] reads the file, parses it with [`FlagSet::parse`]
//! (inside its decoding step, through a private `FlagFile` type) and
//! refuses content that is not a flag file (its validator step returns the
//! [`LoadError`]); it debounces file events, skips unchanged content, and
//! keeps the refusals in its [`Status`]. Every version it serves is then
//! copied into the store with one [`FlagStore::replace`] by the *applier*:
//!
//! - the `HotConfig`'s [`on_change`](HotConfig::on_change) callback, on its
//!   reloader thread, for reloads from file events and polling;
//! - [`WatchedFlags::reload_now`], on the caller's thread, so that when it
//!   returns the store serves what it read.
//!
//! Both run one procedure, which replaces the store's flags only with a
//! version newer than the last one applied, so an older file can never
//! overwrite a newer one. One thread applies at a time (the *runner*, a
//! role taken and given back under a small mutex; the mutex is never held
//! while the store is replaced, since replacing runs the store's event
//! subscribers). A `reload_now` that finds another runner waits for it to
//! apply its version; the reloader thread's callback never waits: the
//! runner re-reads the newest version after each replace and applies it
//! too. The parsed [`FlagSet`] is moved into the store, not copied (the
//! `HotConfig` keeps only the warnings). With feature `events`, the store's
//! change events for a reload are published from the thread applying it
//! (the reloader's, or the caller of `reload_now`).
//!
//! The `acqrel-config` types this API returns ([`Status`], [`ReloadError`]
//! and its [`Reason`], [`ReloadOutcome`], [`StartError`]) are re-exported
//! here.

use std::fmt;
use std::path::Path;
// The store is shared data, not synchronization: a std `Arc` in every build
// (it is in the public API).
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use acqrel_config::{ConfigRef, HotConfig};
pub use acqrel_config::{Reason, ReloadError, ReloadOutcome, StartError, Status};
use acqrel_core::Clock;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::sync::{self, Condvar, Mutex};
use crate::{FlagSet, FlagStore, LoadError, LoadWarning};

// ===== FlagFile =====

/// What the `HotConfig` holds for one version of the file.
struct FlagFile {
    /// The parsed flags, until the applier moves them into the store.
    flags: Mutex<Option<FlagSet>>,
    /// The load's warnings (flags whose targeting cannot be resolved).
    warnings: Vec<LoadWarning>,
    /// Why the text is JSON but not a flag file; the validator refuses the
    /// version then.
    error: Option<LoadError>,
}

impl FlagFile {
    fn new(flags: FlagSet, warnings: Vec<LoadWarning>) -> Self {
        FlagFile {
            flags: Mutex::new(Some(flags)),
            warnings,
            error: None,
        }
    }
}

impl<'de> Deserialize<'de> for FlagFile {
    /// Takes the JSON text as it is and parses it with [`FlagSet::parse`]
    /// (which wants the text). Text that is not JSON fails here, as the
    /// `HotConfig`'s `Reason::Parse`; JSON that is not a flag file loads
    /// with `error` set, for the validator to refuse with the typed
    /// [`LoadError`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Box::<RawValue>::deserialize(deserializer)?;
        Ok(match FlagSet::parse(text.get()) {
            Ok((flags, warnings)) => FlagFile::new(flags, warnings),
            Err(error) => FlagFile {
                flags: Mutex::new(None),
                warnings: Vec::new(),
                error: Some(error),
            },
        })
    }
}

/// The `HotConfig`'s validator: refuses a version that is not a flag file.
fn validate(file: &FlagFile) -> Result<(), LoadError> {
    match &file.error {
        Some(error) => Err(error.clone()),
        None => Ok(()),
    }
}

// ===== WatchedFlags =====

/// A [`FlagStore`] that follows a flagd flag file: loaded at start,
/// reloaded when the file changes, through `acqrel-config`'s [`HotConfig`]
/// (directory watch, debounce, content hash, injected clock).
///
/// Each version of the file that loads becomes one new generation of the
/// store ([`FlagStore::replace`]), so the store's readers, and its change
/// events under feature `events`, follow the file. A version that does not
/// load (not JSON, or not the shape of a flag file) is refused whole: the
/// store keeps the flags it has, and the refusal is kept in
/// [`status`](Self::status) (`last_error`, `failures`) and logged by
/// `acqrel-config`. A flag whose targeting cannot be resolved does not
/// refuse the file: it loads (and evaluates with `PARSE_ERROR`), and the
/// load's [`warnings`](Self::warnings) say why.
///
/// Two threads run while watching: `acqrel-config`'s reloader and its file
/// watcher. [`stop`](Self::stop), or dropping the handle, stops and joins
/// them; the store keeps serving the last flags applied.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("acqrel-flags-doc-watched-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use acqrel_flags::{EvaluationContext, WatchedFlags};
///
/// let path = dir.join("flags.json");
/// std::fs::write(&path, r#"{"flags": {"beta": {
///     "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#)?;
/// let watched = WatchedFlags::builder(&path).start()?;
/// let ctx = EvaluationContext::new();
/// assert!(!watched.store().resolve("beta", true, &ctx).value);
///
/// std::fs::write(&path, r#"{"flags": {"beta": {
///     "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}}}"#)?;
/// watched.reload_now()?; // or wait for the file watcher
/// assert!(watched.store().resolve("beta", false, &ctx).value);
///
/// // A broken edit is refused; the flags stay.
/// std::fs::write(&path, r#"{"flags": {"beta": {"state": "ON"}}}"#)?;
/// assert!(watched.reload_now().is_err());
/// assert!(watched.store().resolve("beta", false, &ctx).value);
/// assert_eq!(watched.status().failures, 1);
/// # drop(watched);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WatchedFlags {
    /// Declared first, so dropped first: its reloader thread, which runs
    /// the applier, is stopped and joined before the rest goes.
    config: HotConfig<FlagFile>,
    applier: Arc<Applier>,
}

impl WatchedFlags {
    /// Starts configuring a watch of the flag file at `path`.
    ///
    /// # Examples
    ///
    /// See [`WatchedFlags`] and [`WatchBuilder`].
    pub fn builder(path: impl AsRef<Path>) -> WatchBuilder {
        WatchBuilder {
            config: HotConfig::builder(path).validate(validate),
            store: None,
        }
    }

    /// The store the file is loaded into: share it (it is an `Arc`) with
    /// the code that evaluates flags.
    ///
    /// # Examples
    ///
    /// See [`WatchedFlags`].
    pub fn store(&self) -> &Arc<FlagStore> {
        &self.applier.store
    }

    /// The warnings of the version of the file being served: one per flag
    /// whose targeting cannot be resolved (such a flag loads, and evaluates
    /// with `PARSE_ERROR`). Empty while a [default](WatchBuilder::default)
    /// is served.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-flags-doc-warnings-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use acqrel_flags::WatchedFlags;
    ///
    /// let path = dir.join("flags.json");
    /// std::fs::write(&path, r#"{"flags": {"f": {
    ///     "state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "missing"}}}}"#)?;
    /// let watched = WatchedFlags::builder(&path).start()?;
    /// let warnings = watched.warnings();
    /// assert_eq!(warnings.len(), 1);
    /// assert_eq!(warnings[0].flag_key(), "f");
    /// assert_eq!(warnings[0].path(), "$.flags.f.targeting");
    /// # drop(watched);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn warnings(&self) -> Vec<LoadWarning> {
        self.config.get().warnings.clone()
    }

    /// The file's reloads so far, and the last refusal: see
    /// [`Status`]. Its `generation` counts the versions of the file served
    /// (0 for the one loaded at start), not the store's generations.
    ///
    /// A version that is not JSON is refused with
    /// [`Reason::Parse`] (line, column); JSON
    /// that is not a flag file with
    /// [`Reason::Invalid`], whose error is
    /// the [`LoadError`] naming the JSON path.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-flags-doc-status-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use acqrel_flags::watch::Reason;
    /// use acqrel_flags::{LoadError, WatchedFlags};
    ///
    /// let path = dir.join("flags.json");
    /// std::fs::write(&path, r#"{"flags": {}}"#)?;
    /// let watched = WatchedFlags::builder(&path).watch(false).start()?;
    /// std::fs::write(&path, r#"{"flags": {"f": {"state": "ENABLED", "variants": {}}}}"#)?;
    /// assert!(watched.reload_now().is_err());
    ///
    /// let status = watched.status();
    /// assert_eq!((status.generation, status.failures), (0, 1));
    /// let error = status.last_error.expect("refused");
    /// let Reason::Invalid(cause) = error.reason() else { panic!("{error}") };
    /// let load_error = cause.downcast_ref::<LoadError>().expect("a LoadError");
    /// assert_eq!(load_error.path(), Some("$.flags.f.variants"));
    /// # drop(watched);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Status {
        self.config.status()
    }

    /// Re-reads the file now, on the calling thread, and if it changed and
    /// loads, replaces the store's flags with it. When this returns `Ok`,
    /// the store serves this version of the file or a newer one (unless it
    /// is called from a change callback of the store running on the thread
    /// applying a version: the version is then applied right after that
    /// callback returns).
    ///
    /// Blocking file I/O: from async code, call it through
    /// `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// The refusal ([`ReloadError`]) when the file cannot be read or does
    /// not load; the store keeps its flags. See [`status`](Self::status)
    /// for the reasons.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-flags-doc-reload-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use acqrel_flags::watch::ReloadOutcome;
    /// use acqrel_flags::WatchedFlags;
    ///
    /// let path = dir.join("flags.json");
    /// std::fs::write(&path, r#"{"flags": {}}"#)?;
    /// let watched = WatchedFlags::builder(&path).watch(false).start()?;
    /// assert_eq!(watched.reload_now()?, ReloadOutcome::Unchanged { generation: 0 });
    ///
    /// std::fs::write(&path, r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}"#)?;
    /// assert_eq!(watched.reload_now()?, ReloadOutcome::Applied { generation: 1 });
    /// assert_eq!(watched.store().snapshot().len(), 1);
    /// # drop(watched);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reload_now(&self) -> Result<ReloadOutcome, ReloadError> {
        let outcome = self.config.reload_now()?;
        self.applier
            .apply_newest(&|| self.config.get().into_ref(), Wait::Yes);
        Ok(outcome)
    }

    /// Blocks until the store has a version of the file newer than file
    /// generation `since` (as counted by [`status`](Self::status)'s
    /// `generation`: 0 for the version loaded at start, one more per reload
    /// applied), for at most `timeout`. Returns the file generation the
    /// store has, or `None` on timeout. For waiting on reloads made by the
    /// file watcher or by polling; [`reload_now`](Self::reload_now) needs
    /// no wait.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-flags-doc-wait-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::time::Duration;
    /// use acqrel_flags::WatchedFlags;
    ///
    /// let path = dir.join("flags.json");
    /// std::fs::write(&path, r#"{"flags": {}}"#)?;
    /// let watched = WatchedFlags::builder(&path).debounce(Duration::ZERO).start()?;
    /// assert_eq!(watched.wait_applied_timeout(0, Duration::ZERO), None);
    ///
    /// std::fs::write(&path, r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}"#)?;
    /// // The file watcher reloads it.
    /// assert_eq!(watched.wait_applied_timeout(0, Duration::from_secs(30)), Some(1));
    /// assert_eq!(watched.store().snapshot().len(), 1);
    /// # drop(watched);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_applied_timeout(&self, since: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = sync::lock(&self.applier.state);
        loop {
            if state.applied > since {
                return Some(state.applied);
            }
            // No deadline (a timeout too large to add): wait for as long as
            // it takes.
            let left = match deadline {
                Some(deadline) => deadline.checked_duration_since(Instant::now())?,
                None => Duration::MAX,
            };
            if left.is_zero() {
                return None;
            }
            state = sync::wait_timeout(&self.applier.progress, state, left);
        }
    }

    /// Stops watching: stops and joins the reloader and watcher threads
    /// (an apply under way on them completes first). Idempotent; dropping
    /// the handle does the same. The store keeps the flags applied, and
    /// [`reload_now`](Self::reload_now) still works.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-flags-doc-stop-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use acqrel_flags::WatchedFlags;
    ///
    /// let path = dir.join("flags.json");
    /// std::fs::write(&path, r#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}"#)?;
    /// let watched = WatchedFlags::builder(&path).start()?;
    /// let store = watched.store().clone();
    /// watched.stop();
    /// drop(watched);
    /// assert_eq!(store.snapshot().len(), 1);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&self) {
        self.config.stop();
    }
}

impl fmt::Debug for WatchedFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedFlags")
            .field("path", &self.config.path())
            .field("file_generation", &self.config.generation())
            .field("store", &self.applier.store)
            .finish()
    }
}

// ===== WatchBuilder =====

/// Configures and starts a [`WatchedFlags`]; made by
/// [`WatchedFlags::builder`]. Every knob but [`store`](Self::store) and
/// [`default`](Self::default) is `acqrel-config`'s
/// ([`acqrel_config::Builder`]), with its defaults.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("acqrel-flags-doc-builder-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use acqrel_core::ManualClock;
/// use acqrel_flags::{FlagSet, FlagStore, WatchedFlags};
///
/// let store = Arc::new(FlagStore::new());
/// let watched = WatchedFlags::builder(dir.join("flags.json")) // not written yet
///     .store(store.clone())
///     .default(FlagSet::default())
///     .debounce(Duration::from_millis(100))
///     .poll_interval(Duration::from_secs(30))
///     .max_size(1 << 20)
///     .clock(ManualClock::new())
///     .start()?;
/// assert!(Arc::ptr_eq(watched.store(), &store));
/// assert!(store.snapshot().is_empty()); // the default: no flags
/// assert!(watched.status().last_error.is_some()); // the missing file
/// # drop(watched);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WatchBuilder {
    config: acqrel_config::Builder<FlagFile>,
    store: Option<Arc<FlagStore>>,
}

impl WatchBuilder {
    /// Loads the file into `store` (its flags are replaced at start)
    /// instead of into a new store. For a store whose change events are
    /// subscribed to before the first load.
    ///
    /// # Examples
    ///
    /// See [`WatchBuilder`].
    pub fn store(mut self, store: Arc<FlagStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The flags to serve when the file is missing or refused at start.
    /// Without them, [`start`](Self::start) fails in that case.
    ///
    /// # Examples
    ///
    /// See [`WatchBuilder`].
    pub fn default(mut self, flags: FlagSet) -> Self {
        self.config = self.config.default(FlagFile::new(flags, Vec::new()));
        self
    }

    /// Quiet time after the last file event before the file is read
    /// ([`acqrel_config::Builder::debounce`]).
    ///
    /// # Examples
    ///
    /// See [`WatchBuilder`].
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.config = self.config.debounce(debounce);
        self
    }

    /// Also re-reads the file this often
    /// ([`acqrel_config::Builder::poll_interval`]).
    ///
    /// # Examples
    ///
    /// See [`WatchBuilder`].
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.config = self.config.poll_interval(every);
        self
    }

    /// Whether to watch the file's directory for events (`true` by default;
    /// [`acqrel_config::Builder::watch`]). Without, the file is re-read by
    /// polling and [`reload_now`](WatchedFlags::reload_now) only.
    ///
    /// # Examples
    ///
    /// See [`WatchedFlags::reload_now`].
    pub fn watch(mut self, watch: bool) -> Self {
        self.config = self.config.watch(watch);
        self
    }

    /// Refuses files larger than `bytes`
    /// ([`acqrel_config::Builder::max_size`]; 16 MiB by default).
    ///
    /// # Examples
    ///
    /// See [`WatchBuilder`].
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.config = self.config.max_size(bytes);
        self
    }

    /// The clock for debouncing, polling and the times in the status
    /// ([`acqrel_config::Builder::clock`]).
    ///
    /// # Examples
    ///
    /// See [`WatchBuilder`].
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.config = self.config.clock(clock);
        self
    }

    /// Loads the file, puts its flags in the store, and starts watching
    /// (`acqrel-config`'s reloader and watcher threads). Blocking (file
    /// I/O); from async code, call it through `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`StartError`]: the path names no file; the file cannot be read or
    /// does not load and no [`default`](Self::default) was given; the
    /// directory cannot be watched and no poll interval was given; the
    /// thread cannot be spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-flags-doc-start-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use acqrel_flags::watch::{Reason, StartError};
    /// use acqrel_flags::WatchedFlags;
    ///
    /// let path = dir.join("flags.json");
    /// std::fs::write(&path, "not json")?;
    /// let Err(StartError::Load(error)) = WatchedFlags::builder(&path).start() else { panic!() };
    /// assert!(matches!(error.reason(), Reason::Parse { line: 1, .. }));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(self) -> Result<WatchedFlags, StartError> {
        let config = self.config.start()?;
        let first = config.get().into_ref();
        let flags = sync::lock(&first.flags).take().unwrap_or_default();
        let store = match self.store {
            Some(store) => {
                store.replace(flags);
                store
            }
            None => Arc::new(FlagStore::from_set(flags)),
        };
        let applier = Arc::new(Applier {
            store,
            state: Mutex::new(ApplyState {
                applied: first.generation(),
                runner: None,
            }),
            progress: Condvar::new(),
        });
        drop(first);
        let on_change = Arc::clone(&applier);
        config.on_change(move |newest: &ConfigRef<FlagFile>| {
            on_change.apply_newest(&|| newest.clone(), Wait::No);
        });
        // A reload committed before the callback was registered was
        // announced to no one: catch up.
        applier.apply_newest(&|| config.get().into_ref(), Wait::Yes);
        Ok(WatchedFlags { config, applier })
    }
}

impl fmt::Debug for WatchBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchBuilder")
            .field("config", &self.config)
            .field("store", &self.store)
            .finish()
    }
}

// ===== Applier =====

/// Copies the versions the `HotConfig` serves into the store, newest last
/// (see the module's docs).
struct Applier {
    store: Arc<FlagStore>,
    state: Mutex<ApplyState>,
    /// Notified when `applied` moves or the runner role is given back.
    progress: Condvar,
}

/// Under [`Applier::state`].
struct ApplyState {
    /// The file generation (the `HotConfig`'s) the store has; only grows.
    applied: u64,
    /// The thread applying versions now, if any.
    runner: Option<ThreadId>,
}

/// Whether [`Applier::apply_newest`] waits for another thread applying.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// `reload_now` and `start`: return only once the store has the version
    /// current at the call.
    Yes,
    /// The reloader's callback: the runner re-reads the newest version
    /// after each replace, so it will apply this one.
    No,
}

impl Applier {
    /// Makes the store serve `newest()` (the newest version the `HotConfig`
    /// serves, or the one a callback was given), unless it has it or a
    /// newer one. One thread applies at a time, replacing the store with
    /// this mutex released; see the module's docs.
    fn apply_newest(&self, newest: &dyn Fn() -> ConfigRef<FlagFile>, wait: Wait) {
        let me = thread::current().id();
        let target = newest().generation();
        let mut state = sync::lock(&self.state);
        loop {
            if state.applied >= target {
                return;
            }
            match state.runner {
                None => break,
                // Called from a store callback on the runner's thread: it
                // re-reads the newest version when the callback returns.
                Some(runner) if runner == me => return,
                Some(_) if wait == Wait::No => return,
                Some(_) => state = sync::wait(&self.progress, state),
            }
        }
        state.runner = Some(me);
        // Gives the role back if a replace unwinds, so waiters do not hang.
        let guard = GiveBack(self);
        loop {
            let version = newest();
            if version.generation() <= state.applied {
                break;
            }
            drop(state);
            let flags = sync::lock(&version.flags).take();
            if let Some(flags) = flags {
                // The store's event subscribers may run here: no lock of
                // ours is held.
                self.store.replace(flags);
            }
            state = sync::lock(&self.state);
            state.applied = state.applied.max(version.generation());
            self.progress.notify_all();
        }
        state.runner = None;
        drop(state);
        self.progress.notify_all();
        std::mem::forget(guard);
    }
}

/// Clears [`ApplyState::runner`] and wakes the waiters when dropped (only
/// while unwinding out of a replace).
struct GiveBack<'a>(&'a Applier);

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        sync::lock(&self.0.state).runner = None;
        self.0.progress.notify_all();
    }
}
