//! White-box tests of the wheel over tick numbers.

use super::*;

fn wheel(bits: u32, levels: u32) -> Wheel<u64, u64> {
    Wheel::new(Geometry::new(bits, levels), 0)
}

fn poll(w: &mut Wheel<u64, u64>, now: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    w.poll(now, |k, v| out.push((k, v)));
    out
}

/// Polls tick by tick and records the tick each key fired on.
fn fire_ticks(w: &mut Wheel<u64, u64>, until: u64) -> Vec<(u64, u64)> {
    let mut fired = Vec::new();
    for now in w.elapsed() + 1..=until {
        for (k, _) in poll(w, now) {
            fired.push((k, now));
        }
    }
    fired
}

#[test]
fn fires_on_the_deadline_tick_at_every_level() {
    let mut w = wheel(6, 6);
    let deadlines = [1, 2, 63, 64, 65, 4095, 4096, 4097, 300_000, 17_000_000];
    for (k, &d) in deadlines.iter().enumerate() {
        let d = w.deadline_for(d).unwrap();
        assert_eq!(w.set(k as u64, 0, d), Ok(None));
    }
    let mut fired = Vec::new();
    // Jump straight to each deadline and one before it: never early, never late.
    for (k, &d) in deadlines.iter().enumerate() {
        assert!(poll(&mut w, d - 1).is_empty(), "key {k} early");
        let got = poll(&mut w, d);
        assert_eq!(got, vec![(k as u64, 0)], "key {k} at {d}");
        fired.push(k);
    }
    assert_eq!(w.len(), 0);
    assert_eq!(w.next_expiration(), None);
}

#[test]
fn tick_by_tick_on_a_small_wheel_with_cascades() {
    let mut w = wheel(2, 4); // 4 slots, 4 levels: range 256 - 64
    for d in 1..150u64 {
        w.set(d, d, d).unwrap();
    }
    let fired = fire_ticks(&mut w, 200);
    assert_eq!(fired.len(), 149);
    assert!(fired.iter().all(|&(k, t)| k == t), "{fired:?}");
}

#[test]
fn moving_later_is_lazy_and_exact() {
    let mut w = wheel(6, 6);
    w.set(1, 10, 100).unwrap();
    assert!(w.reschedule(&1, 5000));
    assert_eq!(w.deadline_of(&1), Some(5000));
    assert!(poll(&mut w, 4999).is_empty());
    assert_eq!(poll(&mut w, 5000), vec![(1, 10)]);
}

#[test]
fn moving_earlier_relinks() {
    let mut w = wheel(6, 6);
    w.set(1, 10, 5000).unwrap();
    assert!(w.reschedule(&1, 3));
    assert!(poll(&mut w, 2).is_empty());
    assert_eq!(poll(&mut w, 3), vec![(1, 10)]);
    assert!(poll(&mut w, 10_000).is_empty());
}

#[test]
fn set_on_an_existing_key_replaces_and_reschedules() {
    let mut w = wheel(6, 6);
    w.set(7, 3, 4).unwrap();
    assert_eq!(w.set(7, 5, 7), Ok(Some(3)));
    assert_eq!(w.len(), 1);
    assert!(poll(&mut w, 6).is_empty());
    assert_eq!(poll(&mut w, 7), vec![(7, 5)]);
}

#[test]
fn remove_unlinks_from_the_middle_of_a_slot() {
    let mut w = wheel(6, 6);
    for k in 0..5 {
        w.set(k, k, 9).unwrap();
    }
    assert_eq!(w.remove(&2), Some((2, 2)));
    assert_eq!(w.remove(&2), None);
    assert_eq!(w.remove(&4), Some((4, 4))); // the head
    assert_eq!(w.remove(&0), Some((0, 0))); // the tail
    let mut got = poll(&mut w, 9);
    got.sort();
    assert_eq!(got, vec![(1, 1), (3, 3)]);
}

#[test]
fn deadlines_are_at_or_after_elapsed_and_within_range() {
    let mut w = wheel(2, 2); // 16 ticks less one top slot of 4: 12
    poll(&mut w, 5);
    assert_eq!(w.deadline_for(0), Ok(6));
    assert_eq!(w.deadline_for(5), Ok(6));
    assert_eq!(w.deadline_for(17), Ok(17), "elapsed + range");
    assert_eq!(w.deadline_for(18), Err(TooFar));
    // The furthest deadline still fires exactly, not a turn early.
    w.set(1, 1, 17).unwrap();
    let fired = fire_ticks(&mut w, 40);
    assert_eq!(fired, vec![(1, 17)]);
}

/// `elapsed + range` is safe from every offset of `elapsed` within its top-level slot.
#[test]
fn the_furthest_deadline_fires_exactly_from_every_offset() {
    for start in 0..40 {
        let mut w = wheel(2, 2);
        poll(&mut w, start);
        let d = w.deadline_for(start + 12).unwrap();
        w.set(9, 9, d).unwrap();
        assert_eq!(
            fire_ticks(&mut w, start + 30),
            vec![(9, start + 12)],
            "{start}"
        );
    }
}

#[test]
fn a_catch_up_keeps_due_timers_and_fires_them_first_in_order() {
    let mut w = wheel(2, 2); // range 12
    for (k, d) in [(3, 3), (1, 1), (7, 7), (2, 2), (20, 12)] {
        w.set(k, k, d).unwrap();
    }
    // Nobody polled; now is tick 30, and a timer is wanted at 40: 40 - 0 > 12.
    assert_eq!(w.deadline_for(40), Err(TooFar));
    let d = w.deadline_after_catch_up(30, 40).unwrap();
    assert_eq!(d, 40);
    w.set(40, 40, d).unwrap();
    assert_eq!(w.len(), 6, "nothing fired by the catch-up");
    assert_eq!(w.next_expiration(), Some(30));
    // An overdue timer can still be removed or moved later.
    assert_eq!(w.remove(&7), Some((7, 7)));
    assert!(w.reschedule(&3, 35));
    let keys: Vec<u64> = poll(&mut w, 30).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![1, 2, 20], "earliest deadline first");
    assert_eq!(fire_ticks(&mut w, 50), vec![(3, 35), (40, 40)]);
    // A refused catch-up changes nothing.
    assert_eq!(w.deadline_after_catch_up(50, 63), Err(TooFar));
    assert_eq!(w.deadline_after_catch_up(49, 100), Err(TooFar));
}

#[test]
fn overdue_timers_survive_compaction() {
    let mut w = wheel(6, 2);
    for k in 0..5000u64 {
        w.set(k, k, 100 + k % 3000).unwrap();
    }
    let d = w.deadline_after_catch_up(200, 250).unwrap();
    w.set(9999, 9999, d).unwrap();
    for k in 300..5000u64 {
        w.remove(&k);
    }
    let fired = poll(&mut w, 200);
    let expect: Vec<u64> = (0..=100).collect();
    assert_eq!(fired.iter().map(|&(k, _)| k).collect::<Vec<_>>(), expect);
    assert_eq!(fire_ticks(&mut w, 400).len(), 300 - 101 + 1);
}

#[test]
fn memory_is_given_back_after_mass_removal_and_expiry() {
    let mut w = wheel(6, 6);
    for k in 0..100_000u64 {
        w.set(k, k, 10 + k % 5000).unwrap();
    }
    let full = w.allocated_bytes();
    for k in 0..99_000u64 {
        w.remove(&k).unwrap();
    }
    assert!(
        w.allocated_bytes() < full / 10,
        "{} of {full}",
        w.allocated_bytes()
    );
    // The survivors still fire on time after compaction.
    let fired = fire_ticks(&mut w, 6000);
    assert_eq!(fired.len(), 1000);
    assert!(fired.iter().all(|&(k, t)| t == 10 + k % 5000));
    assert!(w.allocated_bytes() < 64 * 1024);
}

#[test]
fn drain_takes_everything_and_forgets_the_keys() {
    let mut w = wheel(6, 6);
    for k in 0..10 {
        w.set(k, k * 10, 100 + k).unwrap();
    }
    let mut got = w.drain();
    got.sort();
    assert_eq!(got, (0..10).map(|k| (k, k * 10)).collect::<Vec<_>>());
    assert_eq!(w.len(), 0);
    assert!(!w.contains(&3));
    // A later set of a drained key is a fresh timer that fires (go-zero's stale mapping bug).
    w.set(3, 1, 105).unwrap();
    assert_eq!(fire_ticks(&mut w, 200), vec![(3, 105)]);
}
