//! [`Figures`]: what a suite measured besides criterion's timings (heap per key, hit ratios,
//! decisions/s on Redis, call tallies), as named values the report places in its rows, and
//! warnings when a figure should not be trusted.

use crate::tally::Tally;

/// One figure: `(group, name)` as a criterion benchmark is named, a value and its unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub group: String,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

/// A suite's figures and warnings.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub values: Vec<Measurement>,
    pub warnings: Vec<String>,
}

impl Figures {
    pub fn add(
        &mut self,
        group: impl Into<String>,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) {
        self.values.push(Measurement {
            group: group.into(),
            name: name.into(),
            value,
            unit,
        });
    }

    pub fn check(&mut self, what: impl std::fmt::Display, failed: u64, of: u64) {
        if failed > 0 {
            self.warnings.push(format!("{what}: {failed} of {of}"));
        }
    }

    pub fn check_tallies(&mut self, tallies: &[Tally], what: &str) {
        for t in tallies {
            self.check(
                format_args!("{}/{}: {what}", t.group, t.bench),
                t.unexpected,
                t.calls,
            );
        }
    }

    pub fn shares(&mut self, tallies: &[Tally], group: &str) {
        for t in tallies {
            let name = format!("{} ({})", t.bench, t.group);
            self.add(group, name, 100.0 * t.expected_fraction(), "%");
        }
    }

    pub fn extend(&mut self, other: Figures) {
        self.values.extend(other.values);
        self.warnings.extend(other.warnings);
    }

    pub fn print(&self) {
        for m in &self.values {
            println!("{}/{}: {:.4} {}", m.group, m.name, m.value, m.unit);
        }
        for w in &self.warnings {
            eprintln!("warning: {w}");
        }
    }
}
