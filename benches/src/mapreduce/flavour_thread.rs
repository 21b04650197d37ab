//! The OS-thread rows: keel-mapreduce's thread flavour, rayon, and a producer → 2 workers →
//! consumer pipeline over crossbeam's bounded channels (per item, and in batches).

use std::hint::black_box;
use std::thread;

use crossbeam_channel::{Sender, bounded};
use keel_mapreduce::{Cancel, Options, thread as mr};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use super::{ITEMS, RUNTIME_THREADS};

/// Items per batch of the batched crossbeam pipeline.
pub const PIPELINE_BATCH: usize = 1024;

/// Capacity of the per-item pipeline's channels, in items.
pub const PIPELINE_CAPACITY: usize = 1024;

/// Capacity of the batched pipeline's channels, in batches: two per worker.
pub const PIPELINE_BATCHES: usize = 2 * RUNTIME_THREADS;

/// A thread row: one whole call on the rows' rayon pool ([`pool`]), returning the sum.
pub type ThreadCall = fn(&ThreadPool) -> u64;

/// The OS-thread rows, keel first: `(benchmark id, call)`, each one map-reduce over
/// `0..ITEMS`, x → 2x, summed.
pub const THREAD_ROWS: [(&str, ThreadCall); 5] = [
    // `keel_mapreduce::thread::map_reduce` with that many workers (plus its generator and
    // reducer threads).
    ("keel thread::map_reduce (2 workers)", |_| keel(2)),
    ("keel thread::map_reduce (16 workers)", |_| keel(16)),
    // `(0..N).into_par_iter().map(..).sum()` on a pool of RUNTIME_THREADS threads.
    ("rayon into_par_iter (2 threads)", |pool| {
        pool.install(|| (0..black_box(ITEMS)).into_par_iter().map(|x| 2 * x).sum())
    }),
    // A producer thread → 2 worker threads → the calling thread, one item per message over
    // `bounded(1024)` channels, or `Vec`s of 1024 items over channels of 4 batches.
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

fn keel(workers: usize) -> u64 {
    mr::map_reduce(
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

/// `produce` on a thread → `work` on [`RUNTIME_THREADS`] threads → `total` on the calling
/// thread, over `bounded(capacity)` channels of messages `M` (items, or batches of them).
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
