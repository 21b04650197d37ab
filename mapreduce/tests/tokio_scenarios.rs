#![cfg(feature = "tokio")]
//! go-zero's mr scenarios (section 7.6) on the tokio flavour, in both modes.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use keel_mapreduce::tokio as mr;
use keel_mapreduce::{Cancel, CancelToken, MapReduceError, Options, StopError};

type Res<T> = Result<T, MapReduceError<&'static str>>;
/// What the `_void` forms return: a stop, or nothing.
type Stopped = Result<(), StopError<&'static str>>;

async fn gen_n(source: mr::Source<u64>, range: std::ops::RangeInclusive<u64>) {
    for i in range {
        if !source.send(i).await {
            return;
        }
    }
}

async fn sum(mut out: mr::Outputs<u64>, w: mr::Writer<u64>, _c: Cancel<&'static str>) {
    let mut s = 0;
    while let Some(v) = out.recv().await {
        s += v;
    }
    w.write(s).await;
}

/// Runs `f` and returns the panic message it raised.
async fn panic_msg<F: Future>(f: F) -> String {
    let mut f = Box::pin(f);
    let r = std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(_)) => std::task::Poll::Ready(None),
            Err(p) => std::task::Poll::Ready(Some(p)),
        }
    })
    .await;
    let p = r.expect("the call should have panicked");
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[tokio::test]
async fn finish_sums_and_errors() {
    let total = AtomicUsize::new(0);
    let add = |n: usize| {
        let total = &total;
        async move {
            total.fetch_add(n, Ordering::Relaxed);
            Ok::<(), &str>(())
        }
    };
    assert_eq!(mr::finish(vec![add(2), add(3), add(5)]).await, Ok(()));
    assert_eq!(total.load(Ordering::Relaxed), 10);

    let none: Vec<std::future::Ready<Result<(), &str>>> = vec![];
    assert_eq!(mr::finish(none).await, Ok(()));
    mr::finish_void(Vec::<std::future::Ready<()>>::new()).await;

    type B = std::pin::Pin<Box<dyn Future<Output = Result<(), &'static str>> + Send>>;
    let one_err: Vec<B> = vec![
        Box::pin(async { Ok(()) }),
        Box::pin(async { Err("dummy") }),
        Box::pin(async { Ok(()) }),
    ];
    assert_eq!(mr::finish(one_err).await, Err("dummy"));
    let two_err: Vec<B> = vec![
        Box::pin(async { Err("dummy") }),
        Box::pin(async { Err("dummy") }),
    ];
    assert_eq!(mr::finish(two_err).await, Err("dummy"));
}

#[tokio::test(start_paused = true)]
async fn finish_error_drops_the_rest() {
    let finished = AtomicBool::new(false);
    type B<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), &'static str>> + Send + 'a>>;
    let futs: Vec<B<'_>> = vec![
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            finished.store(true, Ordering::Relaxed);
            Ok(())
        }),
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Err("first")
        }),
    ];
    let start = tokio::time::Instant::now();
    assert_eq!(mr::finish(futs).await, Err("first"));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(!finished.load(Ordering::Relaxed));
}

#[tokio::test]
async fn finish_void_runs_all() {
    let total = AtomicUsize::new(0);
    let add = |n| {
        let total = &total;
        async move {
            tokio::task::yield_now().await;
            total.fetch_add(n, Ordering::Relaxed);
        }
    };
    mr::finish_void(vec![add(2), add(3), add(5)]).await;
    assert_eq!(total.load(Ordering::Relaxed), 10);
}

#[tokio::test]
async fn for_each_counts_all_and_odd() {
    let n = AtomicUsize::new(0);
    mr::for_each(
        |s| async move {
            for i in 0..1000u32 {
                s.send(i).await;
            }
        },
        |_i| async {
            n.fetch_add(1, Ordering::Relaxed);
        },
        Options::new().workers(0),
    )
    .await;
    assert_eq!(n.load(Ordering::Relaxed), 1000);

    let even = AtomicUsize::new(0);
    mr::for_each(
        |s| async move {
            for i in 0..1000u32 {
                s.send(i).await;
            }
        },
        |i| {
            let even = &even;
            async move {
                if i % 2 == 0 {
                    even.fetch_add(1, Ordering::Relaxed);
                }
            }
        },
        Options::new(),
    )
    .await;
    assert_eq!(even.load(Ordering::Relaxed), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_each_spawned_counts_all() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = Arc::clone(&n);
    mr::for_each_spawned(
        |s| async move {
            for i in 0..10_000u32 {
                s.send(i).await;
            }
        },
        move |_i| {
            let n = Arc::clone(&n2);
            async move {
                n.fetch_add(1, Ordering::Relaxed);
            }
        },
        Options::new().workers(3),
    )
    .await;
    assert_eq!(n.load(Ordering::Relaxed), 10_000);
}

#[tokio::test]
async fn panics_are_reraised_with_their_payload() {
    // for_each: mapper panic, and dispatch stops early.
    let ran = AtomicUsize::new(0);
    let msg = panic_msg(mr::for_each(
        |s| async move {
            for i in 0..1000u32 {
                if !s.send(i).await {
                    return;
                }
            }
        },
        |i| {
            let ran = &ran;
            async move {
                ran.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
                if i == 1 {
                    panic!("foo");
                }
            }
        },
        Options::new().workers(1),
    ))
    .await;
    assert_eq!(msg, "foo");
    assert!(ran.load(Ordering::Relaxed) < 500);

    // for_each: generator panic.
    let msg = panic_msg(mr::for_each(
        |s: mr::Source<u32>| async move {
            s.send(1).await;
            panic!("foo in generator");
        },
        |_i| async {},
        Options::new(),
    ))
    .await;
    assert_eq!(msg, "foo in generator");

    // map_reduce: mapper panic.
    let msg = panic_msg(mr::map_reduce(
        |s| gen_n(s, 1..=4),
        |i, w: mr::Writer<u64>, _c: Cancel<&'static str>| async move {
            if i == 2 {
                panic!("foo in mapper");
            }
            w.write(i).await;
        },
        sum,
        Options::new(),
    ))
    .await;
    assert_eq!(msg, "foo in mapper");

    // map_reduce: reducer panic (workers 1).
    let msg = panic_msg(mr::map_reduce_void(
        |s| gen_n(s, 1..=4),
        |i, w: mr::Writer<u64>, _c: Cancel<&'static str>| async move { w.write(i).await },
        |mut out, _c| async move {
            if out.recv().await.is_some() {
                panic!("foo in reducer");
            }
        },
        Options::new().workers(1),
    ))
    .await;
    assert_eq!(msg, "foo in reducer");

    // Both mapper and reducer panic: exactly one surfaces.
    let msg = panic_msg(mr::map_reduce_void(
        |s| gen_n(s, 1..=4),
        |_i, _w: mr::Writer<u64>, _c: Cancel<&'static str>| async move { panic!("mapper") },
        |mut out, _c| async move {
            out.recv().await;
            panic!("reducer");
        },
        Options::new(),
    ))
    .await;
    assert!(msg == "mapper" || msg == "reducer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_mapper_panic_is_reraised() {
    let msg = panic_msg(mr::map_reduce_spawned(
        |s| gen_n(s, 1..=1000),
        |i, w: mr::Writer<u64>, _c: Cancel<&'static str>| async move {
            if i == 77 {
                panic!("spawned foo");
            }
            w.write(i).await;
        },
        sum,
        Options::new().workers(4),
    ))
    .await;
    assert_eq!(msg, "spawned foo");
}

/// The four go-zero cases through every entry point.
async fn squares(
    mode: &str,
    mapper: impl Fn(
        u64,
        mr::Writer<u64>,
        Cancel<&'static str>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    + Send
    + Sync
    + 'static,
    reduce_cancel: bool,
) -> Res<u64> {
    let reducer = move |mut out: mr::Outputs<u64>, w: mr::Writer<u64>, c: Cancel<&'static str>| async move {
        let mut s = 0;
        while let Some(v) = out.recv().await {
            s += v;
            if reduce_cancel && s > 10 {
                c.cancel(Some("dummy"));
            }
        }
        w.write(s).await;
    };
    match mode {
        "local" => mr::map_reduce(|s| gen_n(s, 1..=4), mapper, reducer, Options::new()).await,
        "one" => {
            mr::map_reduce(
                |s| gen_n(s, 1..=4),
                mapper,
                reducer,
                Options::new().workers(0),
            )
            .await
        }
        "stream" => {
            let st = Iter((1..=4u64).collect::<Vec<_>>().into_iter());
            mr::map_reduce_stream(st, mapper, reducer, Options::new()).await
        }
        "spawned" => {
            mr::map_reduce_spawned(
                |s| gen_n(s, 1..=4),
                mapper,
                reducer,
                Options::new().workers(2),
            )
            .await
        }
        _ => unreachable!(),
    }
}

struct Iter<I>(I);
impl<I: Iterator + Unpin> futures_core::Stream for Iter<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_reduce_squares_and_cancels() {
    for mode in ["local", "one", "stream", "spawned"] {
        let r = squares(
            mode,
            |i, w, _c| Box::pin(async move { w.write(i * i).await }),
            false,
        )
        .await;
        assert_eq!(r, Ok(30), "{mode}");
        let r = squares(
            mode,
            |i, w, c| {
                Box::pin(async move {
                    if i % 3 == 0 {
                        c.cancel(Some("dummy"));
                    }
                    w.write(i * i).await
                })
            },
            false,
        )
        .await;
        assert_eq!(r, Err(MapReduceError::Cancelled("dummy")), "{mode}");
        let r = squares(
            mode,
            |i, w, c| {
                Box::pin(async move {
                    if i % 3 == 0 {
                        c.cancel(None);
                    }
                    w.write(i * i).await
                })
            },
            false,
        )
        .await;
        assert_eq!(r, Err(MapReduceError::CancelledWithoutError), "{mode}");
        let r = squares(
            mode,
            |i, w, _c| Box::pin(async move { w.write(i * i).await }),
            true,
        )
        .await;
        assert_eq!(r, Err(MapReduceError::Cancelled("dummy")), "{mode}");
    }
}

#[tokio::test]
async fn map_reduce_void_cases() {
    let total = Arc::new(AtomicUsize::new(0));
    let t = Arc::clone(&total);
    let r: Stopped = mr::map_reduce_void(
        |s| gen_n(s, 1..=4),
        |i, w, _c| async move { w.write(i * i).await },
        |mut out, _c| async move {
            while let Some(v) = out.recv().await {
                t.fetch_add(v as usize, Ordering::Relaxed);
            }
        },
        Options::new(),
    )
    .await;
    assert_eq!(r, Ok(()));
    assert_eq!(total.load(Ordering::Relaxed), 30);

    let r: Stopped = mr::map_reduce_void(
        |s| gen_n(s, 1..=4),
        |i, w, c| async move {
            if i == 1 {
                c.cancel(Some("anything"));
            }
            w.write(i).await
        },
        |mut out, _c| async move { while out.recv().await.is_some() {} },
        Options::new(),
    )
    .await;
    assert_eq!(r.unwrap_err().to_string(), "mapreduce cancelled: anything");
}

#[tokio::test]
async fn reducer_writes_twice_or_never() {
    let r: Res<u64> = mr::map_reduce(
        |s| gen_n(s, 1..=4),
        |i, w, _c| async move { w.write(i).await },
        |mut out, w, _c| async move {
            while out.recv().await.is_some() {}
            w.write(1).await;
            w.write(2).await;
        },
        Options::new(),
    )
    .await;
    assert_eq!(r, Err(MapReduceError::MultipleOutputs));
    let r: Res<u64> = mr::map_reduce(
        |s| gen_n(s, 1..=4),
        |i, w, _c| async move { w.write(i).await },
        |mut out, _w, _c| async move { while out.recv().await.is_some() {} },
        Options::new(),
    )
    .await;
    assert_eq!(r, Err(MapReduceError::NoOutput));
}

#[tokio::test(start_paused = true)]
async fn reducer_sees_arrival_order() {
    let r: Res<Vec<u64>> = mr::map_reduce(
        |s| gen_n(s, 0..=1),
        |i, w, _c| async move {
            if i == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            w.write(i).await
        },
        |mut out, w, _c| async move {
            let mut v = vec![];
            while let Some(x) = out.recv().await {
                v.push(x);
            }
            w.write(v).await;
        },
        Options::new(),
    )
    .await;
    assert_eq!(r, Ok(vec![1, 0]));
}

/// Sets its flag when dropped: shows a stage's future is gone.
struct Gone(Arc<AtomicBool>);
impl Drop for Gone {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn cancel_with_remains_stops_the_generator() {
    let gone = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let (g, s2) = (Arc::clone(&gone), Arc::clone(&sent));
    let r: Stopped = mr::map_reduce_void(
        move |s| async move {
            let _g = Gone(g);
            for i in 0..100_000u64 {
                if !s.send(i).await {
                    return;
                }
                s2.fetch_add(1, Ordering::Relaxed);
            }
        },
        |i, _w: mr::Writer<u64>, c| async move {
            if i == 8 {
                c.cancel(Some("anything"));
            }
        },
        |mut out, _c| async move { while out.recv().await.is_some() {} },
        Options::new(),
    )
    .await;
    assert_eq!(r, Err(StopError::Cancelled("anything")));
    assert!(gone.load(Ordering::SeqCst));
    assert!(sent.load(Ordering::Relaxed) < 1000);
}

#[tokio::test]
async fn a_generator_on_its_own_task_is_told_to_stop() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let r: Stopped = mr::map_reduce_void(
        move |s| async move {
            let h = tokio::spawn(async move {
                let mut n = 0u64;
                while s.send(n).await {
                    n += 1;
                }
                n
            });
            let _ = tx.send(h);
        },
        |i, _w: mr::Writer<u64>, c| async move {
            if i == 8 {
                c.cancel(Some("anything"));
            }
        },
        |mut out, _c| async move { while out.recv().await.is_some() {} },
        Options::new(),
    )
    .await;
    // The generator returned at once (before its task sent anything), which ends the
    // source: the spawned sender sees `false` and stops.
    let n = rx.await.unwrap().await.unwrap();
    assert!(r.is_ok() || r == Err(StopError::Cancelled("anything")));
    assert!(n < 1000);
}

#[tokio::test]
async fn token_at_item_8() {
    let token = CancelToken::new();
    let t = token.clone();
    let r: Stopped = mr::map_reduce_void(
        |s| gen_n(s, 0..=1_000_000),
        move |i, _w: mr::Writer<u64>, _c| {
            let t = t.clone();
            async move {
                if i == 8 {
                    t.cancel();
                }
            }
        },
        |mut out, _c| async move { while out.recv().await.is_some() {} },
        Options::new().token(token.clone()),
    )
    .await;
    assert_eq!(r, Err(StopError::TokenCancelled));

    // for_each returns too.
    let token = CancelToken::new();
    let t = token.clone();
    let n = AtomicUsize::new(0);
    mr::for_each(
        |s| gen_n(s, 0..=1_000_000),
        |i| {
            let (t, n) = (t.clone(), &n);
            async move {
                n.fetch_add(1, Ordering::Relaxed);
                if i == 8 {
                    t.cancel();
                }
            }
        },
        Options::new().token(token),
    )
    .await;
    assert!(n.load(Ordering::Relaxed) < 1000);
}

#[tokio::test]
async fn a_token_cancelled_by_the_generator_refuses_its_next_send() {
    // The token's cancel stops the call before it returns: the generator's next send is
    // refused whether or not the driver has run since (no polling of the token).
    let token = CancelToken::new();
    let t = token.clone();
    let offered = AtomicUsize::new(usize::MAX);
    let r: Stopped = mr::map_reduce_void(
        |s| {
            let offered = &offered;
            async move {
                for i in 0..1_000_000u64 {
                    if i == 8 {
                        t.cancel();
                    }
                    offered.store(i as usize, Ordering::Relaxed);
                    if !s.send(i).await {
                        return;
                    }
                }
            }
        },
        |i, w: mr::Writer<u64>, _c| async move { w.write(i).await },
        |mut out, _c| async move { while out.recv().await.is_some() {} },
        Options::new().token(token.clone()),
    )
    .await;
    assert_eq!(r, Err(StopError::TokenCancelled));
    assert_eq!(offered.load(Ordering::Relaxed), 8);
}

#[tokio::test(start_paused = true)]
async fn deadline_exceeded() {
    let r: Res<u64> = mr::map_reduce(
        |s| gen_n(s, 0..=1_000_000),
        |i, w, _c| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            w.write(i).await
        },
        sum,
        Options::new().timeout(Duration::from_millis(20)),
    )
    .await;
    assert_eq!(r, Err(MapReduceError::DeadlineExceeded));
}

#[tokio::test(start_paused = true)]
async fn fan_out_of_8_sleeps_takes_one_sleep() {
    let start = tokio::time::Instant::now();
    let r: Res<u64> = mr::map_reduce(
        |s| gen_n(s, 1..=8),
        |i, w, _c| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            w.write(i).await
        },
        sum,
        Options::new().workers(8),
    )
    .await;
    assert_eq!(r, Ok(36));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1) && took < Duration::from_millis(2),
        "{took:?}"
    );

    let start = tokio::time::Instant::now();
    let r: Res<u64> = mr::map_reduce_spawned(
        |s| gen_n(s, 1..=8),
        |i, w, _c| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            w.write(i).await
        },
        sum,
        Options::new().workers(8),
    )
    .await;
    assert_eq!(r, Ok(36));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1) && took < Duration::from_millis(2),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_call_leaves_no_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let mapper_gone = Arc::new(AtomicUsize::new(0));
    for spawned in [false, true] {
        let g = Arc::clone(&mapper_gone);
        // Every mapper says it has started, so the call is dropped with all four running
        // (a hand-off, not a guess at how long they take to start).
        let started = Arc::new((AtomicUsize::new(0), tokio::sync::Notify::new()));
        let s = Arc::clone(&started);
        let mapper = move |i: u64, w: mr::Writer<u64>, _c: Cancel<&'static str>| {
            let g = Arc::clone(&g);
            let s = Arc::clone(&s);
            async move {
                let _gone = Gone2(g);
                s.0.fetch_add(1, Ordering::SeqCst);
                s.1.notify_one();
                std::future::pending::<()>().await;
                w.write(i).await
            }
        };
        let call = async move {
            if spawned {
                mr::map_reduce_spawned(
                    |s| gen_n(s, 0..=100),
                    mapper,
                    sum,
                    Options::new().workers(4),
                )
                .await
            } else {
                mr::map_reduce(
                    |s| gen_n(s, 0..=100),
                    mapper,
                    sum,
                    Options::new().workers(4),
                )
                .await
            }
        };
        let all_started = async {
            while started.0.load(Ordering::SeqCst) < 4 {
                started.1.notified().await;
            }
        };
        tokio::select! {
            _ = call => panic!("the mappers never finish"),
            () = all_started => {} // drop the call with its four mappers running
        }
        // Aborted tasks finish at their next poll.
        settle(before).await;
    }
    assert_eq!(mapper_gone.load(Ordering::SeqCst), 8);
}

struct Gone2(Arc<AtomicUsize>);
impl Drop for Gone2 {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_returns_with_no_task_left() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let r: Res<u64> = mr::map_reduce_spawned(
        |s| gen_n(s, 1..=1000),
        |i, w, c| async move {
            if i == 500 {
                c.cancel(Some("half"));
            }
            w.write(i).await
        },
        sum,
        Options::new().workers(4),
    )
    .await;
    assert_eq!(r, Err(MapReduceError::Cancelled("half")));
    settle(before).await;
    let r: Res<u64> = mr::map_reduce_spawned(
        |s| gen_n(s, 1..=1000),
        |i, w, _c| async move { w.write(i).await },
        sum,
        Options::new().workers(4),
    )
    .await;
    assert_eq!(r, Ok(500_500));
    settle(before).await;
}

/// The call has joined every task it spawned (their futures are dropped), but tokio
/// removes a finished task from its live count just after it wakes the joiner: give the
/// count a moment (on another runtime thread, which a loaded machine may not run at once)
/// to catch up. Polled, with a deadline far beyond that moment.
async fn settle(before: usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if metrics.num_alive_tasks() == before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(metrics.num_alive_tasks(), before);
}
