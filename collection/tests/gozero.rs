//! go-zero's `Ring` and `Queue` scenarios (spec sections 6.3 and 6.4), and both checked
//! against `VecDeque` models with proptest.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread;

use keel_collection::{Fifo, Ring, ZeroCapacity};
use proptest::prelude::*;

#[test]
fn zero_capacity_is_an_error_not_a_panic() {
    // TestNewRing, TestNewQueueWithInvalidSize.
    assert_eq!(Ring::<u8>::new(0).unwrap_err(), ZeroCapacity);
    assert_eq!(Fifo::<u8>::with_capacity(0).unwrap_err(), ZeroCapacity);
    assert!(!ZeroCapacity.to_string().is_empty());
}

#[test]
fn ring_with_fewer_adds_than_capacity_keeps_them_all() {
    // TestRingLess: 3 adds into 5.
    let ring = Ring::new(5).unwrap();
    (0..3).for_each(|i| ring.add(i));
    assert_eq!(ring.take(), vec![0, 1, 2]);
    assert_eq!(ring.len(), 3);
}

#[test]
fn ring_with_more_adds_keeps_the_last_capacity() {
    // TestRingMore: 11 adds into 5.
    let ring = Ring::new(5).unwrap();
    (0..11).for_each(|i| ring.add(i));
    assert_eq!(ring.take(), vec![6, 7, 8, 9, 10]);
    assert_eq!(ring.capacity(), 5);
}

#[test]
fn ring_concurrent_adds_are_all_kept() {
    // TestRingAdd: 5050 concurrent adds into 5051.
    let ring = Arc::new(Ring::new(5051).unwrap());
    thread::scope(|s| {
        for t in 1..=100u32 {
            let ring = &ring;
            s.spawn(move || (0..t).for_each(|_| ring.add(t)));
        }
    });
    let mut taken = ring.take();
    assert_eq!(taken.len(), 5050);
    taken.sort_unstable();
    let mut want: Vec<u32> = (1..=100u32).flat_map(|t| (0..t).map(move |_| t)).collect();
    want.sort_unstable();
    assert_eq!(taken, want);
}

#[test]
fn fifo_keeps_order_across_growth_and_wrap() {
    // TestQueueOrder's sequences (capacity figures are go-zero's growth policy, not ported).
    for (initial, puts) in [(8, 3), (2, 3), (1, 20), (256, 257), (1024, 1025)] {
        let queue = Fifo::with_capacity(initial).unwrap();
        (0..puts).for_each(|i| queue.put(i));
        let taken: Vec<_> = std::iter::from_fn(|| queue.take()).collect();
        assert_eq!(taken, (0..puts).collect::<Vec<_>>(), "initial {initial}");
        assert!(queue.is_empty());
    }
    // Size 4: 4 puts, 1 take, 2 puts (grows while wrapped).
    let queue = Fifo::with_capacity(4).unwrap();
    (0..4).for_each(|i| queue.put(i));
    assert_eq!(queue.take(), Some(0));
    queue.put(4);
    queue.put(5);
    let taken: Vec<_> = std::iter::from_fn(|| queue.take()).collect();
    assert_eq!(taken, vec![1, 2, 3, 4, 5]);
}

#[test]
fn fifo_take_gives_the_value_up() {
    // TestQueueTakeClearsElement: the queue keeps no reference to a taken value.
    let value = Arc::new(7);
    let queue = Fifo::with_capacity(1).unwrap();
    queue.put(Arc::clone(&value));
    queue.put(Arc::new(8)); // grows
    let taken = queue.take().unwrap();
    assert_eq!(Arc::strong_count(&value), 2);
    drop(taken);
    assert_eq!(Arc::strong_count(&value), 1);
    assert_eq!(queue.take().map(|v| *v), Some(8));
    assert_eq!(queue.take(), None);
}

#[derive(Debug, Clone)]
enum Op {
    Put(u16),
    Take,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![any::<u16>().prop_map(Op::Put), Just(Op::Take)],
        0..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The ring holds exactly the last `capacity` values added, oldest first.
    #[test]
    fn ring_matches_a_model(capacity in 1usize..20, values in prop::collection::vec(any::<u16>(), 0..100)) {
        let ring = Ring::new(capacity).unwrap();
        let mut model = VecDeque::new();
        for v in values {
            ring.add(v);
            model.push_back(v);
            if model.len() > capacity {
                model.pop_front();
            }
            prop_assert_eq!(ring.len(), model.len());
        }
        prop_assert_eq!(ring.take(), model.into_iter().collect::<Vec<_>>());
    }

    /// The queue takes values in the order they were put, whatever its initial capacity.
    #[test]
    fn fifo_matches_a_model(capacity in 1usize..8, ops in ops()) {
        let queue = Fifo::with_capacity(capacity).unwrap();
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Op::Put(v) => {
                    queue.put(v);
                    model.push_back(v);
                }
                Op::Take => prop_assert_eq!(queue.take(), model.pop_front()),
            }
            prop_assert_eq!(queue.len(), model.len());
            prop_assert_eq!(queue.is_empty(), model.is_empty());
        }
    }
}
