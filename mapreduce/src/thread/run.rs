//! The pipeline shared by every entry point: a generator thread, `workers` long-lived
//! worker threads, the reducer (on the caller's thread, or on its own while the caller
//! watches the token and the deadline), all in one `std::thread::scope`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use parking_lot::Mutex;

use super::{Outputs, Source, Writer};
use crate::Options;
use crate::StopError;
use crate::cancel::Cancel;

/// How often the caller looks at its [`CancelToken`](crate::CancelToken) while the call
/// runs (only when one was given).
const TOKEN_POLL: Duration = Duration::from_millis(1);

type Payload = Box<dyn Any + Send + 'static>;

struct Shared<E> {
    cancel: Cancel<E>,
    /// The first panic of any stage.
    panic: Mutex<Option<Payload>>,
}

impl<E> Shared<E> {
    fn record_panic(&self, payload: Payload) {
        {
            let mut first = self.panic.lock();
            if first.is_none() {
                *first = Some(payload);
            }
        }
        // Stop everything without recording a reason: the panic wins anyway.
        self.cancel.done().cancel();
    }
}

/// Runs the pipeline to its end; re-raises the first panic after every thread is joined;
/// returns the first stop, if any.
pub(super) fn run<T, U, E, G, M, R>(
    opts: &Options,
    generate: G,
    mapper: M,
    reducer: Option<R>,
) -> Option<StopError<E>>
where
    T: Send,
    U: Send,
    E: Send,
    G: FnOnce(&Source<T>) + Send,
    M: Fn(T, &Writer<U>, &Cancel<E>) + Sync,
    R: FnOnce(Outputs<U>, &Cancel<E>) + Send,
{
    if let Some(stop) = stopped_before_start(opts) {
        return Some(stop);
    }
    let workers = opts.workers.max(1);
    let shared = Shared {
        cancel: Cancel::new(),
        panic: Mutex::new(None),
    };
    // Room for a batch in flight per worker and one queued, so stages rarely wait in
    // lockstep.
    let capacity = workers.max(2) * 2;
    let (src_tx, src_rx) = bounded::<Vec<T>>(capacity);
    let (out_tx, out_rx) = bounded::<Vec<U>>(capacity);
    // Never sent on: every thread holds a sender, so the receiver disconnects once all
    // of them have ended.
    let (alive_tx, alive_rx) = bounded::<()>(0);
    let map_nanos = Arc::new(AtomicU64::new(0));

    std::thread::scope(|s| {
        let shared = &shared;
        let mapper = &mapper;
        let pace = &*map_nanos;
        let mut handles = Vec::with_capacity(workers + 2);

        for _ in 0..workers {
            let rx = src_rx.clone();
            let tx = out_tx.clone();
            let alive = alive_tx.clone();
            handles.push(s.spawn(move || {
                let _alive = alive;
                work(shared, mapper, pace, rx, tx);
            }));
        }
        drop(src_rx);
        drop(out_tx);

        // With nothing to watch (no token, no deadline) the caller's thread would only
        // wait: it runs the reducer itself, one thread fewer to start per call.
        let watching = opts.token.is_some() || opts.deadline.is_some();
        let mut inline_reducer = None;
        match reducer {
            Some(reducer) if watching => {
                let alive = alive_tx.clone();
                handles.push(s.spawn(move || {
                    let _alive = alive;
                    reduce_with(shared, reducer, out_rx);
                }));
            }
            Some(reducer) => inline_reducer = Some((reducer, out_rx)),
            None => drop(out_rx),
        }

        let alive = alive_tx.clone();
        let source_pace = Arc::clone(&map_nanos);
        handles.push(s.spawn(move || {
            let _alive = alive;
            let done = shared.cancel.done().clone();
            let source = Source::new(src_tx, done, workers, source_pace);
            match catch_unwind(AssertUnwindSafe(|| generate(&source))) {
                Ok(()) => source.finish(),
                Err(payload) => shared.record_panic(payload),
            }
        }));
        drop(alive_tx);

        if let Some((reducer, out_rx)) = inline_reducer {
            reduce_with(shared, reducer, out_rx);
        }
        watch(opts, &shared.cancel, &alive_rx);
        for h in handles {
            // Every stage catches its own panic, so a join never fails; joining here (not
            // at the end of the scope) waits for the threads themselves to exit.
            let _ = h.join();
        }
    });

    if let Some(payload) = shared.panic.into_inner() {
        resume_unwind(payload);
    }
    shared.cancel.take_reason()
}

/// Runs the reducer over the collector, catching its panic; its return stops dispatch.
fn reduce_with<U, E, R>(shared: &Shared<E>, reducer: R, out_rx: Receiver<Vec<U>>)
where
    R: FnOnce(Outputs<U>, &Cancel<E>),
{
    let outputs = Outputs::new(out_rx, shared.cancel.done().clone());
    let r = catch_unwind(AssertUnwindSafe(|| reducer(outputs, &shared.cancel)));
    if let Err(payload) = r {
        shared.record_panic(payload);
    }
    // go-zero: once the reducer returned, dispatching stops.
    shared.cancel.done().cancel();
}

fn stopped_before_start<E>(opts: &Options) -> Option<StopError<E>> {
    if opts.token.as_ref().is_some_and(|t| t.is_cancelled()) {
        return Some(StopError::TokenCancelled);
    }
    if opts.deadline.is_some_and(|d| Instant::now() >= d) {
        return Some(StopError::DeadlineExceeded);
    }
    None
}

/// One worker: pulls batches of items until the source ends or the call stops.
fn work<T, U, E, M>(
    shared: &Shared<E>,
    mapper: &M,
    map_nanos: &AtomicU64,
    rx: Receiver<Vec<T>>,
    tx: Sender<Vec<U>>,
) where
    M: Fn(T, &Writer<U>, &Cancel<E>),
{
    let done = shared.cancel.done();
    let writer = Writer::collector(tx, done.clone());
    let r = catch_unwind(AssertUnwindSafe(|| {
        while !done.is_cancelled() {
            let Ok(batch) = rx.recv() else { break };
            let (len, start) = (batch.len() as u64, Instant::now());
            for item in batch {
                // No mapper starts once the call is stopping; the rest of the batch is
                // dropped with the iterator.
                if done.is_cancelled() {
                    break;
                }
                mapper(item, &writer, &shared.cancel);
            }
            writer.flush();
            // The generator sizes its batches from this (including any wait on a full
            // collector: a slow reducer makes mapping slow too).
            let nanos = start.elapsed().as_nanos() as u64 / len.max(1);
            map_nanos.store(nanos.max(1), Ordering::Relaxed);
        }
    }));
    if let Err(payload) = r {
        shared.record_panic(payload);
    }
}

/// On the caller's thread, until every stage has ended: turns the caller's token and the
/// deadline into a stop.
fn watch<E>(opts: &Options, cancel: &Cancel<E>, alive: &Receiver<()>) {
    if opts.token.is_none() && opts.deadline.is_none() {
        return;
    }
    loop {
        if cancel.is_cancelled() {
            // Already stopping (or the reducer returned): nothing left to watch.
            return;
        }
        if opts.token.as_ref().is_some_and(|t| t.is_cancelled()) {
            cancel.stop(StopError::TokenCancelled);
            return;
        }
        let now = Instant::now();
        let wait = match opts.deadline {
            Some(d) if now >= d => {
                cancel.stop(StopError::DeadlineExceeded);
                return;
            }
            Some(d) => d - now,
            None => TOKEN_POLL,
        };
        let wait = if opts.token.is_some() {
            wait.min(TOKEN_POLL)
        } else {
            wait
        };
        if let Err(RecvTimeoutError::Disconnected) = alive.recv_timeout(wait) {
            return;
        }
    }
}
