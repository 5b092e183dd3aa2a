//! Helpers shared by this crate's tests (each test file that needs them
//! includes this module with `mod common;`): exact quotas, draining a
//! bucket on a stopped clock, a barrier bounded by `HANG_GUARD`, and
//! acqrel-core's `scaled` and `HANG_GUARD`.
#![allow(dead_code)] // each test file uses its own subset

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use acqrel_core::Clock;
use acqrel_ratelimit::{Quota, RateLimiter};

// `scaled` and `HANG_GUARD`: one copy for the whole workspace.
#[path = "../../../acqrel-core/tests/common/mod.rs"]
mod core_common;

#[allow(unused_imports)] // each test file uses its own subset
pub(crate) use core_common::{HANG_GUARD, scaled};

/// One cell every `period`, at most `burst` at once.
pub(crate) fn quota(period: Duration, burst: u32) -> Quota {
    Quota::with_period(period)
        .expect("a period between 1 ns and 2^60 ns")
        .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"))
}

/// Shorthand for `Duration::from_millis`.
pub(crate) const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Admits every cell available now and returns how many there were, with
/// the wait the first denial names. Exact when the clock does not move
/// meanwhile (a `ManualClock` nobody advances).
pub(crate) fn drain<C: Clock>(limiter: &RateLimiter<C>) -> (u32, Duration) {
    let mut admitted = 0;
    loop {
        match limiter.check() {
            Ok(()) => admitted += 1,
            Err(denied) => return (admitted, denied.wait_time()),
        }
    }
}

/// A barrier that cannot hang a test: counts this thread into `arrived` and
/// spins (yielding) until `parties` threads have arrived, panicking after
/// [`HANG_GUARD`] (a peer that panicked never arrives). Use one counter per
/// rendezvous.
pub(crate) fn rendezvous(arrived: &AtomicUsize, parties: usize) {
    arrived.fetch_add(1, Ordering::SeqCst);
    let deadline = Instant::now() + HANG_GUARD;
    while arrived.load(Ordering::SeqCst) < parties {
        assert!(Instant::now() < deadline, "a peer never arrived");
        std::thread::yield_now();
    }
}
