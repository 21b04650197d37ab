#![cfg(feature = "tokio")]
//! Properties of the tokio flavour: results equal a sequential reference, cancellation and
//! panics at random points surface promptly, and no task is left behind.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use keel_mapreduce::tokio as mr;
use keel_mapreduce::{Cancel, MapReduceError, Options};
use proptest::prelude::*;

type Res<T> = Result<T, MapReduceError<usize>>;

/// Where a stage misbehaves.
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    CancelInMapper(usize),
    CancelInReducer(usize),
    PanicInGenerator(usize),
    PanicInMapper(usize),
    PanicInReducer(usize),
}

fn fault(n: usize) -> impl Strategy<Value = Fault> {
    let n = n.max(1);
    prop_oneof![
        Just(Fault::None),
        (0..n).prop_map(Fault::CancelInMapper),
        (0..n).prop_map(Fault::CancelInReducer),
        (0..n).prop_map(Fault::PanicInGenerator),
        (0..n).prop_map(Fault::PanicInMapper),
        (0..n).prop_map(Fault::PanicInReducer),
    ]
}

/// Runs one map-reduce: squares of `items` (each mapper awaits `delays[i]` yields or ms
/// sleeps first), collected in arrival order.
async fn run(
    items: Vec<u64>,
    delays: Vec<u8>,
    workers: usize,
    spawned: bool,
    f: Fault,
) -> Res<Vec<u64>> {
    let generate = move |s: mr::Source<(usize, u64)>| async move {
        for (i, v) in items.into_iter().enumerate() {
            if let Fault::PanicInGenerator(k) = f
                && k == i
            {
                panic!("generator {k}");
            }
            if !s.send((i, v)).await {
                return;
            }
        }
    };
    let mapper = move |(i, v): (usize, u64), w: mr::Writer<u64>, c: Cancel<usize>| {
        let d = delays[i % delays.len()];
        async move {
            match d % 3 {
                0 => {}
                1 => tokio::task::yield_now().await,
                _ => tokio::time::sleep(Duration::from_millis(u64::from(d))).await,
            }
            match f {
                Fault::CancelInMapper(k) if k == i => c.cancel(Some(k)),
                Fault::PanicInMapper(k) if k == i => panic!("mapper {k}"),
                _ => {}
            }
            w.write(v * v).await;
        }
    };
    let reducer = move |mut out: mr::Outputs<u64>, w: mr::Writer<Vec<u64>>, c: Cancel<usize>| async move {
        let mut all = Vec::new();
        while let Some(v) = out.recv().await {
            match f {
                Fault::CancelInReducer(k) if k == all.len() => c.cancel(Some(k)),
                Fault::PanicInReducer(k) if k == all.len() => panic!("reducer {k}"),
                _ => {}
            }
            all.push(v);
        }
        w.write(all).await;
    };
    let opts = Options::new().workers(workers);
    if spawned {
        mr::map_reduce_spawned(generate, mapper, reducer, opts).await
    } else {
        mr::map_reduce(generate, mapper, reducer, opts).await
    }
}

/// The call's result, or the panic message.
async fn outcome<F: Future<Output = Res<Vec<u64>>>>(f: F) -> Result<Res<Vec<u64>>, String> {
    let mut f = Box::pin(f);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(r)) => std::task::Poll::Ready(Ok(r)),
            Err(p) => std::task::Poll::Ready(Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default())),
        }
    })
    .await
}

fn check(items: Vec<u64>, delays: Vec<u8>, workers: usize, spawned: bool, f: Fault) {
    let rt = if spawned {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    };
    let n = items.len();
    let mut reference: Vec<u64> = items.iter().map(|v| v * v).collect();
    reference.sort_unstable();
    rt.block_on(async move {
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        // A hang would show as the timeout (on the paused clock it fires at once when
        // everything is idle).
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            outcome(run(items, delays, workers, spawned, f)),
        )
        .await
        .expect("the call hung");
        match (f, r) {
            (Fault::None, Ok(Ok(mut v))) => {
                v.sort_unstable();
                assert_eq!(v, reference);
            }
            (Fault::CancelInMapper(k) | Fault::CancelInReducer(k), Ok(r)) => {
                assert_eq!(r, Err(MapReduceError::Cancelled(k)));
            }
            (Fault::PanicInGenerator(k), Err(m)) => assert_eq!(m, format!("generator {k}")),
            // Only one stage is faulty, so its payload is the one re-raised.
            (Fault::PanicInMapper(k), Err(m)) => assert_eq!(m, format!("mapper {k}")),
            (Fault::PanicInReducer(k), Err(m)) => assert_eq!(m, format!("reducer {k}")),
            (f, r) => panic!("fault {f:?} (n = {n}) gave {r:?}"),
        }
        // Tokio counts a joined task out just after it wakes the joiner, on the runtime's
        // other thread (which a loaded machine may not run at once): polled on the real
        // clock, with a deadline far beyond that.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while metrics.num_alive_tasks() != before && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(metrics.num_alive_tasks(), before, "tasks left behind");
    });
}

fn case() -> impl Strategy<Value = (Vec<u64>, Vec<u8>, usize, Fault)> {
    (1usize..200).prop_flat_map(|n| {
        (
            proptest::collection::vec(0u64..1_000_000, n),
            proptest::collection::vec(0u8..6, 1..8),
            0usize..20,
            fault(n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn in_task_matches_reference_and_stops((items, delays, workers, f) in case()) {
        check(items, delays, workers, false, f);
    }

    #[test]
    fn spawned_matches_reference_and_stops((items, delays, workers, f) in case()) {
        check(items, delays, workers, true, f);
    }
}

#[test]
fn empty_input_gives_the_reducers_value() {
    check(Vec::new(), vec![0], 4, false, Fault::None);
    check(Vec::new(), vec![0], 4, true, Fault::None);
}
