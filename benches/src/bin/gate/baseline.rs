//! The committed baselines: one `name instructions-per-call` line per hot path.

use std::collections::BTreeMap;

/// Where the baselines live, relative to the workspace root: the paths as users build them
/// (no `metrics` feature), or, when the gate is built with `--features metrics`, the same
/// paths recording into a Prometheus recorder.
pub(crate) const PATH: &str = if cfg!(feature = "metrics") {
    "benches/instructions-metrics.baseline"
} else {
    "benches/instructions.baseline"
};

/// The baselines without the `metrics` feature, which the metrics gate compares with.
pub(crate) const PLAIN_PATH: &str = "benches/instructions.baseline";

/// A baseline file's absolute path (the gate may be run from any directory).
fn file(path: &str) -> std::path::PathBuf {
    let name = path.strip_prefix("benches/").unwrap_or(path);
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

const HEADER: &str = if cfg!(feature = "metrics") {
    "\
# keel's instruction-count baselines with the `metrics` feature on and a Prometheus recorder
# installed (metrics-exporter-prometheus): instructions per call of each hot path, counted by
# valgrind (callgrind, inside the hot-path functions only) through
#   cargo run -p keel-benches --release --features metrics --bin gate
# which fails when a count rises more than 3% above its line here, and prints each path's
# cost over instructions.baseline (the same path without the feature). Accept new counts
# on purpose with:
#   cargo run -p keel-benches --release --features metrics --bin gate -- --update
"
} else {
    "\
# keel's instruction-count baselines: instructions per call of each hot path, counted by
# valgrind (callgrind, inside the hot-path functions only) through
#   cargo run -p keel-benches --release --bin gate
# which fails when a count rises more than 3% above its line here. Counts depend on the compiler version.
# Accept new counts on purpose with:
#   cargo run -p keel-benches --release --bin gate -- --update
"
};

/// Hot path name → instructions per call.
#[derive(Debug, Default)]
pub(crate) struct Baselines(BTreeMap<String, f64>);

impl Baselines {
    pub(crate) fn load() -> Result<Self, String> {
        Self::load_from(PATH)
    }

    /// The baselines in `path` (relative to the workspace root).
    pub(crate) fn load_from(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(file(path))
            .map_err(|e| format!("cannot read the baselines {path}: {e}"))?;
        let mut map = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(name), Some(count), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("{path}:{}: expected `name count`", n + 1));
            };
            let count: f64 = count
                .parse()
                .map_err(|e| format!("{path}:{}: bad count {count}: {e}", n + 1))?;
            map.insert(name.to_owned(), count);
        }
        Ok(Baselines(map))
    }

    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }

    pub(crate) fn set(&mut self, name: &str, count: f64) {
        self.0.insert(name.to_owned(), count);
    }

    pub(crate) fn save(&self) -> Result<(), String> {
        let mut text = HEADER.to_owned();
        for (name, count) in &self.0 {
            text.push_str(&format!("{name} {count:.1}\n"));
        }
        std::fs::write(file(PATH), text).map_err(|e| format!("cannot write {PATH}: {e}"))
    }
}
