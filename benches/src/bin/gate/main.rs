//! The performance regression gate: counts the instructions one call of each hot path
//! executes (valgrind's callgrind, collecting inside the hot-path functions only, so the
//! figure is the same on every run of the same binary, however busy the machine) and fails
//! when one rises more than 3% over its committed baseline.
//!
//! ```text
//! cargo run -p keel-benches --release --bin gate               # check (CI runs this)
//! cargo run -p keel-benches --release --bin gate -- --update   # accept the new counts
//! cargo run -p keel-benches --release --features metrics --bin gate   # the same, metrics on
//! ```
//!
//! Built with `--features metrics`, every crate records its metrics and each probe installs
//! a Prometheus recorder (metrics-exporter-prometheus) before its setup, as a service would;
//! the counts are checked against `instructions-metrics.baseline`, and the table shows
//! what recording costs over the same path without the feature (`instructions.baseline`).
//!
//! Each path is run twice under valgrind, for `SHORT` and `LONG` iterations after the same
//! setup; the difference divided by `LONG - SHORT` is the cost of one call, with the process
//! start, the setup and the teardown cancelled out. Counts depend on the compiler: after a
//! toolchain upgrade, review the table and update the baselines.

mod baseline;
mod paths;
mod valgrind;

use std::process::ExitCode;

use baseline::Baselines;
use paths::ALL;

const SHORT: u64 = 20_000;
const LONG: u64 = 620_000;

/// A rise above this fraction of the baseline fails the gate.
const TOLERANCE: f64 = 0.03;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["probe", path, iterations] => probe(path, iterations),
        [] => gate(false),
        ["--update"] => gate(true),
        _ => {
            eprintln!(
                "usage: gate [--update]\n  \
                 counts each hot path's instructions per call under valgrind and compares them \
                 with {}",
                baseline::PATH
            );
            ExitCode::from(2)
        }
    }
}

/// Runs one hot path; the parent process counts it.
fn probe(path: &str, iterations: &str) -> ExitCode {
    let Some(hot) = ALL.iter().find(|p| p.name == path) else {
        eprintln!("unknown hot path {path}");
        return ExitCode::from(2);
    };
    let Ok(iterations) = iterations.parse() else {
        eprintln!("bad iteration count {iterations}");
        return ExitCode::from(2);
    };
    #[cfg(feature = "metrics")]
    {
        if let Err(e) = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            eprintln!("cannot install the Prometheus recorder: {e}");
            return ExitCode::from(2);
        }
        // The shared publication thread wakes on real time, so under valgrind it would
        // add a varying count to every probe: off, the count is the caller's alone (the
        // batched counters are still published, at the primitive's drop).
        keel_timex::periodic::set_enabled(false);
    }
    (hot.run)(iterations);
    ExitCode::SUCCESS
}

fn gate(update: bool) -> ExitCode {
    if cfg!(debug_assertions) {
        eprintln!("the gate counts optimised code: run it with --release");
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find the gate's own binary: {e}");
            return ExitCode::from(2);
        }
    };
    let baselines = match Baselines::load() {
        Ok(b) => b,
        Err(e) if update => {
            eprintln!("({e}; starting a new baseline file)");
            Baselines::default()
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };

    let mut measured = Vec::new();
    for hot in ALL {
        let per_call = valgrind::instructions(&exe, hot.name, SHORT).and_then(|short| {
            valgrind::instructions(&exe, hot.name, LONG)
                .map(|long| long.saturating_sub(short) as f64 / (LONG - SHORT) as f64)
        });
        match per_call {
            Ok(per_call) => measured.push((hot, per_call)),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }

    println!(
        "instructions per call (valgrind callgrind; baseline {}, tolerance +{:.0}%)\n",
        baseline::PATH,
        TOLERANCE * 100.0
    );
    // With the feature on: each path's count without it, to show what recording costs.
    let plain = if cfg!(feature = "metrics") {
        Baselines::load_from(baseline::PLAIN_PATH).ok()
    } else {
        None
    };
    if plain.is_some() {
        println!(
            "| hot path | what one call is | baseline | now | change | verdict | without metrics | metrics cost |\n|---|---|---:|---:|---:|---|---:|---:|"
        );
    } else {
        println!(
            "| hot path | what one call is | baseline | now | change | verdict |\n|---|---|---:|---:|---:|---|"
        );
    }
    let mut failed = 0;
    for (hot, now) in &measured {
        let (base, change, verdict) = match baselines.get(hot.name) {
            None => ("-".to_owned(), "-".to_owned(), "NO BASELINE"),
            Some(base) => {
                let change = now / base - 1.0;
                let verdict = if change > TOLERANCE {
                    "FAIL"
                } else if change < -TOLERANCE {
                    "faster (update the baseline)"
                } else {
                    "ok"
                };
                (
                    format!("{base:.1}"),
                    format!("{:+.2}%", change * 100.0),
                    verdict,
                )
            }
        };
        if verdict == "FAIL" || verdict == "NO BASELINE" {
            failed += 1;
        }
        let cost = match plain.as_ref().map(|p| p.get(hot.name)) {
            None => String::new(),
            Some(None) => " - | - |".to_owned(),
            Some(Some(off)) => format!(" {off:.1} | {:+.1} |", now - off),
        };
        println!(
            "| {} | {} | {base} | {now:.1} | {change} | {verdict} |{cost}",
            hot.name, hot.what
        );
    }

    if update {
        let mut updated = Baselines::default();
        for (hot, now) in &measured {
            updated.set(hot.name, *now);
        }
        if let Err(e) = updated.save() {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        println!("\nbaselines written to {}", baseline::PATH);
        return ExitCode::SUCCESS;
    }
    if failed > 0 {
        println!(
            "\n{failed} hot path(s) over the baseline. If the rise is intended, accept it with:\n  \
             cargo run -p keel-benches --release{} --bin gate -- --update",
            if cfg!(feature = "metrics") {
                " --features metrics"
            } else {
                ""
            }
        );
        return ExitCode::FAILURE;
    }
    println!(
        "\nevery hot path within {:.0}% of its baseline",
        TOLERANCE * 100.0
    );
    ExitCode::SUCCESS
}
