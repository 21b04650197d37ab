//! What happened to each request, and the totals, per-phase and per-bin figures the report
//! and the chart are made of.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::scenario::Scenario;

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

/// One finished request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Record {
    /// Arrival, scenario time.
    pub(crate) at: Duration,
    /// Index into the scenario's clients.
    pub(crate) client: u16,
    pub(crate) latency: Duration,
    pub(crate) outcome: Outcome,
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
    pub(crate) offered: u64,
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
    /// Over the served answers (ok and not found) only.
    pub(crate) p99_served: Duration,
}

impl Totals {
    pub(crate) fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Totals {
        let mut t = Totals::default();
        let mut all = Vec::new();
        let mut served = Vec::new();
        for r in records {
            t.offered += 1;
            match r.outcome {
                Outcome::Ok => t.ok += 1,
                Outcome::NotFound => t.not_found += 1,
                Outcome::Limited => t.limited += 1,
                Outcome::Shed => t.shed += 1,
                Outcome::Rejected => t.rejected += 1,
                Outcome::Failed => t.failed += 1,
                Outcome::TimedOut => t.timed_out += 1,
            }
            all.push(r.latency);
            if matches!(r.outcome, Outcome::Ok | Outcome::NotFound) {
                served.push(r.latency);
            }
        }
        t.p50 = percentile(&mut all, 0.50);
        t.p99 = percentile(&mut all, 0.99);
        t.p99_served = percentile(&mut served, 0.99);
        t
    }

    /// Past the limiter and the shedder.
    pub(crate) fn admitted(&self) -> u64 {
        self.offered - self.limited - self.shed
    }

    pub(crate) fn served(&self) -> u64 {
        self.ok + self.not_found
    }

    /// 5xx answers that are not deliberate refusals: failed queries and missed deadlines.
    pub(crate) fn errors(&self) -> u64 {
        self.failed + self.timed_out
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

/// The cache's figures, from `Cache::snapshot`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CacheFigures {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) hit_ratio: f64,
}

/// Everything reported about one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunSummary {
    pub(crate) name: &'static str,
    pub(crate) total: Totals,
    /// By the phase the requests arrived in.
    pub(crate) phases: Vec<Totals>,
    /// By arrival time, in bins of [`BIN`].
    pub(crate) bins: Vec<Totals>,
    pub(crate) cache: Option<CacheFigures>,
    pub(crate) db_queries: u64,
    /// Requests refused by the rate limiter, by client (only clients that were limited).
    pub(crate) limited_clients: BTreeMap<String, u64>,
    /// Requests still running when the run was stopped (real time only).
    pub(crate) unfinished: u64,
}

/// Width of the chart's time bins.
pub(crate) const BIN: Duration = Duration::from_millis(500);

impl RunSummary {
    pub(crate) fn new(name: &'static str, scenario: &Scenario, records: &[Record]) -> RunSummary {
        let phases = (0..scenario.phases.len())
            .map(|i| Totals::of(records.iter().filter(|r| scenario.phase_index(r.at) == i)))
            .collect();
        let n_bins = scenario.duration().as_nanos().div_ceil(BIN.as_nanos()) as usize;
        let mut by_bin: Vec<Vec<Record>> = vec![Vec::new(); n_bins];
        for r in records {
            let i = (r.at.as_nanos() / BIN.as_nanos()) as usize;
            by_bin[i.min(n_bins - 1)].push(*r);
        }
        let mut limited_clients = BTreeMap::new();
        for r in records.iter().filter(|r| r.outcome == Outcome::Limited) {
            let name = &scenario.clients[usize::from(r.client)].name;
            *limited_clients.entry(name.clone()).or_insert(0) += 1;
        }
        RunSummary {
            name,
            total: Totals::of(records),
            limited_clients,
            phases,
            bins: by_bin.iter().map(Totals::of).collect(),
            cache: None,
            db_queries: 0,
            unfinished: 0,
        }
    }
}
