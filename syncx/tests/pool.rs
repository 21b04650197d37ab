//! go-zero's `TestPoolGet` / `PopTooMany` / `PopFirst` / `WithMaxAge` / `NewPoolPanics`,
//! translated (max age through a `ManualClock`, never a sleep), plus fallible and panicking
//! factories, discard and detach, destroy outside the lock, and threads hammering one pool.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::Duration;

use keel_syncx::pool::{ConfigError, Pool, PoolError};
use keel_timex::ManualClock;

type Ids = Arc<Mutex<Vec<u32>>>;

/// A pool of ids 0, 1, 2, …; `destroyed` records every id destroyed.
fn counting_pool(max_size: usize) -> (Pool<u32, String, ManualClock>, Ids, ManualClock) {
    let next = AtomicU32::new(0);
    let destroyed: Ids = Arc::default();
    let clock = ManualClock::new();
    let record = destroyed.clone();
    let pool = Pool::builder(max_size, move || {
        Ok::<_, String>(next.fetch_add(1, Ordering::SeqCst))
    })
    .destroy(move |id| record.lock().unwrap().push(id))
    .clock(clock.clone())
    .build()
    .unwrap();
    (pool, destroyed, clock)
}

fn until_waiting<T: Send + 'static, E: 'static>(
    pool: &Pool<T, E, impl keel_timex::Clock>,
    n: usize,
) {
    while pool.waiting() != n {
        thread::yield_now();
    }
}

#[test]
fn gozero_test_pool_get() {
    let pool = Pool::builder(10, || Ok::<_, String>(1)).build().unwrap();
    let all: Vec<_> = (0..10).map(|_| pool.get().unwrap()).collect();
    assert!(all.iter().all(|one| **one == 1));
    assert_eq!(pool.in_use(), 10);
}

#[test]
fn gozero_test_pool_pop_too_many() {
    let (pool, _, _) = counting_pool(10);
    let mut out: Vec<_> = (0..10).map(|_| pool.get().unwrap()).collect();
    assert!(pool.try_get().unwrap().is_none());
    thread::scope(|s| {
        let eleventh = s.spawn(|| *pool.get().unwrap());
        until_waiting(&pool, 1);
        drop(out.pop()); // id 9 comes back and goes to the blocked Get
        assert_eq!(eleventh.join().unwrap(), 9);
    });
    assert_eq!(pool.len(), 10);
}

#[test]
fn gozero_test_pool_pop_first() {
    let (pool, _, _) = counting_pool(10);
    for _ in 0..5 {
        assert_eq!(*pool.get().unwrap(), 0);
    }
    assert_eq!(pool.len(), 1);
}

#[test]
fn gozero_test_pool_with_max_age() {
    let (pool, destroyed, clock) = counting_pool(10);
    let pool = {
        // rebuild the same pool with WithMaxAge(1 ms)
        drop(pool);
        let next = AtomicU32::new(0);
        let record = destroyed.clone();
        Pool::builder(10, move || {
            Ok::<_, String>(next.fetch_add(1, Ordering::SeqCst))
        })
        .max_age(Duration::from_millis(1))
        .destroy(move |id| record.lock().unwrap().push(id))
        .clock(clock.clone())
        .build()
        .unwrap()
    };
    drop(pool.get().unwrap()); // id 0, returned at t = 0
    clock.advance(Duration::from_millis(1));
    assert_eq!(*pool.get().unwrap(), 0, "exactly max age idle: still fresh");
    clock.advance(Duration::from_millis(10));
    assert_eq!(*pool.get().unwrap(), 1, "older than max age: a new object");
    assert_eq!(*destroyed.lock().unwrap(), vec![0]);
    assert_eq!(pool.len(), 1);
}

#[test]
fn gozero_test_new_pool_panics_is_a_config_error() {
    assert_eq!(
        Pool::builder(0, || Ok::<_, String>(1)).build().unwrap_err(),
        ConfigError::ZeroMaxSize
    );
    assert_eq!(
        Pool::builder(1, || Ok::<_, String>(1))
            .max_age(Duration::ZERO)
            .build()
            .unwrap_err(),
        ConfigError::ZeroMaxAge
    );
}

#[test]
fn lifo_reuse() {
    let (pool, _, _) = counting_pool(3);
    let (a, b, c) = (
        pool.get().unwrap(),
        pool.get().unwrap(),
        pool.get().unwrap(),
    );
    assert_eq!((*a, *b, *c), (0, 1, 2));
    drop(b);
    drop(a);
    drop(c);
    let order: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    assert_eq!(order.iter().map(|p| **p).collect::<Vec<_>>(), vec![2, 0, 1]);
}

#[test]
fn every_expired_idle_object_met_is_destroyed() {
    let next = AtomicU32::new(0);
    let destroyed: Ids = Arc::default();
    let record = destroyed.clone();
    let clock = ManualClock::new();
    let pool = Pool::builder(3, move || {
        Ok::<_, String>(next.fetch_add(1, Ordering::SeqCst))
    })
    .max_age(Duration::from_secs(1))
    .destroy(move |id| record.lock().unwrap().push(id))
    .clock(clock.clone())
    .build()
    .unwrap();
    let out: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    drop(out); // 0, 1, 2 idle, 2 on top
    clock.advance(Duration::from_secs(2));
    assert_eq!(*pool.get().unwrap(), 3); // meets 2, 1, 0 expired, creates 3
    assert_eq!(*destroyed.lock().unwrap(), vec![2, 1, 0]);
    assert_eq!((pool.len(), pool.idle()), (1, 1));
}

#[test]
fn a_fresh_object_under_an_expired_one_is_not_reached() {
    // LIFO: the top is the most recently returned, so an expired top means everything under
    // it is at least as old. A fresh top is handed out without looking further.
    let (pool, destroyed, clock) = counting_pool(2);
    let _ = clock;
    let a = pool.get().unwrap();
    drop(a);
    assert_eq!(*pool.get().unwrap(), 0);
    assert!(destroyed.lock().unwrap().is_empty());
}

#[test]
fn create_errors_free_their_slot() {
    let fail = Arc::new(AtomicBool::new(true));
    let flag = fail.clone();
    let pool = Pool::builder(1, move || {
        if flag.load(Ordering::SeqCst) {
            Err("connection refused".to_string())
        } else {
            Ok(7)
        }
    })
    .build()
    .unwrap();
    let err = pool.get().unwrap_err();
    assert_eq!(err, PoolError::Create("connection refused".to_string()));
    assert_eq!(
        err.to_string(),
        "creating a pooled object failed: connection refused"
    );
    assert_eq!(pool.len(), 0);
    assert_eq!(pool.try_get().unwrap_err(), "connection refused");
    fail.store(false, Ordering::SeqCst);
    assert_eq!(*pool.get().unwrap(), 7);
}

#[test]
fn a_panicking_create_leaks_nothing_and_wakes_a_waiter() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let pool = Pool::builder(1, move || {
        if counter.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("factory bug");
        }
        Ok::<_, String>(())
    })
    .build()
    .unwrap();

    let held = pool.get().unwrap(); // call 0
    thread::scope(|s| {
        let first = s.spawn(|| pool.get().map(drop));
        until_waiting(&pool, 1);
        let second = s.spawn(|| pool.get().map(drop));
        until_waiting(&pool, 2);
        held.discard(); // frees the slot: `first` creates (call 1) and panics
        assert!(first.join().is_err(), "the panic reaches its caller");
        // the panicking factory's slot was freed and `second` woken: it creates (call 2)
        assert_eq!(second.join().unwrap(), Ok(()));
    });
    assert_eq!(pool.in_use(), 0);
    assert_eq!(pool.waiting(), 0);
    assert_eq!(pool.len(), 1);

    // and on this thread, caught
    let broken = Pool::builder(2, || -> Result<(), String> { panic!("always") })
        .build()
        .unwrap();
    for _ in 0..3 {
        assert!(catch_unwind(AssertUnwindSafe(|| broken.get())).is_err());
        assert_eq!(broken.in_use(), 0);
    }
}

#[test]
fn discard_destroys_and_detach_takes_out() {
    let (pool, destroyed, _) = counting_pool(1);
    let a = pool.get().unwrap();
    a.discard();
    assert_eq!(*destroyed.lock().unwrap(), vec![0]);
    assert_eq!(pool.len(), 0);

    let b = pool.get().unwrap();
    assert_eq!(b.detach(), 1);
    assert_eq!(pool.len(), 0, "a detached object frees its slot");
    assert_eq!(*pool.get().unwrap(), 2);
    assert_eq!(
        *destroyed.lock().unwrap(),
        vec![0],
        "detached objects are not destroyed"
    );
}

#[test]
fn objects_being_created_count_as_in_use() {
    let entered = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let (e, r) = (entered.clone(), release.clone());
    let pool = Pool::builder(1, move || {
        e.wait();
        r.wait();
        Ok::<_, String>(())
    })
    .build()
    .unwrap();
    thread::scope(|s| {
        let creator = s.spawn(|| pool.get().map(drop));
        entered.wait();
        assert_eq!((pool.in_use(), pool.len()), (1, 1));
        assert!(
            pool.try_get().unwrap().is_none(),
            "the slot is taken while creating"
        );
        release.wait();
        creator.join().unwrap().unwrap();
    });
    assert_eq!((pool.in_use(), pool.idle()), (0, 1));
}

#[test]
fn destroy_runs_outside_the_lock() {
    // `destroy` calls back into the pool: with the lock held it would deadlock.
    static POOL: OnceLock<Pool<u32, String, ManualClock>> = OnceLock::new();
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let clock = ManualClock::new();
    let next = AtomicU32::new(0);
    let pool = Pool::builder(2, move || {
        Ok::<_, String>(next.fetch_add(1, Ordering::SeqCst))
    })
    .max_age(Duration::from_secs(1))
    .destroy(|_| {
        let pool = POOL.get().unwrap();
        SEEN.fetch_add(
            pool.len() + pool.idle() + pool.waiting() + 1,
            Ordering::SeqCst,
        );
    })
    .clock(clock.clone())
    .build()
    .unwrap();
    POOL.set(pool.clone()).unwrap();

    pool.get().unwrap().discard(); // discard
    drop(pool.get().unwrap());
    clock.advance(Duration::from_secs(5));
    drop(pool.get().unwrap()); // expiry during get
    assert!(SEEN.load(Ordering::SeqCst) >= 2);
}

#[test]
fn idle_objects_are_destroyed_with_the_pool() {
    let (pool, destroyed, _) = counting_pool(3);
    let a = pool.get().unwrap();
    let b = pool.get().unwrap().into_owned();
    drop(a);
    drop(pool);
    // `b` still holds the pool's state: nothing is destroyed yet
    assert!(destroyed.lock().unwrap().is_empty());
    drop(b); // outlived the pool handle: goes back, then every idle object is destroyed
    let mut ids = destroyed.lock().unwrap().clone();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1]);
}

#[test]
fn get_timeout_and_try_get_when_exhausted() {
    let (pool, _, _) = counting_pool(1);
    let held = pool.get().unwrap();
    assert!(pool.try_get().unwrap().is_none());
    assert_eq!(
        pool.get_timeout(Duration::ZERO).unwrap_err(),
        PoolError::Timeout
    );
    assert!(
        pool.get_timeout(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout()
    );
    assert_eq!(pool.waiting(), 0, "a timed-out waiter leaves the queue");
    thread::scope(|s| {
        let waiter = s.spawn(|| pool.get_timeout(Duration::from_secs(60)).map(|p| *p));
        until_waiting(&pool, 1);
        drop(held);
        assert_eq!(waiter.join().unwrap(), Ok(0));
    });
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let (pool, _, _) = counting_pool(1);
    let held = pool.get().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        for i in 0..4 {
            let (tx, pool) = (tx.clone(), &pool);
            s.spawn(move || {
                let object = pool.get().unwrap();
                tx.send(i).unwrap();
                drop(object);
            });
            until_waiting(pool, i + 1);
        }
        drop(held);
    });
    drop(tx);
    assert_eq!(rx.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
}

#[test]
fn threads_never_see_more_than_max_size_objects() {
    const MAX: usize = 3;
    let live = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let destroyed = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new();
    let (l, c, d, gone) = (
        live.clone(),
        created.clone(),
        destroyed.clone(),
        live.clone(),
    );
    let pool = Pool::builder(MAX, move || {
        assert!(l.fetch_add(1, Ordering::SeqCst) < MAX, "too many objects");
        Ok::<_, String>(c.fetch_add(1, Ordering::SeqCst))
    })
    .max_age(Duration::from_millis(5))
    .destroy(move |_| {
        d.fetch_add(1, Ordering::SeqCst);
        gone.fetch_sub(1, Ordering::SeqCst);
    })
    .clock(clock.clone())
    .build()
    .unwrap();
    let detached = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..6 {
            let (pool, clock, detached, live) = (&pool, &clock, &detached, &live);
            s.spawn(move || {
                for i in 0..1_000usize {
                    let object = match (t + i) % 4 {
                        0 => pool.get().unwrap(),
                        1 => match pool.try_get().unwrap() {
                            Some(object) => object,
                            None => continue,
                        },
                        _ => match pool.get_timeout(Duration::from_micros(100)) {
                            Ok(object) => object,
                            Err(_) => continue,
                        },
                    };
                    assert!(pool.len() <= MAX);
                    match i % 50 {
                        0 => object.discard(),
                        1 => {
                            // out of the pool for good: no longer one of its objects
                            live.fetch_sub(1, Ordering::SeqCst);
                            object.detach();
                            detached.fetch_add(1, Ordering::SeqCst);
                        }
                        2 => {
                            clock.advance(Duration::from_millis(3));
                            drop(object);
                        }
                        _ => drop(object),
                    }
                }
            });
        }
    });
    let idle = pool.idle();
    assert_eq!(pool.in_use(), 0);
    assert_eq!(pool.waiting(), 0);
    // every created object is destroyed, detached or idle
    assert_eq!(
        created.load(Ordering::SeqCst),
        destroyed.load(Ordering::SeqCst) + detached.load(Ordering::SeqCst) + idle
    );
}
