//! Reads each clock and shows what a coarse reading trades for its speed.
//!
//! `cargo run -p keel-timex --example clocks`

use std::time::{Duration, Instant};

use keel_timex::{Clock, CoarseClock, ManualClock, MonotonicClock};

fn cost_per_read<C: Clock>(clock: &C) -> f64 {
    const READS: u32 = 1_000_000;
    let start = Instant::now();
    let mut last = clock.now();
    for _ in 0..READS {
        last = std::hint::black_box(clock.now()).max(last);
    }
    start.elapsed().as_nanos() as f64 / f64::from(READS)
}

fn main() {
    let precise = MonotonicClock::new();
    let coarse = CoarseClock::new();
    let manual = ManualClock::new();

    println!(
        "one read of MonotonicClock: {:6.1} ns",
        cost_per_read(&precise)
    );
    println!(
        "one read of CoarseClock:    {:6.1} ns",
        cost_per_read(&coarse)
    );
    println!(
        "one read of ManualClock:    {:6.1} ns",
        cost_per_read(&manual)
    );

    let mut worst = Duration::ZERO;
    for _ in 0..200 {
        let c = coarse.now();
        let p = precise.now();
        worst = worst.max(p - c);
        std::thread::sleep(Duration::from_micros(300));
    }
    println!("coarse lag behind precise over 200 samples: at most {worst:?}");

    let start = manual.now();
    manual.advance(Duration::from_secs(10));
    println!("manual clock advanced by {:?}", manual.now() - start);
}
