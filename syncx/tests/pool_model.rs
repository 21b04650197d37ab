//! Model-based: random get / return / discard / detach / failing and panicking factories /
//! clock advances against a naive model (a stack of `(id, returned_at)` and counters), with a
//! `ManualClock`. After every step: the same object comes out (LIFO, never one idle longer than
//! the max age), the counts agree, at most `max_size` objects exist, every destroyed object was
//! destroyed once; at the end every created object was destroyed, detached or is idle.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_syncx::pool::{Pool, Pooled};
use keel_timex::{Clock, ManualClock, Nanos};
use proptest::prelude::*;

const MAX_AGE: Duration = Duration::from_millis(10);

/// What the next factory call does.
const CREATE_OK: u8 = 0;
const CREATE_ERR: u8 = 1;
const CREATE_PANIC: u8 = 2;

#[derive(Debug, Clone)]
enum Op {
    /// `try_get`, with the factory (if called) succeeding, failing or panicking.
    Get(u8),
    /// Return the held object at this index (modulo the number held).
    Return(usize),
    Discard(usize),
    Detach(usize),
    Advance(Duration),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![Just(CREATE_OK), Just(CREATE_ERR), Just(CREATE_PANIC)]
            .prop_map(Op::Get),
        3 => any::<usize>().prop_map(Op::Return),
        1 => any::<usize>().prop_map(Op::Discard),
        1 => any::<usize>().prop_map(Op::Detach),
        2 => (0u64..25).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
    ]
}

#[derive(Default)]
struct Model {
    idle: Vec<(u32, Nanos)>,
    held: Vec<u32>,
    next_id: u32,
    destroyed: Vec<u32>,
    detached: Vec<u32>,
}

impl Model {
    /// The id a get hands out (`None`: exhausted or the factory failed), destroying the
    /// expired idle objects it meets.
    fn get(&mut self, now: Nanos, max_size: usize, create: u8) -> Option<u32> {
        let mut expired = 0;
        while let Some((id, returned_at)) = self.idle.pop() {
            if now.duration_since(returned_at) > MAX_AGE {
                self.destroyed.push(id);
                expired += 1;
                continue;
            }
            self.held.push(id);
            return Some(id);
        }
        if expired == 0 && self.held.len() >= max_size {
            return None;
        }
        if create != CREATE_OK {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.held.push(id);
        Some(id)
    }
}

/// Keeps the expected "factory bug" panics out of the test output.
fn quiet_factory_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"factory bug") {
                default(info);
            }
        }));
    });
}

fn run(max_size: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    quiet_factory_panics();
    let clock = ManualClock::new();
    let next = Arc::new(AtomicU32::new(0));
    let mode = Arc::new(AtomicU8::new(CREATE_OK));
    let destroyed = Arc::new(Mutex::new(Vec::new()));
    let pool = {
        let (next, mode, record) = (next.clone(), mode.clone(), destroyed.clone());
        Pool::builder(max_size, move || match mode.load(Ordering::SeqCst) {
            CREATE_OK => Ok(next.fetch_add(1, Ordering::SeqCst)),
            CREATE_ERR => Err("refused"),
            _ => panic!("factory bug"),
        })
        .max_age(MAX_AGE)
        .destroy(move |id| record.lock().unwrap().push(id))
        .clock(clock.clone())
        .build()
        .unwrap()
    };
    let mut model = Model::default();
    let mut held: Vec<Pooled<'_, u32>> = Vec::new();

    for op in ops {
        match op {
            Op::Get(create) => {
                mode.store(create, Ordering::SeqCst);
                let got = catch_unwind(AssertUnwindSafe(|| pool.try_get()));
                let expected = model.get(clock.now(), max_size, create);
                let got = match got {
                    Ok(Ok(Some(object))) => {
                        let id = *object;
                        held.push(object);
                        Some(id)
                    }
                    Ok(Ok(None)) | Ok(Err(_)) | Err(_) => None,
                };
                prop_assert_eq!(got, expected);
            }
            Op::Return(i) | Op::Discard(i) | Op::Detach(i) if !held.is_empty() => {
                let i = i % held.len();
                let object = held.swap_remove(i);
                let id = model.held.swap_remove(i);
                prop_assert_eq!(*object, id);
                match op {
                    Op::Return(_) => {
                        drop(object);
                        model.idle.push((id, clock.now()));
                    }
                    Op::Discard(_) => {
                        object.discard();
                        model.destroyed.push(id);
                    }
                    _ => {
                        prop_assert_eq!(object.detach(), id);
                        model.detached.push(id);
                    }
                }
            }
            Op::Return(_) | Op::Discard(_) | Op::Detach(_) => {}
            Op::Advance(by) => {
                clock.advance(by);
            }
        }
        prop_assert_eq!(pool.idle(), model.idle.len());
        prop_assert_eq!(pool.in_use(), model.held.len());
        prop_assert!(pool.len() <= max_size);
        prop_assert_eq!(pool.waiting(), 0);
        prop_assert_eq!(&*destroyed.lock().unwrap(), &model.destroyed);
    }

    // The end: everything created was destroyed, detached, or is idle; nothing twice.
    let created = next.load(Ordering::SeqCst);
    prop_assert_eq!(created, model.next_id);
    drop(held);
    let idle_at_end = pool.idle();
    let mut accounted: Vec<u32> = destroyed.lock().unwrap().clone();
    accounted.extend(&model.detached);
    prop_assert_eq!(accounted.len() + idle_at_end, created as usize);
    drop(pool); // the idle ones are destroyed with the pool
    let mut all: Vec<u32> = destroyed.lock().unwrap().clone();
    all.extend(&model.detached);
    all.sort_unstable();
    prop_assert_eq!(all, (0..created).collect::<Vec<_>>());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn pool_matches_the_model(
        max_size in 1usize..5,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        run(max_size, ops)?;
    }
}
