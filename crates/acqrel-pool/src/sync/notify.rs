//! A loom-aware stand-in for `tokio::sync::Notify`, built on loom's mutex,
//! so the models of the job queue (`tests/loom_queue.rs`) see every step of
//! its wake-ups. Only under `--cfg acqrel_loom`; every other build uses
//! tokio's `Notify` itself.
//!
//! It gives what the queue uses of tokio's `Notify`, with tokio's
//! guarantees and no more:
//!
//! * [`notify_one`](Notify::notify_one) wakes the oldest waiter and
//!   [`notify_last`](Notify::notify_last) the newest; with nobody waiting,
//!   either stores one permit (at most one), which the next
//!   [`Notified`] to be enabled or polled consumes.
//! * [`notify_waiters`](Notify::notify_waiters) completes every `Notified`
//!   created before the call (enabled or not) and stores no permit.
//! * A `Notified` that was picked by `notify_one`/`notify_last` and is
//!   dropped before it is polled again hands the notification on, with
//!   the same choice (oldest or newest), to the next waiter or as the
//!   permit. A permit consumed by `enable` or `poll` is not handed on:
//!   the `Notified` is then complete, as in tokio.
//!
//! # Orderings
//!
//! No atomics: every step is one critical section of `state`, and wakers
//! run after it is released.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{self, Mutex};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Stored by a `notify_one`/`notify_last` that found nobody waiting.
    permit: bool,
    /// How many `notify_waiters` calls there have been.
    calls: usize,
    next_key: u64,
    /// Waiting `Notified`s by key, oldest first, with their wakers.
    waiting: VecDeque<(u64, Option<Waker>)>,
    /// `Notified`s taken off `waiting` by a notification they have not
    /// yet seen, with how they were picked.
    notified: BTreeMap<u64, Pick>,
}

/// How a notification picked its waiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pick {
    Oldest,
    Newest,
    All,
}

impl State {
    /// One notification for one waiter: the waker to wake, if one was
    /// waiting, or the permit stored.
    fn notify(&mut self, pick: Pick) -> Option<Waker> {
        let waiter = match pick {
            Pick::Newest => self.waiting.pop_back(),
            _ => self.waiting.pop_front(),
        };
        let Some((key, waker)) = waiter else {
            self.permit = true;
            return None;
        };
        self.notified.insert(key, pick);
        waker
    }
}

impl Notify {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            calls: sync::lock(&self.state).calls,
            stage: Stage::Init,
        }
    }

    pub(crate) fn notify_one(&self) {
        let waker = sync::lock(&self.state).notify(Pick::Oldest);
        wake(waker);
    }

    pub(crate) fn notify_last(&self) {
        let waker = sync::lock(&self.state).notify(Pick::Newest);
        wake(waker);
    }

    pub(crate) fn notify_waiters(&self) {
        let wakers: Vec<_> = {
            let mut state = sync::lock(&self.state);
            state.calls += 1;
            let waiting = std::mem::take(&mut state.waiting);
            waiting
                .into_iter()
                .filter_map(|(key, waker)| {
                    state.notified.insert(key, Pick::All);
                    waker
                })
                .collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// From [`Notify::notified`].
#[derive(Debug)]
pub(crate) struct Notified<'a> {
    notify: &'a Notify,
    /// `notify_waiters` calls when this was created.
    calls: usize,
    stage: Stage,
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Init,
    Waiting(u64),
    Done,
}

impl Notified<'_> {
    /// Registers as a waiter without a waker; `true` if already complete.
    pub(crate) fn enable(self: Pin<&mut Self>) -> bool {
        self.get_mut().look(None).is_ready()
    }

    fn look(&mut self, waker: Option<&Waker>) -> Poll<()> {
        let mut state = sync::lock(&self.notify.state);
        match self.stage {
            Stage::Done => return Poll::Ready(()),
            Stage::Init => {
                if state.calls != self.calls {
                    self.stage = Stage::Done;
                } else if state.permit {
                    state.permit = false;
                    self.stage = Stage::Done;
                } else {
                    let key = state.next_key;
                    state.next_key += 1;
                    state.waiting.push_back((key, waker.cloned()));
                    self.stage = Stage::Waiting(key);
                }
            }
            Stage::Waiting(key) => {
                if state.notified.remove(&key).is_some() {
                    self.stage = Stage::Done;
                } else if let Some(waker) = waker
                    && let Some(entry) = state.waiting.iter_mut().find(|(k, _)| *k == key)
                {
                    entry.1 = Some(waker.clone());
                }
            }
        }
        match self.stage {
            Stage::Done => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().look(Some(cx.waker()))
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let Stage::Waiting(key) = self.stage else {
            return;
        };
        let waker = {
            let mut state = sync::lock(&self.notify.state);
            state.waiting.retain(|(k, _)| *k != key);
            match state.notified.remove(&key) {
                None | Some(Pick::All) => None,
                // Picked by `notify_one`/`notify_last` but never told: hand
                // it on, as tokio does.
                Some(pick) => state.notify(pick),
            }
        };
        wake(waker);
    }
}
