//! The raw core: the GCRA state word and the pure decisions on it. No
//! atomics here; the limiters apply these functions in their CAS loops.
//!
//! # The state word
//!
//! ```text
//!  63      60 59                                                 0
//! +----------+----------------------------------------------------+
//! |  epoch   |  TAT: theoretical arrival time, ns on the clock    |
//! +----------+----------------------------------------------------+
//! ```
//!
//! - **TAT** (60 bits) is the clock reading at which the bucket is full
//!   again. The bucket is full whenever `TAT <= now`; it holds
//!   `(tau - (TAT - now)) / T` cells otherwise, where `T` is the interval per
//!   cell and `tau = T × burst`. Admitting `n` cells moves TAT to
//!   `max(TAT, now) + n × T`, allowed while that stays within `tau` of now.
//!   60 bits of nanoseconds are 36.5 years counted from the limiter's
//!   creation (the limiter subtracts the clock reading it was made at, so a
//!   clock whose epoch is far in the past, such as the UNIX epoch, changes
//!   nothing), so the value never wraps in any realistic uptime: readings
//!   past it saturate, and a limiter that reaches it denies everything with
//!   [`NEVER`] (it fails closed rather than wrapping to a full bucket).
//! - **epoch** (4 bits) names the quota the TAT was computed with (the low
//!   bits of the count of `set_quota` calls), so a check that read the
//!   parameters of one quota can never commit against a state written with
//!   another: its compare-and-swap fails and it starts over.
//!
//! The word is the same integer on every architecture (it is never viewed
//! as bytes), so endianness and 32-bit targets (where `AtomicU64` is still
//! lock-free on the supported ones) change nothing.

/// Bits of the state word holding the TAT.
pub(crate) const TIME_BITS: u32 = 60;

/// The largest TAT or clock reading the state holds: 2⁶⁰ − 1 ns.
pub(crate) const TIME_MAX: u64 = (1 << TIME_BITS) - 1;

/// The mask of the epoch tag once shifted down.
pub(crate) const EPOCH_MASK: u64 = 0xF;

/// The earliest time [`admit`] names for a request that no wait can make
/// admissible within the state's time: the largest reading there is, so a
/// waiter sleeps (for ever, in practice) instead of retrying at once.
pub(crate) const NEVER: u64 = u64::MAX;

/// The GCRA parameters of a quota, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// Emission interval: nanoseconds per cell, at least 1.
    pub(crate) t: u64,
    /// Burst tolerance: `t × burst`, capped at [`TIME_MAX`].
    pub(crate) tau: u64,
    /// The burst, in cells.
    pub(crate) burst: u32,
}

impl Params {
    pub(crate) fn new(t: u64, burst: u32) -> Self {
        let t = t.clamp(1, TIME_MAX);
        Params {
            t,
            tau: t.saturating_mul(u64::from(burst)).min(TIME_MAX),
            burst,
        }
    }
}

/// Packs an epoch tag and a TAT into a state word.
#[inline]
pub(crate) fn pack(epoch: u64, tat: u64) -> u64 {
    ((epoch & EPOCH_MASK) << TIME_BITS) | tat.min(TIME_MAX)
}

/// Splits a state word into its epoch tag and its TAT.
#[inline]
pub(crate) fn unpack(state: u64) -> (u64, u64) {
    (state >> TIME_BITS, state & TIME_MAX)
}

/// A clock reading in nanoseconds, saturated to what the state holds.
#[inline]
pub(crate) fn clamp_now(now_ns: u64) -> u64 {
    now_ns.min(TIME_MAX)
}

/// Decides whether `n` cells (`1 <= n <= burst`) may be admitted at `now`
/// given `tat`: `Ok(new_tat)` to commit, or `Err(earliest)`, the clock
/// reading at which they would be.
#[inline]
pub(crate) fn admit(p: &Params, tat: u64, now: u64, n: u32) -> Result<u64, u64> {
    let new_tat = tat
        .max(now)
        .saturating_add(p.t.saturating_mul(u64::from(n)));
    if new_tat > TIME_MAX {
        // Past the end of the state's time: fail closed (see the module
        // docs), never wrap. Time only moves on, so no wait helps.
        return Err(NEVER);
    }
    if new_tat - now <= p.tau {
        Ok(new_tat)
    } else {
        Err(new_tat - p.tau)
    }
}

/// The TAT after giving `n` cells back at `now`: earlier by `n × t`, but
/// never earlier than `now` (a full bucket holds `burst` cells, no more).
#[inline]
pub(crate) fn refund(p: &Params, tat: u64, now: u64, n: u32) -> u64 {
    tat.saturating_sub(p.t.saturating_mul(u64::from(n)))
        .max(now)
}

/// The TAT under `new` that keeps the cells available at `now` under `old`
/// (capped at the new burst): a quota change neither grants a fresh burst
/// nor forgets what was used. Fractions of a cell carry over.
///
/// A TAT more than `old.tau` ahead of `now` means the clock went backwards
/// since it was computed: the bucket was empty at clock reading
/// `tat - old.tau`, which `now` has not reached again. The new TAT keeps
/// that reading as the one where the bucket is empty, so a quota change
/// grants nothing the clock has not given back yet.
pub(crate) fn rescale(old: &Params, new: &Params, tat: u64, now: u64) -> u64 {
    // Debt: how far the bucket is from full, in nanoseconds of the old rate.
    let debt = u128::from(tat.saturating_sub(now));
    let (old_t, new_t) = (u128::from(old.t), u128::from(new.t));
    let (old_tau, new_tau) = (u128::from(old.tau), u128::from(new.tau));
    let new_debt = match old_tau.checked_sub(debt) {
        // The cells available, in old-rate ns, become new-rate ns, capped
        // at the new burst: the new debt is the rest of the new burst.
        Some(available_old) => new_tau - (available_old * new_t / old_t).min(new_tau),
        // Beyond empty: the excess is clock time, whatever the rate.
        None => new_tau + (debt - old_tau),
    };
    // Saturates to TIME_MAX (an excess that large can only come from a
    // clock that went back decades).
    u64::try_from(u128::from(now) + new_debt)
        .unwrap_or(TIME_MAX)
        .min(TIME_MAX)
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn packing_round_trips_and_saturates() {
        assert_eq!(unpack(pack(3, 42)), (3, 42));
        assert_eq!(unpack(pack(0xF, TIME_MAX)), (0xF, TIME_MAX));
        assert_eq!(unpack(pack(0x13, u64::MAX)), (0x3, TIME_MAX));
    }

    #[test]
    fn a_full_bucket_admits_the_burst_then_refills_one_cell_per_interval() {
        let p = Params::new(10 * MS, 3);
        let mut tat = 0;
        for _ in 0..3 {
            tat = admit(&p, tat, 0, 1).unwrap();
        }
        assert_eq!(tat, 30 * MS);
        assert_eq!(admit(&p, tat, 0, 1), Err(10 * MS));
        assert_eq!(admit(&p, tat, 10 * MS, 1), Ok(40 * MS));
    }

    #[test]
    fn refunds_never_exceed_the_burst() {
        let p = Params::new(10 * MS, 3);
        assert_eq!(refund(&p, 30 * MS, 0, 1), 20 * MS);
        assert_eq!(refund(&p, 30 * MS, 0, 10), 0);
        assert_eq!(refund(&p, 30 * MS, 25 * MS, 1), 25 * MS);
    }

    #[test]
    fn rescaling_keeps_available_cells() {
        let old = Params::new(10 * MS, 10);
        // Empty bucket: raising the burst grants nothing at once.
        let bigger = Params::new(10 * MS, 100);
        assert_eq!(rescale(&old, &bigger, 100 * MS, 0), 1_000 * MS);
        // Full bucket: lowering the burst caps what is available.
        let smaller = Params::new(10 * MS, 2);
        assert_eq!(rescale(&old, &smaller, 0, 0), 0);
        // Half full, twice the rate: still five cells, each twice as short.
        let faster = Params::new(5 * MS, 10);
        assert_eq!(rescale(&old, &faster, 50 * MS, 0), 25 * MS);
    }

    #[test]
    fn rescaling_keeps_the_debt_of_a_clock_that_went_back() {
        let old = Params::new(10 * MS, 10);
        // Empty at clock reading 1 s, then the clock read 0.5 s: under any
        // quota the bucket is empty again at 1 s, not before.
        let faster = Params::new(5 * MS, 10);
        assert_eq!(rescale(&old, &faster, 1_100 * MS, 500 * MS), 1_050 * MS);
        // Same quota: nothing changes.
        assert_eq!(rescale(&old, &old, 1_100 * MS, 500 * MS), 1_100 * MS);
    }

    #[test]
    fn extreme_parameters_saturate() {
        let p = Params::new(TIME_MAX, u32::MAX);
        assert_eq!(p.tau, TIME_MAX);
        assert_eq!(admit(&p, 0, TIME_MAX, u32::MAX), Err(NEVER));
        assert_eq!(admit(&p, 0, 0, u32::MAX), Err(NEVER));
        assert_eq!(Params::new(0, 1).t, 1);
    }
}
