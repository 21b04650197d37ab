//! A shedder in front of a handler, on a manual clock so it runs in milliseconds: the
//! window learns what the service sustains, then the CPU rises, requests pile up, and the
//! shedder refuses the excess until the CPU falls again.
//!
//! ```sh
//! cargo run -p keel-shedder --example shedding
//! ```

use std::time::Duration;

use keel_shedder::cpu::ManualCpu;
use keel_shedder::{Guard, Shedder};
use keel_timex::{Clock, ManualClock};

fn main() -> Result<(), keel_shedder::ConfigError> {
    let clock = ManualClock::new();
    let cpu = ManualCpu::new(300);
    let shedder = Shedder::builder()
        .name("api")
        .cpu_source(cpu.clone())
        .exact_statistics()
        .build_with_clock(clock.clone())?;

    println!("phase      cpu  offered  admitted  refused  mean in flight  max flight  limit");
    // Healthy: 20 requests per 10 ms, each taking 10 ms (200 rps at 10 ms: 2 in flight).
    run(
        &shedder,
        &clock,
        &cpu,
        "healthy",
        300,
        20,
        Duration::from_millis(10),
        0,
    );
    // CPU at 95% and the handler slows down to 40 ms: requests pile up.
    run(
        &shedder,
        &clock,
        &cpu,
        "overload",
        950,
        20,
        Duration::from_millis(40),
        2_000,
    );
    // The CPU falls back; after the 1 s cool-off nothing is refused.
    run(
        &shedder,
        &clock,
        &cpu,
        "recovered",
        300,
        20,
        Duration::from_millis(10),
        2_000,
    );
    Ok(())
}

/// Offers `per_tick` requests every 10 ms for 3 s, each completing after `latency`.
#[allow(clippy::too_many_arguments)]
fn run(
    shedder: &Shedder<ManualClock>,
    clock: &ManualClock,
    cpu: &ManualCpu,
    phase: &str,
    cpu_millis: u32,
    per_tick: usize,
    latency: Duration,
    settle_ms: u64,
) {
    cpu.set(cpu_millis);
    let tick = Duration::from_millis(10);
    let mut open: Vec<(Guard<'_, ManualClock>, keel_timex::Nanos)> = Vec::new();
    let (mut offered, mut admitted, mut refused) = (0, 0, 0);
    let (mut in_flight_sum, mut samples) = (0, 0);
    for step in 0..300u64 {
        let now = clock.now();
        // Finish the requests that are done.
        let (done, still): (Vec<_>, Vec<_>) = open
            .into_iter()
            .partition(|(_, started)| now - *started >= latency);
        done.into_iter().for_each(|(g, _)| g.pass());
        open = still;
        for _ in 0..per_tick {
            if step * 10 < settle_ms {
                // Let the phase settle before counting.
                if let Ok(g) = shedder.allow() {
                    open.push((g, now));
                }
                continue;
            }
            offered += 1;
            match shedder.allow() {
                Ok(g) => {
                    admitted += 1;
                    open.push((g, now));
                }
                Err(_) => refused += 1,
            }
        }
        if step * 10 >= settle_ms {
            in_flight_sum += open.len();
            samples += 1;
        }
        clock.advance(tick);
    }
    let s = shedder.snapshot();
    println!(
        "{phase:<9} {:>4} {offered:>8} {admitted:>9} {refused:>8} {:>15.1} {:>11.0} {:>6.1}",
        cpu_millis,
        in_flight_sum as f64 / samples as f64,
        s.max_flight,
        s.limit
    );
    open.into_iter().for_each(|(g, _)| g.pass());
}
