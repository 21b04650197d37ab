//! Counting a probe's instructions under valgrind's callgrind, collecting only inside the
//! hot-path functions (`gate::paths::*`, callees included) on the thread that runs them.
//!
//! Only those: the rest of the process is not repeatable. Installing the Prometheus
//! recorder calibrates quanta's clock in a loop bound by wall time (millions of
//! instructions that vary run to run), and a background thread (keel-timex's periodic
//! publisher) wakes on real time. The count inside the paths is the same on every run of
//! the same binary and input.

use std::path::Path;
use std::process::Command;

/// Instructions executed inside `gate::paths::*` by `exe probe <path> <iterations>`.
pub(crate) fn instructions(exe: &Path, path: &str, iterations: u64) -> Result<u64, String> {
    let out_file = std::env::temp_dir().join(format!(
        "keel-gate-{}-{path}-{iterations}.callgrind",
        std::process::id()
    ));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--toggle-collect=gate::paths::*")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(exe)
        .args(["probe", path, &iterations.to_string()])
        .output()
        .map_err(|e| format!("could not run valgrind (is it installed?): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "valgrind on probe {path} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = std::fs::read_to_string(&out_file)
        .map_err(|e| format!("no callgrind output at {}: {e}", out_file.display()))?;
    let _ = std::fs::remove_file(&out_file);
    summary_ir(&text).ok_or_else(|| format!("no `summary:` line in {}", out_file.display()))
}

/// The `summary: <Ir>` line of a callgrind output file.
fn summary_ir(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("summary:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|ir| ir.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::summary_ir;

    #[test]
    fn reads_the_summary_line() {
        let text = "desc: I1 cache: ...\ncmd: x\nevents: Ir\nfl=a.rs\n1 5\nsummary: 123456\n";
        assert_eq!(summary_ir(text), Some(123_456));
        assert_eq!(summary_ir("events: Ir\n"), None);
    }
}
