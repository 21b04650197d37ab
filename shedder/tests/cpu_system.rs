//! The real meters and the process-wide sampler on this machine's `/proc` and
//! `/sys/fs/cgroup`. Only one test here touches `SystemCpu::new(CpuMode::Auto)`, because
//! that sampler is shared by the whole test binary.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keel_shedder::cpu::{CpuMode, CpuSource, MeterKind, SystemCpu};
use keel_timex::{Clock, MonotonicClock};

/// Keeps one thread busy while alive.
struct Burner {
    stop: &'static AtomicBool,
    /// `/proc/<pid>/task/<tid>` of the busy thread.
    task: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn burn() -> Burner {
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        // "<pid>/task/<tid>": where the kernel counts this thread's CPU time.
        let me = std::fs::read_link("/proc/thread-self").expect("procfs");
        tx.send(Path::new("/proc").join(me)).unwrap();
        let mut x = 0u64;
        while !stop.load(Ordering::Relaxed) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    });
    Burner {
        stop,
        task: rx.recv().expect("the busy thread names its task"),
        thread: Some(thread),
    }
}

impl Burner {
    /// The CPU time the busy thread has been given so far: how busy it really was, which
    /// on a loaded machine is much less than a whole core. Nanoseconds from `schedstat`
    /// where the kernel keeps scheduler statistics, else utime + stime from `stat` (clock
    /// ticks of 10 ms, `USER_HZ` = 100).
    fn cpu(&self) -> Duration {
        if let Ok(text) = std::fs::read_to_string(self.task.join("schedstat")) {
            let ns = text.split_whitespace().next().and_then(|n| n.parse().ok());
            return Duration::from_nanos(ns.expect("schedstat starts with the time on a CPU"));
        }
        let text = std::fs::read_to_string(self.task.join("stat")).expect("the task's stat");
        // The fields after the command name (in parentheses, which may hold anything):
        // state is field 3, utime 14 and stime 15.
        let fields: Vec<u64> = text[text.rfind(')').expect("(comm)") + 1..]
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|f| f.parse().expect("utime and stime"))
            .collect();
        Duration::from_millis(10 * fields.iter().sum::<u64>())
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.take().map(|t| t.join());
    }
}

/// How much CPU time the busy thread must be given while a meter measures: many of the
/// meters' 10 ms ticks, however long a loaded machine takes to give it.
const BURNED: Duration = Duration::from_millis(300);

#[test]
fn every_mode_measures_a_busy_thread() {
    let burner = burn();
    let clock = MonotonicClock::new();
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
        // One interval, from the priming sample to the next one, long enough for the busy
        // thread to be given BURNED of CPU. Whatever the meter measures (the host, the
        // cgroup, the process) includes that thread, so it reports at least the thread's
        // share of the interval: the floor is what the thread was really given (a whole
        // core on an idle machine, far less under load), not an assumed core.
        let start = clock.now();
        meter.sample(start).unwrap();
        let burned_before = burner.cpu();
        let deadline = Instant::now() + Duration::from_secs(60);
        while burner.cpu() - burned_before < BURNED {
            assert!(
                Instant::now() < deadline,
                "the busy thread got {:?} of CPU in 60 s",
                burner.cpu() - burned_before
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let burned = burner.cpu() - burned_before;
        let end = clock.now();
        let v = meter
            .sample(end)
            .unwrap()
            .unwrap_or_else(|| panic!("{}: no usage from a second sample", meter.kind()));
        assert!(
            (0.0..=1000.0).contains(&v),
            "{} out of range: {v}",
            meter.kind()
        );
        let wall = (end - start).as_secs_f64();
        let share = (1000.0 * burned.as_secs_f64() / (wall * limit)).min(1000.0);
        // Half of it: room for the meters' 10 ms ticks and the reads' own delays.
        assert!(
            v >= share / 2.0,
            "{}: {v} while the busy thread alone had {share:.0} ({burned:?} of CPU in \
             {wall:.3} s on {limit} CPUs)",
            meter.kind()
        );
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

    // The sampler's first value comes two samples (250 ms) after it starts: polled, with
    // a deadline far beyond that for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    let value = loop {
        if let Some(v) = cpu.usage() {
            break v;
        }
        assert!(Instant::now() < deadline, "no CPU usage within 30 s");
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
