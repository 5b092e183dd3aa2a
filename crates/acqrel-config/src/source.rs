//! Reading, hashing and decoding the file: everything about one attempt that
//! involves no shared state.

use std::any::Any;
use std::fmt;
use std::fs::File;
use std::hash::Hasher;
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::{BoxError, Reason};

/// The builder's validator, type-erased.
pub(crate) type Validator<T> = Arc<dyn Fn(&T) -> Result<(), BoxError> + Send + Sync>;

/// Where the config comes from and what content is acceptable.
pub(crate) struct Source<T> {
    /// Absolute path, as given (symlinks are followed on every read).
    pub(crate) path: PathBuf,
    /// Files larger than this are refused without being read further.
    pub(crate) max_size: u64,
    pub(crate) validator: Option<Validator<T>>,
}

/// The bytes of one read and their hash.
#[derive(Debug)]
pub(crate) struct Content {
    pub(crate) bytes: Vec<u8>,
    pub(crate) hash: u64,
}

impl<T: DeserializeOwned> Source<T> {
    /// Reads the whole file, at most `max_size` bytes of it.
    pub(crate) fn read(&self) -> Result<Content, Reason> {
        let file = File::open(&self.path).map_err(|e| Reason::Io(Arc::new(e)))?;
        let mut bytes = Vec::new();
        // One byte past the limit tells "exactly at the limit" from "over it"
        // without reading an unbounded file (or a FIFO, or /dev/zero).
        file.take(self.max_size.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Reason::Io(Arc::new(e)))?;
        if bytes.len() as u64 > self.max_size {
            return Err(Reason::TooLarge {
                limit: self.max_size,
            });
        }
        let hash = content_hash(&bytes);
        Ok(Content { bytes, hash })
    }

    /// Parses and validates `bytes`. Panics in the type's `Deserialize` or in
    /// the validator are caught and reported as [`Reason::Panicked`].
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<T, Reason> {
        let value = catch(|| serde_json::from_slice::<T>(bytes))?.map_err(|e| Reason::Parse {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        self.validate(&value)?;
        Ok(value)
    }

    /// Runs the validator, if any, on `value`.
    pub(crate) fn validate(&self, value: &T) -> Result<(), Reason> {
        match &self.validator {
            None => Ok(()),
            Some(validator) => {
                catch(|| validator(value))?.map_err(|e| Reason::Invalid(Arc::from(e)))
            }
        }
    }
}

impl<T> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("path", &self.path)
            .field("max_size", &self.max_size)
            .field("validator", &self.validator.is_some())
            .finish()
    }
}

/// A 64-bit hash of the content (SipHash-1-3 with fixed keys): equal bytes
/// hash equal within one build of the program. Used to recognize a file
/// whose content did not change; not a cryptographic digest.
pub(crate) fn content_hash(bytes: &[u8]) -> u64 {
    #[allow(deprecated)] // SipHasher is stable in behaviour; only its name is deprecated.
    let mut hasher = std::hash::SipHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// Runs user code, turning a panic into [`Reason::Panicked`].
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Reason> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| Reason::Panicked(message(&*payload)))
}

/// The message of a panic payload, when it is a string.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}

/// The directory that holds `path` (for a bare file name, the current
/// directory as given: `""` becomes `"."`).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    fn source(max_size: u64) -> Source<Vec<u32>> {
        Source {
            path: PathBuf::from("/nonexistent/acqrel/config.json"),
            max_size,
            validator: Some(Arc::new(|v: &Vec<u32>| {
                if v.len() > 3 {
                    Err("at most 3 entries".into())
                } else {
                    Ok(())
                }
            })),
        }
    }

    #[test]
    fn parse_errors_carry_line_and_column() {
        let err = source(64).decode(b"[1,\n 2,\n x]").unwrap_err();
        match err {
            Reason::Parse { line, column, .. } => assert_eq!((line, column), (3, 2)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn validation_refusals_keep_the_message() {
        let err = source(64).decode(b"[1,2,3,4]").unwrap_err();
        assert_eq!(err.to_string(), "rejected by validation: at most 3 entries");
        assert_eq!(source(64).decode(b"[1,2,3]").unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn panics_in_user_code_are_caught() {
        let mut source = source(64);
        source.validator = Some(Arc::new(|_: &Vec<u32>| panic!("validator bug")));
        let err = source.decode(b"[]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "deserialization or validation panicked: validator bug"
        );
    }

    #[test]
    fn missing_files_are_io_errors() {
        match source(64).read().unwrap_err() {
            Reason::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn equal_bytes_hash_equal() {
        assert_eq!(content_hash(b"{}"), content_hash(b"{}"));
        assert_ne!(content_hash(b"{}"), content_hash(b"{ }"));
    }

    #[test]
    fn bare_file_names_live_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("app.json")), PathBuf::from("."));
        assert_eq!(
            parent_dir(Path::new("/etc/app.json")),
            PathBuf::from("/etc")
        );
    }
}
