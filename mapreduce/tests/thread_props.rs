//! Property tests of the OS-thread flavour: results equal a sequential reference,
//! cancellation and panics at random points always end the call with that outcome, and
//! no thread outlives a call.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use keel_mapreduce::{CancelToken, MapReduceError, Options, thread};
use proptest::prelude::*;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Waits for the thread count to come back to `start`: a joined thread may be listed for a
/// moment after `pthread_join` returned (until it is scheduled to finish exiting, which a
/// loaded machine may delay): polled, with a deadline far beyond that.
fn assert_threads_back_to(start: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = threads();
        if now <= start {
            return;
        }
        if Instant::now() >= deadline {
            let names: Vec<String> = std::fs::read_dir("/proc/self/task")
                .map(|d| {
                    d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                        .collect()
                })
                .unwrap_or_default();
            panic!("{now} threads ({names:?}), {start} before the call");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Generator,
    Mapper,
    Reducer,
}

fn stage() -> impl Strategy<Value = Stage> {
    prop_oneof![
        Just(Stage::Generator),
        Just(Stage::Mapper),
        Just(Stage::Reducer)
    ]
}

fn generate(n: u64, stop_at: Option<u64>) -> impl FnOnce(&thread::Source<u64>) + Send {
    move |source| {
        for i in 0..n {
            if stop_at == Some(i) {
                panic!("generator {i}");
            }
            if !source.send(i) {
                return;
            }
        }
    }
}

/// One test function, so the harness starts no test thread while a case counts threads.
#[test]
fn properties() {
    equals_a_sequential_reference();
    cancel_at_a_random_point_returns_that_error();
    a_panic_at_a_random_point_reaches_the_caller();
}

fn equals_a_sequential_reference() {
    proptest!(ProptestConfig::with_cases(24), |(n in 0u64..2000, workers in 1usize..20, multiset in any::<bool>())| {
        let start = threads();
        if multiset {
            let got: Result<Vec<u64>, MapReduceError<()>> = thread::map_reduce(
                generate(n, None),
                |x, w, _| w.write(x * 3 + 1),
                |outs, w, _| w.write(outs.collect()),
                Options::new().workers(workers),
            );
            let mut got = got.unwrap();
            got.sort_unstable();
            let want: Vec<u64> = (0..n).map(|x| x * 3 + 1).collect();
            prop_assert_eq!(got, want);
        } else {
            let got: Result<u64, MapReduceError<()>> = thread::map_reduce(
                generate(n, None),
                |x, w, _| w.write(x * x),
                |outs, w, _| w.write(outs.sum()),
                Options::new().workers(workers),
            );
            prop_assert_eq!(got, Ok((0..n).map(|x| x * x).sum::<u64>()));
        }
        assert_threads_back_to(start);
    });
}

fn cancel_at_a_random_point_returns_that_error() {
    proptest!(ProptestConfig::with_cases(24), |(n in 1u64..2000, at_frac in 0.0f64..1.0, workers in 1usize..20, by in stage())| {
        let start = threads();
        let at = (n as f64 * at_frac) as u64;
        let began = Instant::now();
        // The generator stage cancels through the caller's token.
        let token = CancelToken::new();
        let got: Result<u64, MapReduceError<u64>> = thread::map_reduce(
            // The generator never ends on its own: only the cancel stops it.
            |source: &thread::Source<u64>| {
                let mut i = 0;
                while source.send(i % n) {
                    if matches!(by, Stage::Generator) && i == at {
                        token.cancel();
                    }
                    i += 1;
                }
            },
            move |x, w, c| {
                if matches!(by, Stage::Mapper) && x == at {
                    c.cancel(Some(at));
                }
                w.write(x);
            },
            move |outs, w, c| {
                for x in outs {
                    if matches!(by, Stage::Reducer) && x == at {
                        c.cancel(Some(at));
                    }
                }
                w.write(0);
            },
            Options::new().workers(workers).token(token.clone()),
        );
        let want = match by {
            Stage::Generator => MapReduceError::TokenCancelled,
            _ => MapReduceError::Cancelled(at),
        };
        prop_assert_eq!(got, Err(want));
        prop_assert!(began.elapsed() < Duration::from_secs(10), "took {:?}", began.elapsed());
        assert_threads_back_to(start);
    });
}

fn a_panic_at_a_random_point_reaches_the_caller() {
    proptest!(ProptestConfig::with_cases(24), |(n in 1u64..2000, at_frac in 0.0f64..1.0, workers in 1usize..20, stage in stage())| {
        let start = threads();
        let at = (n as f64 * at_frac) as u64;
        let r = catch_unwind(AssertUnwindSafe(|| {
            thread::map_reduce::<u64, u64, u64, (), _, _, _>(
                generate(n, matches!(stage, Stage::Generator).then_some(at)),
                move |x, w, _| {
                    if matches!(stage, Stage::Mapper) && x == at {
                        panic!("mapper {x}");
                    }
                    w.write(x);
                },
                move |outs, w, _| {
                    let mut sum = 0;
                    for x in outs {
                        if matches!(stage, Stage::Reducer) && x == at {
                            panic!("reducer {x}");
                        }
                        sum += x;
                    }
                    w.write(sum);
                },
                Options::new().workers(workers),
            )
        }));
        let payload = r.expect_err("the call returned instead of panicking");
        let msg = payload.downcast_ref::<String>().cloned().unwrap_or_default();
        let want = match stage {
            Stage::Generator => format!("generator {at}"),
            Stage::Mapper => format!("mapper {at}"),
            Stage::Reducer => format!("reducer {at}"),
        };
        prop_assert_eq!(msg, want);
        assert_threads_back_to(start);
    });
}
