//! A small demo of keel-rollingwindow: live request statistics from a
//! rolling window while two worker threads hammer it.
//!
//! `cargo run --release --example rolling_window [-- --seconds N]`
//!
//! Two threads simulate a service for a few seconds: healthy, then a slow database (latency
//! x8), then recovery. Each request records its latency into a 1-second window of 10 buckets
//! of 100 ms. The main thread prints what the window sees four times a second: requests per
//! second, mean latency and the busiest bucket, as a breaker or shedder would read it. At the
//! end it measures what one `add` costs with both threads adding flat out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use keel_rollingwindow::{RollingWindow, SumCount};

/// A tiny xorshift, so the demo needs no RNG crate.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn phase(elapsed: Duration, total: Duration) -> (&'static str, f64) {
    let third = total / 3;
    if elapsed < third {
        ("healthy", 1.0)
    } else if elapsed < 2 * third {
        ("slow db", 8.0)
    } else {
        ("recovered", 1.0)
    }
}

/// Wall time per add, per thread, with two threads adding to one window at once.
fn add_cost(window: &RollingWindow<SumCount<f64>>) -> f64 {
    const ADDS: u32 = 5_000_000;
    let nanos = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let t = Instant::now();
                for i in 0..ADDS {
                    window.add(f64::from(i & 7));
                }
                nanos.fetch_max(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            });
        }
    });
    nanos.into_inner() as f64 / f64::from(ADDS)
}

fn seconds_flag() -> Result<u64, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(3),
        [flag, n] if flag == "--seconds" => n
            .parse()
            .ok()
            .filter(|n| (1..=600).contains(n))
            .ok_or_else(|| format!("--seconds takes 1 to 600, got {n:?}")),
        _ => Err("usage: rolling_window [--seconds N]".into()),
    }
}

fn main() {
    let total = match seconds_flag() {
        Ok(s) => Duration::from_secs(s),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let latency_ms = Arc::new(
        RollingWindow::<SumCount<f64>>::new(10, Duration::from_millis(100))
            .expect("10 buckets of 100 ms is a valid window"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let workers: Vec<_> = (0..2u64)
        .map(|id| {
            let (window, stop) = (Arc::clone(&latency_ms), Arc::clone(&stop));
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1));
                while !stop.load(Ordering::Relaxed) {
                    let (_, slowdown) = phase(started.elapsed(), total);
                    // A simulated request: 0.2-1 ms, eight times that while the db is slow.
                    let latency = (0.2 + 0.8 * rng.next_f64()) * slowdown;
                    thread::sleep(Duration::from_secs_f64(latency / 1000.0));
                    window.add(latency);
                }
            })
        })
        .collect();

    println!("time    phase       req/s (1 s window)   mean latency   busiest 100 ms bucket");
    while started.elapsed() < total {
        thread::sleep(Duration::from_millis(250));
        let elapsed = started.elapsed();
        let (sum, count, busiest) = latency_ms.fold((0.0, 0u64, 0u64), |(s, n, m), b| {
            (s + b.sum, n + b.count, m.max(b.count))
        });
        let mean = if count > 0 { sum / count as f64 } else { 0.0 };
        let bar = "#".repeat((mean * 4.0).round().min(40.0) as usize);
        println!(
            "{:5.2}s  {:<10}  {:>18}   {:>9.2} ms   {:>8}  {bar}",
            elapsed.as_secs_f64(),
            phase(elapsed, total).0,
            count,
            mean,
            busiest,
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker thread");
    }
    println!(
        "\n{:.1} ns per add with 2 threads adding flat out",
        add_cost(&latency_ms)
    );
    println!("criterion figures against a mutex-based window: BENCHMARKS.md");
}
