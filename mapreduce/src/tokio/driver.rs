//! The state machine behind every call: it polls the generator, the mappers (through an
//! [`Exec`]) and the reducer inside the caller's task, watches the stop signal (the caller's
//! token raises it itself) and the deadline,
//! and turns the first stop or panic into the call's outcome.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tokio::task::JoinSet;

use super::chan::{Chan, OutSlot, Outputs, Source, Writer};
use super::hub::{Hub, Stage};
use crate::metrics::{Outcome as RunOutcome, Run, Tally};
use crate::{Cancel, MapReduceError, Options, StopError};

pub(super) type Payload = Box<dyn Any + Send + 'static>;
type Outcome<V, E> = Result<Result<Reduced<V>, StopError<E>>, Payload>;

/// What the reducer wrote, when the call ran to its end without a stop.
pub(super) struct Reduced<V> {
    /// The first write's value (taken away by a second write).
    value: Option<V>,
    writes: usize,
}

impl<V> Reduced<V> {
    /// The value of a reducer that wrote exactly once: go-zero's `MapReduce` rule.
    pub(super) fn into_value<E>(self) -> Result<V, MapReduceError<E>> {
        match (self.writes, self.value) {
            (0, _) => Err(MapReduceError::NoOutput),
            (1, Some(v)) => Ok(v),
            _ => Err(MapReduceError::MultipleOutputs),
        }
    }
}

const GEN: usize = 0;
const RED: usize = 1;
const DISPATCH: usize = 2;
const FIRST_SLOT: usize = 3;

/// Rounds of the driver loop in one poll before it yields to the runtime.
const YIELD_ROUNDS: u32 = 64;

/// Items a spread worker takes at once, at most.
pub(super) const BATCH: usize = 64;

/// Capacity of the source and the collector when the mappers run in the caller's task.
pub(super) fn local_cap(workers: usize) -> usize {
    workers.max(64)
}

/// How the mappers run.
pub(super) trait Exec {
    /// Polls the stage with this index (>= `FIRST_SLOT`); `true` if something finished.
    fn poll_stage(&mut self, index: usize, panic: &mut Option<Payload>);
    /// Starts mappers for available items; `true` if any started.
    fn dispatch(&mut self, panic: &mut Option<Payload>) -> bool;
    /// No mapper is running and none will start (the source ended).
    fn idle(&self) -> bool;
    /// Stops every mapper (dropped, or aborted).
    fn shutdown(&mut self);
    /// After `shutdown`: ready once no mapper task is left.
    fn poll_gone(&mut self, cx: &mut Context<'_>, panic: &mut Option<Payload>) -> Poll<()>;
}

fn record(panic: &mut Option<Payload>, p: Payload) {
    if panic.is_none() {
        *panic = Some(p);
    }
}

// ---------------------------------------------------------------------------------------
// Mappers inside the caller's task: `workers` reusable pinned slots.

struct Slot<F> {
    fut: Pin<Box<Option<F>>>,
    stage: Stage,
}

impl<F: Future<Output = ()>> Slot<F> {
    /// Polls the slot's future; `true` if the slot is free afterwards.
    fn poll(&mut self, panic: &mut Option<Payload>) -> bool {
        let fut = &mut self.fut;
        let waker = &self.stage.waker;
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mut cx = Context::from_waker(waker);
            match fut.as_mut().as_pin_mut() {
                None => true,
                Some(f) => match f.poll(&mut cx) {
                    Poll::Ready(()) => {
                        fut.as_mut().set(None);
                        true
                    }
                    Poll::Pending => false,
                },
            }
        }));
        match r {
            Ok(free) => free,
            Err(p) => {
                record(panic, p);
                false
            }
        }
    }
}

pub(super) struct Local<T, U, E, M, F> {
    mapper: M,
    source: Arc<Chan<T>>,
    writer: Writer<U>,
    cancel: Cancel<E>,
    pending: VecDeque<T>,
    cap: usize,
    source_ended: bool,
    dispatch: Stage,
    slots: Vec<Slot<F>>,
    free: Vec<usize>,
    /// Mapper futures that completed.
    mapped: Tally,
}

impl<T, U, E, M, F> Local<T, U, E, M, F>
where
    M: Fn(T, Writer<U>, Cancel<E>) -> F,
    F: Future<Output = ()>,
{
    pub(super) fn new(hub: &Arc<Hub>, mapper: M, parts: &Parts<T, U, E>, workers: usize) -> Self {
        Local {
            mapper,
            source: Arc::clone(&parts.source),
            writer: Writer::chan(Arc::clone(&parts.collector)),
            cancel: parts.cancel.clone(),
            pending: VecDeque::new(),
            cap: local_cap(workers),
            source_ended: false,
            dispatch: hub.stage(DISPATCH, false),
            slots: (0..workers)
                .map(|i| Slot {
                    fut: Box::pin(None),
                    stage: hub.stage(FIRST_SLOT + i, false),
                })
                .collect(),
            free: (0..workers).rev().collect(),
            mapped: parts.mapped.fork(),
        }
    }
}

impl<T, U, E, M, F> Exec for Local<T, U, E, M, F>
where
    M: Fn(T, Writer<U>, Cancel<E>) -> F,
    F: Future<Output = ()>,
{
    fn poll_stage(&mut self, index: usize, panic: &mut Option<Payload>) {
        if index == DISPATCH {
            return; // `dispatch` runs on every round
        }
        let i = index - FIRST_SLOT;
        let slot = &mut self.slots[i];
        slot.stage.unqueue();
        if slot.fut.is_some() && slot.poll(panic) {
            self.mapped.one();
            self.free.push(i);
        }
    }

    fn dispatch(&mut self, panic: &mut Option<Payload>) -> bool {
        let mut started = false;
        while let Some(&i) = self.free.last() {
            if self.pending.is_empty() {
                if self.source_ended {
                    break;
                }
                let mut cx = Context::from_waker(&self.dispatch.waker);
                match self
                    .source
                    .poll_recv(&mut cx, &mut self.pending, 1, self.cap)
                {
                    Poll::Ready(true) => {}
                    Poll::Ready(false) => {
                        self.source_ended = true;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            let Some(item) = self.pending.pop_front() else {
                break;
            };
            self.free.pop();
            started = true;
            let slot = &mut self.slots[i];
            let (mapper, writer, cancel) = (&self.mapper, &self.writer, &self.cancel);
            let made = catch_unwind(AssertUnwindSafe(|| {
                slot.fut
                    .as_mut()
                    .set(Some(mapper(item, writer.clone(), cancel.clone())));
            }));
            if let Err(p) = made {
                record(panic, p);
                return true;
            }
            if slot.poll(panic) {
                self.mapped.one();
                self.free.push(i);
            }
            if panic.is_some() || self.cancel.is_cancelled() {
                break;
            }
        }
        started
    }

    fn idle(&self) -> bool {
        self.source_ended && self.pending.is_empty() && self.free.len() == self.slots.len()
    }

    fn shutdown(&mut self) {
        self.pending.clear();
        for s in &mut self.slots {
            let _ = catch_unwind(AssertUnwindSafe(|| s.fut.as_mut().set(None)));
        }
    }

    fn poll_gone(&mut self, _: &mut Context<'_>, _: &mut Option<Payload>) -> Poll<()> {
        Poll::Ready(())
    }
}

// ---------------------------------------------------------------------------------------
// Mappers on `workers` long-lived spawned tasks pulling batches.

pub(super) struct Spread {
    set: JoinSet<()>,
    stage: Stage,
}

impl Spread {
    pub(super) fn new<T, U, E, M, F>(
        hub: &Arc<Hub>,
        mapper: M,
        parts: &Parts<T, U, E>,
        workers: usize,
    ) -> Self
    where
        T: Send + 'static,
        U: Send + 'static,
        E: Send + 'static,
        M: Fn(T, Writer<U>, Cancel<E>) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let mapper = Arc::new(mapper);
        let mut set = JoinSet::new();
        for _ in 0..workers {
            let source = Arc::clone(&parts.source);
            let writer = Writer::chan(Arc::clone(&parts.collector));
            let cancel = parts.cancel.clone();
            let mapper = Arc::clone(&mapper);
            // Flushed after each batch, and when the task ends or is aborted (dropped).
            let mut mapped = parts.mapped.fork();
            set.spawn(async move {
                let mut batch = VecDeque::with_capacity(BATCH);
                loop {
                    mapped.flush();
                    let more =
                        std::future::poll_fn(|cx| source.poll_recv(cx, &mut batch, workers, BATCH))
                            .await;
                    if !more {
                        return;
                    }
                    while let Some(item) = batch.pop_front() {
                        if cancel.is_cancelled() {
                            return;
                        }
                        mapper(item, writer.clone(), cancel.clone()).await;
                        mapped.one();
                        ::tokio::task::consume_budget().await;
                    }
                }
            });
        }
        Spread {
            set,
            stage: hub.stage(FIRST_SLOT, true),
        }
    }

    fn reap(&mut self, cx: &mut Context<'_>, panic: &mut Option<Payload>) -> Poll<()> {
        loop {
            match self.set.poll_join_next(cx) {
                Poll::Ready(Some(Ok(()))) => {}
                Poll::Ready(Some(Err(e))) => {
                    if e.is_panic() {
                        record(panic, e.into_panic());
                    }
                }
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Exec for Spread {
    fn poll_stage(&mut self, _: usize, panic: &mut Option<Payload>) {
        self.stage.unqueue();
        let waker = self.stage.waker.clone();
        let _ = self.reap(&mut Context::from_waker(&waker), panic);
    }

    fn dispatch(&mut self, _: &mut Option<Payload>) -> bool {
        false
    }

    fn idle(&self) -> bool {
        self.set.is_empty()
    }

    fn shutdown(&mut self) {
        self.set.abort_all();
    }

    fn poll_gone(&mut self, cx: &mut Context<'_>, panic: &mut Option<Payload>) -> Poll<()> {
        self.reap(cx, panic)
    }
}

// ---------------------------------------------------------------------------------------
// The driver.

/// The queues and the cancel handle every stage shares.
pub(super) struct Parts<T, U, E> {
    source: Arc<Chan<T>>,
    collector: Arc<Chan<U>>,
    cancel: Cancel<E>,
    /// Forked by every mapper executor (never counts itself).
    mapped: Tally,
}

enum Why {
    /// Any stop, the caller's token included (the call's stop signal is its child).
    Done,
    Deadline,
}

type BoxFut<O> = Pin<Box<dyn Future<Output = O> + Send>>;

pub(super) struct Driver<T, U, V, E, GF, RF, X> {
    hub: Arc<Hub>,
    parts: Parts<T, U, E>,
    out: Arc<OutSlot<V>>,
    gen_fut: Option<Pin<Box<GF>>>,
    gen_stage: Stage,
    red_fut: Option<Pin<Box<RF>>>,
    red_stage: Stage,
    stopper: Option<BoxFut<Why>>,
    exec: X,
    ready: Vec<usize>,
    panic: Option<Payload>,
    collector_finished: bool,
    draining: bool,
}

fn stopper(opts: &Options, done: crate::CancelToken) -> BoxFut<Why> {
    let deadline = opts.deadline.map(::tokio::time::Instant::from_std);
    Box::pin(async move {
        let deadline_fut = async {
            match deadline {
                Some(d) => ::tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        ::tokio::select! {
            biased;
            _ = done.cancelled() => Why::Done,
            _ = deadline_fut => Why::Deadline,
        }
    })
}

/// Builds the shared parts and the stages, then drives them to the outcome: the first stop,
/// or what the reducer wrote (the call ends when the reducer returns). A panic is counted
/// in `metrics` before it is re-raised; the caller counts the other outcomes.
pub(super) async fn run<T, U, V, E, G, GF, R, RF, X>(
    metrics: &mut Run,
    generate: G,
    make_exec: impl FnOnce(&Arc<Hub>, &Parts<T, U, E>, usize) -> X,
    reducer: R,
    opts: Options,
    cap: usize,
) -> Result<Reduced<V>, StopError<E>>
where
    G: FnOnce(Source<T>) -> GF,
    GF: Future<Output = ()>,
    R: FnOnce(Outputs<U>, Writer<V>, Cancel<E>) -> RF,
    RF: Future<Output = ()>,
    X: Exec,
{
    let cancel = Cancel::new(opts.token.as_ref());
    let parts = Parts {
        source: Arc::new(Chan::new(cap, metrics.generated(), cancel.done().clone())),
        collector: Arc::new(Chan::new(cap, Tally::none(), cancel.done().clone())),
        cancel: cancel.clone(),
        mapped: metrics.mapped(),
    };
    let reduced = metrics.reduced();
    let out = Arc::new(OutSlot {
        state: parking_lot::Mutex::new((None, 0)),
        done: cancel.done().clone(),
    });
    let hub = Hub::new();
    let workers = opts.workers;
    let stop = stopper(&opts, cancel.done().clone());
    let mut driver = Driver {
        gen_stage: hub.stage(GEN, true),
        red_stage: hub.stage(RED, true),
        exec: make_exec(&hub, &parts, workers),
        gen_fut: None,
        red_fut: None,
        stopper: Some(stop),
        ready: Vec::new(),
        panic: None,
        collector_finished: false,
        draining: false,
        out,
        parts,
        hub,
    };
    // Building the stage futures runs user code: a panic there surfaces like any other.
    let built = catch_unwind(AssertUnwindSafe(|| {
        let g = generate(Source {
            chan: Arc::clone(&driver.parts.source),
        });
        let r = reducer(
            Outputs::new(Arc::clone(&driver.parts.collector), reduced),
            Writer::out(Arc::clone(&driver.out)),
            cancel.clone(),
        );
        (Box::pin(g), Box::pin(r))
    }));
    match built {
        Ok((g, r)) => {
            driver.gen_fut = Some(g);
            driver.red_fut = Some(r);
        }
        Err(p) => driver.panic = Some(p),
    }
    match std::future::poll_fn(|cx| driver.poll(cx)).await {
        Ok(r) => r,
        Err(p) => {
            drop(driver);
            metrics.finish(RunOutcome::Panic);
            std::panic::resume_unwind(p)
        }
    }
}

impl<T, U, V, E, GF, RF, X> Drop for Driver<T, U, V, E, GF, RF, X> {
    /// Also when the caller drops the call's future: handles held elsewhere (a `Source`
    /// moved into another task, a `Cancel` clone) see the stop.
    fn drop(&mut self) {
        self.parts.cancel.done().cancel();
        self.parts.source.close();
        self.parts.collector.close();
    }
}

impl<T, U, V, E, GF, RF, X> Driver<T, U, V, E, GF, RF, X>
where
    GF: Future<Output = ()>,
    RF: Future<Output = ()>,
    X: Exec,
{
    fn stopping(&self) -> bool {
        self.panic.is_some() || self.parts.cancel.is_cancelled()
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome<V, E>> {
        if self.draining {
            return self.poll_drain(cx);
        }
        self.hub.enter(cx.waker());
        if let Some(s) = &mut self.stopper
            && let Poll::Ready(why) = s.as_mut().poll(cx)
        {
            match why {
                Why::Done => {}
                Why::Deadline => self.parts.cancel.stop(StopError::DeadlineExceeded),
            }
            self.stopper = None;
        }
        let mut ready = std::mem::take(&mut self.ready);
        let mut rounds = 0u32;
        loop {
            if self.stopping() {
                break;
            }
            rounds += 1;
            if rounds > YIELD_ROUNDS {
                // Long synchronous runs give the thread back now and then (and let the
                // deadline be seen): wake ourselves and return.
                self.hub.pause();
                self.ready = ready;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.hub.take_ready(&mut ready);
            let mut progress = !ready.is_empty();
            let mut reduced = false;
            for &index in &ready {
                match index {
                    GEN => self.poll_gen(),
                    RED => reduced = self.poll_red(),
                    _ => self.exec.poll_stage(index, &mut self.panic),
                }
                if reduced || self.stopping() {
                    break;
                }
            }
            ready.clear();
            if reduced || self.stopping() {
                break;
            }
            progress |= self.exec.dispatch(&mut self.panic);
            if self.stopping() {
                break;
            }
            if !self.collector_finished && self.gen_fut.is_none() && self.exec.idle() {
                self.collector_finished = true;
                self.parts.collector.finish();
                progress = true;
            }
            if !progress && self.hub.leave() {
                self.ready = ready;
                return Poll::Pending;
            }
        }
        self.ready = ready;
        self.shutdown();
        self.poll_drain(cx)
    }

    fn poll_gen(&mut self) {
        self.gen_stage.unqueue();
        let Some(g) = &mut self.gen_fut else { return };
        let waker = &self.gen_stage.waker;
        match catch_unwind(AssertUnwindSafe(|| {
            g.as_mut().poll(&mut Context::from_waker(waker))
        })) {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(())) => {
                self.gen_fut = None;
                self.parts.source.finish();
            }
            Err(p) => record(&mut self.panic, p),
        }
    }

    /// `true` once the reducer returned.
    fn poll_red(&mut self) -> bool {
        self.red_stage.unqueue();
        let Some(r) = &mut self.red_fut else {
            return false;
        };
        let waker = &self.red_stage.waker;
        match catch_unwind(AssertUnwindSafe(|| {
            r.as_mut().poll(&mut Context::from_waker(waker))
        })) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(())) => {
                self.red_fut = None;
                true
            }
            Err(p) => {
                record(&mut self.panic, p);
                false
            }
        }
    }

    /// Stops everything: queues closed (pending items dropped, sends refused), the stage
    /// futures dropped, spawned mappers aborted.
    fn shutdown(&mut self) {
        self.draining = true;
        self.parts.cancel.done().cancel();
        self.parts.source.close();
        self.parts.collector.close();
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.gen_fut = None;
        }));
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.red_fut = None;
        }));
        self.exec.shutdown();
        self.stopper = None;
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Outcome<V, E>> {
        if self.exec.poll_gone(cx, &mut self.panic).is_pending() {
            return Poll::Pending;
        }
        self.hub.clear();
        if let Some(p) = self.panic.take() {
            return Poll::Ready(Err(p));
        }
        if let Some(stop) = self.parts.cancel.take_reason() {
            return Poll::Ready(Ok(Err(stop)));
        }
        let (value, writes) = std::mem::take(&mut *self.out.state.lock());
        Poll::Ready(Ok(Ok(Reduced { value, writes })))
    }
}
