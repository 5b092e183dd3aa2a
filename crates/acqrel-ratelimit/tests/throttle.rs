//! `Throttle` and `throttled!` on a `ManualClock`: one call per interval,
//! counted from the call that went through; exact suppressed counts; a
//! clock set back; extreme intervals; and the macro's events as a `tracing`
//! subscriber sees them.
#![cfg(not(acqrel_loom))]

use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acqrel_core::ManualClock;
use acqrel_ratelimit::{Throttle, throttled};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

mod common;

use common::ms;

/// One call through per interval, measured from the call that went through
/// (not a fixed grid); each one reports exactly the calls held back since
/// the previous one, and `pending` counts those not reported yet.
#[test]
fn one_call_per_interval_reporting_the_suppressed_count() {
    let clock = ManualClock::starting_at(ms(300));
    let throttle = Throttle::with_clock(Duration::from_secs(1), &clock);
    assert_eq!(throttle.allow(), Some(0));
    assert_eq!(throttle.pending(), 0);
    for held in 1..=4 {
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.pending(), held);
    }
    clock.advance(ms(999)); // 1,299 ms
    assert_eq!(throttle.allow(), None);
    clock.advance(ms(1)); // 1,300 ms: one interval after the call at 300
    assert_eq!(throttle.allow(), Some(5));
    assert_eq!(throttle.pending(), 0);
    assert_eq!(throttle.allow(), None);
    // A long silence: the next call goes through and reports only the one
    // call held back since the last report.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(throttle.allow(), Some(1));
    assert_eq!(throttle.allow(), None);
}

/// A zero interval lets every call through, each reporting nothing.
#[test]
fn a_zero_interval_lets_every_call_through() {
    let throttle = Throttle::with_clock(Duration::ZERO, ManualClock::new());
    for _ in 0..5 {
        assert_eq!(throttle.allow(), Some(0));
    }
    assert_eq!(throttle.pending(), 0);
}

/// A clock set back is "no time passed": calls are held back until the
/// clock reaches the end of the interval again, and still counted.
#[test]
fn a_clock_set_back_holds_calls_back() {
    let clock = ManualClock::starting_at(Duration::from_secs(10));
    let throttle = Throttle::with_clock(Duration::from_secs(1), &clock);
    assert_eq!(throttle.allow(), Some(0));
    clock.set(Duration::from_secs(5));
    assert_eq!(throttle.allow(), None);
    clock.set(Duration::ZERO);
    assert_eq!(throttle.allow(), None);
    clock.set(ms(10_999));
    assert_eq!(throttle.allow(), None);
    clock.set(Duration::from_secs(11));
    assert_eq!(throttle.allow(), Some(3));
}

/// The first call goes through whatever the clock's epoch; an interval
/// longer than the clock can count never lets a second call through.
/// Regression: at the clock's largest reading, where the end of the
/// interval saturates to that same reading, every call used to go
/// through.
#[test]
fn extreme_clocks_and_intervals() {
    let far = Duration::from_secs(1_750_000_000);
    let throttle = Throttle::with_clock(Duration::MAX, ManualClock::starting_at(far));
    assert_eq!(throttle.allow(), Some(0));
    assert_eq!(throttle.allow(), None);

    let clock = ManualClock::new();
    let throttle = Throttle::with_clock(Duration::from_secs(1), &clock);
    assert_eq!(throttle.allow(), Some(0));
    clock.set(Duration::from_nanos(u64::MAX));
    assert_eq!(throttle.allow(), Some(0));
    assert_eq!(throttle.allow(), None);
    assert_eq!(throttle.pending(), 1);
}

/// An event `throttled!` emitted: its level, its `suppressed` field and
/// its message.
#[derive(Clone, Debug, PartialEq)]
struct Logged {
    level: Level,
    suppressed: Option<u64>,
    message: String,
}

/// A `tracing` subscriber that keeps every event.
#[derive(Debug, Default)]
struct Capture(Mutex<Vec<Logged>>);

impl Capture {
    fn take(&self) -> Vec<Logged> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Visit for Logged {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "suppressed" {
            self.suppressed = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut logged = Logged {
            level: *event.metadata().level(),
            suppressed: None,
            message: String::new(),
        };
        event.record(&mut logged);
        self.0.lock().unwrap().push(logged);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// `throttled!` emits one event per interval at the level named, with the
/// suppressed count as a field, and evaluates its arguments only for the
/// calls that go through.
#[test]
fn throttled_logs_once_per_interval_with_the_count() {
    let clock = ManualClock::new();
    let throttle = Throttle::with_clock(Duration::from_secs(5), &clock);
    let capture = Arc::new(Capture::default());
    let evaluated = Cell::new(0);
    let attempt = || {
        evaluated.set(evaluated.get() + 1);
        evaluated.get()
    };
    let logged = |suppressed, message: &str| Logged {
        level: Level::WARN,
        suppressed: Some(suppressed),
        message: message.to_owned(),
    };
    tracing::subscriber::with_default(capture.clone(), || {
        for _ in 0..100 {
            throttled!(throttle, warn, attempt = attempt(), "upstream down");
        }
        assert_eq!(capture.take(), [logged(0, "upstream down")]);
        clock.advance(Duration::from_secs(5));
        for _ in 0..10 {
            throttled!(throttle, warn, "upstream still down: {}", "retrying");
        }
        assert_eq!(
            capture.take(),
            [logged(99, "upstream still down: retrying")]
        );
        clock.advance(Duration::from_secs(5));
        throttled!(throttle, error, "gave up");
        let events = capture.take();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].level, events[0].suppressed),
            (Level::ERROR, Some(9))
        );
    });
    assert_eq!(evaluated.get(), 1, "arguments evaluated only when logged");
}
