//! The bounded queues between the stages, and the handles the stages hold:
//! [`Source`], [`Writer`], [`Outputs`].

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::metrics::Tally;

/// A bounded multi-producer queue. Waiting senders and receivers park their wakers here;
/// every wake happens under the lock (the wakers are tokio's or the driver's, neither of
/// which re-enters the queue).
pub(super) struct Chan<T> {
    state: Mutex<ChanState<T>>,
    /// The call's stop signal: sends are refused as soon as it is raised (the caller's
    /// token raises it from any thread), before the driver gets to close the queue.
    done: crate::CancelToken,
}

struct ChanState<T> {
    items: VecDeque<T>,
    cap: usize,
    /// Stopping: sends are refused (the item is dropped), receivers see the end.
    closed: bool,
    /// No more producers: receivers see the end once the queue is empty.
    finished: bool,
    senders: Vec<Waker>,
    receivers: Vec<Waker>,
    /// Items accepted (the source's `generated`), counted under the lock; added to the
    /// counter in batches and when the queue finishes or closes.
    accepted: Tally,
}

fn park(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

fn wake_all(list: &mut Vec<Waker>) {
    for w in list.drain(..) {
        w.wake();
    }
}

impl<T> Chan<T> {
    /// A queue of `cap` items, counting those it accepts in `accepted`, refusing sends
    /// once `done` is raised.
    pub(super) fn new(cap: usize, accepted: Tally, done: crate::CancelToken) -> Chan<T> {
        Chan {
            done,
            state: Mutex::new(ChanState {
                items: VecDeque::with_capacity(cap.min(1024)),
                cap: cap.max(1),
                closed: false,
                finished: false,
                senders: Vec::new(),
                receivers: Vec::new(),
                accepted,
            }),
        }
    }

    /// Sends `item` (taken from the option) if there is room; `Ready(false)` once the call
    /// is stopping, closed or finished (the item is dropped).
    pub(super) fn poll_send(&self, cx: &mut Context<'_>, item: &mut Option<T>) -> Poll<bool> {
        let mut s = self.state.lock();
        if s.closed || s.finished || self.done.is_cancelled() {
            drop(s);
            *item = None;
            return Poll::Ready(false);
        }
        if s.items.len() < s.cap {
            if let Some(v) = item.take() {
                s.items.push_back(v);
                s.accepted.one();
            }
            if !s.receivers.is_empty() {
                wake_all(&mut s.receivers);
            }
            return Poll::Ready(true);
        }
        park(&mut s.senders, cx.waker());
        Poll::Pending
    }

    /// Moves up to `max` items, and at most a `1/share` of those queued (rounded up), into
    /// `out`: `Ready(true)` with at least one, `Ready(false)` at the end (closed, or finished
    /// and empty), else parks the waker.
    pub(super) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        out: &mut VecDeque<T>,
        share: usize,
        max: usize,
    ) -> Poll<bool> {
        let mut s = self.state.lock();
        if s.closed {
            return Poll::Ready(false);
        }
        if !s.items.is_empty() {
            let n = s.items.len().div_ceil(share.max(1)).min(max.max(1));
            if n == s.items.len() && out.is_empty() {
                std::mem::swap(&mut s.items, out);
            } else {
                out.extend(s.items.drain(..n));
            }
            if !s.senders.is_empty() {
                wake_all(&mut s.senders);
            }
            return Poll::Ready(true);
        }
        if s.finished {
            return Poll::Ready(false);
        }
        park(&mut s.receivers, cx.waker());
        Poll::Pending
    }

    /// The producers are done: receivers drain what is queued, then see the end.
    pub(super) fn finish(&self) {
        let mut s = self.state.lock();
        s.finished = true;
        s.accepted.flush();
        wake_all(&mut s.receivers);
        wake_all(&mut s.senders);
    }

    /// Stop: pending items are dropped, sends are refused from now on, everyone wakes.
    pub(super) fn close(&self) {
        let dropped = {
            let mut s = self.state.lock();
            s.closed = true;
            s.accepted.flush();
            wake_all(&mut s.receivers);
            wake_all(&mut s.senders);
            std::mem::take(&mut s.items)
        };
        drop(dropped);
    }
}

/// The generator's end of the source: [`send`](Source::send) an item to the mappers.
/// Clones share the queue. Once the map-reduce stops (a cancel, the token, the deadline,
/// a panic, or the reducer returned) or the generator returned, `send` returns `false`
/// and drops the item: a generator should then return.
pub struct Source<T> {
    pub(super) chan: Arc<Chan<T>>,
}

impl<T> Clone for Source<T> {
    fn clone(&self) -> Self {
        Source {
            chan: Arc::clone(&self.chan),
        }
    }
}

impl<T> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source").finish_non_exhaustive()
    }
}

impl<T> Source<T> {
    /// Sends `item`, waiting while the bounded queue is full: `true` if it was taken,
    /// `false` if the map-reduce is stopping (stop generating then).
    pub fn send(&self, item: T) -> Sending<'_, T> {
        Sending {
            chan: &self.chan,
            item: Some(item),
        }
    }
}

/// The future of [`Source::send`].
#[must_use = "futures do nothing unless awaited"]
pub struct Sending<'a, T> {
    chan: &'a Chan<T>,
    item: Option<T>,
}

impl<T> Unpin for Sending<'_, T> {}

impl<T> fmt::Debug for Sending<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sending").finish_non_exhaustive()
    }
}

impl<T> Future for Sending<'_, T> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        if this.item.is_none() {
            return Poll::Ready(false);
        }
        this.chan.poll_send(cx, &mut this.item)
    }
}

/// The reducer's single output.
pub(super) struct OutSlot<V> {
    pub(super) state: Mutex<(Option<V>, usize)>,
    pub(super) done: crate::CancelToken,
}

enum WriterInner<T> {
    Chan(Arc<Chan<T>>),
    Out(Arc<OutSlot<T>>),
}

/// Where a stage writes: a mapper's writer feeds the reducer's [`Outputs`] (waiting while
/// that bounded queue is full); the reducer's writer sets the call's result (write exactly
/// once). Writes are discarded once the map-reduce is stopping.
pub struct Writer<T> {
    inner: WriterInner<T>,
}

impl<T> Clone for Writer<T> {
    fn clone(&self) -> Self {
        Writer {
            inner: match &self.inner {
                WriterInner::Chan(c) => WriterInner::Chan(Arc::clone(c)),
                WriterInner::Out(o) => WriterInner::Out(Arc::clone(o)),
            },
        }
    }
}

impl<T> fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl<T> Writer<T> {
    pub(super) fn chan(chan: Arc<Chan<T>>) -> Writer<T> {
        Writer {
            inner: WriterInner::Chan(chan),
        }
    }

    pub(super) fn out(slot: Arc<OutSlot<T>>) -> Writer<T> {
        Writer {
            inner: WriterInner::Out(slot),
        }
    }

    /// Writes `value` (await it: a mapper's write waits while the reducer is behind).
    pub fn write(&self, value: T) -> Write<'_, T> {
        Write {
            writer: self,
            value: Some(value),
        }
    }
}

/// The future of [`Writer::write`].
#[must_use = "futures do nothing unless awaited: `writer.write(v).await`"]
pub struct Write<'a, T> {
    writer: &'a Writer<T>,
    value: Option<T>,
}

impl<T> Unpin for Write<'_, T> {}

impl<T> fmt::Debug for Write<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Write").finish_non_exhaustive()
    }
}

impl<T> Future for Write<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.value.is_none() {
            return Poll::Ready(());
        }
        match &this.writer.inner {
            WriterInner::Chan(c) => c.poll_send(cx, &mut this.value).map(|_| ()),
            WriterInner::Out(o) => {
                let v = this.value.take();
                if !o.done.is_cancelled() {
                    let mut s = o.state.lock();
                    s.1 += 1;
                    if s.1 == 1 {
                        s.0 = v;
                    } else {
                        // A second write: the call fails with MultipleOutputs.
                        s.0 = None;
                    }
                }
                Poll::Ready(())
            }
        }
    }
}

/// The reducer's input: the mappers' outputs in arrival order. Read them with
/// [`recv`](Outputs::recv) or as a [`Stream`](futures_core::Stream); the end comes once
/// every mapper has finished and the generator has returned (or the map-reduce stops).
pub struct Outputs<U> {
    chan: Arc<Chan<U>>,
    buf: VecDeque<U>,
    /// Outputs handed out; flushed before each look at the queue, and when dropped.
    reduced: Tally,
}

impl<U> fmt::Debug for Outputs<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outputs").finish_non_exhaustive()
    }
}

impl<U> Outputs<U> {
    pub(super) fn new(chan: Arc<Chan<U>>, reduced: Tally) -> Outputs<U> {
        Outputs {
            chan,
            buf: VecDeque::new(),
            reduced,
        }
    }

    /// The next output, or `None` at the end.
    pub async fn recv(&mut self) -> Option<U> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next output (`Ready(None)` at the end).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<U>> {
        if let Some(v) = self.buf.pop_front() {
            self.reduced.one();
            return Poll::Ready(Some(v));
        }
        self.reduced.flush();
        match self.chan.poll_recv(cx, &mut self.buf, 1, usize::MAX) {
            Poll::Ready(true) => {
                let v = self.buf.pop_front();
                if v.is_some() {
                    self.reduced.one();
                }
                Poll::Ready(v)
            }
            Poll::Ready(false) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<U> Unpin for Outputs<U> {}

impl<U> futures_core::Stream for Outputs<U> {
    type Item = U;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        self.get_mut().poll_recv(cx)
    }
}
