//! [`Acquire`]: the future of [`Limit::acquire_async`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Limit, Permit, Queued};
use crate::sync::lock;

/// The future returned by [`Limit::acquire_async`]: resolves to a [`Permit`].
///
/// # Cancellation safety
///
/// Dropping it before it resolves loses nothing: if it is queued it leaves the queue, and if a
/// permit was already handed to it (it was woken but not yet polled), the permit is given back
/// and goes to the next waiter.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    limit: &'a Limit,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not polled yet.
    Idle,
    /// Queued with this id.
    Queued(u64),
    /// Resolved: the permit went to the caller.
    Done,
}

impl<'a> Acquire<'a> {
    pub(super) fn new(limit: &'a Limit) -> Acquire<'a> {
        Acquire {
            limit,
            state: State::Idle,
        }
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Permit<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit<'a>> {
        let limit = self.limit;
        let inner = &*limit.inner;
        match self.state {
            State::Idle => {
                if inner.try_take() {
                    self.state = State::Done;
                    inner.metrics.acquired();
                    return Poll::Ready(Permit::new(limit));
                }
                let mut queue = lock(&inner.queue);
                match inner.take_or_queue(&mut queue, |q| q.register_task(cx.waker())) {
                    Queued::Taken => {
                        self.state = State::Done;
                        inner.metrics.acquired();
                        Poll::Ready(Permit::new(limit))
                    }
                    Queued::Waiting(id) => {
                        self.state = State::Queued(id);
                        Poll::Pending
                    }
                }
            }
            State::Queued(id) => {
                if lock(&inner.queue).update_waker(id, cx.waker()) {
                    Poll::Pending
                } else {
                    // Unqueued by a release, which handed us its permit.
                    self.state = State::Done;
                    inner.metrics.acquired();
                    Poll::Ready(Permit::new(limit))
                }
            }
            State::Done => panic!("`Acquire` polled after it resolved"),
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let State::Queued(id) = self.state {
            let inner = &*self.limit.inner;
            let unqueued = inner.unqueue(&mut lock(&inner.queue), id);
            if !unqueued {
                // A permit was handed to us and never collected: pass it on.
                inner.release();
            }
        }
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("limit", self.limit)
            .field("state", &self.state)
            .finish()
    }
}
