//! Reading a `metrics_util` debugging recorder in tests (`tests/metrics.rs` includes it).
//!
//! Every test builds its primitive inside `metrics::with_local_recorder` with a recorder of
//! its own: the handles registered then keep recording into that recorder afterwards (the
//! first test of each file checks it), so tests running in parallel never share a series.
//!
//! A snapshot of the debugging recorder takes what it reads: counters and gauges are reset to
//! 0 and histograms emptied. [`Recorded`] adds the counters and histogram samples up across
//! its reads; a gauge reads as what it moved by since the previous read for the gauges keel
//! moves by increments (`keel_limit_in_use`, `keel_cache_entries`), and as its value for the
//! gauges keel sets (`keel_pool_idle`, `keel_pool_in_use`, set on every pool operation).

use std::collections::HashMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// A series: metric name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

/// A debugging recorder and what was read from it so far.
pub(crate) struct Recorded {
    recorder: DebuggingRecorder,
    snapshotter: Snapshotter,
    counters: HashMap<Series, u64>,
    histograms: HashMap<Series, Vec<f64>>,
    gauges: HashMap<Series, f64>,
    /// Every series registered, read or not.
    names: Vec<String>,
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (name.to_string(), labels)
}

impl Recorded {
    pub(crate) fn new() -> Self {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        Recorded {
            recorder,
            snapshotter,
            counters: HashMap::new(),
            histograms: HashMap::new(),
            gauges: HashMap::new(),
            names: Vec::new(),
        }
    }

    /// Runs `build` with this recorder as the thread's recorder: the handles a primitive
    /// registers in it record here for the primitive's life.
    pub(crate) fn build<T>(&self, build: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, build)
    }

    /// Takes a snapshot: adds its counters and histogram samples to the totals, keeps its
    /// gauges (see the module docs for what they mean).
    pub(crate) fn read(&mut self) -> &mut Self {
        self.gauges.clear();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            let series = series(key.name(), &labels);
            if !self.names.contains(&series.0) {
                self.names.push(series.0.clone());
            }
            match value {
                DebugValue::Counter(n) => *self.counters.entry(series).or_default() += n,
                DebugValue::Gauge(v) => {
                    self.gauges.insert(series, v.0);
                }
                DebugValue::Histogram(samples) => self
                    .histograms
                    .entry(series)
                    .or_default()
                    .extend(samples.into_iter().map(|v| v.0)),
            }
        }
        self
    }

    /// A counter's total over every read so far (0 if never registered).
    pub(crate) fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .get(&series(name, labels))
            .copied()
            .unwrap_or(0)
    }

    /// A gauge in the last read (`None` if not registered).
    pub(crate) fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.gauges.get(&series(name, labels)).copied()
    }

    /// A histogram's samples over every read so far.
    pub(crate) fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.histograms
            .get(&series(name, labels))
            .cloned()
            .unwrap_or_default()
    }

    /// The metric names registered in this recorder, as of the last read.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }
}
