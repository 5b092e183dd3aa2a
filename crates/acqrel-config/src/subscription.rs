//! A coalescing stream of new configs.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::hot_config::ConfigRef;
use crate::shared::Shared;

/// A wake-up wait owning its share of the state.
type Wait = Pin<Box<dyn Future<Output = u64> + Send>>;

/// The configs a [`HotConfig`](crate::HotConfig) serves after
/// [`subscribe`](crate::HotConfig::subscribe) was called, newest first: a
/// subscriber that falls behind skips to the newest config and never sees a
/// backlog (the guide's capacity-1 reload channel, without its lost-update
/// race). It ends (`None`) once the handle is stopped or dropped.
///
/// Use [`recv`](Self::recv), or the [`Stream`] implementation with any
/// stream combinator library. Runtime-agnostic.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("acqrel-doc-sub-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use acqrel_config::HotConfig;
///
/// let path = dir.join("n.json");
/// std::fs::write(&path, "1")?;
/// let config = HotConfig::<u32>::builder(&path).watch(false).start()?;
/// let mut updates = config.subscribe();
///
/// std::fs::write(&path, "2")?;
/// config.reload_now()?;
/// std::fs::write(&path, "3")?;
/// config.reload_now()?;
///
/// pollster::block_on(async {
///     // Two reloads, one item: the newest.
///     let newest = updates.recv().await.expect("not stopped");
///     assert_eq!((*newest, newest.generation()), (3, 2));
///     drop(config);
///     assert!(updates.recv().await.is_none());
/// });
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscription<T> {
    shared: Arc<Shared<T>>,
    /// The generation last returned (or current at subscription).
    seen: u64,
    /// The wait under way, kept across polls.
    wait: Option<Wait>,
}

impl<T: Send + Sync + 'static> Subscription<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        let seen = shared.snapshot.generation();
        Subscription {
            shared,
            seen,
            wait: None,
        }
    }

    /// The next config newer than the last one returned, or `None` once the
    /// handle is stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a config is marked seen only when it is returned, so a
    /// dropped `recv` loses nothing.
    ///
    /// # Examples
    ///
    /// See [`Subscription`].
    pub async fn recv(&mut self) -> Option<ConfigRef<T>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("acqrel-doc-poll-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::task::{Context, Waker};
    /// let path = dir.join("n.json");
    /// std::fs::write(&path, "1")?;
    /// let config = acqrel_config::HotConfig::<u32>::builder(&path).watch(false).start()?;
    /// let mut updates = config.subscribe();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(updates.poll_recv(&mut cx).is_pending());
    /// # drop(config);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ConfigRef<T>>> {
        loop {
            // The wake-up generation is read before the checks below (a wait
            // made earlier read it before the previous checks), so a commit
            // or stop after the checks fires past it and ends the wait.
            let wait = match &mut self.wait {
                Some(wait) => wait,
                None => {
                    let since = self.shared.wake.generation();
                    let current = self.shared.snapshot.load_full();
                    if current.generation() > self.seen {
                        self.seen = current.generation();
                        return Poll::Ready(Some(ConfigRef(current)));
                    }
                    if self.shared.closed.is_open() {
                        return Poll::Ready(None);
                    }
                    let shared = self.shared.clone();
                    self.wait
                        .insert(Box::pin(async move { shared.wake.past(since).await }))
                }
            };
            match wait.as_mut().poll(cx) {
                Poll::Ready(_) => self.wait = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T: Send + Sync + 'static> Stream for Subscription<T> {
    type Item = ConfigRef<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConfigRef<T>>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("seen", &self.seen)
            .field("waiting", &self.wait.is_some())
            .finish()
    }
}
