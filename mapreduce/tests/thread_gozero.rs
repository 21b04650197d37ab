//! go-zero's mr scenarios (section 7.6) on the OS-thread flavour.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

use keel_mapreduce::{Cancel, CancelToken, MapReduceError, Options, StopError, thread};

const DUMMY: &str = "dummy";

fn send_all<T: Copy + Send + Sync>(items: &[T]) -> impl FnOnce(&thread::Source<T>) + Send + '_ {
    move |source| {
        for &i in items {
            if !source.send(i) {
                return;
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<not a string>".to_owned()
    }
}

#[test]
fn finish_sums_and_none_is_a_no_op() {
    let total = AtomicI32::new(0);
    let add = |n| {
        let total = &total;
        move || -> Result<(), &str> {
            total.fetch_add(n, Ordering::Relaxed);
            Ok(())
        }
    };
    assert_eq!(thread::finish([add(2), add(3), add(5)]), Ok(()));
    assert_eq!(total.load(Ordering::Relaxed), 10);
    let none: Vec<fn() -> Result<(), &'static str>> = Vec::new();
    assert_eq!(thread::finish(none), Ok(()));
    thread::finish_void(Vec::<fn()>::new());
}

#[test]
fn finish_with_partial_errors_returns_the_error() {
    type F = Box<dyn FnOnce() -> Result<(), &'static str> + Send>;
    let one: Vec<F> = vec![
        Box::new(|| Ok(())),
        Box::new(|| Err(DUMMY)),
        Box::new(|| Ok(())),
    ];
    assert_eq!(thread::finish(one), Err(DUMMY));
    let two: Vec<F> = vec![
        Box::new(|| Ok(())),
        Box::new(|| Err(DUMMY)),
        Box::new(|| Err(DUMMY)),
    ];
    assert_eq!(thread::finish(two), Err(DUMMY));
    let only: Vec<F> = vec![Box::new(|| Err(DUMMY))];
    assert_eq!(thread::finish(only), Err(DUMMY));
}

#[test]
fn finish_void_runs_all() {
    let total = AtomicI32::new(0);
    let add = |n| {
        let total = &total;
        move || {
            total.fetch_add(n, Ordering::Relaxed);
        }
    };
    thread::finish_void([add(2), add(3), add(5)]);
    assert_eq!(total.load(Ordering::Relaxed), 10);
}

#[test]
fn for_each_counts_every_item_with_workers_zero() {
    let items: Vec<i32> = (0..1000).collect();
    let count = AtomicUsize::new(0);
    thread::for_each(
        send_all(&items),
        |_| {
            count.fetch_add(1, Ordering::Relaxed);
        },
        Options::new().workers(0),
    );
    assert_eq!(count.load(Ordering::Relaxed), 1000);

    let even = AtomicUsize::new(0);
    thread::for_each(
        send_all(&items),
        |i| {
            if i % 2 == 0 {
                even.fetch_add(1, Ordering::Relaxed);
            }
        },
        Options::new().workers(0),
    );
    assert_eq!(even.load(Ordering::Relaxed), 500);
}

#[test]
fn for_each_mapper_panic_is_re_raised_and_stops_dispatch() {
    let items: Vec<i32> = (0..1000).collect();
    let ran = AtomicUsize::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        thread::for_each(
            send_all(&items),
            |_| {
                ran.fetch_add(1, Ordering::Relaxed);
                panic!("foo");
            },
            Options::new(),
        )
    }));
    assert_eq!(panic_message(r.unwrap_err()), "foo");
    assert!(
        ran.load(Ordering::Relaxed) < 500,
        "ran {}",
        ran.load(Ordering::Relaxed)
    );
}

#[test]
fn for_each_generator_panic_is_re_raised() {
    let r = catch_unwind(|| {
        thread::for_each(
            |_: &thread::Source<i32>| panic!("foo"),
            |_| {},
            Options::new(),
        )
    });
    assert_eq!(panic_message(r.unwrap_err()), "foo");
}

#[test]
fn map_reduce_mapper_panic_is_re_raised() {
    let items: Vec<i32> = (0..1000).collect();
    let ran = AtomicUsize::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        thread::map_reduce::<_, i32, i32, (), _, _, _>(
            send_all(&items),
            |_, _, _| {
                ran.fetch_add(1, Ordering::Relaxed);
                panic!("foo");
            },
            |outputs, w, _| w.write(outputs.sum()),
            Options::new(),
        )
    }));
    assert_eq!(panic_message(r.unwrap_err()), "foo");
    assert!(ran.load(Ordering::Relaxed) < 500);
}

fn squares(
    workers: usize,
    mapper: impl Fn(i32, &thread::Writer<i32>, &Cancel<&'static str>) + Sync,
    reducer: impl FnOnce(thread::Outputs<i32>, &thread::Writer<i32>, &Cancel<&'static str>) + Send,
    via_iter: bool,
) -> Result<i32, MapReduceError<&'static str>> {
    let opts = Options::new().workers(workers);
    if via_iter {
        thread::map_reduce_iter(1..=4, mapper, reducer, opts)
    } else {
        thread::map_reduce(send_all(&[1, 2, 3, 4]), mapper, reducer, opts)
    }
}

fn sum_reducer(outputs: thread::Outputs<i32>, w: &thread::Writer<i32>, _: &Cancel<&'static str>) {
    w.write(outputs.sum());
}

#[test]
fn map_reduce_cases() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for workers in [cpus, 0] {
        for via_iter in [false, true] {
            let square = |v: i32, w: &thread::Writer<i32>, _: &Cancel<&'static str>| w.write(v * v);
            assert_eq!(squares(workers, square, sum_reducer, via_iter), Ok(30));

            let cancel_on_three = |v: i32, w: &thread::Writer<i32>, c: &Cancel<&'static str>| {
                if v % 3 == 0 {
                    c.cancel(Some(DUMMY));
                }
                w.write(v * v);
            };
            assert_eq!(
                squares(workers, cancel_on_three, sum_reducer, via_iter),
                Err(MapReduceError::Cancelled(DUMMY))
            );

            let cancel_nil = |v: i32, w: &thread::Writer<i32>, c: &Cancel<&'static str>| {
                if v % 3 == 0 {
                    c.cancel(None);
                }
                w.write(v * v);
            };
            assert_eq!(
                squares(workers, cancel_nil, sum_reducer, via_iter),
                Err(MapReduceError::CancelledWithoutError)
            );

            let reducer_cancels = |outputs: thread::Outputs<i32>,
                                   w: &thread::Writer<i32>,
                                   c: &Cancel<&'static str>| {
                let mut sum = 0;
                for v in outputs {
                    sum += v;
                    if sum > 10 {
                        c.cancel(Some(DUMMY));
                    }
                }
                w.write(sum);
            };
            assert_eq!(
                squares(workers, square, reducer_cancels, via_iter),
                Err(MapReduceError::Cancelled(DUMMY))
            );
        }
    }
}

#[test]
fn map_reduce_void_cases() {
    let total = AtomicI32::new(0);
    let reducer = |outputs: thread::Outputs<i32>, _: &Cancel<&'static str>| {
        total.store(outputs.sum(), Ordering::Relaxed);
    };
    let r = thread::map_reduce_void(
        send_all(&[1, 2, 3, 4]),
        |v, w, _| w.write(v * v),
        reducer,
        Options::new(),
    );
    assert_eq!(r, Ok(()));
    assert_eq!(total.load(Ordering::Relaxed), 30);

    let r = thread::map_reduce_void(
        send_all(&[1, 2, 3, 4]),
        |v: i32, w, c: &Cancel<&str>| {
            if v % 3 == 0 {
                c.cancel(None);
            }
            w.write(v * v)
        },
        |outputs, _| outputs.for_each(drop),
        Options::new(),
    );
    assert_eq!(r, Err(StopError::CancelledWithoutError));
}

#[test]
fn map_reduce_void_results_arrive_in_arrival_order() {
    let seen = Mutex::new(Vec::new());
    // Item 0's mapper writes only once the reducer has received item 1: an explicit
    // hand-off, so the order does not depend on how the two workers are scheduled. The
    // wait is bounded so that a map-reduce that ran the two items one after the other
    // fails instead of hanging.
    let (one_arrived, wait_for_one) = std::sync::mpsc::channel::<()>();
    let wait_for_one = Mutex::new(wait_for_one);
    let r: Result<(), StopError<()>> = thread::map_reduce_void(
        send_all(&[0, 1]),
        |v: i32, w, _| {
            if v == 0 {
                let arrived = wait_for_one
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(30));
                assert!(arrived.is_ok(), "item 1 never reached the reducer");
            }
            w.write(v);
        },
        |outputs, _| {
            for v in outputs {
                seen.lock().unwrap().push(v);
                if v == 1 {
                    let _ = one_arrived.send(());
                }
            }
        },
        Options::new().workers(2),
    );
    assert_eq!(r, Ok(()));
    assert_eq!(*seen.lock().unwrap(), [1, 0]);
}

#[test]
fn reducer_writing_twice_or_never_is_an_error() {
    let twice: Result<i32, MapReduceError<()>> = thread::map_reduce(
        send_all(&[1, 2]),
        |v, w, _| w.write(v),
        |outputs, w, _| {
            let sum = outputs.sum();
            w.write(sum);
            w.write(sum);
        },
        Options::new(),
    );
    assert_eq!(twice, Err(MapReduceError::MultipleOutputs));

    let never: Result<i32, MapReduceError<()>> = thread::map_reduce(
        send_all(&[1, 2]),
        |v: i32, w, _| w.write(v),
        |_, _, _| {},
        Options::new(),
    );
    assert_eq!(never, Err(MapReduceError::NoOutput));
}

#[test]
fn panics_in_reducer_and_in_both_surface_once() {
    let items: Vec<i32> = (0..100).collect();
    let r = catch_unwind(AssertUnwindSafe(|| {
        thread::map_reduce_void::<_, i32, (), _, _, _>(
            send_all(&items),
            |v, w, _| w.write(v),
            |_, _| panic!("reducer"),
            Options::new().workers(1),
        )
    }));
    assert_eq!(panic_message(r.unwrap_err()), "reducer");

    let r = catch_unwind(AssertUnwindSafe(|| {
        thread::map_reduce::<_, i32, i32, (), _, _, _>(
            send_all(&items),
            |_, _, _| panic!("mapper"),
            |_, _, _| panic!("reducer"),
            Options::new(),
        )
    }));
    let msg = panic_message(r.unwrap_err());
    assert!(msg == "mapper" || msg == "reducer", "{msg}");
}

#[test]
fn cancel_tells_the_generator_to_stop() {
    let finished = AtomicBool::new(false);
    let refused = AtomicBool::new(false);
    let r = thread::map_reduce_void(
        |source: &thread::Source<i32>| {
            for i in 0..32 {
                if !source.send(i) {
                    refused.store(true, Ordering::Relaxed);
                    break;
                }
                if i == 8 {
                    // Give the mapper of item 8 time to cancel before the rest is sent.
                    source.flush();
                    while !source.is_stopping() {
                        std::thread::yield_now();
                    }
                }
            }
            finished.store(true, Ordering::Relaxed);
        },
        |v: i32, w, c: &Cancel<&str>| {
            if v == 8 {
                c.cancel(Some("anything"));
            }
            w.write(v);
        },
        |outputs, _| outputs.for_each(drop),
        Options::new(),
    );
    assert_eq!(r, Err(StopError::Cancelled("anything")));
    assert!(refused.load(Ordering::Relaxed), "send kept returning true");
    assert!(finished.load(Ordering::Relaxed));

    let r = thread::map_reduce_void(
        send_all(&[0, 1, 2, 3]),
        |v: i32, w, c: &Cancel<&str>| {
            if v == 1 {
                c.cancel(Some("anything"));
            }
            w.write(v);
        },
        |outputs, _| outputs.for_each(drop),
        Options::new(),
    );
    assert_eq!(r.unwrap_err().to_string(), "mapreduce cancelled: anything");
}

/// A generator that cancels `token` at item 8 and sends until refused; `offered` ends as
/// the first item refused.
fn cancel_token_at_eight<'a>(
    token: &'a CancelToken,
    offered: &'a AtomicI32,
) -> impl FnOnce(&thread::Source<i32>) + Send + 'a {
    move |source| {
        for i in 0.. {
            if i == 8 {
                token.cancel();
            }
            offered.store(i, Ordering::Relaxed);
            if !source.send(i) {
                return;
            }
        }
    }
}

#[test]
fn token_cancelled_at_item_eight() {
    // The token's cancel stops the call before it returns, however busy the machine: the
    // very next send is refused, so the reducer sums at most items 0..8.
    let token = CancelToken::new();
    let offered = AtomicI32::new(-1);
    let r: Result<i32, MapReduceError<()>> = thread::map_reduce(
        cancel_token_at_eight(&token, &offered),
        |v, w, _| w.write(v),
        |outputs, w, _| w.write(outputs.sum()),
        Options::new().token(token.clone()),
    );
    assert_eq!(r, Err(MapReduceError::TokenCancelled));
    assert_eq!(offered.load(Ordering::Relaxed), 8);

    let token = CancelToken::new();
    let offered = AtomicI32::new(-1);
    thread::for_each(
        cancel_token_at_eight(&token, &offered),
        |_| {},
        Options::new().token(token.clone()),
    );
    assert!(token.is_cancelled());
    assert_eq!(offered.load(Ordering::Relaxed), 8);

    let r: Result<i32, MapReduceError<()>> = thread::map_reduce(
        |s: &thread::Source<i32>| {
            s.send(1);
        },
        |v, w, _| w.write(v),
        |outputs, w, _| w.write(outputs.sum()),
        Options::new().token(token),
    );
    assert_eq!(r, Err(MapReduceError::TokenCancelled));
}

#[test]
fn deadline_exceeded() {
    // The generator never ends on its own: only the deadline stops the call.
    let r: Result<i32, MapReduceError<()>> = thread::map_reduce(
        |source: &thread::Source<i32>| while source.send(1) {},
        |v, w, _| w.write(v),
        |outputs, w, _| w.write(outputs.sum()),
        Options::new().timeout(Duration::from_millis(20)),
    );
    assert_eq!(r, Err(MapReduceError::DeadlineExceeded));

    let r: Result<i32, MapReduceError<()>> = thread::map_reduce(
        |source: &thread::Source<i32>| {
            source.send(1);
        },
        |v, w, _| w.write(v),
        |outputs, w, _| w.write(outputs.sum()),
        Options::new().timeout(Duration::ZERO),
    );
    assert_eq!(r, Err(MapReduceError::DeadlineExceeded));
}

#[test]
fn stages_may_borrow_from_the_caller() {
    let words = vec!["a".to_owned(), "bb".to_owned(), "ccc".to_owned()];
    let total: Result<usize, MapReduceError<()>> = thread::map_reduce_iter(
        &words,
        |w: &String, out, _| out.write(w.len()),
        |lens, out, _| out.write(lens.sum()),
        Options::new(),
    );
    assert_eq!(total, Ok(6));
}
