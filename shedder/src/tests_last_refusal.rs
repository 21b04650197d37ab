//! Reusing the last refusal (`last_refusal`) refuses exactly what a fresh decision would:
//! a finished request, another CPU reading or another coarse tick makes the next request
//! decided afresh, also when requests finish while other threads are being refused.

use keel_timex::ManualClock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use crate::cpu::ManualCpu;
use crate::tests::{fill_rows, hold, shedder};

/// The limit of [`fill_rows`]' window at a CPU of 950 (factor 0.5): 54 × 0.5.
const LIMIT: f64 = 27.0;

#[test]
fn a_finished_request_ends_the_reuse() {
    let (cpu, clock) = (ManualCpu::new(950), ManualClock::new());
    let s = shedder(&cpu, &clock);
    fill_rows(&s, &clock);
    let mut guards = hold(&s, &cpu, LIMIT as usize + 3);
    s.set_avg_flying(80.0);
    for _ in 0..3 {
        let refusal = s.allow().expect_err("30 in flight over 27");
        assert_eq!((refusal.in_flight(), refusal.limit()), (30, LIMIT));
    }
    // Three finish (the average stays far over the limit): 27 in flight is not over it,
    // at the same instant and CPU reading.
    for guard in guards.drain(..3) {
        guard.pass();
    }
    assert!(s.snapshot().avg_in_flight > LIMIT);
    s.allow().expect("27 in flight is within the limit").pass();
    // One more held: refused again, with the new count.
    let extra = s.allow().expect("still 27 in flight");
    assert_eq!(s.allow().expect_err("28 in flight").in_flight(), 28);
    drop(extra);
    assert_eq!(s.snapshot().dropped, 4);
}

#[test]
fn another_cpu_reading_is_decided_afresh() {
    let (cpu, clock) = (ManualCpu::new(950), ManualClock::new());
    let s = shedder(&cpu, &clock);
    fill_rows(&s, &clock);
    let _guards = hold(&s, &cpu, 30);
    s.set_avg_flying(80.0);
    assert_eq!(s.allow().expect_err("over 27").limit(), LIMIT);
    cpu.set(1000);
    let refusal = s.allow().expect_err("over 5.4");
    assert_eq!((refusal.cpu(), refusal.limit()), (Some(1000), 54.0 * 0.1));
    cpu.set(950);
    assert_eq!(s.allow().expect_err("over 27").limit(), LIMIT);
    // Below the threshold (still hot from the refusals) the factor is 1: a limit of 54.
    cpu.set(100);
    s.allow().expect("30 in flight within 54").pass();
}

/// Two threads are refused while a third finishes requests, down to fewer in flight than
/// the limit: once it is done, the next request is admitted (no refusal decided before a
/// completion is reused after it).
#[test]
fn refusals_racing_completions_are_never_reused_stale() {
    for _ in 0..50 {
        let (cpu, clock) = (ManualCpu::new(950), ManualClock::new());
        let s = shedder(&cpu, &clock);
        fill_rows(&s, &clock);
        let before = cpu.usage_for_test();
        cpu.set(0);
        let mut held: Vec<_> = (0..40).map(|_| s.allow_owned().unwrap()).collect();
        cpu.set(before);
        s.set_avg_flying(80.0);
        let stop = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(3));
        let refusers: Vec<_> = (0..2)
            .map(|_| {
                let (s, stop, start) = (s.clone(), stop.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    // At least one decision after the finisher is done.
                    let mut last = false;
                    while !last {
                        last = stop.load(Ordering::Acquire);
                        if let Ok(guard) = s.allow() {
                            guard.pass();
                        }
                    }
                })
            })
            .collect();
        start.wait();
        for guard in held.drain(..20) {
            guard.pass();
        }
        stop.store(true, Ordering::Release);
        for r in refusers {
            r.join().unwrap();
        }
        assert_eq!(s.snapshot().in_flight, 20);
        s.allow().expect("20 in flight is within the limit").pass();
    }
}
