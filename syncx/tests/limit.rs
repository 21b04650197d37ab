//! go-zero's `TestLimit` / `TestTimeoutLimit`, translated, plus hand-over order, the fast path
//! never jumping the queue, and threads hammering one limit. No sleep is an assertion: threads
//! meet on barriers and channels, and the limit's own `waiting()` says when a waiter is queued.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, mpsc};
use std::thread;
use std::time::Duration;

use keel_syncx::limit::{ConfigError, Limit, Timeout};

/// Spins until `n` threads or tasks are queued on `limit`.
fn until_waiting(limit: &Limit, n: usize) {
    while limit.waiting() != n {
        thread::yield_now();
    }
}

#[test]
fn gozero_test_limit() {
    // n = 2: Borrow; TryBorrow true; TryBorrow false; Return; Return. The third Return
    // (ErrLimitReturn) cannot be written: a permit is returned by dropping it, once.
    let limit = Limit::new(2).unwrap();
    let a = limit.acquire();
    let b = limit.try_acquire();
    assert!(b.is_some());
    assert!(limit.try_acquire().is_none());
    drop(a);
    drop(b);
    assert_eq!(limit.available(), 2);
}

#[test]
fn gozero_test_timeout_limit() {
    let limit = Limit::new(2).unwrap();
    let a = limit.acquire_timeout(Duration::from_millis(200)).unwrap();
    let b = limit.acquire_timeout(Duration::from_millis(200)).unwrap();

    // Another task returns a permit while this one waits (go-zero: after an interval; here
    // once this thread is queued): Borrow(1 s) succeeds. The generous timeout only bounds a
    // broken build; the release reaches the waiter at once.
    let returned = thread::scope(|s| {
        let waiter = s.spawn(|| limit.acquire_timeout(Duration::from_secs(60)).map(drop));
        until_waiting(&limit, 1);
        drop(a);
        waiter.join().unwrap()
    });
    assert_eq!(returned, Ok(()));

    let c = limit.acquire_timeout(Duration::ZERO).unwrap();
    assert_eq!(
        limit
            .acquire_timeout(Duration::from_millis(20))
            .unwrap_err(),
        Timeout::new()
    );
    assert_eq!(limit.waiting(), 0, "a timed-out waiter leaves the queue");
    drop(b);
    drop(c);
    assert_eq!(limit.available(), 2);
}

#[test]
fn zero_capacity_is_a_typed_error() {
    assert_eq!(Limit::new(0).unwrap_err(), ConfigError::ZeroCapacity);
    assert_eq!(
        ConfigError::ZeroCapacity.to_string(),
        "a limit needs at least one permit"
    );
}

#[test]
fn clones_share_one_pool() {
    let limit = Limit::new(1).unwrap();
    let clone = limit.clone();
    let permit = limit.try_acquire().unwrap();
    assert!(clone.try_acquire().is_none());
    assert_eq!(clone.available(), 0);
    drop(permit);
    assert!(clone.try_acquire().is_some());
    assert_eq!(clone.capacity(), 1);
}

#[test]
fn owned_permits_move_into_threads() {
    let limit = Limit::new(2).unwrap();
    let owned = limit.try_acquire_owned().unwrap();
    let converted = limit.try_acquire().unwrap().into_owned();
    assert_eq!(limit.available(), 0);
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        tx.send(owned.limit().available()).unwrap();
        drop(owned);
        drop(converted);
    });
    assert_eq!(rx.recv().unwrap(), 0);
    t.join().unwrap();
    assert_eq!(limit.available(), 2);
}

#[test]
fn blocked_acquirers_are_served_in_arrival_order() {
    let limit = Limit::new(1).unwrap();
    let held = limit.acquire();
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        for i in 0..4 {
            let tx = tx.clone();
            let limit = &limit;
            s.spawn(move || {
                let permit = limit.acquire();
                tx.send(i).unwrap();
                drop(permit);
            });
            until_waiting(limit, i + 1);
        }
        drop(held);
    });
    drop(tx);
    assert_eq!(rx.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
}

#[test]
fn a_permit_released_to_a_waiter_is_not_taken_by_try_acquire() {
    let limit = Limit::new(1).unwrap();
    let held = limit.acquire();
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let permit = limit.acquire();
            barrier.wait(); // holds it until the main thread has looked
            drop(permit);
        });
        until_waiting(&limit, 1);
        drop(held);
        // The permit went straight to the queued waiter: the fast path cannot take it.
        assert!(limit.try_acquire().is_none());
        barrier.wait();
        waiter.join().unwrap();
    });
    assert_eq!(limit.available(), 1);
}

#[test]
fn holders_never_exceed_capacity_under_contention() {
    const CAPACITY: usize = 3;
    let limit = Limit::new(CAPACITY).unwrap();
    let holders = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    let timeouts = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..8 {
            let (limit, holders, peak, timeouts) = (&limit, &holders, &peak, &timeouts);
            s.spawn(move || {
                for i in 0..2_000 {
                    let permit = match (t + i) % 3 {
                        0 => limit.acquire(),
                        1 => match limit.try_acquire() {
                            Some(permit) => permit,
                            None => continue,
                        },
                        _ => match limit.acquire_timeout(Duration::from_micros(50)) {
                            Ok(permit) => permit,
                            Err(Timeout { .. }) => {
                                timeouts.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        },
                    };
                    let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= CAPACITY, "{now} holders");
                    peak.fetch_max(now, Ordering::Relaxed);
                    holders.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
            });
        }
    });
    assert_eq!(limit.available(), CAPACITY);
    assert_eq!(limit.waiting(), 0);
    assert!(peak.load(Ordering::Relaxed) >= 1);
}

#[test]
fn returning_twice_does_not_compile() {
    // The doc-test on `Permit` (`compile_fail`) checks that a dropped permit cannot be
    // dropped again; here the same permit is simply gone after one drop.
    let limit = Limit::new(1).unwrap();
    let permit = limit.try_acquire().unwrap();
    drop(permit);
    assert_eq!(limit.available(), 1);
}
