//! The pipeline shared by every entry point: a generator thread, up to `workers`
//! long-lived worker threads, the reducer (on the caller's thread, or on its own while the
//! caller watches the deadline), all in one `std::thread::scope`. The caller's token needs
//! no watcher: the call's stop signal is its child, raised by the token's cancel itself.
//!
//! Workers start as they are needed: one at first, and each worker that takes a batch
//! while no other worker waits for one starts another (up to `workers`). So some worker is
//! always waiting while the count is below `workers`, and a queued batch never waits for a
//! thread that is not there, while a call with three items starts four threads, not
//! `workers` (up to [`MAX_WORKERS`](crate::MAX_WORKERS) = 4096 of them).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use parking_lot::Mutex;

use super::{Outputs, Source, Writer};
use crate::Options;
use crate::StopError;
use crate::cancel::Cancel;
use crate::metrics::{Outcome, Run, Tally};

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

/// Runs the pipeline to its end; re-raises the first panic after every thread is joined
/// (counted in `metrics` first); returns the first stop, if any. The caller counts the
/// other outcomes.
pub(super) fn run<T, U, E, G, M, R>(
    opts: &Options,
    metrics: &mut Run,
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
        cancel: Cancel::new(opts.token.as_ref()),
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

    let mapped = metrics.mapped();
    let pool = Pool {
        shared: &shared,
        mapper: &mapper,
        mapped: &mapped,
        pace: &map_nanos,
        max: workers,
        started: AtomicUsize::new(1),
        waiting: AtomicUsize::new(0),
    };

    std::thread::scope(|s| {
        let shared = &shared;
        let pool = &pool;
        let mut handles = Vec::with_capacity(3);
        // Workers started by workers send their handles here, for the caller to join.
        let (started_tx, started_rx) = unbounded();

        // The first worker; the others start as batches need them (see the module docs).
        let first = Hands {
            rx: src_rx,
            tx: out_tx,
            alive: alive_tx.clone(),
            started: started_tx,
        };
        handles.push(s.spawn(move || pool.work(s, first)));

        // With no deadline to watch the caller's thread would only wait: it runs the
        // reducer itself, one thread fewer to start per call.
        let watching = opts.deadline.is_some();
        let mut inline_reducer = None;
        match reducer {
            Some(reducer) if watching => {
                let alive = alive_tx.clone();
                let reduced = metrics.reduced();
                handles.push(s.spawn(move || {
                    let _alive = alive;
                    reduce_with(shared, reducer, out_rx, reduced);
                }));
            }
            Some(reducer) => inline_reducer = Some((reducer, out_rx)),
            None => drop(out_rx),
        }

        let alive = alive_tx.clone();
        let source_pace = Arc::clone(&map_nanos);
        let generated = metrics.generated();
        handles.push(s.spawn(move || {
            let _alive = alive;
            let done = shared.cancel.done().clone();
            let source = Source::new(src_tx, done, workers, source_pace, generated);
            match catch_unwind(AssertUnwindSafe(|| generate(&source))) {
                Ok(()) => source.finish(),
                Err(payload) => shared.record_panic(payload),
            }
        }));
        drop(alive_tx);

        if let Some((reducer, out_rx)) = inline_reducer {
            reduce_with(shared, reducer, out_rx, metrics.reduced());
        }
        watch(opts, &shared.cancel, &alive_rx);
        // Every stage catches its own panic, so a join never fails; joining here (not at
        // the end of the scope) waits for the threads themselves to exit. A worker being
        // joined may have started another: join until none is left.
        for h in handles {
            let _ = h.join();
        }
        // Ends once every worker, holding a sender, has ended.
        for h in started_rx {
            let _ = h.join();
        }
    });

    if let Some(payload) = shared.panic.into_inner() {
        metrics.finish(Outcome::Panic);
        resume_unwind(payload);
    }
    shared.cancel.take_reason()
}

/// Runs the reducer over the collector, catching its panic; its return stops dispatch.
fn reduce_with<U, E, R>(shared: &Shared<E>, reducer: R, out_rx: Receiver<Vec<U>>, reduced: Tally)
where
    R: FnOnce(Outputs<U>, &Cancel<E>),
{
    let outputs = Outputs::new(out_rx, shared.cancel.done().clone(), reduced);
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

/// A worker's ends of the channels: clones of these start the next worker.
struct Hands<'scope, T, U> {
    rx: Receiver<Vec<T>>,
    tx: Sender<Vec<U>>,
    /// Never sent on; held so that the caller sees when every stage has ended.
    alive: Sender<()>,
    /// Where a worker this one starts goes, for the caller to join.
    started: Sender<ScopedJoinHandle<'scope, ()>>,
}

impl<T, U> Clone for Hands<'_, T, U> {
    fn clone(&self) -> Self {
        Hands {
            rx: self.rx.clone(),
            tx: self.tx.clone(),
            alive: self.alive.clone(),
            started: self.started.clone(),
        }
    }
}

/// The workers of one call: what they share, and how many there are.
struct Pool<'a, E, M> {
    shared: &'a Shared<E>,
    mapper: &'a M,
    /// Where this call's mapped items are counted (each worker forks a tally).
    mapped: &'a Tally,
    pace: &'a AtomicU64,
    /// The most workers (`opts.workers`).
    max: usize,
    /// Workers started so far (the first one included).
    started: AtomicUsize,
    /// Workers waiting for a batch.
    waiting: AtomicUsize,
}

impl<E, M> Pool<'_, E, M> {
    /// One worker: pulls batches of items until the source ends or the call stops, and
    /// starts another worker when it takes a batch while none is waiting.
    fn work<'scope, 'env, T, U>(
        &'scope self,
        s: &'scope Scope<'scope, 'env>,
        hands: Hands<'scope, T, U>,
    ) where
        T: Send + 'scope,
        U: Send + 'scope,
        E: Send,
        M: Fn(T, &Writer<U>, &Cancel<E>) + Sync,
    {
        let shared = self.shared;
        let done = shared.cancel.done();
        let writer = Writer::collector(hands.tx.clone(), done.clone());
        let rx = hands.rx.clone();
        // Dropped when this worker ends: its ends of the channels, alive included.
        let mut spare = Some(hands);
        // Mappers that returned; flushed per batch, and when the worker ends.
        let mut mapped = self.mapped.fork();
        let r = catch_unwind(AssertUnwindSafe(|| {
            while !done.is_cancelled() {
                self.waiting.fetch_add(1, Ordering::AcqRel);
                let batch = rx.recv();
                let others_waiting = self.waiting.fetch_sub(1, Ordering::AcqRel) > 1;
                let Ok(batch) = batch else { break };
                if !others_waiting && !done.is_cancelled() {
                    self.grow(s, &mut spare);
                }
                let (len, start) = (batch.len() as u64, Instant::now());
                for item in batch {
                    // No mapper starts once the call is stopping; the rest of the batch is
                    // dropped with the iterator.
                    if done.is_cancelled() {
                        break;
                    }
                    (self.mapper)(item, &writer, &shared.cancel);
                    mapped.one();
                }
                mapped.flush();
                writer.flush();
                // The generator sizes its batches from this (including any wait on a full
                // collector: a slow reducer makes mapping slow too).
                let nanos = start.elapsed().as_nanos() as u64 / len.max(1);
                self.pace.store(nanos.max(1), Ordering::Relaxed);
            }
        }));
        if let Err(payload) = r {
            shared.record_panic(payload);
        }
    }

    /// Starts one more worker with `spare` (this worker's channel ends, cloned again for
    /// the next time), unless `max` are running. A thread the system refuses is not fatal:
    /// the workers already running carry on.
    fn grow<'scope, 'env, T, U>(
        &'scope self,
        s: &'scope Scope<'scope, 'env>,
        spare: &mut Option<Hands<'scope, T, U>>,
    ) where
        T: Send + 'scope,
        U: Send + 'scope,
        E: Send,
        M: Fn(T, &Writer<U>, &Cancel<E>) + Sync,
    {
        let Some(hands) = spare.as_ref() else { return };
        let reserved = self
            .started
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            // All started: nothing to start again, so let go of the spare ends early.
            return;
        }
        let next = hands.clone();
        let started = hands.started.clone();
        match std::thread::Builder::new().spawn_scoped(s, move || self.work(s, next)) {
            // The caller joins it; if the caller's end is gone the scope still does.
            Ok(handle) => drop(started.send(handle)),
            Err(_) => {
                self.started.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// On the caller's thread, until every stage has ended: turns the deadline into a stop.
fn watch<E>(opts: &Options, cancel: &Cancel<E>, alive: &Receiver<()>) {
    let Some(deadline) = opts.deadline else {
        return;
    };
    loop {
        if cancel.is_cancelled() {
            // Already stopping (or the reducer returned): nothing left to watch.
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            cancel.stop(StopError::DeadlineExceeded);
            return;
        }
        if let Err(RecvTimeoutError::Disconnected) = alive.recv_timeout(deadline - now) {
            return;
        }
    }
}
