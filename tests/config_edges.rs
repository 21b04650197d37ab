//! Every configuration value of every keel builder and constructor, drawn from the whole
//! range of its type (edges weighted heavily: 0, 1, MAX, MAX − 1, powers of two and their
//! neighbours, NaN and the infinities, `Duration::MAX`), is either accepted and works, or
//! refused with the builder's typed `ConfigError`, and exactly when the documented bounds
//! say so.
//!
//! Each case builds, performs a few operations (adds, decisions, takes, timers, clock jumps
//! to the end of the clock's range) and checks what it can; it runs on a worker thread of
//! its own and fails if it:
//!
//! - panics (the inputs are in the failure message);
//! - runs longer than [`CASE_TIMEOUT`] (a hang; tests use a `ManualClock` wherever a clock
//!   can be injected, so no case waits on real time);
//! - allocates more than [`MAX_ALLOCATION`] in one allocation, or grows the live heap by
//!   more than [`MAX_LIVE_GROWTH`]: the test binary's global allocator counts every
//!   allocation. It cannot refuse one without aborting the process (a `GlobalAlloc` must
//!   not unwind, and a null return aborts through `handle_alloc_error`), so it lets an
//!   over-bound allocation through when the system can satisfy it, records it, and the case
//!   fails afterwards. Only when the system itself cannot is null returned, after writing
//!   the running case's inputs to stderr.
//!
//! The cases run one at a time (a global lock), so the allocation counts belong to the case
//! that is running.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Debug;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------------------
// The counting allocator.

/// The largest single allocation a case may make: 256 MiB.
const MAX_ALLOCATION: usize = 256 << 20;
/// The most a case may grow the live heap by: 256 MiB.
const MAX_LIVE_GROWTH: usize = 256 << 20;
/// A case running longer than this hangs. Generous: the slowest case takes milliseconds.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);

struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated and not yet freed, all threads.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// `LIVE` when the running case started.
static BASE: AtomicUsize = AtomicUsize::new(0);
/// Whether a case is running (allocations are checked only then).
static ARMED: AtomicBool = AtomicBool::new(false);
/// The largest allocation over [`MAX_ALLOCATION`] in the running case (0: none).
static OVER_SIZE: AtomicUsize = AtomicUsize::new(0);
/// The largest live growth over [`MAX_LIVE_GROWTH`] in the running case (0: none).
static OVER_LIVE: AtomicUsize = AtomicUsize::new(0);
/// The running case's name and inputs, for the last-resort message (written before the
/// case starts, read without allocating).
static LABEL: Mutex<([u8; 2048], usize)> = Mutex::new(([0; 2048], 0));

impl Counting {
    /// Records an allocation of `size` more bytes if it breaks a bound. Never allocates.
    fn check(size: usize) {
        if !ARMED.load(Ordering::Relaxed) {
            return;
        }
        if size > MAX_ALLOCATION {
            OVER_SIZE.fetch_max(size, Ordering::Relaxed);
        }
        let live = LIVE.load(Ordering::Relaxed).saturating_add(size);
        let growth = live.saturating_sub(BASE.load(Ordering::Relaxed));
        if growth > MAX_LIVE_GROWTH {
            OVER_LIVE.fetch_max(growth, Ordering::Relaxed);
        }
    }

    /// The system could not satisfy an allocation either: returning null aborts the
    /// process, so say which case did it first. Never allocates.
    fn last_resort(size: usize) {
        let mut err = std::io::stderr();
        let _ = err.write_all(b"\nconfig_edges: the system refused an allocation; running case: ");
        if let Ok(label) = LABEL.try_lock() {
            let _ = err.write_all(&label.0[..label.1]);
        }
        let mut digits = [0u8; 20];
        let mut n = size;
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let _ = err.write_all(b"; bytes asked for: ");
        let _ = err.write_all(&digits[at..]);
        let _ = err.write_all(b"\n");
    }

    fn done(p: *mut u8, size: usize) -> *mut u8 {
        if p.is_null() {
            Counting::last_resort(size);
        } else {
            LIVE.fetch_add(size, Ordering::Relaxed);
        }
        p
    }
}

// SAFETY: every method forwards to `System` with the caller's layout and pointer unchanged,
// so `System`'s guarantees are ours; the bookkeeping around it touches only atomics and a
// `try_lock`, never allocates, and never unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::check(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract for `layout`; passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        Counting::done(p, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::check(layout.size());
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        Counting::done(p, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Counting::check(new_size.saturating_sub(layout.size()));
        if new_size > MAX_ALLOCATION && ARMED.load(Ordering::Relaxed) {
            OVER_SIZE.fetch_max(new_size, Ordering::Relaxed);
        }
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`, and the
        // caller upholds `realloc`'s contract for `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            Counting::last_resort(new_size);
        } else {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

// ---------------------------------------------------------------------------------------
// Running one case: a thread of its own, a timeout, panics caught, allocations checked.

/// One case at a time, so that the allocation counts are the running case's.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn set_label(text: &str) {
    let mut label = LABEL.lock().unwrap_or_else(|p| p.into_inner());
    let n = text.len().min(label.0.len());
    label.0[..n].copy_from_slice(&text.as_bytes()[..n]);
    label.1 = n;
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}

/// Runs `case` on its own thread and turns a panic, a hang or an allocation beyond the
/// bounds into a failure that names `name` and the inputs.
fn run_case<I: Debug>(
    name: &str,
    inputs: &I,
    case: impl FnOnce() + Send + 'static,
) -> Result<(), TestCaseError> {
    let label = format!("{name} {inputs:?}");
    set_label(&label);
    OVER_SIZE.store(0, Ordering::Relaxed);
    OVER_LIVE.store(0, Ordering::Relaxed);
    BASE.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let (tx, rx) = mpsc::channel();
    ARMED.store(true, Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name(format!("case {name}"))
        .spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(case)).map_err(|p| payload_text(&*p));
            let _ = tx.send(outcome);
        });
    let outcome = match spawned {
        Ok(_) => rx.recv_timeout(CASE_TIMEOUT),
        Err(e) => {
            ARMED.store(false, Ordering::Relaxed);
            return Err(TestCaseError::fail(format!(
                "{label}: no thread for the case: {e}"
            )));
        }
    };
    ARMED.store(false, Ordering::Relaxed);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => return Err(TestCaseError::fail(format!("{label}: panicked: {panic}"))),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            return Err(TestCaseError::fail(format!(
                "{label}: still running after {CASE_TIMEOUT:?} (a hang)"
            )));
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(TestCaseError::fail(format!(
                "{label}: the case thread vanished"
            )));
        }
    }
    let over_size = OVER_SIZE.load(Ordering::Relaxed);
    if over_size > 0 {
        return Err(TestCaseError::fail(format!(
            "{label}: allocated {over_size} bytes at once (bound {MAX_ALLOCATION})"
        )));
    }
    let over_live = OVER_LIVE.load(Ordering::Relaxed);
    if over_live > 0 {
        return Err(TestCaseError::fail(format!(
            "{label}: grew the heap by {over_live} bytes (bound {MAX_LIVE_GROWTH})"
        )));
    }
    Ok(())
}

/// Runs `cases` cases of `strategy` through `case`, one at a time, each bounded as above.
fn check<S>(name: &'static str, cases: u32, strategy: S, case: fn(S::Value))
where
    S: Strategy,
    S::Value: Debug + Clone + Send + 'static,
{
    let _one_at_a_time = serial();
    // `CONFIG_EDGES_CASES=n` runs n cases per builder instead (deeper runs by hand).
    let cases = std::env::var("CONFIG_EDGES_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        // A failing case is printed whole; a short shrink keeps a hang from repeating long.
        max_shrink_iters: 64,
        max_shrink_time: 30_000,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |inputs| {
        let moved = inputs.clone();
        run_case(name, &inputs, move || case(moved))
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// The strategies: any value of a type, edges weighted heavily. Every case draws each of its
// numeric and `Duration` parameters from these.

mod any {
    use std::time::Duration;

    use proptest::prelude::*;

    macro_rules! integers {
        ($name:ident, $t:ty) => {
            /// Any value, a third of the time an edge: 0..=3, MAX−3..=MAX, MAX/2 and its
            /// neighbours, `u32::MAX` and its neighbours where they fit; then powers of two
            /// with their neighbours, small values and uniform ones.
            // `try_from` cannot fail for the widest type.
            #[allow(irrefutable_let_patterns)]
            pub(crate) fn $name() -> BoxedStrategy<$t> {
                const BITS: u32 = <$t>::BITS;
                let mut edges: Vec<$t> = vec![0, 1, 2, 3, <$t>::MAX, <$t>::MAX - 1, <$t>::MAX - 2];
                edges.extend([<$t>::MAX / 2, <$t>::MAX / 2 + 1, <$t>::MAX / 2 - 1]);
                for wide in [u64::from(u32::MAX) - 1, u64::from(u32::MAX), u64::from(u32::MAX) + 1] {
                    if let Ok(v) = <$t>::try_from(wide) {
                        edges.push(v);
                    }
                }
                prop_oneof![
                    5 => proptest::sample::select(edges),
                    3 => (0..BITS).prop_map(|b| (1 as $t) << b),
                    1 => (0..BITS).prop_map(|b| ((1 as $t) << b).wrapping_sub(1)),
                    1 => (0..BITS).prop_map(|b| ((1 as $t) << b).wrapping_add(1)),
                    2 => (0 as $t)..(1000 as $t),
                    2 => proptest::prelude::any::<$t>(),
                ]
                .boxed()
            }
        };
    }

    integers!(u32s, u32);
    integers!(u64s, u64);
    integers!(usizes, usize);

    /// Any `f64`, NaN and the infinities included.
    pub(crate) fn f64s() -> BoxedStrategy<f64> {
        let edges = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1.1,
            1.0999,
            1.5,
            0.999_999,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
        ];
        prop_oneof![
            5 => proptest::sample::select(edges),
            2 => -10.0..10.0f64,
            2 => proptest::num::f64::ANY,
        ]
        .boxed()
    }

    /// Any `Duration`: the edges (zero, 1 ns, `u64::MAX` ns, `u64::MAX` s, `Duration::MAX`
    /// and their neighbours) and human scales, then whole nanoseconds, milliseconds and
    /// seconds from the integer edges, and any split of seconds and nanoseconds.
    pub(crate) fn durations() -> BoxedStrategy<Duration> {
        const YEAR: u64 = 365 * 86_400;
        let edges = vec![
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(2),
            Duration::from_micros(1),
            Duration::from_millis(1),
            Duration::from_millis(10),
            Duration::from_millis(250),
            Duration::from_secs(1),
            Duration::from_secs(60),
            Duration::from_secs(3600),
            Duration::from_secs(86_400),
            Duration::from_secs(100 * YEAR),
            Duration::from_millis(1 << 40),
            Duration::from_nanos(u64::MAX - 1),
            Duration::from_nanos(u64::MAX),
            Duration::from_nanos(u64::MAX) + Duration::from_nanos(1),
            Duration::from_secs(u64::MAX / 2),
            Duration::from_secs(u64::MAX),
            Duration::MAX - Duration::from_nanos(1),
            Duration::MAX,
        ];
        prop_oneof![
            5 => proptest::sample::select(edges),
            2 => u64s().prop_map(Duration::from_nanos),
            1 => u64s().prop_map(Duration::from_millis),
            1 => u64s().prop_map(Duration::from_secs),
            1 => (u64s(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        ]
        .boxed()
    }
}

/// Clock jumps of a case: a few, from the whole range (so across 2^32 slices, 2^40 ms,
/// 2^63 ns and the clock's end).
fn jumps() -> impl Strategy<Value = Vec<Duration>> {
    prop::collection::vec(any::durations(), 1..4)
}

const KIB: usize = 1024;

// ---------------------------------------------------------------------------------------
// keel-timex

#[test]
fn timex_manual_clock() {
    check(
        "ManualClock",
        256,
        (any::u64s(), jumps(), any::u64s()),
        |(start, jumps, to)| {
            use keel_timex::{Clock, ManualClock, Nanos};
            let clock = ManualClock::starting_at(Nanos::from_nanos(start));
            let mut last = clock.now();
            for d in jumps {
                let after = clock.advance(d);
                let want = last
                    .as_nanos()
                    .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                assert_eq!(after.as_nanos(), want, "advance saturates at Nanos::MAX");
                assert_eq!(clock.now(), after);
                last = after;
            }
            let after = clock.advance_to(Nanos::from_nanos(to));
            assert_eq!(
                after,
                last.max(Nanos::from_nanos(to)),
                "advance_to never goes back"
            );
            assert_eq!(clock.now_precise(), after);
        },
    );
}

// ---------------------------------------------------------------------------------------
// keel-rollingwindow

#[test]
fn rollingwindow_builder() {
    check(
        "RollingWindow::builder",
        256,
        (any::usizes(), any::durations(), any::u64s(), jumps()),
        |(size, interval, start, jumps)| {
            use keel_rollingwindow::{ConfigError, MAX_SIZE, RollingWindow, SumCount};
            use keel_timex::{Clock, ManualClock, Nanos};
            let clock = ManualClock::starting_at(Nanos::from_nanos(start));
            let built = RollingWindow::<SumCount<i64>, _>::builder(size, interval)
                .ignore_current_bucket(start % 2 == 0)
                .build_with_clock(clock.clone());
            let nanos = u64::try_from(interval.as_nanos()).ok();
            let expected = if size == 0 {
                Some(ConfigError::ZeroSize)
            } else if size > MAX_SIZE {
                Some(ConfigError::TooManyBuckets {
                    size,
                    max: MAX_SIZE,
                })
            } else if interval.is_zero() {
                Some(ConfigError::ZeroInterval)
            } else if nanos.and_then(|n| n.checked_mul(size as u64)).is_none() {
                Some(ConfigError::SpanOverflow { size, interval })
            } else {
                None
            };
            let window = match (built, expected) {
                (Err(got), Some(want)) => return assert_eq!(got, want),
                (Ok(w), None) => w,
                (got, want) => panic!("got {got:?}, the bounds say {want:?}"),
            };
            let mut added = 0;
            for d in jumps {
                window.add(1);
                window.add(2);
                added += 3;
                let seen = window.fold(0, |s, b| s + b.sum);
                assert!((0..=added).contains(&seen), "{seen} of {added}");
                clock.advance(d);
                let _ = window.snapshots();
                let _ = window.current_at(clock.now_precise());
            }
            window.clear();
            assert_eq!(window.fold(0, |s, b| s + b.sum), 0);
            assert_eq!(window.span(), window.interval() * size as u32);
        },
    );
}

// ---------------------------------------------------------------------------------------
// keel-breaker

#[derive(Debug, Clone)]
struct BreakerInputs {
    window: Duration,
    buckets: u32,
    k: f64,
    protection: u32,
    force_pass: Duration,
    live_refresh: Duration,
    slow_call: Option<Duration>,
    timeout: Option<Duration>,
    seed: u64,
    jumps: Vec<Duration>,
}

fn breaker_inputs() -> impl Strategy<Value = BreakerInputs> {
    (
        (any::durations(), any::u32s(), any::f64s(), any::u32s()),
        (
            any::durations(),
            any::durations(),
            prop::option::of(any::durations()),
        ),
        (prop::option::of(any::durations()), any::u64s(), jumps()),
    )
        .prop_map(
            |(
                (window, buckets, k, protection),
                (force_pass, live_refresh, slow_call),
                (timeout, seed, jumps),
            )| {
                BreakerInputs {
                    window,
                    buckets,
                    k,
                    protection,
                    force_pass,
                    live_refresh,
                    slow_call,
                    timeout,
                    seed,
                    jumps,
                }
            },
        )
}

#[test]
fn breaker_builder() {
    check("Breaker::builder", 256, breaker_inputs(), |i| {
        use keel_breaker::{Breaker, Builder, ConfigError};
        use keel_timex::ManualClock;
        let clock = ManualClock::new();
        #[cfg_attr(not(feature = "tokio"), allow(unused_mut))]
        let mut builder = Breaker::builder()
            .window(i.window)
            .buckets(i.buckets)
            .k(i.k)
            .protection(i.protection)
            .force_pass_interval(i.force_pass)
            .live_refresh(i.live_refresh)
            .seed(i.seed);
        if let Some(d) = i.slow_call {
            builder = builder.slow_call(d);
        }
        #[cfg(feature = "tokio")]
        if let Some(d) = i.timeout {
            builder = builder.timeout(d);
        }
        #[cfg(not(feature = "tokio"))]
        let _ = i.timeout;
        let within = i.k.is_finite()
            && i.k >= 1.1
            && (1..=Builder::MAX_BUCKETS).contains(&i.buckets)
            && i.window <= Builder::MAX_WINDOW
            && !(i.window / i.buckets.max(1)).is_zero()
            && !i.force_pass.is_zero()
            && i.slow_call.is_none_or(|d| !d.is_zero())
            && (cfg!(not(feature = "tokio")) || i.timeout.is_none_or(|d| !d.is_zero()));
        let breaker = match builder.build_with_clock(clock.clone()) {
            Ok(b) => {
                assert!(within, "accepted out of bounds");
                b
            }
            Err(e) => {
                assert!(!within, "refused within bounds: {e}");
                let justified = match e {
                    ConfigError::KOutOfRange { k } => !(k.is_finite() && k >= 1.1),
                    ConfigError::ZeroBuckets => i.buckets == 0,
                    ConfigError::TooManyBuckets { buckets, max } => buckets > max,
                    ConfigError::WindowTooLong { window, max } => window > max,
                    ConfigError::WindowTooShort { window, buckets } => (window / buckets).is_zero(),
                    ConfigError::ZeroForcePass => i.force_pass.is_zero(),
                    ConfigError::ZeroSlowCall => i.slow_call == Some(Duration::ZERO),
                    ConfigError::ZeroTimeout => i.timeout == Some(Duration::ZERO),
                    other => panic!("an unexpected error: {other:?}"),
                };
                assert!(justified, "{e:?}");
                return;
            }
        };
        for d in &i.jumps {
            for n in 0..24 {
                match breaker.allow() {
                    Ok(p) if n % 3 == 0 => p.success(),
                    Ok(p) => p.failure(),
                    Err(_) => {}
                }
            }
            let _ = breaker.call(|| Err::<(), _>("down"));
            clock.advance(*d);
            let s = breaker.snapshot();
            assert!(s.history.accepts <= s.history.total);
        }
        #[cfg(feature = "tokio")]
        {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a runtime");
            let ready = rt.block_on(breaker.call_async(async { Ok::<_, std::io::Error>(7) }));
            assert!(matches!(
                ready,
                Ok(7) | Err(keel_breaker::BreakerError::Rejected(_))
            ));
            // A timeout beyond 100 years is as good as never (tokio's paused clock does not
            // jump that far, and a real one would wait that long).
            if i.timeout
                .is_some_and(|t| t <= Duration::from_secs(100 * 365 * 86_400))
            {
                let stalled = std::future::pending::<Result<u8, std::io::Error>>();
                let ended = rt.block_on(breaker.call_async(stalled));
                assert!(ended.is_err(), "a stalled call ends: timed out or rejected");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// keel-shedder

#[test]
fn shedder_builder() {
    check(
        "Shedder::builder",
        256,
        (
            (any::durations(), any::u32s(), any::u32s()),
            (any::durations(), any::u32s(), any::durations()),
            (any::u32s(), jumps()),
        ),
        |((window, buckets, threshold), (cool_off, period, avg), (cpu, jumps))| {
            use keel_shedder::cpu::ManualCpu;
            use keel_shedder::{Builder, ConfigError, Shedder};
            use keel_timex::ManualClock;
            let clock = ManualClock::new();
            let source = ManualCpu::new(cpu);
            let built = Shedder::builder()
                .window(window)
                .buckets(buckets)
                .cpu_threshold(threshold)
                .cool_off(cool_off)
                .latency_sample_period(period)
                .in_flight_average_interval(avg)
                .cpu_source(source.clone())
                .build_with_clock(clock.clone());
            let within = (1..=999).contains(&threshold)
                && (1..=Builder::MAX_BUCKETS).contains(&buckets)
                && window <= Builder::MAX_WINDOW
                && !(window / buckets.max(1)).is_zero()
                && period >= 1;
            let shedder = match built {
                Ok(s) => {
                    assert!(within, "accepted out of bounds");
                    s
                }
                Err(e) => {
                    assert!(!within, "refused within bounds: {e}");
                    let justified = match e {
                        ConfigError::ThresholdOutOfRange { threshold } => {
                            !(1..=999).contains(&threshold)
                        }
                        ConfigError::ZeroBuckets => buckets == 0,
                        ConfigError::TooManyBuckets { buckets, max } => buckets > max,
                        ConfigError::WindowTooLong { window, max } => window > max,
                        ConfigError::WindowTooShort { window, buckets } => {
                            (window / buckets).is_zero()
                        }
                        ConfigError::ZeroSamplePeriod => period == 0,
                        other => panic!("an unexpected error: {other:?}"),
                    };
                    assert!(justified, "{e:?}");
                    return;
                }
            };
            for (n, d) in jumps.iter().enumerate() {
                let guards: Vec<_> = (0..16).filter_map(|_| shedder.allow().ok()).collect();
                clock.advance(*d);
                for (j, g) in guards.into_iter().enumerate() {
                    if j % 4 == 0 { g.fail() } else { g.pass() }
                }
                source.set(cpu.wrapping_add(n as u32 * 300));
            }
            let _ = shedder.snapshot();
        },
    );
}

// ---------------------------------------------------------------------------------------
// keel-limiter

#[test]
fn limiter_token_builder() {
    check(
        "TokenLimiter::builder",
        256,
        (
            (any::u32s(), any::durations(), any::u32s()),
            (prop::option::of(any::usizes()), any::u32s(), jumps()),
        ),
        |((tokens, period, burst), (max_keys, n, jumps))| {
            use keel_limiter::{ConfigError, Denied, Rate, TokenBuilder, TokenLimiter};
            use keel_timex::ManualClock;
            let clock = ManualClock::new();
            let rate = Rate::new(tokens, period);
            let mut builder = TokenLimiter::builder(rate, burst);
            if let Some(max) = max_keys {
                builder = builder.max_keys(max);
            }
            let interval = if tokens == 0 {
                0
            } else {
                period.as_nanos() / u128::from(tokens)
            };
            let interval = interval.min(u128::from(u64::MAX));
            let refill = interval * u128::from(burst);
            let within = tokens > 0
                && !period.is_zero()
                && interval >= 1
                && burst >= 1
                && refill <= TokenBuilder::MAX_REFILL.as_nanos()
                && max_keys != Some(0);
            let limiter = match builder.build_with_clock(clock.clone()) {
                Ok(l) => {
                    assert!(within, "accepted out of bounds");
                    l
                }
                Err(e) => {
                    assert!(!within, "refused within bounds: {e}");
                    let justified = match e {
                        ConfigError::ZeroRate => tokens == 0 || period.is_zero(),
                        ConfigError::RateTooHigh { .. } => interval == 0,
                        ConfigError::ZeroBurst => burst == 0,
                        ConfigError::BurstTooLong { .. } => {
                            refill > TokenBuilder::MAX_REFILL.as_nanos()
                        }
                        ConfigError::ZeroMaxKeys => max_keys == Some(0),
                        other => panic!("an unexpected error: {other:?}"),
                    };
                    assert!(justified, "{e:?}");
                    return;
                }
            };
            // At one instant a full bucket grants exactly `burst` single tokens.
            let probe = burst.min(64);
            let granted = (0..=probe).filter(|_| limiter.allow()).count() as u32;
            assert_eq!(
                granted,
                probe + u32::from(burst > 64),
                "a full bucket of {burst}"
            );
            for (k, d) in jumps.iter().enumerate() {
                clock.advance(*d);
                let key = format!("k{k}");
                let got = limiter.allow_key_n(&key, n);
                if n > burst {
                    assert_eq!(got, Err(Denied::NeverFits { n, burst }));
                } else if n <= 64 && max_keys.is_none_or(|m| m > k) {
                    // A new key's bucket is full.
                    assert_eq!(got, Ok(()), "{n} of a fresh {burst}");
                }
                let _ = limiter.allow_n(n);
                let _ = limiter.tokens();
                let _ = limiter.key_tokens(&key);
            }
            let _ = limiter.evict_idle();
            let _ = limiter.snapshot();
        },
    );
}

#[test]
fn limiter_period_builder() {
    check(
        "PeriodLimiter::builder",
        256,
        (
            (
                any::u32s(),
                any::durations(),
                prop::option::of((any::durations(), any::u32s())),
            ),
            (any::durations(), prop::option::of(any::usizes()), jumps()),
        ),
        |((quota, period, align), (unix_start, max_keys, jumps))| {
            use keel_limiter::{ConfigError, PeriodLimiter, PeriodState};
            use keel_timex::ManualClock;
            let clock = ManualClock::new();
            let mut builder = PeriodLimiter::builder(quota, period).unix_time_at_start(unix_start);
            if let Some((offset, side)) = align {
                builder = if side % 2 == 0 {
                    builder.align(offset)
                } else {
                    builder.align_west(offset)
                };
            }
            if let Some(max) = max_keys {
                builder = builder.max_keys(max);
            }
            let within = (1..=16_777_214).contains(&quota)
                && period >= Duration::from_millis(1)
                && max_keys != Some(0);
            let limiter = match builder.build_with_clock(clock.clone()) {
                Ok(l) => {
                    assert!(within, "accepted out of bounds");
                    l
                }
                Err(e) => {
                    assert!(!within, "refused within bounds: {e}");
                    let justified = match e {
                        ConfigError::ZeroQuota => quota == 0,
                        ConfigError::QuotaTooLarge { quota } => quota > 16_777_214,
                        ConfigError::ZeroPeriod => period < Duration::from_millis(1),
                        ConfigError::ZeroMaxKeys => max_keys == Some(0),
                        other => panic!("an unexpected error: {other:?}"),
                    };
                    assert!(justified, "{e:?}");
                    return;
                }
            };
            let longest = period.saturating_add(Duration::from_millis(32));
            for (k, d) in jumps.iter().enumerate() {
                clock.advance(*d);
                if max_keys.is_some_and(|m| m <= k) {
                    let _ = limiter.take(&format!("k{k}"));
                    continue;
                }
                // At one instant: the quota, then refusals, within one window.
                let key = format!("k{k}");
                let probe = quota.min(40);
                let mut allowed = 0;
                for _ in 0..=probe {
                    let got = limiter.take(&key).expect("no key cap hit");
                    assert!(
                        got.resets_in <= longest,
                        "{:?} > {longest:?}",
                        got.resets_in
                    );
                    if got.is_allowed() {
                        allowed += 1;
                    } else {
                        assert_eq!(got.state, PeriodState::OverQuota);
                    }
                }
                // A window opened at the clock's very last millisecond can end at once.
                if clock_left(&clock) > longest {
                    assert_eq!(
                        allowed,
                        probe.min(quota) + u32::from(probe < quota),
                        "quota {quota}"
                    );
                }
            }
            let _ = limiter.evict_idle();
            let _ = limiter.snapshot();
        },
    );
}

/// How long the manual clock can still run.
fn clock_left(clock: &keel_timex::ManualClock) -> Duration {
    use keel_timex::Clock;
    keel_timex::Nanos::MAX - clock.now()
}

#[test]
fn limiter_redis_store_options() {
    // A port nothing listens on: every call fails at once and the failure policy decides.
    check(
        "RedisStore options",
        32,
        (
            (
                any::durations(),
                any::durations(),
                any::durations(),
                any::usizes(),
            ),
            (1u32..4, any::u32s()),
        ),
        |((timeout, connect_timeout, probe, max_idle), (policy, burst))| {
            use keel_limiter::redis::RedisStore;
            use keel_limiter::{FailurePolicy, Rate, TokenLimiter};
            let store = RedisStore::open("redis://127.0.0.1:1")
                .expect("a valid URL")
                .timeout(timeout)
                .connect_timeout(connect_timeout)
                .probe_interval(probe)
                .max_idle(max_idle);
            let policy = match policy {
                1 => FailurePolicy::Rescue,
                2 => FailurePolicy::FailOpen,
                _ => FailurePolicy::FailClosed,
            };
            let burst = burst.clamp(1, 1000);
            let limiter = TokenLimiter::builder(Rate::per_second(100), burst)
                .redis(store, "config-edges")
                .failure_policy(policy)
                .build()
                .expect("valid");
            let _ = limiter.allow();
            let _ = limiter.allow_key("k");
        },
    );
}

// ---------------------------------------------------------------------------------------
// keel-mapreduce

#[test]
fn mapreduce_options() {
    check(
        "mapreduce Options",
        128,
        (
            any::usizes(),
            prop::option::of(any::durations()),
            0u64..40,
            any::durations(),
        ),
        |(workers, timeout, items, wait)| {
            use keel_mapreduce::{CancelToken, MAX_WORKERS, MapReduceError, Options, thread};
            let mut opts = Options::new().workers(workers);
            assert_eq!(opts.worker_count(), workers.clamp(1, MAX_WORKERS));
            if let Some(t) = timeout {
                opts = opts.timeout(t);
            }
            // A timeout that cannot pass within the case must not stop the call.
            let may_expire = timeout.is_some_and(|t| t < Duration::from_secs(60));
            let want: u64 = (1..=items).map(|i| i * i).sum();
            let got: Result<u64, MapReduceError<()>> = thread::map_reduce(
                |source| {
                    for i in 1..=items {
                        if !source.send(i) {
                            return;
                        }
                    }
                },
                |i: u64, writer, _cancel| writer.write(i * i),
                |outputs, writer, _cancel| writer.write(outputs.sum()),
                opts.clone(),
            );
            match got {
                Ok(sum) => assert_eq!(sum, want),
                Err(MapReduceError::DeadlineExceeded) if may_expire => {}
                Err(e) => panic!("{e:?}"),
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime");
            let spread = rt.block_on(keel_mapreduce::tokio::map_reduce(
                move |source| async move {
                    for i in 1..=items {
                        if !source.send(i).await {
                            return;
                        }
                    }
                },
                |i, writer, _cancel: keel_mapreduce::Cancel<()>| async move {
                    writer.write(i * i).await
                },
                |mut outputs, writer, _cancel| async move {
                    let mut sum = 0;
                    while let Some(v) = outputs.recv().await {
                        sum += v;
                    }
                    writer.write(sum).await;
                },
                opts,
            ));
            match spread {
                Ok(sum) => assert_eq!(sum, want),
                Err(MapReduceError::DeadlineExceeded) if may_expire => {}
                Err(e) => panic!("{e:?}"),
            }
            let token = CancelToken::new();
            token.cancel();
            assert!(token.wait_timeout(wait));
        },
    );
}

// ---------------------------------------------------------------------------------------
// keel-timingwheel

#[derive(Debug, Clone)]
struct WheelInputs {
    tick: Duration,
    slots: usize,
    levels: usize,
    capacity: usize,
    delays: Vec<Duration>,
    jumps: Vec<Duration>,
}

fn wheel_inputs() -> impl Strategy<Value = WheelInputs> {
    (
        any::durations(),
        prop_oneof![3 => (1u32..=6).prop_map(|b| 1usize << b), 1 => any::usizes()],
        prop_oneof![3 => 1usize..=12, 1 => any::usizes()],
        any::usizes(),
        prop::collection::vec(any::durations(), 1..6),
        jumps(),
    )
        .prop_map(
            |(tick, slots, levels, capacity, delays, jumps)| WheelInputs {
                tick,
                slots,
                levels,
                capacity,
                delays,
                jumps,
            },
        )
}

#[test]
fn timingwheel_builder() {
    check("timingwheel Builder", 256, wheel_inputs(), |i| {
        use keel_timex::{Clock, ManualClock, Nanos};
        use keel_timingwheel::{Builder, ConfigError, TimerError};
        let clock = ManualClock::new();
        let built = Builder::new(i.tick)
            .slots_per_level(i.slots)
            .levels(i.levels)
            .capacity(i.capacity)
            .clock(clock.clone())
            .build::<u64, u64>();
        let bits = i.slots.trailing_zeros() as usize;
        let geometry_ok = (2..=64).contains(&i.slots) && i.slots.is_power_of_two();
        let levels_ok = i.levels >= 1
            && bits.checked_mul(i.levels).is_some_and(|b| b <= 60)
            && !(i.slots == 2 && i.levels == 1);
        let within =
            !i.tick.is_zero() && geometry_ok && levels_ok && i.capacity <= Builder::MAX_CAPACITY;
        let wheel = match built {
            Ok(w) => {
                assert!(within, "accepted out of bounds");
                w
            }
            Err(e) => {
                assert!(!within, "refused within bounds: {e}");
                let justified = match e {
                    ConfigError::ZeroTick => i.tick.is_zero(),
                    ConfigError::SlotsPerLevel(n) => n == i.slots && !geometry_ok,
                    ConfigError::Levels { .. } => !levels_ok,
                    ConfigError::Capacity(n) => n > Builder::MAX_CAPACITY,
                    other => panic!("an unexpected error: {other:?}"),
                };
                assert!(justified, "{e:?}");
                return;
            }
        };
        let max = wheel.max_delay();
        let mut pending = std::collections::HashMap::new();
        for (k, d) in i.delays.iter().enumerate() {
            let k = k as u64;
            let before = clock.now();
            match wheel.set(k, k, *d) {
                Ok(_) => {
                    assert!(*d <= max);
                    pending.insert(
                        k,
                        before
                            .as_nanos()
                            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                    );
                }
                Err(TimerError::DelayTooLong { max: reported }) => {
                    assert!(*d > max);
                    assert_eq!(reported, max);
                    // Clamp and retry: the promise.
                    assert_eq!(wheel.set(k, k, reported), Ok(None));
                    pending.insert(
                        k,
                        before
                            .as_nanos()
                            .saturating_add(u64::try_from(reported.as_nanos()).unwrap_or(u64::MAX)),
                    );
                }
                Err(e) => panic!("{e:?}"),
            }
            assert_eq!(wheel.move_timer(&k, *d.min(&max)), Ok(true));
            pending.insert(
                k,
                before
                    .as_nanos()
                    .saturating_add(u64::try_from(d.min(&max).as_nanos()).unwrap_or(u64::MAX)),
            );
        }
        for d in &i.jumps {
            clock.advance(*d);
            let now = clock.now();
            for (k, _) in wheel.advance() {
                let due = pending.remove(&k).expect("a pending key fired once");
                assert!(
                    now.as_nanos() >= due || now == Nanos::MAX,
                    "key {k} fired early"
                );
            }
            let _ = wheel.next_deadline();
            let _ = wheel.set(100, 100, max);
            pending.insert(
                100,
                now.as_nanos()
                    .saturating_add(u64::try_from(max.as_nanos()).unwrap_or(u64::MAX)),
            );
        }
        assert_eq!(wheel.len(), pending.len());
        let _ = wheel.drain();
        // The stream driver with the same settings (built and given a timer; its polling is
        // the thread driver's loop in an async form).
        #[cfg(feature = "tokio")]
        {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime");
            let _entered = rt.enter();
            let (streamed, expirations) = Builder::new(i.tick)
                .slots_per_level(i.slots)
                .levels(i.levels)
                .clock(clock.clone())
                .stream::<u64, u64>()
                .expect("the same settings");
            let _ = streamed.set(1, 1, max);
            streamed.stop();
            drop(expirations);
        }
        // The thread driver with the same settings: starts, takes a timer, stops.
        let spawned = Builder::new(i.tick)
            .slots_per_level(i.slots)
            .levels(i.levels)
            .capacity(i.capacity.min(64 * KIB))
            .spawn(|_: u64, _: u64| {})
            .expect("the same settings");
        let _ = spawned.set(1, 1, max);
        spawned.stop();
    });
}

// ---------------------------------------------------------------------------------------
// keel-syncx

#[test]
fn syncx_limit_pool_resource() {
    check(
        "syncx Limit, Pool, ImmutableResource",
        256,
        (
            any::usizes(),
            any::usizes(),
            any::durations(),
            any::durations(),
            jumps(),
        ),
        |(capacity, max_size, max_age, retry, jumps)| {
            use keel_syncx::limit::{ConfigError as LimitError, Limit};
            use keel_syncx::pool::{ConfigError as PoolError, Pool};
            use keel_syncx::resource::ImmutableResource;
            use keel_timex::ManualClock;
            use std::sync::atomic::{AtomicU32, Ordering};

            match Limit::new(capacity) {
                Ok(limit) => {
                    assert!((1..=Limit::MAX_CAPACITY).contains(&capacity));
                    let held: Vec<_> = (0..capacity.min(8))
                        .filter_map(|_| limit.try_acquire())
                        .collect();
                    assert_eq!(held.len(), capacity.min(8));
                    if capacity > 8 {
                        // A free permit is handed over at once, whatever the timeout.
                        assert!(limit.acquire_timeout(max_age).is_ok());
                    } else {
                        assert!(limit.try_acquire().is_none());
                        assert!(limit.acquire_timeout(Duration::ZERO).is_err());
                    }
                    #[cfg(feature = "tokio")]
                    if capacity <= 8 && max_age <= Duration::from_secs(100 * 365 * 86_400) {
                        // Async, every permit held: the timeout ends it (tokio's paused clock
                        // jumps to it). A longer one is as good as never: tokio's paused clock
                        // does not jump that far (its timer wheel spans about 2 years at a
                        // time), and a real one would wait that long.
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_time()
                            .start_paused(true)
                            .build()
                            .expect("a runtime");
                        assert!(rt.block_on(limit.acquire_timeout_async(max_age)).is_err());
                    }
                    drop(held);
                    assert!(limit.available() >= capacity.min(8));
                }
                Err(LimitError::ZeroCapacity) => assert_eq!(capacity, 0),
                Err(LimitError::CapacityTooLarge { capacity: c }) => {
                    assert!(c > Limit::MAX_CAPACITY)
                }
                Err(other) => panic!("{other:?}"),
            }

            let clock = ManualClock::new();
            match Pool::builder(max_size, || Ok::<_, std::io::Error>(vec![0u8; 8]))
                .max_age(max_age)
                .clock(clock.clone())
                .build()
            {
                Ok(pool) => {
                    assert!(max_size >= 1 && !max_age.is_zero());
                    for d in &jumps {
                        let a = pool.get().expect("room for one");
                        let b = pool.try_get().expect("no error");
                        drop(a);
                        drop(b);
                        clock.advance(*d);
                        // One is idle (or expired and replaced): no wait, whatever the timeout.
                        let c = pool.get_timeout(max_age).expect("idle or room");
                        drop(c);
                    }
                    assert!(pool.len() <= max_size);
                }
                Err(PoolError::ZeroMaxSize) => assert_eq!(max_size, 0),
                Err(PoolError::ZeroMaxAge) => assert!(max_age.is_zero()),
                Err(other) => panic!("{other:?}"),
            }

            let fetches = std::sync::Arc::new(AtomicU32::new(0));
            let counted = fetches.clone();
            let clock = ManualClock::new();
            let resource = ImmutableResource::new(move || {
                if counted.fetch_add(1, Ordering::Relaxed) == 0 {
                    Err("first fetch fails")
                } else {
                    Ok(42u32)
                }
            })
            .retry_interval(retry)
            .clock(clock.clone());
            assert!(resource.get().is_err());
            for d in &jumps {
                clock.advance(*d);
                let _ = resource.get();
            }
            let waited: u128 = jumps.iter().map(|d| d.as_nanos()).sum();
            if waited >= retry.as_nanos() && waited < u128::from(u64::MAX) {
                assert_eq!(
                    resource.get().map(|v| *v),
                    Ok(42),
                    "retried after {retry:?}"
                );
            }
        },
    );
}

// ---------------------------------------------------------------------------------------
// keel-collection

#[derive(Debug, Clone)]
struct CacheInputs {
    ttl: Duration,
    capacity: Option<usize>,
    jitter: f64,
    negative_ttl: Option<Duration>,
    shards: Option<usize>,
    expiry_tick: Option<Duration>,
    report_interval: Duration,
    seed: u64,
    set_ttl: Duration,
    jumps: Vec<Duration>,
}

fn cache_inputs() -> impl Strategy<Value = CacheInputs> {
    (
        (
            any::durations(),
            prop::option::of(any::usizes()),
            any::f64s(),
        ),
        (
            prop::option::of(any::durations()),
            prop::option::of(
                prop_oneof![2 => (0u32..=11).prop_map(|b| 1usize << b), 1 => any::usizes()],
            ),
            prop::option::of(any::durations()),
        ),
        (any::durations(), any::u64s(), any::durations(), jumps()),
    )
        .prop_map(
            |(
                (ttl, capacity, jitter),
                (negative_ttl, shards, expiry_tick),
                (report_interval, seed, set_ttl, jumps),
            )| {
                CacheInputs {
                    ttl,
                    capacity,
                    jitter,
                    negative_ttl,
                    shards,
                    expiry_tick,
                    report_interval,
                    seed,
                    set_ttl,
                    jumps,
                }
            },
        )
}

#[test]
fn collection_cache_builder() {
    check("Cache::builder", 256, cache_inputs(), |i| {
        use keel_collection::cache::{Cache, ConfigError, MAX_SHARDS, TakeError};
        use keel_timex::ManualClock;
        let clock = ManualClock::new();
        let mut b = Cache::<u64, u64>::builder(i.ttl)
            .jitter(i.jitter)
            .report_interval(i.report_interval)
            .seed(i.seed)
            .clock(clock.clone());
        if let Some(c) = i.capacity {
            b = b.capacity(c);
        }
        if let Some(d) = i.negative_ttl {
            b = b.negative_ttl(d);
        }
        if let Some(n) = i.shards {
            b = b.shards(n);
        }
        if let Some(d) = i.expiry_tick {
            b = b.expiry_tick(d);
        }
        let shards_ok = i
            .shards
            .is_none_or(|n| n.is_power_of_two() && n <= MAX_SHARDS);
        let per_shard = (1usize << 31) - 1;
        // Whether a capacity fits its shards depends on the default shard count (from the
        // CPUs) when none is given: checked below through the error instead.
        let within_except_fit = !i.ttl.is_zero()
            && i.negative_ttl.is_none_or(|d| !d.is_zero())
            && i.capacity != Some(0)
            && (0.0..1.0).contains(&i.jitter)
            && i.expiry_tick.is_none_or(|d| !d.is_zero())
            && !i.report_interval.is_zero()
            && shards_ok;
        let cache = match b.build() {
            Ok(c) => {
                assert!(within_except_fit, "accepted out of bounds");
                c
            }
            Err(e) => {
                let justified = match e {
                    ConfigError::ZeroTtl => i.ttl.is_zero(),
                    ConfigError::ZeroNegativeTtl => i.negative_ttl == Some(Duration::ZERO),
                    ConfigError::ZeroCapacity => i.capacity == Some(0),
                    ConfigError::Jitter(j) => !(0.0..1.0).contains(&j),
                    ConfigError::Shards(n) => !(n.is_power_of_two() && n <= MAX_SHARDS),
                    ConfigError::ZeroExpiryTick => i.expiry_tick == Some(Duration::ZERO),
                    ConfigError::ZeroReportInterval => i.report_interval.is_zero(),
                    ConfigError::CapacityTooLarge(c) => c > per_shard,
                    other => panic!("an unexpected error: {other:?}"),
                };
                assert!(justified, "{e:?}");
                if within_except_fit {
                    // Only the fit can fail, and only for more than a shard holds.
                    assert!(
                        matches!(e, ConfigError::CapacityTooLarge(c) if c > per_shard),
                        "{e}"
                    );
                }
                return;
            }
        };
        for (n, d) in i.jumps.iter().enumerate() {
            let k = n as u64;
            cache.set(k, k + 1);
            cache.set_with_ttl(k + 100, 1, i.set_ttl);
            let loaded = cache.take(k + 200, || Ok::<_, std::io::Error>(7));
            assert_eq!(loaded.ok(), Some(7));
            let missing = cache.take_optional(k + 300, || Ok::<_, std::io::Error>(None));
            assert!(matches!(missing, Ok(None)));
            let _ = cache
                .take(k + 300, || Ok::<_, std::io::Error>(8))
                .or_else(|e| match e {
                    TakeError::NotFound => Ok(0),
                    other => Err(other),
                });
            let got = cache.get(&k);
            assert!(got.is_none() || got == Some(k + 1));
            clock.advance(*d);
            cache.purge_expired();
            let _ = cache.snapshot();
        }
        if i.capacity.is_some_and(|c| c <= 4) && i.shards == Some(1) {
            assert!(
                cache.len() <= i.capacity.unwrap_or(0),
                "a bounded shard evicts"
            );
        }
    });
}

#[test]
fn collection_ring_and_fifo() {
    check(
        "Ring::new, Fifo::with_capacity",
        256,
        (any::usizes(), any::usizes(), 0usize..300),
        |(ring_capacity, fifo_capacity, adds)| {
            use keel_collection::{Fifo, Ring, ZeroCapacity};
            match Ring::new(ring_capacity) {
                Ok(ring) => {
                    for v in 0..adds {
                        ring.add(v);
                    }
                    let kept = ring.take();
                    let want: Vec<usize> = (adds - adds.min(ring_capacity)..adds).collect();
                    assert_eq!(kept, want);
                }
                Err(ZeroCapacity) => assert_eq!(ring_capacity, 0),
            }
            match Fifo::with_capacity(fifo_capacity) {
                Ok(queue) => {
                    for v in 0..adds {
                        queue.put(v);
                    }
                    assert_eq!(queue.len(), adds);
                    assert_eq!(queue.take(), (adds > 0).then_some(0));
                }
                Err(ZeroCapacity) => assert_eq!(fifo_capacity, 0),
            }
        },
    );
}

// ---------------------------------------------------------------------------------------
// The harness itself: a case that breaks a bound fails instead of passing.

#[test]
fn the_harness_catches_panics_hangs_and_big_allocations() {
    let _one_at_a_time = serial();
    let panicked = run_case("panics", &1, || panic!("on purpose"));
    assert!(format!("{panicked:?}").contains("on purpose"));
    let big = run_case("allocates", &2, || {
        let v = vec![0u8; MAX_ALLOCATION + 1];
        std::hint::black_box(&v);
    });
    assert!(format!("{big:?}").contains("allocated"), "{big:?}");
    let grown = run_case("grows", &3, || {
        let parts: Vec<Vec<u8>> = (0..5).map(|_| vec![1u8; MAX_LIVE_GROWTH / 4]).collect();
        std::hint::black_box(&parts);
    });
    assert!(format!("{grown:?}").contains("grew the heap"), "{grown:?}");
    assert!(run_case("fine", &4, || {}).is_ok());
}
