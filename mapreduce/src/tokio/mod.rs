//! The async flavour on tokio: the same generate → map → reduce pipeline as go-zero's
//! `mr`, with futures for stages.
//!
//! - [`map_reduce`], [`map_reduce_void`], [`for_each`], [`map_reduce_stream`] run every
//!   stage **inside the caller's task**: up to `workers` mapper futures are polled
//!   together with the generator and the reducer (no task per item, no spawn at all), so
//!   the cost per item is a few tens of nanoseconds. Mappers that await I/O or timers
//!   overlap; CPU-heavy mappers do not run in parallel.
//! - [`map_reduce_spawned`], [`map_reduce_void_spawned`], [`for_each_spawned`] spread the
//!   mappers over the runtime's threads: `workers` long-lived tasks pull batches of items
//!   (never a task per item); the generator and the reducer stay in the caller's task.
//! - [`finish`] and [`finish_void`] run futures concurrently; the first error drops the
//!   rest. For a fixed handful of different futures, `tokio::try_join!` says the same in
//!   less (see the crate docs, "When to use tokio instead").
//!
//! Stopping: [`Cancel::cancel`] from a mapper or the reducer, the options' token or its
//! deadline stop the call at once: [`Source::send`] returns `false` from then on, no mapper
//! starts, queued items are dropped, running mapper futures (and the generator and reducer
//! futures) are dropped at their current await point, spawned mapper tasks are aborted,
//! and later writes are discarded. The call returns the first stop's error, even if the
//! reducer had written a value. The reducer of [`map_reduce`] must write exactly once:
//! [`MapReduceError::NoOutput`] / [`MapReduceError::MultipleOutputs`] otherwise. The
//! `_void` forms have no value to write and return only the stop, a [`StopError`];
//! [`finish`] returns its first error itself.
//!
//! Panics: a panic in any stage stops everything the same way, then the first payload is
//! re-raised in the caller with [`std::panic::resume_unwind`]. No task outlives the call:
//! when it returns (or panics) every spawned task has finished, and dropping the call's
//! future drops every stage and aborts the spawned tasks.
//!
//! Channels are bounded (source and outputs: `max(workers, 64)` items in the caller's
//! task, `64 × workers` when spread), so memory stays bounded whatever the input size.
//! A deadline needs tokio's time driver (`enable_time`); it follows `tokio::time::pause`.

mod chan;
mod driver;
mod hub;

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;

pub use chan::{Outputs, Sending, Source, Write, Writer};

use crate::first::FirstError;
use crate::metrics::{Flavour, Outcome, Run};
use crate::{Cancel, MapReduceError, Options, StopError};
use driver::{BATCH, Local, Reduced, Spread, local_cap, run};

/// Generates items, maps them on at most `opts.workers` concurrent mapper futures, and
/// reduces the outputs to one value, all inside the caller's task.
///
/// - `generate(source)`: sends the items (`source.send(item).await` is `false` once the
///   call is stopping: return then).
/// - `mapper(item, writer, cancel)`: `writer.write(u).await` feeds the reducer.
/// - `reducer(outputs, writer, cancel)`: reads the outputs in arrival order and writes
///   the result exactly once.
///
/// Any of them may call `cancel.cancel(Some(e))` (the call returns
/// [`MapReduceError::Cancelled(e)`](MapReduceError::Cancelled)).
///
/// ```
/// use keel_mapreduce::{tokio as mr, Options};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sum = mr::map_reduce(
///     |source| async move {
///         for i in 1..=4u64 {
///             if !source.send(i).await {
///                 return;
///             }
///         }
///     },
///     |i, writer, _cancel: keel_mapreduce::Cancel<String>| async move { writer.write(i * i).await },
///     |mut outputs, writer, _cancel| async move {
///         let mut sum = 0;
///         while let Some(v) = outputs.recv().await {
///             sum += v;
///         }
///         writer.write(sum).await;
///     },
///     Options::new().workers(4),
/// )
/// .await;
/// assert_eq!(sum, Ok(30));
/// # }
/// ```
pub async fn map_reduce<T, U, V, E, G, GF, M, MF, R, RF>(
    generate: G,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<V, MapReduceError<E>>
where
    G: FnOnce(Source<T>) -> GF,
    GF: Future<Output = ()>,
    M: Fn(T, Writer<U>, Cancel<E>) -> MF,
    MF: Future<Output = ()>,
    R: FnOnce(Outputs<U>, Writer<V>, Cancel<E>) -> RF,
    RF: Future<Output = ()>,
{
    let mut metrics = Run::start(&opts, Flavour::Tokio);
    let result = match local(&mut metrics, generate, mapper, reducer, opts).await {
        Ok(reduced) => reduced.into_value(),
        Err(stop) => Err(stop.into()),
    };
    metrics.finish(Outcome::of_result(&result));
    result
}

/// The pipeline with the mappers polled in the caller's task.
async fn local<T, U, V, E, G, GF, M, MF, R, RF>(
    metrics: &mut Run,
    generate: G,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<Reduced<V>, StopError<E>>
where
    G: FnOnce(Source<T>) -> GF,
    GF: Future<Output = ()>,
    M: Fn(T, Writer<U>, Cancel<E>) -> MF,
    MF: Future<Output = ()>,
    R: FnOnce(Outputs<U>, Writer<V>, Cancel<E>) -> RF,
    RF: Future<Output = ()>,
{
    let cap = local_cap(opts.workers);
    run(
        metrics,
        generate,
        move |hub, parts, workers| Local::new(hub, mapper, parts, workers),
        reducer,
        opts,
        cap,
    )
    .await
}

/// [`map_reduce`] whose reducer returns nothing: `Ok(())` unless the call was stopped.
///
/// The error is a [`StopError`] (the first stop): with no value to write, the reducer
/// cannot miss its output or write twice (go-zero's `MapReduceVoid` maps
/// `ErrReduceNoOutput` to nil for the same reason).
///
/// ```
/// use keel_mapreduce::{tokio as mr, Options, StopError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let r = mr::map_reduce_void(
///     |source| async move {
///         for i in 0..10 {
///             if !source.send(i).await {
///                 return;
///             }
///         }
///     },
///     |i, writer, cancel| async move {
///         if i == 3 {
///             cancel.cancel(Some("three"));
///         }
///         writer.write(i).await;
///     },
///     |mut outputs, _cancel| async move { while outputs.recv().await.is_some() {} },
///     Options::new(),
/// )
/// .await;
/// assert_eq!(r, Err(StopError::Cancelled("three")));
/// # }
/// ```
pub async fn map_reduce_void<T, U, E, G, GF, M, MF, R, RF>(
    generate: G,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<(), StopError<E>>
where
    G: FnOnce(Source<T>) -> GF,
    GF: Future<Output = ()>,
    M: Fn(T, Writer<U>, Cancel<E>) -> MF,
    MF: Future<Output = ()>,
    R: FnOnce(Outputs<U>, Cancel<E>) -> RF,
    RF: Future<Output = ()>,
{
    let mut metrics = Run::start(&opts, Flavour::Tokio);
    // The call ends when the reducer returns; no value is written or looked at.
    let result = local(
        &mut metrics,
        generate,
        mapper,
        move |outputs, _nothing: Writer<()>, cancel| reducer(outputs, cancel),
        opts,
    )
    .await
    .map(drop);
    metrics.finish(Outcome::of_stopped(&result));
    result
}

/// Runs `f` on every generated item, at most `opts.workers` at once, inside the caller's
/// task. Returns once every item is done, or at once when the options' token or deadline
/// stops it (then the remaining items are dropped). Nothing is reported.
///
/// ```
/// use keel_mapreduce::{tokio as mr, Options};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let seen = AtomicUsize::new(0);
/// mr::for_each(
///     |source| async move {
///         for i in 0..100 {
///             source.send(i).await;
///         }
///     },
///     |_i| async { seen.fetch_add(1, Ordering::Relaxed); },
///     Options::new().workers(8),
/// )
/// .await;
/// assert_eq!(seen.load(Ordering::Relaxed), 100);
/// # }
/// ```
pub async fn for_each<T, G, GF, M, MF>(generate: G, f: M, opts: Options)
where
    G: FnOnce(Source<T>) -> GF,
    GF: Future<Output = ()>,
    M: Fn(T) -> MF,
    MF: Future<Output = ()>,
{
    let _ = map_reduce_void::<T, (), Infallible, _, _, _, _, _, _>(
        generate,
        |item, _writer, _cancel| f(item),
        |mut outputs, _cancel| async move { while outputs.recv().await.is_some() {} },
        opts,
    )
    .await;
}

/// [`map_reduce`] for callers that already have a [`Stream`](futures_core::Stream) of
/// items: the stream is the generator (it is not polled any more once the call stops).
///
/// ```
/// use keel_mapreduce::{tokio as mr, Cancel, Options};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (tx, rx) = tokio::sync::mpsc::channel(4);
/// tokio::spawn(async move {
///     for i in 1..=4u32 {
///         tx.send(i).await.unwrap();
///     }
/// });
/// let items = futures_stream(rx);
/// let sum = mr::map_reduce_stream(
///     items,
///     |i, w, _c: Cancel<()>| async move { w.write(i * i).await },
///     |mut out, w, _c| async move {
///         let mut s = 0;
///         while let Some(v) = out.recv().await {
///             s += v;
///         }
///         w.write(s).await;
///     },
///     Options::new(),
/// )
/// .await;
/// assert_eq!(sum, Ok(30));
/// # }
/// # // A minimal Stream over an mpsc receiver (tokio-stream's ReceiverStream does this).
/// # fn futures_stream(mut rx: tokio::sync::mpsc::Receiver<u32>) -> impl futures_core::Stream<Item = u32> {
/// #     struct S(tokio::sync::mpsc::Receiver<u32>);
/// #     impl futures_core::Stream for S {
/// #         type Item = u32;
/// #         fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<u32>> {
/// #             self.0.poll_recv(cx)
/// #         }
/// #     }
/// #     S(rx)
/// # }
/// ```
pub async fn map_reduce_stream<S, U, V, E, M, MF, R, RF>(
    stream: S,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<V, MapReduceError<E>>
where
    S: futures_core::Stream,
    M: Fn(S::Item, Writer<U>, Cancel<E>) -> MF,
    MF: Future<Output = ()>,
    R: FnOnce(Outputs<U>, Writer<V>, Cancel<E>) -> RF,
    RF: Future<Output = ()>,
{
    map_reduce(
        |source| async move {
            let mut stream = pin!(stream);
            while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                if !source.send(item).await {
                    return;
                }
            }
        },
        mapper,
        reducer,
        opts,
    )
    .await
}

/// go-zero's `Finish` on futures: runs them concurrently (all at once) inside the caller's
/// task; `Ok(())` if all succeed, else the first error, as it is, and the other futures
/// are dropped.
///
/// `Err(e)` is the error of the future that failed first: `finish` takes no deadline or
/// token, so a failing future is its only way to stop. For a fixed handful of different
/// futures, `tokio::try_join!` is shorter and keeps each one's output; `finish` is for a
/// list of one future type built at run time (see the crate docs, "When to use tokio
/// instead").
///
/// ```
/// use keel_mapreduce::tokio as mr;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// async fn fetch(id: u32) -> Result<(), String> {
///     if id == 3 { Err(format!("{id}: not found")) } else { Ok(()) }
/// }
/// assert_eq!(mr::finish((1..=2).map(fetch)).await, Ok(()));
/// assert_eq!(mr::finish((1..=4).map(fetch)).await, Err("3: not found".to_owned()));
/// # }
/// ```
pub async fn finish<I, F, E>(futures: I) -> Result<(), E>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<(), E>>,
{
    let futures: Vec<F> = futures.into_iter().collect();
    if futures.is_empty() {
        return Ok(());
    }
    let workers = futures.len();
    let first = FirstError::new();
    let record = &first;
    let opts = Options::new().workers(workers);
    let mut metrics = Run::start(&opts, Flavour::Tokio);
    // The call stops only through the `cancel(None)` below, right after an error was
    // recorded: its stop reason says nothing the slot does not.
    let _stopped_after_an_error = local::<F, (), (), Infallible, _, _, _, _, _, _>(
        &mut metrics,
        |source| async move {
            for f in futures {
                if !source.send(f).await {
                    return;
                }
            }
        },
        |f, _writer, cancel| async move {
            if let Err(e) = f.await {
                record.record(e);
                cancel.cancel(None);
            }
        },
        |mut outputs, _nothing: Writer<()>, _cancel| async move {
            while outputs.recv().await.is_some() {}
        },
        opts,
    )
    .await;
    let result = first.into_result();
    metrics.finish(Outcome::of_finish(&result));
    result
}

/// Runs the futures concurrently (all at once) inside the caller's task and returns once
/// all are done.
///
/// ```
/// use keel_mapreduce::tokio as mr;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let total = AtomicU32::new(0);
/// let add = |n| {
///     let total = &total;
///     async move { total.fetch_add(n, Ordering::Relaxed); }
/// };
/// mr::finish_void(vec![add(2), add(3), add(5)]).await;
/// assert_eq!(total.load(Ordering::Relaxed), 10);
/// # }
/// ```
pub async fn finish_void<I, F>(futures: I)
where
    I: IntoIterator<Item = F>,
    F: Future<Output = ()>,
{
    let futures: Vec<F> = futures.into_iter().collect();
    if futures.is_empty() {
        return;
    }
    let workers = futures.len();
    for_each(
        |source| async move {
            for f in futures {
                if !source.send(f).await {
                    return;
                }
            }
        },
        |f| f,
        Options::new().workers(workers),
    )
    .await;
}

/// [`map_reduce`] with the mappers spread over the runtime's threads: `opts.workers`
/// long-lived tasks pull batches of items (up to 64 at once, a fair share of what is
/// queued) and run the mapper on each in turn. The generator and the reducer run in the
/// caller's task. Use it when the mappers do CPU work worth parallelising on a
/// multi-thread runtime. Must run inside a tokio runtime.
///
/// ```
/// use keel_mapreduce::{tokio as mr, Cancel, Options};
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() {
/// let sum = mr::map_reduce_spawned(
///     |source| async move {
///         for i in 0..1000u64 {
///             if !source.send(i).await {
///                 return;
///             }
///         }
///     },
///     |i, w, _c: Cancel<()>| async move { w.write(2 * i).await },
///     |mut out, w, _c| async move {
///         let mut s = 0;
///         while let Some(v) = out.recv().await {
///             s += v;
///         }
///         w.write(s).await;
///     },
///     Options::new().workers(2),
/// )
/// .await;
/// assert_eq!(sum, Ok(999 * 1000));
/// # }
/// ```
pub async fn map_reduce_spawned<T, U, V, E, G, GF, M, MF, R, RF>(
    generate: G,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<V, MapReduceError<E>>
where
    T: Send + 'static,
    U: Send + 'static,
    E: Send + 'static,
    G: FnOnce(Source<T>) -> GF,
    GF: Future<Output = ()>,
    M: Fn(T, Writer<U>, Cancel<E>) -> MF + Send + Sync + 'static,
    MF: Future<Output = ()> + Send + 'static,
    R: FnOnce(Outputs<U>, Writer<V>, Cancel<E>) -> RF,
    RF: Future<Output = ()>,
{
    let mut metrics = Run::start(&opts, Flavour::Tokio);
    let result = match spread(&mut metrics, generate, mapper, reducer, opts).await {
        Ok(reduced) => reduced.into_value(),
        Err(stop) => Err(stop.into()),
    };
    metrics.finish(Outcome::of_result(&result));
    result
}

/// The pipeline with the mappers on `opts.workers` spawned tasks.
async fn spread<T, U, V, E, G, GF, M, MF, R, RF>(
    metrics: &mut Run,
    generate: G,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<Reduced<V>, StopError<E>>
where
    T: Send + 'static,
    U: Send + 'static,
    E: Send + 'static,
    G: FnOnce(Source<T>) -> GF,
    GF: Future<Output = ()>,
    M: Fn(T, Writer<U>, Cancel<E>) -> MF + Send + Sync + 'static,
    MF: Future<Output = ()> + Send + 'static,
    R: FnOnce(Outputs<U>, Writer<V>, Cancel<E>) -> RF,
    RF: Future<Output = ()>,
{
    let cap = opts.workers.saturating_mul(BATCH);
    run(
        metrics,
        generate,
        move |hub, parts, workers| Spread::new(hub, mapper, parts, workers),
        reducer,
        opts,
        cap,
    )
    .await
}

/// [`map_reduce_void`] with the mappers spread over the runtime's threads (see
/// [`map_reduce_spawned`]); the error is the first stop, a [`StopError`].
pub async fn map_reduce_void_spawned<T, U, E, G, GF, M, MF, R, RF>(
    generate: G,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<(), StopError<E>>
where
    T: Send + 'static,
    U: Send + 'static,
    E: Send + 'static,
    G: FnOnce(Source<T>) -> GF,
    GF: Future<Output = ()>,
    M: Fn(T, Writer<U>, Cancel<E>) -> MF + Send + Sync + 'static,
    MF: Future<Output = ()> + Send + 'static,
    R: FnOnce(Outputs<U>, Cancel<E>) -> RF,
    RF: Future<Output = ()>,
{
    let mut metrics = Run::start(&opts, Flavour::Tokio);
    // The call ends when the reducer returns; no value is written or looked at.
    let result = spread(
        &mut metrics,
        generate,
        mapper,
        move |outputs, _nothing: Writer<()>, cancel| reducer(outputs, cancel),
        opts,
    )
    .await
    .map(drop);
    metrics.finish(Outcome::of_stopped(&result));
    result
}

/// [`for_each`] with `f` run on `opts.workers` spawned tasks (see [`map_reduce_spawned`]).
pub async fn for_each_spawned<T, G, GF, M, MF>(generate: G, f: M, opts: Options)
where
    T: Send + 'static,
    G: FnOnce(Source<T>) -> GF,
    GF: Future<Output = ()>,
    M: Fn(T) -> MF + Send + Sync + 'static,
    MF: Future<Output = ()> + Send + 'static,
{
    let _ = map_reduce_void_spawned::<T, (), Infallible, _, _, _, _, _, _>(
        generate,
        move |item, _writer, _cancel| f(item),
        |mut outputs, _cancel| async move { while outputs.recv().await.is_some() {} },
        opts,
    )
    .await;
}
