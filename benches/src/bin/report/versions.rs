//! Versions of the measured crates, read from `Cargo.lock` so the report cannot go stale.

use std::fs;
use std::path::Path;

const CRATES: &str = "ahash async_singleflight criterion dashmap failsafe governor hashbrown \
                      little-loadshedder lru moka rust-zero-core rs-zero parking_lot quanta \
                      quick_cache redis tokio tokio-util tower";

/// `(crate, version)` for each of [`CRATES`] found in the lock file.
pub(crate) fn read(lock: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(lock).unwrap_or_default();
    let mut found = Vec::new();
    let mut name: Option<&str> = None;
    for line in text.lines() {
        if let Some(n) = quoted(line, "name = ") {
            name = Some(n);
        } else if let (Some(n), Some(v)) = (name, quoted(line, "version = ")) {
            if CRATES.split_whitespace().any(|c| c == n) {
                found.push((n.to_owned(), v.to_owned()));
            }
            name = None;
        }
    }
    found.sort();
    found
}

fn quoted<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.strip_prefix(key)?.strip_prefix('"')?.strip_suffix('"')
}
