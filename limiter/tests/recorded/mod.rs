//! A `DebuggingRecorder` per test, and the counters it saw.
//!
//! Limiters register their handles when they are built, with the recorder installed at
//! that moment: a test builds its limiters inside [`Recorded::build`]
//! (`metrics::with_local_recorder`), so each test has a recorder of its own (no global
//! recorder shared by the tests running in parallel) and the handles keep recording into
//! it after the closure returns (checked by `tests/metrics.rs`).
//!
//! The debugging recorder's snapshot hands out each counter's increase since the last
//! snapshot (it swaps them to zero), so the totals are kept here.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// A series: the metric's name and its labels, sorted by label name.
pub(crate) type Series = (String, Vec<(String, String)>);

pub(crate) struct Recorded {
    recorder: DebuggingRecorder,
    snapshotter: Snapshotter,
    totals: Mutex<BTreeMap<Series, u64>>,
}

impl Recorded {
    pub(crate) fn new() -> Recorded {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        Recorded {
            recorder,
            snapshotter,
            totals: Mutex::new(BTreeMap::new()),
        }
    }

    /// Runs `build` with this recorder installed on the thread: the limiters built in it
    /// record here.
    pub(crate) fn build<T>(&self, build: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, build)
    }

    /// Every counter registered so far, with its total.
    pub(crate) fn counters(&self) -> BTreeMap<Series, u64> {
        let mut totals = self.totals.lock().unwrap();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let DebugValue::Counter(delta) = value else {
                panic!("only counters expected: {key:?} {value:?}");
            };
            let key = key.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            *totals.entry((key.name().to_owned(), labels)).or_default() += delta;
        }
        totals.clone()
    }

    /// The total of the one series of `metric` with exactly these labels (in any order);
    /// panics if it was never registered.
    #[track_caller]
    pub(crate) fn get(&self, metric: &str, labels: &[(&str, &str)]) -> u64 {
        let mut wanted: Vec<(String, String)> = labels
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        wanted.sort();
        let counters = self.counters();
        *counters
            .get(&(metric.to_owned(), wanted.clone()))
            .unwrap_or_else(|| panic!("no series {metric}{wanted:?}; registered: {counters:#?}"))
    }

    /// The sum of every series of `metric` whose labels include these.
    pub(crate) fn sum(&self, metric: &str, labels: &[(&str, &str)]) -> u64 {
        self.matching(metric, labels).values().sum()
    }

    /// The series of `metric` whose labels include these, with their totals.
    pub(crate) fn matching(
        &self,
        metric: &str,
        labels: &[(&str, &str)],
    ) -> BTreeMap<Vec<(String, String)>, u64> {
        self.counters()
            .into_iter()
            .filter(|((name, have), _)| {
                name == metric
                    && labels
                        .iter()
                        .all(|&(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|((_, labels), total)| (labels, total))
            .collect()
    }

    /// `keel_limiter_decisions_total` of limiter `name` by `backend` and `outcome`.
    #[track_caller]
    pub(crate) fn decisions(&self, name: &str, backend: &str, outcome: &str) -> u64 {
        let kind = self.kind_of(name);
        self.get(
            "keel_limiter_decisions_total",
            &[
                ("name", name),
                ("kind", &kind),
                ("backend", backend),
                ("outcome", outcome),
            ],
        )
    }

    /// The `kind` label of limiter `name`'s series (one kind per name in these tests).
    #[track_caller]
    fn kind_of(&self, name: &str) -> String {
        let kinds: std::collections::BTreeSet<String> = self
            .matching("keel_limiter_decisions_total", &[("name", name)])
            .keys()
            .flat_map(|labels| {
                labels
                    .iter()
                    .filter(|(k, _)| k == "kind")
                    .map(|(_, v)| v.clone())
            })
            .collect();
        assert_eq!(kinds.len(), 1, "one kind for {name}: {kinds:?}");
        kinds.into_iter().next().unwrap()
    }
}
