//! Rate limiting: `acqrel_ratelimit` beside `governor`, the crate Rust
//! services reach for (GCRA in one `AtomicU64`, like ours).
//!
//! Each iteration is one `check()` (or `check_key(&key)`, each an
//! out-of-line call on both sides; see [`Direct`]), with the whole
//! outcome returned to criterion (so the denial's "not until" value is built
//! on both sides) and asserted: an allow group that ever denies, or a deny
//! group that ever admits, panics instead of measuring the other path. Both
//! sides get the same quota in every group, and each side's default clock
//! unless the group says otherwise: ours is `acqrel_core::MonotonicClock`
//! (`std::time::Instant`), governor's is `QuantaClock` (the TSC, through the
//! `quanta` crate, its default feature).
//!
//! Every group of the scenarios also measures ours on
//! `acqrel_core::CoarseClock` (the kernel's tick-time, a quarter of
//! `Instant`'s cost per reading, at one tick's resolution), the clock to
//! pick when a reading per check is the cost that matters.
//!
//! Groups (one per scenario):
//!
//! - `ratelimit/allow_1_thread`: one cell per nanosecond with a burst of 10⁹
//!   (the fastest quota both crates express exactly), far more than a thread
//!   can ask for, so every check admits: a load and a compare-and-swap.
//! - `ratelimit/deny_1_thread`: one cell per hour, taken before measuring, so
//!   every check denies: the path that should cost only a load.
//! - `ratelimit/allow_2_threads`, `ratelimit/deny_2_threads`: the same while a
//!   background thread checks the same limiter nonstop (a
//!   [`BackgroundWriter`]; the time reported is the measuring thread's per
//!   check). Admitting, the two threads' compare-and-swaps contend for one
//!   cache line; denying, both only read it.
//! - `ratelimit/keyed_1000_keys`: per-key limiters, 1,000 `u64` keys checked
//!   round-robin, all already present (a first pass inserts them before
//!   measuring), each under the allow quota: a map lookup and an admitting
//!   check. Ours is `KeyedRateLimiter`, governor's is `RateLimiter::keyed`
//!   (a `DashMap` with std's `RandomState`).
//!
//! Groups that explain the numbers above (no targets):
//!
//! - `ratelimit/allow_1_thread_same_clock`,
//!   `ratelimit/deny_1_thread_same_clock`,
//!   `ratelimit/keyed_1000_keys_same_clock`: the scenario with both sides on
//!   `std::time::Instant` (ours `MonotonicClock`, governor's
//!   `clock::MonotonicClock`), then both on governor's `QuantaClock` (ours
//!   through a small adapter in this file), so the difference left is the
//!   limiters'.
//! - `ratelimit/deny_1_thread_manual_clock`: the deny path on clocks that are
//!   a single atomic load (our `ManualClock`, governor's
//!   `FakeRelativeClock`): what the limiters cost without reading the time.
//! - `ratelimit/clock_now`: one reading of each clock above.
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use acqrel_benches::BackgroundWriter;
use acqrel_core::{Clock as _, CoarseClock, ManualClock, MonotonicClock};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use governor::clock::{Clock as _, FakeRelativeClock, QuantaClock, QuantaInstant, Reference as _};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};

type Group<'a> = BenchmarkGroup<'a, WallTime>;

const OURS: &str = "acqrel::RateLimiter::check";
const ANCHOR: &str = "governor::RateLimiter::check";
const OURS_COARSE: &str = "acqrel::RateLimiter<CoarseClock>::check";

/// The rate of the allow groups: one cell per nanosecond, burst 10⁹.
const ALLOW_RATE: NonZeroU32 = NonZeroU32::new(1_000_000_000).unwrap();

// ===== Scenarios =====

/// Which outcome every check of a group has.
#[derive(Clone, Copy)]
enum Outcome {
    Allow,
    Deny,
}

impl Outcome {
    /// The quota of this scenario, on both sides.
    fn quotas(self) -> (acqrel_ratelimit::Quota, governor::Quota) {
        match self {
            Self::Allow => (
                acqrel_ratelimit::Quota::per_second(ALLOW_RATE),
                governor::Quota::per_second(ALLOW_RATE),
            ),
            Self::Deny => (
                acqrel_ratelimit::Quota::per_hour(NonZeroU32::MIN),
                governor::Quota::per_hour(NonZeroU32::MIN),
            ),
        }
    }

    /// Panics unless `admitted` is this scenario's outcome.
    #[inline]
    fn expect(self, admitted: bool) {
        match self {
            Self::Allow => assert!(admitted, "an allow scenario denied"),
            Self::Deny => assert!(!admitted, "a deny scenario admitted"),
        }
    }
}

/// One direct limiter, whichever crate.
///
/// Implementations are `#[inline(never)]`, as are [`Keyed`]'s: each check is
/// one call of a function holding that crate's whole check, so a number does
/// not depend on whether the inliner happens to fold a check into the
/// benchmark loop and hoist its loop-invariant parts (it did for governor in
/// some builds of this file and not in others, moving its deny path on a
/// `FakeRelativeClock` between 1.6 and 9.5 ns).
trait Direct: Send + Sync + 'static {
    type Denied: Send;

    fn check(&self) -> Result<(), Self::Denied>;
}

impl<C: acqrel_core::Clock + 'static> Direct for acqrel_ratelimit::RateLimiter<C> {
    type Denied = acqrel_ratelimit::NotUntil;

    #[inline(never)]
    fn check(&self) -> Result<(), Self::Denied> {
        acqrel_ratelimit::RateLimiter::check(self)
    }
}

type Governor<C> = governor::RateLimiter<
    NotKeyed,
    InMemoryState,
    C,
    NoOpMiddleware<<C as governor::clock::Clock>::Instant>,
>;

impl<C> Direct for Governor<C>
where
    C: governor::clock::Clock + Send + Sync + 'static,
{
    type Denied = governor::NotUntil<C::Instant>;

    #[inline(never)]
    fn check(&self) -> Result<(), Self::Denied> {
        Governor::check(self)
    }
}

/// Measures `check` on `limiter` under `id`, with `threads - 1` background
/// threads checking the same limiter nonstop. For [`Outcome::Deny`], the
/// bucket is emptied first.
fn direct<L: Direct>(group: &mut Group<'_>, id: &str, limiter: L, outcome: Outcome, threads: u32) {
    if let Outcome::Deny = outcome {
        // The quotas of the deny scenarios hold one cell.
        assert!(limiter.check().is_ok(), "a fresh limiter denied");
    }
    let limiter = Arc::new(limiter);
    let _background: Vec<BackgroundWriter> = (1..threads)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            BackgroundWriter::spawn(move || {
                let checked = black_box(&*limiter).check();
                outcome.expect(checked.is_ok());
            })
        })
        .collect();
    let limiter = &*limiter;
    group.bench_function(id, |b| {
        b.iter(|| {
            let checked = black_box(limiter).check();
            outcome.expect(checked.is_ok());
            checked
        });
    });
}

/// One group: ours and governor, each on its default clock, then ours on
/// `CoarseClock`.
fn default_clocks(c: &mut Criterion, group_id: &str, outcome: Outcome, threads: u32) {
    let (ours, theirs) = outcome.quotas();
    let mut group = c.benchmark_group(group_id);
    direct(
        &mut group,
        OURS,
        acqrel_ratelimit::RateLimiter::new(ours),
        outcome,
        threads,
    );
    direct(
        &mut group,
        OURS_COARSE,
        acqrel_ratelimit::RateLimiter::with_clock(ours, CoarseClock::new()),
        outcome,
        threads,
    );
    direct(
        &mut group,
        ANCHOR,
        governor::RateLimiter::direct(theirs),
        outcome,
        threads,
    );
    group.finish();
}

// ===== Groups =====

fn allow_1_thread(c: &mut Criterion) {
    default_clocks(c, "ratelimit/allow_1_thread", Outcome::Allow, 1);
}

fn deny_1_thread(c: &mut Criterion) {
    default_clocks(c, "ratelimit/deny_1_thread", Outcome::Deny, 1);
}

fn allow_2_threads(c: &mut Criterion) {
    default_clocks(c, "ratelimit/allow_2_threads", Outcome::Allow, 2);
}

fn deny_2_threads(c: &mut Criterion) {
    default_clocks(c, "ratelimit/deny_2_threads", Outcome::Deny, 2);
}

// ===== Keyed =====

/// Keys in `ratelimit/keyed_1000_keys`.
const KEYS: u64 = 1_000;

/// One keyed limiter, whichever crate.
trait Keyed {
    type Denied;

    fn check_key(&self, key: &u64) -> Result<(), Self::Denied>;
}

impl<C: acqrel_core::Clock> Keyed for acqrel_ratelimit::KeyedRateLimiter<u64, C> {
    type Denied = acqrel_ratelimit::KeyedNegative;

    #[inline(never)]
    fn check_key(&self, key: &u64) -> Result<(), Self::Denied> {
        self.check(key)
    }
}

type GovernorKeyed<C> = governor::RateLimiter<
    u64,
    DashMapStateStore<u64>,
    C,
    NoOpMiddleware<<C as governor::clock::Clock>::Instant>,
>;

impl<C: governor::clock::Clock> Keyed for GovernorKeyed<C> {
    type Denied = governor::NotUntil<C::Instant>;

    #[inline(never)]
    fn check_key(&self, key: &u64) -> Result<(), Self::Denied> {
        GovernorKeyed::check_key(self, key)
    }
}

/// Measures checks of keys `0..KEYS` in turn, after a first pass that
/// creates every key's bucket.
fn keyed<L: Keyed>(group: &mut Group<'_>, id: &str, limiter: L) {
    for key in 0..KEYS {
        assert!(limiter.check_key(&key).is_ok(), "a new key was denied");
    }
    let mut key = 0;
    group.bench_function(id, |b| {
        b.iter(|| {
            key = if key + 1 == KEYS { 0 } else { key + 1 };
            let checked = black_box(&limiter).check_key(black_box(&key));
            Outcome::Allow.expect(checked.is_ok());
            checked
        });
    });
}

fn keyed_1000_keys(c: &mut Criterion) {
    let (ours, theirs) = Outcome::Allow.quotas();
    let mut group = c.benchmark_group("ratelimit/keyed_1000_keys");
    keyed(
        &mut group,
        "acqrel::KeyedRateLimiter::check",
        acqrel_ratelimit::KeyedRateLimiter::new(ours),
    );
    keyed(
        &mut group,
        "acqrel::KeyedRateLimiter<CoarseClock>::check",
        acqrel_ratelimit::KeyedRateLimiter::with_clock(ours, CoarseClock::new()),
    );
    keyed(
        &mut group,
        "governor::RateLimiter::check_key",
        governor::RateLimiter::keyed(theirs),
    );
    group.finish();
}

// ===== Explaining the gaps =====

/// Our limiter on governor's default clock, for the `*_same_clock` groups
/// only: the TSC read through `quanta`, exactly as governor reads it, in
/// nanoseconds since the limiter was made.
struct Quanta {
    clock: QuantaClock,
    start: QuantaInstant,
}

impl Quanta {
    fn new() -> Self {
        let clock = QuantaClock::default();
        let start = clock.now();
        Quanta { clock, start }
    }
}

impl acqrel_core::Clock for Quanta {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        self.clock.now().duration_since(self.start).into()
    }
}

/// One group with both sides on std's `Instant`, then both on `quanta`.
fn same_clocks(c: &mut Criterion, group_id: &str, outcome: Outcome) {
    let (ours, theirs) = outcome.quotas();
    let mut group = c.benchmark_group(group_id);
    direct(
        &mut group,
        "acqrel::RateLimiter<MonotonicClock>::check",
        acqrel_ratelimit::RateLimiter::with_clock(ours, MonotonicClock::new()),
        outcome,
        1,
    );
    direct(
        &mut group,
        "governor::RateLimiter<MonotonicClock>::check",
        governor::RateLimiter::direct_with_clock(theirs, governor::clock::MonotonicClock),
        outcome,
        1,
    );
    direct(
        &mut group,
        "acqrel::RateLimiter<QuantaClock>::check",
        acqrel_ratelimit::RateLimiter::with_clock(ours, Quanta::new()),
        outcome,
        1,
    );
    direct(
        &mut group,
        "governor::RateLimiter<QuantaClock>::check",
        governor::RateLimiter::direct_with_clock(theirs, QuantaClock::default()),
        outcome,
        1,
    );
    group.finish();
}

fn allow_1_thread_same_clock(c: &mut Criterion) {
    same_clocks(c, "ratelimit/allow_1_thread_same_clock", Outcome::Allow);
}

fn deny_1_thread_same_clock(c: &mut Criterion) {
    same_clocks(c, "ratelimit/deny_1_thread_same_clock", Outcome::Deny);
}

fn keyed_1000_keys_same_clock(c: &mut Criterion) {
    let (ours, theirs) = Outcome::Allow.quotas();
    let mut group = c.benchmark_group("ratelimit/keyed_1000_keys_same_clock");
    keyed(
        &mut group,
        "acqrel::KeyedRateLimiter<MonotonicClock>::check",
        acqrel_ratelimit::KeyedRateLimiter::with_clock(ours, MonotonicClock::new()),
    );
    keyed(
        &mut group,
        "governor::RateLimiter<MonotonicClock>::check_key",
        governor::RateLimiter::dashmap_with_clock(theirs, governor::clock::MonotonicClock),
    );
    keyed(
        &mut group,
        "acqrel::KeyedRateLimiter<QuantaClock>::check",
        acqrel_ratelimit::KeyedRateLimiter::with_clock(ours, Quanta::new()),
    );
    keyed(
        &mut group,
        "governor::RateLimiter<QuantaClock>::check_key",
        governor::RateLimiter::dashmap_with_clock(theirs, QuantaClock::default()),
    );
    group.finish();
}

fn deny_1_thread_manual_clock(c: &mut Criterion) {
    let (ours, theirs) = Outcome::Deny.quotas();
    let mut group = c.benchmark_group("ratelimit/deny_1_thread_manual_clock");
    direct(
        &mut group,
        "acqrel::RateLimiter<ManualClock>::check",
        acqrel_ratelimit::RateLimiter::with_clock(ours, ManualClock::new()),
        Outcome::Deny,
        1,
    );
    direct(
        &mut group,
        "governor::RateLimiter<FakeRelativeClock>::check",
        governor::RateLimiter::direct_with_clock(theirs, FakeRelativeClock::default()),
        Outcome::Deny,
        1,
    );
    group.finish();
}

fn clock_now(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit/clock_now");
    let ours = MonotonicClock::new();
    group.bench_function("acqrel_core::MonotonicClock::now_nanos", |b| {
        b.iter(|| black_box(&ours).now_nanos());
    });
    let coarse = CoarseClock::new();
    group.bench_function("acqrel_core::CoarseClock::now_nanos", |b| {
        b.iter(|| black_box(&coarse).now_nanos());
    });
    let std = governor::clock::MonotonicClock;
    group.bench_function("std::time::Instant::now", |b| {
        b.iter(|| black_box(&std).now());
    });
    let quanta = QuantaClock::default();
    group.bench_function("governor::clock::QuantaClock::now", |b| {
        b.iter(|| black_box(&quanta).now());
    });
    let manual = ManualClock::new();
    group.bench_function("acqrel_core::ManualClock::now_nanos", |b| {
        b.iter(|| black_box(&manual).now_nanos());
    });
    group.finish();
}

criterion_group!(
    benches,
    allow_1_thread,
    deny_1_thread,
    allow_2_threads,
    deny_2_threads,
    keyed_1000_keys,
    allow_1_thread_same_clock,
    deny_1_thread_same_clock,
    keyed_1000_keys_same_clock,
    deny_1_thread_manual_clock,
    clock_now
);
criterion_main!(benches);
