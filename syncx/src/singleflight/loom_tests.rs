//! loom models of the leader/follower hand-offs: publish vs join, a leader's cancellation vs
//! a follower's arrival and departure. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p keel-syncx --release --lib singleflight`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::SingleFlight;

type Flights = SingleFlight<u8, u32, ()>;

/// Two or three sync callers of one key: each gets the value, the executions equal the
/// fresh callers, and the key is gone at the end.
fn sync_callers(threads: usize) {
    loom::model(move || {
        let flights = Arc::new(Flights::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (flights, runs) = (Arc::clone(&flights), Arc::clone(&runs));
                thread::spawn(move || {
                    flights.run_ex(1, || {
                        runs.fetch_add(1, Ordering::Relaxed);
                        Ok(42)
                    })
                })
            })
            .collect();
        let mut fresh = 0;
        for handle in handles {
            let (result, was_fresh) = handle.join().unwrap();
            assert_eq!(result, Ok(42));
            fresh += usize::from(was_fresh);
        }
        assert_eq!(fresh, runs.load(Ordering::Relaxed));
        assert!(fresh >= 1);
        assert_eq!(flights.in_flight(), 0);
    });
}

#[test]
fn loom_singleflight_leader_and_follower() {
    sync_callers(2);
}

#[test]
fn loom_singleflight_leader_and_two_followers() {
    sync_callers(3);
}

/// Polls `future` to completion on this thread, polling again only after a wake-up: a lost
/// wake-up leaves this thread blocked, which loom reports as a deadlock.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Flag {
        woken: loom::sync::Mutex<bool>,
        cv: loom::sync::Condvar,
    }
    impl std::task::Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            *self.woken.lock().unwrap() = true;
            self.cv.notify_one();
        }
    }
    let flag = std::sync::Arc::new(Flag {
        woken: loom::sync::Mutex::new(false),
        cv: loom::sync::Condvar::new(),
    });
    let waker = Waker::from(std::sync::Arc::clone(&flag));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let mut woken = flag.woken.lock().unwrap();
        while !*woken {
            woken = flag.cv.wait(woken).unwrap();
        }
        *woken = false;
    }
}

/// A leader's future that never finishes: it can only be cancelled.
fn forever() -> std::future::Pending<Result<u32, ()>> {
    std::future::pending()
}

/// An async leader polled once and dropped, against a sync caller: the sync caller always
/// finishes (as a fresh leader, or by taking the flight over) and nothing is left behind.
#[test]
fn loom_singleflight_cancelled_leader_hands_over() {
    loom::model(|| {
        let flights = Arc::new(Flights::new());
        let leader = {
            let flights = Arc::clone(&flights);
            thread::spawn(move || {
                let mut cx = Context::from_waker(Waker::noop());
                let mut future = pin!(flights.run_ex_async(1, forever));
                // Leading (pending forever), or following the sync caller (maybe done).
                if let Poll::Ready((result, fresh)) = future.as_mut().poll(&mut cx) {
                    assert_eq!((result, fresh), (Ok(2), false));
                }
                // Dropped here: cancelled.
            })
        };
        let (result, _) = flights.run_ex(1, || Ok(2));
        assert_eq!(result, Ok(2));
        leader.join().unwrap();
        assert_eq!(flights.in_flight(), 0);
    });
}

/// An async leader and an async follower, both dropped mid-flight in either order: the key
/// is always removed.
#[test]
fn loom_singleflight_cancelled_leader_and_follower_leave_nothing() {
    loom::model(|| {
        let flights = Arc::new(Flights::new());
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let flights = Arc::clone(&flights);
                thread::spawn(move || {
                    let mut cx = Context::from_waker(Waker::noop());
                    let mut future = pin!(flights.run_async(1, forever));
                    // A follower promoted by the other's drop may poll again and lead.
                    for _ in 0..2 {
                        assert!(future.as_mut().poll(&mut cx).is_pending());
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(flights.in_flight(), 0);
    });
}

/// A sync leader that publishes while an async follower registers its waker: the follower
/// is woken (no lost wake-up) and gets the value.
#[test]
fn loom_singleflight_publish_wakes_an_async_follower() {
    loom::model(|| {
        let flights = Arc::new(Flights::new());
        let leader = {
            let flights = Arc::clone(&flights);
            thread::spawn(move || flights.run(1, || Ok(5)))
        };
        let result = block_on(flights.run_async(1, || async { Ok(5) }));
        assert_eq!(result, Ok(5));
        assert_eq!(leader.join().unwrap(), Ok(5));
        assert_eq!(flights.in_flight(), 0);
    });
}
