//! Concurrent Bloom filter: `acqrel_core::AtomicBloom` beside fastbloom's
//! `AtomicBloomFilter`.
//!
//! Both filters are sized for 1,000,000 expected items at a 1% false-positive
//! rate, which gives both the same shape (9,585,088 bits, about 1.2 MB, and
//! 7 hashes; checked at setup). Both hash each item once with SipHash-1-3
//! (ours with std's fixed zero keys, fastbloom's seeded with a fixed key
//! here so runs are repeatable), derive the 7 bit positions by double
//! hashing, and set bits with one atomic `fetch_or` each. The items are
//! `u64` keys, the same sequence for both.
//!
//! Groups (one per scenario), single thread:
//!
//! - `bloom/insert`: insert keys `0, 1, 2, …` (wrapping at 2^20) into a
//!   filter that starts empty; after the first million the keys repeat and
//!   their bits are already set, which costs the same `fetch_or`s.
//! - `bloom/contains`: query keys cycling over `0..2_000_000` in a filter
//!   holding `0..1_000_000`: half are present (all 7 bits read), half absent
//!   (the query stops at the first clear bit).
//!
//! Function ids starting with `acqrel` are ours; the others are anchors. The
//! xtask divides ours by an anchor from the same run and checks the ratios
//! listed in `benches/targets.txt`.

use std::hint::black_box;

use acqrel_core::AtomicBloom;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use fastbloom::AtomicBloomFilter;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Items both filters are sized for.
const EXPECTED_ITEMS: usize = 1_000_000;
/// Target false-positive rate of both filters.
const FP_RATE: f64 = 0.01;
/// The shape both sizings produce (asserted at setup, so the two always do
/// the same work).
const NUM_BITS: usize = 9_585_088;
const NUM_HASHES: u32 = 7;
/// Keys queried in `bloom/contains` cycle over `0..QUERY_KEYS`; the filter
/// holds the first half.
const QUERY_KEYS: u64 = 2 * EXPECTED_ITEMS as u64;
/// Keys inserted in `bloom/insert` wrap at this power of two.
const INSERT_KEY_MASK: u64 = (1 << 20) - 1;

// ===== The filters =====

/// One way to build, fill and query a concurrent Bloom filter.
trait Filter {
    fn new() -> Self;
    fn insert(&self, key: u64) -> bool;
    fn contains(&self, key: u64) -> bool;
}

impl Filter for AtomicBloom {
    fn new() -> Self {
        let filter = AtomicBloom::with_capacity(EXPECTED_ITEMS, FP_RATE).unwrap();
        assert_eq!(
            (filter.num_bits(), filter.num_hashes()),
            (NUM_BITS, NUM_HASHES)
        );
        filter
    }

    #[inline]
    fn insert(&self, key: u64) -> bool {
        AtomicBloom::insert(self, &key)
    }

    #[inline]
    fn contains(&self, key: u64) -> bool {
        AtomicBloom::contains(self, &key)
    }
}

impl Filter for AtomicBloomFilter {
    fn new() -> Self {
        let filter = AtomicBloomFilter::with_false_pos(FP_RATE)
            .seed(&42)
            .expected_items(EXPECTED_ITEMS);
        assert_eq!(
            (filter.num_bits(), filter.num_hashes()),
            (NUM_BITS, NUM_HASHES)
        );
        filter
    }

    #[inline]
    fn insert(&self, key: u64) -> bool {
        AtomicBloomFilter::insert(self, &key)
    }

    #[inline]
    fn contains(&self, key: u64) -> bool {
        AtomicBloomFilter::contains(self, &key)
    }
}

// ===== Benchmarks, one per function id =====

fn bench_insert<F: Filter>(group: &mut Group<'_>, id: &str) {
    let filter = F::new();
    let mut key = 0_u64;
    group.bench_function(id, |b| {
        b.iter(|| {
            key = (key + 1) & INSERT_KEY_MASK;
            black_box(filter.insert(black_box(key)))
        });
    });
}

fn bench_contains<F: Filter>(group: &mut Group<'_>, id: &str) {
    let filter = F::new();
    for key in 0..EXPECTED_ITEMS as u64 {
        filter.insert(key);
    }
    let mut key = 0_u64;
    group.bench_function(id, |b| {
        b.iter(|| {
            key += 1;
            if key == QUERY_KEYS {
                key = 0;
            }
            black_box(filter.contains(black_box(key)))
        });
    });
}

// ===== Groups =====

fn insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("bloom/insert");
    bench_insert::<AtomicBloom>(&mut group, "acqrel::AtomicBloom::insert");
    bench_insert::<AtomicBloomFilter>(&mut group, "fastbloom::AtomicBloomFilter::insert");
    group.finish();
}

fn contains(c: &mut Criterion) {
    let mut group = c.benchmark_group("bloom/contains");
    bench_contains::<AtomicBloom>(&mut group, "acqrel::AtomicBloom::contains");
    bench_contains::<AtomicBloomFilter>(&mut group, "fastbloom::AtomicBloomFilter::contains");
    group.finish();
}

criterion_group!(benches, insert, contains);
criterion_main!(benches);
