//! The running tasks of a [`TaskGroup`](crate::TaskGroup): one entry per
//! task from its spawn to its end, so that dropping the group can abort
//! them. Finished tasks leave no trace.
//!
//! # Protocol
//!
//! The registry lives under the group's lock; every method is one critical
//! section. The spawner cannot hold that lock while it spawns (the task may
//! run and end on another thread before `spawn` returns, and its end takes
//! the lock), so a task's entry goes through up to three states, and
//! whichever of the spawner and the task comes second removes it:
//!
//! | entry | made by | then |
//! |---|---|---|
//! | `Spawning` | [`reserve`](Registry::reserve), before the spawn | [`store`](Registry::store) → `Running`; [`exit`](Registry::exit) → `Exited` |
//! | `Running(handle)` | `store` | `exit` removes it |
//! | `Exited` | `exit` before `store` | `store` removes it (and hands the handle back) |
//!
//! Ids are never reused (a `u64` counter), so a late `store` can never land
//! on another task's entry.

use std::collections::HashMap;
use std::mem;

/// Above this capacity, the map shrinks once it is a quarter full, so a
/// burst of tasks does not pin its memory for the group's lifetime.
const SHRINK_ABOVE: usize = 64;

/// The entries of the running tasks; `H` is the handle that aborts one
/// (tokio's `AbortHandle`; a plain value in the unit tests).
pub(super) struct Registry<H> {
    entries: HashMap<u64, Entry<H>>,
    next_id: u64,
    /// Tasks reserved and not yet exited: `Spawning` and `Running`
    /// entries, plus those whose entry [`take_all`](Registry::take_all)
    /// took.
    running: usize,
}

enum Entry<H> {
    Spawning,
    Running(H),
    Exited,
}

impl<H> Registry<H> {
    pub(super) fn new() -> Registry<H> {
        Registry {
            entries: HashMap::new(),
            next_id: 0,
            running: 0,
        }
    }

    /// Makes the entry of a task about to be spawned; returns its id.
    pub(super) fn reserve(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(id, Entry::Spawning);
        self.running += 1;
        id
    }

    /// Stores the handle of the task `id` once it is spawned. Returns the
    /// handle back, for the caller to drop after unlocking, if the task
    /// already exited (its entry is removed then) or its entry was taken
    /// by [`take_all`](Registry::take_all).
    pub(super) fn store(&mut self, id: u64, handle: H) -> Option<H> {
        match self.entries.get_mut(&id) {
            Some(entry @ Entry::Spawning) => {
                *entry = Entry::Running(handle);
                None
            }
            Some(Entry::Exited) => {
                self.remove(id);
                Some(handle)
            }
            Some(Entry::Running(_)) | None => Some(handle),
        }
    }

    /// The end of the task `id`. Returns its handle, if it was stored, for
    /// the caller to drop after unlocking.
    pub(super) fn exit(&mut self, id: u64) -> Option<H> {
        self.running -= 1;
        match self.entries.get_mut(&id) {
            Some(entry @ Entry::Spawning) => {
                *entry = Entry::Exited;
                None
            }
            Some(Entry::Running(_)) => match self.remove(id) {
                Some(Entry::Running(handle)) => Some(handle),
                _ => None,
            },
            Some(Entry::Exited) | None => None,
        }
    }

    /// Takes the handles of every running task (to abort them), and
    /// forgets every entry. The tasks still [`exit`](Registry::exit).
    pub(super) fn take_all(&mut self) -> Vec<H> {
        mem::take(&mut self.entries)
            .into_values()
            .filter_map(|entry| match entry {
                Entry::Running(handle) => Some(handle),
                Entry::Spawning | Entry::Exited => None,
            })
            .collect()
    }

    /// Tasks reserved and not yet exited.
    pub(super) fn running(&self) -> usize {
        self.running
    }

    fn remove(&mut self, id: u64) -> Option<Entry<H>> {
        let removed = self.entries.remove(&id);
        let len = self.entries.len();
        if self.entries.capacity() > SHRINK_ABOVE && len < self.entries.capacity() / 4 {
            self.entries.shrink_to(len * 2);
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_that_exits_after_its_handle_is_stored_takes_its_entry_out() {
        let mut registry = Registry::new();
        let id = registry.reserve();
        assert_eq!(registry.store(id, "handle"), None);
        assert_eq!(registry.running(), 1);
        assert_eq!(registry.exit(id), Some("handle"));
        assert_eq!(registry.running(), 0);
        assert!(registry.entries.is_empty());
    }

    #[test]
    fn a_task_that_exits_before_its_handle_is_stored_leaves_the_removal_to_the_spawner() {
        let mut registry = Registry::new();
        let id = registry.reserve();
        let other = registry.reserve();
        assert_eq!(registry.exit(id), None);
        assert_eq!(registry.running(), 1);
        assert_eq!(registry.entries.len(), 2);
        assert_eq!(registry.store(id, "late"), Some("late"));
        assert_eq!(registry.entries.len(), 1);
        assert_eq!(registry.store(other, "other"), None);
        assert_eq!(registry.take_all(), vec!["other"]);
    }

    #[test]
    fn ids_are_not_reused_so_a_late_store_misses_a_newer_task() {
        let mut registry = Registry::new();
        let first = registry.reserve();
        registry.exit(first);
        registry.store(first, 1);
        let second = registry.reserve();
        assert_ne!(first, second);
        assert_eq!(registry.store(first, 1), Some(1));
        assert_eq!(registry.store(second, 2), None);
        assert_eq!(registry.exit(second), Some(2));
    }

    #[test]
    fn take_all_hands_out_the_stored_handles_and_the_tasks_still_exit() {
        let mut registry = Registry::new();
        let ids: Vec<u64> = (0..3).map(|_| registry.reserve()).collect();
        for (handle, &id) in ids.iter().enumerate() {
            assert_eq!(registry.store(id, handle), None);
        }
        let mut taken = registry.take_all();
        taken.sort_unstable();
        assert_eq!(taken, vec![0, 1, 2]);
        assert_eq!(registry.running(), 3);
        for id in ids {
            assert_eq!(registry.exit(id), None);
        }
        assert_eq!(registry.running(), 0);
    }

    #[test]
    fn a_burst_of_tasks_does_not_pin_its_memory() {
        let mut registry = Registry::new();
        let ids: Vec<u64> = (0..10_000).map(|_| registry.reserve()).collect();
        for &id in &ids {
            registry.store(id, ());
        }
        assert!(registry.entries.capacity() >= 10_000);
        for id in ids {
            registry.exit(id);
        }
        assert_eq!(registry.running(), 0);
        assert!(registry.entries.capacity() <= SHRINK_ABOVE);
    }
}
