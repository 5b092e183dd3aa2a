//! [`Builder`]: the knobs of a [`HotConfig`] and its start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use acqrel_core::{Clock, MonotonicClock};
use serde::de::DeserializeOwned;

use crate::error::{BoxError, ReloadError, StartError};
use crate::hot_config::HotConfig;
use crate::reloader::{self, Watches};
use crate::shared::{Loaded, RefusalKey, Shared};
use crate::source::{Source, Validator};
use crate::trigger::{Timing, Trigger};

/// The default quiet time after the last file event before the file is
/// read.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);

/// The default size limit: larger files are refused.
pub const DEFAULT_MAX_SIZE: u64 = 16 * 1024 * 1024;

/// How many debounce periods a burst of events may postpone a check.
const MAX_DELAY_FACTOR: u32 = 10;

/// Configures and starts a [`HotConfig`]; made by [`HotConfig::builder`].
///
/// | knob | default |
/// |---|---|
/// | [`validate`](Self::validate) | accept every config that parses |
/// | [`default`](Self::default) | none: start fails if the file is missing or refused |
/// | [`debounce`](Self::debounce) | [`DEFAULT_DEBOUNCE`] (50 ms) |
/// | [`poll_interval`](Self::poll_interval) | none: rely on file events |
/// | [`watch`](Self::watch) | `true` |
/// | [`max_size`](Self::max_size) | [`DEFAULT_MAX_SIZE`] (16 MiB) |
/// | [`clock`](Self::clock) | [`MonotonicClock`] |
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("acqrel-doc-knobs-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use std::time::Duration;
/// use acqrel_config::HotConfig;
///
/// #[derive(serde::Deserialize)]
/// struct Pool { min: u32, max: u32 }
///
/// let config = HotConfig::<Pool>::builder(dir.join("pool.json"))
///     .validate(|p: &Pool| if p.min <= p.max { Ok(()) } else { Err(format!("min {} > max {}", p.min, p.max)) })
///     .default(Pool { min: 1, max: 8 })
///     .debounce(Duration::from_millis(100))
///     .poll_interval(Duration::from_secs(30))
///     .start()?;
/// assert_eq!(config.get().max, 8); // no file yet: the default
/// # drop(config);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Builder<T> {
    path: PathBuf,
    validator: Option<Validator<T>>,
    default: Option<T>,
    debounce: Duration,
    poll_interval: Option<Duration>,
    watch: bool,
    max_size: u64,
    clock: Arc<dyn Clock>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> Builder<T> {
    pub(crate) fn new(path: &Path) -> Self {
        Builder {
            path: path.to_path_buf(),
            validator: None,
            default: None,
            debounce: DEFAULT_DEBOUNCE,
            poll_interval: None,
            watch: true,
            max_size: DEFAULT_MAX_SIZE,
            clock: Arc::new(MonotonicClock::new()),
        }
    }

    /// Checks every config before it is served (the initial one, each
    /// reload, and the [`default`](Self::default)); a config it refuses is
    /// not served. Replaces an earlier validator.
    ///
    /// The validator runs on the thread that loads (the reloader, or the
    /// caller of `start`/`reload_now`), with no lock held; a panic in it is
    /// caught and reported as [`Reason::Panicked`](crate::Reason::Panicked).
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn validate<E>(
        mut self,
        validator: impl Fn(&T) -> Result<(), E> + Send + Sync + 'static,
    ) -> Self
    where
        E: Into<BoxError>,
    {
        self.validator = Some(Arc::new(move |value: &T| {
            validator(value).map_err(Into::into)
        }));
        self
    }

    /// The config to serve when the file is missing or refused at start.
    /// Without one, [`start`](Self::start) fails in that case. The default is
    /// served as generation 0 with no content hash, and the refusal is
    /// recorded in the status like any other.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn default(mut self, value: T) -> Self {
        self.default = Some(value);
        self
    }

    /// How long the directory must stay quiet after a file event before the
    /// file is read ([`DEFAULT_DEBOUNCE`] by default). A burst of writes is
    /// read once, at its end; events that never pause still lead to a read
    /// ten debounce periods after the first. Zero reads after every event.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// Also re-reads the file this often, for file systems that report no
    /// events (network and FUSE mounts, some container volumes). With
    /// polling, a directory that cannot be watched at start is logged and
    /// polled instead of failing the start. `Duration::ZERO` turns polling
    /// off.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = (!every.is_zero()).then_some(every);
        self
    }

    /// Whether to watch the file's directory for events (`true` by
    /// default). Without watching, the file is re-read only by polling and
    /// [`reload_now`](HotConfig::reload_now).
    ///
    /// # Examples
    ///
    /// See [`HotConfig::reload_now`].
    pub fn watch(mut self, watch: bool) -> Self {
        self.watch = watch;
        self
    }

    /// Refuses files larger than `bytes` ([`DEFAULT_MAX_SIZE`] by default)
    /// without reading past the limit, so a runaway file cannot exhaust
    /// memory.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-max-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use acqrel_config::{HotConfig, Reason, StartError};
    /// let path = dir.join("big.json");
    /// std::fs::write(&path, "[1,2,3]")?;
    /// let err = HotConfig::<Vec<u8>>::builder(&path).max_size(4).start().unwrap_err();
    /// let StartError::Load(err) = err else { panic!("{err}") };
    /// assert!(matches!(err.reason(), Reason::TooLarge { limit: 4 }));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// The clock for debouncing, polling and the times in the status
    /// ([`MonotonicClock`] by default). With a
    /// [`ManualClock`](acqrel_core::ManualClock), nothing is debounced or
    /// polled until the test advances it; the reloader notices an advance
    /// within a second of real time (it re-reads the clock at least once a
    /// second while a check is scheduled).
    ///
    /// # Examples
    ///
    /// See [`ReloadError::at`].
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Loads the file, starts watching its directory and spawns the reloader
    /// thread (named `acqrel-config`). Blocking (file I/O); needs no async
    /// runtime. From async code, call it through `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`StartError`]: the path names no file; the first load failed and no
    /// default was given; the default was refused; the directory cannot be
    /// watched and no poll interval was given; the thread cannot be spawned.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn start(self) -> Result<HotConfig<T>, StartError> {
        let path = std::path::absolute(&self.path)
            .ok()
            .filter(|path| path.file_name().is_some())
            .ok_or_else(|| StartError::InvalidPath(self.path.clone()))?;
        let source = Source {
            path,
            max_size: self.max_size,
            validator: self.validator,
        };
        let now = self.clock.now();
        let (initial, refused) = match first_load(&source) {
            Ok((value, hash)) => (Loaded::initial(value, Some(hash), now), None),
            Err((reason, hash)) => {
                let key = RefusalKey::of(&reason, hash);
                let err = ReloadError::new(&source.path, reason, now);
                let Some(value) = self.default else {
                    return Err(StartError::Load(err));
                };
                source
                    .validate(&value)
                    .map_err(StartError::InvalidDefault)?;
                tracing::warn!(
                    path = %source.path.display(),
                    reason = %err.reason(),
                    "config cannot be loaded; serving the default",
                );
                (Loaded::initial(value, None, now), Some((key, err)))
            }
        };
        let timing = Timing {
            debounce: self.debounce,
            max_delay: self.debounce.saturating_mul(MAX_DELAY_FACTOR),
            poll_interval: self.poll_interval,
        };
        let trigger = Trigger::new(timing, now);
        let shared = Arc::new(Shared::new(source, initial, refused, self.clock, trigger));
        let watches = match self.watch.then(|| Watches::start(&shared)) {
            None => None,
            Some(Ok(watches)) => Some(watches),
            Some(Err((dir, source))) if self.poll_interval.is_some() => {
                tracing::warn!(dir = %dir.display(), error = %source, "cannot watch the config's directory; polling only");
                None
            }
            Some(Err((dir, source))) => return Err(StartError::Watch { dir, source }),
        };
        // A change between the first read and the start of the watch made no
        // event we saw: look once more after a debounce period. (Without a
        // watch, only polling and `reload_now` read the file.)
        if watches.is_some() {
            shared.trigger.fs_event(now);
        }
        let thread = std::thread::Builder::new()
            .name("acqrel-config".to_owned())
            .spawn({
                let shared = shared.clone();
                move || reloader::run(shared, watches)
            })
            .map_err(StartError::Spawn)?;
        Ok(HotConfig::from_parts(shared, thread))
    }
}

/// Reads and decodes the file once, returning the config and its hash, or
/// the refusal and the hash of the bytes refused (if they were read).
fn first_load<T: DeserializeOwned>(
    source: &Source<T>,
) -> Result<(T, u64), (crate::error::Reason, Option<u64>)> {
    let content = source.read().map_err(|reason| (reason, None))?;
    let value = source
        .decode(&content.bytes)
        .map_err(|reason| (reason, Some(content.hash)))?;
    Ok((value, content.hash))
}

impl<T> fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("path", &self.path)
            .field("validator", &self.validator.is_some())
            .field("default", &self.default.is_some())
            .field("debounce", &self.debounce)
            .field("poll_interval", &self.poll_interval)
            .field("watch", &self.watch)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}
