//! Nanoseconds per trivial item on the OS-thread flavour: 100 000 items, `x -> 2x`, sum.
//!
//! `cargo run --release -p keel-mapreduce --example thread_speed`

use std::time::Instant;

use keel_mapreduce::{MapReduceError, Options, thread};

const ITEMS: u64 = 100_000;

fn once(workers: usize) -> f64 {
    per_item(ITEMS, workers)
}

/// Nanoseconds per item of one call over `n` items (per call when `n` is 0).
fn per_item(n: u64, workers: usize) -> f64 {
    let start = Instant::now();
    let sum: Result<u64, MapReduceError<()>> = thread::map_reduce(
        |source| {
            for i in 0..n {
                if !source.send(i) {
                    return;
                }
            }
        },
        |x: u64, writer, _| writer.write(2 * x),
        |outputs, writer, _| writer.write(outputs.sum()),
        Options::new().workers(workers),
    );
    let elapsed = start.elapsed();
    assert_eq!(sum, Ok(n * n.saturating_sub(1)));
    elapsed.as_nanos() as f64 / n.max(1) as f64
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{cpus} CPUs, {ITEMS} items per call, best and median of 50 calls");
    for workers in [1, 2, 4, 16] {
        let mut runs: Vec<f64> = (0..50).map(|_| once(workers)).collect();
        runs.sort_by(f64::total_cmp);
        println!(
            "workers {workers:>2}: best {:.2} ns/item, median {:.2} ns/item",
            runs[0],
            runs[runs.len() / 2]
        );
    }
    for workers in [1, 4, 16] {
        let best = (0..50)
            .map(|_| per_item(0, workers))
            .fold(f64::MAX, f64::min);
        println!(
            "empty input, workers {workers:>2}: best {:.0} µs per call (thread spawns and joins)",
            best / 1e3
        );
    }
    for workers in [2, 4] {
        let best = (0..10)
            .map(|_| per_item(10 * ITEMS, workers))
            .fold(f64::MAX, f64::min);
        println!(
            "{} items, workers {workers}: best {best:.2} ns/item",
            10 * ITEMS
        );
    }
}
