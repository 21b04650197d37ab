//! Reading criterion's estimates back from its output directory.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde_json::Value;

/// Criterion's median of one benchmark, per iteration, with its 95% confidence interval.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Median {
    pub(crate) ns: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
}

impl Median {
    pub(crate) fn exact(ns: f64) -> Median {
        Median {
            ns,
            low: ns,
            high: ns,
        }
    }
}

/// Medians keyed by `(group, benchmark)`, in criterion's naming.
#[derive(Debug, Default)]
pub(crate) struct Results(BTreeMap<(String, String), Median>);

impl Results {
    pub(crate) fn get(&self, group: &str, bench: &str) -> Option<Median> {
        self.0.get(&(group.to_owned(), bench.to_owned())).copied()
    }

    #[cfg(test)]
    pub(crate) fn insert(&mut self, group: &str, bench: &str, median: Median) {
        self.0.insert((group.to_owned(), bench.to_owned()), median);
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&(String, String), &Median)> {
        self.0.iter()
    }
}

/// Every benchmark under `dir`.
pub(crate) fn load(dir: &Path) -> io::Result<Results> {
    let mut results = Results::default();
    visit(dir, &mut results)?;
    Ok(results)
}

fn visit(dir: &Path, results: &mut Results) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some((key, median)) = read_one(&path)? {
                results.0.insert(key, median);
            }
        } else {
            visit(&path, results)?;
        }
    }
    Ok(())
}

fn read_one(new: &Path) -> io::Result<Option<((String, String), Median)>> {
    let (Ok(id), Ok(est)) = (
        fs::read_to_string(new.join("benchmark.json")),
        fs::read_to_string(new.join("estimates.json")),
    ) else {
        return Ok(None);
    };
    let id: Value = serde_json::from_str(&id)?;
    let est: Value = serde_json::from_str(&est)?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let group = text(&id["group_id"]);
    // A benchmark outside a group has no function id; its group id is its name.
    let bench = text(&id["function_id"]).or_else(|| text(&id["value_str"]));
    let median = &est["median"];
    let num = |v: &Value| v.as_f64();
    let parsed = (|| {
        Some((
            (group?, bench.unwrap_or_default()),
            Median {
                ns: num(&median["point_estimate"])?,
                low: num(&median["confidence_interval"]["lower_bound"])?,
                high: num(&median["confidence_interval"]["upper_bound"])?,
            },
        ))
    })();
    parsed.map(Some).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected criterion files in {}", new.display()),
        )
    })
}
