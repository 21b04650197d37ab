//! What happened to each request, how it counts for the client that sent it, and the
//! totals, per-class, per-phase and per-bin figures the report and the chart are made of.
//!
//! Every request counts in exactly one [`Verdict`], so each table's rows add up to the
//! requests offered. Phases and classes are by the time a request was *sent*; the chart's
//! bins are by the time it was *answered* (see [`RunSummary`]).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::scenario::{ClientKind, Request, Scenario};

/// How a request ended, as its client saw it. Ordered by severity: a request whose reads
/// ended differently reports the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// All three rows read.
    Ok,
    /// The user does not exist (a 404 is a correct answer, not an error).
    NotFound,
    /// 429 from the per-client rate limiter.
    Limited,
    /// 503 from the load shedder.
    Shed,
    /// 503 because the breaker refused a database call.
    Rejected,
    /// 500: a database query failed or timed out.
    Failed,
    /// 504: the protected service's deadline passed first.
    TimedOut,
}

/// How a request counts for the client that sent it: one verdict per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A useful answer (200 or 404) within the client's deadline: goodput.
    Good,
    /// A useful answer after the client's deadline: it had given up, so it is not goodput.
    Late,
    /// A 429 to the abusive client: the per-client limit doing its job.
    Intended,
    /// A 429 or 503 to a client the service meant to serve (every refusal but the
    /// scraper's 429s): what protection costs.
    Refused,
    /// 500 (the database failed) or 504 (the protected service's deadline).
    Error,
}

impl Verdict {
    /// The verdict on an answer `outcome` to a client of `kind` after `latency`, the
    /// client waiting up to `deadline`. Refusals and errors count as such however fast.
    pub(crate) fn of(
        outcome: Outcome,
        kind: ClientKind,
        latency: Duration,
        deadline: Duration,
    ) -> Verdict {
        match outcome {
            Outcome::Ok | Outcome::NotFound if latency <= deadline => Verdict::Good,
            Outcome::Ok | Outcome::NotFound => Verdict::Late,
            Outcome::Limited if kind == ClientKind::Abusive => Verdict::Intended,
            Outcome::Limited | Outcome::Shed | Outcome::Rejected => Verdict::Refused,
            Outcome::Failed | Outcome::TimedOut => Verdict::Error,
        }
    }
}

/// One finished request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Record {
    /// Sent (its scheduled arrival), scenario time.
    pub(crate) at: Duration,
    /// Answered, scenario time.
    pub(crate) done: Duration,
    /// Index into the scenario's clients.
    pub(crate) client: u16,
    pub(crate) outcome: Outcome,
}

impl Record {
    /// What the client waited: from sending to the answer.
    pub(crate) fn latency(&self) -> Duration {
        self.done.saturating_sub(self.at)
    }

    pub(crate) fn verdict(&self, scenario: &Scenario) -> Verdict {
        let kind = scenario.kind_of(self.client);
        Verdict::of(
            self.outcome,
            kind,
            self.latency(),
            scenario.model.client_deadline(kind),
        )
    }
}

/// Collects the records of one run, from any thread.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    records: Mutex<Vec<Record>>,
}

impl Recorder {
    pub(crate) fn record(&self, record: Record) {
        self.lock().push(record);
    }

    /// The records so far, in completion order.
    pub(crate) fn records(&self) -> Vec<Record> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts and latency percentiles of a set of requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Totals {
    /// Answered plus unanswered.
    pub(crate) offered: u64,
    // By verdict, and the requests without an answer: these add up to `offered`.
    pub(crate) good: u64,
    pub(crate) late: u64,
    pub(crate) intended: u64,
    pub(crate) refused: u64,
    pub(crate) errors: u64,
    /// No answer by the end of the run (real time only: the unprotected backlog past the
    /// drain limit), or yet (a live line).
    pub(crate) unanswered: u64,
    // By status, over the answered requests.
    pub(crate) ok: u64,
    pub(crate) not_found: u64,
    pub(crate) limited: u64,
    pub(crate) shed: u64,
    pub(crate) rejected: u64,
    pub(crate) failed: u64,
    pub(crate) timed_out: u64,
    /// Over every answer, refusals included: what clients wait for.
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// Over the 200/404 answers, late ones included.
    pub(crate) p99_answered: Duration,
}

impl Totals {
    /// The totals of `records`, all of them answered.
    pub(crate) fn of<'a>(
        scenario: &Scenario,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Totals {
        let mut t = Totals::default();
        let mut all = Vec::new();
        let mut answered = Vec::new();
        for r in records {
            t.offered += 1;
            match r.verdict(scenario) {
                Verdict::Good => t.good += 1,
                Verdict::Late => t.late += 1,
                Verdict::Intended => t.intended += 1,
                Verdict::Refused => t.refused += 1,
                Verdict::Error => t.errors += 1,
            }
            match r.outcome {
                Outcome::Ok => t.ok += 1,
                Outcome::NotFound => t.not_found += 1,
                Outcome::Limited => t.limited += 1,
                Outcome::Shed => t.shed += 1,
                Outcome::Rejected => t.rejected += 1,
                Outcome::Failed => t.failed += 1,
                Outcome::TimedOut => t.timed_out += 1,
            }
            all.push(r.latency());
            if matches!(r.outcome, Outcome::Ok | Outcome::NotFound) {
                answered.push(r.latency());
            }
        }
        t.p50 = percentile(&mut all, 0.50);
        t.p99 = percentile(&mut all, 0.99);
        t.p99_answered = percentile(&mut answered, 0.99);
        t
    }

    /// Adds `n` requests that were offered and never answered.
    pub(crate) fn with_unanswered(mut self, n: u64) -> Totals {
        self.offered += n;
        self.unanswered += n;
        self
    }

    /// Requests the service meant to answer: all but the intended refusals.
    pub(crate) fn wanted(&self) -> u64 {
        self.offered - self.intended
    }

    /// 429s to clients other than the scraper (a cost of protection, normally none).
    pub(crate) fn limited_others(&self) -> u64 {
        self.limited - self.intended
    }
}

/// Nearest-rank percentile; zero for no samples.
fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Requests offered per phase and client class, from the schedule: what the records of a
/// run are measured against (the ones missing from the records were never answered).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Schedule {
    /// `[phase][class index]`.
    per_phase: Vec<[u64; 3]>,
    /// Requests sent per chart bin (by send time).
    per_bin: Vec<u64>,
}

impl Schedule {
    pub(crate) fn new(scenario: &Scenario, arrivals: &[Request]) -> Schedule {
        let mut per_phase = vec![[0; 3]; scenario.phases.len()];
        let bins = bin_count(scenario.duration());
        let mut per_bin = vec![0; bins];
        for r in arrivals {
            per_phase[scenario.phase_index(r.at)][scenario.kind_of(r.client).index()] += 1;
            per_bin[bin_of(r.at).min(bins - 1)] += 1;
        }
        Schedule { per_phase, per_bin }
    }

    /// Requests sent in `phase`.
    pub(crate) fn in_phase(&self, phase: usize) -> u64 {
        self.per_phase[phase].iter().sum()
    }

    /// The requests of `phase`, overall and by class ([`ClientKind::ALL`] order):
    /// `records` (any run's, in any order), plus the phase's requests missing from them
    /// counted as unanswered.
    pub(crate) fn phase_totals(
        &self,
        scenario: &Scenario,
        records: &[Record],
        phase: usize,
    ) -> (Totals, [Totals; 3]) {
        let mine: Vec<&Record> = records
            .iter()
            .filter(|r| scenario.phase_index(r.at) == phase)
            .collect();
        let classes = ClientKind::ALL.map(|kind| {
            let of_kind = mine
                .iter()
                .copied()
                .filter(|r| scenario.kind_of(r.client) == kind);
            let t = Totals::of(scenario, of_kind);
            let missing = self.per_phase[phase][kind.index()].saturating_sub(t.offered);
            t.with_unanswered(missing)
        });
        let missing = self.in_phase(phase).saturating_sub(mine.len() as u64);
        (Totals::of(scenario, mine).with_unanswered(missing), classes)
    }
}

/// Width of the chart's time bins.
pub(crate) const BIN: Duration = Duration::from_millis(500);

fn bin_count(end: Duration) -> usize {
    (end.as_nanos().div_ceil(BIN.as_nanos()) as usize).max(1)
}

fn bin_of(t: Duration) -> usize {
    (t.as_nanos() / BIN.as_nanos()) as usize
}

/// The cache's figures, from `Cache::snapshot`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CacheFigures {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) hit_ratio: f64,
}

/// One reading of the shedder, taken by the CPU sampler of the protected run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ShedderSample {
    pub(crate) at: Duration,
    /// The CPU signal handed to the shedder, in millis (1000 = every modelled core busy).
    pub(crate) cpu: u32,
    /// At or over the shedder's threshold.
    pub(crate) overloaded: bool,
    pub(crate) in_flight: u64,
    /// What the shedder's window says the service sustains (max pass × min latency).
    pub(crate) max_flight: f64,
}

/// Everything reported about one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunSummary {
    pub(crate) name: &'static str,
    pub(crate) total: Totals,
    /// By client class, in [`ClientKind::ALL`] order.
    pub(crate) classes: [Totals; 3],
    /// By the phase the requests were sent in.
    pub(crate) phases: Vec<Totals>,
    /// By phase, then by class.
    pub(crate) phase_classes: Vec<[Totals; 3]>,
    /// By the time the requests were answered, in bins of [`BIN`] (unanswered ones are in
    /// no bin). As long as the run's last answer: the unprotected backlog outlasts the
    /// scenario.
    pub(crate) bins: Vec<Totals>,
    /// Requests sent per bin, by send time (the same for both runs).
    pub(crate) sent: Vec<u64>,
    pub(crate) cache: Option<CacheFigures>,
    pub(crate) db_queries: u64,
    /// Requests refused by the rate limiter, by client (only clients that were limited).
    pub(crate) limited_clients: BTreeMap<String, u64>,
    /// The shedder's readings, every CPU sample (protected run only).
    pub(crate) shedder: Vec<ShedderSample>,
}

impl RunSummary {
    pub(crate) fn new(
        name: &'static str,
        scenario: &Scenario,
        schedule: &Schedule,
        records: &[Record],
    ) -> RunSummary {
        let (phases, phase_classes): (Vec<Totals>, Vec<[Totals; 3]>) = (0..scenario.phases.len())
            .map(|i| schedule.phase_totals(scenario, records, i))
            .unzip();
        let mut total = Totals::of(scenario, records);
        let mut classes = ClientKind::ALL.map(|kind| {
            Totals::of(
                scenario,
                records
                    .iter()
                    .filter(|r| scenario.kind_of(r.client) == kind),
            )
        });
        for (k, class) in classes.iter_mut().enumerate() {
            let missing: u64 = phase_classes.iter().map(|p| p[k].unanswered).sum();
            *class = std::mem::take(class).with_unanswered(missing);
        }
        let missing: u64 = phases.iter().map(|p| p.unanswered).sum();
        total = total.with_unanswered(missing);

        let last = records.iter().map(|r| r.done).max().unwrap_or_default();
        let bins = bin_count(last.max(scenario.duration()));
        let mut by_bin: Vec<Vec<Record>> = vec![Vec::new(); bins];
        for r in records {
            by_bin[bin_of(r.done).min(bins - 1)].push(*r);
        }
        let mut limited_clients = BTreeMap::new();
        for r in records.iter().filter(|r| r.outcome == Outcome::Limited) {
            let name = &scenario.clients[usize::from(r.client)].name;
            *limited_clients.entry(name.clone()).or_insert(0) += 1;
        }
        RunSummary {
            name,
            total,
            classes,
            phases,
            phase_classes,
            bins: by_bin.iter().map(|b| Totals::of(scenario, b)).collect(),
            sent: schedule.per_bin.clone(),
            cache: None,
            db_queries: 0,
            limited_clients,
            shedder: Vec::new(),
        }
    }
}
