//! [`Get`]: the future of [`Pool::get_async`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use keel_timex::Clock;

use super::{Expired, Pool, PoolError, Pooled, Step};
use crate::metrics::WaitStart;
use crate::sync::lock;

/// The future returned by [`Pool::get_async`]: resolves to a [`Pooled`] object or a
/// [`PoolError::Create`].
///
/// # Cancellation safety
///
/// Dropping it before it resolves loses nothing: a queued future leaves the queue, and one
/// that had been woken (an object came back or a slot was freed for it) but not yet polled
/// passes the wake-up to the next waiter. Once polled to completion it holds nothing.
#[must_use = "futures do nothing unless polled"]
pub struct Get<'a, T, E, C> {
    pool: &'a Pool<T, E, C>,
    /// This waiter's place in the pool's queue, kept when it is woken for nothing.
    ticket: Option<u64>,
    /// Whether `ticket` is in the queue now.
    queued: bool,
    done: bool,
    /// When it first had to wait (metrics), until the wait is recorded.
    waited: Option<WaitStart>,
}

impl<'a, T, E, C> Get<'a, T, E, C> {
    pub(super) fn new(pool: &'a Pool<T, E, C>) -> Get<'a, T, E, C> {
        Get {
            pool,
            ticket: None,
            queued: false,
            done: false,
            waited: None,
        }
    }
}

impl<'a, T, E, C> Future for Get<'a, T, E, C>
where
    T: Send + 'static,
    E: 'static,
    C: Clock,
{
    type Output = Result<Pooled<'a, T>, PoolError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.done, "`Get` polled after it resolved");
        let pool = self.pool;
        let inner = &*pool.inner;
        let mut expired = Expired::new();
        let step = {
            let mut state = lock(&inner.state);
            if self.queued {
                if let Some(id) = self.ticket
                    && state.queue.update_waker(id, cx.waker())
                {
                    return Poll::Pending;
                }
                self.queued = false; // woken: look again
            }
            match inner.step(&mut state, &mut expired) {
                Step::Wait => {
                    let id = match self.ticket {
                        None => state.queue.register_task(cx.waker()),
                        Some(id) => {
                            state.queue.requeue_task(id, cx.waker());
                            id
                        }
                    };
                    self.ticket = Some(id);
                    self.queued = true;
                    if self.waited.is_none() {
                        self.waited = Some(inner.metrics.wait_start(&inner.clock));
                    }
                    return Poll::Pending;
                }
                step => step,
            }
        };
        self.done = true;
        if let Some(start) = self.waited.take() {
            inner.metrics.wait_end(&inner.clock, start);
        }
        Poll::Ready(pool.finish(step, expired))
    }
}

impl<T, E, C> Drop for Get<'_, T, E, C> {
    fn drop(&mut self) {
        // Dropped while waiting (cancelled, or timed out by `get_timeout_async`).
        if let Some(start) = self.waited.take() {
            self.pool.recycler.wait_end(start);
        }
        if !self.queued {
            return;
        }
        let Some(id) = self.ticket else { return };
        let wake = {
            let mut state = lock(&self.pool.inner.state);
            if state.queue.remove(id) {
                None
            } else {
                // Woken and never looked: the object or slot it was woken for is someone
                // else's now.
                state.queue.pop_first()
            }
        };
        if let Some(wake) = wake {
            wake.wake();
        }
    }
}

impl<T, E, C: fmt::Debug> fmt::Debug for Get<'_, T, E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("pool", self.pool)
            .field("queued", &self.queued)
            .field("done", &self.done)
            .finish()
    }
}
