//! The documented bounds of [`Options`]: a worker count is taken into `1..=MAX_WORKERS`, a
//! timeout too long for `Instant` is no deadline, and OS-thread workers start as items need
//! them (all of them when the items need them all, a handful for a handful of items).

use std::collections::HashSet;
use std::sync::{Barrier, Mutex, mpsc};
use std::time::Duration;

use keel_mapreduce::{CancelToken, MAX_WORKERS, MapReduceError, Options, thread};

fn squares(n: u64, opts: Options) -> Result<u64, MapReduceError<()>> {
    thread::map_reduce(
        |source| {
            for i in 1..=n {
                if !source.send(i) {
                    return;
                }
            }
        },
        |i: u64, writer, _cancel| writer.write(i * i),
        |outputs, writer, _cancel| writer.write(outputs.sum()),
        opts,
    )
}

#[test]
fn worker_counts_are_taken_into_1_to_max_workers() {
    assert_eq!(MAX_WORKERS, 4096);
    for (asked, got) in [
        (0, 1),
        (1, 1),
        (MAX_WORKERS, MAX_WORKERS),
        (MAX_WORKERS + 1, MAX_WORKERS),
        (usize::MAX - 1, MAX_WORKERS),
        (usize::MAX, MAX_WORKERS),
    ] {
        assert_eq!(Options::new().workers(asked).worker_count(), got, "{asked}");
    }
}

#[test]
fn a_huge_worker_count_over_three_items_starts_a_handful_of_threads() {
    let threads = Mutex::new(HashSet::new());
    let sum: Result<u64, MapReduceError<()>> = thread::map_reduce(
        |source| {
            for i in 1..=3 {
                source.send(i);
            }
        },
        |i: u64, writer, _cancel| {
            threads.lock().unwrap().insert(std::thread::current().id());
            writer.write(i)
        },
        |outputs, writer, _cancel| writer.write(outputs.sum()),
        Options::new().workers(usize::MAX),
    );
    assert_eq!(sum, Ok(6));
    let mappers = threads.into_inner().unwrap().len();
    assert!((1..=3).contains(&mappers), "{mappers} mapper threads");
}

/// Every item waits for all the others: the call completes only if `workers` mappers
/// really run at once, so lazily started workers must reach the full count.
#[test]
fn lazily_started_workers_reach_the_full_count_when_items_need_them() {
    for workers in [1, 2, 7, 64] {
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let barrier = Barrier::new(workers);
            thread::for_each(
                |source| {
                    for i in 0..workers {
                        source.send(i);
                    }
                },
                |_i: usize| {
                    barrier.wait();
                },
                Options::new().workers(workers),
            );
            let _ = done_tx.send(());
        });
        // Generous: it takes milliseconds; a missing worker would block forever.
        let done = done_rx.recv_timeout(Duration::from_secs(120));
        assert!(done.is_ok(), "{workers} items never ran together");
    }
}

#[test]
fn a_timeout_too_long_for_instant_is_no_deadline() {
    for timeout in [
        Duration::from_secs(u64::MAX / 2),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let opts = Options::new().workers(4).timeout(timeout);
        assert_eq!(squares(100, opts), Ok((1..=100u64).map(|i| i * i).sum()));
    }
    let opts = Options::new().workers(MAX_WORKERS).timeout(Duration::ZERO);
    assert_eq!(squares(3, opts), Err(MapReduceError::DeadlineExceeded));
}

#[test]
fn a_token_waits_any_timeout() {
    let token = CancelToken::new();
    assert!(!token.wait_timeout(Duration::from_nanos(1)));
    token.cancel();
    for timeout in [Duration::ZERO, Duration::from_secs(u64::MAX), Duration::MAX] {
        assert!(token.wait_timeout(timeout));
    }
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn tokio_calls_take_any_worker_count_and_timeout() {
    use keel_mapreduce::tokio as mr;
    for workers in [0, 1, MAX_WORKERS, usize::MAX] {
        for timeout in [Duration::from_secs(3600), Duration::MAX] {
            let opts = Options::new().workers(workers).timeout(timeout);
            let local =
                mr::map_reduce(
                    |source| async move {
                        for i in 1..=3u64 {
                            source.send(i).await;
                        }
                    },
                    |i, writer, _cancel: keel_mapreduce::Cancel<()>| async move {
                        writer.write(i).await
                    },
                    |mut outputs, writer, _cancel| async move {
                        let mut sum = 0;
                        while let Some(v) = outputs.recv().await {
                            sum += v;
                        }
                        writer.write(sum).await;
                    },
                    opts.clone(),
                )
                .await;
            assert_eq!(local, Ok(6), "{workers}");
            let spread =
                mr::map_reduce_spawned(
                    |source| async move {
                        for i in 1..=3u64 {
                            source.send(i).await;
                        }
                    },
                    |i, writer, _cancel: keel_mapreduce::Cancel<()>| async move {
                        writer.write(i).await
                    },
                    |mut outputs, writer, _cancel| async move {
                        let mut sum = 0;
                        while let Some(v) = outputs.recv().await {
                            sum += v;
                        }
                        writer.write(sum).await;
                    },
                    opts,
                )
                .await;
            assert_eq!(spread, Ok(6), "{workers}");
        }
    }
}
