//! Loom models of callback subscribers against racing publishers: the
//! "never called after `unsubscribe` returns" guarantee (and that the last
//! call's effects are visible then), an unsubscribe from inside the
//! callback itself (also while another thread unsubscribes a callback of
//! the same publish), and list updates racing each other.
//!
//! Run with `RUSTFLAGS="--cfg acqrel_loom" LOOM_MAX_PREEMPTIONS=2
//! cargo test --release -p acqrel-bus --test loom_callback`.

#![cfg(acqrel_loom)]

use acqrel_bus::{Bus, Subscription};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A callback that, on its first call, unsubscribes the subscription left
/// in `slot` (its own, for a one-shot callback) from inside the publish.
fn unsubscribing(
    bus: &Bus<u32>,
    slot: &Arc<Mutex<Option<Subscription<u32>>>>,
) -> Subscription<u32> {
    let slot = Arc::clone(slot);
    bus.subscribe_fn(move |_| {
        let target = slot.lock().unwrap().take();
        if let Some(target) = target {
            target.unsubscribe();
        }
    })
}

/// A subscriber counting its calls.
fn counting(bus: &Bus<u32>) -> (Subscription<u32>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let sub = bus.subscribe_fn(move |_| {
        // Relaxed: the model checks that `unsubscribe` publishes it.
        counter.fetch_add(1, Ordering::Relaxed);
    });
    (sub, calls)
}

/// A publisher racing `unsubscribe`: whatever the interleaving, the count
/// read right after `unsubscribe` returns is final (no call after it), and
/// it includes every call made (their effects are visible).
#[test]
fn no_call_after_unsubscribe_returns() {
    loom::model(|| {
        let bus = Bus::new();
        let (sub, calls) = counting(&bus);
        let publisher = {
            let bus = bus.clone();
            thread::spawn(move || bus.publish(1).delivered)
        };
        sub.unsubscribe();
        // Relaxed: what `unsubscribe` must have made visible (see above).
        let after = calls.load(Ordering::Relaxed);
        let delivered = publisher.join().unwrap();
        assert_eq!(
            calls.load(Ordering::Relaxed),
            after,
            "called after unsubscribe"
        );
        assert_eq!(after, delivered, "a call's effect was not visible");
    });
}

/// Two unsubscribes racing a publish: each one's guarantee holds, also for
/// a publish that read the epoch before the first synchronizer flipped it
/// and counted itself after (what the epoch re-check in `Grace::enter`
/// is for).
#[test]
fn racing_unsubscribes_each_wait_for_their_publishes() {
    loom::model(|| {
        let bus = Bus::new();
        let (first, first_calls) = counting(&bus);
        let (second, second_calls) = counting(&bus);
        let publisher = {
            let bus = bus.clone();
            thread::spawn(move || {
                bus.publish(1);
            })
        };
        let other = thread::spawn(move || {
            first.unsubscribe();
            // Relaxed: as in `no_call_after_unsubscribe_returns`.
            first_calls.load(Ordering::Relaxed)
        });
        second.unsubscribe();
        // Relaxed: as in `no_call_after_unsubscribe_returns`.
        let after = second_calls.load(Ordering::Relaxed);
        publisher.join().unwrap();
        let _ = other.join().unwrap();
        assert_eq!(
            second_calls.load(Ordering::Relaxed),
            after,
            "called after unsubscribe"
        );
    });
}

/// A callback that unsubscribes itself returns (it does not wait for its
/// own call), and is not called again.
#[test]
fn a_callback_may_unsubscribe_itself() {
    loom::model(|| {
        let bus = Bus::new();
        let slot: Arc<Mutex<Option<Subscription<u32>>>> = Arc::new(Mutex::new(None));
        let calls = Arc::new(AtomicUsize::new(0));
        let sub = {
            let (slot, calls) = (Arc::clone(&slot), Arc::clone(&calls));
            bus.subscribe_fn(move |_| {
                calls.fetch_add(1, Ordering::Relaxed);
                let own = slot.lock().unwrap().take();
                if let Some(own) = own {
                    own.unsubscribe();
                }
            })
        };
        *slot.lock().unwrap() = Some(sub);
        let publisher = {
            let bus = bus.clone();
            thread::spawn(move || {
                bus.publish(1);
            })
        };
        bus.publish(2);
        publisher.join().unwrap();
        assert!(bus.is_empty());
        // The first call unsubscribed it; a racing second call may have
        // entered before that, none after.
        let calls = calls.load(Ordering::Relaxed);
        assert!((1..=2).contains(&calls), "{calls} calls");
        bus.publish(3);
        assert!(slot.lock().unwrap().is_none());
    });
}

/// A callback that unsubscribes another subscriber while a second thread
/// unsubscribes a third: the second thread's wait covers the publish the
/// callback runs in, so the callback must not wait for it in turn (the
/// first design deadlocked here).
#[test]
fn an_unsubscribe_inside_a_callback_never_deadlocks_with_another() {
    loom::model(|| {
        let bus = Bus::new();
        let (target, _) = counting(&bus);
        let slot = Arc::new(Mutex::new(Some(target)));
        let _remover = unsubscribing(&bus, &slot);
        let (other, _) = counting(&bus);
        let publisher = {
            let bus = bus.clone();
            thread::spawn(move || {
                bus.publish(1);
            })
        };
        other.unsubscribe();
        publisher.join().unwrap();
        assert!(slot.lock().unwrap().is_none());
        assert_eq!(bus.len(), 1, "only the remover is left");
    });
}

/// A one-shot callback that unsubscribes itself inside a publish, and a
/// second callback of the same publish that another thread unsubscribes:
/// that `unsubscribe` waits for the second call too, though the one-shot's
/// wait left the publish out (it is inside it) and so left it counted
/// under the parity the one-shot flipped away from (issue 18, section 1:
/// a single flip and wait returned early here).
#[test]
fn an_unsubscribe_waits_for_a_publish_whose_callback_unsubscribed_itself() {
    loom::model(|| {
        let bus = Bus::new();
        let slot: Arc<Mutex<Option<Subscription<u32>>>> = Arc::new(Mutex::new(None));
        let one_shot = unsubscribing(&bus, &slot);
        *slot.lock().unwrap() = Some(one_shot);
        let (sub, calls) = counting(&bus);
        let publisher = {
            let bus = bus.clone();
            thread::spawn(move || bus.publish(1).delivered)
        };
        sub.unsubscribe();
        // Relaxed: as in `no_call_after_unsubscribe_returns`.
        let after = calls.load(Ordering::Relaxed);
        let delivered = publisher.join().unwrap();
        assert_eq!(
            calls.load(Ordering::Relaxed),
            after,
            "called after unsubscribe"
        );
        assert!(delivered <= 2);
        assert!(slot.lock().unwrap().is_none());
    });
}

/// A subscribe racing an unsubscribe of another subscriber: neither update
/// of the list is lost.
#[test]
fn list_updates_are_never_lost() {
    loom::model(|| {
        let bus = Bus::new();
        let (old, _) = counting(&bus);
        let dropper = thread::spawn(move || drop(old));
        let (new, calls) = counting(&bus);
        dropper.join().unwrap();
        assert_eq!(bus.len(), 1);
        assert_eq!(bus.publish(1).delivered, 1);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        drop(new);
    });
}
