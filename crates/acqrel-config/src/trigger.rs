//! The reloader thread's wake-up protocol: file-system events, commits made
//! by other threads, and the stop request, coalesced into one small state
//! behind a lock, with the debounce computed on the injected clock.
//!
//! # Invariants
//!
//! Every producer ([`Trigger::fs_event`], [`Trigger::committed`],
//! [`Trigger::stop`]) changes [`Pending`] under the lock and then notifies the
//! condition variable; the consumer ([`Trigger::next`]) checks [`Pending`]
//! under the same lock before it waits. A producer therefore either runs
//! before the check (and the check sees its change) or after the consumer
//! started waiting (and its notification wakes it): no wake-up is lost. The
//! loom model `tests/loom_trigger.rs` fails if the notification is dropped.
//!
//! The state is a few fields whatever the event rate: a burst of a thousand
//! events costs what one costs. Memory is bounded by construction.
//!
//! # Debounce
//!
//! A check is due `debounce` after the last event, or `max_delay` after the
//! first event since the previous check, whichever comes first: a file
//! rewritten without pause still gets reloaded. While a check is scheduled,
//! the reloader sleeps in real time for the clock time left, but never more
//! than [`MAX_SLEEP`], and then re-reads the clock: a clock that runs slower
//! than real time (a manual clock in tests) only makes it re-check more
//! often, and one moved forward by a test is noticed within `MAX_SLEEP`.
//! With nothing scheduled it sleeps until notified.

use std::time::Duration;

use acqrel_core::Clock;

use crate::sync::{self, Condvar, Mutex};

/// The longest the reloader sleeps before re-reading the clock while a
/// check is scheduled (see the module's `# Debounce`).
pub const MAX_SLEEP: Duration = Duration::from_secs(1);

/// What the reloader thread should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Work {
    /// Leave the loop: the handle was stopped or dropped.
    Stop,
    /// Re-read the file: the debounce window or the poll interval elapsed.
    Check,
    /// Another thread published a config: run the change callbacks.
    Announce,
}

/// When checks are due.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Quiet time after the last event before a check.
    pub debounce: Duration,
    /// Longest wait after the first event of a burst.
    pub max_delay: Duration,
    /// Fallback polling period, if any.
    pub poll_interval: Option<Duration>,
}

/// What happened since the reloader last looked.
#[derive(Debug, Default)]
struct Pending {
    /// Clock time of the first and the last event not yet checked.
    events: Option<(Duration, Duration)>,
    /// Clock time of the next poll, when polling.
    next_poll: Option<Duration>,
    /// A config was published by a thread other than the reloader.
    committed: bool,
    /// The handle was stopped.
    stop: bool,
}

/// The reloader's mailbox. See the module docs.
#[derive(Debug)]
pub struct Trigger {
    timing: Timing,
    state: Mutex<Pending>,
    condvar: Condvar,
}

impl Trigger {
    /// A trigger whose first poll (if polling) is one interval after `now`.
    pub fn new(timing: Timing, now: Duration) -> Self {
        let pending = Pending {
            next_poll: timing.poll_interval.map(|every| now.saturating_add(every)),
            ..Pending::default()
        };
        Trigger {
            timing,
            state: Mutex::new(pending),
            condvar: Condvar::new(),
        }
    }

    /// Records a file-system event seen at clock time `now`.
    pub fn fs_event(&self, now: Duration) {
        self.update(|p| {
            let first = p.events.map_or(now, |(first, _)| first);
            p.events = Some((first, now));
        });
    }

    /// Records that another thread published a config.
    pub fn committed(&self) {
        self.update(|p| p.committed = true);
    }

    /// Asks the reloader to leave its loop.
    pub fn stop(&self) {
        self.update(|p| p.stop = true);
    }

    /// Changes the state under the lock, then wakes the reloader (the
    /// producer half of the module's `# Invariants`).
    fn update(&self, change: impl FnOnce(&mut Pending)) {
        change(&mut sync::lock(&self.state));
        self.condvar.notify_one();
    }

    /// Blocks until there is work, and returns it. Only the reloader thread
    /// calls this.
    pub fn next(&self, clock: &dyn Clock) -> Work {
        let mut pending = sync::lock(&self.state);
        loop {
            if pending.stop {
                return Work::Stop;
            }
            let now = clock.now();
            let due = self.due(&pending);
            if due.is_some_and(|due| now >= due) {
                pending.events = None;
                pending.committed = false;
                pending.next_poll = self
                    .timing
                    .poll_interval
                    .map(|every| now.saturating_add(every));
                return Work::Check;
            }
            if pending.committed {
                pending.committed = false;
                return Work::Announce;
            }
            // Checked under the lock: a producer that runs after this point
            // notifies a waiting thread.
            let timeout = due.map(|due| (due - now).min(MAX_SLEEP));
            pending = sync::wait(&self.condvar, pending, timeout);
        }
    }

    /// The clock time of the next check, if one is scheduled.
    fn due(&self, pending: &Pending) -> Option<Duration> {
        let debounced = pending.events.map(|(first, last)| {
            let quiet = last.saturating_add(self.timing.debounce);
            quiet.min(first.saturating_add(self.timing.max_delay))
        });
        match (debounced, pending.next_poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(all(test, not(acqrel_loom)))]
mod tests {
    use super::*;
    use acqrel_core::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    fn timing(poll_interval: Option<Duration>) -> Timing {
        Timing {
            debounce: 50 * MS,
            max_delay: 500 * MS,
            poll_interval,
        }
    }

    #[test]
    fn debounce_waits_for_quiet_then_checks_once() {
        let clock = ManualClock::new();
        let trigger = Trigger::new(timing(None), clock.now());
        trigger.fs_event(clock.now());
        clock.advance(40 * MS);
        trigger.fs_event(clock.now());
        // 50 ms after the first event but only 10 ms after the last one.
        clock.advance(10 * MS);
        assert_eq!(trigger.due(&sync::lock(&trigger.state)), Some(90 * MS));
        clock.advance(40 * MS);
        assert_eq!(trigger.next(&clock), Work::Check);
        assert_eq!(trigger.due(&sync::lock(&trigger.state)), None);
    }

    #[test]
    fn a_burst_without_pause_is_checked_after_max_delay() {
        let clock = ManualClock::new();
        let trigger = Trigger::new(timing(None), clock.now());
        for _ in 0..100 {
            trigger.fs_event(clock.now());
            clock.advance(10 * MS);
        }
        assert_eq!(trigger.due(&sync::lock(&trigger.state)), Some(500 * MS));
        assert_eq!(trigger.next(&clock), Work::Check);
    }

    #[test]
    fn polling_schedules_checks_from_the_last_one() {
        let clock = ManualClock::new();
        let trigger = Trigger::new(timing(Some(1000 * MS)), clock.now());
        assert_eq!(trigger.due(&sync::lock(&trigger.state)), Some(1000 * MS));
        clock.advance(1000 * MS);
        assert_eq!(trigger.next(&clock), Work::Check);
        assert_eq!(trigger.due(&sync::lock(&trigger.state)), Some(2000 * MS));
        // An event brings the next check forward.
        trigger.fs_event(clock.now());
        assert_eq!(trigger.due(&sync::lock(&trigger.state)), Some(1050 * MS));
    }

    #[test]
    fn stop_wins_over_pending_work_and_commits_announce() {
        let clock = ManualClock::new();
        let trigger = Trigger::new(timing(None), clock.now());
        trigger.committed();
        assert_eq!(trigger.next(&clock), Work::Announce);
        trigger.fs_event(clock.now());
        trigger.stop();
        clock.advance(Duration::from_secs(1));
        assert_eq!(trigger.next(&clock), Work::Stop);
    }

    #[test]
    fn a_clock_at_its_limit_saturates_instead_of_overflowing() {
        struct EndOfTime;
        impl Clock for EndOfTime {
            fn now(&self) -> Duration {
                Duration::MAX
            }
        }
        let trigger = Trigger::new(timing(Some(MS)), EndOfTime.now());
        trigger.fs_event(EndOfTime.now());
        assert_eq!(trigger.next(&EndOfTime), Work::Check);
    }
}
