//! The kernel's clocks, read directly: `clock_gettime` through the vDSO, a
//! few loads and no system call, without the checks and conversions of
//! `Instant` in between.

use std::time::Duration;

/// The clock `Instant` reads on Linux: time since boot, excluding suspend.
pub(crate) const MONOTONIC: libc::clockid_t = libc::CLOCK_MONOTONIC;

/// [`MONOTONIC`] as of the kernel's last tick.
pub(crate) const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;

/// A reading of `clock` in ns, or `None` if the kernel refuses the clock.
#[inline]
pub(crate) fn read(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = zero();
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the
    // call, which writes nothing else.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| nanos(&ts))
}

/// The resolution of `clock`, or `None` if the kernel refuses the clock.
pub(crate) fn resolution(clock: libc::clockid_t) -> Option<Duration> {
    // Miri interprets `clock_gettime` but not `clock_getres`; its clocks
    // count whole nanoseconds of its own virtual time.
    if cfg!(miri) {
        let _ = clock;
        return Some(Duration::from_nanos(1));
    }
    let mut ts = zero();
    // SAFETY: as in `read`.
    let rc = unsafe { libc::clock_getres(clock, &mut ts) };
    (rc == 0).then(|| Duration::from_nanos(nanos(&ts).max(1)))
}

fn zero() -> libc::timespec {
    libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }
}

/// A monotonic `timespec` in ns. Its fields are never negative (the clocks
/// count from boot) and `tv_nsec` is below 10⁹; a negative field would read
/// as zero, a sum past `u64::MAX` (584 years) saturates.
#[inline]
fn nanos(ts: &libc::timespec) -> u64 {
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let subsec = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(subsec)
}
