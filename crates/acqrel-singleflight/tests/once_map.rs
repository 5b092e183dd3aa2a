//! Scenario and stress tests of `OnceMap`: one initialization shared by
//! concurrent callers, retry after an error or a panic, no entry left by a
//! failure, parallel initialization of different keys, `remove`.
#![cfg(not(acqrel_loom))]

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;

use acqrel_core::{Countdown, Latch};
use acqrel_singleflight::OnceMap;
use common::{HANG_GUARD, scaled};

/// Runs `f` on its own thread and returns its result, failing the test
/// instead of hanging if it has not returned after [`HANG_GUARD`] (a
/// regression that holds the map lock across an initializer deadlocks).
fn guarded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(f()));
    rx.recv_timeout(HANG_GUARD)
        .expect("hung: the call never returned")
}

/// Spawns `n` threads that meet at a barrier, then each run `f(i)`; returns
/// their results in thread order.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let start = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, start) = (f.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Blocks on `latch` (a hang guard, not a timing) and fails the test if it
/// never opens.
fn wait_for(latch: &Latch) {
    assert!(latch.wait_timeout(HANG_GUARD), "latch never opened");
}

#[test]
fn concurrent_callers_share_one_initialization() {
    const CALLERS: usize = 8;
    let map = Arc::new(OnceMap::<&str, usize>::new());
    let inits = Arc::new(AtomicUsize::new(0));
    let values = race(CALLERS, {
        let (map, inits) = (map.clone(), inits.clone());
        move |i| {
            map.get_or_init(&"key", || {
                inits.fetch_add(1, Ordering::SeqCst);
                i
            })
        }
    });
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    assert!(values.iter().all(|&v| v == values[0]), "{values:?}");
    assert_eq!(map.get("key"), Some(values[0]));
    assert_eq!(map.len(), 1);
}

#[test]
fn waiters_get_the_value_of_the_initializer_they_waited_for() {
    const WAITERS: usize = 4;
    let map = Arc::new(OnceMap::<u8, &str>::new());
    let (started, proceed) = (Arc::new(Latch::new()), Arc::new(Latch::new()));
    let first = {
        let (map, started, proceed) = (map.clone(), started.clone(), proceed.clone());
        thread::spawn(move || {
            map.get_or_init(&0, || {
                started.open();
                wait_for(&proceed);
                "first"
            })
        })
    };
    wait_for(&started);
    // Key 0 is being initialized: it has an entry but no value.
    assert_eq!(map.get(&0), None);
    assert_eq!(map.len(), 1);
    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let map = map.clone();
            thread::spawn(move || map.get_or_init(&0, || "waiter"))
        })
        .collect();
    proceed.open();
    assert_eq!(first.join().unwrap(), "first");
    for waiter in waiters {
        assert_eq!(waiter.join().unwrap(), "first");
    }
    assert_eq!(map.get(&0), Some("first"));
}

#[test]
fn failed_init_is_retried_by_the_next_caller_and_leaves_no_entry() {
    let map = OnceMap::<&str, u32>::new();
    for attempt in 0..3 {
        assert_eq!(
            map.get_or_try_init(&"db", || Err::<u32, _>(attempt)),
            Err(attempt)
        );
        assert_eq!(map.len(), 0);
        assert_eq!(map.get("db"), None);
    }
    assert_eq!(map.get_or_try_init(&"db", || Ok::<_, u32>(7)), Ok(7));
    assert_eq!(map.get_or_try_init(&"db", || Err(99)), Ok(7));
    assert_eq!(map.len(), 1);
}

#[test]
fn failing_keys_do_not_grow_the_map() {
    const THREADS: usize = 4;
    const KEYS: u64 = 64;
    let map = Arc::new(OnceMap::<u64, u64>::new());
    let errors = race(THREADS, {
        let map = map.clone();
        move |_| {
            (0..KEYS)
                .filter(|key| map.get_or_try_init(key, || Err("down")).is_err())
                .count()
        }
    });
    // Every call failed (no caller can get a value nobody produced)...
    assert_eq!(errors, vec![KEYS as usize; THREADS]);
    // ...and no failed key is left behind.
    assert_eq!(map.len(), 0);
}

#[test]
fn waiter_retries_after_the_initializer_fails() {
    let map = Arc::new(OnceMap::<u8, &str>::new());
    let (started, proceed) = (Arc::new(Latch::new()), Arc::new(Latch::new()));
    let failing = {
        let (map, started, proceed) = (map.clone(), started.clone(), proceed.clone());
        thread::spawn(move || {
            map.get_or_try_init(&0, || {
                started.open();
                wait_for(&proceed);
                Err("refused")
            })
        })
    };
    wait_for(&started);
    let waiter = {
        let map = map.clone();
        thread::spawn(move || map.get_or_try_init(&0, || Ok::<_, &str>("retried")))
    };
    proceed.open();
    // The error goes to the failing caller only; the waiter (whether it
    // blocked on the failing init or came after it) runs its own.
    assert_eq!(failing.join().unwrap(), Err("refused"));
    assert_eq!(waiter.join().unwrap(), Ok("retried"));
    assert_eq!(map.get(&0), Some("retried"));
    assert_eq!(map.len(), 1);
}

#[test]
fn panicking_init_propagates_and_the_next_caller_initializes() {
    let map = OnceMap::<&str, u32>::new();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        map.get_or_init(&"k", || panic!("init exploded"))
    }));
    let payload = caught.expect_err("the panic must reach its caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"init exploded"));
    assert_eq!(map.len(), 0);
    assert_eq!(map.get_or_init(&"k", || 5), 5);
    assert_eq!(map.get("k"), Some(5));
}

#[test]
fn waiter_initializes_after_a_panicking_initializer() {
    let map = Arc::new(OnceMap::<u8, u32>::new());
    let (started, proceed) = (Arc::new(Latch::new()), Arc::new(Latch::new()));
    let panicking = {
        let (map, started, proceed) = (map.clone(), started.clone(), proceed.clone());
        thread::spawn(move || {
            map.get_or_init(&0, || {
                started.open();
                wait_for(&proceed);
                panic!("init exploded")
            })
        })
    };
    wait_for(&started);
    let waiter = {
        let map = map.clone();
        thread::spawn(move || map.get_or_init(&0, || 3))
    };
    proceed.open();
    assert!(panicking.join().is_err());
    assert_eq!(waiter.join().unwrap(), 3);
    assert_eq!(map.get(&0), Some(3));
    assert_eq!(map.len(), 1);
}

#[test]
fn different_keys_initialize_in_parallel() {
    let map = Arc::new(OnceMap::<u8, bool>::new());
    // Each init counts itself in, then waits for the other to have started:
    // if inits were serialized, the first would wait out the hang guard.
    let both_started = Arc::new(Countdown::new(2));
    let met = race(2, {
        let (map, both_started) = (map.clone(), both_started.clone());
        move |i| {
            map.get_or_init(&(i as u8), || {
                both_started.count_down().unwrap();
                both_started.wait_timeout(HANG_GUARD)
            })
        }
    });
    assert_eq!(met, vec![true, true]);
    assert_eq!(map.len(), 2);
}

#[test]
fn init_may_use_the_map_for_other_keys() {
    let map = Arc::new(OnceMap::<u8, u32>::new());
    let value = guarded({
        let map = map.clone();
        move || map.get_or_init(&1, || map.get_or_init(&2, || 20) + 1)
    });
    assert_eq!(value, 21);
    assert_eq!((map.get(&1), map.get(&2)), (Some(21), Some(20)));
}

#[test]
fn remove_returns_the_value_and_the_next_caller_starts_afresh() {
    let map = OnceMap::<String, Arc<String>>::new();
    assert_eq!(map.remove("a"), None);
    let key = "a".to_string();
    let first = map.get_or_init(&key, || Arc::new("one".to_string()));
    // Shared with `first`: `remove` hands back a clone of the same value.
    let removed = map.remove("a").expect("initialized");
    assert!(Arc::ptr_eq(&removed, &first));
    assert_eq!(map.len(), 0);
    assert_eq!(map.get("a"), None);
    assert_eq!(
        *map.get_or_init(&key, || Arc::new("two".to_string())),
        "two"
    );
    assert_eq!(map.len(), 1);
}

#[test]
fn remove_during_init_detaches_it() {
    let map = Arc::new(OnceMap::<u8, &str>::new());
    let (started, proceed) = (Arc::new(Latch::new()), Arc::new(Latch::new()));
    let in_flight = {
        let (map, started, proceed) = (map.clone(), started.clone(), proceed.clone());
        thread::spawn(move || {
            map.get_or_init(&0, || {
                started.open();
                wait_for(&proceed);
                "detached"
            })
        })
    };
    wait_for(&started);
    // Not initialized yet: nothing to return, but the entry goes.
    assert_eq!(map.remove(&0), None);
    assert_eq!(map.len(), 0);
    // A later caller does not wait for the detached init: it runs its own
    // (were it blocked, `proceed` would never open and the guard fires).
    let fresh = guarded({
        let map = map.clone();
        move || map.get_or_init(&0, || "fresh")
    });
    assert_eq!(fresh, "fresh");
    proceed.open();
    // The detached init finishes for its own caller, and is not stored.
    assert_eq!(in_flight.join().unwrap(), "detached");
    assert_eq!(map.get(&0), Some("fresh"));
    assert_eq!(map.len(), 1);
}

#[test]
fn remove_during_a_failing_init_leaves_the_new_entry_alone() {
    let map = Arc::new(OnceMap::<u8, &str>::new());
    let (started, proceed) = (Arc::new(Latch::new()), Arc::new(Latch::new()));
    let failing = {
        let (map, started, proceed) = (map.clone(), started.clone(), proceed.clone());
        thread::spawn(move || {
            map.get_or_try_init(&0, || {
                started.open();
                wait_for(&proceed);
                Err("refused")
            })
        })
    };
    wait_for(&started);
    assert_eq!(map.remove(&0), None);
    let new = guarded({
        let map = map.clone();
        move || map.get_or_init(&0, || "new")
    });
    assert_eq!(new, "new");
    proceed.open();
    // The detached cell's failure must not touch the key's new entry.
    assert_eq!(failing.join().unwrap(), Err("refused"));
    assert_eq!(map.get(&0), Some("new"));
    assert_eq!(map.len(), 1);
}

#[test]
fn stress_each_key_initializes_exactly_once_after_two_failures() {
    const THREADS: usize = 4;
    const KEYS: usize = 32;
    /// Each key's first `FAILURES` attempts fail.
    const FAILURES: usize = 2;
    for _ in 0..scaled(200) {
        let map = Arc::new(OnceMap::<usize, usize>::new());
        let attempts = Arc::new((0..KEYS).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
        let seen = race(THREADS, {
            let (map, attempts) = (map.clone(), attempts.clone());
            move |t| {
                // Each thread walks the keys from a different start.
                (0..KEYS)
                    .map(|k| (k + t * KEYS / THREADS) % KEYS)
                    .map(|key| {
                        loop {
                            let init = || {
                                let attempt = attempts[key].fetch_add(1, Ordering::SeqCst);
                                if attempt < FAILURES {
                                    Err(attempt)
                                } else {
                                    Ok(key * 10 + attempt)
                                }
                            };
                            if let Ok(value) = map.get_or_try_init(&key, init) {
                                break (key, value);
                            }
                        }
                    })
                    .collect::<Vec<_>>()
            }
        });
        for attempts in attempts.iter() {
            assert_eq!(attempts.load(Ordering::SeqCst), FAILURES + 1);
        }
        for (key, value) in seen.into_iter().flatten() {
            assert_eq!(value, key * 10 + FAILURES);
        }
        assert_eq!(map.len(), KEYS);
    }
}
