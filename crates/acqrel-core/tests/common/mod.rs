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
