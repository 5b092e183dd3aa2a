//! `flagd.sync.v1.FlagSyncService`: the whole flag configuration, for
//! flagd's in-process providers (which evaluate it themselves) and for
//! other flagd instances.
//!
//! `SyncFlags` sends the selected configuration at once, and again after
//! every generation that changes it; `FetchAllFlags` sends it once;
//! `GetMetadata` (deprecated in the protocol, still called by older
//! providers) and every `SyncFlags` message's `sync_context` carry the
//! flag set's metadata.

use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use acqrel_bus::{Overflow, Receiver};
use acqrel_flags::{Flags, FlagsChanged};
use futures_core::Stream;
use tonic::{Request, Response, Status};

use super::convert::{self, Selector};
use super::proto::sync::v1::{self as pb};
use super::{GrpcSlot, StreamKind, selector, unavailable_until_ready};
use crate::state::{Drained, State, drain};

/// The sync service.
pub(crate) struct Sync {
    pub(crate) state: Arc<State>,
}

/// The selector of a sync request: its `selector` field, or else the
/// `Flagd-Selector` header.
fn sync_selector(metadata: &tonic::metadata::MetadataMap, field: &str) -> Result<Selector, Status> {
    if field.trim().is_empty() {
        selector(metadata)
    } else {
        Selector::parse(field).map_err(Status::invalid_argument)
    }
}

#[tonic::async_trait]
impl pb::flag_sync_service_server::FlagSyncService for Sync {
    type SyncFlagsStream = SyncStream;

    async fn sync_flags(
        &self,
        request: Request<pb::SyncFlagsRequest>,
    ) -> Result<Response<SyncStream>, Status> {
        let result = (|| {
            unavailable_until_ready(&self.state)?;
            let selector = sync_selector(request.metadata(), &request.get_ref().selector)?;
            let slot = GrpcSlot::take(&self.state, StreamKind::Sync)
                .ok_or_else(|| Status::resource_exhausted("too many sync streams open"))?;
            Ok(SyncStream::open(slot, selector))
        })();
        self.state
            .metrics
            .grpc("SyncFlags", result.as_ref().err().map(Status::code));
        result.map(Response::new)
    }

    async fn fetch_all_flags(
        &self,
        request: Request<pb::FetchAllFlagsRequest>,
    ) -> Result<Response<pb::FetchAllFlagsResponse>, Status> {
        let result = (|| {
            unavailable_until_ready(&self.state)?;
            let selector = sync_selector(request.metadata(), &request.get_ref().selector)?;
            let flags = self.state.live.store.snapshot();
            Ok(pb::FetchAllFlagsResponse {
                flag_configuration: convert::flag_configuration(&flags, &selector),
            })
        })();
        self.state
            .metrics
            .grpc("FetchAllFlags", result.as_ref().err().map(Status::code));
        result.map(Response::new)
    }

    #[allow(deprecated)]
    async fn get_metadata(
        &self,
        _request: Request<pb::GetMetadataRequest>,
    ) -> Result<Response<pb::GetMetadataResponse>, Status> {
        let result = unavailable_until_ready(&self.state).map(|()| pb::GetMetadataResponse {
            metadata: Some(convert::json_to_struct(
                self.state.live.store.snapshot().metadata(),
            )),
        });
        self.state
            .metrics
            .grpc("GetMetadata", result.as_ref().err().map(Status::code));
        result.map(Response::new)
    }
}

/// One `SyncFlags` stream: the configuration now, then after each change.
///
/// It subscribes a queue of one event under `DropOldest` (as the other
/// streams): every message is the whole configuration, so a client that
/// reads slowly skips straight to the newest and loses nothing, and a
/// reload never waits on it.
pub(crate) struct SyncStream {
    slot: GrpcSlot,
    selector: Selector,
    events: Receiver<FlagsChanged>,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The generation last sent, and its document (a new generation that
    /// leaves the selected flags as they were sends nothing).
    sent: Option<(u64, String)>,
    done: bool,
}

impl SyncStream {
    fn open(slot: GrpcSlot, selector: Selector) -> SyncStream {
        let state = Arc::clone(slot.state());
        // Subscribed before the first snapshot is read (in the first
        // poll): a change published after it is in the queue.
        let events = state
            .live
            .store
            .subscribe(NonZeroUsize::MIN, Overflow::DropOldest);
        SyncStream {
            stopped: Box::pin(state.stop.cancelled_owned()),
            slot,
            selector,
            events,
            sent: None,
            done: false,
        }
    }

    /// The message for `flags`, unless it says what the last one did.
    fn message(&mut self, flags: &Flags) -> Option<pb::SyncFlagsResponse> {
        if self
            .sent
            .as_ref()
            .is_some_and(|(generation, _)| *generation >= flags.generation())
        {
            return None;
        }
        let document = convert::flag_configuration(flags, &self.selector);
        let same = self
            .sent
            .as_ref()
            .is_some_and(|(_, last)| *last == document);
        self.sent = Some((flags.generation(), document.clone()));
        (!same).then(|| pb::SyncFlagsResponse {
            flag_configuration: document,
            sync_context: Some(convert::json_to_struct(flags.metadata())),
        })
    }
}

impl Stream for SyncStream {
    type Item = Result<pb::SyncFlagsResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.sent.is_none() {
            let flags = this.slot.state().live.store.snapshot();
            if let Some(message) = this.message(&flags) {
                return Poll::Ready(Some(Ok(message)));
            }
        }
        if this.stopped.as_mut().poll(cx).is_ready() {
            this.done = true;
            return Poll::Ready(Some(Err(Status::unavailable(
                "acqrel-flagd is shutting down",
            ))));
        }
        let drained = drain(&mut this.events, cx);
        if drained == Drained::Closed {
            this.done = true;
            return Poll::Ready(Some(Err(Status::unavailable("the flag store closed"))));
        }
        if drained == Drained::Changed {
            let flags = this.slot.state().live.store.snapshot();
            if let Some(message) = this.message(&flags) {
                return Poll::Ready(Some(Ok(message)));
            }
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for SyncStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncStream")
            .field("sent", &self.sent.as_ref().map(|(g, _)| *g))
            .finish_non_exhaustive()
    }
}
