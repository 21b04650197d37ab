//! `report`: runs every keel-benches suite once and writes `BENCHMARKS.md` at the workspace
//! root and its chart, from the rows of `benches/report/rows.toml` (see [`render`]).
//!
//! ```text
//! cargo run -p keel-benches --release --bin report            # about 5 minutes
//! cargo run -p keel-benches --release --bin report -- --full  # about 9 minutes
//! ```
//!
//! The figures are criterion's own median estimates, read back from the `estimates.json`
//! files it writes; this binary does no timing of its own.

mod chart;
mod date;
mod machine;
mod render;
mod results;
mod versions;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use std::{env, fs, io};

use keel_benches::figures::Figures;
use keel_benches::limiter::memory::CountingAlloc;
use keel_benches::profile::Profile;
use keel_benches::suites;

/// Counts the heap figures' spans (limiters, timing wheels, caches); elsewhere one TLS load.
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;
const COMMAND: &str = "cargo run -p keel-benches --release --bin report";
const USAGE: &str = "usage: report [--full]\n\n  --full  longer criterion runs \
                     (50 samples, 2 s warm-up, 5 s measurement; about 9 minutes)";

fn main() -> ExitCode {
    let profile = match parse_args(env::args().skip(1)) {
        Ok(Some(profile)) => profile,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("{msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(profile) {
        Ok(path) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("report failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` asks for the usage text.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Profile>, String> {
    let mut profile = Profile::Standard;
    for arg in args {
        match arg.as_str() {
            "--full" => profile = Profile::Full,
            "-h" | "--help" => return Ok(None),
            // `cargo run` forwards nothing else, but criterion-style flags are a likely slip.
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Some(profile))
}

fn run(profile: Profile) -> io::Result<PathBuf> {
    let started = Instant::now();
    let root = workspace_root();
    // A directory of its own, emptied first: no stale figure, no clash with `cargo bench`'s.
    let out = target_dir(&root).join("criterion-report");
    match fs::remove_dir_all(&out) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }

    let spec = render::spec().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut c = profile.criterion().output_directory(&out);
    let mut figures = Figures::default();
    suites::baseline::all(&mut c);
    suites::timex::all(&mut c);
    suites::rollingwindow::all(&mut c);
    figures.extend(suites::breaker::run(&mut c));
    figures.extend(suites::shedder::run(&mut c));
    figures.extend(suites::limiter::run(&mut c));
    suites::mapreduce::all(&mut c);
    figures.extend(suites::timingwheel::run(&mut c));
    figures.extend(suites::syncx::run(&mut c));
    figures.extend(suites::cache::run(&mut c));

    let report = render::Report {
        command: match profile {
            Profile::Standard => COMMAND.to_owned(),
            Profile::Full => format!("{COMMAND} -- --full"),
        },
        profile,
        machine: machine::describe(),
        versions: versions::read(&root.join("Cargo.lock")),
        results: results::load(&out)?,
        figures,
        elapsed: started.elapsed(),
    };
    chart::write(&root.join(render::CHART), &render::bars(&spec, &report))
        .map_err(|e| io::Error::other(e.to_string()))?;
    let path = root.join("BENCHMARKS.md");
    fs::write(&path, render::markdown(&spec, &report))?;
    println!("report run took {:.0} s", started.elapsed().as_secs_f64());
    Ok(path)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("keel-benches lives one level below the workspace root")
        .to_path_buf()
}

/// Where cargo builds, as criterion itself resolves it when no `cargo metadata` is needed.
fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}
