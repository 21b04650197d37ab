//! A rolling window on a manual clock: how buckets fill, age and drop out of a read.
//!
//! As in go-zero, a read visits the buckets from `size` slices ago up to the newest slice
//! anything was added in: slices that passed with no adds are not listed until the next add,
//! which is why some lines show fewer than 4 buckets.
//!
//! `cargo run -p keel-rollingwindow --example request_stats`

use std::time::Duration;

use keel_rollingwindow::{RollingWindow, SumCount};
use keel_timex::ManualClock;

fn main() -> Result<(), keel_rollingwindow::ConfigError> {
    let clock = ManualClock::new();
    // Latency in ms over the last 400 ms, in 4 buckets of 100 ms.
    let window = RollingWindow::<SumCount<f64>, _>::builder(4, Duration::from_millis(100))
        .build_with_clock(clock.clone())?;

    let traffic: [&[f64]; 6] = [&[12.0, 8.0], &[9.5], &[], &[40.0, 55.0, 61.0], &[], &[10.0]];
    for (step, requests) in traffic.iter().enumerate() {
        for &latency in *requests {
            window.add(latency);
        }
        let buckets: Vec<String> = window
            .snapshots()
            .iter()
            .map(|b| match b.mean() {
                Some(m) => format!("{}x{m:.1}ms", b.count),
                None => "-".into(),
            })
            .collect();
        let (sum, n) = window.fold((0.0, 0), |(s, n), b| (s + b.sum, n + b.count));
        println!(
            "t={:>3} ms  buckets oldest->newest [{}]  window mean {}",
            step * 100,
            buckets.join(", "),
            if n > 0 {
                format!("{:.1} ms", sum / n as f64)
            } else {
                "-".into()
            }
        );
        clock.advance(Duration::from_millis(100));
    }
    Ok(())
}
