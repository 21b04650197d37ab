//! Prints the CPU signal the shedder sees: which meter was detected, what 1000 millis
//! stands for, and the smoothed usage every 250 ms.
//!
//! ```text
//! cargo run -p keel-shedder --example cpu_usage -- [--seconds N] [--burn] [--mode auto|cgroup|host|process]
//! ```
//!
//! `--burn` keeps one thread busy, so the usage climbs towards 1000 / limit CPUs (the
//! average needs a few seconds to get there: it spans about the last 5 s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keel_shedder::cpu::{CpuMode, CpuSource, SAMPLE_INTERVAL, SystemCpu};

fn main() {
    let mut seconds = 3.0_f64;
    let mut burn = false;
    let mut mode = CpuMode::Auto;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds takes a number")
            }
            "--burn" => burn = true,
            "--mode" => {
                mode = match args.next().as_deref() {
                    Some("auto") => CpuMode::Auto,
                    Some("cgroup") => CpuMode::Cgroup,
                    Some("host") => CpuMode::Host,
                    Some("process") => CpuMode::Process,
                    other => panic!("unknown mode {other:?}"),
                }
            }
            other => panic!("unknown argument {other:?}; see the file's docs"),
        }
    }

    // Detect once by hand to show why there may be no signal.
    if let Err(e) = mode.detect() {
        println!("{mode:?}: no CPU signal ({e})");
        return;
    }
    let cpu = SystemCpu::new(mode);
    println!(
        "{mode:?}: {} meter, 1000 millis = {:.2} CPUs",
        cpu.kind().expect("detected above"),
        cpu.limit_cpus().expect("detected above"),
    );

    // The sampler starts with the first question; ask now so the first value comes one
    // interval after start-up rather than two.
    let _ = cpu.usage();

    let stop = Arc::new(AtomicBool::new(false));
    let burner = burn.then(|| {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        })
    });

    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        std::thread::sleep(SAMPLE_INTERVAL);
        let shown = cpu
            .usage()
            .map_or_else(|| "-".to_owned(), |m| format!("{m}m"));
        println!("{:6.2}s  cpu {shown}", start.elapsed().as_secs_f64());
    }

    stop.store(true, Ordering::Relaxed);
    if let Some(t) = burner {
        t.join().expect("burner thread");
    }
}
