//! The end-of-run summary: both runs side by side, then phase by phase.

use std::fmt::Write as _;
use std::time::Duration;

use crate::env::Env;
use crate::scenario::{Phase, Scenario};
use crate::service::Service;
use crate::stats::{CacheFigures, RunSummary, Totals};

/// Everything a run of the demo produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub(crate) protected: RunSummary,
    pub(crate) unprotected: RunSummary,
    /// Where the limiter kept its buckets, and how that went.
    pub(crate) limiter: String,
}

impl Report {
    pub(crate) fn new<E: Env>(
        scenario: &Scenario,
        protected: &Service<E>,
        unprotected: &Service<E>,
        limiter: String,
        expected: u64,
    ) -> Report {
        Report {
            protected: summarize("protected", scenario, protected, expected),
            unprotected: summarize("unprotected", scenario, unprotected, expected),
            limiter,
        }
    }

    /// The summary table and the per-phase table.
    pub(crate) fn render(&self, scenario: &Scenario) -> String {
        let (p, u) = (&self.protected.total, &self.unprotected.total);
        let mut out = String::new();
        let mut row = |label: &str, a: String, b: String| {
            let _ = writeln!(out, "  {label:<26}{a:>14}{b:>14}");
        };
        row("", "protected".into(), "unprotected".into());
        row("offered", count(p.offered), count(u.offered));
        row("admitted", count(p.admitted()), count(u.admitted()));
        row("  limited (429)", count(p.limited), dash(u.limited));
        for (client, n) in &self.protected.limited_clients {
            row(&format!("    of which {client}"), count(*n), "".into());
        }
        row("  shed (503)", count(p.shed), dash(u.shed));
        row(
            "breaker-rejected (503)",
            count(p.rejected),
            dash(u.rejected),
        );
        row("served (200/404)", count(p.served()), count(u.served()));
        row("errors (500/504)", count(p.errors()), count(u.errors()));
        row(
            "cache hit ratio",
            ratio(self.protected.cache),
            ratio(self.unprotected.cache),
        );
        row(
            "database queries",
            count(self.protected.db_queries),
            count(self.unprotected.db_queries),
        );
        row("latency p50", ms(p.p50), ms(u.p50));
        row("latency p99", ms(p.p99), ms(u.p99));
        row(
            "latency p99, served only",
            ms(p.p99_served),
            ms(u.p99_served),
        );
        if self.protected.unfinished + self.unprotected.unfinished > 0 {
            row(
                "unfinished at exit",
                count(self.protected.unfinished),
                count(self.unprotected.unfinished),
            );
        }
        let _ = writeln!(out, "  limiter: {}", self.limiter);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  {:<10}{:>12}{:>12}{:>12}{:>12}{:>12}",
            "phase", "p99 prot.", "p99 unprot.", "ok% prot.", "ok% unprot.", "errors u."
        );
        for (i, phase) in scenario.phases.iter().enumerate() {
            let (p, u) = (&self.protected.phases[i], &self.unprotected.phases[i]);
            let _ = writeln!(
                out,
                "  {:<10}{:>12}{:>12}{:>12}{:>12}{:>12}",
                phase.name,
                ms(p.p99),
                ms(u.p99),
                percent(p.served(), p.offered),
                percent(u.served(), u.offered),
                count(u.errors()),
            );
        }
        out
    }
}

fn summarize<E: Env>(
    name: &'static str,
    scenario: &Scenario,
    service: &Service<E>,
    expected: u64,
) -> RunSummary {
    let records = service.recorder.records();
    let mut summary = RunSummary::new(name, scenario, &records);
    summary.cache = service.guards().map(|g| {
        let s = g.cache.snapshot();
        CacheFigures {
            hits: s.hits,
            misses: s.misses,
            hit_ratio: s.hit_ratio(),
        }
    });
    summary.db_queries = service.db().queries();
    summary.unfinished = expected.saturating_sub(records.len() as u64);
    summary
}

/// One line per phase: both runs' figures for the requests that arrived in `phase`.
/// `running`: the unprotected run's requests of the phase still waiting (real time prints
/// the line shortly after the phase, when its backlog may not have drained).
pub(crate) fn phase_line(phase: &Phase, p: &Totals, u: &Totals, running: u64) -> String {
    let waiting = if running > 0 {
        format!(", {running} still waiting")
    } else {
        String::new()
    };
    format!(
        "{:<9} {:>5.1}-{:<5.1}s | protected: {:>6} req, {:>5} ok, p99 {:>8}, limited {}, shed {}, rejected {}, errors {} | unprotected: {:>5} ok, p99 {:>8}, errors {}{waiting}",
        phase.name,
        phase.start.as_secs_f64(),
        phase.end.as_secs_f64(),
        p.offered,
        percent(p.served(), p.offered),
        ms(p.p99),
        p.limited,
        p.shed,
        p.rejected,
        p.errors(),
        percent(u.served(), u.offered),
        ms(u.p99),
        u.errors(),
    )
}

fn count(n: u64) -> String {
    n.to_string()
}

fn dash(n: u64) -> String {
    if n == 0 { "-".into() } else { n.to_string() }
}

fn ratio(cache: Option<CacheFigures>) -> String {
    cache.map_or("-".into(), |c| format!("{:.1}%", c.hit_ratio * 100.0))
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// A latency: milliseconds below 10 s.
pub(crate) fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}
