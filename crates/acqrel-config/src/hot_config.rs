//! The handle: wait-free reads, status, change delivery, explicit reloads
//! and the reloader thread's lifecycle.

use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use acqrel_core::{SnapshotGuard, SnapshotRef};
use serde::de::DeserializeOwned;

use crate::builder::Builder;
use crate::error::ReloadError;
use crate::shared::{Loaded, Shared};
use crate::subscription::Subscription;
use crate::sync::{self, Mutex};

/// A typed configuration loaded from a JSON file and kept current.
///
/// Replaces the Go idiom of an `atomic.Pointer[Config]` swapped by a reload
/// goroutine (the guide's Pattern 4 and its hot-reload example), plus the
/// capacity-1 reload channel that tells consumers about it. The **release**
/// is the reload committing a new config into its
/// [`Snapshot`](acqrel_core::Snapshot); the **acquire** is every [`get`],
/// [`wait_changed`], [`changed`], subscription item and callback.
///
/// A reloader thread watches the file's directory, debounces bursts of
/// events, re-reads the file and serves the new content only if it parses
/// and passes validation; otherwise the last good config stays, and the
/// refusal is recorded in [`status`] and logged with `tracing`. Dropping the
/// handle (or calling [`stop`]) stops the thread and the watcher.
///
/// [`get`]: HotConfig::get
/// [`wait_changed`]: HotConfig::wait_changed
/// [`changed`]: HotConfig::changed
/// [`status`]: HotConfig::status
/// [`stop`]: HotConfig::stop
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("acqrel-doc-hot-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use std::time::Duration;
/// use acqrel_config::HotConfig;
///
/// #[derive(serde::Deserialize)]
/// struct Limits { max_conns: u32 }
///
/// let path = dir.join("limits.json");
/// std::fs::write(&path, r#"{"max_conns": 10}"#)?;
/// let config = HotConfig::<Limits>::builder(&path)
///     .validate(|l: &Limits| if l.max_conns > 0 { Ok(()) } else { Err("max_conns must be positive") })
///     .start()?;
/// assert_eq!(config.get().max_conns, 10);
///
/// // Saved the way editors save: write a temporary file, rename it over.
/// let seen = config.generation();
/// std::fs::write(dir.join("limits.json.tmp"), r#"{"max_conns": 20}"#)?;
/// std::fs::rename(dir.join("limits.json.tmp"), &path)?;
/// let new = config.wait_changed_timeout(seen, Duration::from_secs(30)).expect("reloaded");
/// assert_eq!(new.max_conns, 20);
/// # drop(config);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HotConfig<T> {
    shared: Arc<Shared<T>>,
    /// The reloader thread, until stopped.
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> HotConfig<T> {
    /// Starts configuring a config read from the JSON file at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-builder-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("missing.json");
    /// let config = acqrel_config::HotConfig::builder(&path).default(7u8).start()?;
    /// assert_eq!(*config.get(), 7);
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> Builder<T> {
        Builder::new(path.as_ref())
    }

    pub(crate) fn from_parts(shared: Arc<Shared<T>>, thread: JoinHandle<()>) -> Self {
        HotConfig {
            shared,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// The config being served: a wait-free load of the current snapshot.
    ///
    /// The guard keeps that version alive; hold it briefly (call
    /// [`ConfigGuard::into_ref`] to keep a version for longer, or across an
    /// `.await`).
    ///
    /// # Examples
    ///
    /// See [`HotConfig`].
    #[inline]
    pub fn get(&self) -> ConfigGuard<T> {
        ConfigGuard(self.shared.snapshot.load())
    }

    /// The generation of the config being served: 0 for the one loaded (or
    /// defaulted) at start, one more for each reload applied.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-gen-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).start()?;
    /// assert_eq!(config.generation(), 0);
    /// std::fs::write(&path, "2")?;
    /// config.reload_now()?;
    /// assert_eq!(config.generation(), 1);
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generation(&self) -> u64 {
        self.shared.snapshot.generation()
    }

    /// The file this config is read from (absolute).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-path-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).start()?;
    /// assert_eq!(config.path(), path);
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.shared.source.path
    }

    /// The config served, where it came from, and what the reloads so far
    /// did. Takes a short lock (unlike [`get`](Self::get)).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-status-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).start()?;
    /// std::fs::write(&path, "not json")?;
    /// assert!(config.reload_now().is_err());
    ///
    /// let status = config.status();
    /// assert_eq!((status.generation, status.reloads, status.failures), (0, 0, 1));
    /// assert!(status.content_hash.is_some());
    /// assert!(status.last_error.is_some());
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// Re-reads the file now, on the calling thread, and applies it if it
    /// changed and is valid, as the reloader does after a file event. For
    /// SIGHUP handlers and admin endpoints.
    ///
    /// This does blocking file I/O: from async code, call it through
    /// `spawn_blocking`. Change callbacks run afterwards on the reloader
    /// thread, not on the caller's.
    ///
    /// # Errors
    ///
    /// The refusal, when the file cannot be read or its content is refused;
    /// the config served stays. A refusal that repeats the previous one (the
    /// same bytes, or the same read error) is returned again but not
    /// counted or logged twice.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-reload-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use acqrel_config::{HotConfig, ReloadOutcome};
    ///
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = HotConfig::<u32>::builder(&path).watch(false).start()?;
    /// assert_eq!(config.reload_now()?, ReloadOutcome::Unchanged { generation: 0 });
    /// std::fs::write(&path, "2")?;
    /// assert_eq!(config.reload_now()?, ReloadOutcome::Applied { generation: 1 });
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reload_now(&self) -> Result<ReloadOutcome, ReloadError> {
        let outcome = self.shared.check()?;
        if let ReloadOutcome::Applied { .. } = outcome {
            self.shared.trigger.committed();
        }
        Ok(outcome)
    }

    /// Blocks until a config newer than generation `since` is served, and
    /// returns the newest one. Returns at once if one already is.
    ///
    /// Do not call this from async code: use [`changed`](Self::changed).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-wait-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).start()?;
    /// std::fs::write(&path, "2")?;
    /// assert_eq!(*config.wait_changed(0), 2);
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_changed(&self, since: u64) -> ConfigRef<T> {
        ConfigRef(self.shared.snapshot.wait_changed(since))
    }

    /// Like [`wait_changed`](Self::wait_changed), giving up after `timeout`
    /// with `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-waitt-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::time::Duration;
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).start()?;
    /// assert!(config.wait_changed_timeout(0, Duration::ZERO).is_none());
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_changed_timeout(&self, since: u64, timeout: Duration) -> Option<ConfigRef<T>> {
        self.shared
            .snapshot
            .wait_changed_timeout(since, timeout)
            .map(ConfigRef)
    }

    /// Completes once a config newer than generation `since` is served, with
    /// the newest one. Runtime-agnostic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future consumes nothing; waiting again with
    /// the same `since` misses no change.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-changed-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).start()?;
    /// std::fs::write(&path, "2")?;
    /// let new = pollster::block_on(config.changed(0));
    /// assert_eq!((*new, new.generation()), (2, 1));
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn changed(&self, since: u64) -> ConfigRef<T> {
        ConfigRef(self.shared.snapshot.changed(since).await)
    }

    /// Blocks until more than `since` reload attempts have completed
    /// (whatever their outcome: applied, unchanged or refused), for at most
    /// `timeout`, and returns the new count ([`Status::checks`]).
    ///
    /// This is how to wait for a refusal: a refused file changes no
    /// generation, so [`wait_changed`](Self::wait_changed) cannot see it.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-checked-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::time::Duration;
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).start()?;
    /// let failures = config.status().failures;
    /// let checks = config.status().checks;
    /// std::fs::write(&path, "{")?;
    /// // Wait for attempts until the broken file has been refused.
    /// let mut seen = checks;
    /// while config.status().failures == failures {
    ///     seen = config.wait_checked_timeout(seen, Duration::from_secs(30)).expect("checked");
    /// }
    /// assert_eq!(*config.get(), 1);
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_checked_timeout(&self, since: u64, timeout: Duration) -> Option<u64> {
        self.shared.checks.wait_past_timeout(since, timeout)
    }

    /// A stream of the configs served from now on. Coalescing: a subscriber
    /// that falls behind gets the newest config, never a backlog. It ends
    /// when the handle is stopped or dropped.
    ///
    /// # Examples
    ///
    /// See [`Subscription`].
    pub fn subscribe(&self) -> Subscription<T> {
        Subscription::new(self.shared.clone())
    }

    /// Registers `callback` to run after each change, with the newest
    /// config, on the reloader thread (never while a lock is held). Changes
    /// that arrive while callbacks run are coalesced into the next call.
    ///
    /// A panicking callback is caught, logged (`tracing` error) and stays
    /// registered; the other callbacks still run. A slow callback delays the
    /// next reload and [`stop`](Self::stop). A callback must not own the
    /// handle: the cycle would keep both alive.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-onchange-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::sync::mpsc;
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).start()?;
    /// let (tx, rx) = mpsc::channel();
    /// let id = config.on_change(move |new| tx.send(**new).unwrap_or(()));
    /// std::fs::write(&path, "2")?;
    /// config.reload_now()?;
    /// assert_eq!(rx.recv()?, 2);
    /// assert!(config.remove_on_change(id));
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_change(
        &self,
        callback: impl Fn(&ConfigRef<T>) + Send + Sync + 'static,
    ) -> CallbackId {
        self.shared.add_callback(Arc::new(callback))
    }

    /// Unregisters a callback; `false` if `id` was not registered. A call of
    /// it already under way finishes.
    ///
    /// # Examples
    ///
    /// See [`on_change`](Self::on_change).
    pub fn remove_on_change(&self, id: CallbackId) -> bool {
        self.shared.remove_callback(id)
    }

    /// Stops the reloader thread and the file watcher, waits for the thread
    /// to finish (a callback under way completes first), and ends the
    /// subscriptions. Idempotent; dropping the handle does the same.
    ///
    /// Afterwards [`get`](Self::get) keeps serving the last config, and
    /// [`reload_now`](Self::reload_now) still works.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-stop-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).start()?;
    /// let mut updates = config.subscribe();
    /// config.stop();
    /// assert!(pollster::block_on(updates.recv()).is_none());
    /// assert_eq!(*config.get(), 1);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&self) {
        self.shutdown();
    }
}

impl<T> HotConfig<T> {
    /// [`stop`](Self::stop)'s steps, which need no bounds on `T` (`Drop`
    /// cannot ask for them).
    fn shutdown(&self) {
        self.shared.trigger.stop();
        let thread = sync::lock(&self.thread).take();
        if let Some(thread) = thread {
            // A callback that drops the last handle runs on the reloader
            // thread itself, which leaves its loop once the callback returns.
            if thread.thread().id() != thread::current().id() {
                // The loop catches every panic of user code; an error here
                // would be a bug of ours, and stopping must not panic.
                let _ = thread.join();
            }
        }
        self.shared.closed.open();
        self.shared.wake.fire();
    }
}

impl<T> Drop for HotConfig<T> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl<T> fmt::Debug for HotConfig<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HotConfig")
            .field("path", &self.shared.source.path)
            .field("generation", &self.shared.snapshot.generation())
            .finish_non_exhaustive()
    }
}

/// A borrowed view of the config served when [`HotConfig::get`] was called.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("acqrel-doc-guard-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("v.json");
/// std::fs::write(&path, "[1, 2]")?;
/// let config = acqrel_config::HotConfig::<Vec<u8>>::builder(&path).start()?;
/// let guard = config.get();
/// assert_eq!((guard.len(), guard.generation()), (2, 0));
/// # drop(guard);
/// # drop(config);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ConfigGuard<T>(SnapshotGuard<Loaded<T>>);

impl<T> ConfigGuard<T> {
    /// The generation of this config.
    ///
    /// # Examples
    ///
    /// See [`ConfigGuard`].
    pub fn generation(&self) -> u64 {
        self.0.generation()
    }

    /// An owned, cloneable reference to this config, for keeping it beyond
    /// a short borrow.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-intoref-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("v.json");
    /// std::fs::write(&path, "3")?;
    /// let config = acqrel_config::HotConfig::<u8>::builder(&path).start()?;
    /// let kept = config.get().into_ref();
    /// drop(config);
    /// assert_eq!(*kept, 3);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_ref(self) -> ConfigRef<T> {
        ConfigRef(self.0.into_ref())
    }
}

impl<T> Deref for ConfigGuard<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: fmt::Debug> fmt::Debug for ConfigGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigGuard")
            .field("generation", &self.generation())
            .field("value", &**self)
            .finish()
    }
}

/// An owned reference to one version of the config: cheap to clone, safe to
/// hold across `.await` and to send to other threads.
///
/// # Examples
///
/// See [`ConfigGuard::into_ref`] and [`HotConfig::wait_changed`].
pub struct ConfigRef<T>(pub(crate) SnapshotRef<Loaded<T>>);

impl<T> ConfigRef<T> {
    /// The generation of this config.
    ///
    /// # Examples
    ///
    /// See [`HotConfig::changed`].
    pub fn generation(&self) -> u64 {
        self.0.generation()
    }
}

impl<T> Clone for ConfigRef<T> {
    fn clone(&self) -> Self {
        ConfigRef(self.0.clone())
    }
}

impl<T> Deref for ConfigRef<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: fmt::Debug> fmt::Debug for ConfigRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigRef")
            .field("generation", &self.generation())
            .field("value", &**self)
            .finish()
    }
}

/// What [`HotConfig::reload_now`] did with content it could use.
///
/// # Examples
///
/// See [`HotConfig::reload_now`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// The content was new and valid, and is now served as `generation`.
    Applied {
        /// The generation of the new config.
        generation: u64,
    },
    /// The content is what is already served (same hash): nothing changed.
    Unchanged {
        /// The generation still served.
        generation: u64,
    },
    /// The content was valid, but a concurrent reload that read the file
    /// later was applied first; its config is served.
    Superseded,
}

/// Identifies a callback registered with [`HotConfig::on_change`].
///
/// # Examples
///
/// See [`HotConfig::on_change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId(pub(crate) u64);

/// A view of a [`HotConfig`]: the config served and the reloads so far.
///
/// # Examples
///
/// See [`HotConfig::status`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// Generation of the config served.
    pub generation: u64,
    /// When the config served was loaded, as a reading of the config's
    /// [`Clock`](acqrel_core::Clock).
    pub loaded_at: Duration,
    /// Hash of the file content the config served was parsed from; `None`
    /// while the builder's default is served.
    pub content_hash: Option<u64>,
    /// The most recent refused reload, if any (kept after later successes:
    /// compare its [`at`](ReloadError::at) with `loaded_at`).
    pub last_error: Option<ReloadError>,
    /// Reloads applied since start.
    pub reloads: u64,
    /// Reloads refused since start, including a refused initial load that
    /// fell back on the default. A repeat of the previous refusal is not
    /// counted again.
    pub failures: u64,
    /// Reload attempts completed since start, whatever their outcome (see
    /// [`HotConfig::wait_checked_timeout`]).
    pub checks: u64,
}
