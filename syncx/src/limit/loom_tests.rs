//! loom models of the limit's hand-over (run with `--cfg loom`, see the crate's README).
//!
//! Between a release and an acquirer that has failed its fast path but not yet slept, every
//! interleaving ends with the acquirer holding the permit (no lost wake-up), and no
//! interleaving lets more than `capacity` holders in at once.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::Limit;
use crate::sync::Arc;

/// Polls `future` on this loom thread, parking between polls; its waker unparks the thread.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

#[test]
fn a_release_reaches_a_blocked_acquirer() {
    loom::model(|| {
        let limit = Limit::new(1).unwrap();
        let held = limit.try_acquire_owned().unwrap();
        let other = limit.clone();
        let waiter = thread::spawn(move || drop(other.acquire()));
        drop(held);
        waiter.join().unwrap();
        assert_eq!(limit.available(), 1);
        assert_eq!(limit.waiting(), 0);
    });
}

#[test]
fn two_releases_reach_two_blocked_acquirers() {
    loom::model(|| {
        let limit = Limit::new(2).unwrap();
        let a = limit.try_acquire_owned().unwrap();
        let b = limit.try_acquire_owned().unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let limit = limit.clone();
                thread::spawn(move || drop(limit.acquire()))
            })
            .collect();
        let releaser = thread::spawn(move || drop(a));
        drop(b);
        releaser.join().unwrap();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(limit.available(), 2);
    });
}

#[test]
fn holders_never_exceed_capacity() {
    loom::model(|| {
        let limit = Limit::new(1).unwrap();
        let holders = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let limit = limit.clone();
                let holders = holders.clone();
                thread::spawn(move || {
                    let permit = if i == 0 {
                        limit.acquire()
                    } else {
                        match limit.try_acquire() {
                            Some(permit) => permit,
                            None => limit.acquire(),
                        }
                    };
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0);
                    holders.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                })
            })
            .collect();
        let permit = limit.acquire();
        assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0);
        holders.fetch_sub(1, Ordering::SeqCst);
        drop(permit);
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(limit.available(), 1);
    });
}

#[test]
fn an_async_acquirer_is_woken() {
    loom::model(|| {
        let limit = Limit::new(1).unwrap();
        let held = limit.try_acquire_owned().unwrap();
        let other = limit.clone();
        let waiter = thread::spawn(move || drop(block_on(other.acquire_async())));
        drop(held);
        waiter.join().unwrap();
        assert_eq!(limit.available(), 1);
    });
}

#[test]
fn a_cancelled_async_acquirer_passes_its_permit_on() {
    // The waiter polls once, then is dropped while the release may or may not have handed it
    // the permit yet; a blocked acquirer queued behind it must get the permit either way.
    loom::model(|| {
        let limit = Limit::new(1).unwrap();
        let held = limit.try_acquire_owned().unwrap();
        let other = limit.clone();
        let cancelled = thread::spawn(move || {
            let mut acquire = pin!(other.acquire_async());
            let mut cx = Context::from_waker(Waker::noop());
            if let Poll::Ready(permit) = acquire.as_mut().poll(&mut cx) {
                drop(permit);
            }
            // dropped here, queued or already handed the permit
        });
        let third = limit.clone();
        let blocked = thread::spawn(move || drop(third.acquire()));
        drop(held);
        cancelled.join().unwrap();
        blocked.join().unwrap();
        assert_eq!(limit.available(), 1);
        assert_eq!(limit.waiting(), 0);
    });
}
