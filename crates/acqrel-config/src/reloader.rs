//! The reloader thread and the directory watches that feed it.
//!
//! The watcher (notify's own thread) only records that something happened
//! in a watched directory ([`Trigger::fs_event`](crate::trigger::Trigger));
//! the reloader thread decides when to look, reads the file and compares
//! content hashes. Watching the *directory* rather than the file is what
//! lets a config survive the ways files really change: an editor's
//! write-temp-then-rename (the watched inode is replaced), delete and
//! re-create, and the Kubernetes ConfigMap layout, where `app.json` is a
//! symlink to `..data/app.json` and `..data` is a symlink swapped by a
//! rename in the same directory. No event names the file in that last
//! case, so every event in the directory counts except accesses (our own
//! reads open the file); a busy directory costs at most one read and hash
//! per debounce window.
//!
//! When the file is a symlink into another directory, that directory (the
//! one holding the file's final target) is watched too, and the set is
//! brought up to date after every check.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde::de::DeserializeOwned;

use crate::hot_config::ConfigRef;
use crate::shared::Shared;
use crate::source::parent_dir;
use crate::trigger::Work;

/// The watcher and the directories it watches.
pub(crate) struct Watches {
    watcher: RecommendedWatcher,
    /// The file's own directory, always watched.
    home: PathBuf,
    /// The directory of the file's final target, when it differs.
    target: Option<PathBuf>,
}

impl Watches {
    /// Watches the directory of `shared`'s file, recording events into its
    /// trigger. Fails if that directory cannot be watched.
    pub(crate) fn start<T: Send + Sync + 'static>(
        shared: &Arc<Shared<T>>,
    ) -> Result<Self, (PathBuf, notify::Error)> {
        let home = parent_dir(&shared.source.path);
        // Weak: the watcher's thread outlives the watcher by a moment and
        // must not keep the config alive.
        let weak: Weak<Shared<T>> = Arc::downgrade(shared);
        let handler = move |event: notify::Result<Event>| {
            if let Some(shared) = weak.upgrade()
                && counts(&event)
            {
                shared.trigger.fs_event(shared.clock.now());
            }
        };
        let mut watcher = notify::recommended_watcher(handler).map_err(|e| (home.clone(), e))?;
        watcher
            .watch(&home, RecursiveMode::NonRecursive)
            .map_err(|e| (home.clone(), e))?;
        let mut watches = Watches {
            watcher,
            home,
            target: None,
        };
        watches.refresh(&shared.source.path);
        Ok(watches)
    }

    /// Watches the directory of the file's current final target, if it is
    /// not the file's own, and stops watching a previous one.
    fn refresh(&mut self, path: &Path) {
        let target = std::fs::canonicalize(path)
            .ok()
            .map(|real| parent_dir(&real))
            .filter(|dir| {
                *dir != self.home && std::fs::canonicalize(&self.home).ok().as_ref() != Some(dir)
            });
        if target == self.target {
            return;
        }
        if let Some(old) = self.target.take() {
            // The directory may be gone already (a ConfigMap's old
            // revision); the watch went with it.
            let _ = self.watcher.unwatch(&old);
        }
        if let Some(dir) = target {
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => self.target = Some(dir),
                Err(e) => {
                    tracing::debug!(dir = %dir.display(), error = %e, "cannot watch the config's target directory")
                }
            }
        }
    }
}

/// Whether an event may mean the file changed: anything but an access
/// (opening or reading a file, including our own reads), except closing a
/// file written to. Errors count too: the watcher may have lost events.
fn counts(event: &notify::Result<Event>) -> bool {
    match event {
        Ok(event) => match event.kind {
            EventKind::Access(kind) => kind == AccessKind::Close(AccessMode::Write),
            _ => true,
        },
        Err(_) => true,
    }
}

/// The reloader thread's body: checks when the trigger says so, announces
/// every new generation to the callbacks, and returns on stop, dropping the
/// watcher.
pub(crate) fn run<T: DeserializeOwned + Send + Sync + 'static>(
    shared: Arc<Shared<T>>,
    mut watches: Option<Watches>,
) {
    // The config served at start is generation 0 and is no change. Not the
    // generation current when this thread gets to run: a `reload_now` that
    // commits before then is a change the callbacks must hear about.
    let mut announced = 0;
    loop {
        match shared.trigger.next(&*shared.clock) {
            Work::Stop => break,
            Work::Check => {
                // Refusals are recorded, counted and logged by `check`.
                let _ = shared.check();
                if let Some(watches) = &mut watches {
                    watches.refresh(&shared.source.path);
                }
            }
            Work::Announce => {}
        }
        let current = shared.snapshot.load_full();
        if current.generation() > announced {
            announced = current.generation();
            shared.announce(&ConfigRef(current));
        }
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind};

    #[test]
    fn accesses_do_not_count_but_writes_and_errors_do() {
        let event = |kind| Ok(Event::new(kind));
        assert!(!counts(&event(EventKind::Access(AccessKind::Open(
            AccessMode::Any
        )))));
        assert!(!counts(&event(EventKind::Access(AccessKind::Close(
            AccessMode::Read
        )))));
        assert!(counts(&event(EventKind::Access(AccessKind::Close(
            AccessMode::Write
        )))));
        assert!(counts(&event(EventKind::Create(CreateKind::File))));
        assert!(counts(&event(EventKind::Modify(ModifyKind::Any))));
        assert!(counts(&Err(notify::Error::generic("queue overflow"))));
    }
}
