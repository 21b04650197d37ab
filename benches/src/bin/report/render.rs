//! `BENCHMARKS.md`: the comparison tables, the issue targets and the raw medians.

mod cache;
mod limiter;
mod mapreduce;
mod syncx;
mod timingwheel;

use std::fmt::Write as _;
use std::time::Duration;

use keel_benches::breaker::{
    BreakerUnderTest, Failsafe, Keel as KeelBreaker, KeelForcedOpen, RustZeroCore as RzcBreaker,
};
use keel_benches::clocks::{ClockUnderTest, StdInstant};
use keel_benches::profile::Profile;
use keel_benches::shedder::{
    Keel as KeelShedder, KeelHighLoad, LittleLoadShedder, RustZeroCore as RzcShedder,
    ShedderUnderTest, TokioSemaphore, TowerLoadShed,
};
use keel_benches::suites::baseline;
use keel_benches::suites::breaker::{
    REJECTION, REJECTION_2T, Tally, allow_success_group, call_ok_group,
};
use keel_benches::suites::cache::Run as CacheRun;
use keel_benches::suites::limiter::Run as LimiterRun;
use keel_benches::suites::rollingwindow::{REDUCE, add_group};
use keel_benches::suites::shedder::{
    CPU_METER, CPU_SAMPLE, REJECTION as SHEDDER_REJECTION, allow_pass_group,
    rejection_group as shedder_rejection_group,
};
use keel_benches::suites::syncx::Run as SyncxRun;
use keel_benches::suites::timex::CLOCK_NOW;
use keel_benches::suites::timingwheel::Run as TimingWheelRun;
use keel_benches::window::{Keel, MutexWindow, RsZero, RustZeroCore, WindowUnderTest};
use keel_timex::{CoarseClock, ManualClock, MonotonicClock};

use crate::machine::Machine;
use crate::results::Results;

/// Everything a report shows.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) command: String,
    pub(crate) profile: Profile,
    pub(crate) machine: Machine,
    pub(crate) versions: Vec<(String, String)>,
    pub(crate) results: Results,
    /// What the breaker suite's calls came back as.
    pub(crate) breaker_calls: Vec<Tally>,
    /// What the shedder suite's requests came back as.
    pub(crate) shedder_calls: Vec<Tally>,
    /// What the limiter suite's calls came back as, and its heap per key.
    pub(crate) limiter: LimiterRun,
    /// The timing-wheel suite's heap per outstanding timer.
    pub(crate) timingwheel: TimingWheelRun,
    /// What the syncx suite's limit and pool calls came back as.
    pub(crate) syncx: SyncxRun,
    /// The cache suite's missed gets, prefill, heap per entry and hit ratios.
    pub(crate) cache: CacheRun,
    /// The kind of CPU meter the `cpu sample` benchmark read (`cgroup v1`, ...), if any.
    pub(crate) cpu_meter: Option<String>,
    pub(crate) elapsed: Duration,
}

/// One row of the keel-vs-peer table.
struct Comparison {
    operation: &'static str,
    group: String,
    ours: &'static str,
    peer: &'static str,
}

/// `1 000 000`: digits in groups of three, for counts in prose and tables.
fn fmt_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(d);
    }
    out
}

/// A table cell: the value, or a dash when it was not measured.
fn dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "–".to_owned())
}

fn comparisons() -> Vec<Comparison> {
    let window_peers = [MutexWindow::NAME, RustZeroCore::NAME, RsZero::NAME];
    let mut rows = Vec::new();
    for (operation, group) in [
        ("rolling window add, 1 thread", add_group(1)),
        ("rolling window add, 2 threads (per thread)", add_group(2)),
        ("rolling window reduce, 40 full buckets", REDUCE.to_owned()),
    ] {
        for peer in window_peers {
            rows.push(Comparison {
                operation,
                group: group.clone(),
                ours: Keel::NAME,
                peer,
            });
        }
    }
    let healthy_peers = [Failsafe::NAME, RzcBreaker::NAME];
    let open_peers = [Failsafe::REJECTION_NAME, RzcBreaker::REJECTION_NAME];
    for (operation, group, ours, peers) in [
        (
            "breaker allow+success, 1 thread",
            allow_success_group(1),
            KeelBreaker::NAME,
            healthy_peers,
        ),
        (
            "breaker allow+success, 2 threads (per thread)",
            allow_success_group(2),
            KeelBreaker::NAME,
            healthy_peers,
        ),
        (
            "breaker call(ok), 1 thread",
            call_ok_group(1),
            KeelBreaker::NAME,
            healthy_peers,
        ),
        (
            "breaker call(ok), 2 threads (per thread)",
            call_ok_group(2),
            KeelBreaker::NAME,
            healthy_peers,
        ),
        (
            "breaker rejection: keel forced open",
            REJECTION.to_owned(),
            KeelForcedOpen::REJECTION_NAME,
            open_peers,
        ),
        (
            "breaker rejection: keel adaptive",
            REJECTION.to_owned(),
            KeelBreaker::REJECTION_NAME,
            open_peers,
        ),
        (
            "breaker rejection, 2 threads (per thread): keel adaptive",
            REJECTION_2T.to_owned(),
            KeelBreaker::REJECTION_NAME,
            open_peers,
        ),
    ] {
        for peer in peers {
            rows.push(Comparison {
                operation,
                group: group.clone(),
                ours,
                peer,
            });
        }
    }
    let shedder_peers = [
        RzcShedder::NAME,
        TowerLoadShed::NAME,
        LittleLoadShedder::NAME,
        TokioSemaphore::NAME,
    ];
    let refusing_peers = [
        RzcShedder::REJECTION_NAME,
        TowerLoadShed::REJECTION_NAME,
        LittleLoadShedder::REJECTION_NAME,
        TokioSemaphore::REJECTION_NAME,
    ];
    for (operation, group, ours, peers) in [
        (
            "shedder allow+pass, 1 thread",
            allow_pass_group(1),
            KeelShedder::NAME,
            &shedder_peers[..],
        ),
        (
            "shedder allow+pass, 2 threads (per thread)",
            allow_pass_group(2),
            KeelShedder::NAME,
            &shedder_peers[..],
        ),
        // rust-zero-core is the one peer whose every decision also weighs CPU and capacity.
        (
            "shedder allow+pass, 1 thread: keel at high load",
            allow_pass_group(1),
            KeelHighLoad::NAME,
            &shedder_peers[..1],
        ),
        (
            "shedder allow+pass, 2 threads (per thread): keel at high load",
            allow_pass_group(2),
            KeelHighLoad::NAME,
            &shedder_peers[..1],
        ),
        (
            "shedder rejection (overloaded), 1 thread",
            SHEDDER_REJECTION.to_owned(),
            KeelShedder::REJECTION_NAME,
            &refusing_peers[..],
        ),
        (
            "shedder rejection (overloaded), 2 threads (per thread)",
            shedder_rejection_group(2),
            KeelShedder::REJECTION_NAME,
            &refusing_peers[..],
        ),
    ] {
        for &peer in peers {
            rows.push(Comparison {
                operation,
                group: group.clone(),
                ours,
                peer,
            });
        }
    }
    rows.extend(limiter::comparisons());
    for (operation, ours) in [
        ("clock read: CoarseClock", CoarseClock::NAME),
        ("clock read: MonotonicClock", MonotonicClock::NAME),
        ("clock read: ManualClock (tests)", ManualClock::NAME),
    ] {
        rows.push(Comparison {
            operation,
            group: CLOCK_NOW.to_owned(),
            ours,
            peer: StdInstant::NAME,
        });
    }
    rows
}

/// One of the targets, checked against this run.
struct Target {
    goal: String,
    measured: Option<String>,
    pass: bool,
}

fn targets(r: &Results, calls: &[Tally]) -> Vec<Target> {
    let keel = |threads| r.get(&add_group(threads), Keel::NAME).map(|m| m.ns);
    let mutex = |threads| r.get(&add_group(threads), MutexWindow::NAME).map(|m| m.ns);
    let latency = |goal: &str, ns: Option<f64>, max: f64| Target {
        goal: goal.to_owned(),
        measured: ns.map(|v| format!("{} ns", fmt_ns(v))),
        pass: ns.is_some_and(|v| v <= max),
    };
    let speedup = |goal: &str, threads: usize, min: f64| {
        let ratio = mutex(threads).zip(keel(threads)).map(|(p, o)| p / o);
        Target {
            goal: goal.to_owned(),
            measured: ratio.map(fmt_ratio),
            pass: ratio.is_some_and(|x| x >= min),
        }
    };
    let breaker = |group: &str, bench| r.get(group, bench).map(|m| m.ns);
    let call_ok = |threads| breaker(&call_ok_group(threads), KeelBreaker::NAME);
    let adaptive = KeelBreaker::REJECTION_NAME;
    let rejected = rejected_share(calls, adaptive).map_or_else(String::new, |share| {
        format!(", {share} of its calls rejected")
    });
    let shedder = |threads| {
        r.get(&allow_pass_group(threads), KeelShedder::NAME)
            .map(|m| m.ns)
    };
    vec![
        latency("rolling window add, 1 thread: ≤ 15 ns", keel(1), 15.0),
        latency(
            "rolling window add, 2 threads: ≤ 15 ns per thread",
            keel(2),
            15.0,
        ),
        speedup(
            "rolling window add, 1 thread: ≥ 3× faster than the mutex window",
            1,
            3.0,
        ),
        speedup(
            "rolling window add, 2 threads: ≥ 5× faster than the mutex window",
            2,
            5.0,
        ),
        latency("breaker call(ok), 1 thread: ≤ 25 ns", call_ok(1), 25.0),
        latency(
            "breaker call(ok), 2 threads: ≤ 30 ns per thread",
            call_ok(2),
            30.0,
        ),
        latency(
            "breaker rejection, forced open (`Mode::ForcedOpen`): ≤ 15 ns",
            breaker(REJECTION, KeelForcedOpen::REJECTION_NAME),
            15.0,
        ),
        latency(
            &format!("breaker rejection, adaptive (throttling{rejected}): ≤ 15 ns"),
            breaker(REJECTION, adaptive),
            15.0,
        ),
        latency("shedder allow+pass, 1 thread: ≤ 40 ns", shedder(1), 40.0),
        latency(
            "shedder allow+pass, 2 threads: ≤ 60 ns per thread",
            shedder(2),
            60.0,
        ),
    ]
}

/// The share of a rejection benchmark's calls that the breaker rejected, e.g. `99.9997%`.
fn rejected_share(calls: &[Tally], bench: &str) -> Option<String> {
    let t = calls
        .iter()
        .find(|t| t.group == REJECTION && t.bench == bench)?;
    Some(fmt_share(t.expected_fraction()))
}

/// A share close to 1 with enough digits to show how close.
fn fmt_share(x: f64) -> String {
    if x == 1.0 {
        "100%".to_owned()
    } else if x >= 0.999 {
        format!("{:.4}%", 100.0 * x)
    } else {
        format!("{:.2}%", 100.0 * x)
    }
}

pub(crate) fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let versions: Vec<String> = r.versions.iter().map(|(n, v)| format!("{n} {v}")).collect();
    // Writing to a String cannot fail; `let _` keeps the many writes readable.
    let _ = writeln!(
        s,
        "# keel benchmarks\n\n\
         Generated by `{}` on {}. Do not edit by hand: rerun the command.\n\n\
         - **Machine:** {}, {} logical CPUs, Linux {}\n\
         - **Toolchain:** {}, `--release` (opt-level 3, no LTO)\n\
         - **Method:** criterion, {}; one run. Each figure is criterion's median point \
         estimate per operation, read from its `estimates.json`.\n\
         - **Crates:** {}\n\
         - **Report run took** {:.0} s.\n",
        r.command,
        m.date,
        m.cpu,
        m.cores,
        m.kernel,
        m.rustc,
        r.profile.describe(),
        versions.join(", "),
        r.elapsed.as_secs_f64(),
    );

    write_floor(&mut s, &r.results);

    let _ = writeln!(
        s,
        "## Issue targets\n\n| target | measured | result |\n|---|---|---|"
    );
    let limiter_targets = limiter::targets(&r.results, &r.limiter);
    for t in targets(&r.results, &r.breaker_calls)
        .into_iter()
        .chain(limiter_targets)
        .chain(mapreduce::targets(&r.results))
        .chain(timingwheel::targets(&r.results, &r.timingwheel))
        .chain(syncx::targets(&r.results))
        .chain(cache::targets(&r.results, &r.cache))
    {
        let measured = t.measured.as_deref().unwrap_or("not measured");
        let result = if t.pass { "PASS" } else { "FAIL" };
        let _ = writeln!(s, "| {} | {measured} | **{result}** |", t.goal);
    }
    let _ = writeln!(
        s,
        "\nThe targets were set on the peer-figures machine. The ratio targets assume its \
         lock costs: read them against the machine floor above, since the mutex window's \
         add is little more than one lock+unlock. The breaker targets (peer-figures.md, \
         section 3) are for keel's own breaker; its figures against failsafe and \
         rust-zero-core are in the next table. The shedder targets (section 4: admit and \
         complete, with latency accounting) are for keel's shedder below its CPU threshold. {} {} {} {} {}",
        limiter::TARGETS_NOTE,
        mapreduce::TARGETS_NOTE,
        timingwheel::TARGETS_NOTE,
        syncx::TARGETS_NOTE,
        cache::TARGETS_NOTE
    );

    let _ = writeln!(
        s,
        "\n## keel against its peers\n\n\
         ratio = peer / ours: how many times faster keel is (below 1: keel is slower).\n\n\
         | operation | ours (ns) | peer | peer (ns) | ratio (peer/ours) |\n|---|---|---|---|---|"
    );
    for c in comparisons() {
        let ours = r.results.get(&c.group, c.ours).map(|m| m.ns);
        let peer = r.results.get(&c.group, c.peer).map(|m| m.ns);
        let ratio = ours.zip(peer).map(|(o, p)| fmt_ratio(p / o));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            c.operation,
            ours.map_or_else(|| "–".to_owned(), fmt_ns),
            c.peer,
            peer.map_or_else(|| "–".to_owned(), fmt_ns),
            ratio.as_deref().unwrap_or("–"),
        );
    }
    write_breaker_calls(&mut s, &r.breaker_calls);
    write_shedder_calls(&mut s, &r.shedder_calls);
    write_cpu_sample(&mut s, &r.results, r.cpu_meter.as_deref());
    limiter::write_section(&mut s, &r.limiter, &r.results);
    mapreduce::write_section(&mut s, &r.results);
    timingwheel::write_section(&mut s, &r.timingwheel, &r.results);
    syncx::write_section(&mut s, &r.syncx, &r.results);
    cache::write_section(&mut s, &r.cache, &r.results);

    let _ = writeln!(
        s,
        "\n## Raw medians\n\n| group | benchmark | median (ns) | 95% CI of the median (ns) |\n|---|---|---|---|"
    );
    for ((group, bench), m) in r.results.iter() {
        let _ = writeln!(
            s,
            "| {group} | {bench} | {} | {} – {} |",
            fmt_ns(m.ns),
            fmt_ns(m.low),
            fmt_ns(m.high)
        );
    }

    s.push_str(NOTES);
    s.push_str(limiter::NOTES);
    s.push_str(mapreduce::NOTES);
    s.push_str(timingwheel::NOTES);
    s.push_str(syncx::NOTES);
    s.push_str(cache::NOTES);
    s
}

/// What the breaker benchmarks' calls came back as: the share each open breaker rejected,
/// and any call a healthy breaker refused (a figure that would not measure the healthy path).
fn write_breaker_calls(s: &mut String, calls: &[Tally]) {
    if calls.is_empty() {
        return;
    }
    let rejected: Vec<String> = calls
        .iter()
        .filter(|t| t.group == REJECTION)
        .map(|t| format!("{} {}", t.bench, fmt_share(t.expected_fraction())))
        .collect();
    let _ = writeln!(
        s,
        "\nShare of the calls each open breaker rejected in the rejection group (the rest \
         were let through and recorded a failure): {}.",
        rejected.join(", ")
    );
    let refused: Vec<String> = calls
        .iter()
        .filter(|t| t.group != REJECTION && t.unexpected > 0)
        .map(|t| format!("{}/{}: {} of {}", t.group, t.bench, t.unexpected, t.calls))
        .collect();
    if refused.is_empty() {
        let _ = writeln!(s, "Every call in the healthy breaker groups was admitted.");
    } else {
        let _ = writeln!(
            s,
            "**Calls refused in the healthy breaker groups** (those figures are not the \
             healthy path alone): {}.",
            refused.join(", ")
        );
    }
}

/// What the shedder benchmarks' requests came back as: the share each overloaded shedder
/// refused, and any request refused in an admitting group.
fn write_shedder_calls(s: &mut String, calls: &[Tally]) {
    if calls.is_empty() {
        return;
    }
    let refused: Vec<String> = calls
        .iter()
        .filter(|t| t.group == SHEDDER_REJECTION)
        .map(|t| format!("{} {}", t.bench, fmt_share(t.expected_fraction())))
        .collect();
    let _ = writeln!(
        s,
        "\nShare of the requests each overloaded shedder refused in the rejection group: {}.",
        refused.join(", ")
    );
    let shed: Vec<String> = calls
        .iter()
        .filter(|t| t.group != SHEDDER_REJECTION && t.unexpected > 0)
        .map(|t| format!("{}/{}: {} of {}", t.group, t.bench, t.unexpected, t.calls))
        .collect();
    if shed.is_empty() {
        let _ = writeln!(
            s,
            "Every request in the shedder allow+pass groups was admitted."
        );
    } else {
        let _ = writeln!(
            s,
            "**Requests refused in the shedder allow+pass groups** (those figures are not \
             the admission path alone): {}.",
            shed.join(", ")
        );
    }
}

/// The cost of one CPU sample of keel's meter, and what sampling 4 times a second costs.
fn write_cpu_sample(s: &mut String, r: &Results, meter: Option<&str>) {
    let Some(m) = r.get(CPU_SAMPLE, CPU_METER) else {
        return;
    };
    // SystemCpu samples every 250 ms.
    let share = m.ns * 4.0 / 1e9 * 100.0;
    let _ = writeln!(
        s,
        "\nOne sample of keel's CPU meter ({} here) takes {:.1} µs: sampling 4 times a second \
         costs {share:.4}% of one core.",
        meter.unwrap_or("unknown kind"),
        m.ns / 1000.0,
    );
}

/// The baseline suite against the figures in `peer-figures.md` (Xeon Sapphire Rapids, 2
/// vCPU), where the targets come from: `(benchmark, 1 thread, 2 threads)`, in ns.
const REFERENCE_FLOOR: [(&str, f64, f64); 2] = [
    (baseline::FETCH_ADD, 9.8, 35.7),
    (baseline::LOCK, 17.7, 63.4),
];

fn write_floor(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "## Machine floor\n\n\
         | operation | this machine, 1 thread (ns) | 2 threads (ns per thread) | \
         peer-figures machine, 1 thread | 2 threads |\n|---|---|---|---|---|"
    );
    for (bench, ref_1t, ref_2t) in REFERENCE_FLOOR {
        let here = |threads| {
            r.get(&baseline::group(threads), bench)
                .map_or_else(|| "–".to_owned(), |m| fmt_ns(m.ns))
        };
        let _ = writeln!(
            s,
            "| {bench} | {} | {} | {} | {} |",
            here(1),
            here(2),
            fmt_ns(ref_1t),
            fmt_ns(ref_2t)
        );
    }
    s.push('\n');
}

const NOTES: &str = "
## What is measured

- **keel:** `RollingWindow::<SumCount<i64>>::new(40, 250 ms)` on the default `CoarseClock`,
  `add(1)`. Each writing thread has its own stripe of buckets: no lock, no atomic
  read-modify-write.
- **mutex-window (go-zero design):** go-zero's `collection.RollingWindow` ported into
  keel-benches (`benches/src/window/mutex_window.rs`): one `parking_lot::Mutex` around a ring
  of `{sum, count}` buckets with go-zero's offset/lastTime advance, reading the **same
  `CoarseClock`** as keel. It differs from keel only in how buckets are shared, so it
  isolates the locking cost; the issue's ratio targets are against it.
- **rust-zero-core:** `rust_zero_core::RollingWindow::record(f64)` as published: a
  `std::sync::Mutex` around a `VecDeque` of buckets (count, sum, min, max) and an
  `Instant::now()` per record.
- **rs-zero (parking_lot Mutex):** `rs_zero::resil::RollingWindow::record(Success)`: a ring
  of generation-tagged outcome buckets and an `Instant::now()` per record. It takes
  `&mut self`, so it is shared through a `parking_lot::Mutex`.
- **2 threads:** two OS threads add to the same window, start together at a barrier and
  each time its own loop; the figure is the per-operation latency each thread sees (the
  slower thread's wall time / operations per thread), so aggregate throughput is
  2 / figure. On this 2-vCPU VM such figures are bimodal (sometimes both threads share one
  core); treat each 2-thread figure as ±50% and rerun before drawing conclusions.
- **reduce:** the sum of counts over a full 40-bucket window, as a breaker reads it before
  a decision. The crates.io peers read `Instant::now()` internally, so the windows are
  filled in real time: 40 buckets of 50 ms, kept full by one background writer adding to
  every window each 10 ms. keel's reduce merges one stripe per writing thread, so with more
  writer threads it costs proportionally more.
- **breakers:** one breaker per implementation for the whole suite, each with its default
  configuration (rust-zero-core: its go-zero policy, `CircuitBreakerConfig::rolling`, over
  go-zero's 10 s window of 40 buckets). Before the first sample a background thread calls
  every breaker each 25 ms for one window and a bucket (10.25 s), and keeps doing so until
  the suite ends, so the healthy windows hold successes in every bucket (rust-zero-core's
  `VecDeque` reaches its 40 buckets) and the open breakers stay open. That thread also
  gives keel's window a second stripe, as any multi-threaded service would.
  - **allow+success:** the permit API with no closure: keel `allow()` + `Permit::success()`;
    failsafe `is_call_permitted()` + `on_success()`; rust-zero-core `acquire()` (on an
    `Arc`, which it requires) + `finish(true)`.
  - **call(ok):** the closure API with a closure returning `Ok(())`: keel `call`, failsafe
    `CircuitBreaker::call` (`Config::new().build()`: success-rate over 30 s or else 5
    consecutive failures), rust-zero-core `execute`.
  - **rejection:** one thread asking an open breaker for a permit (the path the closure APIs
    share when they reject); a call let through (force-pass, probe, half-open) records a
    failure. **keel (forced open)** is `set_mode(Mode::ForcedOpen)`: one mode load.
    **keel (adaptive)** is the SRE throttle: 10 000 `allow()` + `failure()` when the
    suite starts (most come back rejected and count as drops), so accepts are 0 and the drop
    probability is about 1; each rejection reads the clock and the cached history, draws a
    random number and records a drop. failsafe is opened by 5 failed calls (consecutive
    policy; open 5–10 s the first time, longer after each failed half-open probe).
    rust-zero-core is opened like keel; it lets every 100th call through as a probe and
    does not count its own rejections, so it rejects about 97–99%.
  - **2 threads:** as for the windows: two threads share one breaker; the figure is the
    latency each sees.
- **shedders:** one shedder per implementation for the whole suite; a request is admitted
  and completed at once (the work between is not measured).
  - **keel:** `Shedder::builder().cpu_source(ManualCpu)`, go-zero's defaults (5 s in 50
    buckets, threshold 900, 1 s cool-off), its own default of timing 1 request in 8, on
    the `CoarseClock`; `allow()` + `Guard::pass()`. At CPU 0 (the figure of the targets) the
    decision ends after the CPU check: the fast path. **keel (high load)** runs at CPU 950, so every decision also reads the cached max flight and the
    in-flight average (go-zero's `BenchmarkAdaptiveShedder_Allow/high load`); its window is
    first filled by real traffic (100 requests held 25 ms together, every 30 ms, from a
    background thread paused while it is measured), so it admits. **keel (overloaded)**:
    CPU 1000, 1000 requests held open after 1000 more finished (in-flight average and count
    far above the limit).
  - **rust-zero-core:** `AdaptiveShedder` with `LoadShedderConfig::production(1024)` (its
    CPU- and throughput-aware, go-zero-style mode) over go-zero's 5 s × 50 window;
    `try_acquire()` + dropping the permit. Its CPU signal is its own `getrusage` sampler,
    which cannot be injected; every admission locks a `std::sync::Mutex` twice and reads
    `Instant::now()`, every completion locks it again and reads the clock twice. Refusing:
    1024 permits held (its `max_concurrency`).
  - **tower LoadShed+ConcurrencyLimit:** tower 0.5 `LoadShed::new(ConcurrencyLimit::new(svc,
    1024))` over a service that answers at once: `poll_ready` + `call` + one poll of the
    response with a no-op waker (no runtime), dropping it returns the permit. Each thread
    calls its own clone of the stack, found in a thread-local (a few ns the shared peers do
    not pay). Refusing: all the limit's permits held, so `poll_ready` polls its pending
    acquire and `call` answers `Overloaded`.
  - **little-loadshedder:** `LoadShed::new(svc, 0.01, 2 s)` (its example's settings), driven
    like tower's; each request boxes a future, clones three `Arc`s, locks its statistics
    twice and reads `Instant::now()` twice. Its concurrency limit starts at 1, so with two
    threads a request may wait in its queue (polled until served). Refusing: over a service
    that never answers, one request in service and one queued fill its one-place queue.
  - **tokio Semaphore try_acquire:** `Semaphore::new(1024)`, `try_acquire()` + drop: a
    fixed concurrency limit, no statistics, no clock. Refusing: all permits taken.
  - **2 threads:** as for the windows: two threads share one shedder; the figure is the
    latency each sees.
  - **cpu sample:** one `CpuMeter::sample` of the meter `CpuMode::Auto.detect()` returns
    (the one keel's default `SystemCpu` reads every 250 ms): a read of the cgroup's or the
    host's counters and a division.
- **clock now:** one read of each clock; std `Instant::now()` is the baseline.
- **machine floor:** `fetch_add` and `parking_lot` lock+unlock, all threads on one cache
  line, measured like the 2-thread adds. The reference columns are from `peer-figures.md`.
";

fn fmt_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2}")
    } else if ns < 100.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.0}")
    }
}

fn fmt_ratio(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}×")
    } else {
        format!("{x:.1}×")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Median;

    fn report(results: Results) -> Report {
        Report {
            command: "report".to_owned(),
            profile: Profile::Standard,
            machine: Machine {
                cpu: "cpu".to_owned(),
                cores: 2,
                kernel: "kernel".to_owned(),
                rustc: "rustc".to_owned(),
                date: "date".to_owned(),
            },
            versions: Vec::new(),
            results,
            breaker_calls: Vec::new(),
            shedder_calls: Vec::new(),
            limiter: LimiterRun::default(),
            timingwheel: TimingWheelRun::default(),
            syncx: SyncxRun::default(),
            cache: CacheRun::default(),
            cpu_meter: Some("cgroup v2".to_owned()),
            elapsed: Duration::from_secs(1),
        }
    }

    fn median(ns: f64) -> Median {
        Median::exact(ns)
    }

    /// Every row of the peers table names benchmarks the suites run: with a figure for each
    /// of them, no row is left without a ratio.
    #[test]
    fn every_comparison_names_measured_benchmarks() {
        let mut results = Results::default();
        for c in comparisons() {
            results.insert(&c.group, c.ours, median(10.0));
            results.insert(&c.group, c.peer, median(10.0));
        }
        let md = markdown(&report(results));
        let table = md
            .split("## keel against its peers")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").nth(2))
            .expect("the peers table");
        assert_eq!(table.lines().count(), comparisons().len() + 2);
        for row in table.lines().skip(2) {
            assert!(row.ends_with("| 1.00× |"), "{row}");
        }
    }

    #[test]
    fn shedder_targets_and_cpu_sample_are_reported() {
        let mut results = Results::default();
        results.insert(&allow_pass_group(1), KeelShedder::NAME, median(20.0));
        results.insert(&allow_pass_group(2), KeelShedder::NAME, median(70.0));
        results.insert(CPU_SAMPLE, CPU_METER, median(12_500.0));
        let md = markdown(&report(results));
        assert!(md.contains("| shedder allow+pass, 1 thread: ≤ 40 ns | 20.0 ns | **PASS** |"));
        assert!(md.contains(
            "| shedder allow+pass, 2 threads: ≤ 60 ns per thread | 70.0 ns | **FAIL** |"
        ));
        assert!(md.contains("(cgroup v2 here) takes 12.5 µs"), "{md}");
        assert!(md.contains("costs 0.0050% of one core"), "{md}");
    }
}
