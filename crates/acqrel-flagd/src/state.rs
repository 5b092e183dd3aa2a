//! What every connection shares: the served flags, the options, the
//! metrics, the limiter and the shutdown signal.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use acqrel_bus::Receiver;
use acqrel_core::Latch;
use acqrel_flags::{FlagStore, FlagsChanged};
use acqrel_pool::Shutdown;
use acqrel_ratelimit::KeyedRateLimiter;
use futures_core::Stream;

use crate::cli::Options;
use crate::metrics::Metrics;
use crate::sources::Sources;

/// The state `/metrics` reads at each scrape (shared with its collector).
pub(crate) struct Live {
    /// The merged flags the OFREP port evaluates.
    pub(crate) store: Arc<FlagStore>,
    /// The flag files, once loaded.
    pub(crate) sources: OnceLock<Sources>,
    /// Open once every flag file loaded: `/readyz` answers 200, and the
    /// OFREP port evaluates. Its open (Release) pairs with the Acquire of
    /// `is_open` in the handlers, so a handler that sees it open sees
    /// `sources` set and the store merged.
    pub(crate) ready: Latch,
    /// Change streams open now (bounded by `--max-sse-streams`).
    pub(crate) sse_open: AtomicUsize,
    /// gRPC streams open now, `EventStream` and `SyncFlags` (each
    /// bounded by `--max-sse-streams`).
    pub(crate) grpc_open: [AtomicUsize; 2],
}

/// The server's shared state.
pub(crate) struct State {
    pub(crate) live: Arc<Live>,
    pub(crate) metrics: Metrics,
    pub(crate) options: Options,
    /// This process's part of every ETag and event id, so a restarted
    /// server (whose generations count from 0 again) never matches a tag
    /// the previous one gave out.
    pub(crate) instance: String,
    /// `--rate-limit`, per client address.
    pub(crate) limiter: Option<KeyedRateLimiter<IpAddr>>,
    /// Cancelled when the server starts shutting down: accept loops stop,
    /// connections finish their request and close, change streams end.
    pub(crate) stop: Shutdown,
}

/// What a change stream's queue held when it was drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drained {
    /// At least one change: look at the store's flags now.
    Changed,
    /// Nothing yet; `cx` is woken at the next change.
    Unchanged,
    /// The store is gone (the server is going away) or the queue was cut
    /// off (never, under `DropOldest`): the stream ends.
    Closed,
}

/// Takes every change event waiting in a change stream's queue (SSE,
/// `EventStream`, `SyncFlags`), without waiting. The events themselves are
/// not used: each stream compares the store's flags with what it last
/// sent, so one look covers however many changes were queued or dropped.
pub(crate) fn drain(events: &mut Receiver<FlagsChanged>, cx: &mut Context<'_>) -> Drained {
    let mut drained = Drained::Unchanged;
    loop {
        match Pin::new(&mut *events).poll_next(cx) {
            Poll::Ready(Some(Ok(_))) => drained = Drained::Changed,
            Poll::Ready(Some(Err(_)) | None) => return Drained::Closed,
            Poll::Pending => return drained,
        }
    }
}
