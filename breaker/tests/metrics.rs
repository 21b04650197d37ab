//! The `metrics` feature: every series METRICS.md lists for the breaker, with its exact
//! name and labels, moving exactly as the breaker's decisions and the callers' reports.
//!
//! Each test builds its breakers under its own `DebuggingRecorder` with
//! `metrics::with_local_recorder`: the handles are registered at build time, so they keep
//! recording into that recorder afterwards, on any thread (the first test checks this), and
//! tests running in parallel never share series.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_breaker::{Breaker, BreakerError, History, Mode, OnCancel};
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

    fn gauge(&mut self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.refresh();
        let k = key(name, labels);
        *self
            .gauges
            .get(&k)
            .unwrap_or_else(|| panic!("no gauge {k:?}"))
    }

    /// `keel_breaker_calls_total` of breaker `name`, by outcome.
    fn calls(&mut self, name: &str) -> Calls {
        let mut c = |outcome| {
            self.counter(
                "keel_breaker_calls_total",
                &[("name", name), ("outcome", outcome)],
            )
        };
        Calls {
            success: c("success"),
            failure: c("failure"),
            rejected: c("rejected"),
            cancelled: c("cancelled"),
        }
    }

    /// `keel_breaker_state_changes_total` of breaker `name`: (to open, to closed).
    fn changes(&mut self, name: &str) -> (u64, u64) {
        let open = self.counter(
            "keel_breaker_state_changes_total",
            &[("name", name), ("to", "open")],
        );
        let closed = self.counter(
            "keel_breaker_state_changes_total",
            &[("name", name), ("to", "closed")],
        );
        (open, closed)
    }

    fn drop_ratio(&mut self, name: &str) -> f64 {
        self.gauge("keel_breaker_drop_ratio", &[("name", name)])
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Calls {
    success: u64,
    failure: u64,
    rejected: u64,
    cancelled: u64,
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

fn on_clock(builder: keel_breaker::Builder, clock: &ManualClock) -> Breaker<ManualClock> {
    builder.build_with_clock(clock.clone()).unwrap()
}

#[test]
fn handles_registered_under_a_local_recorder_keep_recording_into_it() {
    let (breaker, mut rec) = recorded(|| Breaker::builder().name("local").build().unwrap());
    // Outside the closure, on this thread and on another one.
    breaker.allow().unwrap().success();
    std::thread::scope(|s| {
        s.spawn(|| breaker.allow().unwrap().success());
    });
    // Calls are counted per thread and published in batches: publish now.
    breaker.publish_metrics();
    assert_eq!(rec.calls("local").success, 2);
    // A breaker built outside any recorder records nowhere, and not into this one.
    let silent = Breaker::builder().name("local").build().unwrap();
    silent.allow().unwrap().success();
    silent.publish_metrics();
    assert_eq!(rec.calls("local").success, 2);
    // Building another one under a second recorder does not move the first's series.
    let (other, mut rec2) = recorded(|| Breaker::builder().name("local").build().unwrap());
    other.allow().unwrap().failure();
    other.publish_metrics();
    assert_eq!(rec2.calls("local").failure, 1);
    assert_eq!(rec.calls("local").failure, 0);
}

#[test]
fn series_names_labels_and_kinds_are_exact() {
    let (_breaker, mut rec) = recorded(|| Breaker::builder().name("orders-db").build().unwrap());
    let counter = |name: &str, labels: &[(&str, &str)]| (MetricKind::Counter, key(name, labels));
    let expected: BTreeSet<_> = [
        counter(
            "keel_breaker_calls_total",
            &[("name", "orders-db"), ("outcome", "success")],
        ),
        counter(
            "keel_breaker_calls_total",
            &[("name", "orders-db"), ("outcome", "failure")],
        ),
        counter(
            "keel_breaker_calls_total",
            &[("name", "orders-db"), ("outcome", "rejected")],
        ),
        counter(
            "keel_breaker_calls_total",
            &[("name", "orders-db"), ("outcome", "cancelled")],
        ),
        counter(
            "keel_breaker_state_changes_total",
            &[("name", "orders-db"), ("to", "open")],
        ),
        counter(
            "keel_breaker_state_changes_total",
            &[("name", "orders-db"), ("to", "closed")],
        ),
        (
            MetricKind::Gauge,
            key("keel_breaker_drop_ratio", &[("name", "orders-db")]),
        ),
    ]
    .into_iter()
    .collect();
    // Registered at build time, before any call.
    assert_eq!(rec.series(), expected);
    assert_eq!(rec.calls("orders-db"), Calls::default());
    assert_eq!(rec.changes("orders-db"), (0, 0));
}

#[test]
fn the_default_name_is_the_breakers_own() {
    let (breakers, mut rec) = recorded(|| {
        (
            Breaker::new(),
            Breaker::builder().build().unwrap(),
            Breaker::default(),
        )
    });
    let (a, b, c) = breakers;
    let names: BTreeSet<String> = [a.name(), b.name(), c.name()]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names.len(), 3, "each unnamed breaker has a name of its own");
    for breaker in [&a, &b, &c] {
        assert!(breaker.name().starts_with("breaker-"), "{}", breaker.name());
        breaker.allow().unwrap().success();
        breaker.publish_metrics();
        assert_eq!(rec.calls(breaker.name()).success, 1);
    }
    let labelled: BTreeSet<String> = rec
        .series()
        .into_iter()
        .flat_map(|(_, (_, labels))| labels)
        .filter(|(k, _)| k == "name")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(labelled, names);
}

#[test]
fn two_breakers_with_distinct_names_have_distinct_series() {
    let ((a, b), mut rec) = recorded(|| {
        (
            Breaker::builder().name("a").build().unwrap(),
            Breaker::builder().name("b").build().unwrap(),
        )
    });
    a.allow().unwrap().success();
    a.allow().unwrap().success();
    b.allow().unwrap().failure();
    b.set_mode(Mode::ForcedOpen);
    assert!(b.allow().is_err());
    a.publish_metrics();
    b.publish_metrics();
    let calls_a = rec.calls("a");
    let calls_b = rec.calls("b");
    assert_eq!(
        calls_a,
        Calls {
            success: 2,
            ..Calls::default()
        }
    );
    assert_eq!(
        calls_b,
        Calls {
            failure: 1,
            rejected: 1,
            ..Calls::default()
        }
    );
}

/// A std::io::Error-free error type for the closures.
fn err(text: &str) -> Result<u32, String> {
    Err(text.to_owned())
}

#[test]
fn every_outcome_is_counted_once_as_the_caller_reported_it() {
    let clock = ManualClock::new();
    let (breaker, mut rec) = recorded(|| {
        on_clock(
            Breaker::builder()
                .name("db")
                .protection(1000) // no drops: every call here is admitted
                .slow_call(Duration::from_millis(100)),
            &clock,
        )
    });
    // Successes: reported, returned Ok, an acceptable error.
    breaker.allow().unwrap().success();
    assert_eq!(breaker.call(|| Ok::<_, String>(1)).unwrap(), 1);
    assert!(
        breaker
            .call_with(|| err("not found"), |e| e == "not found")
            .is_err()
    );
    breaker.allow_owned().unwrap().success();
    // Failures: reported, an error, a reason, a slow success, a panic.
    breaker.allow().unwrap().failure();
    assert!(breaker.call(|| err("boom")).is_err());
    breaker.allow_owned().unwrap().failure_with("refused");
    let slow = breaker.allow().unwrap();
    clock.advance(Duration::from_millis(101));
    slow.success();
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let _permit = breaker.allow().unwrap();
        panic!("the call panicked");
    }));
    assert!(panicked.is_err());
    // Cancellations: dropped unresolved, quick or slow (a slow one is recorded as a failure
    // in the window, but the caller cancelled it).
    drop(breaker.allow().unwrap());
    let slow_cancel = breaker.allow_owned().unwrap();
    clock.advance(Duration::from_millis(101));
    drop(slow_cancel);
    breaker.publish_metrics();
    assert_eq!(
        rec.calls("db"),
        Calls {
            success: 4,
            failure: 5,
            rejected: 0,
            cancelled: 2,
        }
    );
    assert_eq!(breaker.snapshot().cancelled, 2);
    assert_eq!(breaker.snapshot().history.accepts, 4);

    // Forced open: every way in is refused and counted once.
    breaker.set_mode(Mode::ForcedOpen);
    assert!(breaker.allow().is_err());
    assert!(breaker.allow_owned().is_err());
    assert!(matches!(
        breaker.call(|| Ok::<_, String>(1)),
        Err(BreakerError::Rejected(_))
    ));
    assert_eq!(
        breaker.call_with_fallback(|| Ok::<_, String>(1), |_| false, |_| Ok(2)),
        Ok(2)
    );
    breaker.publish_metrics();
    assert_eq!(rec.calls("db").rejected, 4);

    // Forced closed records as adaptive does; disabled records nothing.
    breaker.set_mode(Mode::ForcedClosed);
    breaker.allow().unwrap().success();
    breaker.set_mode(Mode::Disabled);
    breaker.allow().unwrap().success();
    breaker.allow().unwrap().failure();
    drop(breaker.allow().unwrap());
    breaker.publish_metrics();
    assert_eq!(
        rec.calls("db"),
        Calls {
            success: 5,
            failure: 5,
            rejected: 4,
            cancelled: 2,
        }
    );
    // No decision found pressure: the breaker never opened.
    assert_eq!(rec.changes("db"), (0, 0));
}

#[test]
fn a_cancellation_is_cancelled_whatever_on_cancel_records() {
    for policy in [OnCancel::Ignore, OnCancel::Failure, OnCancel::Success] {
        let (breaker, mut rec) = recorded(|| {
            Breaker::builder()
                .name("c")
                .on_cancel(policy)
                .build()
                .unwrap()
        });
        drop(breaker.allow().unwrap());
        drop(breaker.allow_owned().unwrap());
        breaker.publish_metrics();
        assert_eq!(
            rec.calls("c"),
            Calls {
                cancelled: 2,
                ..Calls::default()
            },
            "{policy:?}"
        );
    }
}

/// Fails calls until the breaker has refused `refusals` of them, counting into `tally`.
fn fail_until_refused(breaker: &Breaker<ManualClock>, refusals: u64, tally: &mut Calls) {
    let mut refused = 0;
    while refused < refusals {
        match breaker.allow() {
            Ok(permit) => {
                tally.failure += 1;
                permit.failure();
            }
            Err(_) => {
                tally.rejected += 1;
                refused += 1;
            }
        }
        assert!(tally.failure < 10_000, "the breaker never refused");
    }
}

#[test]
fn refusals_open_the_breaker_and_a_healthy_decision_closes_it() {
    let clock = ManualClock::new();
    let (breaker, mut rec) = recorded(|| {
        on_clock(
            Breaker::builder()
                .name("flaky")
                .seed(7)
                .window(Duration::from_secs(1))
                .buckets(10),
            &clock,
        )
    });
    let mut tally = Calls::default();
    fail_until_refused(&breaker, 20, &mut tally);
    breaker.publish_metrics();
    assert_eq!(rec.calls("flaky"), tally);
    assert_eq!(rec.changes("flaky"), (1, 0), "the first refusal opened it");

    // The gauge holds the probability the last decision computed: the snapshot's, taken at
    // the same instant over the same history (the clock stands still: no forced pass).
    for _ in 0..10 {
        let expected = breaker.snapshot().drop_ratio;
        assert!(expected > 0.0 && expected < 1.0, "{expected}");
        match breaker.allow() {
            Ok(permit) => {
                tally.failure += 1;
                permit.failure();
            }
            Err(_) => tally.rejected += 1,
        }
        assert_eq!(rec.drop_ratio("flaky"), expected);
    }
    breaker.publish_metrics();
    assert_eq!(rec.calls("flaky"), tally);

    // One more decision under pressure, not read: the gauge holds a probability > 0.
    let expected = breaker.snapshot().drop_ratio;
    assert!(expected > 0.0);
    match breaker.allow() {
        Ok(permit) => {
            tally.failure += 1;
            permit.failure();
        }
        Err(_) => tally.rejected += 1,
    }
    // A window later the history is empty: the next decision finds no pressure and sets
    // the gauge back to 0 (had it not, the recorder would still show `expected`).
    clock.advance(Duration::from_millis(1100));
    assert_eq!(breaker.snapshot().drop_ratio, 0.0);
    breaker.allow().unwrap().success();
    tally.success += 1;
    assert_eq!(rec.drop_ratio("flaky"), 0.0);
    assert_eq!(rec.changes("flaky"), (1, 1));
    // More healthy decisions are no more transitions.
    breaker.allow().unwrap().success();
    tally.success += 1;
    assert_eq!(rec.changes("flaky"), (1, 1));

    // Failing again opens it again.
    fail_until_refused(&breaker, 5, &mut tally);
    breaker.publish_metrics();
    assert_eq!(rec.calls("flaky"), tally);
    assert_eq!(rec.changes("flaky"), (2, 1));
}

#[test]
fn shadow_mode_refuses_nothing_and_never_opens() {
    let clock = ManualClock::new();
    let (breaker, mut rec) =
        recorded(|| on_clock(Breaker::builder().name("dry").seed(3).shadow(true), &clock));
    for _ in 0..500 {
        breaker.allow().unwrap().failure();
    }
    assert!(breaker.snapshot().shadow_rejections > 0);
    // First: reading the recorder resets its gauges.
    assert!(
        rec.drop_ratio("dry") > 0.0,
        "the probability is still reported"
    );
    assert_eq!(
        {
            breaker.publish_metrics();
            rec.calls("dry")
        },
        Calls {
            failure: 500,
            ..Calls::default()
        }
    );
    assert_eq!(rec.changes("dry"), (0, 0));
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_deadline_is_a_failure_and_a_call_dropped_by_its_caller_is_cancelled() {
    let (breaker, mut rec) = recorded(|| {
        Breaker::builder()
            .name("async")
            .timeout(Duration::from_millis(50))
            .build()
            .unwrap()
    });
    let never = std::future::pending::<Result<u32, String>>;
    let timed_out = breaker.call_async(never()).await;
    assert!(matches!(timed_out, Err(BreakerError::TimedOut(_))));
    // The caller gives up before the breaker's deadline: a cancellation.
    let given_up =
        tokio::time::timeout(Duration::from_millis(10), breaker.call_async(never())).await;
    assert!(given_up.is_err());
    assert_eq!(
        breaker.call_async(async { Ok::<_, String>(1) }).await,
        Ok(1)
    );
    assert!(breaker.call_async(async { err("boom") }).await.is_err());
    assert_eq!(
        {
            breaker.publish_metrics();
            rec.calls("async")
        },
        Calls {
            success: 1,
            failure: 2,
            rejected: 0,
            cancelled: 1,
        }
    );
}

// # Random operation sequences

const MIN_K: f64 = 1.1;
const K: f64 = 1.5;
const PROTECTION: f64 = 5.0;
const BUCKETS: u32 = 10;
const FORCE_PASS_NS: u64 = 1_000_000_000;

/// Whether a decision over `h` finds no pressure (go-zero's formula, as `decision.rs`
/// computes it: the same operations in the same order, so the same rounding).
fn no_pressure(h: &History) -> bool {
    let total = h.total as f64;
    let w = K - (K - MIN_K) * f64::from(h.failing_buckets) / f64::from(BUCKETS);
    let excess = (total - PROTECTION) - w.max(MIN_K) * h.accepts as f64;
    excess <= 0.0
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Success,
    Failure,
    Cancel,
}

#[derive(Debug, Clone)]
enum Op {
    /// One call that takes this many milliseconds of clock time.
    Call(End, u64),
    Burst(End, u16),
    Advance(u64),
    SetMode(Mode),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let end = prop_oneof![
        3 => Just(End::Success),
        3 => Just(End::Failure),
        1 => Just(End::Cancel),
    ];
    prop_oneof![
        6 => (end.clone(), prop_oneof![3 => Just(0u64), 1 => 0..300u64])
            .prop_map(|(e, ms)| Op::Call(e, ms)),
        2 => (end, 1..60u16).prop_map(|(e, n)| Op::Burst(e, n)),
        2 => (0..1500u64).prop_map(Op::Advance),
        1 => prop_oneof![
            4 => Just(Mode::Adaptive),
            1 => Just(Mode::Shadow),
            1 => Just(Mode::ForcedOpen),
            1 => Just(Mode::ForcedClosed),
            1 => Just(Mode::Disabled),
        ]
        .prop_map(Op::SetMode),
        1 => Just(Op::Reset),
    ]
}

/// What the test expects the recorder to hold, from what the API returned.
struct Expected {
    calls: Calls,
    opened: u64,
    closed: u64,
    dropping: bool,
    /// go-zero's `lastPass`, to know which admissions under pressure are forced passes
    /// (they compute no probability, so they leave the gauge alone).
    last_pass: u64,
    mode: Mode,
}

struct Case {
    clock: ManualClock,
    breaker: Breaker<ManualClock>,
    rec: Recorded,
    slow_ns: Option<u64>,
    expected: Expected,
}

impl Case {
    fn call(&mut self, end: End, took_ms: u64) -> Result<(), TestCaseError> {
        let e = &mut self.expected;
        let now = self.clock.now().as_nanos();
        let snapshot = self.breaker.snapshot();
        let decides = matches!(e.mode, Mode::Adaptive | Mode::Shadow);
        let healthy = decides && no_pressure(&snapshot.history);
        let pressured = decides && !healthy;
        let forced_pass =
            pressured && e.last_pass != 0 && now.saturating_sub(e.last_pass) > FORCE_PASS_NS;
        match self.breaker.allow() {
            Err(_) => {
                prop_assert!(e.mode == Mode::ForcedOpen || (e.mode == Mode::Adaptive && pressured));
                e.calls.rejected += 1;
                if e.mode == Mode::Adaptive && !e.dropping {
                    e.dropping = true;
                    e.opened += 1;
                }
            }
            Ok(permit) => {
                prop_assert!(e.mode != Mode::ForcedOpen);
                if pressured {
                    e.last_pass = now.max(1);
                }
                let records = e.mode != Mode::Disabled;
                let took = Duration::from_millis(took_ms);
                self.clock.advance(took);
                let slow = self.slow_ns.is_some_and(|t| took.as_nanos() as u64 > t);
                match end {
                    End::Success => {
                        permit.success();
                        if records && slow {
                            e.calls.failure += 1;
                        } else if records {
                            e.calls.success += 1;
                        }
                    }
                    End::Failure => {
                        permit.failure();
                        if records {
                            e.calls.failure += 1;
                        }
                    }
                    End::Cancel => {
                        drop(permit);
                        if records {
                            e.calls.cancelled += 1;
                        }
                    }
                }
            }
        }
        if healthy && e.dropping {
            e.dropping = false;
            e.closed += 1;
        }
        // Gauges first: reading the recorder resets them.
        if healthy {
            prop_assert_eq!(self.rec.drop_ratio("prop"), 0.0);
        } else if pressured && !forced_pass {
            prop_assert_eq!(self.rec.drop_ratio("prop"), snapshot.drop_ratio);
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        let e = &self.expected;
        self.breaker.publish_metrics();
        prop_assert_eq!(self.rec.calls("prop"), e.calls);
        prop_assert_eq!(self.rec.changes("prop"), (e.opened, e.closed));
        Ok(())
    }
}

/// Cases run, and how many opened and closed the breaker at least once.
static CASES: AtomicU64 = AtomicU64::new(0);
static CASES_OPENED: AtomicU64 = AtomicU64::new(0);
static CASES_CLOSED: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
struct Params {
    seed: u64,
    count_rejections: bool,
    slow_ms: Option<u64>,
    on_cancel: OnCancel,
    ops: Vec<Op>,
}

fn params() -> impl Strategy<Value = Params> {
    (
        any::<u64>(),
        any::<bool>(),
        prop::option::of(1..200u64),
        prop_oneof![
            Just(OnCancel::Ignore),
            Just(OnCancel::Failure),
            Just(OnCancel::Success),
        ],
        prop::collection::vec(op(), 1..120),
    )
        .prop_map(|(seed, count_rejections, slow_ms, on_cancel, ops)| Params {
            seed,
            count_rejections,
            slow_ms,
            on_cancel,
            ops,
        })
}

fn run(p: Params) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let mut builder = Breaker::builder()
        .name("prop")
        .seed(p.seed)
        .window(Duration::from_secs(1))
        .buckets(BUCKETS)
        .count_rejections(p.count_rejections)
        .on_cancel(p.on_cancel);
    if let Some(ms) = p.slow_ms {
        builder = builder.slow_call(Duration::from_millis(ms));
    }
    let (breaker, rec) = recorded(|| on_clock(builder, &clock));
    let mut case = Case {
        clock,
        breaker,
        rec,
        slow_ns: p.slow_ms.map(|ms| ms * 1_000_000),
        expected: Expected {
            calls: Calls::default(),
            opened: 0,
            closed: 0,
            dropping: false,
            last_pass: 0,
            mode: Mode::Adaptive,
        },
    };
    for op in p.ops {
        match op {
            Op::Call(end, ms) => case.call(end, ms)?,
            Op::Burst(end, n) => {
                for _ in 0..n {
                    case.call(end, 0)?;
                }
            }
            Op::Advance(ms) => {
                case.clock.advance(Duration::from_millis(ms));
            }
            Op::SetMode(mode) => {
                case.breaker.set_mode(mode);
                case.expected.mode = mode;
            }
            Op::Reset => {
                case.breaker.reset();
                case.expected.last_pass = 0;
            }
        }
        case.check()?;
    }
    CASES.fetch_add(1, Ordering::Relaxed);
    if case.expected.opened > 0 {
        CASES_OPENED.fetch_add(1, Ordering::Relaxed);
    }
    if case.expected.closed > 0 {
        CASES_CLOSED.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Each counter equals the decisions the API returned and the outcomes reported, the
/// transitions follow the refusals and the pressure-free decisions, and the gauge holds the
/// probability each decision computed; over random calls, outcomes, clock steps, modes and
/// resets, with random seeds, slow-call thresholds and cancellation policies.
#[test]
fn counters_follow_the_decisions() {
    let config = ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest::test_runner::TestRunner::new(config)
        .run(&params(), run)
        .unwrap_or_else(|e| panic!("{e}"));
    // The generator must reach the refusals and the recoveries, not only admissions.
    let cases = CASES.load(Ordering::Relaxed);
    let opened = CASES_OPENED.load(Ordering::Relaxed);
    let closed = CASES_CLOSED.load(Ordering::Relaxed);
    eprintln!("{cases} cases, {opened} opened, {closed} closed");
    assert!(opened * 3 >= cases, "only {opened} of {cases} cases opened");
    assert!(closed * 3 >= cases, "only {closed} of {cases} cases closed");
}
