//! The change stream (OFREP ADR-0008): server-sent events telling a
//! client to re-fetch its bulk evaluation.
//!
//! # One stream
//!
//! A stream is a response body that subscribes its own [`Receiver`] to the
//! served store's change events (acqrel-flags' `events`, over acqrel-bus):
//! a queue of **one** event under [`Overflow::DropOldest`]. Every event
//! means the same thing ("the flag set changed; re-fetch"), so when a
//! client reads slowly, or not at all, the newest event replaces the one
//! it has not read and nothing is lost that matters: the event it
//! eventually reads carries the newest tag. A reload's publish is one
//! push into each stream's queue, which never waits, whatever the clients
//! do; the alternatives would make a slow client either slow the reload
//! (a blocking queue) or miss the last change (`DropNewest`), or be cut
//! off for being slow (`Disconnect`).
//!
//! Each event is
//!
//! ```text
//! id: <instance>-<generation>
//! event: message
//! data: {"type":"refetchEvaluation","etag":"<instance>-<generation>"}
//! ```
//!
//! with the generation read from the store when the event is written (so
//! it is the newest), skipped if a previous event already named that
//! generation. A client that reconnects with `Last-Event-ID` naming an
//! older generation (or another process's) gets one event at once: it
//! missed at least one change. Without the header, the stream starts
//! quiet (the client has just fetched). A comment (`: keep-alive`) goes
//! out every `--sse-keep-alive` seconds so proxies keep the connection.
//!
//! The stream ends when the server shuts down. It holds no thread: an idle
//! stream is a parked connection task, its bus queue and a timer entry.

use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use acqrel_bus::{Overflow, Receiver};
use acqrel_flags::FlagsChanged;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Interval, MissedTickBehavior};

use crate::ofrep::config_tag;
use crate::state::{Drained, State, drain};

/// A slot of `--max-sse-streams`, given back when the stream is dropped.
pub(crate) struct StreamSlot {
    state: Arc<State>,
}

impl StreamSlot {
    /// Takes a slot, if fewer than `--max-sse-streams` streams are open.
    pub(crate) fn take(state: &Arc<State>) -> Option<StreamSlot> {
        let max = state.options.max_sse_streams.get();
        let open = &state.live.sse_open;
        // Relaxed: the count only bounds how many streams are open; it
        // publishes nothing (each stream's data is its own).
        open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
            (open < max).then_some(open + 1)
        })
        .ok()?;
        Some(StreamSlot {
            state: Arc::clone(state),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        // Relaxed: as in `take`.
        self.state.live.sse_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The body of one change stream.
pub(crate) struct EventStream {
    slot: StreamSlot,
    events: Receiver<FlagsChanged>,
    keep_alive: Interval,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// What to write before anything else (the opening comment, and the
    /// catch-up event for a stale `Last-Event-ID`).
    opening: Option<Bytes>,
    /// The newest generation an event named.
    sent: u64,
    done: bool,
}

impl EventStream {
    /// Opens a stream holding `slot`, for a client whose `Last-Event-ID` is
    /// `last_event_id`.
    pub(crate) fn open(slot: StreamSlot, last_event_id: Option<&str>) -> EventStream {
        let state = Arc::clone(&slot.state);
        let store = &state.live.store;
        // Subscribed before the generation is read: a change published
        // after the read is then in the queue.
        let events = store.subscribe(NonZeroUsize::MIN, Overflow::DropOldest);
        let generation = store.generation();
        // The opening block's `id` sets the client's last event id without
        // dispatching anything, so a reconnect carries it (and learns of a
        // change it missed while away) even before the first event.
        let mut opening = format!(
            ": acqrel-flagd change stream\nretry: 1000\nid: {}\n\n",
            config_tag(&state, generation)
        );
        if let Some(id) = last_event_id
            && id != config_tag(&state, generation)
        {
            opening.push_str(&event(&state, generation));
        }
        // At least 10 ms, whatever the options say: a zero period would
        // panic in tokio, a tiny one spin.
        let period = state.options.sse_keep_alive.max(Duration::from_millis(10));
        let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        EventStream {
            stopped: Box::pin(state.stop.cancelled_owned()),
            slot,
            events,
            keep_alive,
            opening: Some(Bytes::from(opening)),
            sent: generation,
            done: false,
        }
    }
}

/// One `refetchEvaluation` event for `generation`.
fn event(state: &State, generation: u64) -> String {
    let tag = config_tag(state, generation);
    let data = serde_json::json!({"type": "refetchEvaluation", "etag": tag});
    format!("id: {tag}\nevent: message\ndata: {data}\n\n")
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(opening) = this.opening.take() {
            return Poll::Ready(Some(Ok(Frame::data(opening))));
        }
        if this.stopped.as_mut().poll(cx).is_ready() {
            this.done = true;
            return Poll::Ready(None);
        }
        // Every queued event (one at most, or a gap's count and one) is a
        // reason to look at the store's generation now.
        let drained = drain(&mut this.events, cx);
        if drained == Drained::Closed {
            this.done = true;
            return Poll::Ready(None);
        }
        if drained == Drained::Changed {
            let generation = this.slot.state.live.store.generation();
            if generation > this.sent {
                this.sent = generation;
                let event = event(&this.slot.state, generation);
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
            }
        }
        if this.keep_alive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                b": keep-alive\n\n",
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
