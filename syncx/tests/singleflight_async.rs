//! SingleFlight, async callers: coalescing on tokio, then cancellation and panics driven by
//! hand-polled futures, so every interleaving below is exact (no timing).

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};

use keel_syncx::singleflight::{FlightError, SingleFlight};

type Flights = SingleFlight<&'static str, u32, String>;
type Flight<'a> = Pin<Box<dyn Future<Output = (Result<u32, FlightError<String>>, bool)> + 'a>>;

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A hand-driven task: a boxed flight and its counting waker.
struct Task<'a> {
    future: Flight<'a>,
    wakes: Arc<Count>,
}

impl<'a> Task<'a> {
    fn new(future: impl Future<Output = (Result<u32, FlightError<String>>, bool)> + 'a) -> Self {
        Self {
            future: Box::pin(future),
            wakes: Arc::default(),
        }
    }

    fn poll(&mut self) -> Poll<(Result<u32, FlightError<String>>, bool)> {
        let waker = Waker::from(Arc::clone(&self.wakes));
        self.future.as_mut().poll(&mut Context::from_waker(&waker))
    }

    fn wakes(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }
}

/// A leader body with `steps` await points; step `i` passes once `gate` exceeds `i`.
async fn stepped(gate: Rc<Cell<usize>>, steps: usize, value: u32) -> Result<u32, String> {
    for step in 0..steps {
        std::future::poll_fn(|_| {
            if gate.get() > step {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
    Ok(value)
}

#[tokio::test(flavor = "current_thread")]
async fn hundred_tasks_one_key_one_execution() {
    let flights: Arc<Flights> = Arc::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let joined = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (flights, runs, joined, release) = (
                Arc::clone(&flights),
                Arc::clone(&runs),
                Arc::clone(&joined),
                Arc::clone(&release),
            );
            tokio::spawn(async move {
                // Counted and joined in the same poll: no await in between.
                joined.fetch_add(1, Ordering::SeqCst);
                flights
                    .run_ex_async("key", || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        release.notified().await;
                        Ok(7)
                    })
                    .await
            })
        })
        .collect();
    while joined.load(Ordering::SeqCst) < 100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(flights.in_flight(), 1);
    release.notify_one();
    let mut fresh = 0;
    for task in tasks {
        let (result, was_fresh) = task.await.unwrap();
        assert_eq!(result, Ok(7));
        fresh += usize::from(was_fresh);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(fresh, 1);
    assert_eq!(flights.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_many_keys_on_a_thread_pool() {
    let flights: Arc<SingleFlight<u32, Arc<str>, ()>> = Arc::default();
    let tasks: Vec<_> = (0..400u32)
        .map(|i| {
            let flights = Arc::clone(&flights);
            tokio::spawn(async move {
                let key = i % 7;
                let value = flights
                    .run_async(key, || async move {
                        tokio::task::yield_now().await;
                        Ok(Arc::from(key.to_string()))
                    })
                    .await;
                assert_eq!(value.unwrap().as_ref(), key.to_string());
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(flights.in_flight(), 0);
}

#[test]
fn cancelled_leader_hands_over_at_every_await_point() {
    for cancel_at in 0..3 {
        let flights = Flights::new();
        let gate = Rc::new(Cell::new(0));
        let mut leader = Task::new(flights.run_ex_async("k", || stepped(Rc::clone(&gate), 3, 1)));
        let mut first =
            Task::new(flights.run_ex_async("k", || stepped(Rc::new(Cell::new(9)), 1, 2)));
        let mut second = Task::new(flights.run_ex_async("k", || async { Ok(3) }));
        assert!(leader.poll().is_pending());
        assert!(first.poll().is_pending());
        assert!(second.poll().is_pending());
        // Advance the leader to await point `cancel_at`, then drop it there.
        gate.set(cancel_at);
        assert!(leader.poll().is_pending(), "cancel_at {cancel_at}");
        drop(leader);
        assert!(
            first.wakes() >= 1 && second.wakes() >= 1,
            "followers woken to take over"
        );
        // `first` polls first, so it takes over and runs its own closure (ready at once).
        assert_eq!(first.poll(), Poll::Ready((Ok(2), true)));
        assert!(
            second.wakes() >= 2,
            "woken again by the new leader's result"
        );
        assert_eq!(second.poll(), Poll::Ready((Ok(2), false)));
        assert_eq!(flights.in_flight(), 0);
    }
}

#[test]
fn one_follower_takes_over_and_the_others_wait_for_it() {
    let flights = Flights::new();
    let slow = Rc::new(Cell::new(0));
    let mut leader = Task::new(flights.run_ex_async("k", std::future::pending));
    let mut followers: Vec<_> = (0..4u32)
        .map(|i| {
            let slow = Rc::clone(&slow);
            Task::new(flights.run_ex_async("k", move || stepped(slow, 1, 10 + i)))
        })
        .collect();
    assert!(leader.poll().is_pending());
    followers
        .iter_mut()
        .for_each(|f| assert!(f.poll().is_pending()));
    drop(leader);
    // Poll in reverse: the last follower claims the flight and runs its (gated) closure.
    for f in followers.iter_mut().rev() {
        assert!(f.poll().is_pending());
    }
    assert_eq!(flights.in_flight(), 1);
    slow.set(1);
    assert_eq!(followers[3].poll(), Poll::Ready((Ok(13), true)));
    for f in &mut followers[..3] {
        assert_eq!(f.poll(), Poll::Ready((Ok(13), false)));
    }
    assert_eq!(flights.in_flight(), 0);
}

#[test]
fn cancelled_leader_without_followers_frees_the_key() {
    let flights = Flights::new();
    let mut leader = Task::new(flights.run_ex_async("k", std::future::pending));
    assert!(leader.poll().is_pending());
    assert_eq!(flights.in_flight(), 1);
    drop(leader);
    assert_eq!(flights.in_flight(), 0);
    // A future dropped before its first poll never touched the table.
    drop(flights.run_async("k", || async { Ok(1) }));
    assert_eq!(flights.in_flight(), 0);
}

#[test]
fn cancelled_follower_unregisters_and_releases_its_waker() {
    let flights = Flights::new();
    let gate = Rc::new(Cell::new(0));
    let mut leader = Task::new(flights.run_ex_async("k", || stepped(Rc::clone(&gate), 1, 5)));
    let mut follower = Task::new(flights.run_ex_async("k", || async { Ok(6) }));
    let mut stays = Task::new(flights.run_ex_async("k", || async { Ok(6) }));
    assert!(leader.poll().is_pending());
    assert!(follower.poll().is_pending());
    assert!(stays.poll().is_pending());
    let wakes = Arc::clone(&follower.wakes);
    assert_eq!(
        Arc::strong_count(&wakes),
        3,
        "the test, the task, the registered waker"
    );
    drop(follower);
    assert_eq!(
        Arc::strong_count(&wakes),
        1,
        "the dropped follower's waker is released"
    );
    gate.set(1);
    assert_eq!(leader.poll(), Poll::Ready((Ok(5), true)));
    assert_eq!(stays.poll(), Poll::Ready((Ok(5), false)));
    assert_eq!(flights.in_flight(), 0);
}

/// A follower that joins a flight whose leader was cancelled looks at once: the follower
/// woken for the hand-over may never poll again, and nobody else would wake the newcomer.
#[test]
fn follower_joining_a_leaderless_flight_leads_at_its_first_poll() {
    let flights = Flights::new();
    let mut leader = Task::new(flights.run_ex_async("k", std::future::pending));
    let mut woken = Task::new(flights.run_ex_async("k", || async { Ok(1) }));
    assert!(leader.poll().is_pending());
    assert!(woken.poll().is_pending());
    drop(leader);
    assert_eq!(woken.wakes(), 1, "the hand-over wakes the waiting follower");
    let mut late = Task::new(flights.run_ex_async("k", || async { Ok(2) }));
    assert_eq!(
        late.poll(),
        Poll::Ready((Ok(2), true)),
        "the newcomer leads"
    );
    // The follower woken for the hand-over gets the newcomer's value.
    assert_eq!(woken.poll(), Poll::Ready((Ok(2), false)));
    assert_eq!(flights.in_flight(), 0);
}

/// A follower's waker is stored as it joins: once the leader publishes, it is woken without
/// having been polled a second time.
#[test]
fn follower_is_woken_after_one_poll() {
    let flights = Flights::new();
    let gate = Rc::new(Cell::new(0));
    let mut leader = Task::new(flights.run_ex_async("k", || stepped(Rc::clone(&gate), 1, 5)));
    let mut follower = Task::new(flights.run_ex_async("k", || async { Ok(6) }));
    assert!(leader.poll().is_pending());
    assert!(follower.poll().is_pending());
    assert_eq!(follower.wakes(), 0);
    gate.set(1);
    assert_eq!(leader.poll(), Poll::Ready((Ok(5), true)));
    assert_eq!(follower.wakes(), 1);
    assert_eq!(follower.poll(), Poll::Ready((Ok(5), false)));
}

#[test]
fn leaderless_flight_whose_followers_all_leave_is_removed() {
    let flights = Flights::new();
    let mut leader = Task::new(flights.run_ex_async("k", std::future::pending));
    let mut a = Task::new(flights.run_ex_async("k", || async { Ok(1) }));
    let mut b = Task::new(flights.run_ex_async("k", || async { Ok(1) }));
    assert!(leader.poll().is_pending());
    assert!(a.poll().is_pending());
    assert!(b.poll().is_pending());
    drop(leader);
    assert_eq!(
        flights.in_flight(),
        1,
        "leaderless, two followers to take over"
    );
    drop(a);
    assert_eq!(flights.in_flight(), 1);
    drop(b);
    assert_eq!(flights.in_flight(), 0);
    assert_eq!(flights.run_ex("k", || Ok(4)), (Ok(4), true));
}

#[test]
fn async_leader_panic_gives_followers_leader_panicked() {
    for panic_in_closure in [false, true] {
        let flights = Flights::new();
        let gate = Rc::new(Cell::new(0));
        let g = Rc::clone(&gate);
        let mut leader = Task::new(flights.run_ex_async("k", move || {
            if panic_in_closure {
                panic!("closure");
            }
            async move {
                stepped(g, 1, 0).await?;
                panic!("future")
            }
        }));
        let mut follower = Task::new(flights.run_ex_async("k", || async { Ok(1) }));
        if panic_in_closure {
            // The closure runs in the first poll: panics before any follower can join.
            assert!(catch_unwind(AssertUnwindSafe(|| leader.poll())).is_err());
            assert_eq!(flights.in_flight(), 0);
            assert_eq!(follower.poll(), Poll::Ready((Ok(1), true)));
            continue;
        }
        assert!(leader.poll().is_pending());
        assert!(follower.poll().is_pending());
        gate.set(1);
        let panic = catch_unwind(AssertUnwindSafe(|| leader.poll())).unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"future"));
        assert_eq!(follower.wakes(), 1);
        assert_eq!(
            follower.poll(),
            Poll::Ready((Err(FlightError::LeaderPanicked), false))
        );
        assert_eq!(flights.in_flight(), 0);
        drop(leader); // a panicked async fn is done; dropping it changes nothing
        assert_eq!(flights.in_flight(), 0);
    }
}

#[test]
fn sync_follower_takes_over_from_a_cancelled_async_leader() {
    let flights: SingleFlight<&str, u32, String> = SingleFlight::new();
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let sync = s.spawn(|| {
            barrier.wait();
            flights.run_ex("k", || Ok(9))
        });
        let mut leader = Task::new(flights.run_ex_async("k", std::future::pending));
        assert!(leader.poll().is_pending());
        barrier.wait();
        // The sync caller may or may not have joined yet: either it takes the flight over,
        // or it finds the key free. Both ways it runs its own closure, so the sleep (a chance
        // to join) is not load-bearing.
        std::thread::sleep(std::time::Duration::from_millis(10));
        drop(leader);
        assert_eq!(sync.join().unwrap(), (Ok(9), true));
    });
    assert_eq!(flights.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_leader_async_followers() {
    let flights: Arc<Flights> = Arc::default();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let leader = {
        let flights = Arc::clone(&flights);
        std::thread::spawn(move || {
            flights.run_ex("k", move || {
                started_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                Ok(11)
            })
        })
    };
    started_rx.await.unwrap();
    let followers: Vec<_> = (0..8)
        .map(|_| {
            let flights = Arc::clone(&flights);
            tokio::spawn(async move { flights.run_ex_async("k", || async { Ok(0) }).await })
        })
        .collect();
    // The followers join while the leader is blocked; release it once they are spawned.
    tokio::task::yield_now().await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    go_tx.send(()).unwrap();
    assert_eq!(leader.join().unwrap(), (Ok(11), true));
    for f in followers {
        let (result, fresh) = f.await.unwrap();
        // Joined (11), or arrived after the flight ended and ran its own (0).
        assert!(result == Ok(11) && !fresh || result == Ok(0) && fresh);
    }
    assert_eq!(flights.in_flight(), 0);
}

#[test]
fn futures_are_send_when_their_parts_are() {
    fn send<T: Send>(_: &T) {}
    let flights: SingleFlight<String, Arc<str>, std::io::Error> = SingleFlight::new();
    let future = flights.run_async("k".to_string(), || async { Ok(Arc::from("v")) });
    send(&future);
}
