//! The keel demo: a service in front of a simulated flaky database goes through five
//! phases (healthy, traffic spike, database degraded, outage, recovery), once protected by
//! keel (per-client token limiter, load shedder, cache with a coalescing loader and
//! negative caching, map-reduce fan-out, circuit breaker) and once unprotected, with the
//! same traffic. At the end: a summary table and an SVG chart.
//!
//! ```sh
//! cargo run --release --example overload                    # real time, about 40 s
//! cargo run --release --example overload -- --virtual-time  # deterministic, seconds
//! cargo run --release --example overload -- --metrics 127.0.0.1:9898  # + /metrics
//! cargo run --release --example overload -- --help
//! ```
//!
//! Files: `args` (flags), `scenario` (phases, clients, arrival schedule), `resource` and
//! `database` (the models), `service` (the request path), `env` (time and tasks, real or
//! virtual), `live` (real time on tokio), `executor` and `sim` (virtual time), `stats`
//! (what counts as good, late, refused or an error), `spike` (the shedder at the spike's
//! start), `report`, `progress`, `chart`, `scrape` (`--metrics`).

mod args;
mod chart;
mod database;
mod env;
mod executor;
mod live;
mod progress;
mod report;
mod resource;
mod rng;
mod scenario;
mod scrape;
mod service;
mod sim;
mod spike;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use args::{Args, HELP};
use scenario::Scenario;

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("overload: {e}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("overload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // First: the primitives register their metrics with the recorder installed when built.
    let metrics = match args.metrics {
        Some(addr) => {
            let server = scrape::serve(addr)?;
            println!("keel's metrics: http://{addr}/metrics");
            Some(server)
        }
        None => None,
    };
    let scenario = Arc::new(Scenario::new(args.duration, args.rate, args.seed));
    println!(
        "{} s of traffic at {} req/s base rate (seed {}), {}:",
        scenario.duration().as_secs_f64(),
        scenario.rate,
        scenario.seed,
        if args.virtual_time {
            "virtual time (deterministic)"
        } else {
            "real time, both runs at once"
        },
    );
    for phase in &scenario.phases {
        println!("  {}", describe(&scenario, phase));
    }
    println!();
    let started = Instant::now();
    let report = if args.virtual_time {
        let report = sim::run(Arc::clone(&scenario))?;
        // The same per-phase lines the real-time run prints as it goes.
        for (i, phase) in scenario.phases.iter().enumerate() {
            println!(
                "{}",
                report::phase_line(
                    phase,
                    &report.protected.phase_classes[i],
                    &report.unprotected.phase_classes[i],
                )
            );
        }
        report
    } else {
        live::run(Arc::clone(&scenario), args.redis.as_deref())?
    };
    println!();
    print!("{}", report.render(&scenario));
    chart::write(&args.out, &scenario, &report)?;
    println!();
    println!("chart: {}", args.out.display());
    if !args.virtual_time {
        // Wall time varies, so the deterministic mode does not print it.
        println!("took {:.1} s", started.elapsed().as_secs_f64());
    }
    if let (Some(server), Some(addr)) = (metrics, args.metrics) {
        println!("still serving http://{addr}/metrics; Ctrl-C to stop");
        let _ = server.join();
    }
    Ok(())
}

/// One line per phase for the header: what the traffic and the database do.
fn describe(scenario: &Scenario, phase: &scenario::Phase) -> String {
    let db = &phase.db;
    let database = if db.down {
        format!(
            "database down: every query times out after {} ms",
            scenario.model.db_timeout.as_millis()
        )
    } else {
        format!(
            "database {} ms per query, {:.1}% errors",
            db.latency.as_millis(),
            db.error_rate * 100.0
        )
    };
    let traffic = if phase.crowd > 0.0 {
        format!(
            "{:.0} req/s (+ a crowd)",
            scenario.rate * (1.0 + phase.crowd)
        )
    } else {
        format!("{:.0} req/s", scenario.rate)
    };
    format!(
        "{:<9} {:>5.1}-{:<5.1}s  {traffic:<22} {database}",
        phase.name,
        phase.start.as_secs_f64(),
        phase.end.as_secs_f64()
    )
}

#[cfg(test)]
mod tests;
