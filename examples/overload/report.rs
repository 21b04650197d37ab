//! The end-of-run summary: the definitions, both runs side by side, then by client class,
//! then phase by phase, then what the shedder did when the spike began.

use std::fmt::Write as _;
use std::time::Duration;

use crate::env::Env;
use crate::scenario::{ClientKind, Phase, Scenario};
use crate::service::{CPU_SAMPLE, Service};
use crate::spike::SpikeStart;
use crate::stats::{BIN, CacheFigures, RunSummary, Schedule, Totals};

/// Where the report's prose wraps.
const WIDTH: usize = 92;

/// Everything a run of the demo produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub(crate) protected: RunSummary,
    pub(crate) unprotected: RunSummary,
    /// Where the limiter kept its buckets, and how that went.
    pub(crate) limiter: String,
    /// The protected run's shedder at the start of the spike.
    pub(crate) spike: Option<SpikeStart>,
}

impl Report {
    pub(crate) fn new<E: Env>(
        scenario: &Scenario,
        schedule: &Schedule,
        protected: &Service<E>,
        unprotected: &Service<E>,
        limiter: String,
    ) -> Report {
        let summary = summarize("protected", scenario, schedule, protected);
        let spike = SpikeStart::measure(scenario, &protected.recorder.records(), &summary.shedder);
        Report {
            protected: summary,
            unprotected: summarize("unprotected", scenario, schedule, unprotected),
            limiter,
            spike,
        }
    }

    /// The definitions, the summary table, the per-class and per-phase tables and the note
    /// on the spike's start.
    pub(crate) fn render(&self, scenario: &Scenario) -> String {
        let mut out = definitions(scenario);
        let _ = writeln!(out);
        self.summary(&mut out);
        let _ = writeln!(out);
        self.by_class(&mut out, scenario);
        let _ = writeln!(out);
        self.by_phase(&mut out, scenario);
        if let Some(spike) = &self.spike {
            let _ = writeln!(out);
            out += &spike_note(spike, scenario);
        }
        out
    }

    fn summary(&self, out: &mut String) {
        let (p, u) = (&self.protected.total, &self.unprotected.total);
        let mut row = |label: &str, a: String, b: String| {
            let _ = writeln!(out, "  {label:<34}{a:>13}{b:>13}");
        };
        row("", "protected".into(), "unprotected".into());
        row("offered", count(p.offered), count(u.offered));
        row("good (200/404 in time)", count(p.good), count(u.good));
        row("late (200/404 too late)", count(p.late), count(u.late));
        row(
            "intended refusals (429 scraper)",
            dash(p.intended),
            dash(u.intended),
        );
        row(
            "refused (cost of protection)",
            dash(p.refused),
            dash(u.refused),
        );
        row(
            "  429 to other clients",
            dash(p.limited_others()),
            dash(u.limited_others()),
        );
        row("  503 shed", dash(p.shed), dash(u.shed));
        row("  503 breaker-rejected", dash(p.rejected), dash(u.rejected));
        row("errors", count(p.errors), count(u.errors));
        row("  500 database failed", count(p.failed), count(u.failed));
        row("  504 deadline", dash(p.timed_out), dash(u.timed_out));
        if p.unanswered + u.unanswered > 0 {
            row(
                "no answer by exit",
                count(p.unanswered),
                count(u.unanswered),
            );
        }
        row(
            "goodput",
            percent(p.good, p.wanted()),
            percent(u.good, u.wanted()),
        );
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
        row("latency p50, every answer", ms(p.p50), ms(u.p50));
        row("latency p99, every answer", ms(p.p99), ms(u.p99));
        row(
            "latency p99, 200/404 answers",
            ms(p.p99_answered),
            ms(u.p99_answered),
        );
        let _ = writeln!(out, "  limiter: {}", self.limiter);
        for (client, n) in &self.protected.limited_clients {
            let _ = writeln!(out, "  429s to {client}: {n}");
        }
    }

    fn by_class(&self, out: &mut String, scenario: &Scenario) {
        let _ = writeln!(
            out,
            "  {:<20}{:<13}{:>8}{:>8}{:>8}{:>10}{:>9}{:>8}{:>9}",
            "by client class",
            "",
            "offered",
            "good",
            "late",
            "intended",
            "refused",
            "errors",
            "goodput"
        );
        for kind in ClientKind::ALL {
            let k = kind.index();
            let deadline = scenario.model.client_deadline(kind);
            let label = format!("{} ({})", kind.label(), short_ms(deadline));
            for (i, run) in [&self.protected, &self.unprotected].into_iter().enumerate() {
                let t = &run.classes[k];
                let name = if i == 0 { label.as_str() } else { "" };
                let _ = writeln!(
                    out,
                    "  {name:<20}{:<13}{:>8}{:>8}{:>8}{:>10}{:>9}{:>8}{:>9}",
                    run.name,
                    t.offered,
                    t.good,
                    t.late,
                    dash(t.intended),
                    dash(t.refused),
                    t.errors,
                    percent(t.good, t.wanted()),
                );
            }
        }
        let unanswered: u64 = [&self.protected, &self.unprotected]
            .iter()
            .map(|r| r.total.unanswered)
            .sum();
        if unanswered > 0 {
            let _ = writeln!(
                out,
                "  (offered also counts {unanswered} requests never answered by exit)"
            );
        }
    }

    fn by_phase(&self, out: &mut String, scenario: &Scenario) {
        let _ = writeln!(
            out,
            "  {:<10}{:>16}{:>16}{:>16}{:>9}{:>9}{:>21}",
            "goodput", "regular", "crowd", "scraper", "errors", "errors", "p99, every answer"
        );
        let _ = writeln!(
            out,
            "  {:<10}{:>16}{:>16}{:>16}{:>9}{:>9}{:>21}",
            "by phase",
            "prot. / unprot.",
            "prot. / unprot.",
            "prot. / unprot.",
            "prot.",
            "unprot.",
            "prot. / unprot."
        );
        for (i, phase) in scenario.phases.iter().enumerate() {
            let (p, u) = (
                &self.protected.phase_classes[i],
                &self.unprotected.phase_classes[i],
            );
            let pair = |k: usize| {
                format!(
                    "{} / {}",
                    percent(p[k].good, p[k].wanted()),
                    percent(u[k].good, u[k].wanted())
                )
            };
            let (pt, ut) = (&self.protected.phases[i], &self.unprotected.phases[i]);
            let _ = writeln!(
                out,
                "  {:<10}{:>16}{:>16}{:>16}{:>9}{:>9}{:>21}",
                phase.name,
                pair(0),
                pair(1),
                pair(2),
                pt.errors,
                ut.errors,
                format!("{} / {}", ms(pt.p99), ms(ut.p99)),
            );
        }
    }
}

/// What each count means, so that every number below can be checked against it.
fn definitions(scenario: &Scenario) -> String {
    let m = &scenario.model;
    let deadlines = ClientKind::ALL
        .map(|k| format!("{} {}", k.label(), short_ms(m.client_deadline(k))))
        .join(", ");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  Every request counts once, by the status its client got and when (from sending):"
    );
    for (term, meaning) in [
        (
            "good",
            format!("200 or 404 within the client's deadline: {deadlines}"),
        ),
        (
            "late",
            "200 or 404 after it: the client had given up".into(),
        ),
        (
            "intended",
            "429 to the scraper: the per-client limit doing its job".into(),
        ),
        (
            "refused",
            "any other 429 or 503: what protection costs the clients it serves".into(),
        ),
        (
            "errors",
            format!(
                "500 (a query failed or hit the {} ms driver timeout) and 504 (the protected \
                 service's {} ms deadline)",
                m.db_timeout.as_millis(),
                m.deadline.as_millis()
            ),
        ),
        (
            "goodput",
            "good / (offered - intended): of the requests meant to be answered".into(),
        ),
    ] {
        let text = wrap(&meaning, WIDTH - 13, "");
        for (i, line) in text.lines().enumerate() {
            let term = if i == 0 { term } else { "" };
            let _ = writeln!(out, "    {term:<9}{line}");
        }
    }
    out += &wrap(
        &format!(
            "Tables group requests by the phase they were sent in. The chart plots offered \
             load by send time, every outcome and the p99 by completion time ({} ms bins).",
            BIN.as_millis()
        ),
        WIDTH,
        "  ",
    );
    out
}

/// The note on the spike's start: what the shedder did, with the run's numbers.
fn spike_note(spike: &SpikeStart, scenario: &Scenario) -> String {
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let mut out = String::from("  Start of the spike (protected run): ");
    let Some(crossed) = spike.crossed else {
        out += "the shedder's CPU signal never reached its threshold.\n";
        return out;
    };
    let _ = write!(
        out,
        "the shedder starts refusing only once its CPU signal (the modelled cores' use, \
         sampled every {} ms and smoothed) reaches its threshold; that took until {} ({} \
         after the spike began), \
         when {} requests admitted meanwhile were in flight against the {:.1} the service \
         had shown it sustains (max pass x min latency).",
        CPU_SAMPLE.as_millis(),
        secs(crossed.at),
        secs(crossed.at - spike.began),
        crossed.in_flight,
        crossed.max_flight,
    );
    match spike.refused_nearly_all {
        Some((from, to)) => {
            let _ = write!(
                out,
                " It then refused 90% or more of what reached it from {} to {}, until those \
                 requests had finished or hit the {} ms deadline: go-zero's rule working as \
                 designed, not a fault.",
                secs(from),
                secs(to),
                scenario.model.deadline.as_millis()
            );
        }
        None => {
            out += " It never refused 90% or more of what reached it for 100 ms.";
        }
    }
    wrap(&out, WIDTH, "  ")
}

fn summarize<E: Env>(
    name: &'static str,
    scenario: &Scenario,
    schedule: &Schedule,
    service: &Service<E>,
) -> RunSummary {
    let records = service.recorder.records();
    let mut summary = RunSummary::new(name, scenario, schedule, &records);
    summary.cache = service.guards().map(|g| {
        let s = g.cache.snapshot();
        CacheFigures {
            hits: s.hits,
            misses: s.misses,
            hit_ratio: s.hit_ratio(),
        }
    });
    summary.db_queries = service.db().queries();
    summary.shedder = service.shedder_trace();
    summary
}

/// One line per phase: both runs' figures for the requests sent in `phase`. Requests
/// not answered yet count as "waiting" (real time prints the line shortly after the
/// phase, when the unprotected backlog may not have drained).
pub(crate) fn phase_line(phase: &Phase, p: &[Totals; 3], u: &[Totals; 3]) -> String {
    let run = |t: &[Totals; 3]| {
        let all = sum(t);
        let waiting = if all.unanswered > 0 {
            format!(", {} waiting", all.unanswered)
        } else {
            String::new()
        };
        format!(
            "goodput regular {} crowd {} scraper {}, intended {}, refused {}, errors {}{waiting}",
            percent(t[0].good, t[0].wanted()),
            percent(t[1].good, t[1].wanted()),
            percent(t[2].good, t[2].wanted()),
            all.intended,
            all.refused,
            all.errors,
        )
    };
    format!(
        "{:<9} {:>5.1}-{:<5.1}s {:>5} req | protected: {} | unprotected: {}",
        phase.name,
        phase.start.as_secs_f64(),
        phase.end.as_secs_f64(),
        sum(p).offered,
        run(p),
        run(u),
    )
}

/// The counts of the classes together (percentiles are not additive and stay zero).
fn sum(classes: &[Totals; 3]) -> Totals {
    let mut t = Totals::default();
    for c in classes {
        t.offered += c.offered;
        t.good += c.good;
        t.late += c.late;
        t.intended += c.intended;
        t.refused += c.refused;
        t.errors += c.errors;
        t.unanswered += c.unanswered;
    }
    t
}

/// `text` re-wrapped at `width` columns, each line indented by `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
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

/// A deadline: "250 ms", "1 s".
fn short_ms(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A latency: milliseconds below 10 s.
pub(crate) fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}
