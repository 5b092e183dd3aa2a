//! Pub/sub with wait-free publish: a copy-on-write subscriber list that a
//! publish loads once, callbacks run on the publisher's thread, and async
//! receivers with their own bounded queue and overflow policy. Messages are
//! shared as `Arc<T>`: `T` needs no `Clone`.
//!
//! The naive version is the guide's case study A.4: an
//! `atomic.Pointer[[]Sub]` replaced under a mutex on every subscribe and
//! unsubscribe, loaded once per publish. It gets the publication right and
//! leaves the rest open: a subscriber removed during a publish can still be
//! called after `Unsubscribe` returns; one slow subscriber behind a channel
//! either blocks the publisher or loses messages silently; a panicking
//! callback stops delivery to everyone after it. Here:
//!
//! - [`Subscription::unsubscribe`] returns only when the callback can never
//!   run again, even from a publisher that loaded the old list just before
//!   (a grace period over the whole bus: two read-modify-writes per
//!   publish, none per callback; loom-checked);
//! - each [`Receiver`] has its own queue and [`Overflow`] policy: drop the
//!   oldest and tell it how many it missed ([`Event::Lagged`], a value it
//!   must `match` past), drop the newest, or disconnect it;
//! - a panicking callback is caught and counted, and the others still get
//!   the message.
//!
//! | Go idiom | Type | Release | Acquire |
//! |---|---|---|---|
//! | `atomic.Pointer[[]Sub]` + copy-on-write `Subscribe`/`Unsubscribe`, `Publish` loop | [`Bus`] | `subscribe*`, unsubscribe (`Snapshot::update`) | `publish` (`Snapshot::load`) |
//! | `Unsubscribe` that must mean "never again" | [`Subscription::unsubscribe`] | a publish leaving its grace period (`fetch_sub`, AcqRel) | `unsubscribe` seeing the old grace period drained (Acquire) |
//! | a buffered channel per subscriber | [`Receiver`] | a push, under the queue's lock | `recv`/`try_recv`, under it |
//!
//! Order: each subscriber sees one publisher's messages in publish order;
//! messages of concurrent publishers may reach different subscribers in
//! different orders. Memory: the list holds one entry per subscriber, each
//! receiver at most its capacity of messages; a dropped receiver releases
//! its queued messages at once. When and why a copy-on-write list beats a
//! ring buffer (and when not): `docs/patterns/pubsub.md`.
//!
//! # Example
//!
//! ```
//! use std::num::NonZeroUsize;
//! use acqrel_bus::{Bus, Event, Overflow};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let bus: Bus<String> = Bus::new();
//! let mut events = bus.subscribe(NonZeroUsize::new(2).unwrap(), Overflow::DropOldest);
//! for n in 0..3 {
//!     bus.publish(format!("event {n}"));
//! }
//! // The queue held two: the receiver is told it missed one, then gets the rest.
//! assert!(matches!(events.recv().await, Ok(Event::Lagged(1))));
//! match events.recv().await {
//!     Ok(Event::Message(msg)) => assert_eq!(*msg, "event 1"),
//!     other => panic!("{other:?}"),
//! }
//! # });
//! ```

#![doc(test(attr(deny(warnings))))]

mod bus;
mod callback;
mod detach;
mod grace;
// Public, undocumented, only for this crate's loom model
// (`tests/loom_queue.rs`); private in every other build.
#[cfg(acqrel_loom)]
#[doc(hidden)]
pub mod queue;
#[cfg(not(acqrel_loom))]
#[allow(unreachable_pub)]
mod queue;
mod receiver;
mod sync;

pub use crate::bus::{Bus, CallbackStats, Delivery, Subscription};
pub use crate::queue::Overflow;
pub use crate::receiver::{
    Disconnected, Event, Receiver, RecvError, SubscriberStats, TryRecvError,
};

/// The guide's page, compiled and run as a doc test so its examples cannot
/// drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/patterns/pubsub.md")]
struct PubSubGuide;
