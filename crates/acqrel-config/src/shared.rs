//! The state shared by the handle, the reloader thread, the watcher's event
//! handler and subscriptions, and the one reload procedure they all use.
//!
//! # Invariants
//!
//! - The config served, its generation, its content hash and its load time
//!   live in one [`Snapshot`] value ([`Loaded`]), so [`status`] can never
//!   pair a config with another config's hash.
//! - Attempts may run concurrently (the reloader thread and any number of
//!   `reload_now` callers). Each takes a sequence number *while holding the
//!   read lock across its read of the file*, so sequence order is read
//!   order, and commits with a compare under the snapshot's writer lock
//!   (`Snapshot::try_update`): an attempt commits only if no attempt that
//!   read the file later has committed. The last content read wins; an
//!   older read can never overwrite a newer one.
//! - No lock is held while user code (the type's `Deserialize`, the
//!   validator, the change callbacks) runs, or while tasks are woken: the
//!   snapshot wakes its waiters after releasing its writer lock, and the
//!   signals below are fired with no lock held.
//!
//! [`status`]: crate::HotConfig::status

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use acqrel_core::{Clock, GenerationSignal, Latch, Snapshot};
use serde::de::DeserializeOwned;

use crate::error::{Reason, ReloadError};
use crate::hot_config::{CallbackId, ConfigRef, ReloadOutcome, Status};
use crate::source::{self, Source};
use crate::sync::{self, Mutex};
use crate::trigger::Trigger;

/// What the snapshot holds: the config and where it came from.
pub(crate) struct Loaded<T> {
    pub(crate) value: T,
    /// Hash of the bytes it was parsed from; `None` for the builder's default.
    pub(crate) hash: Option<u64>,
    /// Clock reading when it was loaded.
    pub(crate) at: Duration,
    /// The sequence number of the read it came from (0: the initial config).
    seq: u64,
}

impl<T> Loaded<T> {
    /// The config served before any reload.
    pub(crate) fn initial(value: T, hash: Option<u64>, at: Duration) -> Self {
        Loaded {
            value,
            hash,
            at,
            seq: 0,
        }
    }
}

/// What a refusal was about, to recognize a repeat of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefusalKey {
    /// Content with this hash was refused.
    Content(u64),
    /// The file could not be read, with this error kind.
    Io(io::ErrorKind),
    /// The file was over the size limit.
    TooLarge,
}

impl RefusalKey {
    /// The key of a refusal for `reason`, where `hash` is the hash of the
    /// bytes read, if the read succeeded.
    pub(crate) fn of(reason: &Reason, hash: Option<u64>) -> Self {
        match (hash, reason) {
            (Some(hash), _) => RefusalKey::Content(hash),
            (None, Reason::Io(e)) => RefusalKey::Io(e.kind()),
            (None, _) => RefusalKey::TooLarge,
        }
    }
}

/// The outcome bookkeeping behind [`Status`].
#[derive(Debug, Default)]
struct Record {
    last_error: Option<ReloadError>,
    /// The latest refusal, until a config is applied: the same refusal again
    /// is returned without being counted or logged again.
    refused: Option<(RefusalKey, ReloadError)>,
    failures: u64,
}

/// A change callback.
pub(crate) type Callback<T> = Arc<dyn Fn(&ConfigRef<T>) + Send + Sync>;

/// Registered callbacks, in registration order.
struct Callbacks<T> {
    next_id: u64,
    list: Vec<(CallbackId, Callback<T>)>,
}

/// See the module docs.
pub(crate) struct Shared<T> {
    pub(crate) source: Source<T>,
    pub(crate) snapshot: Snapshot<Loaded<T>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) trigger: Trigger,
    /// Fired after every completed attempt; its generation is the count.
    pub(crate) checks: GenerationSignal,
    /// Fired after every commit and once on stop: subscriptions wait on it.
    pub(crate) wake: GenerationSignal,
    /// Opened when the handle is stopped: subscriptions end.
    pub(crate) closed: Latch,
    /// The last sequence number handed out; held across each read.
    read_seq: Mutex<u64>,
    record: Mutex<Record>,
    callbacks: Mutex<Callbacks<T>>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> Shared<T> {
    /// State serving `initial`, with the refusal that made it the default,
    /// if that is what happened.
    pub(crate) fn new(
        source: Source<T>,
        initial: Loaded<T>,
        refused: Option<(RefusalKey, ReloadError)>,
        clock: Arc<dyn Clock>,
        trigger: Trigger,
    ) -> Self {
        let record = Record {
            last_error: refused.as_ref().map(|(_, err)| err.clone()),
            failures: u64::from(refused.is_some()),
            refused,
        };
        Shared {
            source,
            snapshot: Snapshot::new(initial),
            clock,
            trigger,
            checks: GenerationSignal::new(),
            wake: GenerationSignal::new(),
            closed: Latch::new(),
            read_seq: Mutex::new(0),
            record: Mutex::new(record),
            callbacks: Mutex::new(Callbacks {
                next_id: 0,
                list: Vec::new(),
            }),
        }
    }

    /// One reload attempt: read, compare, parse, validate, commit. Counted
    /// in [`Status::checks`] whatever its outcome.
    pub(crate) fn check(&self) -> Result<ReloadOutcome, ReloadError> {
        let outcome = self.attempt();
        self.checks.fire();
        outcome
    }

    fn attempt(&self) -> Result<ReloadOutcome, ReloadError> {
        let (seq, read) = {
            let mut last = sync::lock(&self.read_seq);
            *last += 1;
            (*last, self.source.read())
        };
        let at = self.clock.now();
        let content = read.map_err(|reason| self.refuse(reason, None, at))?;
        {
            let current = self.snapshot.load();
            if current.hash == Some(content.hash) {
                // Back to the served content: a later refusal of other
                // bytes is news again.
                sync::lock(&self.record).refused = None;
                return Ok(ReloadOutcome::Unchanged {
                    generation: current.generation(),
                });
            }
        }
        if let Some(err) = self.repeated(RefusalKey::Content(content.hash)) {
            return Err(err);
        }
        let value = self
            .source
            .decode(&content.bytes)
            .map_err(|reason| self.refuse(reason, Some(content.hash), at))?;
        let loaded = Loaded {
            value,
            hash: Some(content.hash),
            at,
            seq,
        };
        // The compare of the module's `# Invariants`, under the writer lock.
        // A superseded config is handed back and dropped after the lock.
        let committed = self.snapshot.try_update(move |current| {
            if seq > current.seq {
                Ok(loaded)
            } else {
                Err(loaded)
            }
        });
        match committed {
            Ok(generation) => {
                sync::lock(&self.record).refused = None;
                tracing::info!(path = %self.source.path.display(), generation, "config reloaded");
                self.wake.fire();
                Ok(ReloadOutcome::Applied { generation })
            }
            Err(_superseded) => Ok(ReloadOutcome::Superseded),
        }
    }

    /// The stored refusal, if `key` repeats the latest one.
    fn repeated(&self, key: RefusalKey) -> Option<ReloadError> {
        let record = sync::lock(&self.record);
        match &record.refused {
            Some((refused, err)) if *refused == key => Some(err.clone()),
            _ => None,
        }
    }

    /// Records, counts and logs a refusal, unless it repeats the latest one.
    fn refuse(&self, reason: Reason, hash: Option<u64>, at: Duration) -> ReloadError {
        let key = RefusalKey::of(&reason, hash);
        let err = {
            let mut record = sync::lock(&self.record);
            if let Some((refused, err)) = &record.refused
                && *refused == key
            {
                return err.clone();
            }
            let err = ReloadError::new(&self.source.path, reason, at);
            record.failures += 1;
            record.last_error = Some(err.clone());
            record.refused = Some((key, err.clone()));
            err
        };
        tracing::warn!(
            path = %self.source.path.display(),
            reason = %err.reason(),
            "config reload refused; still serving the last good config",
        );
        err
    }

    /// A consistent view of the config served and the attempts so far.
    pub(crate) fn status(&self) -> Status {
        // The count first: an attempt is counted only once its commit or
        // refusal is recorded, so every attempt it counts shows in what is
        // read below.
        let checks = self.checks.generation();
        let current = self.snapshot.load();
        let record = sync::lock(&self.record);
        Status {
            generation: current.generation(),
            loaded_at: current.at,
            content_hash: current.hash,
            last_error: record.last_error.clone(),
            // Each applied reload publishes exactly one generation, and
            // nothing else publishes: the count is the generation, read from
            // the same snapshot (a separate counter, bumped after the commit,
            // could lag the generation a waiter was just woken for).
            reloads: current.generation(),
            failures: record.failures,
            checks,
        }
    }

    /// Registers a change callback.
    pub(crate) fn add_callback(&self, callback: Callback<T>) -> CallbackId {
        let mut callbacks = sync::lock(&self.callbacks);
        let id = CallbackId(callbacks.next_id);
        callbacks.next_id += 1;
        callbacks.list.push((id, callback));
        id
    }

    /// Unregisters a change callback; `false` if it was not registered.
    pub(crate) fn remove_callback(&self, id: CallbackId) -> bool {
        let mut callbacks = sync::lock(&self.callbacks);
        let before = callbacks.list.len();
        callbacks.list.retain(|(registered, _)| *registered != id);
        callbacks.list.len() != before
    }

    /// Runs every callback with `config`, outside the lock. A panicking
    /// callback is logged and stays registered; the others still run.
    pub(crate) fn announce(&self, config: &ConfigRef<T>) {
        let list: Vec<Callback<T>> = sync::lock(&self.callbacks)
            .list
            .iter()
            .map(|(_, callback)| callback.clone())
            .collect();
        for callback in list {
            if let Err(reason) = source::catch(|| callback(config)) {
                tracing::error!(
                    path = %self.source.path.display(),
                    generation = config.generation(),
                    %reason,
                    "config change callback panicked",
                );
            }
        }
    }
}

impl<T> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("source", &self.source)
            .field("generation", &self.snapshot.generation())
            .finish_non_exhaustive()
    }
}
