//! Cost per item of the tokio flavour: 100 000 items, x -> 2x, summed, in the caller's
//! task (default) and spread over 2 workers on a 2-thread runtime.
//!
//! `cargo run --release -p keel-mapreduce --features tokio --example tokio_per_item`

use std::time::Instant;

use keel_mapreduce::tokio as mr;
use keel_mapreduce::{Cancel, Options};

const N: u64 = 100_000;

async fn generate(source: mr::Source<u64>) {
    for i in 0..N {
        if !source.send(i).await {
            return;
        }
    }
}

async fn double(x: u64, w: mr::Writer<u64>, _c: Cancel<()>) {
    w.write(2 * x).await;
}

async fn sum(mut out: mr::Outputs<u64>, w: mr::Writer<u64>, _c: Cancel<()>) {
    let mut s = 0;
    while let Some(v) = out.recv().await {
        s += v;
    }
    w.write(s).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::spawn(async {
            for round in 0..5 {
                for workers in [1, 16] {
                    let t = Instant::now();
                    let r = mr::map_reduce(generate, double, sum, Options::new().workers(workers))
                        .await;
                    let ns = t.elapsed().as_nanos() as f64 / N as f64;
                    assert_eq!(r, Ok(N * (N - 1)));
                    if round == 4 {
                        println!("in the caller's task, workers {workers:2}: {ns:6.1} ns/item");
                    }
                }
                let t = Instant::now();
                let r =
                    mr::map_reduce_spawned(generate, double, sum, Options::new().workers(2)).await;
                let ns = t.elapsed().as_nanos() as f64 / N as f64;
                assert_eq!(r, Ok(N * (N - 1)));
                if round == 4 {
                    println!("spread over 2 spawned workers:   {ns:6.1} ns/item");
                }
            }
        })
        .await
        .unwrap();
    });
}
