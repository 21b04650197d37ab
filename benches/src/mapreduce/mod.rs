//! The map-reduce rows the `mapreduce` suite times: keel-mapreduce's two flavours and their
//! peers over [`ITEMS`] items (x → 2x, summed), and the fan-out of [`FAN_OUT_ITEMS`] sleeps.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};
use futures::StreamExt as _;
use futures::stream;
use keel_mapreduce::tokio as mr;
use keel_mapreduce::{Cancel, Options};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

pub const ITEMS: u64 = 100_000;
pub const SUM: u64 = ITEMS * (ITEMS - 1);
pub const RUNTIME_THREADS: usize = 2;
pub const FAN_OUT_ITEMS: u64 = 8;
pub const FAN_OUT_SLEEP: Duration = Duration::from_millis(1);

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
pub const ASYNC_ROWS: [(&str, NewCall); 4] = [
    // `keel_mapreduce::tokio::map_reduce`, 16 workers: mappers polled in the caller's task.
    ("keel map_reduce (in the caller's task)", || {
        Box::pin(keel(false))
    }),
    // `map_reduce_spawned`, 2 workers: long-lived spawned tasks pull batches of items.
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

pub const PIPELINE_BATCH: usize = 1024;
pub const PIPELINE_CAPACITY: usize = 1024;
pub const PIPELINE_BATCHES: usize = 2 * RUNTIME_THREADS;

/// A thread row: one whole call on the rows' rayon pool ([`pool`]), returning the sum.
pub type ThreadCall = fn(&ThreadPool) -> u64;
pub const THREAD_ROWS: [(&str, ThreadCall); 5] = [
    // `keel_mapreduce::thread::map_reduce` with that many workers.
    ("keel thread::map_reduce (2 workers)", |_| keel_threads(2)),
    ("keel thread::map_reduce (16 workers)", |_| keel_threads(16)),
    // `(0..N).into_par_iter().map(..).sum()` on a pool of RUNTIME_THREADS threads.
    ("rayon into_par_iter (2 threads)", |pool| {
        pool.install(|| (0..black_box(ITEMS)).into_par_iter().map(|x| 2 * x).sum())
    }),
    // Producer → 2 workers → caller over `bounded(1024)` channels, by item or by 1024-item `Vec`.
    ("crossbeam pipeline (per item)", |_| pipeline_per_item()),
    ("crossbeam pipeline (1024-item batches)", |_| {
        pipeline_batched()
    }),
];

/// Rayon's pool of [`RUNTIME_THREADS`] threads, built once for the thread rows.
pub fn pool() -> ThreadPool {
    let pool = ThreadPoolBuilder::new()
        .num_threads(RUNTIME_THREADS)
        .build();
    pool.expect("a rayon pool")
}

fn pipeline_per_item() -> u64 {
    pipeline(
        PIPELINE_CAPACITY,
        |items| {
            for x in 0..black_box(ITEMS) {
                items.send(x).expect("the workers outlive the producer");
            }
        },
        |x| 2 * x,
        |x| x,
    )
}

fn pipeline_batched() -> u64 {
    pipeline(
        PIPELINE_BATCHES,
        |items| {
            let mut batch = Vec::with_capacity(PIPELINE_BATCH);
            for x in 0..black_box(ITEMS) {
                batch.push(x);
                if batch.len() == PIPELINE_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(PIPELINE_BATCH));
                    items.send(full).expect("the workers outlive the producer");
                }
            }
            if !batch.is_empty() {
                items.send(batch).expect("the workers outlive the producer");
            }
        },
        |mut batch: Vec<u64>| {
            for x in &mut batch {
                *x *= 2;
            }
            batch
        },
        |batch| batch.iter().sum(),
    )
}

fn keel_threads(workers: usize) -> u64 {
    keel_mapreduce::thread::map_reduce(
        |source| {
            for x in 0..black_box(ITEMS) {
                if !source.send(x) {
                    return;
                }
            }
        },
        |x: u64, writer, _cancel: &Cancel<()>| writer.write(2 * x),
        |outputs, writer, _cancel| writer.write(outputs.sum::<u64>()),
        Options::new().workers(workers),
    )
    .expect("the call is never stopped")
}

/// `produce` on a thread → `work` on [`RUNTIME_THREADS`] threads → `total` on the calling thread.
fn pipeline<M: Send>(
    capacity: usize,
    produce: impl FnOnce(&Sender<M>) + Send,
    work: impl Fn(M) -> M + Sync,
    total: impl Fn(M) -> u64,
) -> u64 {
    let (items, items_rx) = bounded::<M>(capacity);
    let (results, results_rx) = bounded::<M>(capacity);
    thread::scope(|s| {
        s.spawn(move || produce(&items));
        for _ in 0..RUNTIME_THREADS {
            let (rx, tx, work) = (items_rx.clone(), results.clone(), &work);
            s.spawn(move || {
                for m in rx {
                    tx.send(work(m)).expect("the consumer outlives the workers");
                }
            });
        }
        drop((items_rx, results));
        results_rx.iter().map(total).sum()
    })
}
