//! go-zero's `mr` on OS threads, without a runtime: for CPU-bound work, or wherever a
//! blocking call is fine.
//!
//! Every call runs in one [`std::thread::scope`], so the generator, the mappers and the
//! reducer may borrow from the caller:
//!
//! - the **generator** runs on its own thread and feeds a [`Source`];
//! - up to `workers` long-lived **worker** threads (never one thread per item) pull items
//!   and run the mapper on each; a mapper writes its results to a [`Writer`]. They start
//!   as the items need them: one at first, another whenever a worker takes a batch while
//!   none is left waiting, so a call over three items starts four threads whatever
//!   `workers` says;
//! - the **reducer** reads the mappers' results, in arrival order, from [`Outputs`]: on
//!   the caller's thread, or on a thread of its own when the caller's thread has a
//!   deadline of the [`Options`] to watch (it then turns it into a stop);
//! - the caller joins every thread before returning: **no thread outlives the call**.
//!
//! Items and results travel in batches through bounded crossbeam channels (the source and
//! the collector each hold at most `2 × max(workers, 2)` batches of at most 4096 items and
//! 64 KiB), so memory stays bounded whatever the input size. Batches are sized from the
//! measured time per item (about 50 µs of work each, starting from single items): trivial
//! items cost a few nanoseconds each, while slow items (or a slow generator) travel one by
//! one and are spread over every worker, as in go-zero.
//!
//! # Stopping
//!
//! [`Cancel::cancel`] from a mapper or the reducer, the caller's token and the deadline
//! all stop the whole call: no mapper starts afterwards, queued items are dropped, later
//! mapper writes are discarded, [`Outputs`] ends, [`Source::send`] returns `false`, and
//! the call returns the first stop's error. Mappers already running are not interrupted
//! (they may poll [`Cancel::is_cancelled`]); the call returns once they are done.
//!
//! A panic in the generator, a mapper or the reducer stops everything the same way; once
//! every thread is joined, the first panic's payload is re-raised in the caller with
//! [`std::panic::resume_unwind`].
//!
//! # Deviations from go-zero
//!
//! - **The generator is told to stop**: [`Source::send`] returns `false` once the call
//!   is stopping, and the generator must then return (go-zero drains the source until the
//!   generator ran to completion). Since every thread is joined, a generator that ignores
//!   `false` and loops forever keeps the call from returning.
//! - The call returns after every stage has ended (go-zero may return while cancelled
//!   mappers still run, leaving them behind).
//! - A second reducer write is [`MapReduceError::MultipleOutputs`] (go-zero panics).
//! - The caller's token gives `TokenCancelled`, the deadline `DeadlineExceeded` (go-zero
//!   reports both as `DeadlineExceeded`).
//!   Cancelling the token stops the call before [`CancelToken::cancel`](crate::CancelToken::cancel)
//!   returns (no thread has to look at it first): from then on [`Source::send`] returns
//!   `false` and no mapper starts. A token already cancelled or a deadline already past
//!   returns at once, without running anything.
//! - A panic's payload is re-raised as it is (go-zero panics with a string of the value
//!   and the stack).
//! - Items reach the workers in batches; arrival order at the reducer is unspecified, as
//!   in go-zero.

mod run;
mod source;
mod writer;

use std::convert::Infallible;

pub use source::Source;
pub use writer::{Outputs, Writer};

use crate::first::FirstError;
use crate::metrics::{Flavour, Outcome, Run};
use crate::{Cancel, MapReduceError, Options, StopError};

/// The most items (or mapper results) moved through a channel at once.
const BATCH: usize = 4096;

/// At most this many bytes of items (or results) per batch.
const BATCH_BYTES: usize = 64 * 1024;

/// How long a batch should take to fill and to map, in nanoseconds: batches are sized
/// from the measured time per item, so slow items travel alone (dispatched as soon as
/// they are generated, spread over every worker) and trivial ones 4096 at a time.
const BATCH_NANOS: u64 = 50_000;

/// The largest batch of `T`s.
fn max_batch<T>() -> usize {
    (BATCH_BYTES / std::mem::size_of::<T>().max(1)).clamp(1, BATCH)
}

/// go-zero's `MapReduce`: `generate` feeds items, at most `opts.workers` mappers run at
/// once, and `reducer` folds the mappers' results into the one value it writes.
///
/// Errors: the first stop ([`Cancel::cancel`], the deadline, the caller's token) even if
/// the reducer wrote a value; otherwise [`MapReduceError::NoOutput`] or
/// [`MapReduceError::MultipleOutputs`] unless the reducer wrote exactly once. A panic in
/// any stage is re-raised here.
///
/// ```
/// use keel_mapreduce::{thread, MapReduceError, Options};
///
/// let squares: Result<i64, MapReduceError<&str>> = thread::map_reduce(
///     |source| {
///         for i in 1..=4 {
///             if !source.send(i) {
///                 return;
///             }
///         }
///     },
///     |i: i64, writer, _cancel| writer.write(i * i),
///     |outputs, writer, _cancel| writer.write(outputs.sum()),
///     Options::new().workers(4),
/// );
/// assert_eq!(squares, Ok(30));
///
/// let cancelled: Result<i64, _> = thread::map_reduce(
///     |source| {
///         for i in 1..=4 {
///             if !source.send(i) {
///                 return;
///             }
///         }
///     },
///     |i: i64, writer, cancel| {
///         if i % 3 == 0 {
///             cancel.cancel(Some("three"));
///         }
///         writer.write(i * i)
///     },
///     |outputs, writer, _cancel| writer.write(outputs.sum::<i64>()),
///     Options::new(),
/// );
/// assert_eq!(cancelled, Err(MapReduceError::Cancelled("three")));
/// ```
pub fn map_reduce<T, U, V, E, G, M, R>(
    generate: G,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<V, MapReduceError<E>>
where
    T: Send,
    U: Send,
    V: Send,
    E: Send,
    G: FnOnce(&Source<T>) + Send,
    M: Fn(T, &Writer<U>, &Cancel<E>) + Sync,
    R: FnOnce(Outputs<U>, &Writer<V>, &Cancel<E>) + Send,
{
    let mut metrics = Run::start(&opts, Flavour::Thread);
    let mut output = None;
    let slot = &mut output;
    let stop = run::run(
        &opts,
        &mut metrics,
        generate,
        mapper,
        Some(move |outputs: Outputs<U>, cancel: &Cancel<E>| {
            let writer = Writer::output();
            reducer(outputs, &writer, cancel);
            *slot = Some(writer.into_output());
        }),
    );
    let result = match (stop, output) {
        (Some(stop), _) => Err(stop.into()),
        (None, Some(out)) if out.writes == 1 => out.value.ok_or(MapReduceError::NoOutput),
        (None, Some(out)) if out.writes > 1 => Err(MapReduceError::MultipleOutputs),
        (None, _) => Err(MapReduceError::NoOutput),
    };
    metrics.finish(Outcome::of_result(&result));
    result
}

/// [`map_reduce`] over an iterator the caller already has (go-zero's `MapReduceChan`):
/// the iterator is drained on the generator thread, and dropped unfinished if the call
/// stops.
///
/// ```
/// use keel_mapreduce::{thread, MapReduceError, Options};
///
/// let words = ["map", "reduce", "keel"];
/// let total: Result<usize, MapReduceError<()>> = thread::map_reduce_iter(
///     words.iter(),
///     |w: &&str, writer, _| writer.write(w.len()),
///     |lengths, writer, _| writer.write(lengths.sum()),
///     Options::new(),
/// );
/// assert_eq!(total, Ok(13));
/// ```
pub fn map_reduce_iter<I, U, V, E, M, R>(
    items: I,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<V, MapReduceError<E>>
where
    I: IntoIterator,
    I::IntoIter: Send,
    I::Item: Send,
    U: Send,
    V: Send,
    E: Send,
    M: Fn(I::Item, &Writer<U>, &Cancel<E>) + Sync,
    R: FnOnce(Outputs<U>, &Writer<V>, &Cancel<E>) + Send,
{
    let items = items.into_iter();
    map_reduce(from_iter(items), mapper, reducer, opts)
}

/// go-zero's `MapReduceVoid`: [`map_reduce`] with a reducer that writes nothing; `Ok(())`
/// unless a stage cancelled, the deadline passed or the caller's token was cancelled.
///
/// The error is a [`StopError`] (the first stop): with no value to write, the reducer
/// cannot miss its output or write twice, so `NoOutput` and `MultipleOutputs` cannot
/// happen (go-zero's `MapReduceVoid` maps `ErrReduceNoOutput` to nil for the same reason).
///
/// ```
/// use keel_mapreduce::{thread, Options, StopError};
///
/// let mut total = 0;
/// let r: Result<(), StopError<String>> = thread::map_reduce_void(
///     |source| {
///         for i in 1..=4 {
///             source.send(i);
///         }
///     },
///     |i: i32, writer, _| writer.write(i * i),
///     |outputs, _| total = outputs.sum(),
///     Options::new(),
/// );
/// assert_eq!((r, total), (Ok(()), 30));
/// ```
pub fn map_reduce_void<T, U, E, G, M, R>(
    generate: G,
    mapper: M,
    reducer: R,
    opts: Options,
) -> Result<(), StopError<E>>
where
    T: Send,
    U: Send,
    E: Send,
    G: FnOnce(&Source<T>) + Send,
    M: Fn(T, &Writer<U>, &Cancel<E>) + Sync,
    R: FnOnce(Outputs<U>, &Cancel<E>) + Send,
{
    let mut metrics = Run::start(&opts, Flavour::Thread);
    let result = match run::run(&opts, &mut metrics, generate, mapper, Some(reducer)) {
        Some(stop) => Err(stop),
        None => Ok(()),
    };
    metrics.finish(Outcome::of_stopped(&result));
    result
}

/// go-zero's `ForEach`: runs `f` on every item, at most `opts.workers` at once, and
/// returns once all have run. The deadline and the caller's token stop dispatching (no
/// error is reported); a panic is re-raised here.
///
/// ```
/// use keel_mapreduce::{thread, Options};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let seen = AtomicUsize::new(0);
/// thread::for_each(
///     |source| {
///         for i in 0..1000 {
///             source.send(i);
///         }
///     },
///     |_i: i32| {
///         seen.fetch_add(1, Ordering::Relaxed);
///     },
///     Options::new().workers(4),
/// );
/// assert_eq!(seen.into_inner(), 1000);
/// ```
pub fn for_each<T, G, F>(generate: G, f: F, opts: Options)
where
    T: Send,
    G: FnOnce(&Source<T>) + Send,
    F: Fn(T) + Sync,
{
    let mut metrics = Run::start(&opts, Flavour::Thread);
    let stop = run::run::<T, (), Infallible, _, _, NoReducer>(
        &opts,
        &mut metrics,
        generate,
        |item, _: &Writer<()>, _: &Cancel<Infallible>| f(item),
        None,
    );
    metrics.finish(match &stop {
        Some(stop) => Outcome::of_stop(stop),
        None => Outcome::Ok,
    });
}

type NoReducer = fn(Outputs<()>, &Cancel<Infallible>);

/// go-zero's `Finish`: runs every function concurrently (one worker each) and returns the
/// first error, as it is; functions not yet started when one fails are skipped.
///
/// `Err(e)` is the error of the function that failed first: `finish` takes no deadline
/// or token, so a failing function is its only way to stop. For a fixed handful of
/// different jobs with their own result types, [`std::thread::scope`] may read better
/// (see the crate docs, "When to use tokio instead").
///
/// ```
/// use keel_mapreduce::thread;
/// use std::sync::atomic::{AtomicI32, Ordering};
///
/// let total = AtomicI32::new(0);
/// let add = |n| {
///     let total = &total;
///     move || -> Result<(), &str> {
///         total.fetch_add(n, Ordering::Relaxed);
///         Ok(())
///     }
/// };
/// assert_eq!(thread::finish([add(2), add(3), add(5)]), Ok(()));
/// assert_eq!(total.into_inner(), 10);
///
/// let fail = || Err("dummy");
/// assert_eq!(thread::finish([fail]), Err("dummy"));
/// ```
pub fn finish<E, F, I>(fns: I) -> Result<(), E>
where
    E: Send,
    F: FnOnce() -> Result<(), E> + Send,
    I: IntoIterator<Item = F>,
{
    let fns: Vec<F> = fns.into_iter().collect();
    if fns.is_empty() {
        return Ok(());
    }
    let first = FirstError::new();
    let opts = Options::new().workers(fns.len());
    let mut metrics = Run::start(&opts, Flavour::Thread);
    // The call stops only through the `cancel(None)` below, right after an error was
    // recorded: its stop reason says nothing the slot does not.
    let _stopped_after_an_error = run::run::<F, (), Infallible, _, _, NoReducer>(
        &opts,
        &mut metrics,
        from_iter(fns.into_iter()),
        |f: F, _: &Writer<()>, cancel: &Cancel<Infallible>| {
            if let Err(e) = f() {
                first.record(e);
                cancel.cancel(None);
            }
        },
        None,
    );
    let result = first.into_result();
    metrics.finish(Outcome::of_finish(&result));
    result
}

/// go-zero's `FinishVoid`: runs every function concurrently (one worker each) and returns
/// once all have run.
///
/// ```
/// use keel_mapreduce::thread;
/// use std::sync::atomic::{AtomicI32, Ordering};
///
/// let total = AtomicI32::new(0);
/// let add = |n| {
///     let total = &total;
///     move || {
///         total.fetch_add(n, Ordering::Relaxed);
///     }
/// };
/// thread::finish_void([add(2), add(3), add(5)]);
/// assert_eq!(total.into_inner(), 10);
/// ```
pub fn finish_void<F, I>(fns: I)
where
    F: FnOnce() + Send,
    I: IntoIterator<Item = F>,
{
    let fns: Vec<F> = fns.into_iter().collect();
    if fns.is_empty() {
        return;
    }
    let workers = fns.len();
    for_each(
        from_iter(fns.into_iter()),
        |f: F| f(),
        Options::new().workers(workers),
    );
}

/// A generator that sends every item of `items` until the call stops.
fn from_iter<I: Iterator + Send>(items: I) -> impl FnOnce(&Source<I::Item>) + Send {
    move |source| {
        for item in items {
            if !source.send(item) {
                return;
            }
        }
    }
}
