//! Read-mostly cell: `acqrel_core::Snapshot` beside its anchors.
//!
//! Each iteration loads the current value of a shared cell and reads one field
//! of it through `black_box`. The value is a small config-like struct (a few
//! `u64`s and a `String`), built the same way by every writer.
//!
//! Groups (one per scenario):
//!
//! - `snapshot/read_no_writer`: one reader, nobody stores.
//! - `snapshot/read_with_writer`: one reader while one background thread
//!   stores freshly built values into the very cell being read, with no pause
//!   between stores. Each benchmark starts its own writer on its own cell
//!   before measuring and stops and joins it before the next benchmark starts,
//!   so exactly one writer runs at any time and none outlives the group.
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`.

use std::hint::black_box;
use std::mem;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use acqrel_benches::BackgroundWriter;
use acqrel_core::Snapshot;
use arc_swap::ArcSwap;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

type Group<'a> = BenchmarkGroup<'a, WallTime>;

// ===== Config: the value being published =====

/// A small config-like value. Readers read `timeout_ms`; the other fields give
/// it a realistic size and building cost.
#[expect(
    dead_code,
    reason = "only `timeout_ms` is read; the rest is ballast every writer builds"
)]
struct Config {
    generation: u64,
    max_connections: u64,
    timeout_ms: u64,
    retries: u64,
    name: String,
}

impl Config {
    /// Builds the `generation`-th value; every writer pays this same cost
    /// (including one heap allocation for `name`) per store.
    fn build(generation: u64) -> Self {
        Self {
            generation,
            max_connections: 64 + generation % 8,
            timeout_ms: 1_000 + generation % 100,
            retries: 3,
            name: format!("config-{generation}"),
        }
    }
}

// ===== Scenarios =====

#[derive(Clone, Copy)]
enum Scenario {
    NoWriter,
    WithWriter,
}

impl Scenario {
    fn group_id(self) -> &'static str {
        match self {
            Self::NoWriter => "snapshot/read_no_writer",
            Self::WithWriter => "snapshot/read_with_writer",
        }
    }

    /// Starts this scenario's writer on `cell`: none, or one thread that calls
    /// `store` with a freshly built `Config` over and over until the returned
    /// guard is dropped.
    fn writer<C>(self, cell: &Arc<C>, store: fn(&C, Config)) -> Option<BackgroundWriter>
    where
        C: Send + Sync + 'static,
    {
        match self {
            Self::NoWriter => None,
            Self::WithWriter => {
                let cell = Arc::clone(cell);
                let mut generation = 0;
                Some(BackgroundWriter::spawn(move || {
                    generation += 1;
                    store(&cell, Config::build(generation));
                }))
            }
        }
    }
}

// ===== The floor: a raw AtomicPtr =====

/// A raw `AtomicPtr` to a boxed value: what a load costs with no reclamation
/// scheme at all.
///
/// A real cell must eventually free the values it replaces, and knowing when
/// no reader still uses one is exactly the cost the other cells pay. This one
/// sidesteps it: it only ever points at the values in `pool`, leaked at
/// construction and never freed, so a reader holding a pointer the writer has
/// just replaced still reads a live value and no use-after-free is possible.
struct RawCell {
    ptr: AtomicPtr<Config>,
    /// Values leaked by `new`; alive (and never mutated) until the process
    /// exits. Generation `g` is published as `pool[g % 2]`.
    pool: [&'static Config; 2],
}

impl RawCell {
    fn new() -> Self {
        let pool = [0, 1].map(|generation| &*Box::leak(Box::new(Config::build(generation))));
        Self {
            ptr: AtomicPtr::new(ptr::from_ref(pool[0]).cast_mut()),
            pool,
        }
    }

    #[inline]
    fn load(&self) -> &Config {
        // Acquire: pairs with the Release store in `store` (and with the
        // happens-before of `new` when nobody stores), so the pointee's fields
        // are visible.
        let ptr = self.ptr.load(Ordering::Acquire);
        // SAFETY: `ptr` always points at one of `self.pool`'s values, which
        // are leaked: never freed and never mutated, so a shared reference to
        // one is valid for as long as `self` is borrowed (and longer).
        unsafe { &*ptr }
    }

    fn store(&self, value: Config) {
        // The freshly built value cannot be published without a reclamation
        // scheme, so it is dropped (through `black_box`, so the build is not
        // optimized away) and a pool value is published in its place. The
        // writer still pays the same building and freeing cost as the others.
        let slot = self.pool[(value.generation % 2) as usize];
        drop(black_box(value));
        // Release: pairs with the Acquire load in `load`.
        self.ptr
            .store(ptr::from_ref(slot).cast_mut(), Ordering::Release);
    }
}

// ===== Benchmarks, one per function id =====

fn acqrel_snapshot_load(group: &mut Group<'_>, scenario: Scenario) {
    let cell = Arc::new(Snapshot::new(Config::build(0)));
    let _writer = scenario.writer(&cell, |cell, value| {
        cell.store(value);
    });
    let cell = &*cell;
    group.bench_function("acqrel::Snapshot::load", |b| {
        b.iter(|| black_box(cell.load().timeout_ms));
    });
}

fn acqrel_snapshot_reader_load(group: &mut Group<'_>, scenario: Scenario) {
    let cell = Arc::new(Snapshot::new(Config::build(0)));
    let _writer = scenario.writer(&cell, |cell, value| {
        cell.store(value);
    });
    let mut reader = cell.reader();
    group.bench_function("acqrel::Snapshot::reader().load", |b| {
        b.iter(|| black_box(reader.load().timeout_ms));
    });
}

fn arc_swap_load(group: &mut Group<'_>, scenario: Scenario) {
    let cell = Arc::new(ArcSwap::from_pointee(Config::build(0)));
    let _writer = scenario.writer(&cell, |cell, value| {
        cell.store(Arc::new(value));
    });
    let cell = &*cell;
    group.bench_function("arc_swap::ArcSwap::load", |b| {
        b.iter(|| black_box(cell.load().timeout_ms));
    });
}

fn arc_swap_cache_load(group: &mut Group<'_>, scenario: Scenario) {
    let cell = Arc::new(ArcSwap::from_pointee(Config::build(0)));
    let _writer = scenario.writer(&cell, |cell, value| {
        cell.store(Arc::new(value));
    });
    let mut cache = arc_swap::Cache::new(&*cell);
    group.bench_function("arc_swap::Cache::load", |b| {
        b.iter(|| black_box(cache.load().timeout_ms));
    });
}

fn std_atomic_ptr_load(group: &mut Group<'_>, scenario: Scenario) {
    let cell = Arc::new(RawCell::new());
    let _writer = scenario.writer(&cell, RawCell::store);
    let cell = &*cell;
    group.bench_function("std::AtomicPtr::load(Acquire)", |b| {
        b.iter(|| black_box(cell.load().timeout_ms));
    });
}

fn std_rwlock_read(group: &mut Group<'_>, scenario: Scenario) {
    let cell = Arc::new(RwLock::new(Arc::new(Config::build(0))));
    let _writer = scenario.writer(&cell, |cell, value| {
        let value = Arc::new(value);
        // The guard is released at the end of this statement; the old value
        // is freed after that, outside the lock, as the other writers also
        // never free under a lock readers wait on.
        let old = mem::replace(&mut *cell.write().unwrap(), value);
        drop(old);
    });
    let cell = &*cell;
    group.bench_function("std::RwLock<Arc<T>>::read", |b| {
        b.iter(|| black_box(cell.read().unwrap().timeout_ms));
    });
}

fn std_mutex_lock(group: &mut Group<'_>, scenario: Scenario) {
    let cell = Arc::new(Mutex::new(Arc::new(Config::build(0))));
    let _writer = scenario.writer(&cell, |cell, value| {
        let value = Arc::new(value);
        // As for the RwLock: swap under the lock, free the old value outside.
        let old = mem::replace(&mut *cell.lock().unwrap(), value);
        drop(old);
    });
    let cell = &*cell;
    group.bench_function("std::Mutex<Arc<T>>::lock", |b| {
        b.iter(|| black_box(cell.lock().unwrap().timeout_ms));
    });
}

// ===== Groups =====

/// Runs every function id of one scenario in its own group, ours first.
fn read_group(c: &mut Criterion, scenario: Scenario) {
    let mut group = c.benchmark_group(scenario.group_id());
    acqrel_snapshot_load(&mut group, scenario);
    acqrel_snapshot_reader_load(&mut group, scenario);
    arc_swap_load(&mut group, scenario);
    arc_swap_cache_load(&mut group, scenario);
    std_atomic_ptr_load(&mut group, scenario);
    std_rwlock_read(&mut group, scenario);
    std_mutex_lock(&mut group, scenario);
    group.finish();
}

fn read_no_writer(c: &mut Criterion) {
    read_group(c, Scenario::NoWriter);
}

fn read_with_writer(c: &mut Criterion) {
    read_group(c, Scenario::WithWriter);
}

criterion_group!(benches, read_no_writer, read_with_writer);
criterion_main!(benches);
