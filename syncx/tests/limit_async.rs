//! `Limit::acquire_async`: woken by releases on any executor, and cancel-safe at every poll
//! point (dropped before the first poll, while queued, after being handed a permit, after
//! resolving): afterwards every permit is free again.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use keel_syncx::limit::Limit;

mod support;
use support::{counting_waker, wakes};

#[test]
fn dropped_before_the_first_poll() {
    let limit = Limit::new(1).unwrap();
    drop(limit.acquire_async());
    assert_eq!(limit.available(), 1);
}

#[test]
fn ready_at_once_when_a_permit_is_free() {
    let limit = Limit::new(1).unwrap();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut acquire = pin!(limit.acquire_async());
    let Poll::Ready(permit) = acquire.as_mut().poll(&mut cx) else {
        panic!("a free permit is taken at once");
    };
    assert_eq!(limit.available(), 0);
    drop(permit);
    assert_eq!(limit.available(), 1);
}

#[test]
fn dropped_while_queued() {
    let limit = Limit::new(1).unwrap();
    let held = limit.try_acquire().unwrap();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut acquire = pin!(limit.acquire_async());
        assert!(acquire.as_mut().poll(&mut cx).is_pending());
        assert_eq!(limit.waiting(), 1);
    }
    assert_eq!(limit.waiting(), 0);
    drop(held);
    assert_eq!(limit.available(), 1);
    assert!(limit.try_acquire().is_some(), "the queued flag was cleared");
}

#[test]
fn dropped_after_being_handed_a_permit_passes_it_on() {
    let limit = Limit::new(1).unwrap();
    let held = limit.try_acquire().unwrap();
    let (first_wakes, first_waker) = counting_waker();
    let (second_wakes, second_waker) = counting_waker();
    let mut first = Box::pin(limit.acquire_async());
    let mut second = pin!(limit.acquire_async());
    assert!(
        first
            .as_mut()
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending()
    );
    assert!(
        second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending()
    );

    drop(held); // handed to `first`, the oldest
    assert_eq!(wakes(&first_wakes), 1);
    assert_eq!(limit.available(), 0);
    assert!(limit.try_acquire().is_none());

    drop(first); // cancelled before it looked: the permit goes to `second`
    assert_eq!(wakes(&second_wakes), 1);
    let Poll::Ready(permit) = second
        .as_mut()
        .poll(&mut Context::from_waker(&second_waker))
    else {
        panic!("the passed-on permit is there");
    };
    drop(permit);
    assert_eq!(limit.available(), 1);
    assert_eq!(limit.waiting(), 0);
}

#[test]
fn dropped_after_being_handed_a_permit_with_nobody_behind() {
    let limit = Limit::new(2).unwrap();
    let a = limit.try_acquire().unwrap();
    let b = limit.try_acquire().unwrap();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut acquire = Box::pin(limit.acquire_async());
    assert!(acquire.as_mut().poll(&mut cx).is_pending());
    drop(a);
    drop(acquire);
    drop(b);
    assert_eq!(limit.available(), 2);
    assert_eq!(limit.waiting(), 0);
}

#[test]
fn a_repoll_while_queued_keeps_the_latest_waker() {
    let limit = Limit::new(1).unwrap();
    let held = limit.try_acquire().unwrap();
    let (old_wakes, old_waker) = counting_waker();
    let (new_wakes, new_waker) = counting_waker();
    let mut acquire = pin!(limit.acquire_async());
    assert!(
        acquire
            .as_mut()
            .poll(&mut Context::from_waker(&old_waker))
            .is_pending()
    );
    assert!(
        acquire
            .as_mut()
            .poll(&mut Context::from_waker(&new_waker))
            .is_pending()
    );
    drop(held);
    assert_eq!((wakes(&old_wakes), wakes(&new_wakes)), (0, 1));
    assert!(
        acquire
            .as_mut()
            .poll(&mut Context::from_waker(&new_waker))
            .is_ready()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_few_permits() {
    const CAPACITY: usize = 3;
    let limit = Limit::new(CAPACITY).unwrap();
    let holders = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let limit = limit.clone();
            let holders = holders.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let permit = limit.acquire_async().await;
                    assert!(holders.fetch_add(1, Ordering::SeqCst) < CAPACITY);
                    tokio::task::yield_now().await;
                    holders.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(limit.available(), CAPACITY);
    assert_eq!(limit.waiting(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_by_select_leaks_nothing() {
    let limit = Limit::new(1).unwrap();
    for round in 0..500 {
        let held = limit.try_acquire_owned().unwrap();
        let releaser = tokio::spawn(async move {
            tokio::task::yield_now().await;
            drop(held);
        });
        tokio::select! {
            permit = limit.acquire_async() => drop(permit),
            () = async { for _ in 0..(round % 3) { tokio::task::yield_now().await } } => {}
        }
        releaser.await.unwrap();
        assert_eq!(limit.available(), 1, "round {round}");
        assert_eq!(limit.waiting(), 0);
    }
}

#[cfg(feature = "tokio")]
mod with_tokio_timer {
    use std::time::Duration;

    use keel_syncx::limit::{Limit, Timeout};

    #[tokio::test(start_paused = true)]
    async fn acquire_timeout_async_times_out_and_leaves_the_queue() {
        let limit = Limit::new(1).unwrap();
        let held = limit.acquire_async().await;
        let result = limit
            .acquire_timeout_async(Duration::from_millis(100))
            .await;
        assert_eq!(result.unwrap_err(), Timeout::new());
        assert_eq!(limit.waiting(), 0);
        drop(held);
        assert_eq!(limit.available(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_timeout_async_gets_a_released_permit() {
        let limit = Limit::new(1).unwrap();
        let held = limit.try_acquire_owned().unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(held);
        });
        let permit = limit.acquire_timeout_async(Duration::from_secs(1)).await;
        assert!(permit.is_ok());
    }
}
