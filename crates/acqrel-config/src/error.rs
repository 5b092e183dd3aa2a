//! Errors: why a reload was refused ([`ReloadError`], [`Reason`]) and why a
//! config could not start ([`StartError`]).

use std::error::Error;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// An error from user code (a validator), shareable between the status, the
/// log and the caller of [`reload_now`](crate::HotConfig::reload_now).
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A reload that was refused: the config being served did not change.
///
/// Cheap to clone (the causes are reference-counted), so the same error can
/// be returned to the caller, kept in [`Status::last_error`] and logged.
///
/// [`Status::last_error`]: crate::Status::last_error
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("acqrel-doc-err-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use acqrel_config::{HotConfig, Reason};
///
/// let path = dir.join("app.json");
/// std::fs::write(&path, r#"{"port": 80}"#)?;
/// let config = HotConfig::<serde_json::Value>::builder(&path).start()?;
///
/// std::fs::write(&path, "{\"port\": ")?;
/// let err = config.reload_now().unwrap_err();
/// assert!(matches!(err.reason(), Reason::Parse { line: 1, .. }));
/// assert_eq!(err.path(), path);
/// assert_eq!(config.get()["port"], 80);
/// # drop(config);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[error("cannot load {}: {reason}", path.display())]
pub struct ReloadError {
    path: PathBuf,
    #[source]
    reason: Reason,
    at: Duration,
}

impl ReloadError {
    pub(crate) fn new(path: &Path, reason: Reason, at: Duration) -> Self {
        ReloadError {
            path: path.to_path_buf(),
            reason,
            at,
        }
    }

    /// The file that was read (the path given to the builder, made absolute).
    ///
    /// # Examples
    ///
    /// See [`ReloadError`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the content was refused.
    ///
    /// # Examples
    ///
    /// See [`ReloadError`].
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// When the attempt was made, as a reading of the config's
    /// [`Clock`](acqrel_core::Clock).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-at-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use acqrel_core::ManualClock;
    /// use acqrel_config::HotConfig;
    ///
    /// let clock = Arc::new(ManualClock::new());
    /// let path = dir.join("app.json");
    /// std::fs::write(&path, "1")?;
    /// let config = HotConfig::<u32>::builder(&path).clock(clock.clone()).start()?;
    /// clock.advance(Duration::from_secs(7));
    /// std::fs::write(&path, "-1")?;
    /// assert_eq!(config.reload_now().unwrap_err().at(), Duration::from_secs(7));
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn at(&self) -> Duration {
        self.at
    }
}

/// Why a file's content was not served.
///
/// # Examples
///
/// ```
/// use acqrel_config::Reason;
/// let reason = Reason::TooLarge { limit: 1024 };
/// assert_eq!(reason.to_string(), "the file is larger than the limit of 1024 bytes");
/// assert!(!reason.is_content());
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The file could not be read: it is missing (`NotFound`), unreadable, or
    /// not a file.
    #[error("cannot read the file: {0}")]
    Io(#[source] Arc<io::Error>),
    /// The file is larger than the builder's
    /// [`max_size`](crate::Builder::max_size); nothing past the limit was
    /// read.
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The content is not valid JSON for the config type: syntax, types,
    /// missing fields, numbers out of range, invalid UTF-8, nesting deeper
    /// than 128 levels.
    #[error("invalid JSON: {message}")]
    Parse {
        /// 1-based line of the error (0 if the position is unknown).
        line: usize,
        /// 1-based column of the error (0 at the start of a line or if
        /// unknown).
        column: usize,
        /// serde_json's description, including the position.
        message: String,
    },
    /// The config parsed but the builder's
    /// [`validate`](crate::Builder::validate) refused it.
    #[error("rejected by validation: {0}")]
    Invalid(#[source] Arc<dyn Error + Send + Sync + 'static>),
    /// The config type's `Deserialize` or the validator panicked; the panic
    /// was caught and its message kept.
    #[error("deserialization or validation panicked: {0}")]
    Panicked(String),
}

impl Reason {
    /// Whether the refusal is about the bytes themselves (parse, validation,
    /// panic, size) rather than about reading them: the same bytes would be
    /// refused again, so a repeat is not counted or logged twice.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_config::Reason;
    /// let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
    /// assert!(!Reason::Io(missing.into()).is_content());
    /// assert!(Reason::Panicked("boom".into()).is_content());
    /// ```
    pub fn is_content(&self) -> bool {
        !matches!(self, Reason::Io(_) | Reason::TooLarge { .. })
    }
}

/// Why [`Builder::start`](crate::Builder::start) failed.
///
/// # Examples
///
/// ```
/// use acqrel_config::{HotConfig, StartError};
/// let missing = std::env::temp_dir().join("acqrel-doc-no-such-dir/app.json");
/// let err = HotConfig::<u32>::builder(&missing).start().unwrap_err();
/// assert!(matches!(err, StartError::Load(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The path names no file (it is empty or ends in `..`).
    #[error("config path {} names no file", .0.display())]
    InvalidPath(PathBuf),
    /// The first load failed and no [`default`](crate::Builder::default) was
    /// given.
    #[error("the initial load failed and no default was given: {0}")]
    Load(#[source] ReloadError),
    /// The [`default`](crate::Builder::default) was refused by the
    /// validator.
    #[error("the default config was refused: {0}")]
    InvalidDefault(#[source] Reason),
    /// The directory holding the file cannot be watched, and no
    /// [`poll_interval`](crate::Builder::poll_interval) was given to fall
    /// back on.
    #[error("cannot watch {}: {source}", dir.display())]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// What the watcher reported.
        source: notify::Error,
    },
    /// The reloader thread could not be spawned.
    #[error("cannot spawn the reloader thread: {0}")]
    Spawn(#[source] io::Error),
}
