//! The async rows: keel-mapreduce's tokio flavour, futures' `buffer_unordered` and a tokio
//! `JoinSet`, each driven as one future inside a task of the suite's runtime.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;

use futures::StreamExt as _;
use futures::stream;
use keel_mapreduce::tokio as mr;
use keel_mapreduce::{Cancel, Options};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use super::{FAN_OUT_ITEMS, FAN_OUT_SLEEP, ITEMS, RUNTIME_THREADS};

/// The runtime of the async rows: multi-thread, [`RUNTIME_THREADS`] workers, timers on.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A boxed call, so that the suite's driver takes any row.
pub type Call = Pin<Box<dyn Future<Output = u64> + Send>>;

/// What starts one whole call of a row.
pub type NewCall = fn() -> Call;

/// The async rows, keel first: `(benchmark id, call)`, each one map-reduce over
/// `0..ITEMS`, x → 2x, summed.
pub const ASYNC_ROWS: [(&str, NewCall); 4] = [
    // `keel_mapreduce::tokio::map_reduce`, default options (16 workers): every mapper
    // future is polled in the caller's task.
    ("keel map_reduce (in the caller's task)", || {
        Box::pin(keel(false))
    }),
    // `map_reduce_spawned`, 2 workers (the runtime's threads): long-lived spawned tasks
    // pull batches of items.
    ("keel map_reduce_spawned (2 workers)", || {
        Box::pin(keel(true))
    }),
    // `stream::iter(0..N).map(async).buffer_unordered(16).fold(..)`: no spawn.
    ("futures buffer_unordered(16)", || {
        Box::pin(buffer_unordered())
    }),
    // One `JoinSet::spawn` per item, then `join_next` until empty.
    ("tokio JoinSet (a task per item)", || Box::pin(join_set())),
];

/// The fan-out rows, keel first: `(benchmark id, items that run, call)`, the call
/// resolving to the number of items that ran, each sleeping [`FAN_OUT_SLEEP`].
pub const FAN_OUT_ROWS: [(&str, u64, NewCall); 3] = [
    // `map_reduce` over FAN_OUT_ITEMS items with as many workers: the sleeps overlap.
    ("keel map_reduce (8 workers)", FAN_OUT_ITEMS, || {
        Box::pin(fan_out_keel())
    }),
    // One sleep after another in a plain loop: the 8 ms baseline.
    ("sequential loop", FAN_OUT_ITEMS, || {
        Box::pin(async {
            for _ in 0..FAN_OUT_ITEMS {
                tokio::time::sleep(FAN_OUT_SLEEP).await;
            }
            FAN_OUT_ITEMS
        })
    }),
    // One item alone: the floor the fan-out can reach on tokio's timer.
    ("one sleep (floor)", 1, || {
        Box::pin(async {
            tokio::time::sleep(FAN_OUT_SLEEP).await;
            1
        })
    }),
];

async fn generate(source: mr::Source<u64>) {
    for x in 0..black_box(ITEMS) {
        if !source.send(x).await {
            return;
        }
    }
}

async fn double(x: u64, writer: mr::Writer<u64>, _cancel: Cancel<()>) {
    writer.write(2 * x).await;
}

async fn sum(mut outputs: mr::Outputs<u64>, writer: mr::Writer<u64>, _cancel: Cancel<()>) {
    let mut total = 0;
    while let Some(v) = outputs.recv().await {
        total += v;
    }
    writer.write(total).await;
}

async fn keel(spawned: bool) -> u64 {
    let result = if spawned {
        let opts = Options::new().workers(RUNTIME_THREADS);
        mr::map_reduce_spawned(generate, double, sum, opts).await
    } else {
        mr::map_reduce(generate, double, sum, Options::new()).await
    };
    result.expect("the call is never stopped")
}

async fn buffer_unordered() -> u64 {
    stream::iter(0..black_box(ITEMS))
        .map(|x| async move { 2 * x })
        .buffer_unordered(16)
        .fold(0, |total, v| async move { total + v })
        .await
}

async fn join_set() -> u64 {
    let mut set = JoinSet::new();
    for x in 0..black_box(ITEMS) {
        set.spawn(async move { 2 * x });
    }
    let mut total = 0;
    while let Some(v) = set.join_next().await {
        total += v.expect("the item task does not panic");
    }
    total
}

async fn fan_out_keel() -> u64 {
    let result = mr::map_reduce(
        |source: mr::Source<u64>| async move {
            for x in 0..FAN_OUT_ITEMS {
                if !source.send(x).await {
                    return;
                }
            }
        },
        |_x, writer: mr::Writer<u64>, _cancel: Cancel<()>| async move {
            tokio::time::sleep(FAN_OUT_SLEEP).await;
            writer.write(1).await;
        },
        sum,
        Options::new().workers(FAN_OUT_ITEMS as usize),
    )
    .await;
    result.expect("the call is never stopped")
}
