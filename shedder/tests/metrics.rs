//! The `metrics` feature: every series METRICS.md lists for the shedder, with its exact
//! name and labels, moving exactly as the shedder's decisions.
//!
//! Each test builds its shedders under its own `DebuggingRecorder` with
//! `metrics::with_local_recorder`: the handles are registered at build time, so they keep
//! recording into that recorder afterwards, on any thread (the first test checks this), and
//! tests running in parallel never share series.
//!
//! The request counters are batched: decisions are counted in the shedder's stripes and
//! published at least once a second (keel-timex's periodic thread), at every snapshot and
//! `publish_metrics()`, and when the shedder is dropped. So the tests call
//! `publish_metrics()` before each read of them, and the last tests check the other three
//! ways they are published.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_shedder::cpu::{CpuSource, ManualCpu, NoCpu};
use keel_shedder::{Guard, STATS_PERIOD, Shedder};
use keel_timex::{Clock, ManualClock};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use proptest::prelude::*;

type Labels = Vec<(String, String)>;
type Key = (String, Labels);

/// What a `DebuggingRecorder` received. Its snapshots hand out what counters gained since
/// the previous snapshot, reset gauges to 0 and drain histograms, so this adds the counters
/// and histogram samples up and keeps the gauges of the latest snapshot: read a gauge only
/// after something set it.
struct Recorded {
    snapshotter: Snapshotter,
    series: BTreeSet<(MetricKind, Key)>,
    counters: BTreeMap<Key, u64>,
    gauges: BTreeMap<Key, f64>,
    histograms: BTreeMap<Key, Vec<f64>>,
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let mut labels: Labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

impl Recorded {
    fn refresh(&mut self) {
        for (composite, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let (kind, k) = composite.into_parts();
            let mut labels: Labels = k
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            let k = (k.name().to_owned(), labels);
            self.series.insert((kind, k.clone()));
            match value {
                DebugValue::Counter(n) => *self.counters.entry(k).or_default() += n,
                DebugValue::Gauge(g) => {
                    self.gauges.insert(k, g.into_inner());
                }
                DebugValue::Histogram(h) => self
                    .histograms
                    .entry(k)
                    .or_default()
                    .extend(h.into_iter().map(|v| v.into_inner())),
            }
        }
    }

    /// Every series registered so far.
    fn series(&mut self) -> BTreeSet<(MetricKind, Key)> {
        self.refresh();
        self.series.clone()
    }

    fn counter(&mut self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.refresh();
        let k = key(name, labels);
        *self
            .counters
            .get(&k)
            .unwrap_or_else(|| panic!("no counter {k:?}"))
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.refresh();
        let k = key(name, labels);
        self.histograms.get(&k).cloned().unwrap_or_default()
    }

    fn gauge(&mut self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.refresh();
        let k = key(name, labels);
        *self
            .gauges
            .get(&k)
            .unwrap_or_else(|| panic!("no gauge {k:?}"))
    }

    /// `keel_shedder_requests_total` of shedder `name`, by outcome.
    fn requests(&mut self, name: &str) -> Requests {
        let mut c = |outcome| {
            self.counter(
                "keel_shedder_requests_total",
                &[("name", name), ("outcome", outcome)],
            )
        };
        Requests {
            admitted: c("admitted"),
            dropped: c("dropped"),
            shadow_dropped: c("shadow_dropped"),
        }
    }

    fn in_flight(&mut self, name: &str) -> f64 {
        self.gauge("keel_shedder_in_flight", &[("name", name)])
    }

    fn cpu(&mut self, name: &str) -> f64 {
        self.gauge("keel_shedder_cpu_usage", &[("name", name)])
    }

    fn response_times(&mut self, name: &str) -> Vec<f64> {
        self.histogram("keel_shedder_response_time_seconds", &[("name", name)])
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Requests {
    admitted: u64,
    dropped: u64,
    shadow_dropped: u64,
}

/// Runs `build` with a fresh debugging recorder as the local recorder.
fn recorded<T>(build: impl FnOnce() -> T) -> (T, Recorded) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let built = metrics::with_local_recorder(&recorder, build);
    let recorded = Recorded {
        snapshotter,
        series: BTreeSet::new(),
        counters: BTreeMap::new(),
        gauges: BTreeMap::new(),
        histograms: BTreeMap::new(),
    };
    (built, recorded)
}

const BUCKET: Duration = Duration::from_millis(100);

/// 1 s in 10 buckets, go-zero's threshold (900), every request timed.
fn exact(name: &str, cpu: &ManualCpu, clock: &ManualClock) -> Shedder<ManualClock> {
    Shedder::builder()
        .name(name)
        .window(Duration::from_secs(1))
        .buckets(10)
        .exact_statistics()
        .cpu_source(cpu.clone())
        .build_with_clock(clock.clone())
        .unwrap()
}

/// Teaches the window a capacity: `per_bucket` passes of `rt` in every bucket of one window,
/// then moves into a fresh bucket. Max flight = per_bucket × rt_ms × 0.01. Returns the
/// passes.
fn learn(s: &Shedder<ManualClock>, clock: &ManualClock, per_bucket: usize, rt: Duration) -> u64 {
    for _ in 0..10 {
        let guards: Vec<_> = (0..per_bucket).map(|_| s.allow().unwrap()).collect();
        clock.advance(rt);
        guards.into_iter().for_each(|g| g.pass());
        clock.advance(BUCKET - rt);
    }
    10 * per_bucket as u64
}

#[test]
fn handles_registered_under_a_local_recorder_keep_recording_into_it() {
    let (shedder, mut rec) = recorded(|| {
        Shedder::builder()
            .name("local")
            .cpu_source(ManualCpu::new(0))
            .build()
            .unwrap()
    });
    shedder.allow().unwrap().pass();
    std::thread::scope(|s| {
        s.spawn(|| shedder.allow().unwrap().pass());
    });
    shedder.publish_metrics();
    assert_eq!(rec.requests("local").admitted, 2);
    let silent = Shedder::builder()
        .name("local")
        .cpu_source(ManualCpu::new(0))
        .build()
        .unwrap();
    silent.allow().unwrap().pass();
    silent.publish_metrics();
    drop(silent); // publishes too, into the no-op recorder it was built with
    assert_eq!(rec.requests("local").admitted, 2);
}

#[test]
fn series_names_labels_and_kinds_are_exact() {
    let (shedder, mut rec) = recorded(|| {
        Shedder::builder()
            .name("api")
            .cpu_source(ManualCpu::new(0))
            .build()
            .unwrap()
    });
    let requests = |outcome| {
        (
            MetricKind::Counter,
            key(
                "keel_shedder_requests_total",
                &[("name", "api"), ("outcome", outcome)],
            ),
        )
    };
    let expected: BTreeSet<_> = [
        requests("admitted"),
        requests("dropped"),
        requests("shadow_dropped"),
        (
            MetricKind::Gauge,
            key("keel_shedder_in_flight", &[("name", "api")]),
        ),
        (
            MetricKind::Gauge,
            key("keel_shedder_cpu_usage", &[("name", "api")]),
        ),
        (
            MetricKind::Histogram,
            key("keel_shedder_response_time_seconds", &[("name", "api")]),
        ),
    ]
    .into_iter()
    .collect();
    // Registered at build time, before any request.
    assert_eq!(rec.series(), expected);
    shedder.publish_metrics();
    assert_eq!(rec.requests("api"), Requests::default());
    assert!(rec.response_times("api").is_empty());
}

#[test]
fn the_default_name_is_the_shedders_own() {
    let ((a, b), mut rec) = recorded(|| {
        (
            Shedder::builder()
                .cpu_source(ManualCpu::new(0))
                .build()
                .unwrap(),
            Shedder::builder()
                .cpu_source(ManualCpu::new(0))
                .build()
                .unwrap(),
        )
    });
    assert_ne!(a.name(), b.name());
    for shedder in [&a, &b] {
        assert!(shedder.name().starts_with("shedder-"), "{}", shedder.name());
        shedder.allow().unwrap().pass();
        shedder.publish_metrics();
        assert_eq!(rec.requests(shedder.name()).admitted, 1);
    }
    let labelled: BTreeSet<String> = rec
        .series()
        .into_iter()
        .flat_map(|(_, (_, labels))| labels)
        .filter(|(k, _)| k == "name")
        .map(|(_, v)| v)
        .collect();
    let names: BTreeSet<String> = [a.name().to_owned(), b.name().to_owned()].into();
    assert_eq!(labelled, names);
}

#[test]
fn two_shedders_with_distinct_names_have_distinct_series() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let ((a, b), mut rec) = recorded(|| (exact("a", &cpu, &clock), exact("b", &cpu, &clock)));
    let g = a.allow().unwrap();
    clock.advance(Duration::from_millis(3));
    g.pass();
    b.allow().unwrap().fail();
    b.allow().unwrap().fail();
    assert_eq!(rec.response_times("a"), vec![0.003]);
    assert!(rec.response_times("b").is_empty());
    a.publish_metrics();
    b.publish_metrics();
    assert_eq!(
        rec.requests("a"),
        Requests {
            admitted: 1,
            ..Requests::default()
        }
    );
    assert_eq!(
        rec.requests("b"),
        Requests {
            admitted: 2,
            ..Requests::default()
        }
    );
}

#[test]
fn every_outcome_is_counted_once() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let (s, mut rec) = recorded(|| exact("api", &cpu, &clock));
    let mut expected = Requests {
        admitted: learn(&s, &clock, 100, Duration::from_millis(20)), // max flight 20
        ..Requests::default()
    };
    // 40 in flight; at the threshold the limit is 20: refused.
    let open: Vec<_> = (0..40).map(|_| s.allow().unwrap()).collect();
    expected.admitted += 40;
    // The average must exceed the limit too: cycle requests with 40 held open.
    let mut open = open;
    for _ in 0..100 {
        open.pop().unwrap().fail();
        open.push(s.allow().unwrap());
        expected.admitted += 1;
    }
    cpu.set(900);
    for _ in 0..3 {
        assert!(s.allow().is_err());
        expected.dropped += 1;
    }
    assert!(s.allow_owned().is_err());
    expected.dropped += 1;
    // The refusing decisions read the count (40); the last completion had left 39.
    assert_eq!(rec.in_flight("api"), 40.0);
    s.publish_metrics();
    assert_eq!(rec.requests("api"), expected);
    assert_eq!(s.snapshot().dropped, expected.dropped);
    assert_eq!(s.snapshot().admitted, expected.admitted);
    drop(open);
    cpu.set(0);
    clock.advance(Duration::from_secs(2)); // past the cool-off
    s.allow().unwrap().pass();
    expected.admitted += 1;
    s.publish_metrics();
    assert_eq!(rec.requests("api"), expected);
}

#[test]
fn shadow_mode_counts_what_it_would_have_dropped_instead() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let (s, mut rec) = recorded(|| {
        Shedder::builder()
            .name("dry")
            .window(Duration::from_secs(1))
            .buckets(10)
            .exact_statistics()
            .shadow(true)
            .cpu_source(cpu.clone())
            .build_with_clock(clock.clone())
            .unwrap()
    });
    let learned = learn(&s, &clock, 100, Duration::from_millis(20));
    let mut open: Vec<_> = (0..40).map(|_| s.allow().unwrap()).collect();
    for _ in 0..100 {
        open.pop().unwrap().fail();
        open.push(s.allow().unwrap());
    }
    cpu.set(900);
    for _ in 0..5 {
        open.push(s.allow().expect("shadow mode refuses nothing"));
    }
    // The snapshot publishes the counters too.
    assert_eq!(s.snapshot().shadow_dropped, 5);
    assert_eq!(
        rec.requests("dry"),
        Requests {
            admitted: learned + 140,
            dropped: 0,
            shadow_dropped: 5,
        }
    );
}

#[test]
fn a_disabled_shedder_records_nothing() {
    let clock = ManualClock::new();
    let (s, mut rec) = recorded(|| {
        Shedder::builder()
            .name("off")
            .enabled(false)
            .cpu_source(ManualCpu::new(1000))
            .exact_statistics()
            .build_with_clock(clock.clone())
            .unwrap()
    });
    let g = s.allow().unwrap();
    clock.advance(Duration::from_millis(5));
    g.pass();
    s.allow().unwrap().fail();
    s.publish_metrics();
    assert_eq!(rec.requests("off"), Requests::default());
    assert!(rec.response_times("off").is_empty());
    assert_eq!(Shedder::noop().snapshot().in_flight, 0);
}

#[test]
fn response_times_are_the_timed_passes_in_seconds() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let (s, mut rec) = recorded(|| exact("api", &cpu, &clock));
    let a = s.allow().unwrap();
    let b = s.allow().unwrap();
    let c = s.allow().unwrap();
    let d = s.allow().unwrap();
    clock.advance(Duration::from_millis(20));
    a.pass();
    clock.advance(Duration::from_micros(1500));
    b.pass();
    c.fail(); // a failure is not a response time the shedder learns from
    drop(d); // nor is a cancellation
    let mut times = rec.response_times("api");
    times.sort_by(f64::total_cmp);
    assert_eq!(times, vec![0.02, 0.0215]);

    // Sampled: one request in 4 is timed; only those are recorded.
    let (sampled, mut rec) = recorded(|| {
        Shedder::builder()
            .name("sampled")
            .latency_sample_period(4)
            .cpu_source(cpu.clone())
            .build_with_clock(clock.clone())
            .unwrap()
    });
    let mut timed = 0;
    for _ in 0..400 {
        let g = sampled.allow().unwrap();
        timed += usize::from(g.is_timed());
        clock.advance(Duration::from_millis(1));
        g.pass();
    }
    assert!(timed > 0 && timed < 400, "{timed}");
    assert_eq!(rec.response_times("sampled"), vec![0.001; timed]);
}

/// The histogram takes the timed passes that step the in-flight average: at most one per
/// `in_flight_average_interval` (1 ms by default), so its cost per request vanishes at high
/// rates.
#[test]
fn the_histogram_takes_at_most_one_pass_per_average_interval() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let (s, mut rec) = recorded(|| {
        Shedder::builder()
            .name("rated")
            .latency_sample_period(1)
            .cpu_source(cpu.clone())
            .build_with_clock(clock.clone())
            .unwrap()
    });
    for round in 1..=3u32 {
        let guards: Vec<_> = (0..10).map(|_| s.allow().unwrap()).collect();
        clock.advance(Duration::from_micros(300));
        for g in guards {
            assert!(g.is_timed());
            g.pass();
        }
        assert_eq!(
            rec.response_times("rated"),
            vec![0.0003; round as usize],
            "round {round}: one sample of ten passes in the same millisecond"
        );
        clock.advance(Duration::from_millis(1));
    }
    s.publish_metrics();
    assert_eq!(rec.requests("rated").admitted, 30);
}

#[test]
fn the_in_flight_gauge_is_set_where_the_shedder_reads_the_count() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let (s, mut rec) = recorded(|| exact("api", &cpu, &clock));
    // Every completion of a timed request steps the in-flight average (interval 0 here),
    // reading the count: the gauge follows it.
    let mut open: Vec<Guard<'_, ManualClock>> = (0..5).map(|_| s.allow().unwrap()).collect();
    let mut left = 5;
    while let Some(g) = open.pop() {
        match left % 3 {
            0 => g.pass(),
            1 => g.fail(),
            _ => drop(g),
        }
        left -= 1;
        assert_eq!(rec.in_flight("api"), f64::from(left));
    }
    // A snapshot reads it too.
    let held: Vec<_> = (0..3).map(|_| s.allow().unwrap()).collect();
    assert_eq!(s.snapshot().in_flight, 3);
    assert_eq!(rec.in_flight("api"), 3.0);
    drop(held);
    assert_eq!(rec.in_flight("api"), 0.0);

    // With go-zero's defaults a step is taken at most once per millisecond; a decision
    // under CPU pressure that finds the average over the limit reads the count as well.
    let (s, mut rec) = recorded(|| {
        Shedder::builder()
            .name("defaults")
            .window(Duration::from_secs(1))
            .buckets(10)
            .cpu_source(cpu.clone())
            .build_with_clock(clock.clone())
            .unwrap()
    });
    let held: Vec<_> = (0..7).map(|_| s.allow().unwrap()).collect();
    // No sample yet: nothing read the count since.
    assert_eq!(rec.in_flight("defaults"), 0.0);
    // Full CPU: limit max(1, 1 × 1000 ms × 0.01) × 0.1 = 1; the average is 0, so the count
    // is not read either.
    cpu.set(1000);
    let g = s.allow().unwrap();
    assert_eq!(rec.in_flight("defaults"), 0.0);
    drop(g);
    drop(held);
    cpu.set(0);

    // The statistics period's roll-over reads the totals: the count before the request
    // that rolled it.
    let held: Vec<_> = (0..2).map(|_| s.allow().unwrap()).collect();
    let _ = rec.in_flight("defaults"); // reset the debugging recorder's gauge
    clock.advance(STATS_PERIOD);
    let g = s.allow().unwrap();
    assert_eq!(rec.in_flight("defaults"), 2.0);
    drop((g, held));
}

/// A CPU source outside the documented range, to check the gauge's clamp.
struct Over;

impl CpuSource for Over {
    fn usage(&self) -> Option<u32> {
        Some(1500)
    }
}

#[test]
fn the_cpu_gauge_is_the_reading_decisions_use_as_a_fraction() {
    let (cpu, clock) = (ManualCpu::new(250), ManualClock::new());
    let (s, mut rec) = recorded(|| exact("api", &cpu, &clock));
    s.allow().unwrap().pass();
    assert_eq!(rec.cpu("api"), 0.25);
    cpu.set(999);
    s.allow().unwrap().pass();
    assert_eq!(rec.cpu("api"), 0.999);
    cpu.set(1000);
    s.allow().unwrap().pass();
    assert_eq!(rec.cpu("api"), 1.0);
    cpu.set(0);
    s.allow().unwrap().pass();
    assert_eq!(rec.cpu("api"), 0.0);

    let (over, mut rec) = recorded(|| {
        Shedder::builder()
            .name("over")
            .exact_statistics() // every admission timed: each one passes the reading on
            .cpu_source(Over)
            .build()
            .unwrap()
    });
    over.allow().unwrap().pass();
    assert_eq!(rec.cpu("over"), 1.0);

    // Without a signal the gauge is never set: only the registration shows.
    let (none, mut rec) = recorded(|| {
        Shedder::builder()
            .name("none")
            .exact_statistics()
            .cpu_source(NoCpu)
            .build()
            .unwrap()
    });
    none.allow().unwrap().pass();
    assert_eq!(rec.cpu("none"), 0.0);
}

// # Publication of the batched request counters

/// Dropping the shedder's last handle publishes what it counted: read right after the drop,
/// with no other call, the counters hold every decision. (The periodic thread may have
/// published part of them already; it holds only the publisher, so the drop, and its
/// final publication, happen on this thread.)
#[test]
fn counts_are_published_when_the_shedder_is_dropped() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let (s, mut rec) = recorded(|| exact("gone", &cpu, &clock));
    let mut expected = Requests {
        admitted: learn(&s, &clock, 100, Duration::from_millis(20)),
        ..Requests::default()
    };
    let mut open: Vec<_> = (0..40).map(|_| s.allow_owned().unwrap()).collect();
    expected.admitted += 40;
    for _ in 0..100 {
        open.pop().unwrap().fail();
        open.push(s.allow_owned().unwrap());
        expected.admitted += 1;
    }
    cpu.set(900);
    for _ in 0..3 {
        assert!(s.allow().is_err());
        expected.dropped += 1;
    }
    // An owned guard holds a handle too: the state goes with the last of them.
    drop(s);
    let last = open.pop().unwrap();
    drop(open);
    last.pass();
    assert_eq!(rec.requests("gone"), expected);
}

/// With no snapshot and no `publish_metrics`, keel-timex's periodic thread publishes the
/// counters (at least once a second): polled until they hold every decision, with a
/// deadline far beyond a second for a busy machine.
#[test]
fn the_periodic_thread_publishes_without_a_call() {
    const N: u64 = 500;
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let (s, mut rec) = recorded(|| exact("periodic", &cpu, &clock));
    for i in 0..N {
        match i % 3 {
            0 => s.allow().unwrap().pass(),
            1 => s.allow().unwrap().fail(),
            _ => drop(s.allow_owned().unwrap()),
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = rec.requests("periodic");
        assert!(got.admitted <= N, "{got:?}");
        if got.admitted == N {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not published within 60 s: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        rec.requests("periodic"),
        Requests {
            admitted: N,
            ..Requests::default()
        }
    );
    drop(s);
}

/// Two threads deciding on two shedders at CPU 1000 (one refusing, one in shadow mode)
/// while a third publishes in a loop, and the periodic thread too: every value the
/// recorder shows is at most what was decided and never goes down, and after the deciders
/// are done and a last publication the counters equal the decisions exactly.
#[test]
fn concurrent_publications_never_go_down_and_end_exact() {
    const PER_THREAD: u64 = 20_000;
    const TOTAL: u64 = 2 * PER_THREAD;
    let clock = ManualClock::new();
    let cpu = ManualCpu::new(1000);
    let build = |name: &str, shadow: bool| {
        // The clock stands still: no bucket ever ends, so max flight stays 10 and the
        // limit at CPU 1000 is 1. Every request is timed and steps the in-flight average.
        Shedder::builder()
            .name(name)
            .window(Duration::from_secs(1))
            .buckets(10)
            .exact_statistics()
            .shadow(shadow)
            .cpu_source(cpu.clone())
            .build_with_clock(clock.clone())
            .unwrap()
    };
    let ((enforcing, dry), mut rec) = recorded(|| (build("busy", false), build("busy-dry", true)));
    let barrier = std::sync::Barrier::new(3);
    let done = AtomicU64::new(0);
    let admitted = AtomicU64::new(0);
    let mut publications = 0u64;
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                barrier.wait();
                // Up to three held open on each shedder, the oldest failed when a fourth
                // is admitted: once those completions have stepped the average over 1,
                // every decision is over the limit.
                let (mut held, mut held_dry) = (Vec::new(), Vec::new());
                let mut ok = 0;
                for _ in 0..PER_THREAD {
                    if let Ok(g) = enforcing.allow() {
                        ok += 1;
                        held.push(g);
                        if held.len() > 3 {
                            held.remove(0).fail();
                        }
                    }
                    held_dry.push(dry.allow().expect("shadow mode refuses nothing"));
                    if held_dry.len() > 3 {
                        held_dry.remove(0).fail();
                    }
                }
                admitted.fetch_add(ok, Ordering::Relaxed);
                drop((held, held_dry));
                done.fetch_add(1, Ordering::Release);
            });
        }
        barrier.wait();
        let mut last = (Requests::default(), Requests::default());
        loop {
            // Read before publishing: the last round sees every decision.
            let finished = done.load(Ordering::Acquire) == 2;
            enforcing.publish_metrics();
            dry.publish_metrics();
            publications += 1;
            let now = (rec.requests("busy"), rec.requests("busy-dry"));
            for (now, last) in [(now.0, last.0), (now.1, last.1)] {
                assert!(
                    now.admitted >= last.admitted
                        && now.dropped >= last.dropped
                        && now.shadow_dropped >= last.shadow_dropped,
                    "went down: {last:?} -> {now:?}"
                );
                assert!(
                    now.admitted + now.dropped + now.shadow_dropped <= TOTAL,
                    "more than decided: {now:?}"
                );
            }
            last = now;
            if finished {
                break;
            }
        }
    });
    eprintln!("{publications} publications");
    let admitted = admitted.load(Ordering::Relaxed);
    assert!(admitted < TOTAL, "the enforcing shedder refused nothing");
    assert_eq!(
        rec.requests("busy"),
        Requests {
            admitted,
            dropped: TOTAL - admitted,
            shadow_dropped: 0,
        }
    );
    let snapshot = dry.snapshot();
    assert!(snapshot.shadow_dropped > 0, "{snapshot:?}");
    assert_eq!(snapshot.admitted, TOTAL);
    assert_eq!(
        rec.requests("busy-dry"),
        Requests {
            admitted: TOTAL - snapshot.shadow_dropped,
            dropped: 0,
            shadow_dropped: snapshot.shadow_dropped,
        }
    );
}

// # Random operation sequences (the model test's operations)

#[derive(Debug, Clone)]
enum Op {
    Allow,
    Pass(usize),
    Fail(usize),
    Cancel(usize),
    Advance(u64),
    Cpu(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Allow),
        3 => any::<usize>().prop_map(Op::Pass),
        1 => any::<usize>().prop_map(Op::Fail),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => (0u64..250).prop_map(|ms| Op::Advance(ms * 1_000_000)),
        2 => prop_oneof![Just(0u32), Just(899), Just(900), Just(950), Just(1000), 0u32..=1000]
            .prop_map(Op::Cpu),
    ]
}

/// Cases run, and how many of them refused (or would have refused) a request.
static CASES: AtomicU64 = AtomicU64::new(0);
static CASES_WITH_DROPS: AtomicU64 = AtomicU64::new(0);

fn run((shadow, sample_period, ops): (bool, u32, Vec<Op>)) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let cpu = ManualCpu::new(0);
    let (shedder, mut rec) = recorded(|| {
        Shedder::builder()
            .name("prop")
            .window(Duration::from_secs(1))
            .buckets(10)
            .latency_sample_period(sample_period)
            .in_flight_average_interval(Duration::ZERO)
            .shadow(shadow)
            .cpu_source(cpu.clone())
            .build_with_clock(clock.clone())
            .unwrap()
    });
    let mut expected = Requests::default();
    let mut samples: Vec<f64> = Vec::new();
    let mut cpu_now = 0u32;
    // The reading the gauge was last set to.
    let mut cpu_set: Option<u32> = None;
    let mut open: Vec<(Guard<'_, ManualClock>, u64)> = Vec::new();
    for op in ops {
        let now = clock.now().as_nanos();
        match op {
            Op::Allow => {
                let would_drop = shedder.snapshot().shadow_dropped;
                let reads_cpu;
                match shedder.allow() {
                    Ok(g) => {
                        reads_cpu = g.is_timed();
                        if shedder.snapshot().shadow_dropped > would_drop {
                            prop_assert!(shadow);
                            expected.shadow_dropped += 1;
                        } else {
                            expected.admitted += 1;
                        }
                        open.push((g, now));
                    }
                    Err(_) => {
                        reads_cpu = true;
                        prop_assert!(!shadow);
                        expected.dropped += 1;
                    }
                }
                // Timed admissions and refusals pass the reading to the gauge, which is
                // set when it changed.
                if reads_cpu && cpu_set != Some(cpu_now) {
                    cpu_set = Some(cpu_now);
                    prop_assert_eq!(rec.cpu("prop"), f64::from(cpu_now) / 1000.0);
                }
            }
            Op::Pass(i) | Op::Fail(i) | Op::Cancel(i) if !open.is_empty() => {
                let (g, started) = open.swap_remove(i % open.len());
                let timed = g.is_timed();
                match op {
                    Op::Pass(_) => {
                        g.pass();
                        if timed {
                            samples.push((now - started) as f64 / 1e9);
                        }
                    }
                    Op::Fail(_) => g.fail(),
                    _ => drop(g),
                }
                // A timed completion steps the average (every time: interval 0), which
                // reads the count.
                if timed {
                    prop_assert_eq!(rec.in_flight("prop"), open.len() as f64);
                }
            }
            Op::Pass(_) | Op::Fail(_) | Op::Cancel(_) => {}
            Op::Advance(ns) => {
                clock.advance(Duration::from_nanos(ns));
            }
            Op::Cpu(c) => {
                cpu.set(c);
                cpu_now = c;
            }
        }
        shedder.publish_metrics();
        prop_assert_eq!(rec.requests("prop"), expected);
        let mut got = rec.response_times("prop");
        got.sort_by(f64::total_cmp);
        let mut want = samples.clone();
        want.sort_by(f64::total_cmp);
        prop_assert_eq!(got, want);
    }
    let snapshot = shedder.snapshot();
    prop_assert_eq!(
        snapshot.admitted,
        expected.admitted + expected.shadow_dropped
    );
    prop_assert_eq!(snapshot.dropped, expected.dropped);
    CASES.fetch_add(1, Ordering::Relaxed);
    if expected.dropped + expected.shadow_dropped > 0 {
        CASES_WITH_DROPS.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Each counter equals the decisions the API returned (in shadow mode, the shedder's own
/// count of would-be drops tells a shadow drop from an admission), the histogram holds
/// exactly the timed passes' latencies, and the gauges follow the CPU reading and the
/// in-flight count; over random admissions, outcomes, cancellations, clock steps and CPU
/// readings.
#[test]
fn counters_follow_the_decisions() {
    let config = ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let strategy = (
        any::<bool>(),
        prop_oneof![Just(1u32), Just(2), Just(8)],
        prop::collection::vec(op(), 1..400),
    );
    proptest::test_runner::TestRunner::new(config)
        .run(&strategy, run)
        .unwrap_or_else(|e| panic!("{e}"));
    let cases = CASES.load(Ordering::Relaxed);
    let with_drops = CASES_WITH_DROPS.load(Ordering::Relaxed);
    eprintln!("{cases} cases, {with_drops} with drops");
    assert!(
        with_drops * 3 >= cases,
        "only {with_drops} of {cases} cases dropped anything"
    );
}
