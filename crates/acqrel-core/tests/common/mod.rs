//! Helpers shared by the stress tests (each `tests/stress*.rs` includes this
//! module with `mod common;`).
#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

/// Hang guard for blocking waits: long enough never to fire on a healthy
/// run, even under emulation.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(60);

/// How much Miri divides iteration counts by: it interprets every
/// instruction and explores weak-memory outcomes, some thousand times slower
/// than native code.
const MIRI_DIVISOR: u64 = if cfg!(miri) { 1_000 } else { 1 };

/// `native` iterations, scaled down under emulation (`ACQREL_STRESS_DIVISOR`)
/// and under Miri, never below 10.
pub(crate) fn scaled(native: u64) -> u64 {
    let divisor = std::env::var("ACQREL_STRESS_DIVISOR")
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    (native / divisor / MIRI_DIVISOR).max(10)
}

/// SplitMix64: a small generator with a fixed seed, the same sequence on
/// every platform, so a fuzz input that fails reproduces. Test files add
/// their own input shapes with `impl common::Rng { .. }`.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant to a
    /// fuzz test).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
