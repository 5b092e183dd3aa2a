//! [`Jitter`]: a random extra delay for waiters.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// A random delay of up to a maximum, added to each sleep of
/// [`RateLimiter::until_ready_with_jitter`](crate::RateLimiter::until_ready_with_jitter)
/// so that waiters released together do not retry together.
///
/// The randomness is a per-thread SplitMix64 sequence seeded from std's
/// `RandomState`: cheap, not cryptographic.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use acqrel_ratelimit::Jitter;
/// let jitter = Jitter::up_to(Duration::from_millis(5));
/// assert!(jitter.sample() <= Duration::from_millis(5));
/// assert_eq!(Jitter::NONE.sample(), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jitter {
    max: Duration,
}

impl Jitter {
    /// No jitter.
    pub const NONE: Jitter = Jitter {
        max: Duration::ZERO,
    };

    /// A delay drawn uniformly from zero to `max` (both included, at
    /// nanosecond resolution).
    ///
    /// # Examples
    ///
    /// See [`Jitter`].
    pub const fn up_to(max: Duration) -> Jitter {
        Jitter { max }
    }

    /// Draws one delay.
    ///
    /// # Examples
    ///
    /// See [`Jitter`].
    pub fn sample(&self) -> Duration {
        let max = u64::try_from(self.max.as_nanos()).unwrap_or(u64::MAX);
        if max == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(next_random() % max.saturating_add(1).max(1))
    }
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0_u64));
}

/// The next value of this thread's SplitMix64 sequence.
fn next_random() -> u64 {
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;

    #[test]
    fn samples_stay_within_the_bound_and_vary() {
        let jitter = Jitter::up_to(Duration::from_nanos(1000));
        let samples: Vec<_> = (0..1000).map(|_| jitter.sample()).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_nanos(1000)));
        let distinct: std::collections::BTreeSet<_> = samples.iter().collect();
        assert!(distinct.len() > 100, "{} distinct samples", distinct.len());
        assert!(Jitter::up_to(Duration::MAX).sample() <= Duration::MAX);
    }
}
