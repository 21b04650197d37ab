//! `BENCHMARKS.md` from the rows of `benches/report/rows.toml` and one run's figures: a
//! summary, the chart's bars, per-primitive details, the checks, all figures and the method.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use keel_benches::figures::Figures;
use keel_benches::profile::Profile;
use serde::Deserialize;

use crate::machine::Machine;
use crate::results::{Median, Results};

/// The rows, per primitive (the data file's schema is described at its top).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Spec {
    pub(crate) primitive: Vec<Primitive>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Primitive {
    pub(crate) name: String,
    #[serde(rename = "crate")]
    pub(crate) krate: String,
    pub(crate) note: Option<String>,
    #[serde(default)]
    pub(crate) peers: Vec<String>,
    pub(crate) baseline: Option<String>,
    pub(crate) rows: Vec<Row>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) group: String,
    #[serde(default = "keel")]
    pub(crate) keel: String,
    pub(crate) peers: Option<Vec<String>>,
    pub(crate) baseline: Option<String>,
    #[serde(default = "ns")]
    pub(crate) unit: String,
    #[serde(default = "one")]
    pub(crate) per: f64,
    pub(crate) minus: Option<String>,
    #[serde(default)]
    pub(crate) higher: bool,
    pub(crate) goal: Option<String>,
    pub(crate) behind: Option<String>,
    #[serde(default)]
    pub(crate) summary: bool,
}

fn ns() -> String {
    "ns".to_owned()
}

fn keel() -> String {
    "keel".to_owned()
}

fn one() -> f64 {
    1.0
}

pub(crate) const SPEC: &str = include_str!("../../../report/rows.toml");
const METHOD: &str = include_str!("../../../report/method.md");
pub(crate) const CHART: &str = "benches/report/ratios.svg";

/// The rows of `rows.toml`, each with its primitive's defaults filled in.
pub(crate) fn spec() -> Result<Spec, toml::de::Error> {
    parse(SPEC)
}

fn parse(text: &str) -> Result<Spec, toml::de::Error> {
    let mut spec: Spec = toml::from_str(text)?;
    for p in &mut spec.primitive {
        for row in &mut p.rows {
            row.peers.get_or_insert_with(|| p.peers.clone());
            row.baseline = row.baseline.take().or_else(|| p.baseline.clone());
            row.baseline.take_if(|b| b.is_empty());
        }
    }
    Ok(spec)
}

impl Row {
    fn peers(&self) -> &[String] {
        self.peers.as_deref().unwrap_or_default()
    }
}

/// Everything a report shows.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) command: String,
    pub(crate) profile: Profile,
    pub(crate) machine: Machine,
    pub(crate) versions: Vec<(String, String)>,
    pub(crate) results: Results,
    pub(crate) figures: Figures,
    pub(crate) elapsed: Duration,
}

impl Report {
    fn get(&self, group: &str, name: &str) -> Option<Median> {
        self.results.get(group, name).or_else(|| {
            let m = self
                .figures
                .values
                .iter()
                .find(|m| m.group == group && m.name == name)?;
            Some(Median::exact(m.value))
        })
    }

    fn cell(&self, row: &Row, name: &str) -> Option<Median> {
        let m = self.get(&row.group, name)?;
        let floor = match &row.minus {
            Some(f) => self.get(&row.group, f)?.ns,
            None => 0.0,
        };
        let f = |v: f64| (v - floor) / row.per;
        Some(Median {
            ns: f(m.ns),
            low: f(m.low),
            high: f(m.high),
        })
    }
}

/// One row evaluated against a run.
#[derive(Debug)]
pub(crate) struct Eval<'r> {
    pub(crate) keel: Option<Median>,
    pub(crate) best: Option<(&'r str, Median)>,
    pub(crate) baseline: Option<Median>,
    pub(crate) goals: Vec<(&'r str, Option<bool>)>,
}

impl Eval<'_> {
    pub(crate) fn ratio(&self, row: &Row, other: Option<Median>) -> Option<f64> {
        ratio(row.higher, self.keel?.ns, other?.ns)
    }

    fn behind(&self, row: &Row) -> bool {
        self.ratio(row, self.best.map(|b| b.1))
            .is_some_and(|r| r < 1.0)
            || self.goals.iter().any(|g| g.1 == Some(false))
    }
}

/// peer / keel, or keel / peer when more is better; `None` unless both are positive.
pub(crate) fn ratio(higher: bool, keel: f64, other: f64) -> Option<f64> {
    (keel > 0.0 && other > 0.0).then(|| if higher { keel / other } else { other / keel })
}

pub(crate) fn eval<'r>(report: &Report, row: &'r Row) -> Eval<'r> {
    let keel = report.cell(row, &row.keel);
    let best = row
        .peers()
        .iter()
        .chain(&row.baseline)
        .filter_map(|p| Some((p.as_str(), report.cell(row, p)?)))
        .reduce(|a, b| {
            if (b.1.ns < a.1.ns) != row.higher {
                b
            } else {
                a
            }
        });
    let baseline = row.baseline.as_ref().and_then(|b| report.cell(row, b));
    let mut e = Eval {
        keel,
        best,
        baseline,
        goals: Vec::new(),
    };
    for goal in row.goal.iter().flat_map(|g| g.split(',')).map(str::trim) {
        let met = check_goal(goal, &e, row);
        e.goals.push((goal, met));
    }
    e
}

/// Whether `goal` (`≤ 15 ns`, `≥ 1M`, `≥ 1.0× best peer`, `≥ 3× baseline`) is met.
fn check_goal(goal: &str, e: &Eval<'_>, row: &Row) -> Option<bool> {
    let (at_most, rest) = match goal.chars().next()? {
        '≤' => (true, &goal['≤'.len_utf8()..]),
        '≥' => (false, &goal['≥'.len_utf8()..]),
        _ => return None,
    };
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let mut bound: f64 = rest[..end].parse().ok()?;
    let unit = rest[end..].trim_start();
    let measured = if let Some(against) = unit.strip_prefix('×') {
        let other = if against.contains("baseline") {
            e.baseline
        } else {
            e.best.map(|b| b.1)
        };
        e.ratio(row, other)?
    } else {
        bound *= match unit.chars().next() {
            Some('k') => 1e3,
            Some('M') => 1e6,
            _ => 1.0,
        };
        e.keel?.ns
    };
    Some(if at_most {
        measured <= bound
    } else {
        measured >= bound
    })
}

/// `3.19`, `52.9`, `279`, `1.05k`, `7.82M`; ns are shown in µs and ms past 10 000.
pub(crate) fn fmt_value(v: f64, unit: &str) -> String {
    let (v, unit) = match unit {
        "ns" if v.abs() >= 1e6 => (v / 1e6, "ms"),
        "ns" if v.abs() >= 1e4 => (v / 1e3, "µs"),
        _ => (v, unit),
    };
    let a = v.abs();
    let num = if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    };
    if unit.is_empty() {
        num
    } else {
        format!("{num} {unit}")
    }
}

pub(crate) fn fmt_ratio(x: Option<f64>) -> String {
    match x {
        Some(x) if x < 10.0 => format!("{x:.2}×"),
        Some(x) => format!("{x:.1}×"),
        None => "–".to_owned(),
    }
}

fn cell(m: Option<Median>, unit: &str, ci: bool) -> String {
    match m {
        Some(m) if ci && m.high > m.low => format!(
            "{} ({}–{})",
            fmt_value(m.ns, unit),
            fmt_value(m.low, ""),
            fmt_value(m.high, "")
        ),
        Some(m) => fmt_value(m.ns, unit),
        None => "–".to_owned(),
    }
}

fn goals(e: &Eval<'_>) -> String {
    let marks = e.goals.iter().map(|(g, met)| match met {
        Some(true) => format!("{g} ✓"),
        Some(false) => format!("{g} **✗**"),
        None => format!("{g} (not measured)"),
    });
    marks.collect::<Vec<_>>().join(", ")
}

/// The chart's bars: `(label, ratio against the best peer)` for every row that has one.
pub(crate) fn bars(spec: &Spec, report: &Report) -> Vec<(String, f64)> {
    let mut bars = Vec::new();
    for p in &spec.primitive {
        for row in &p.rows {
            let e = eval(report, row);
            if let Some(r) = e.ratio(row, e.best.map(|b| b.1)) {
                bars.push((format!("{}: {}", p.name, row.what), r));
            }
        }
    }
    bars
}

pub(crate) fn markdown(spec: &Spec, r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    // Writing to a String cannot fail; `let _` keeps the many writes readable.
    let _ = writeln!(
        s,
        "# keel benchmarks\n\n\
         keel against the best peer crate and against the go-zero design (a go-zero port, \
         or go-zero's design rebuilt in Rust), all measured in one run on one machine. \
         **ratio** = peer time / keel time (for hit ratios and decisions/s: keel / peer): \
         above 1, keel is better.\n\n\
         - **Machine:** {}, {} logical CPUs, Linux {}; {}, `--release`\n\
         - **Date:** {}; the run took {:.0} s\n\
         - **Command:** `{}` (do not edit this file by hand)\n\n\
         ![keel / best peer per row, log scale]({CHART})\n\n\
         ## Summary\n\n\
         | primitive | operation | keel | best peer | ratio | go-zero design | ratio |\n\
         |---|---|---|---|---|---|---|",
        m.cpu,
        m.cores,
        m.kernel,
        m.rustc,
        m.date,
        r.elapsed.as_secs_f64(),
        r.command,
    );
    for p in &spec.primitive {
        for row in p.rows.iter().filter(|row| row.summary) {
            let e = eval(r, row);
            let best = e
                .best
                .map(|(n, b)| format!("{} ({n})", fmt_value(b.ns, &row.unit)));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                p.name,
                row.what,
                cell(e.keel, &row.unit, false),
                best.unwrap_or_else(|| "–".to_owned()),
                fmt_ratio(e.ratio(row, e.best.map(|b| b.1))),
                cell(e.baseline, &row.unit, false),
                fmt_ratio(e.ratio(row, e.baseline)),
            );
        }
    }

    let _ = writeln!(
        s,
        "\n## Details\n\nEvery row, with criterion's 95% confidence interval of the median \
         in brackets. A goal is what keel aims for on that row."
    );
    for p in &spec.primitive {
        let _ = writeln!(s, "\n### {} ({})\n", p.name, p.krate);
        if let Some(note) = &p.note {
            let _ = writeln!(s, "{note}\n");
        }
        let _ = writeln!(
            s,
            "| operation | keel | best peer | ratio | go-zero design | ratio | goal |\n\
             |---|---|---|---|---|---|---|"
        );
        let mut behind = Vec::new();
        for row in &p.rows {
            let e = eval(r, row);
            let best = e
                .best
                .map(|(n, b)| format!("{n}: {}", cell(Some(b), &row.unit, true)));
            let base = row.baseline.as_ref().zip(e.baseline);
            let base = base.map(|(n, b)| format!("{n}: {}", cell(Some(b), &row.unit, true)));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.what,
                cell(e.keel, &row.unit, true),
                best.unwrap_or_else(|| "–".to_owned()),
                fmt_ratio(e.ratio(row, e.best.map(|b| b.1))),
                base.unwrap_or_else(|| "–".to_owned()),
                fmt_ratio(e.ratio(row, e.baseline)),
                goals(&e),
            );
            if e.behind(row) {
                let why = row.behind.as_deref().unwrap_or("no reason recorded yet.");
                behind.push(format!("- **{}:** {why}", row.what));
            }
        }
        if !behind.is_empty() {
            let _ = writeln!(
                s,
                "\nWhere keel is behind or misses its goal:\n\n{}",
                behind.join("\n")
            );
        }
    }

    let _ = writeln!(s, "\n## Checks\n");
    if r.figures.warnings.is_empty() {
        let _ = writeln!(s, "Every call came back as its benchmark expects.");
    } else {
        let _ = writeln!(s, "These figures may not measure what their rows say:\n");
        for w in &r.figures.warnings {
            let _ = writeln!(s, "- {w}");
        }
    }

    let versions: Vec<String> = r.versions.iter().map(|(n, v)| format!("{n} {v}")).collect();
    let _ = writeln!(
        s,
        "\n## All figures\n\n- **criterion:** {}; one run.\n- **Crates:** {}\n\n\
         | group | benchmark | median (ns) | 95% CI (ns) |\n|---|---|---|---|",
        r.profile.describe(),
        versions.join(", "),
    );
    for ((group, bench), m) in r.results.iter() {
        let (v, lo, hi) = (
            fmt_value(m.ns, ""),
            fmt_value(m.low, ""),
            fmt_value(m.high, ""),
        );
        let _ = writeln!(s, "| {group} | {bench} | {v} | {lo} – {hi} |");
    }
    let _ = writeln!(s, "\n| group | name | value |\n|---|---|---|");
    let mut values = BTreeMap::new();
    for m in &r.figures.values {
        values.insert((&m.group, &m.name), fmt_value(m.value, m.unit));
    }
    for ((group, name), v) in values {
        let _ = writeln!(s, "| {group} | {name} | {v} |");
    }
    s.push('\n');
    s.push_str(METHOD);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(results: Results, figures: Figures) -> Report {
        Report {
            command: "report".to_owned(),
            profile: Profile::Standard,
            machine: Machine {
                cpu: "cpu".to_owned(),
                cores: 2,
                kernel: "kernel".to_owned(),
                rustc: "rustc".to_owned(),
                date: "date".to_owned(),
            },
            versions: Vec::new(),
            results,
            figures,
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_data_file_parses_and_every_row_has_a_name_and_sane_fields() {
        let spec = spec().expect("rows.toml parses");
        assert!(spec.primitive.len() >= 9);
        for p in &spec.primitive {
            for row in &p.rows {
                assert!(row.per > 0.0, "{}", row.what);
                let e = eval(&report(Results::default(), Figures::default()), row);
                assert!(e.goals.iter().all(|g| g.1.is_none()), "{}", row.what);
                for g in row.goal.iter().flat_map(|g| g.split(',')) {
                    let g = g.trim();
                    assert!(
                        g.starts_with('≤') || g.starts_with('≥'),
                        "{}: {g}",
                        row.what
                    );
                }
            }
        }
    }

    #[test]
    fn every_row_names_a_figure_of_the_last_report() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md");
        let md = std::fs::read_to_string(path).expect("BENCHMARKS.md");
        let Some((_, all)) = md.split_once("\n## All figures") else {
            return; // a report from before the rows were data
        };
        for p in spec().expect("rows.toml").primitive {
            for row in &p.rows {
                let names = [Some(&row.keel), row.baseline.as_ref(), row.minus.as_ref()];
                for name in names.into_iter().flatten().chain(row.peers()) {
                    let line = format!("\n| {} | {name} |", row.group);
                    assert!(
                        all.contains(&line),
                        "{}: `{}` / `{name}`",
                        row.what,
                        row.group
                    );
                }
            }
        }
    }

    #[test]
    fn ratios_are_peer_over_keel_or_keel_over_peer_when_more_is_better() {
        assert_eq!(ratio(false, 10.0, 25.0), Some(2.5));
        assert_eq!(ratio(true, 50.0, 40.0), Some(1.25));
        assert_eq!(ratio(false, 0.0, 3.0), None);
        assert_eq!(fmt_ratio(Some(0.5)), "0.50×");
        assert_eq!(fmt_ratio(Some(12.34)), "12.3×");
        assert_eq!(fmt_value(12_345.0, "ns"), "12.3 µs");
        assert_eq!(fmt_value(7_820_000.0, "decisions/s"), "7.82M decisions/s");
    }

    fn row(toml_row: &str) -> Row {
        toml::from_str(toml_row).expect("row")
    }

    #[test]
    fn goals_best_peer_floors_and_scales() {
        let mut results = Results::default();
        results.insert("g", "keel", Median::exact(2_000.0));
        results.insert("g", "fast", Median::exact(1_000.0));
        results.insert("g", "slow", Median::exact(8_000.0));
        results.insert("g", "floor", Median::exact(500.0));
        let r = report(results, Figures::default());
        let time = row(r#"what = "w"
            group = "g"
            keel = "keel"
            peers = ["slow"]
            baseline = "fast"
            per = 100
            goal = "≤ 25 ns, ≥ 1.0× best peer, ≥ 0.5× baseline""#);
        let e = eval(&r, &time);
        assert_eq!(e.keel.map(|m| m.ns), Some(20.0));
        assert_eq!(
            e.best.map(|b| b.0),
            Some("fast"),
            "the baseline counts as a peer"
        );
        assert_eq!(e.ratio(&time, e.best.map(|b| b.1)), Some(0.5));
        assert_eq!(
            e.goals.iter().map(|g| g.1).collect::<Vec<_>>(),
            [Some(true), Some(false), Some(true)]
        );
        assert!(e.behind(&time));
        let floored = row(r#"what = "w"
            group = "g"
            keel = "keel"
            minus = "floor"
            goal = "≤ 1.5k""#);
        let e = eval(&r, &floored);
        assert_eq!(e.keel.map(|m| m.ns), Some(1_500.0));
        assert_eq!(e.goals[0].1, Some(true));
    }

    #[test]
    fn a_synthetic_run_renders_summary_details_checks_and_measurements() {
        let spec = parse(
            r#"[[primitive]]
            name = "cache"
            crate = "keel-collection"
            [[primitive.rows]]
            what = "get-hit"
            group = "cache get-hit 1t"
            keel = "keel"
            peers = ["quick"]
            baseline = "lru"
            goal = "≥ 1.0× best peer"
            behind = "a reason"
            summary = true
            [[primitive.rows]]
            what = "hit ratio"
            group = "hits"
            keel = "keel"
            peers = ["quick"]
            unit = "%"
            higher = true"#,
        )
        .expect("spec");
        let mut results = Results::default();
        results.insert(
            "cache get-hit 1t",
            "keel",
            Median {
                ns: 40.0,
                low: 39.0,
                high: 41.0,
            },
        );
        results.insert("cache get-hit 1t", "quick", Median::exact(20.0));
        results.insert("cache get-hit 1t", "lru", Median::exact(80.0));
        let mut figures = Figures::default();
        figures.add("hits", "keel", 50.0, "%");
        figures.add("hits", "quick", 40.0, "%");
        figures.check("cache get-hit 1t/keel: gets missed", 3, 1000);
        let r = report(results, figures);
        let md = markdown(&spec, &r);
        assert!(
            md.contains(
                "| cache | get-hit | 40.0 ns | 20.0 ns (quick) | 0.50× | 80.0 ns | 2.00× |"
            ),
            "{md}"
        );
        assert!(md.contains("| get-hit | 40.0 ns (39.0–41.0) | quick: 20.0 ns | 0.50× | lru: 80.0 ns | 2.00× | ≥ 1.0× best peer **✗** |"), "{md}");
        assert!(
            md.contains("| hit ratio | 50.0 % | quick: 40.0 % | 1.25× |"),
            "{md}"
        );
        assert!(md.contains("- **get-hit:** a reason"));
        assert!(md.contains("- cache get-hit 1t/keel: gets missed: 3 of 1000"));
        assert!(md.contains("| hits | quick | 40.0 % |"));
        assert!(!md.to_lowercase().contains("issue"));
        let bars = bars(&spec, &r);
        assert_eq!(
            bars,
            [
                ("cache: get-hit".to_owned(), 0.5),
                ("cache: hit ratio".to_owned(), 1.25)
            ]
        );
    }

    #[test]
    fn the_method_names_no_internal_document() {
        for text in [METHOD, SPEC] {
            assert!(!text.contains("peer-figures"));
            assert!(!text.to_lowercase().contains("issue"));
        }
    }
}
