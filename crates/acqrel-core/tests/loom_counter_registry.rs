//! Loom model of `CounterRegistry`: two threads creating the same name at
//! once get the same counter, and neither increment is lost.
//!
//! The registry's synchronization is its `Snapshot`'s (modelled in
//! `loom_snapshot.rs`); this model checks the registry's own step, the
//! re-check of the name inside `Snapshot::try_update`. Skipping that
//! re-check makes the later creator replace the earlier one's counter, and
//! the model fails.
#![cfg(acqrel_loom)]

use std::num::NonZeroUsize;

use acqrel_core::CounterRegistry;
use loom::sync::Arc;
use loom::thread;

#[test]
fn racing_creations_share_one_counter() {
    loom::model(|| {
        let registry = Arc::new(CounterRegistry::new(NonZeroUsize::new(2).unwrap()));
        let other = {
            let registry = registry.clone();
            thread::spawn(move || {
                let counter = registry.counter("hits").unwrap();
                counter.inc();
                counter
            })
        };
        let mine = registry.counter("hits").unwrap();
        mine.inc();
        let theirs = other.join().unwrap();
        assert!(std::sync::Arc::ptr_eq(&mine, &theirs));
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.snapshot()["hits"], 2);
    });
}
