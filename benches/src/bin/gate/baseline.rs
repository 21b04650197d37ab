//! The committed baselines: one `name instructions-per-call` line per hot path.

use std::collections::BTreeMap;

/// Where the baselines live, relative to the workspace root.
pub(crate) const PATH: &str = "benches/instructions.baseline";

/// The file's absolute path (the gate may be run from any directory).
fn file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("instructions.baseline")
}

const HEADER: &str = "\
# keel's instruction-count baselines: instructions per call of each hot path, counted by
# valgrind (cachegrind) through `cargo run -p keel-benches --release --bin gate`, which fails
# when a count rises more than 3% above its line here. Counts depend on the compiler version.
# Accept new counts on purpose with:
#   cargo run -p keel-benches --release --bin gate -- --update
";

/// Hot path name → instructions per call.
#[derive(Debug, Default)]
pub(crate) struct Baselines(BTreeMap<String, f64>);

impl Baselines {
    pub(crate) fn load() -> Result<Self, String> {
        let text = std::fs::read_to_string(file())
            .map_err(|e| format!("cannot read the baselines {PATH}: {e}"))?;
        let mut map = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(name), Some(count), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("{PATH}:{}: expected `name count`", n + 1));
            };
            let count: f64 = count
                .parse()
                .map_err(|e| format!("{PATH}:{}: bad count {count}: {e}", n + 1))?;
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
        std::fs::write(file(), text).map_err(|e| format!("cannot write {PATH}: {e}"))
    }
}
