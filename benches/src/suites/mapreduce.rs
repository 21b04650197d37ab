//! The `keel-mapreduce` suite: keel's tokio and thread flavours against their peers over
//! [`ITEMS`] trivial items per call, and a fan-out of sleeping items.

use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use tokio::runtime::Runtime;

use crate::mapreduce::{
    ASYNC_ROWS, Call, FAN_OUT_ITEMS, FAN_OUT_ROWS, ITEMS, SUM, THREAD_ROWS, pool, runtime,
};

const SAMPLES: usize = 10;
const FAN_OUT_WARM_UP: Duration = Duration::from_millis(500);
const FAN_OUT_MEASUREMENT: Duration = Duration::from_secs(1);

/// Every group of this suite.
pub fn all(c: &mut Criterion) {
    let rt = runtime();

    let mut g = group(c, "mapreduce async 100k", ITEMS);
    for (name, call) in ASYNC_ROWS {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| time_in_task(&rt, iters, SUM, call))
        });
    }
    g.finish();

    let pool = pool();
    let mut g = group(c, "mapreduce threads 100k", ITEMS);
    for (name, call) in THREAD_ROWS {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let sum = call(&pool);
                    total += start.elapsed();
                    assert_eq!(sum, SUM, "{name}");
                }
                total
            })
        });
    }
    g.finish();

    let mut g = group(c, "mapreduce fan-out 8x1ms", FAN_OUT_ITEMS);
    // Sleep-bound: the spread is the timer's, so a short run is enough.
    g.warm_up_time(FAN_OUT_WARM_UP)
        .measurement_time(FAN_OUT_MEASUREMENT);
    for (name, ran, call) in FAN_OUT_ROWS {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| time_in_task(&rt, iters, ran, call))
        });
    }
    g.finish();
}

fn group<'c>(c: &'c mut Criterion, name: &str, items: u64) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(items));
    g
}

/// Runs `iters` calls one after another inside one task spawned on `rt`.
fn time_in_task<F>(rt: &Runtime, iters: u64, expected: u64, call: F) -> Duration
where
    F: Fn() -> Call + Send + 'static,
{
    let task = rt.spawn(async move {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            let got = call().await;
            total += start.elapsed();
            assert_eq!(got, expected);
        }
        total
    });
    rt.block_on(task).expect("the timing task does not panic")
}
