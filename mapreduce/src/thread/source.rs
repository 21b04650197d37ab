//! [`Source`]: the generator's end of the source channel.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::Sender;

use super::{BATCH_NANOS, max_batch};
use crate::CancelToken;
use crate::metrics::Tally;

/// Handed to the generator: [`send`](Source::send) queues one item for the mappers.
///
/// Items travel in batches sized so that a batch takes about 50 µs to generate and to
/// map (measured as the call runs, starting from single items): slow items are sent as
/// soon as they are generated and spread over every worker, as in go-zero, and trivial
/// ones travel up to 4096 (at most 64 KiB) at a time. A generator that turns slow after a
/// fast burst may hold up to one batch back; [`flush`](Source::flush) sends it now. The
/// rest is sent, split across the workers, when the generator returns.
///
/// Once the call is stopping (a cancel, the deadline, the caller's token, a panic, or the
/// reducer returned), `send` drops the item and returns `false`: **the generator must
/// then return**, since the call waits for it.
pub struct Source<T> {
    buf: RefCell<Vec<T>>,
    tx: Sender<Vec<T>>,
    done: CancelToken,
    workers: usize,
    closed: Cell<bool>,
    /// The current batch size.
    limit: Cell<usize>,
    /// When the previous batch left.
    last_flush: Cell<Instant>,
    /// The workers' latest time per item, in nanoseconds (0: not known yet).
    map_nanos: Arc<AtomicU64>,
    /// Items put on the source channel, counted per batch.
    generated: Tally,
}

impl<T> Source<T> {
    pub(super) fn new(
        tx: Sender<Vec<T>>,
        done: CancelToken,
        workers: usize,
        map_nanos: Arc<AtomicU64>,
        generated: Tally,
    ) -> Source<T> {
        Source {
            buf: RefCell::new(Vec::new()),
            tx,
            done,
            workers,
            closed: Cell::new(false),
            limit: Cell::new(1),
            last_flush: Cell::new(Instant::now()),
            map_nanos,
            generated,
        }
    }

    /// Queues `item` for a mapper; blocks while the bounded source channel is full.
    /// `false` once the call is stopping: the item is dropped and the generator should
    /// return.
    #[inline]
    pub fn send(&self, item: T) -> bool {
        if self.is_stopping() {
            return false;
        }
        let mut buf = self.buf.borrow_mut();
        buf.push(item);
        if buf.len() >= self.limit.get() {
            let batch = mem::take(&mut *buf);
            drop(buf);
            self.pace(batch.len());
            return self.push(batch);
        }
        true
    }

    /// Sends the items buffered so far now (for a generator that is about to block for a
    /// while between items). `false` once the call is stopping.
    pub fn flush(&self) -> bool {
        if self.is_stopping() {
            return false;
        }
        let batch = mem::take(&mut *self.buf.borrow_mut());
        batch.is_empty() || self.push(batch)
    }

    /// Whether the call is stopping (then [`send`](Source::send) returns `false`).
    #[inline]
    pub fn is_stopping(&self) -> bool {
        if self.closed.get() {
            return true;
        }
        if self.done.is_cancelled() {
            self.close();
            return true;
        }
        false
    }

    /// Sizes the next batch from the time per item of this one (generated) and of the
    /// workers' latest (mapped): it may at most double, and stays at one item until the
    /// workers' time is known.
    fn pace(&self, sent: usize) {
        let now = Instant::now();
        let fill = now.duration_since(self.last_flush.get()).as_nanos() as u64 / sent as u64;
        self.last_flush.set(now);
        let map = self.map_nanos.load(Ordering::Relaxed);
        let limit = if map == 0 {
            1
        } else {
            let fits = (BATCH_NANOS / fill.max(map).max(1)) as usize;
            fits.min(self.limit.get() * 2).clamp(1, max_batch::<T>())
        };
        self.limit.set(limit);
        let mut buf = self.buf.borrow_mut();
        if buf.capacity() < limit {
            buf.reserve_exact(limit);
        }
    }

    fn close(&self) {
        self.closed.set(true);
        self.buf.borrow_mut().clear();
    }

    fn push(&self, batch: Vec<T>) -> bool {
        let len = batch.len();
        if self.tx.send(batch).is_err() {
            // Every worker left: the call is stopping.
            self.close();
            return false;
        }
        self.generated.batch(len);
        true
    }

    /// After the generator returned: sends the rest split across the workers, so a short
    /// tail is mapped in parallel rather than by one worker.
    pub(super) fn finish(self) {
        if self.is_stopping() {
            return;
        }
        let mut rest = self.buf.take();
        if rest.is_empty() {
            return;
        }
        let chunk = rest.len().div_ceil(self.workers).max(1);
        while rest.len() > chunk {
            let tail = rest.split_off(chunk);
            if !self.push(rest) || self.is_stopping() {
                return;
            }
            rest = tail;
        }
        self.push(rest);
    }
}

impl<T> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("stopping", &self.is_stopping())
            .field("batch", &self.limit.get())
            .finish_non_exhaustive()
    }
}
