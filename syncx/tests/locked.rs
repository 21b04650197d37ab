//! `LockedCalls`: go-zero's scenarios (`core/syncx/lockedcalls_test.go`), FIFO handover,
//! panics and async cancellation at every await point.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use keel_syncx::locked::LockedCalls;

fn poll<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// A future that stays pending until `gate` opens.
fn gated(gate: &AtomicBool) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |_| {
        if gate.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

/// Counts concurrent runs and remembers the most seen at once.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Concurrency {
    fn enter(&self) -> usize {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        now
    }
    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn go_zero_plain_value() {
    let calls = LockedCalls::new();
    assert_eq!(calls.run("key", || "bar"), "bar");
    assert_eq!(calls.held(), 0);
}

#[test]
fn go_zero_error_passes_through() {
    let calls = LockedCalls::new();
    let result: Result<&str, &str> = calls.run("key", || Err("error"));
    assert_eq!(result, Err("error"));
    assert_eq!(calls.held(), 0);
}

#[test]
fn go_zero_dup_suppress_fn_is_never_concurrent() {
    let calls = LockedCalls::new();
    let running = Concurrency::default();
    let start = Barrier::new(10);
    let seen: Vec<usize> = thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    calls.run("key", || {
                        let now = running.enter();
                        // Not load-bearing: widens the window for overlap; mutual exclusion
                        // must hold for any duration, 0 included.
                        thread::sleep(Duration::from_millis(2));
                        running.exit();
                        now
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(seen, vec![1; 10], "each caller saw calls == 1");
    assert_eq!(running.max.load(Ordering::SeqCst), 1);
    assert_eq!(calls.held(), 0);
}

#[test]
fn different_keys_run_concurrently() {
    let calls = LockedCalls::new();
    let inside = Barrier::new(2);
    thread::scope(|s| {
        // Both calls must be inside their closures at once to pass the barrier.
        s.spawn(|| calls.run("a", || inside.wait()));
        calls.run("b", || inside.wait());
    });
    assert_eq!(calls.held(), 0);
}

#[test]
fn blocking_waiter_runs_after_holder_and_key_is_removed() {
    let calls = LockedCalls::new();
    let order = Mutex::new(Vec::new());
    let holding = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            calls.run("k", || {
                holding.wait();
                // Not load-bearing: lets the waiter queue up, but it cannot run before this
                // closure returns whether it queued or arrives later.
                thread::sleep(Duration::from_millis(20));
                order.lock().unwrap().push("holder");
            })
        });
        holding.wait();
        assert_eq!(calls.held(), 1);
        calls.run("k", || order.lock().unwrap().push("waiter"));
    });
    assert_eq!(*order.lock().unwrap(), ["holder", "waiter"]);
    assert_eq!(calls.held(), 0);
}

#[test]
fn async_waiters_take_the_key_in_arrival_order() {
    let calls = LockedCalls::new();
    let gate = AtomicBool::new(false);
    let order = Mutex::new(Vec::new());
    let mut holder = Box::pin(calls.run_async("k", || gated(&gate)));
    assert!(poll(holder.as_mut()).is_pending());

    let mut waiters: Vec<_> = (0..5)
        .map(|i| {
            let order = &order;
            Box::pin(calls.run_async("k", move || async move { order.lock().unwrap().push(i) }))
        })
        .collect();
    for w in &mut waiters {
        assert!(poll(w.as_mut()).is_pending());
    }
    gate.store(true, Ordering::Release);
    assert!(poll(holder.as_mut()).is_ready());

    // Poll newest first: only the oldest waiter may run each round.
    let mut done = [false; 5];
    for round in 0..5 {
        for i in (0..5).rev() {
            if !done[i] && poll(waiters[i].as_mut()).is_ready() {
                assert_eq!(i, round, "waiter {i} ran in round {round}");
                done[i] = true;
            }
        }
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(calls.held(), 0);
}

#[test]
fn panic_in_f_releases_the_key_and_propagates() {
    let calls = LockedCalls::new();
    let caught = catch_unwind(AssertUnwindSafe(|| calls.run("k", || panic!("boom"))));
    assert!(caught.is_err());
    assert_eq!(calls.held(), 0);
    assert_eq!(calls.run("k", || 7), 7);
}

#[test]
fn panic_in_holder_hands_the_key_to_a_blocked_waiter() {
    let calls = LockedCalls::new();
    let holding = Barrier::new(2);
    thread::scope(|s| {
        let holder = s.spawn(|| {
            calls.run("k", || {
                holding.wait();
                // Not load-bearing: lets the waiter queue up; queued or arriving after the
                // panic released the key, it runs.
                thread::sleep(Duration::from_millis(20));
                panic!("holder fails");
            })
        });
        holding.wait();
        assert_eq!(calls.run("k", || "waiter ran"), "waiter ran");
        assert!(holder.join().is_err());
    });
    assert_eq!(calls.held(), 0);
}

#[test]
fn panic_in_async_future_releases_the_key() {
    let calls = LockedCalls::new();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let mut fut = pin!(calls.run_async("k", || async { panic!("boom") }));
        let _ = poll(fut.as_mut());
    }));
    assert!(caught.is_err());
    assert_eq!(calls.held(), 0);
}

#[test]
fn cancelled_holder_releases_the_key() {
    let calls = LockedCalls::new();
    let gate = AtomicBool::new(false);
    let mut holder = Box::pin(calls.run_async("k", || gated(&gate)));
    assert!(poll(holder.as_mut()).is_pending());
    assert_eq!(calls.held(), 1);
    drop(holder);
    assert_eq!(calls.held(), 0);
    let mut next = pin!(calls.run_async("k", || async { 1 }));
    assert_eq!(poll(next.as_mut()), Poll::Ready(1));
}

#[test]
fn cancelled_holder_hands_the_key_to_the_next_waiter() {
    let calls = LockedCalls::new();
    let gate = AtomicBool::new(false);
    let mut holder = Box::pin(calls.run_async("k", || gated(&gate)));
    assert!(poll(holder.as_mut()).is_pending());
    let mut waiter = Box::pin(calls.run_async("k", || async { 2 }));
    assert!(poll(waiter.as_mut()).is_pending());
    drop(holder);
    assert_eq!(poll(waiter.as_mut()), Poll::Ready(2));
    assert_eq!(calls.held(), 0);
}

#[test]
fn cancelled_queued_waiter_leaves_no_trace() {
    let calls = LockedCalls::new();
    let gate = AtomicBool::new(false);
    let mut holder = Box::pin(calls.run_async("k", || gated(&gate)));
    assert!(poll(holder.as_mut()).is_pending());
    let mut waiter = Box::pin(calls.run_async("k", || async {}));
    assert!(poll(waiter.as_mut()).is_pending());
    drop(waiter);
    assert_eq!(calls.held(), 1);
    gate.store(true, Ordering::Release);
    assert!(poll(holder.as_mut()).is_ready());
    assert_eq!(
        calls.held(),
        0,
        "the key was not handed to the dropped waiter"
    );
}

#[test]
fn cancelled_waiter_after_handover_passes_the_key_on() {
    let calls = LockedCalls::new();
    let gate = AtomicBool::new(false);
    let mut holder = Box::pin(calls.run_async("k", || gated(&gate)));
    assert!(poll(holder.as_mut()).is_pending());
    let mut first = Box::pin(calls.run_async("k", || async { 1 }));
    let mut second = Box::pin(calls.run_async("k", || async { 2 }));
    assert!(poll(first.as_mut()).is_pending());
    assert!(poll(second.as_mut()).is_pending());
    gate.store(true, Ordering::Release);
    assert!(poll(holder.as_mut()).is_ready()); // hands the key to `first`
    assert!(poll(second.as_mut()).is_pending());
    drop(first); // cancelled before it noticed
    assert_eq!(poll(second.as_mut()), Poll::Ready(2));
    assert_eq!(calls.held(), 0);

    // The same with nobody behind it: the key is removed.
    let mut holder = Box::pin(calls.run_async("k", || async {}));
    assert!(poll(holder.as_mut()).is_ready());
    gate.store(false, Ordering::Release);
    let mut holder = Box::pin(calls.run_async("k", || gated(&gate)));
    assert!(poll(holder.as_mut()).is_pending());
    let mut only = Box::pin(calls.run_async("k", || async {}));
    assert!(poll(only.as_mut()).is_pending());
    gate.store(true, Ordering::Release);
    assert!(poll(holder.as_mut()).is_ready());
    assert_eq!(calls.held(), 1, "held on behalf of `only`");
    drop(only);
    assert_eq!(calls.held(), 0);
}

#[test]
fn cancelled_middle_waiter_keeps_the_others_in_order() {
    let calls = LockedCalls::new();
    let gate = AtomicBool::new(false);
    let order = Mutex::new(Vec::new());
    let mut holder = Box::pin(calls.run_async("k", || gated(&gate)));
    assert!(poll(holder.as_mut()).is_pending());
    let mut ws: Vec<_> = (0..3)
        .map(|i| {
            let order = &order;
            Some(Box::pin(calls.run_async("k", move || async move {
                order.lock().unwrap().push(i)
            })))
        })
        .collect();
    for w in ws.iter_mut().flatten() {
        assert!(poll(w.as_mut()).is_pending());
    }
    ws[1] = None;
    gate.store(true, Ordering::Release);
    assert!(poll(holder.as_mut()).is_ready());
    assert!(poll(ws[2].as_mut().unwrap().as_mut()).is_pending());
    assert!(poll(ws[0].as_mut().unwrap().as_mut()).is_ready());
    assert!(poll(ws[2].as_mut().unwrap().as_mut()).is_ready());
    assert_eq!(*order.lock().unwrap(), [0, 2]);
    assert_eq!(calls.held(), 0);
}

#[test]
fn sync_and_async_callers_share_one_queue() {
    let calls = Arc::new(LockedCalls::new());
    let gate = AtomicBool::new(false);
    let mut holder = Box::pin(calls.run_async("k", || gated(&gate)));
    assert!(poll(holder.as_mut()).is_pending());
    let blocked = {
        let calls = Arc::clone(&calls);
        thread::spawn(move || calls.run("k", || "sync ran"))
    };
    // Not load-bearing: lets the thread queue up behind the async holder; if it arrives after
    // the release instead, it takes the free key and runs all the same.
    thread::sleep(Duration::from_millis(20));
    gate.store(true, Ordering::Release);
    assert!(poll(holder.as_mut()).is_ready());
    assert_eq!(blocked.join().unwrap(), "sync ran");
    assert_eq!(calls.held(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_dup_suppress_on_tokio() {
    let calls = Arc::new(LockedCalls::new());
    let running = Arc::new(Concurrency::default());
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (calls, running) = (Arc::clone(&calls), Arc::clone(&running));
            tokio::spawn(async move {
                calls
                    .run_async(i % 2, || async {
                        let now = running.enter();
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        running.exit();
                        now
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        let now = t.await.unwrap();
        assert!(now <= 2, "at most one call per key (2 keys), saw {now}");
    }
    assert!(running.max.load(Ordering::SeqCst) <= 2);
    assert_eq!(calls.held(), 0);
}

/// 40 calls on 3 keys, each inside a timeout of 0 to 6 ms around a 1 ms call: some time
/// out while queued, some while running, some complete. Returns (completed, timed out) as
/// the callers saw them.
async fn calls_under_timeouts(calls: &Arc<LockedCalls<u64>>) -> (usize, usize) {
    let completed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..40u64)
        .map(|i| {
            let (calls, completed) = (Arc::clone(calls), Arc::clone(&completed));
            tokio::spawn(async move {
                let call = calls.run_async(i % 3, || async {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    completed.fetch_add(1, Ordering::SeqCst);
                });
                tokio::time::timeout(Duration::from_millis(i % 7), call).await
            })
        })
        .collect();
    let mut seen = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => seen.0 += 1,
            Err(_) => seen.1 += 1,
        }
    }
    // A call may finish its closure and then lose the race with its timeout, never the
    // other way round.
    assert!(completed.load(Ordering::SeqCst) >= seen.0);
    seen
}

/// On tokio's paused clock, on one thread: the timeouts fire at fixed points of the calls,
/// so every outcome happens whatever the machine is doing.
#[tokio::test(start_paused = true)]
async fn timeouts_at_random_points_leave_no_key() {
    let calls = Arc::new(LockedCalls::new());
    let (completed, timed_out) = calls_under_timeouts(&calls).await;
    assert!(completed > 0, "no call completed");
    assert!(timed_out > 0, "no call timed out");
    assert_eq!(calls.held(), 0);
    assert_eq!(calls.run_async(0, || async { "next" }).await, "next");
}

/// The same on two runtime threads and the real clock: which calls time out depends on the
/// scheduling, so only what must hold for any outcome is asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_on_two_threads_leave_no_key() {
    let calls = Arc::new(LockedCalls::new());
    let (completed, timed_out) = calls_under_timeouts(&calls).await;
    assert_eq!(completed + timed_out, 40);
    assert_eq!(calls.held(), 0);
    assert_eq!(calls.run_async(0, || async { "next" }).await, "next");
}

#[test]
fn run_async_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let calls = LockedCalls::<String>::new();
    let fut = calls.run_async("k".to_string(), || async { 1 });
    assert_send(&fut);
}

#[test]
fn many_threads_many_keys_leave_nothing_behind() {
    let calls = LockedCalls::new();
    let per_key: Vec<Concurrency> = (0..4).map(|_| Concurrency::default()).collect();
    thread::scope(|s| {
        for t in 0..8 {
            let (calls, per_key) = (&calls, &per_key);
            s.spawn(move || {
                for i in 0..200 {
                    let key = (t + i) % 4;
                    calls.run(key, || {
                        per_key[key].enter();
                        std::hint::spin_loop();
                        per_key[key].exit();
                    });
                }
            });
        }
    });
    for c in &per_key {
        assert_eq!(c.max.load(Ordering::SeqCst), 1);
    }
    assert_eq!(calls.held(), 0);
}
