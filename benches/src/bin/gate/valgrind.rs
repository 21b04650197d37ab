//! Counting a probe's instructions under valgrind's cachegrind (no cache simulation: only
//! the instruction count, which is repeatable for one binary and input).

use std::path::Path;
use std::process::Command;

/// Instructions executed by `exe probe <path> <iterations>`, all threads included.
pub(crate) fn instructions(exe: &Path, path: &str, iterations: u64) -> Result<u64, String> {
    let out_file = std::env::temp_dir().join(format!(
        "keel-gate-{}-{path}-{iterations}.cachegrind",
        std::process::id()
    ));
    let output = Command::new("valgrind")
        .arg("--tool=cachegrind")
        .arg("--cache-sim=no")
        .arg(format!("--cachegrind-out-file={}", out_file.display()))
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
        .map_err(|e| format!("no cachegrind output at {}: {e}", out_file.display()))?;
    let _ = std::fs::remove_file(&out_file);
    summary_ir(&text).ok_or_else(|| format!("no `summary:` line in {}", out_file.display()))
}

/// The `summary: <Ir>` line of a cachegrind output file.
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
