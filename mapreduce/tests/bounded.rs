//! Memory stays bounded whatever the input: with a slow reducer, the items a generator has
//! sent but the reducer has not consumed never exceed what the bounded queues and the
//! workers' hands can hold, however many items there are.

use std::sync::atomic::{AtomicU64, Ordering};

use keel_mapreduce::{MapReduceError, Options, thread};

/// Runs `n` items through a reducer that consumes slowly; returns the most items ever
/// sent and not yet reduced.
fn max_in_flight_threads(n: u64, workers: usize) -> u64 {
    let sent = AtomicU64::new(0);
    let reduced = AtomicU64::new(0);
    let max = AtomicU64::new(0);
    let total: Result<u64, MapReduceError<()>> = thread::map_reduce(
        |source| {
            for i in 0..n {
                let now = sent.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now - reduced.load(Ordering::SeqCst), Ordering::SeqCst);
                if !source.send(i) {
                    return;
                }
            }
        },
        |i: u64, writer, _| writer.write(i),
        |outputs, writer, _| {
            let mut sum = 0u64;
            for (k, v) in outputs.enumerate() {
                sum += v;
                reduced.fetch_add(1, Ordering::SeqCst);
                if k % 1024 == 0 {
                    // A slow consumer: let the producer run ahead as far as it can.
                    std::thread::yield_now();
                }
            }
            writer.write(sum)
        },
        Options::new().workers(workers),
    );
    assert_eq!(total, Ok(n * (n - 1) / 2));
    max.into_inner()
}

#[test]
fn items_in_flight_do_not_grow_with_the_input() {
    for workers in [1, 4] {
        let small = max_in_flight_threads(200_000, workers);
        let large = max_in_flight_threads(2_000_000, workers);
        eprintln!("workers {workers}: in flight {small} / {large}");
        // The queues hold at most 2 × max(workers, 2) batches of at most 4096 items each
        // side, plus a batch in each worker's hands.
        let cap = (2 * 2 * workers.max(2) as u64 + workers as u64 + 2) * 4096;
        assert!(
            large <= cap,
            "workers {workers}: {large} items in flight, cap {cap}"
        );
        assert!(
            small <= cap,
            "workers {workers}: {small} items in flight, cap {cap}"
        );
    }
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_in_flight_do_not_grow_with_the_input_on_tokio() {
    use keel_mapreduce::tokio as mr;
    use std::sync::Arc;

    for n in [100_000u64, 1_000_000] {
        let sent = Arc::new(AtomicU64::new(0));
        let reduced = Arc::new(AtomicU64::new(0));
        let max = Arc::new(AtomicU64::new(0));
        let (s, r, m) = (sent.clone(), reduced.clone(), max.clone());
        let total: Result<u64, MapReduceError<()>> = mr::map_reduce(
            move |source| async move {
                for i in 0..n {
                    let now = s.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now - r.load(Ordering::SeqCst), Ordering::SeqCst);
                    if !source.send(i).await {
                        return;
                    }
                }
            },
            |i: u64, writer, _| async move {
                writer.write(i).await;
            },
            move |mut outputs, writer, _| async move {
                let mut sum = 0u64;
                while let Some(v) = outputs.recv().await {
                    sum += v;
                    reduced.fetch_add(1, Ordering::SeqCst);
                }
                writer.write(sum).await;
            },
            Options::new().workers(16),
        )
        .await;
        assert_eq!(total, Ok(n * (n - 1) / 2));
        let max = max.load(Ordering::SeqCst);
        eprintln!("tokio {n}: in flight {max}");
        assert!(max <= 1024, "{n} items: {max} in flight");
    }
}
