//! `SystemCpu` over scripted meters: the moving average, lazy start, thread shutdown and
//! panic containment. No test sleeps to make something happen; waits poll with a deadline.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keel_shedder::cpu::{CpuError, CpuMeter, CpuSource, MeterKind, SystemCpu};
use keel_timex::Nanos;
use parking_lot::Mutex;

/// What a scripted meter does on one sample.
#[derive(Clone, Copy, Debug)]
enum Step {
    Usage(f64),
    Nothing,
    Fail,
    Panic,
}

/// Plays a script, then repeats `then` forever; counts samples and notices being dropped
/// (which, for a threaded sampler, means its thread has exited).
struct Scripted {
    script: Arc<Mutex<VecDeque<Step>>>,
    then: Step,
    samples: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

#[derive(Clone)]
struct Probe {
    script: Arc<Mutex<VecDeque<Step>>>,
    samples: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

fn scripted(steps: &[Step], then: Step) -> (Box<dyn CpuMeter>, Probe) {
    let probe = Probe {
        script: Arc::new(Mutex::new(steps.iter().copied().collect())),
        samples: Arc::new(AtomicUsize::new(0)),
        dropped: Arc::new(AtomicBool::new(false)),
    };
    let meter = Scripted {
        script: Arc::clone(&probe.script),
        then,
        samples: Arc::clone(&probe.samples),
        dropped: Arc::clone(&probe.dropped),
    };
    (Box::new(meter), probe)
}

impl CpuMeter for Scripted {
    fn sample(&mut self, _: Nanos) -> Result<Option<f64>, CpuError> {
        self.samples.fetch_add(1, Ordering::SeqCst);
        let step = self.script.lock().pop_front().unwrap_or(self.then);
        match step {
            Step::Usage(x) => Ok(Some(x)),
            Step::Nothing => Ok(None),
            Step::Fail => Err(CpuError::NoData("scripted failure")),
            Step::Panic => panic!("scripted panic (expected by the test)"),
        }
    }

    fn limit_cpus(&self) -> f64 {
        1.5
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Polls `cond` every millisecond until it holds or 10 s pass.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The average after each sample, computed independently of the implementation.
fn expected_ema(samples: &[f64]) -> Vec<u32> {
    let mut ema: Option<f64> = None;
    samples
        .iter()
        .map(|&x| {
            let next = match ema {
                None => x,
                Some(e) => 0.95 * e + 0.05 * x,
            };
            ema = Some(next);
            next.round() as u32
        })
        .collect()
}

#[test]
fn average_is_seeded_by_the_first_sample_and_follows_beta() {
    let values = [800.0, 200.0, 200.0, 1000.0, 0.0, 333.3, 999.9];
    let mut steps = vec![Step::Nothing];
    steps.extend(values.iter().map(|&v| Step::Usage(v)));
    let (meter, _) = scripted(&steps, Step::Nothing);
    let cpu = SystemCpu::manual(meter);
    assert_eq!(cpu.sample_now(), None, "priming");
    let got: Vec<u32> = values.iter().map(|_| cpu.sample_now().unwrap()).collect();
    let want = expected_ema(&values);
    assert_eq!(want[..3], [800, 770, 742], "self-check of the reference");
    for (g, w) in got.iter().zip(&want) {
        assert!(g.abs_diff(*w) <= 1, "got {got:?}, want {want:?}");
    }
    assert_eq!(cpu.usage(), got.last().copied());
    assert_eq!(cpu.kind(), Some(MeterKind::Custom));
    assert_eq!(cpu.limit_cpus(), Some(1.5));
}

#[test]
fn average_converges_to_a_steady_value() {
    let (meter, _) = scripted(&[Step::Usage(0.0)], Step::Usage(950.0));
    let cpu = SystemCpu::manual(meter);
    let mut last = None;
    for _ in 0..200 {
        last = cpu.sample_now();
    }
    // 950 * (1 - 0.95^199) rounds to 950; go-zero's truncation would stop at 931.
    assert_eq!(last, Some(950));
}

#[test]
fn failures_drop_the_signal_until_the_next_sample() {
    let (meter, _) = scripted(
        &[
            Step::Usage(600.0),
            Step::Fail,
            Step::Nothing,
            Step::Usage(100.0),
        ],
        Step::Nothing,
    );
    let cpu = SystemCpu::manual(meter);
    assert_eq!(cpu.sample_now(), Some(600));
    assert_eq!(cpu.sample_now(), None, "failure");
    assert_eq!(cpu.sample_now(), None, "re-priming");
    assert_eq!(
        cpu.sample_now(),
        Some(100),
        "re-seeded, not averaged with 600"
    );
}

#[test]
fn a_panicking_meter_means_no_signal_for_good() {
    let (meter, probe) = scripted(&[Step::Usage(500.0), Step::Panic], Step::Usage(700.0));
    let cpu = SystemCpu::manual(meter);
    assert_eq!(cpu.sample_now(), Some(500));
    assert_eq!(cpu.sample_now(), None, "the panic is contained");
    assert_eq!(cpu.sample_now(), None);
    assert_eq!(cpu.usage(), None);
    assert_eq!(
        probe.samples.load(Ordering::SeqCst),
        2,
        "never sampled again"
    );
}

#[test]
fn manual_sampler_never_starts_a_thread() {
    let (meter, probe) = scripted(&[], Step::Usage(300.0));
    let cpu = SystemCpu::manual(meter);
    assert_eq!(cpu.usage(), None);
    assert!(!cpu.is_started());
    assert_eq!(probe.samples.load(Ordering::SeqCst), 0);
    drop(cpu);
    assert!(probe.dropped.load(Ordering::SeqCst));
}

#[test]
fn thread_starts_on_first_usage_and_stops_after_the_last_handle() {
    let (meter, probe) = scripted(&[Step::Nothing], Step::Usage(420.0));
    let cpu = SystemCpu::with_meter(meter, Duration::from_millis(1));
    let clone = cpu.clone();
    // Built, cloned, formatted: still nothing runs.
    let _ = format!("{cpu:?}");
    assert!(!cpu.is_started() && !clone.is_started());
    assert_eq!(probe.samples.load(Ordering::SeqCst), 0);

    // The first call starts the thread, which may sample before the call reads: a value
    // only ever follows two samples (counted before the value is stored).
    let first = clone.usage();
    assert!(
        first.is_none() || probe.samples.load(Ordering::SeqCst) >= 2,
        "no value before the first two samples: {first:?}"
    );
    assert!(cpu.is_started(), "clones share the sampler");
    eventually("a smoothed value", || cpu.usage() == Some(420));
    let n = probe.samples.load(Ordering::SeqCst);
    eventually("more samples", || {
        probe.samples.load(Ordering::SeqCst) > n + 2
    });

    drop(cpu);
    assert!(
        !probe.dropped.load(Ordering::SeqCst),
        "a handle is still alive"
    );
    assert_eq!(clone.usage(), Some(420));
    drop(clone);
    // The thread owns the last reference: the meter is dropped when it exits.
    eventually("the sampler thread to exit", || {
        probe.dropped.load(Ordering::SeqCst)
    });
}

#[test]
fn threaded_panic_is_contained_and_the_thread_still_exits() {
    let (meter, probe) = scripted(&[Step::Nothing, Step::Usage(900.0)], Step::Panic);
    let cpu = SystemCpu::with_meter(meter, Duration::from_millis(1));
    // The thread this starts may already have sampled twice (900) or panicked (none).
    let first = cpu.usage();
    assert!(
        first.is_none() || (first == Some(900) && probe.samples.load(Ordering::SeqCst) >= 2),
        "{first:?}"
    );
    eventually("the panic", || probe.samples.load(Ordering::SeqCst) >= 3);
    eventually("no signal after the panic", || cpu.usage().is_none());
    assert_eq!(cpu.sample_now(), None);
    let n = probe.samples.load(Ordering::SeqCst);
    assert_eq!(n, 3, "the meter is not sampled after it panicked");
    drop(cpu);
    eventually("the sampler thread to exit", || {
        probe.dropped.load(Ordering::SeqCst)
    });
}

#[test]
fn concurrent_first_calls_start_one_thread() {
    let (meter, probe) = scripted(&[], Step::Usage(10.0));
    let cpu = SystemCpu::with_meter(meter, Duration::from_secs(3600));
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| cpu.usage());
        }
    });
    // One thread primes once, then sleeps an hour; a second thread would sample again.
    eventually("the priming sample", || {
        probe.samples.load(Ordering::SeqCst) >= 1
    });
    assert_eq!(probe.samples.load(Ordering::SeqCst), 1);
}
