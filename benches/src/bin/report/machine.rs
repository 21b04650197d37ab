//! What the report says about the machine it ran on.

use std::fs;
use std::process::Command;
use std::thread;

/// The header facts of a report.
#[derive(Debug)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) date: String,
}

pub(crate) fn describe() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    };
    // VMs often show only a brand ("AMD EPYC"); family and model tell the generation.
    let cpu = match (field("model name"), field("cpu family"), field("model")) {
        (Some(name), Some(family), Some(model)) => {
            format!("{name} (family {family}, model {model})")
        }
        (Some(name), ..) => name,
        _ => "unknown".to_owned(),
    };
    Machine {
        cpu,
        cores: thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .or_else(|_| output_of("uname", &["-r"]))
            .unwrap_or_else(|_| "unknown".to_owned()),
        // The rustc on PATH: under `cargo run`, the one that built this binary (bar overrides).
        rustc: output_of("rustc", &["-V"]).unwrap_or_else(|_| "unknown".to_owned()),
        date: crate::date::utc_now(),
    }
}

fn output_of(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{program} exited with {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
