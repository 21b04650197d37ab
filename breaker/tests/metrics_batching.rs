//! Feature `metrics`: `keel_breaker_calls_total` is counted in per-thread stripes and
//! reaches the recorder in batches. Nothing is lost or counted twice: at a drop, from the
//! periodic thread with no call at all, and with more threads than stripes while a
//! publisher races them.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keel_breaker::Breaker;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The total of `keel_breaker_calls_total{name, outcome}` so far; the debugging recorder
/// hands out increments since its last snapshot, so totals are kept by the caller.
struct Totals {
    snapshotter: Snapshotter,
    success: u64,
    failure: u64,
}

impl Totals {
    fn refresh(&mut self) -> (u64, u64) {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let (key, DebugValue::Counter(n)) = (key.key(), value) else {
                continue;
            };
            if key.name() != "keel_breaker_calls_total" {
                continue;
            }
            match key
                .labels()
                .find(|l| l.key() == "outcome")
                .map(|l| l.value())
            {
                Some("success") => self.success += n,
                Some("failure") => self.failure += n,
                _ => {}
            }
        }
        (self.success, self.failure)
    }
}

fn recorded(name: &str) -> (Breaker, Totals, DebuggingRecorder) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let breaker =
        metrics::with_local_recorder(&recorder, || Breaker::builder().name(name).build().unwrap());
    let totals = Totals {
        snapshotter,
        success: 0,
        failure: 0,
    };
    (breaker, totals, recorder)
}

#[test]
fn a_dropped_breaker_publishes_its_last_calls() {
    let (breaker, mut totals, _recorder) = recorded("dropped");
    for _ in 0..5 {
        breaker.allow().unwrap().success();
    }
    breaker.allow().unwrap().failure();
    drop(breaker);
    assert_eq!(totals.refresh(), (5, 1));
}

/// No publish, snapshot or drop: keel-timex's periodic thread (once a second) brings the
/// counts. Polls the condition with a deadline far beyond the period.
#[test]
fn the_periodic_thread_publishes_without_any_call() {
    let (breaker, mut totals, _recorder) = recorded("idle");
    for _ in 0..7 {
        breaker.allow().unwrap().success();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while totals.refresh().0 < 7 {
        assert!(Instant::now() < deadline, "not published within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    breaker.publish_metrics();
    assert_eq!(totals.refresh(), (7, 0));
}

/// More threads than stripes (some share the atomic fallback), barrier-started, while the
/// test thread publishes in a loop: totals never exceed the calls made and end exact.
#[test]
fn racing_publishes_count_each_call_once() {
    const THREADS: usize = 40;
    const CALLS: u64 = 2_000;
    let (breaker, mut totals, _recorder) = recorded("race");
    let start = Barrier::new(THREADS + 1);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let callers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..CALLS {
                        breaker.allow().unwrap().success();
                    }
                })
            })
            .collect();
        start.wait();
        s.spawn(|| {
            for c in callers {
                c.join().unwrap();
            }
            done.store(true, Ordering::Release);
        });
        while !done.load(Ordering::Acquire) {
            breaker.publish_metrics();
            let (success, _) = totals.refresh();
            assert!(success <= THREADS as u64 * CALLS, "{success}");
        }
    });
    breaker.publish_metrics();
    assert_eq!(totals.refresh(), (THREADS as u64 * CALLS, 0));
}
