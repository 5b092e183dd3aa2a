//! The raw core: the GCRA state word and the pure decisions on it. No
//! atomics here; the limiters apply these functions in their CAS loops.
//!
//! # The state word
//!
//! ```text
//!  63      60 59                                                 0
//! +----------+----------------------------------------------------+
//! |  epoch   |  TAT: theoretical arrival time, in 2^shift ns units |
//! +----------+----------------------------------------------------+
//! ```
//!
//! - **TAT** (60 bits) is the clock reading, counted from the limiter's
//!   creation, at which the bucket is full again. The bucket is full
//!   whenever `TAT <= now`; it holds `(tau - (TAT - now)) / T` cells
//!   otherwise, where `T` is the interval per cell and `tau = T × burst`
//!   the burst tolerance. Admitting `n` cells moves TAT to
//!   `max(TAT, now) + n × T`, allowed while that stays within `tau` of now.
//!   All of that arithmetic is done in `u128` nanoseconds: `tau` reaches
//!   (2⁶⁰ − 1) × (2³² − 1) ns, far past 64 bits.
//! - **The unit** of the stored TAT is `2^shift` ns, fixed per quota
//!   ([`Params::shift`]): 1 ns (`shift` 0) for every quota whose `tau` is at
//!   most [`TAU_UNITS_MAX`] = 2⁵⁸ ns (9.1 years), otherwise the smallest
//!   power of two that brings `tau` within 2⁵⁸ units (at most 2³⁴ ns, for
//!   a 36-year interval with a burst of `u32::MAX`). A stored TAT is the
//!   exact one rounded *up* to the unit, and decisions read the clock in
//!   whole nanoseconds, so the limiter never admits a request that exact
//!   GCRA denies, and when the interval and the clock readings are
//!   multiples of the unit (always, for `shift` 0) it decides exactly as
//!   GCRA in unbounded arithmetic does, earliest times included.
//!   Otherwise each admission may cost up to one unit more than exact GCRA
//!   (2⁻²⁸ of an interval at worst).
//!
//!   Why not always 1 ns: with `tau` past 2⁶⁰ ns the bucket has more
//!   states than one word holds (`Quota::per_second(1)` with a burst of
//!   `u32::MAX` can hold any of 4.3 × 10⁹ cells, each with any of 10⁹
//!   nanoseconds of progress towards the next: 4.3 × 10¹⁸ states, past
//!   2⁶⁰ = 1.15 × 10¹⁸), so some rounding is unavoidable there.
//! - **The end of time.** TATs reach `now + 2 × tau` at most (a denied
//!   request for the whole burst on an empty bucket names `now + tau` as its
//!   earliest, and would move TAT to `now + 2 × tau` then), so with `tau`
//!   within 2⁵⁸ units every request GCRA admits is admitted while the
//!   clock is below 2⁵⁹ units (18.3 years at 1 ns) after the limiter's
//!   creation, and the whole burst is available from the start. When an
//!   admission would move TAT past 2⁶⁰ − 1 units, the limiter fails closed
//!   and names [`NEVER`] (it never wraps to a full bucket); a clock reading
//!   that far out is denied the same way.
//! - **epoch** (4 bits) names the quota the TAT was computed with (the low
//!   bits of the count of `set_quota` calls), so a check that read the
//!   parameters of one quota can never commit against a state written with
//!   another: its compare-and-swap fails and it starts over. The unit is
//!   part of the quota, so the tag covers it too.
//!
//! The word is the same integer on every architecture (it is never viewed
//! as bytes), so endianness and 32-bit targets (where `AtomicU64` is still
//! lock-free on the supported ones) change nothing.

/// Bits of the state word holding the TAT.
pub(crate) const TIME_BITS: u32 = 60;

/// The largest TAT the state holds: 2⁶⁰ − 1 units.
pub(crate) const TIME_MAX: u64 = (1 << TIME_BITS) - 1;

/// The largest burst tolerance held at 1 ns per unit, and the largest
/// number of units any quota's tolerance spans: 2⁵⁸ (see the module docs).
pub(crate) const TAU_UNITS_MAX: u128 = 1 << 58;

/// The mask of the epoch tag once shifted down.
pub(crate) const EPOCH_MASK: u64 = 0xF;

/// The earliest time [`admit`] names for a request that no wait can make
/// admissible within the state's time: the largest reading there is, so a
/// waiter sleeps (for ever, in practice) instead of retrying at once.
pub(crate) const NEVER: u64 = u64::MAX;

/// The GCRA parameters of a quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// Emission interval: nanoseconds per cell, 1 to [`TIME_MAX`].
    pub(crate) t: u64,
    /// Burst tolerance in nanoseconds: exactly `t × burst`.
    pub(crate) tau: u128,
    /// The burst, in cells.
    pub(crate) burst: u32,
    /// A stored TAT counts units of `2^shift` ns: the smallest shift that
    /// brings `tau` within [`TAU_UNITS_MAX`] units (0 to 34).
    pub(crate) shift: u32,
}

impl Params {
    #[inline]
    pub(crate) fn new(t: u64, burst: u32) -> Self {
        let t = t.clamp(1, TIME_MAX);
        // Every check reads the parameters: the common case in `u64`.
        let (tau, shift) = match t.checked_mul(u64::from(burst)) {
            Some(tau) if u128::from(tau) <= TAU_UNITS_MAX => (u128::from(tau), 0),
            _ => {
                let tau = u128::from(t) * u128::from(burst);
                // `tau <= TAU_UNITS_MAX << shift`, with `shift` as small as
                // can be.
                let excess =
                    u64::try_from(tau.saturating_sub(1) / TAU_UNITS_MAX).unwrap_or(u64::MAX);
                (tau, u64::BITS - excess.leading_zeros())
            }
        };
        Params {
            t,
            tau,
            burst,
            shift,
        }
    }

    /// A stored TAT in nanoseconds.
    #[inline]
    fn tat_ns(&self, tat: u64) -> u128 {
        u128::from(tat) << self.shift
    }

    /// A TAT in nanoseconds as stored: rounded up to the unit, or `None`
    /// past the state's time.
    #[inline]
    fn stored(&self, tat_ns: u128) -> Option<u64> {
        let unit = (1u128 << self.shift) - 1;
        u64::try_from((tat_ns + unit) >> self.shift)
            .ok()
            .filter(|&tat| tat <= TIME_MAX)
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

/// The latest stored TAT at which the bucket is full at `now` (ns): a TAT
/// at or below it is idle.
#[inline]
pub(crate) fn full_at(p: &Params, now: u64) -> u64 {
    (now >> p.shift).min(TIME_MAX)
}

/// Decides whether `n` cells (`1 <= n <= burst`) may be admitted at `now`
/// (ns since the limiter's creation) given the stored `tat`: `Ok(new_tat)`
/// to commit, or `Err(earliest)`, the time (ns) at which they would be.
#[inline]
pub(crate) fn admit(p: &Params, tat: u64, now: u64, n: u32) -> Result<u64, u64> {
    // 1 ns units (every quota with `tau` within 2⁵⁸ ns): the same decision
    // in `u64`, which the check path measured 2–3 ns faster than the `u128`
    // one. `t × n <= tau <= 2⁵⁸` for `n <= burst`; a sum past `u64` (a
    // clock reading near its end) takes the wide path.
    if p.shift == 0 {
        let sum =
            p.t.checked_mul(u64::from(n))
                .and_then(|cost| tat.max(now).checked_add(cost));
        if let Some(new_tat) = sum {
            return if new_tat > TIME_MAX {
                // Past the end of the state's time, as below.
                Err(NEVER)
            } else if u128::from(new_tat - now) <= p.tau {
                Ok(new_tat)
            } else {
                // `tau < new_tat - now`, so this is below `new_tat`; `tau`
                // is within 2⁵⁸ at 1 ns units, so the cast is exact.
                Err(new_tat - p.tau as u64)
            };
        }
    }
    admit_wide(p, tat, now, n)
}

/// [`admit`] for every quota, in `u128` nanoseconds: the path of the rare
/// quotas whose tolerance passes 2⁵⁸ ns.
#[cold]
fn admit_wide(p: &Params, tat: u64, now: u64, n: u32) -> Result<u64, u64> {
    let now = u128::from(now);
    let new_tat = p.tat_ns(tat).max(now) + u128::from(p.t) * u128::from(n);
    let Some(stored) = p.stored(new_tat) else {
        // Past the end of the state's time: fail closed (see the module
        // docs), never wrap. Time only moves on, so no wait helps.
        return Err(NEVER);
    };
    if new_tat - now <= p.tau {
        Ok(stored)
    } else {
        // Within `tau + n × t` of a TAT below 2⁶⁰ units: it fits in 64 bits
        // but for the largest quotas, which then wait for ever anyway.
        Err(u64::try_from(new_tat - p.tau).unwrap_or(NEVER))
    }
}

/// The stored TAT after giving `n` cells back at `now` (ns): earlier by
/// `n × t`, but never earlier than `now` (a full bucket holds `burst`
/// cells, no more).
#[inline]
pub(crate) fn refund(p: &Params, tat: u64, now: u64, n: u32) -> u64 {
    let back = u128::from(p.t) * u128::from(n);
    let new_tat = p.tat_ns(tat).saturating_sub(back).max(u128::from(now));
    p.stored(new_tat).unwrap_or(TIME_MAX)
}

/// The stored TAT under `new` that keeps the cells available at `now` (ns)
/// under `old` (capped at the new burst): a quota change neither grants a
/// fresh burst nor forgets what was used. Fractions of a cell carry over.
///
/// A TAT more than `old.tau` ahead of `now` means the clock went backwards
/// since it was computed: the bucket was empty at clock reading
/// `tat - old.tau`, which `now` has not reached again. The new TAT keeps
/// that reading as the one where the bucket is empty, so a quota change
/// grants nothing the clock has not given back yet.
pub(crate) fn rescale(old: &Params, new: &Params, tat: u64, now: u64) -> u64 {
    let now = u128::from(now);
    // Debt: how far the bucket is from full, in nanoseconds of the old rate.
    let debt = old.tat_ns(tat).saturating_sub(now);
    let (old_t, new_t) = (u128::from(old.t), u128::from(new.t));
    let new_debt = match old.tau.checked_sub(debt) {
        // The cells available, in old-rate ns, become new-rate ns, capped
        // at the new burst: the new debt is the rest of the new burst.
        // (Both factors are below 2⁹², their product below 2¹²⁸ only after
        // the cap: cap first.)
        Some(available_old) => {
            let available_new = mul_div(available_old, new_t, old_t).min(new.tau);
            new.tau - available_new
        }
        // Beyond empty: the excess is clock time, whatever the rate.
        None => new.tau + (debt - old.tau),
    };
    // Saturates to the end of the state's time (an excess that large can
    // only come from a clock that went back decades).
    new.stored(now + new_debt).unwrap_or(TIME_MAX)
}

/// `a × b / c` for `a < 2⁹²`, `b, c < 2⁶⁰`, without overflowing `u128`.
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    // a = q × c + r with r < c < 2⁶⁰, so r × b < 2¹²⁰; q × b may overflow
    // only when the result is far past any burst tolerance: saturate.
    let (q, r) = (a / c, a % c);
    q.saturating_mul(b).saturating_add(r * b / c)
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
    fn the_unit_is_one_ns_up_to_the_largest_tolerance_and_doubles_past_it() {
        assert_eq!(Params::new(1 << 26, 1 << 31).shift, 0); // tau = 2^57
        assert_eq!(Params::new(1 << 27, 1 << 31).shift, 0); // tau = 2^58
        assert_eq!(Params::new((1 << 27) + 1, 1 << 31).shift, 1);
        assert_eq!(Params::new(1 << 30, 1 << 31).shift, 3); // tau = 2^61
        assert_eq!(Params::new(TIME_MAX, u32::MAX).shift, 34);
        let p = Params::new(TIME_MAX, u32::MAX);
        assert!(p.tau <= TAU_UNITS_MAX << p.shift);
        assert_eq!(Params::new(0, 1).t, 1);
    }

    #[test]
    fn the_narrow_admission_decides_as_the_wide_one() {
        let edges = |max: u64| [0, 1, 2, max / 3, max / 2, max - 1, max];
        for (t, burst) in [
            (1, 1),
            (1, u32::MAX),
            (7, 3),
            (1 << 26, 1 << 31),
            (1 << 27, 1 << 31),
        ] {
            let p = Params::new(t, burst);
            assert_eq!(p.shift, 0);
            for tat in edges(TIME_MAX) {
                for now in edges(TIME_MAX).into_iter().chain(edges(u64::MAX)) {
                    for n in [1, 2, burst / 2, burst].into_iter().filter(|&n| n >= 1) {
                        assert_eq!(
                            admit(&p, tat, now, n),
                            admit_wide(&p, tat, now, n),
                            "t {t}, burst {burst}, tat {tat}, now {now}, n {n}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn extreme_parameters_stay_exact_and_fail_closed_at_the_end() {
        let p = Params::new(TIME_MAX, u32::MAX);
        // The whole burst of a full bucket, and the wait for it again.
        let tat = admit(&p, 0, 0, u32::MAX).unwrap();
        // TIME_MAX is odd: the TAT rounds up, by less than the unit.
        assert!((p.tau..p.tau + (1 << 34)).contains(&p.tat_ns(tat)));
        // One cell is back one interval (and the rounding) later...
        let one = p.tat_ns(tat) + u128::from(p.t) - p.tau;
        assert_eq!(admit(&p, tat, 0, 1), Err(u64::try_from(one).unwrap()));
        // ...all of them after 2^92 ns, past what a u64 of ns counts.
        assert_eq!(admit(&p, tat, 0, u32::MAX), Err(NEVER));
        // A 2^34 ns unit holds the TAT of the last clock reading there is.
        assert!(admit(&p, 0, u64::MAX, 1).is_ok());
        let small = Params::new(1, 1);
        assert_eq!(admit(&small, 0, TIME_MAX, 1), Err(NEVER));
        assert_eq!(refund(&small, 0, u64::MAX, 1), TIME_MAX);
    }
}
