//! `Pool::get_async`: woken by returns and freed slots on any executor, and cancel-safe at
//! every poll point (before the first poll, while queued, after being woken, after resolving):
//! afterwards no slot is leaked and no wake-up is lost.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use keel_syncx::pool::Pool;
use keel_timex::MonotonicClock;

mod support;
use support::{counting_waker, wakes};

fn ids(max_size: usize) -> Pool<u32, String, MonotonicClock> {
    let next = AtomicU32::new(0);
    Pool::builder(max_size, move || {
        Ok::<_, String>(next.fetch_add(1, Ordering::SeqCst))
    })
    .build()
    .unwrap()
}

#[test]
fn dropped_before_the_first_poll() {
    let pool = ids(1);
    drop(pool.get_async());
    assert_eq!((pool.len(), pool.waiting()), (0, 0));
}

#[test]
fn dropped_after_resolving() {
    let pool = ids(1);
    let (_, waker) = counting_waker();
    let mut get = pin!(pool.get_async());
    let Poll::Ready(Ok(object)) = get.as_mut().poll(&mut Context::from_waker(&waker)) else {
        panic!("room for a new object");
    };
    assert_eq!(*object, 0);
    drop(object);
    assert_eq!((pool.in_use(), pool.idle()), (0, 1));
}

#[test]
fn dropped_while_queued() {
    let pool = ids(1);
    let held = pool.get().unwrap();
    let (_, waker) = counting_waker();
    {
        let mut get = pin!(pool.get_async());
        assert!(
            get.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert_eq!(pool.waiting(), 1);
    }
    assert_eq!(pool.waiting(), 0);
    drop(held);
    assert_eq!((pool.in_use(), pool.idle()), (0, 1));
}

#[test]
fn dropped_after_being_woken_passes_the_wake_up_on() {
    let pool = ids(1);
    let held = pool.get().unwrap();
    let (first_wakes, first_waker) = counting_waker();
    let (second_wakes, second_waker) = counting_waker();
    let mut first = Box::pin(pool.get_async());
    let mut second = pin!(pool.get_async());
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

    drop(held); // returned: wakes `first`, the oldest
    assert_eq!((wakes(&first_wakes), wakes(&second_wakes)), (1, 0));
    drop(first); // woken, never looked: `second` is woken instead
    assert_eq!(wakes(&second_wakes), 1);
    let Poll::Ready(Ok(object)) = second
        .as_mut()
        .poll(&mut Context::from_waker(&second_waker))
    else {
        panic!("the returned object is there");
    };
    assert_eq!(*object, 0);
    drop(object);
    assert_eq!((pool.len(), pool.waiting()), (1, 0));
}

#[test]
fn a_slot_freed_by_discard_wakes_a_waiter_that_creates() {
    let pool = ids(1);
    let held = pool.get().unwrap();
    let (woken, waker) = counting_waker();
    let mut get = pin!(pool.get_async());
    assert!(
        get.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    held.discard();
    assert_eq!(wakes(&woken), 1);
    let Poll::Ready(Ok(object)) = get.as_mut().poll(&mut Context::from_waker(&waker)) else {
        panic!("room for a new object");
    };
    assert_eq!(*object, 1);
}

#[test]
fn woken_for_nothing_keeps_its_place() {
    // `first` is woken by a return, but a synchronous `try_get` takes the object before
    // `first` looks: `first` queues again ahead of `second`.
    let pool = ids(1);
    let held = pool.get().unwrap();
    let (_, first_waker) = counting_waker();
    let (_, second_waker) = counting_waker();
    let mut first = pin!(pool.get_async());
    let mut second = pin!(pool.get_async());
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
    drop(held);
    let barger = pool
        .try_get()
        .unwrap()
        .expect("the returned object is idle");
    assert!(
        first
            .as_mut()
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending()
    );
    assert_eq!(pool.waiting(), 2);
    drop(barger); // wakes the oldest: `first` again
    assert!(
        second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending()
    );
    assert!(
        first
            .as_mut()
            .poll(&mut Context::from_waker(&first_waker))
            .is_ready()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_few_objects() {
    const MAX: usize = 3;
    let pool = ids(MAX);
    let users = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|t| {
            let pool = pool.clone();
            let users = users.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let object = pool.get_async().await.unwrap();
                    assert!(users.fetch_add(1, Ordering::SeqCst) < MAX);
                    tokio::task::yield_now().await;
                    users.fetch_sub(1, Ordering::SeqCst);
                    if (t + i) % 17 == 0 {
                        object.discard();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!((pool.in_use(), pool.waiting()), (0, 0));
    assert!(pool.len() <= MAX);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_by_select_leaks_nothing() {
    let pool = ids(1);
    for round in 0..500 {
        let held = pool.get().unwrap().into_owned();
        let returner = tokio::spawn(async move {
            tokio::task::yield_now().await;
            drop(held);
        });
        tokio::select! {
            object = pool.get_async() => drop(object.unwrap()),
            () = async { for _ in 0..(round % 3) { tokio::task::yield_now().await } } => {}
        }
        returner.await.unwrap();
        assert_eq!(
            (pool.in_use(), pool.waiting(), pool.len()),
            (0, 0, 1),
            "round {round}"
        );
    }
}

#[cfg(feature = "tokio")]
mod with_tokio_timer {
    use std::time::Duration;

    use keel_syncx::pool::PoolError;

    #[tokio::test(start_paused = true)]
    async fn get_timeout_async_times_out_and_leaves_the_queue() {
        let pool = super::ids(1);
        let held = pool.get_async().await.unwrap();
        let result = pool.get_timeout_async(Duration::from_millis(100)).await;
        assert_eq!(result.unwrap_err(), PoolError::Timeout);
        assert_eq!(pool.waiting(), 0);
        drop(held);
        assert_eq!(
            *pool
                .get_timeout_async(Duration::from_millis(1))
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn get_timeout_async_gets_a_returned_object() {
        let pool = super::ids(1);
        let held = pool.get().unwrap().into_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(held);
        });
        let object = pool
            .get_timeout_async(Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(*object, 0);
    }
}
