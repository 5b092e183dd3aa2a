//! A future that turns a panic inside a user's future into a value, so
//! that a worker or a group records it and goes on.

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A caught panic's message: the `&str` or `String` payload, or a
/// placeholder for any other payload.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a payload that is not a string".to_owned()
    }
}

/// Calls `f` and polls the future it returns, catching a panic in either.
pub(crate) fn catch_unwind<F, Fut>(f: F) -> CatchUnwind<Fut>
where
    F: FnOnce() -> Fut,
{
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(future) => CatchUnwind {
            state: State::Running { future },
        },
        Err(payload) => CatchUnwind {
            state: State::Done {
                payload: Some(payload),
            },
        },
    }
}

pin_project_lite::pin_project! {
    /// Output: the future's, or the panic's payload. The future is dropped
    /// as soon as it completes or panics, inside the catch too, so a future
    /// whose `Drop` panics is reported like one whose `poll` panics.
    ///
    /// `AssertUnwindSafe` is sound here: after a panic the future is never
    /// polled again (it is dropped at once), so no broken invariant inside
    /// it can be observed.
    pub(crate) struct CatchUnwind<Fut> {
        #[pin]
        state: State<Fut>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<Fut> {
        Running { #[pin] future: Fut },
        Done { payload: Option<Box<dyn Any + Send>> },
    }
}

impl<Fut: Future> Future for CatchUnwind<Fut> {
    type Output = Result<Fut::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        let polled = match state.as_mut().project() {
            StateProj::Running { future } => {
                panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
            }
            StateProj::Done { payload } => match payload.take() {
                Some(payload) => return Poll::Ready(Err(payload)),
                None => panic!("CatchUnwind polled after it completed"),
            },
        };
        let outcome = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(payload) => Err(payload),
        };
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| {
            state.set(State::Done { payload: None });
        }));
        Poll::Ready(match (outcome, dropped) {
            (Ok(output), Ok(())) => Ok(output),
            // The first panic is the one reported.
            (Err(payload), _) | (Ok(_), Err(payload)) => Err(payload),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_a_panic_while_polling_and_while_calling() {
        let polled = pollster::block_on(catch_unwind(|| async { panic!("in poll") }));
        assert_eq!(message(&*polled.unwrap_err()), "in poll");
        let called = pollster::block_on(catch_unwind(|| -> std::future::Ready<()> {
            panic!("in call {}", 2)
        }));
        assert_eq!(message(&*called.unwrap_err()), "in call 2");
        let fine = pollster::block_on(catch_unwind(|| async { 7 }));
        assert_eq!(fine.unwrap(), 7);
    }

    /// Ready at once; panics when dropped.
    struct PanicOnDrop;

    impl Future for PanicOnDrop {
        type Output = u32;

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            Poll::Ready(5)
        }
    }

    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("in drop");
        }
    }

    #[test]
    fn catches_a_panic_while_dropping_the_completed_future() {
        let dropped = pollster::block_on(catch_unwind(|| PanicOnDrop));
        assert_eq!(message(&*dropped.unwrap_err()), "in drop");
    }
}
