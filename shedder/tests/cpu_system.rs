//! The real meters and the process-wide sampler on this machine's `/proc` and
//! `/sys/fs/cgroup`. Only one test here touches `SystemCpu::new(CpuMode::Auto)`, because
//! that sampler is shared by the whole test binary.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keel_shedder::cpu::{CpuMeter, CpuMode, CpuSource, MeterKind, SystemCpu};
use keel_timex::{Clock, MonotonicClock};

/// Keeps one thread busy while alive.
struct Burner {
    stop: &'static AtomicBool,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn burn() -> Burner {
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let thread = std::thread::spawn(move || {
        let mut x = 0u64;
        while !stop.load(Ordering::Relaxed) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    });
    Burner {
        stop,
        thread: Some(thread),
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.take().map(|t| t.join());
    }
}

/// Samples `meter` every 20 ms until it reports a usage satisfying `ok`, for up to 5 s.
fn sample_until(meter: &mut dyn CpuMeter, ok: impl Fn(f64) -> bool) -> f64 {
    let clock = MonotonicClock::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    meter.sample(clock.now()).unwrap();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(v) = meter.sample(clock.now()).unwrap() {
            assert!(
                (0.0..=1000.0).contains(&v),
                "{} out of range: {v}",
                meter.kind()
            );
            if ok(v) {
                return v;
            }
            seen.push(v);
        }
        assert!(
            Instant::now() < deadline,
            "{}: never satisfied, saw {seen:?}",
            meter.kind()
        );
    }
}

#[test]
fn every_mode_measures_a_busy_thread() {
    let _burner = burn();
    for mode in [
        CpuMode::Auto,
        CpuMode::Cgroup,
        CpuMode::Host,
        CpuMode::Process,
    ] {
        let Ok(mut meter) = mode.detect() else {
            // Cgroup accounting may be absent (a bare VM); the host and process meters only
            // need /proc.
            assert_eq!(mode, CpuMode::Cgroup, "{mode:?} must work on Linux");
            continue;
        };
        let limit = meter.limit_cpus();
        assert!(limit > 0.0 && limit.is_finite(), "{mode:?}: limit {limit}");
        // One busy thread is at least 1/limit of the CPUs (less a scheduling margin).
        let floor = 1000.0 / limit.max(1.0) * 0.3;
        sample_until(&mut *meter, |v| v >= floor);
    }
}

#[test]
fn v1_is_detected_where_the_machine_has_v1() {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let meter = CpuMode::Cgroup.detect();
    if v2 {
        assert_eq!(meter.unwrap().kind(), MeterKind::CgroupV2);
    } else if Path::new("/sys/fs/cgroup/cpuacct/cpuacct.usage").exists()
        || Path::new("/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage").exists()
    {
        assert_eq!(meter.unwrap().kind(), MeterKind::CgroupV1);
    }
}

#[test]
fn the_shared_auto_sampler_is_lazy_reports_and_stops() {
    let cpu = SystemCpu::new(CpuMode::Auto);
    let other = SystemCpu::new(CpuMode::Auto);
    assert!(
        cpu.kind().is_some(),
        "Linux always has at least the host meter"
    );
    assert!(cpu.limit_cpus().is_some_and(|l| l > 0.0));
    assert!(!cpu.is_started(), "no thread before the first usage()");

    let deadline = Instant::now() + Duration::from_secs(5);
    let value = loop {
        if let Some(v) = cpu.usage() {
            break v;
        }
        assert!(Instant::now() < deadline, "no CPU usage within 5 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(value <= 1000, "{value}");
    assert!(
        other.is_started(),
        "one sampler per mode, shared by every handle"
    );
    assert!(other.usage().is_some());

    drop(cpu);
    drop(other);
    // After the last handle the thread exits (after a short grace) and clears its slot, so
    // a new handle gets a fresh, not yet started sampler.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = SystemCpu::new(CpuMode::Auto);
        if !probe.is_started() {
            break;
        }
        drop(probe);
        assert!(
            Instant::now() < deadline,
            "the shared sampler never stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
