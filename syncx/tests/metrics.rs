//! Feature `metrics`: every counter of syncx's primitives moves exactly as the decisions
//! made, and the gauges follow the state (METRICS.md's `keel_singleflight_*`, `keel_limit_*`
//! and `keel_pool_*` rows).
//!
//! Hand-offs are explicit: a test waits (yielding, bounded by [`HANG`]) for the state it
//! needs, as `waiting()` reports it, never for a duration. Time is a `ManualClock` or tokio's
//! paused clock; no assertion depends on how long anything took.

#[path = "support/metrics.rs"]
mod recorded;
#[allow(dead_code)] // this file uses the waker, not its wake count
mod support;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use keel_syncx::limit::Limit;
use keel_syncx::pool::{Pool, PoolError};
use keel_syncx::singleflight::{FlightError, SingleFlight};
use keel_timex::ManualClock;
use recorded::Recorded;

/// How long a test waits for a state that must come before it declares a hang. Only reached
/// when the code under test is broken: no assertion depends on it.
const HANG: Duration = Duration::from_secs(30);

/// Yields until `done` holds; panics after [`HANG`] naming `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < HANG, "gave up waiting for {what}");
        std::thread::yield_now();
    }
}

const CALLS: &str = "keel_singleflight_calls_total";
const ACQUIRES: &str = "keel_limit_acquires_total";
const LIMIT_IN_USE: &str = "keel_limit_in_use";
const GETS: &str = "keel_pool_gets_total";
const IDLE: &str = "keel_pool_idle";
const POOL_IN_USE: &str = "keel_pool_in_use";
const WAIT: &str = "keel_pool_wait_duration_seconds";

// ---- the recorder -------------------------------------------------------------------------

#[test]
fn handles_registered_under_a_local_recorder_keep_recording_after_it() {
    let mut rec = Recorded::new();
    let flights: SingleFlight<u8, u8, ()> = rec.build(|| SingleFlight::with_name("local"));
    // Outside the closure now: the handles still point into `rec`.
    assert_eq!(flights.run(1, || Ok(1)), Ok(1));
    rec.read();
    assert_eq!(
        rec.counter(CALLS, &[("name", "local"), ("role", "leader")]),
        1
    );
    // A primitive built without a recorder registered its handles with the no-op recorder:
    // nothing of it reaches `rec`, even though it shares the name.
    let unrecorded: SingleFlight<u8, u8, ()> = SingleFlight::with_name("local");
    assert_eq!(unrecorded.run(1, || Ok(1)), Ok(1));
    rec.read();
    assert_eq!(
        rec.counter(CALLS, &[("name", "local"), ("role", "leader")]),
        1
    );
}

#[test]
fn every_series_is_registered_when_built_with_the_default_names() {
    let mut rec = Recorded::new();
    let (flights, limit, pool) = rec.build(|| {
        let flights: SingleFlight<u8, u8, ()> = SingleFlight::new();
        let limit = Limit::new(1).unwrap();
        let pool = Pool::builder(1, || Ok::<_, ()>(0u8)).build().unwrap();
        (flights, limit, pool)
    });
    assert_eq!(
        (flights.name(), limit.name(), pool.name()),
        ("singleflight", "limit", "pool")
    );
    rec.read();
    let mut names = rec.names().to_vec();
    names.sort();
    assert_eq!(
        names,
        [ACQUIRES, LIMIT_IN_USE, GETS, IDLE, POOL_IN_USE, WAIT, CALLS]
    );
    for role in ["leader", "follower"] {
        assert_eq!(
            rec.counter(CALLS, &[("name", "singleflight"), ("role", role)]),
            0
        );
    }
    assert_eq!(rec.gauge(LIMIT_IN_USE, &[("name", "limit")]), Some(0.0));
    assert_eq!(rec.gauge(IDLE, &[("name", "pool")]), Some(0.0));
}

// ---- SingleFlight -------------------------------------------------------------------------

fn calls(rec: &Recorded, name: &str) -> (u64, u64) {
    (
        rec.counter(CALLS, &[("name", name), ("role", "leader")]),
        rec.counter(CALLS, &[("name", name), ("role", "follower")]),
    )
}

#[test]
fn a_flight_counts_one_leader_and_every_follower_that_joined_it() {
    const FOLLOWERS: usize = 5;
    let mut rec = Recorded::new();
    let flights: SingleFlight<&str, u32, String> = rec.build(|| SingleFlight::with_name("users"));
    let flights = &flights;
    let (release, released) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let leader = s.spawn(move || {
            flights.run("u1", || {
                released.recv().unwrap();
                Ok(7)
            })
        });
        wait_until("the leader's flight", || flights.in_flight() == 1);
        let followers: Vec<_> = (0..FOLLOWERS)
            .map(|_| s.spawn(|| flights.run("u1", || unreachable!("the leader runs"))))
            .collect();
        wait_until("every follower joined", || {
            flights.waiting(&"u1") == FOLLOWERS
        });
        release.send(()).unwrap();
        assert_eq!(leader.join().unwrap(), Ok(7));
        for follower in followers {
            assert_eq!(follower.join().unwrap(), Ok(7));
        }
    });
    rec.read();
    assert_eq!(calls(&rec, "users"), (1, FOLLOWERS as u64));

    // Alone, a call leads; a failed flight still has one leader and its followers.
    assert_eq!(flights.run("u2", || Ok(1)), Ok(1));
    let (release, released) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let leader = s.spawn(move || {
            flights.run("u3", || {
                released.recv().unwrap();
                Err("down".to_string())
            })
        });
        wait_until("the failing leader's flight", || flights.in_flight() == 1);
        let follower = s.spawn(|| flights.run("u3", || unreachable!("the leader runs")));
        wait_until("the follower joined", || flights.waiting(&"u3") == 1);
        release.send(()).unwrap();
        assert!(matches!(
            leader.join().unwrap(),
            Err(FlightError::Failed(_))
        ));
        assert!(matches!(
            follower.join().unwrap(),
            Err(FlightError::Failed(_))
        ));
    });
    rec.read();
    assert_eq!(calls(&rec, "users"), (1 + 1 + 1, FOLLOWERS as u64 + 1));
}

#[test]
fn a_panicking_leader_is_a_leader_and_its_followers_are_followers() {
    let mut rec = Recorded::new();
    let flights: SingleFlight<u8, u8, ()> = rec.build(|| SingleFlight::with_name("panics"));
    let flights = &flights;
    let (release, released) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let leader = s.spawn(move || {
            catch_unwind(AssertUnwindSafe(|| {
                flights.run(1, || {
                    released.recv().unwrap();
                    panic!("keel-test: the leader panics")
                })
            }))
        });
        wait_until("the leader's flight", || flights.in_flight() == 1);
        let follower = s.spawn(|| flights.run(1, || unreachable!("the leader runs")));
        wait_until("the follower joined", || flights.waiting(&1) == 1);
        release.send(()).unwrap();
        assert!(leader.join().unwrap().is_err());
        assert_eq!(follower.join().unwrap(), Err(FlightError::LeaderPanicked));
    });
    rec.read();
    assert_eq!(calls(&rec, "panics"), (1, 1));
}

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    future.poll(cx)
}

#[test]
fn async_roles_and_a_cancelled_leader_handing_over() {
    let mut rec = Recorded::new();
    let flights: SingleFlight<u8, u8, ()> = rec.build(|| SingleFlight::with_name("async"));
    let (_wakes, waker) = support::counting_waker();
    let mut cx = Context::from_waker(&waker);

    // A leader cancelled with a follower waiting: the follower takes over and runs its own
    // closure, so it counts as a leader too (it ran its function); nobody is a follower.
    let mut leader = Box::pin(flights.run_async(1, || async {
        std::future::pending::<()>().await;
        Ok(0)
    }));
    assert!(poll_once(leader.as_mut(), &mut cx).is_pending());
    let mut follower = pin!(flights.run_async(1, || async { Ok(10) }));
    assert!(poll_once(follower.as_mut(), &mut cx).is_pending());
    assert_eq!(flights.waiting(&1), 1);
    drop(leader);
    assert_eq!(poll_once(follower.as_mut(), &mut cx), Poll::Ready(Ok(10)));
    rec.read();
    assert_eq!(calls(&rec, "async"), (2, 0));

    // A follower dropped before the flight ended neither ran nor shared anything.
    let mut leader = Box::pin(flights.run_async(2, || async {
        std::future::pending::<()>().await;
        Ok(0)
    }));
    assert!(poll_once(leader.as_mut(), &mut cx).is_pending());
    let mut follower = Box::pin(flights.run_async(2, || async { unreachable!("it follows") }));
    assert!(poll_once(follower.as_mut(), &mut cx).is_pending());
    assert_eq!(flights.waiting(&2), 1);
    drop(follower);
    drop(leader);
    // Alone, a call leads.
    assert_eq!(
        poll_once(pin!(flights.run_async(3, || async { Ok(30) })), &mut cx),
        Poll::Ready(Ok(30))
    );
    rec.read();
    assert_eq!(calls(&rec, "async"), (2 + 2, 0));

    // A follower that gets the leader's value.
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let mut leader = pin!(flights.run_async(4, || async move {
        released.await.unwrap();
        Ok(40)
    }));
    assert!(poll_once(leader.as_mut(), &mut cx).is_pending());
    let mut follower = pin!(flights.run_async(4, || async { unreachable!("it follows") }));
    assert!(poll_once(follower.as_mut(), &mut cx).is_pending());
    release.send(()).unwrap();
    assert_eq!(poll_once(leader.as_mut(), &mut cx), Poll::Ready(Ok(40)));
    assert_eq!(poll_once(follower.as_mut(), &mut cx), Poll::Ready(Ok(40)));
    rec.read();
    assert_eq!(calls(&rec, "async"), (4 + 1, 1));
}

#[test]
fn a_group_without_metrics_registers_and_records_nothing() {
    let mut rec = Recorded::new();
    let flights: SingleFlight<u8, u8, ()> = rec.build(SingleFlight::without_metrics);
    let flights = &flights;
    let (release, released) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let leader = s.spawn(move || {
            flights.run(1, || {
                released.recv().unwrap();
                Ok(1)
            })
        });
        wait_until("the leader's flight", || flights.in_flight() == 1);
        let follower = s.spawn(|| flights.run(1, || Ok(2)));
        wait_until("the follower joined", || flights.waiting(&1) == 1);
        release.send(()).unwrap();
        assert_eq!(leader.join().unwrap(), Ok(1));
        assert_eq!(follower.join().unwrap(), Ok(1));
    });
    rec.read();
    assert!(rec.names().is_empty(), "registered: {:?}", rec.names());
}

// ---- Limit --------------------------------------------------------------------------------

fn acquires(rec: &Recorded, name: &str) -> [u64; 3] {
    ["acquired", "rejected", "timeout"]
        .map(|result| rec.counter(ACQUIRES, &[("name", name), ("result", result)]))
}

/// What `keel_limit_in_use` moved by since the previous read (it moves by increments, and a
/// read resets the debugging recorder's gauge).
fn in_use_moved(rec: &mut Recorded, name: &str) -> f64 {
    rec.read()
        .gauge(LIMIT_IN_USE, &[("name", name)])
        .expect("registered")
}

#[test]
fn limit_counts_acquired_rejected_and_timeout_and_shows_permits_held() {
    let mut rec = Recorded::new();
    let limit = rec.build(|| Limit::with_name(2, "uploads").unwrap());
    assert_eq!(in_use_moved(&mut rec, "uploads"), 0.0);

    let a = limit.try_acquire().unwrap();
    let b = limit.acquire_timeout(Duration::from_secs(3600)).unwrap();
    assert_eq!(in_use_moved(&mut rec, "uploads"), 2.0);
    assert_eq!(acquires(&rec, "uploads"), [2, 0, 0]);

    assert!(limit.try_acquire().is_none());
    assert!(limit.try_acquire_owned().is_none());
    assert!(limit.acquire_timeout(Duration::ZERO).is_err());
    assert!(limit.acquire_timeout(Duration::from_millis(1)).is_err());
    assert_eq!(in_use_moved(&mut rec, "uploads"), 0.0);
    assert_eq!(acquires(&rec, "uploads"), [2, 2, 2]);

    drop(a);
    let owned = limit.try_acquire_owned().unwrap();
    drop(b);
    assert_eq!(in_use_moved(&mut rec, "uploads"), -1.0);
    assert_eq!(acquires(&rec, "uploads"), [3, 2, 2]);

    // A blocked `acquire` handed the permit `owned` gives back.
    std::thread::scope(|s| {
        let _other = limit.acquire(); // both permits out again
        let waiter = s.spawn(|| drop(limit.acquire()));
        wait_until("the waiter queued", || limit.waiting() == 1);
        drop(owned);
        waiter.join().unwrap();
    });
    // +1 (`_other`), -1 +1 (`owned` handed over), -1 (the waiter's), -1 (`_other`).
    assert_eq!(in_use_moved(&mut rec, "uploads"), -1.0);
    assert_eq!(acquires(&rec, "uploads"), [5, 2, 2]);
    assert_eq!(limit.available(), 2);
}

#[test]
fn limit_async_acquisitions_and_a_permit_handed_to_a_dropped_future() {
    let mut rec = Recorded::new();
    let limit = rec.build(|| Limit::with_name(1, "jobs").unwrap());
    let (_wakes, waker) = support::counting_waker();
    let mut cx = Context::from_waker(&waker);

    let held = limit.try_acquire().unwrap();
    {
        let mut waiting = pin!(limit.acquire_async());
        assert!(poll_once(waiting.as_mut(), &mut cx).is_pending());
        // Handed the permit, then dropped before it was polled again: the permit goes back.
        drop(held);
    }
    assert_eq!(limit.available(), 1);
    assert_eq!(in_use_moved(&mut rec, "jobs"), 0.0);
    // One acquisition: `held`. The dropped future never resolved: not counted.
    assert_eq!(acquires(&rec, "jobs"), [1, 0, 0]);

    let held = limit.try_acquire().unwrap();
    let mut waiting = pin!(limit.acquire_async());
    assert!(poll_once(waiting.as_mut(), &mut cx).is_pending());
    drop(held);
    let Poll::Ready(permit) = poll_once(waiting.as_mut(), &mut cx) else {
        panic!("handed a permit")
    };
    assert_eq!(in_use_moved(&mut rec, "jobs"), 1.0);
    assert_eq!(acquires(&rec, "jobs"), [3, 0, 0]);
    drop(permit);
    assert_eq!(in_use_moved(&mut rec, "jobs"), -1.0);
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn limit_async_timeouts_are_timeouts() {
    let mut rec = Recorded::new();
    let limit = rec.build(|| Limit::with_name(1, "paused").unwrap());
    let held = limit.acquire_timeout_async(Duration::from_secs(1)).await;
    assert!(held.is_ok());
    // Paused time: the runtime moves the clock to the timeout once nothing else can run.
    assert!(
        limit
            .acquire_timeout_async(Duration::from_secs(5))
            .await
            .is_err()
    );
    drop(held);
    rec.read();
    assert_eq!(acquires(&rec, "paused"), [1, 0, 1]);
    assert_eq!(rec.gauge(LIMIT_IN_USE, &[("name", "paused")]), Some(0.0));
}

// ---- Pool ---------------------------------------------------------------------------------

fn gets(rec: &Recorded, name: &str) -> [u64; 5] {
    ["reused", "created", "rejected", "timeout", "error"]
        .map(|result| rec.counter(GETS, &[("name", name), ("result", result)]))
}

/// `(idle, in_use)` as last set (every pool operation sets both).
fn sizes(rec: &mut Recorded, name: &str) -> (f64, f64) {
    rec.read();
    (
        rec.gauge(IDLE, &[("name", name)]).expect("registered"),
        rec.gauge(POOL_IN_USE, &[("name", name)])
            .expect("registered"),
    )
}

#[test]
fn pool_counts_reused_created_rejected_timeout_and_sets_its_gauges() {
    let mut rec = Recorded::new();
    let made = AtomicU32::new(0);
    let clock = ManualClock::new();
    let pool = rec.build(|| {
        Pool::builder(2, move || Ok::<_, ()>(made.fetch_add(1, Ordering::Relaxed)))
            .name("conns")
            .clock(clock.clone())
            .build()
            .unwrap()
    });
    let a = pool.get().unwrap();
    assert_eq!(sizes(&mut rec, "conns"), (0.0, 1.0));
    drop(a);
    assert_eq!(sizes(&mut rec, "conns"), (1.0, 0.0));
    let a = pool.get().unwrap(); // reused
    let b = pool.try_get().unwrap().unwrap(); // created
    assert_eq!(sizes(&mut rec, "conns"), (0.0, 2.0));
    assert_eq!(gets(&rec, "conns"), [1, 2, 0, 0, 0]);

    assert!(pool.try_get().unwrap().is_none());
    assert!(matches!(
        pool.get_timeout(Duration::ZERO),
        Err(PoolError::Timeout)
    ));
    assert!(matches!(
        pool.get_timeout(Duration::from_millis(1)),
        Err(PoolError::Timeout)
    ));
    rec.read();
    assert_eq!(gets(&rec, "conns"), [1, 2, 1, 2, 0]);
    // Only the second timeout waited (the first gave up before waiting); the manual clock
    // did not move while it did.
    assert_eq!(rec.histogram(WAIT, &[("name", "conns")]), [0.0]);

    // A blocked `get` waits 250 ms of the pool's clock for `a` to come back.
    std::thread::scope(|s| {
        let waiter = s.spawn(|| *pool.get().unwrap());
        wait_until("the waiter queued", || pool.waiting() == 1);
        clock.advance(Duration::from_millis(250));
        drop(a);
        assert_eq!(waiter.join().unwrap(), 0);
    });
    // `sizes` reads the recorder (a read resets its gauges: read them first).
    assert_eq!(sizes(&mut rec, "conns"), (1.0, 1.0));
    assert_eq!(gets(&rec, "conns"), [2, 2, 1, 2, 0]);
    assert_eq!(rec.histogram(WAIT, &[("name", "conns")]), [0.0, 0.25]);

    b.discard(); // destroyed: its slot is free
    assert_eq!(sizes(&mut rec, "conns"), (1.0, 0.0));
    let detached = pool.get().unwrap().detach();
    assert_eq!(detached, 0);
    assert_eq!(sizes(&mut rec, "conns"), (0.0, 0.0));
    assert_eq!(gets(&rec, "conns"), [3, 2, 1, 2, 0]);
}

#[test]
fn pool_counts_failed_and_panicking_factories_as_errors() {
    let mut rec = Recorded::new();
    let calls = AtomicU32::new(0);
    let pool = rec.build(|| {
        Pool::builder(1, move || match calls.fetch_add(1, Ordering::Relaxed) {
            0 => Err("refused"),
            1 => panic!("keel-test: the factory panics"),
            n => Ok(n),
        })
        .name("flaky")
        .build()
        .unwrap()
    });
    assert!(matches!(pool.get(), Err(PoolError::Create("refused"))));
    assert!(catch_unwind(AssertUnwindSafe(|| pool.try_get().map(|o| o.is_some()))).is_err());
    assert_eq!(*pool.get().unwrap(), 2);
    // Both failures freed their slot: the object is the only one, and back in the pool.
    assert_eq!(sizes(&mut rec, "flaky"), (1.0, 0.0));
    assert_eq!(gets(&rec, "flaky"), [0, 1, 0, 0, 2]);
}

#[test]
fn pool_replacing_an_expired_object_is_a_creation() {
    let mut rec = Recorded::new();
    let clock = ManualClock::new();
    let made = AtomicU32::new(0);
    let pool = rec.build(|| {
        Pool::builder(1, move || Ok::<_, ()>(made.fetch_add(1, Ordering::Relaxed)))
            .name("aging")
            .max_age(Duration::from_secs(10))
            .clock(clock.clone())
            .build()
            .unwrap()
    });
    drop(pool.get().unwrap());
    clock.advance(Duration::from_secs(11));
    assert_eq!(*pool.get().unwrap(), 1);
    assert_eq!(sizes(&mut rec, "aging"), (1.0, 0.0));
    assert_eq!(gets(&rec, "aging"), [0, 2, 0, 0, 0]);
    drop(pool);
    assert_eq!(sizes(&mut rec, "aging"), (0.0, 0.0));
}

#[test]
fn pool_async_gets_time_their_waits() {
    let mut rec = Recorded::new();
    let clock = ManualClock::new();
    let pool = rec.build(|| {
        Pool::builder(1, || Ok::<_, ()>(()))
            .name("async")
            .clock(clock.clone())
            .build()
            .unwrap()
    });
    let (_wakes, waker) = support::counting_waker();
    let mut cx = Context::from_waker(&waker);

    let held = pool.try_get().unwrap().unwrap();
    let mut waiting = pin!(pool.get_async());
    assert!(poll_once(waiting.as_mut(), &mut cx).is_pending());
    clock.advance(Duration::from_secs(2));
    drop(held);
    let Poll::Ready(Ok(held)) = poll_once(waiting.as_mut(), &mut cx) else {
        panic!("handed the object")
    };
    // Cancelled while waiting: its wait is timed too, and it is no get.
    {
        let mut cancelled = pin!(pool.get_async());
        assert!(poll_once(cancelled.as_mut(), &mut cx).is_pending());
        clock.advance(Duration::from_secs(1));
    }
    drop(held);
    rec.read();
    assert_eq!(gets(&rec, "async"), [1, 1, 0, 0, 0]);
    assert_eq!(rec.histogram(WAIT, &[("name", "async")]), [2.0, 1.0]);
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn pool_async_timeouts_are_timeouts() {
    let mut rec = Recorded::new();
    let pool = rec.build(|| {
        Pool::builder(1, || Ok::<_, ()>(()))
            .name("paused")
            .clock(ManualClock::new())
            .build()
            .unwrap()
    });
    let held = pool
        .get_timeout_async(Duration::from_secs(1))
        .await
        .unwrap();
    assert!(matches!(
        pool.get_timeout_async(Duration::from_secs(5)).await,
        Err(PoolError::Timeout)
    ));
    drop(held);
    rec.read();
    assert_eq!(gets(&rec, "paused"), [0, 1, 0, 1, 0]);
    // The timed-out get waited (on the manual clock, which did not move).
    assert_eq!(rec.histogram(WAIT, &[("name", "paused")]), [0.0]);
}
