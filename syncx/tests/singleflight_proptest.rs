//! SingleFlight against random schedules of async callers on one thread: tasks start, are
//! polled (only when woken), are dropped, and their closures are released, in any order.
//!
//! Properties: at most one closure per key runs at a time; a caller's value comes from a
//! closure of its own key, and `fresh` is true exactly when it is its own; every caller that
//! is not dropped finishes once the closures are released (no lost wake-up, no caller left on
//! a flight nobody runs); no key is left in flight.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use keel_syncx::singleflight::{FlightError, SingleFlight};
use proptest::prelude::*;

const KEYS: usize = 3;

type Output = (Result<usize, FlightError<()>>, bool);

#[derive(Debug, Clone)]
enum Op {
    Start(usize),
    Poll(usize),
    Drop(usize),
    Release(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..KEYS).prop_map(Op::Start),
        4 => any::<usize>().prop_map(Op::Poll),
        1 => any::<usize>().prop_map(Op::Drop),
        1 => (0..KEYS).prop_map(Op::Release),
    ]
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What the closures share: per key, how many run, the release epoch and the parked wakers.
#[derive(Default)]
struct World {
    running: [usize; KEYS],
    epoch: [u64; KEYS],
    parked: [Vec<Waker>; KEYS],
}

/// Decrements `running` however the closure's future ends (completion or drop).
struct Running(Rc<RefCell<World>>, usize);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.borrow_mut().running[self.1] -= 1;
    }
}

/// The closure of task `me` on `key`: runs until the key's next release.
async fn body(world: Rc<RefCell<World>>, key: usize, me: usize) -> Result<usize, ()> {
    let started = {
        let mut w = world.borrow_mut();
        w.running[key] += 1;
        assert_eq!(w.running[key], 1, "two closures of key {key} at once");
        w.epoch[key]
    };
    let _running = Running(Rc::clone(&world), key);
    poll_fn(|cx| {
        let mut w = world.borrow_mut();
        if w.epoch[key] > started {
            Poll::Ready(())
        } else {
            w.parked[key].push(cx.waker().clone());
            Poll::Pending
        }
    })
    .await;
    Ok(me)
}

struct Task<'a> {
    key: usize,
    future: Option<Pin<Box<dyn Future<Output = Output> + 'a>>>,
    woken: Arc<Flag>,
    done: bool,
}

fn release(world: &RefCell<World>, key: usize) {
    let wakers = {
        let mut w = world.borrow_mut();
        w.epoch[key] += 1;
        std::mem::take(&mut w.parked[key])
    };
    wakers.into_iter().for_each(Waker::wake);
}

/// Polls task `i` if it is live and was woken; checks its output.
fn poll(tasks: &mut [Task<'_>], i: usize, keys: &[usize]) {
    let task = &mut tasks[i];
    let Some(future) = task.future.as_mut() else {
        return;
    };
    if !task.woken.0.swap(false, Ordering::SeqCst) {
        return;
    }
    let waker = Waker::from(Arc::clone(&task.woken));
    if let Poll::Ready((result, fresh)) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
        let from = result.expect("closures never fail or panic here");
        assert_eq!(keys[from], task.key, "task {i} got a value of another key");
        assert_eq!(
            fresh,
            from == i,
            "task {i}: fresh {fresh}, value of task {from}"
        );
        task.future = None;
        task.done = true;
    }
}

fn run(ops: Vec<Op>) {
    let world = Rc::new(RefCell::new(World::default()));
    let flights: SingleFlight<usize, usize, ()> = SingleFlight::new();
    let mut tasks: Vec<Task<'_>> = Vec::new();
    let mut keys = Vec::new();
    for op in ops {
        match op {
            Op::Start(key) => {
                let (me, world) = (tasks.len(), Rc::clone(&world));
                keys.push(key);
                tasks.push(Task {
                    key,
                    future: Some(Box::pin(
                        flights.run_ex_async(key, move || body(world, key, me)),
                    )),
                    woken: Arc::new(Flag(AtomicBool::new(true))),
                    done: false,
                });
            }
            Op::Poll(i) if !tasks.is_empty() => {
                let i = i % tasks.len();
                poll(&mut tasks, i, &keys);
            }
            Op::Drop(i) if !tasks.is_empty() => {
                let i = i % tasks.len();
                tasks[i].future = None;
            }
            Op::Release(key) => release(&world, key),
            _ => {}
        }
        let live_keys: std::collections::HashSet<_> = tasks
            .iter()
            .filter(|t| t.future.is_some())
            .map(|t| t.key)
            .collect();
        assert!(flights.in_flight() <= live_keys.len());
    }
    // Drain: release every key and poll whatever was woken until nothing is.
    for _ in 0..=tasks.len() {
        (0..KEYS).for_each(|key| release(&world, key));
        for i in 0..tasks.len() {
            poll(&mut tasks, i, &keys);
        }
    }
    for (i, task) in tasks.iter().enumerate() {
        assert!(
            task.future.is_none(),
            "task {i} (key {}) never finished",
            task.key
        );
    }
    assert_eq!(flights.in_flight(), 0);
    assert_eq!(world.borrow().running, [0; KEYS]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_schedules_of_async_callers(ops in proptest::collection::vec(op(), 0..60)) {
        run(ops);
    }
}
