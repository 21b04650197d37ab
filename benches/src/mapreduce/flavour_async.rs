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

/// One async map-reduce over `0..ITEMS`, x → 2x, summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsyncImpl {
    /// `keel_mapreduce::tokio::map_reduce` with the default options (16 workers): every
    /// mapper future is polled in the caller's task.
    KeelInTask,
    /// `keel_mapreduce::tokio::map_reduce_spawned`, 2 workers (the runtime's threads):
    /// long-lived spawned tasks pull batches of items.
    KeelSpawned,
    /// `stream::iter(0..N).map(async).buffer_unordered(16).fold(..)`: no spawn.
    BufferUnordered,
    /// One `JoinSet::spawn` per item, then `join_next` until empty.
    JoinSetPerItem,
}

impl AsyncImpl {
    /// Every row, keel first.
    pub const ALL: [AsyncImpl; 4] = [
        AsyncImpl::KeelInTask,
        AsyncImpl::KeelSpawned,
        AsyncImpl::BufferUnordered,
        AsyncImpl::JoinSetPerItem,
    ];

    /// The criterion benchmark id.
    pub const fn name(self) -> &'static str {
        match self {
            AsyncImpl::KeelInTask => "keel map_reduce (in the caller's task)",
            AsyncImpl::KeelSpawned => "keel map_reduce_spawned (2 workers)",
            AsyncImpl::BufferUnordered => "futures buffer_unordered(16)",
            AsyncImpl::JoinSetPerItem => "tokio JoinSet (a task per item)",
        }
    }

    /// One whole call; resolves to the sum.
    pub fn call(self) -> Call {
        match self {
            AsyncImpl::KeelInTask => Box::pin(keel(false)),
            AsyncImpl::KeelSpawned => Box::pin(keel(true)),
            AsyncImpl::BufferUnordered => Box::pin(buffer_unordered()),
            AsyncImpl::JoinSetPerItem => Box::pin(join_set()),
        }
    }
}

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

/// The fan-out: [`FAN_OUT_ITEMS`] items that each sleep [`FAN_OUT_SLEEP`]; resolves to how
/// many items ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanOutImpl {
    /// `keel_mapreduce::tokio::map_reduce` with 8 workers: the sleeps overlap.
    Keel,
    /// One sleep after another in a plain loop: the 8 ms baseline.
    Sequential,
    /// One item alone: a single sleep, the floor the fan-out can reach on tokio's timer.
    OneSleep,
}

impl FanOutImpl {
    /// Both rows, keel first.
    pub const ALL: [FanOutImpl; 3] = [
        FanOutImpl::Keel,
        FanOutImpl::Sequential,
        FanOutImpl::OneSleep,
    ];

    /// The criterion benchmark id.
    pub const fn name(self) -> &'static str {
        match self {
            FanOutImpl::Keel => "keel map_reduce (8 workers)",
            FanOutImpl::Sequential => "sequential loop",
            FanOutImpl::OneSleep => "one sleep (floor)",
        }
    }

    /// One whole call; resolves to the number of items that ran ([`FAN_OUT_ITEMS`], or 1
    /// for [`FanOutImpl::OneSleep`]).
    pub fn call(self) -> Call {
        match self {
            FanOutImpl::Keel => Box::pin(fan_out_keel()),
            FanOutImpl::Sequential => Box::pin(async {
                for _ in 0..FAN_OUT_ITEMS {
                    tokio::time::sleep(FAN_OUT_SLEEP).await;
                }
                FAN_OUT_ITEMS
            }),
            FanOutImpl::OneSleep => Box::pin(async {
                tokio::time::sleep(FAN_OUT_SLEEP).await;
                1
            }),
        }
    }
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
