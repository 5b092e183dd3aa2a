//! Publication primitives: ways to hand data from one thread (or task) to
//! others where every release and every acquire is named, justified and
//! model-checked.
//!
//! Each type here replaces a Go idiom from the acquire/release publication
//! patterns that real services use, and says in its docs where its release
//! and its acquire are. The naive Rust versions (a `Mutex<Arc<T>>` read on
//! every request, an `AtomicBool` spun on, a `OnceLock` that cannot retry, a
//! `Condvar` whose waiter checks outside the lock) are slow, lose wake-ups,
//! or cache failures; these do not.
//!
//! | Go idiom | Type | Release | Acquire |
//! |---|---|---|---|
//! | `atomic.Pointer[T]` + copy-on-write (hot reload), versioned value | [`Snapshot`] | `store` / `update` / `try_update` / `rcu` | `load`, `reader().load`, `wait_changed` |
//! | `sync.Once` + `err` (but retrying) | [`TryOnce`] | initializer returning `Ok` | `get`, `get_or_*` |
//! | `close(ready)` / `<-ready` | [`Latch`] | `open` | `is_open`, `wait`, `opened` |
//! | generational signal, resettable latch | [`GenerationSignal`] | `fire` | `generation`, `wait_past`, `past` |
//! | countdown latch, one-shot `WaitGroup` | [`Countdown`] | `count_down` | `count`, `wait`, `done` |
//! | `atomic.Int32` lifecycle + `CompareAndSwap` | [`StageGate`] | successful `advance` | `current`, `wait_for`, `reached` |
//! | `time.Now()` in code under test | [`Clock`], [`MonotonicClock`], [`ManualClock`] | `ManualClock::advance` | `Clock::now` |
//! | `time.Now()` on a hot path (runtime's cached nanotime) | [`CoarseClock`] | — (the kernel's tick publishes it) | — |
//! | CAS loop over `UnixNano` | [`UniqueClock`] | — (uniqueness from one RMW order) | — |
//! | `items[idx.Add(1) % len]` round-robin | [`RoundRobin`] | — (items published by construction) | — |
//! | per-P sharded counters, `LongAdder` | [`ShardedCounter`], [`CounterRegistry`] | — (counts publish nothing; `sum` exact after join) | registry: `Snapshot` load |
//! | concurrent set with a Bloom filter | [`AtomicBloom`] | `insert` (`fetch_or`, AcqRel) | `contains` (Acquire) |
//! | CAS push onto an `atomic.Pointer[node]` stack | [`TransferStack`] | `push` (Release CAS) | `take_all` (Acquire swap), `is_empty` |
//!
//! Blocking waits (`wait*`) park the thread on a condition variable; async
//! waits are runtime-agnostic futures that are cancel safe. Both re-check
//! their condition under the same lock the notifier takes, so a wake-up can
//! never fall between a check and a sleep.
//!
//! # Verification
//!
//! Every primitive has a loom model in `tests/loom_*.rs`, built when the
//! crate is compiled with `RUSTFLAGS="--cfg acqrel_loom"` (`cargo xtask ci`
//! runs them). Under that cfg every atomic, lock and cell in this crate is
//! loom's, including for crates that depend on this one.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use acqrel_core::{Latch, Snapshot};
//!
//! struct Routes { backends: Vec<&'static str> }
//!
//! let routes = Arc::new(Snapshot::new(Routes { backends: vec!["a"] }));
//! let warmed_up = Arc::new(Latch::new());
//!
//! let server = {
//!     let (routes, warmed_up) = (routes.clone(), warmed_up.clone());
//!     std::thread::spawn(move || {
//!         warmed_up.wait();
//!         let mut reader = routes.reader();
//!         reader.load().backends.len()
//!     })
//! };
//!
//! routes.update(|r| Routes { backends: [r.backends.as_slice(), &["b"]].concat() });
//! warmed_up.open();
//! assert_eq!(server.join().unwrap(), 2);
//! ```
#![doc(test(attr(deny(warnings))))]

mod atomic_bloom;
mod clock;
mod coarse_clock;
mod countdown;
mod counter_registry;
mod generation_signal;
mod latch;
mod manual_clock;
mod notify;
mod round_robin;
mod sharded_counter;
mod snapshot;
mod stage_gate;
mod sync;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod sys_clock;
mod transfer_stack;
mod try_once;
mod unique_clock;

pub use crate::atomic_bloom::{AtomicBloom, BloomError};
pub use crate::clock::{Clock, MonotonicClock};
pub use crate::coarse_clock::CoarseClock;
pub use crate::countdown::{Countdown, CountdownError};
pub use crate::counter_registry::{CounterRegistry, RegistryFull};
pub use crate::generation_signal::GenerationSignal;
pub use crate::latch::Latch;
pub use crate::manual_clock::ManualClock;
pub use crate::round_robin::{RoundRobin, RoundRobinError};
pub use crate::sharded_counter::ShardedCounter;
pub use crate::snapshot::{Snapshot, SnapshotGuard, SnapshotReader, SnapshotRef};
pub use crate::stage_gate::{AdvanceError, Stage, StageGate};
pub use crate::transfer_stack::{TakeAll, TransferStack};
pub use crate::try_once::TryOnce;
pub use crate::unique_clock::UniqueClock;

/// The guide's pages, compiled and run as doc tests so their examples cannot
/// drift from the API.
#[cfg(doctest)]
mod guide {
    macro_rules! pages {
        ($($name:ident => $path:literal),* $(,)?) => {
            $(
                #[doc = include_str!(concat!("../../../docs/patterns/", $path))]
                struct $name;
            )*
        };
    }

    pages! {
        Snapshot => "snapshot.md",
        TryOnce => "try_once.md",
        Latch => "latch.md",
        GenerationSignal => "generation_signal.md",
        Countdown => "countdown.md",
        StageGate => "stage_gate.md",
        Clock => "clock.md",
        RoundRobin => "round_robin.md",
        ShardedCounter => "sharded_counter.md",
        AtomicBloom => "atomic_bloom.md",
        TransferStack => "transfer_stack.md",
    }
}
