//! The raw core: the Lua script that runs GCRA inside Redis, the
//! arguments it takes and the reply it gives. No I/O here; the limiters
//! send [`Call`]s and read [`Reply`]s.
//!
//! # The arithmetic
//!
//! Lua in Redis (5.1) has one number type, the IEEE double, exact on
//! integers up to 2⁵³. Nanoseconds since the Unix epoch are already past
//! 2⁶⁰, and a shifted epoch in nanoseconds (as a microsecond epoch is
//! shifted elsewhere) would wrap within 104 days, so every time and
//! duration in the script is a pair of exact integers:
//!
//! ```text
//! (s, ns)   the value s × 10⁹ + ns nanoseconds, 0 <= ns < 10⁹, 0 <= s < 2⁵³
//! ```
//!
//! The script only adds, subtracts and compares such pairs (each step
//! exact, the carry moved by hand); the one product GCRA needs, the cost
//! `n × T` of `n` cells, and the tolerance `tau = burst × T` are computed
//! here in `u128` and sent as pairs. The clock is Redis's `TIME`, seconds
//! and microseconds, read inside the script, so no client clock is trusted
//! and the read, decision and write are one atomic step on the server.
//!
//! Exact for every tolerance up to [`TAU_MAX_NS`] = 2⁵¹ seconds (71 million
//! years): TATs stay below `now + 2 × tau`, under 2⁵² seconds past any
//! Redis clock before the year 10⁸, within the 2⁵³ the seconds half holds.
//! A quota past that is refused when it is given ([`QuotaOutOfRange`]).
//!
//! # The key
//!
//! One string per bucket, `"<s>:<ns>"`: the theoretical arrival time (the
//! Redis clock reading at which the bucket is full again). It expires at
//! that time, rounded up to Redis's milliseconds (`PXAT`), so an idle key
//! costs nothing and a missing key is a full bucket. The expiry is absolute
//! on purpose: a relative `PX` is counted by Redis 7.2 and later from the
//! time the command *started*, which can be earlier than the `TIME` the
//! script read, so the key could lapse a little before its bucket is full
//! and admit a few cells early. With `PXAT`, whenever Redis finds the key
//! expired, its clock is past the TAT, so the bucket is full anyway. An
//! expiry more than 2⁴⁰ seconds ahead is not set (its milliseconds would
//! no longer be exact in a double); such a key stays until a refund fills
//! its bucket, or it is deleted.
//!
//! [`QuotaOutOfRange`]: crate::QuotaOutOfRange

use std::time::Duration;

use acqrel_ratelimit::Quota;

/// The largest burst tolerance (`burst × interval`) the script holds
/// exactly, in nanoseconds: 2⁵¹ seconds.
pub(crate) const TAU_MAX_NS: u128 = (1 << 51) * NANOS;

/// Nanoseconds per second: the base of the pairs.
const NANOS: u128 = 1_000_000_000;

/// The script. `KEYS[1]` is the bucket; `ARGV` is the operation (`c`heck
/// or `r`efund), then the cost (`n × T`) and the tolerance as pairs.
///
/// The reply is `{admitted, now_s, now_ns, at_s, at_ns}`: for an admitted
/// check `at` is the new TAT, for a denied one the earliest time the same
/// request would be admitted, for a refund the new TAT.
pub(crate) const SOURCE: &str = r#"-- acqrel-ratelimit-redis: GCRA over one key, on Redis's clock.
local E = 1000000000
local function add(as, ans, bs, bns)
  local s, ns = as + bs, ans + bns
  if ns >= E then return s + 1, ns - E end
  return s, ns
end
local function sub(as, ans, bs, bns)
  local s, ns = as - bs, ans - bns
  if ns < 0 then return s - 1, ns + E end
  return s, ns
end
local function lt(as, ans, bs, bns)
  return as < bs or (as == bs and ans < bns)
end
local function store(key, ts, tns, now_s)
  local value = string.format('%.0f:%.0f', ts, tns)
  if ts - now_s < 1099511627776 then
    redis.call('SET', key, value, 'PXAT', string.format('%.0f', ts * 1000 + math.ceil(tns / 1000000)))
  else
    redis.call('SET', key, value)
  end
end

local key, op = KEYS[1], ARGV[1]
local cs, cns = tonumber(ARGV[2]), tonumber(ARGV[3])
local taus, tauns = tonumber(ARGV[4]), tonumber(ARGV[5])
local time = redis.call('TIME')
local now_s, now_ns = tonumber(time[1]), tonumber(time[2]) * 1000

local tat_s, tat_ns = now_s, now_ns
local behind = false
local stored = redis.call('GET', key)
if stored then
  local s, ns = string.match(stored, '^(%d+):(%d+)$')
  if not s then return redis.error_reply('ACQREL the key holds no GCRA state') end
  s, ns = tonumber(s), tonumber(ns)
  if lt(now_s, now_ns, s, ns) then tat_s, tat_ns, behind = s, ns, true end
end

if op == 'c' then
  local ns_, nns = add(tat_s, tat_ns, cs, cns)
  local ls, lns = add(now_s, now_ns, taus, tauns)
  if lt(ls, lns, ns_, nns) then
    local es, ens = sub(ns_, nns, taus, tauns)
    return {0, now_s, now_ns, es, ens}
  end
  store(key, ns_, nns, now_s)
  return {1, now_s, now_ns, ns_, nns}
elseif op == 'r' then
  if not behind then return {1, now_s, now_ns, now_s, now_ns} end
  local ds, dns = sub(tat_s, tat_ns, now_s, now_ns)
  if lt(cs, cns, ds, dns) then
    local rs, rns = sub(tat_s, tat_ns, cs, cns)
    store(key, rs, rns, now_s)
    return {1, now_s, now_ns, rs, rns}
  end
  redis.call('DEL', key)
  return {1, now_s, now_ns, now_s, now_ns}
end
return redis.error_reply('ACQREL unknown operation')
"#;

/// A nanosecond count as the script's `(s, ns)` pair.
fn pair(nanos: u128) -> (u64, u32) {
    // Callers keep `nanos` within TAU_MAX_NS, so the seconds fit in u64
    // (in fact in 2^51); the remainder is below 10^9.
    let s = u64::try_from(nanos / NANOS).unwrap_or(u64::MAX);
    let ns = u32::try_from(nanos % NANOS).unwrap_or(0);
    (s, ns)
}

/// The GCRA parameters of a quota, as the script takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// Emission interval in ns.
    pub(crate) t: u128,
    /// Burst tolerance in ns (`burst × t`), at most [`TAU_MAX_NS`].
    pub(crate) tau: u128,
    /// Cells in a full bucket.
    pub(crate) burst: u32,
}

impl Params {
    /// The parameters of `quota`, or `None` when its tolerance is past
    /// [`TAU_MAX_NS`].
    pub(crate) fn new(quota: &Quota) -> Option<Params> {
        let t = quota.replenish_interval().as_nanos();
        let burst = quota.burst_size().get();
        let tau = t * u128::from(burst);
        (tau <= TAU_MAX_NS).then_some(Params { t, tau, burst })
    }

    /// The arguments of a check of `n` cells (`n <= burst`, so the cost is
    /// within the tolerance).
    pub(crate) fn check(&self, n: u32) -> Call {
        self.call(b'c', n)
    }

    /// The arguments of a refund of `n` cells (at most a full bucket's
    /// worth: a larger refund refills the bucket just the same).
    pub(crate) fn refund(&self, n: u32) -> Call {
        self.call(b'r', n.min(self.burst))
    }

    fn call(&self, op: u8, n: u32) -> Call {
        let cost = pair(self.t * u128::from(n));
        let tau = pair(self.tau);
        Call {
            op,
            args: [cost.0, u64::from(cost.1), tau.0, u64::from(tau.1)],
        }
    }
}

/// One script call's `ARGV`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    /// `c` or `r`.
    pub(crate) op: u8,
    /// Cost seconds and nanoseconds, tolerance seconds and nanoseconds.
    pub(crate) args: [u64; 4],
}

/// The script's reply, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Whether the check admitted (always true for a refund).
    pub(crate) admitted: bool,
    /// Redis's clock when it decided, since the Unix epoch.
    pub(crate) now: Duration,
    /// The new TAT, or for a denial the earliest time it would admit.
    pub(crate) at: Duration,
}

impl Reply {
    /// Reads the script's five integers, or says what was wrong with them.
    pub(crate) fn parse(values: &[i64]) -> Result<Reply, String> {
        let &[admitted, now_s, now_ns, at_s, at_ns] = values else {
            return Err(format!("expected 5 integers, got {}", values.len()));
        };
        let time = |s: i64, ns: i64| -> Result<Duration, String> {
            let s = u64::try_from(s).map_err(|_| format!("negative seconds {s}"))?;
            match u32::try_from(ns) {
                Ok(ns) if ns < 1_000_000_000 => Ok(Duration::new(s, ns)),
                _ => Err(format!("nanoseconds {ns} out of range")),
            }
        };
        let admitted = match admitted {
            0 => false,
            1 => true,
            other => return Err(format!("admitted flag {other}")),
        };
        Ok(Reply {
            admitted,
            now: time(now_s, now_ns)?,
            at: time(at_s, at_ns)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn pairs_split_at_the_second() {
        assert_eq!(pair(0), (0, 0));
        assert_eq!(pair(999_999_999), (0, 999_999_999));
        assert_eq!(pair(1_000_000_000), (1, 0));
        assert_eq!(pair(TAU_MAX_NS), (1 << 51, 0));
    }

    #[test]
    fn quotas_within_the_tolerance_bound_are_taken_and_past_it_refused() {
        let per_second = Quota::per_second(NonZeroU32::new(3).unwrap());
        let p = Params::new(&per_second).unwrap();
        assert_eq!((p.t, p.tau, p.burst), (333_333_333, 999_999_999, 3));
        assert_eq!(p.check(2).args, [0, 666_666_666, 0, 999_999_999]);
        assert_eq!(p.refund(7).args, [0, 999_999_999, 0, 999_999_999]);
        let longest = Quota::with_period(Duration::from_nanos((1 << 60) - 1)).unwrap();
        assert!(Params::new(&longest).is_some());
        assert!(Params::new(&longest.allow_burst(NonZeroU32::MAX)).is_none());
        // The widest burst at the finest interval: 4.3 s of tolerance.
        let finest = Quota::with_period(Duration::from_nanos(1)).unwrap();
        assert!(Params::new(&finest.allow_burst(NonZeroU32::MAX)).is_some());
    }

    #[test]
    fn replies_are_checked() {
        let reply = Reply::parse(&[0, 5, 7, 6, 999_999_999]).unwrap();
        assert!(!reply.admitted);
        assert_eq!(reply.now, Duration::new(5, 7));
        assert_eq!(reply.at, Duration::new(6, 999_999_999));
        assert!(Reply::parse(&[1, 2, 3]).is_err());
        assert!(Reply::parse(&[2, 0, 0, 0, 0]).is_err());
        assert!(Reply::parse(&[1, -1, 0, 0, 0]).is_err());
        assert!(Reply::parse(&[1, 0, 1_000_000_000, 0, 0]).is_err());
    }
}
