//! [`Writer`] (a mapper's or the reducer's output) and [`Outputs`] (the reducer's input).

use std::cell::RefCell;
use std::fmt;
use std::mem;

use crossbeam_channel::{Receiver, Sender};

use super::max_batch;
use crate::CancelToken;
use crate::metrics::Tally;

/// Where a stage writes its results: handed to every mapper (its writes go to the
/// reducer) and to the reducer of [`map_reduce`](super::map_reduce) (its one write is the
/// call's value).
///
/// A mapper's writes are batched like the source (a batch leaves when it holds 4096
/// values or 64 KiB, and whenever the worker's batch of items is done, about every 50 µs
/// of mapping) and are discarded once the call is stopping. The reducer must write exactly once:
/// no write is [`MapReduceError::NoOutput`](crate::MapReduceError::NoOutput), more
/// than one is [`MapReduceError::MultipleOutputs`](crate::MapReduceError::MultipleOutputs).
///
/// A writer belongs to one thread (it is not `Sync`).
pub struct Writer<U> {
    kind: Kind<U>,
}

enum Kind<U> {
    Collect {
        buf: RefCell<Vec<U>>,
        tx: Sender<Vec<U>>,
        done: CancelToken,
    },
    Output(RefCell<Output<U>>),
}

/// The reducer's writes.
pub(super) struct Output<U> {
    pub(super) writes: usize,
    pub(super) value: Option<U>,
}

impl<U> Writer<U> {
    pub(super) fn collector(tx: Sender<Vec<U>>, done: CancelToken) -> Writer<U> {
        Writer {
            kind: Kind::Collect {
                buf: RefCell::new(Vec::new()),
                tx,
                done,
            },
        }
    }

    pub(super) fn output() -> Writer<U> {
        Writer {
            kind: Kind::Output(RefCell::new(Output {
                writes: 0,
                value: None,
            })),
        }
    }

    /// Writes `value` (a mapper: for the reducer, discarded once the call is stopping;
    /// the reducer: the call's value). A mapper's write blocks while the bounded collector
    /// is full.
    #[inline]
    pub fn write(&self, value: U) {
        match &self.kind {
            Kind::Collect { buf, tx, done } => {
                if done.is_cancelled() {
                    return;
                }
                let mut b = buf.borrow_mut();
                b.push(value);
                if b.len() >= max_batch::<U>() {
                    let batch = mem::take(&mut *b);
                    drop(b);
                    // Err: the reducer is gone (it returned): the value is discarded.
                    let _ = tx.send(batch);
                }
            }
            Kind::Output(out) => {
                let mut out = out.borrow_mut();
                out.writes += 1;
                if out.value.is_none() {
                    out.value = Some(value);
                }
            }
        }
    }

    /// Sends a mapper's buffered values (at the end of each batch of items).
    pub(super) fn flush(&self) {
        if let Kind::Collect { buf, tx, done } = &self.kind {
            let mut b = buf.borrow_mut();
            if b.is_empty() {
                return;
            }
            if done.is_cancelled() {
                b.clear();
                return;
            }
            let batch = mem::take(&mut *b);
            drop(b);
            let _ = tx.send(batch);
        }
    }

    /// The reducer's writes.
    pub(super) fn into_output(self) -> Output<U> {
        match self.kind {
            Kind::Output(out) => out.into_inner(),
            Kind::Collect { .. } => Output {
                writes: 0,
                value: None,
            },
        }
    }
}

impl<U> fmt::Debug for Writer<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Collect { .. } => "mapper",
            Kind::Output(_) => "reducer",
        };
        f.debug_struct("Writer")
            .field("of", &kind)
            .finish_non_exhaustive()
    }
}

/// The reducer's input: an iterator over the mappers' outputs in arrival order. It ends
/// when every mapper is done, or as soon as the call is stopping (a cancel, the deadline,
/// the caller's token or a panic), so a reducer that iterates to the end always returns.
pub struct Outputs<U> {
    rx: Option<Receiver<Vec<U>>>,
    current: std::vec::IntoIter<U>,
    done: CancelToken,
    /// Outputs handed out; flushed before each wait for a batch, and when dropped.
    reduced: Tally,
}

impl<U> Outputs<U> {
    pub(super) fn new(rx: Receiver<Vec<U>>, done: CancelToken, reduced: Tally) -> Outputs<U> {
        Outputs {
            rx: Some(rx),
            current: Vec::new().into_iter(),
            done,
            reduced,
        }
    }

    fn close(&mut self) {
        // Dropping the receiver makes every pending or later write fail at once, so no
        // mapper stays blocked on a full collector.
        self.rx = None;
        self.current = Vec::new().into_iter();
    }
}

impl<U> Iterator for Outputs<U> {
    type Item = U;

    #[inline]
    fn next(&mut self) -> Option<U> {
        loop {
            if self.done.is_cancelled() {
                self.close();
                return None;
            }
            if let Some(v) = self.current.next() {
                self.reduced.one();
                return Some(v);
            }
            self.reduced.flush();
            match self.rx.as_ref()?.recv() {
                Ok(batch) => self.current = batch.into_iter(),
                Err(_) => {
                    self.close();
                    return None;
                }
            }
        }
    }
}

impl<U> fmt::Debug for Outputs<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outputs")
            .field("buffered", &self.current.len())
            .field("ended", &self.rx.is_none())
            .finish()
    }
}
