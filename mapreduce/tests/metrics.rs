//! Feature `metrics`: `keel_mapreduce_runs_total` counts each run once, by how it ended,
//! and `keel_mapreduce_items_total` each stage's items, on threads and on tokio.
//!
//! Every test runs its calls inside `metrics::with_local_recorder` with a recorder of its
//! own: a run registers its handles in the call, on the caller's thread (tokio: at the first
//! poll, inside `block_on` on this thread), and the worker threads and spawned tasks record
//! through clones of those handles. `handles_registered_in_the_call_follow_the_work_to_
//! other_threads` checks that first; so tests running in parallel never see each other's
//! series.
//!
//! The debugging recorder's snapshot takes the counters' values (they restart from 0):
//! each snapshot shows what happened since the previous one.
//!
//! No sleeps and no wall-clock bounds: stops are made by the stages themselves, by a token
//! cancelled after an explicit hand-off, or by a deadline on tokio's paused clock.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_mapreduce::{CancelToken, MapReduceError, Options, StopError, thread};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

const RUNS: &str = "keel_mapreduce_runs_total";
const ITEMS: &str = "keel_mapreduce_items_total";

/// Non-zero counts since the last snapshot: `(name, flavour, "result=..." or "stage=...")`.
type Seen = BTreeMap<(String, String, String), u64>;

fn label<'k>(key: &'k CompositeKey, label: &str) -> Option<&'k str> {
    key.key()
        .labels()
        .find(|l| l.key() == label)
        .map(|l| l.value())
}

/// Takes a snapshot; checks every series' labels against the contract.
fn seen(snapshotter: &Snapshotter) -> Seen {
    let mut seen = Seen::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        assert_eq!(key.kind(), MetricKind::Counter, "{key:?}");
        let DebugValue::Counter(n) = value else {
            panic!("{key:?}: {value:?}")
        };
        let (name, flavour) = (
            label(&key, "name").unwrap(),
            label(&key, "flavour").unwrap(),
        );
        assert!(["thread", "tokio"].contains(&flavour), "{key:?}");
        assert_eq!(key.key().labels().count(), 3, "{key:?}");
        let what = match key.key().name() {
            RUNS => {
                let result = label(&key, "result").unwrap();
                assert!(
                    ["ok", "error", "cancelled", "panic"].contains(&result),
                    "{key:?}"
                );
                format!("result={result}")
            }
            ITEMS => {
                let stage = label(&key, "stage").unwrap();
                assert!(
                    ["generated", "mapped", "reduced"].contains(&stage),
                    "{key:?}"
                );
                format!("stage={stage}")
            }
            other => panic!("unexpected metric {other}"),
        };
        if n > 0 {
            *seen
                .entry((name.to_owned(), flavour.to_owned(), what))
                .or_default() += n;
        }
    }
    seen
}

/// The counts `seen` should show: `(what, n)` pairs for one name and flavour.
fn expect(name: &str, flavour: &str, counts: &[(&str, u64)]) -> Seen {
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|&(what, n)| ((name.to_owned(), flavour.to_owned(), what.to_owned()), n))
        .collect()
}

fn count(seen: &Seen, what: &str) -> u64 {
    seen.iter()
        .filter(|((_, _, w), _)| w == what)
        .map(|(_, n)| n)
        .sum()
}

/// How many outputs item `i` writes: 0, 1 or 2, so that mapped and reduced differ.
fn outputs_of(i: u64) -> u64 {
    i % 3
}

fn outputs_of_all(n: u64) -> u64 {
    (0..n).map(outputs_of).sum()
}

fn send_all(source: &thread::Source<u64>, n: u64) {
    for i in 0..n {
        if !source.send(i) {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Threads.

#[test]
fn handles_registered_in_the_call_follow_the_work_to_other_threads() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // The generator, the mappers and (with a deadline to watch, far enough never to pass)
    // the reducer all run on threads of their own: their counts still land in the
    // caller's local recorder.
    let r: Result<u64, MapReduceError<()>> = metrics::with_local_recorder(&recorder, || {
        thread::map_reduce(
            |source| send_all(source, 100),
            |i, writer, _| writer.write(i),
            |outputs, writer, _| writer.write(outputs.sum()),
            Options::new()
                .workers(4)
                .name("local")
                .timeout(Duration::from_secs(24 * 3600)),
        )
    });
    assert_eq!(r, Ok(4950));
    let expected = expect(
        "local",
        "thread",
        &[
            ("result=ok", 1),
            ("stage=generated", 100),
            ("stage=mapped", 100),
            ("stage=reduced", 100),
        ],
    );
    assert_eq!(seen(&snapshotter), expected);

    // A run outside any recorder records nowhere: not into this one.
    let r: Result<u64, MapReduceError<()>> = thread::map_reduce(
        |source| send_all(source, 10),
        |i, writer, _| writer.write(i),
        |outputs, writer, _| writer.write(outputs.sum()),
        Options::new().name("local"),
    );
    assert_eq!(r, Ok(45));
    assert_eq!(seen(&snapshotter), Seen::new());
}

#[test]
fn thread_runs_that_end_well_count_every_item_of_every_stage() {
    const N: u64 = 5000; // several flushes of each tally
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let r: Result<u64, MapReduceError<()>> = thread::map_reduce(
            |source| send_all(source, N),
            |i, writer, _| (0..outputs_of(i)).for_each(|_| writer.write(1)),
            |outputs, writer, _| writer.write(outputs.sum()),
            Options::new().workers(3),
        );
        assert_eq!(r, Ok(outputs_of_all(N)));
    });
    let all = [
        ("result=ok", 1),
        ("stage=generated", N),
        ("stage=mapped", N),
        ("stage=reduced", outputs_of_all(N)),
    ];
    // The default name.
    assert_eq!(seen(&snapshotter), expect("mapreduce", "thread", &all));

    metrics::with_local_recorder(&recorder, || {
        let mut total = 0;
        let r: Result<(), StopError<()>> = thread::map_reduce_void(
            |source| send_all(source, N),
            |i, writer, _| (0..outputs_of(i)).for_each(|_| writer.write(1)),
            |outputs, _| total = outputs.sum::<u64>(),
            Options::new()
                .name("void")
                .timeout(Duration::from_secs(24 * 3600)),
        );
        assert_eq!((r, total), (Ok(()), outputs_of_all(N)));
    });
    assert_eq!(seen(&snapshotter), expect("void", "thread", &all));

    metrics::with_local_recorder(&recorder, || {
        let r: Result<usize, MapReduceError<()>> = thread::map_reduce_iter(
            vec!["a"; 7],
            |s: &str, writer, _| writer.write(s.len()),
            |lengths, writer, _| writer.write(lengths.sum()),
            Options::new().name("iter"),
        );
        assert_eq!(r, Ok(7));
    });
    let expected = expect(
        "iter",
        "thread",
        &[
            ("result=ok", 1),
            ("stage=generated", 7),
            ("stage=mapped", 7),
            ("stage=reduced", 7),
        ],
    );
    assert_eq!(seen(&snapshotter), expected);

    // for_each has no reducer; finish and finish_void take no options: the default name.
    let done = AtomicU64::new(0);
    metrics::with_local_recorder(&recorder, || {
        thread::for_each(
            |source| send_all(source, 20),
            |_| {
                done.fetch_add(1, Ordering::Relaxed);
            },
            Options::new().name("each"),
        );
        let ok = || Ok::<(), ()>(());
        assert_eq!(thread::finish([ok, ok]), Ok(()));
        thread::finish_void((0..3).map(|_| || {}));
    });
    assert_eq!(done.into_inner(), 20);
    let mut expected = expect(
        "each",
        "thread",
        &[
            ("result=ok", 1),
            ("stage=generated", 20),
            ("stage=mapped", 20),
        ],
    );
    expected.extend(expect(
        "mapreduce",
        "thread",
        &[
            ("result=ok", 2),
            ("stage=generated", 5),
            ("stage=mapped", 5),
        ],
    ));
    assert_eq!(seen(&snapshotter), expected);
}

#[test]
fn thread_runs_that_fail_count_as_errors() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let all_through = |outcome: &str| {
        expect(
            "failing",
            "thread",
            &[
                (outcome, 1),
                ("stage=generated", 10),
                ("stage=mapped", 10),
                ("stage=reduced", 10),
            ],
        )
    };
    let opts = || Options::new().workers(2).name("failing");
    let with = |f: &dyn Fn()| metrics::with_local_recorder(&recorder, f);

    // The reducer reads everything, then cancels with an error.
    with(&|| {
        let r: Result<u64, MapReduceError<&str>> = thread::map_reduce(
            |source| send_all(source, 10),
            |i, writer, _| writer.write(i),
            |outputs, _writer, cancel| {
                outputs.for_each(drop);
                cancel.cancel(Some("reducer"));
            },
            opts(),
        );
        assert_eq!(r, Err(MapReduceError::Cancelled("reducer")));
    });
    assert_eq!(seen(&snapshotter), all_through("result=error"));

    // No output, and two outputs: errors of the reducer.
    with(&|| {
        let r: Result<u64, MapReduceError<()>> = thread::map_reduce(
            |source| send_all(source, 10),
            |i, writer, _| writer.write(i),
            |outputs, _writer, _| outputs.for_each(drop),
            opts(),
        );
        assert_eq!(r, Err(MapReduceError::NoOutput));
    });
    assert_eq!(seen(&snapshotter), all_through("result=error"));
    with(&|| {
        let r: Result<u64, MapReduceError<()>> = thread::map_reduce(
            |source| send_all(source, 10),
            |i, writer, _| writer.write(i),
            |outputs, writer, _| {
                writer.write(outputs.sum());
                writer.write(0);
            },
            opts(),
        );
        assert_eq!(r, Err(MapReduceError::MultipleOutputs));
    });
    assert_eq!(seen(&snapshotter), all_through("result=error"));

    // One item whose mapper cancels with an error: mapped (it returned), nothing reduced.
    with(&|| {
        let r: Result<(), StopError<&str>> = thread::map_reduce_void(
            |source| send_all(source, 1),
            |i, writer, cancel| {
                cancel.cancel(Some("mapper"));
                writer.write(i);
            },
            |outputs, _| outputs.for_each(drop),
            opts(),
        );
        assert_eq!(r, Err(StopError::Cancelled("mapper")));
    });
    let expected = expect(
        "failing",
        "thread",
        &[
            ("result=error", 1),
            ("stage=generated", 1),
            ("stage=mapped", 1),
        ],
    );
    assert_eq!(seen(&snapshotter), expected);

    // finish: its first error (the call itself stops with a cancel without error).
    with(&|| {
        let jobs = [Ok(()), Err("boom")].map(|r| move || r);
        assert_eq!(thread::finish(jobs), Err("boom"));
    });
    let s = seen(&snapshotter);
    assert_eq!(count(&s, "result=error"), 1, "{s:?}");
    assert_eq!(count(&s, "result=cancelled"), 0, "{s:?}");
    assert_eq!(count(&s, "result=ok"), 0, "{s:?}");
}

#[test]
fn thread_runs_stopped_without_an_error_count_as_cancelled() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let with = |f: &dyn Fn()| metrics::with_local_recorder(&recorder, f);

    // The reducer reads everything, then cancels without an error.
    with(&|| {
        let r: Result<(), StopError<()>> = thread::map_reduce_void(
            |source| send_all(source, 10),
            |i, writer, _| writer.write(i),
            |outputs, cancel| {
                outputs.for_each(drop);
                cancel.cancel(None);
            },
            Options::new().name("stopped"),
        );
        assert_eq!(r, Err(StopError::CancelledWithoutError));
    });
    let expected = expect(
        "stopped",
        "thread",
        &[
            ("result=cancelled", 1),
            ("stage=generated", 10),
            ("stage=mapped", 10),
            ("stage=reduced", 10),
        ],
    );
    assert_eq!(seen(&snapshotter), expected);

    // A token already cancelled, a deadline already past: nothing runs.
    let token = CancelToken::new();
    token.cancel();
    with(&|| {
        let r: Result<u64, MapReduceError<()>> = thread::map_reduce(
            |source| send_all(source, 10),
            |i, writer, _| writer.write(i),
            |outputs, writer, _| writer.write(outputs.sum()),
            Options::new().name("stopped").token(token.clone()),
        );
        assert_eq!(r, Err(MapReduceError::TokenCancelled));
        let r: Result<(), StopError<()>> = thread::map_reduce_void(
            |source| send_all(source, 10),
            |i, writer, _| writer.write(i),
            |outputs, _| outputs.for_each(drop),
            Options::new()
                .name("stopped")
                .deadline(std::time::Instant::now()),
        );
        assert_eq!(r, Err(StopError::DeadlineExceeded));
    });
    assert_eq!(
        seen(&snapshotter),
        expect("stopped", "thread", &[("result=cancelled", 2)])
    );

    // The token cancelled mid-run, once the generator has put 5 items on the queue: those
    // 5 were generated; the mappers may or may not have reached them.
    let token = CancelToken::new();
    with(&|| {
        let token_in_generator = token.clone();
        let r: Result<(), StopError<()>> = thread::map_reduce_void(
            |source| {
                for i in 0..5 {
                    assert!(source.send(i));
                }
                assert!(source.flush());
                token_in_generator.cancel();
                // The token's cancel stops the call itself: no watcher to wait for.
                assert!(source.is_stopping());
                assert!(!source.send(5));
            },
            |i: u64, writer, _| writer.write(i),
            |outputs, _| outputs.for_each(drop),
            Options::new().name("stopped").token(token.clone()),
        );
        assert_eq!(r, Err(StopError::TokenCancelled));
    });
    let s = seen(&snapshotter);
    assert_eq!(count(&s, "result=cancelled"), 1, "{s:?}");
    assert_eq!(
        count(&s, "result=ok") + count(&s, "result=error"),
        0,
        "{s:?}"
    );
    assert_eq!(count(&s, "stage=generated"), 5, "{s:?}");
    assert!(count(&s, "stage=mapped") <= 5, "{s:?}");
    assert!(
        count(&s, "stage=reduced") <= count(&s, "stage=mapped"),
        "{s:?}"
    );
}

#[test]
fn a_thread_run_whose_mapper_panics_counts_one_panic() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let r = catch_unwind(AssertUnwindSafe(|| {
        metrics::with_local_recorder(&recorder, || {
            thread::map_reduce::<u64, u64, u64, (), _, _, _>(
                |source| send_all(source, 1),
                |_, _, _| panic!("mapper panics"),
                |outputs, writer, _| writer.write(outputs.sum()),
                Options::new().name("panicking"),
            )
        })
    }));
    assert!(r.is_err(), "the panic is re-raised");
    // The panicking mapper did not return: not mapped. Counted once, as a panic only.
    assert_eq!(
        seen(&snapshotter),
        expect(
            "panicking",
            "thread",
            &[("result=panic", 1), ("stage=generated", 1)]
        )
    );
}

// ---------------------------------------------------------------------------------------
// tokio, both modes: the mappers in the caller's task, and on spawned tasks.

#[cfg(feature = "tokio")]
mod on_tokio {
    use std::future::Future;
    use std::time::Duration;

    use keel_mapreduce::tokio as mr;
    use keel_mapreduce::{Cancel, CancelToken, MapReduceError, Options, StopError};
    use metrics_util::debugging::DebuggingRecorder;

    use super::{count, expect, outputs_of, outputs_of_all, seen};

    /// Runs `f` on a paused current-thread runtime, inside the local recorder (every poll
    /// of the call's own future happens on this thread).
    fn on_paused<T>(recorder: &DebuggingRecorder, f: impl Future<Output = T>) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        metrics::with_local_recorder(recorder, || rt.block_on(f))
    }

    /// Runs `f` on a two-thread runtime, inside the local recorder (`block_on` polls the
    /// call on this thread; spawned mappers run on the runtime's).
    fn on_threads<T>(recorder: &DebuggingRecorder, f: impl Future<Output = T>) -> T {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        metrics::with_local_recorder(recorder, || rt.block_on(f))
    }

    async fn send_all(source: mr::Source<u64>, n: u64) {
        for i in 0..n {
            if !source.send(i).await {
                return;
            }
        }
    }

    async fn write_some(i: u64, writer: mr::Writer<u64>) {
        for _ in 0..outputs_of(i) {
            writer.write(1).await;
        }
    }

    async fn sum<E>(mut outputs: mr::Outputs<u64>, writer: mr::Writer<u64>, _: Cancel<E>) {
        let mut s = 0;
        while let Some(v) = outputs.recv().await {
            s += v;
        }
        writer.write(s).await;
    }

    async fn drain(mut outputs: mr::Outputs<u64>) {
        while outputs.recv().await.is_some() {}
    }

    #[test]
    fn tokio_runs_that_end_well_count_every_item_of_every_stage() {
        const N: u64 = 5000;
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let all = [
            ("result=ok", 1),
            ("stage=generated", N),
            ("stage=mapped", N),
            ("stage=reduced", outputs_of_all(N)),
        ];
        on_paused(&recorder, async {
            let r = mr::map_reduce(
                |source| send_all(source, N),
                |i, writer, _: Cancel<()>| write_some(i, writer),
                sum,
                Options::new().workers(8),
            )
            .await;
            assert_eq!(r, Ok(outputs_of_all(N)));
        });
        assert_eq!(seen(&snapshotter), expect("mapreduce", "tokio", &all));

        on_threads(&recorder, async {
            let r = mr::map_reduce_spawned(
                |source| send_all(source, N),
                |i, writer, _: Cancel<()>| write_some(i, writer),
                sum,
                Options::new().workers(2).name("spawned"),
            )
            .await;
            assert_eq!(r, Ok(outputs_of_all(N)));
        });
        assert_eq!(seen(&snapshotter), expect("spawned", "tokio", &all));

        on_threads(&recorder, async {
            let r: Result<(), StopError<()>> = mr::map_reduce_void_spawned(
                |source| send_all(source, N),
                |i, writer, _| write_some(i, writer),
                |outputs, _| drain(outputs),
                Options::new().workers(2).name("spawned"),
            )
            .await;
            assert_eq!(r, Ok(()));
        });
        assert_eq!(seen(&snapshotter), expect("spawned", "tokio", &all));

        // for_each: no outputs; finish and finish_void take no options: the default name.
        on_paused(&recorder, async {
            mr::for_each(
                |source| send_all(source, 30),
                |_| async {},
                Options::new().name("each"),
            )
            .await;
            let ok = |_| async { Ok::<(), ()>(()) };
            assert_eq!(mr::finish((0..4).map(ok)).await, Ok(()));
            mr::finish_void((0..3).map(|_| async {})).await;
        });
        let mut expected = expect(
            "each",
            "tokio",
            &[
                ("result=ok", 1),
                ("stage=generated", 30),
                ("stage=mapped", 30),
            ],
        );
        expected.extend(expect(
            "mapreduce",
            "tokio",
            &[
                ("result=ok", 2),
                ("stage=generated", 7),
                ("stage=mapped", 7),
            ],
        ));
        assert_eq!(seen(&snapshotter), expected);
    }

    #[test]
    fn tokio_runs_that_fail_count_as_errors() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let all_through = |outcome: &str| {
            expect(
                "failing",
                "tokio",
                &[
                    (outcome, 1),
                    ("stage=generated", 10),
                    ("stage=mapped", 10),
                    ("stage=reduced", 10),
                ],
            )
        };
        let opts = || Options::new().workers(3).name("failing");

        on_paused(&recorder, async {
            let r = mr::map_reduce(
                |source| send_all(source, 10),
                |i, writer, _: Cancel<&str>| async move { writer.write(i).await },
                |outputs, _writer: mr::Writer<u64>, cancel| async move {
                    drain(outputs).await;
                    cancel.cancel(Some("reducer"));
                },
                opts(),
            )
            .await;
            assert_eq!(r, Err(MapReduceError::Cancelled("reducer")));
        });
        assert_eq!(seen(&snapshotter), all_through("result=error"));

        on_paused(&recorder, async {
            let r = mr::map_reduce(
                |source| send_all(source, 10),
                |i, writer, _: Cancel<()>| async move { writer.write(i).await },
                |outputs, _writer: mr::Writer<u64>, _| drain(outputs),
                opts(),
            )
            .await;
            assert_eq!(r, Err(MapReduceError::NoOutput));
        });
        assert_eq!(seen(&snapshotter), all_through("result=error"));

        on_threads(&recorder, async {
            let r = mr::map_reduce_spawned(
                |source| send_all(source, 10),
                |i, writer, _: Cancel<()>| async move { writer.write(i).await },
                |outputs, writer, _| async move {
                    drain(outputs).await;
                    writer.write(1u64).await;
                    writer.write(2).await;
                },
                opts(),
            )
            .await;
            assert_eq!(r, Err(MapReduceError::MultipleOutputs));
        });
        assert_eq!(seen(&snapshotter), all_through("result=error"));

        // finish: its first error.
        on_paused(&recorder, async {
            let jobs = [Ok(()), Err("boom"), Ok(())].map(|r| async move { r });
            assert_eq!(mr::finish(jobs).await, Err("boom"));
        });
        let s = seen(&snapshotter);
        assert_eq!(count(&s, "result=error"), 1, "{s:?}");
        assert_eq!(
            count(&s, "result=cancelled") + count(&s, "result=ok"),
            0,
            "{s:?}"
        );
    }

    #[test]
    fn tokio_runs_stopped_without_an_error_count_as_cancelled() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();

        // The reducer reads everything, then cancels without an error.
        on_paused(&recorder, async {
            let r: Result<(), StopError<()>> = mr::map_reduce_void(
                |source| send_all(source, 10),
                |i, writer, _| async move { writer.write(i).await },
                |outputs, cancel| async move {
                    drain(outputs).await;
                    cancel.cancel(None);
                },
                Options::new().name("stopped"),
            )
            .await;
            assert_eq!(r, Err(StopError::CancelledWithoutError));
        });
        let expected = expect(
            "stopped",
            "tokio",
            &[
                ("result=cancelled", 1),
                ("stage=generated", 10),
                ("stage=mapped", 10),
                ("stage=reduced", 10),
            ],
        );
        assert_eq!(seen(&snapshotter), expected);

        // The deadline, on the paused clock, while the 3 mappers wait for ever: 3 items
        // were generated, none mapped.
        on_paused(&recorder, async {
            let r = mr::map_reduce(
                |source| send_all(source, 3),
                |_, _writer: mr::Writer<u64>, _: Cancel<()>| std::future::pending::<()>(),
                sum,
                Options::new()
                    .workers(3)
                    .name("stopped")
                    .timeout(Duration::from_secs(5)),
            )
            .await;
            assert_eq!(r, Err(MapReduceError::DeadlineExceeded));
        });
        let expected = expect(
            "stopped",
            "tokio",
            &[("result=cancelled", 1), ("stage=generated", 3)],
        );
        assert_eq!(seen(&snapshotter), expected);

        // The token, cancelled by the generator once its 4 items are on the queue.
        on_paused(&recorder, async {
            let token = CancelToken::new();
            let cancel_it = token.clone();
            let r: Result<(), StopError<()>> = mr::map_reduce_void(
                |source| async move {
                    send_all(source, 4).await;
                    cancel_it.cancel();
                    // Pending until the call drops this future.
                    std::future::pending::<()>().await;
                },
                |i, writer, _| async move { writer.write(i).await },
                |outputs, _| drain(outputs),
                Options::new().workers(2).name("stopped").token(token),
            )
            .await;
            assert_eq!(r, Err(StopError::TokenCancelled));
        });
        let s = seen(&snapshotter);
        assert_eq!(count(&s, "result=cancelled"), 1, "{s:?}");
        assert_eq!(
            count(&s, "result=ok") + count(&s, "result=error"),
            0,
            "{s:?}"
        );
        assert_eq!(count(&s, "stage=generated"), 4, "{s:?}");
        assert!(count(&s, "stage=mapped") <= 4, "{s:?}");
        assert!(
            count(&s, "stage=reduced") <= count(&s, "stage=mapped"),
            "{s:?}"
        );

        // The caller drops the call's future (a timeout around it, on the paused clock)
        // while its 2 mappers wait for ever, in the task and on spawned tasks.
        on_paused(&recorder, async {
            let call = mr::map_reduce(
                |source| send_all(source, 2),
                |_, _writer: mr::Writer<u64>, _: Cancel<()>| std::future::pending::<()>(),
                sum,
                Options::new().workers(2).name("dropped"),
            );
            let r = tokio::time::timeout(Duration::from_secs(1), call).await;
            assert!(r.is_err(), "the call was still running");
        });
        let expected = expect(
            "dropped",
            "tokio",
            &[("result=cancelled", 1), ("stage=generated", 2)],
        );
        assert_eq!(seen(&snapshotter), expected);
        on_threads(&recorder, async {
            let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
            let call = mr::map_reduce_void_spawned(
                |source| send_all(source, 2),
                move |_, _writer: mr::Writer<u64>, _: Cancel<()>| {
                    let started = started_tx.clone();
                    async move {
                        started.send(()).unwrap();
                        std::future::pending::<()>().await;
                    }
                },
                |outputs, _| drain(outputs),
                Options::new().workers(2).name("dropped"),
            );
            // Hand-off: drop the call once both mappers have started.
            let mut call = Box::pin(call);
            tokio::select! {
                _ = &mut call => panic!("the mappers never return"),
                _ = async {
                    started_rx.recv().await.unwrap();
                    started_rx.recv().await.unwrap();
                } => {}
            }
            drop(call);
        });
        let expected = expect(
            "dropped",
            "tokio",
            &[("result=cancelled", 1), ("stage=generated", 2)],
        );
        assert_eq!(seen(&snapshotter), expected);
    }

    #[test]
    fn a_tokio_run_whose_mapper_panics_counts_one_panic() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        for spawned in [false, true] {
            let run = async move {
                let opts = Options::new().workers(2).name("panicking");
                let mapper = |i: u64, writer: mr::Writer<u64>, _: Cancel<()>| async move {
                    if i == 1 {
                        panic!("mapper panics");
                    }
                    writer.write(i).await;
                };
                if spawned {
                    mr::map_reduce_spawned(|s| send_all(s, 2), mapper, sum, opts).await
                } else {
                    mr::map_reduce(|s| send_all(s, 2), mapper, sum, opts).await
                }
            };
            // The panic is re-raised from the call's poll, on this thread.
            let r = catch_unwind_future(&recorder, run);
            assert!(r.is_err(), "the panic is re-raised");
            let s = seen(&snapshotter);
            assert_eq!(count(&s, "result=panic"), 1, "{s:?}");
            assert_eq!(
                count(&s, "result=ok") + count(&s, "result=error") + count(&s, "result=cancelled"),
                0,
                "{s:?}"
            );
            assert_eq!(count(&s, "stage=generated"), 2, "{s:?}");
            assert!(count(&s, "stage=mapped") <= 1, "{s:?}");
        }
    }

    /// Runs `f` to its end on a two-thread runtime; `Err` if it panicked.
    fn catch_unwind_future<T>(
        recorder: &DebuggingRecorder,
        f: impl Future<Output = T>,
    ) -> std::thread::Result<T> {
        super::catch_unwind(super::AssertUnwindSafe(|| on_threads(recorder, f)))
    }
}
