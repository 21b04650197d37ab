//! [`SystemCpu`]: the real CPU signal, sampled by one lazily started thread per mode.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use keel_timex::{Clock, MonotonicClock, Nanos};

use super::sampler::Sampler;
use super::{CpuMeter, CpuMode, CpuSource, MeterKind};

/// How often the shared samplers read the counters (go-zero's period).
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// Published in place of a usage when there is no signal.
const NONE: u32 = u32::MAX;

/// Intervals a sampler thread keeps running with no handle alive, so code that creates and
/// drops handles in a loop does not start a thread each time.
const IDLE_GRACE_TICKS: u32 = 4;

/// The process-wide sampler of each mode (indexed by [`CpuMode::index`]). A slot holds a
/// `Weak`: the handles and the running thread keep the sampler alive, and the thread clears
/// the slot, under this lock, when it exits.
static SHARED: Mutex<[Weak<Inner>; 4]> = Mutex::new([const { Weak::new() }; 4]);

/// What every `usage()` reads, on one cache line of its own so the handles' reference
/// counts (touched by clone and drop) never evict it.
#[derive(Debug)]
struct Hot {
    /// Smoothed millis, or [`NONE`].
    usage: AtomicU32,
    /// False until a sampler thread was started (or there is none to start).
    started: AtomicBool,
}

#[derive(Debug)]
struct Inner {
    hot: CachePadded<Hot>,
    /// `f64` bits of the meter's limit, for display.
    limit_bits: AtomicU64,
    kind: Option<MeterKind>,
    /// `None` when no meter could be built: there is never a signal.
    state: Option<parking_lot::Mutex<State>>,
    /// `None` for a manual sampler, which never starts a thread.
    interval: Option<Duration>,
    /// The slot of [`SHARED`] this sampler sits in, if it is a process-wide one.
    shared_slot: Option<usize>,
    /// Serializes thread start-up, so two first `usage()` calls start one thread.
    start: parking_lot::Mutex<()>,
}

#[derive(Debug)]
struct State {
    sampler: Sampler,
    /// Set when a sample panicked: the meter's state is unknown, so it is never used again.
    poisoned: bool,
}

/// The real CPU signal: a [`CpuSource`] whose `usage()` is one atomic load of a value that
/// a background thread refreshes every 250 ms.
///
/// The usage is relative to what the process may use, in millis: in a container, 1000
/// means the whole CPU quota (or the whole cpuset when there is no quota); on a bare host,
/// all cores. It is an exponential moving average (β = 0.95 per sample, about the last 5 s),
/// seeded with the first sample.
///
/// # Threads
///
/// [`SystemCpu::new`] returns a handle to the one sampler of its mode in the process;
/// clones and later calls share it. It reads a few files at construction to pick the
/// meter and starts no thread: the thread starts with the first `usage()` call, so a
/// process that never asks spends nothing. It exits about a second after the last handle
/// is dropped; the next `new` builds a fresh sampler.
///
/// `usage()` is `None` (no signal) when no meter could be built (not Linux, no readable
/// `/proc` or cgroup files), until the first two samples (about 250 ms after the first
/// call), after a failed read (until the next good sample), forever after a sample
/// panicked, and if the OS refused to start the thread.
///
/// ```
/// use keel_shedder::cpu::{CpuMode, CpuSource, SystemCpu};
///
/// let cpu = SystemCpu::new(CpuMode::Auto);
/// assert!(!cpu.is_started()); // nothing runs until the first question
/// if let Some(millis) = cpu.usage() {
///     assert!(millis <= 1000);
/// }
/// if let (Some(kind), Some(cpus)) = (cpu.kind(), cpu.limit_cpus()) {
///     println!("{kind} meter, 1000 millis = {cpus} CPUs");
/// }
/// ```
#[derive(Clone)]
pub struct SystemCpu {
    inner: Arc<Inner>,
}

impl SystemCpu {
    /// A handle to the process-wide sampler for `mode`; see the [type docs](SystemCpu).
    pub fn new(mode: CpuMode) -> SystemCpu {
        let mut slots = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut slots[mode.index()];
        if let Some(inner) = slot.upgrade() {
            return SystemCpu { inner };
        }
        // Detection only parses kernel files, but a panic there must not take the caller
        // down: it means no signal, like any other detection failure.
        let meter = catch_unwind(|| mode.detect()).ok().and_then(Result::ok);
        let inner = Arc::new(Inner::new(meter, Some(SAMPLE_INTERVAL), Some(mode.index())));
        *slot = Arc::downgrade(&inner);
        SystemCpu { inner }
    }

    /// A private sampler over `meter`, sampling every `interval` (at least 1 ms) on its own
    /// thread, started by the first `usage()` and stopped after the last handle is dropped.
    /// For a meter of your own, or to sample at another rate.
    pub fn with_meter(meter: Box<dyn CpuMeter>, interval: Duration) -> SystemCpu {
        // A zero interval would spin a core.
        let interval = interval.max(Duration::from_millis(1));
        SystemCpu {
            inner: Arc::new(Inner::new(Some(meter), Some(interval), None)),
        }
    }

    /// A private sampler over `meter` that never starts a thread: it moves only on
    /// [`sample_now`](Self::sample_now) / [`sample_at`](Self::sample_at). For tests and
    /// for callers with their own timer.
    ///
    /// ```
    /// use keel_shedder::cpu::{CpuError, CpuMeter, CpuSource, SystemCpu};
    /// use keel_timex::Nanos;
    ///
    /// /// Reports 600 millis on every sample.
    /// struct Steady;
    /// impl CpuMeter for Steady {
    ///     fn sample(&mut self, _: Nanos) -> Result<Option<f64>, CpuError> {
    ///         Ok(Some(600.0))
    ///     }
    ///     fn limit_cpus(&self) -> f64 {
    ///         1.0
    ///     }
    /// }
    ///
    /// let cpu = SystemCpu::manual(Box::new(Steady));
    /// assert_eq!(cpu.usage(), None);
    /// assert_eq!(cpu.sample_now(), Some(600));
    /// assert_eq!(cpu.usage(), Some(600));
    /// assert!(!cpu.is_started());
    /// ```
    pub fn manual(meter: Box<dyn CpuMeter>) -> SystemCpu {
        SystemCpu {
            inner: Arc::new(Inner::new(Some(meter), None, None)),
        }
    }

    /// Takes one sample now (on the monotonic clock the sampler threads use) and returns the
    /// smoothed usage after it. On a threaded sampler this adds a sample between the
    /// thread's own.
    pub fn sample_now(&self) -> Option<u32> {
        self.sample_at(MonotonicClock::new().now())
    }

    /// Takes one sample as of `now`, for a [`manual`](Self::manual) sampler driven by a
    /// [`ManualClock`](keel_timex::ManualClock). Times must not go backwards between
    /// samples (the meter then reports nothing for that sample).
    pub fn sample_at(&self, now: Nanos) -> Option<u32> {
        self.inner.tick(now);
        decode(self.inner.hot.usage.load(Ordering::Relaxed))
    }

    /// How many CPUs 1000 millis stands for (the quota or cpuset, or the host's cores);
    /// `None` without a meter. Refreshed every minute while sampling.
    pub fn limit_cpus(&self) -> Option<f64> {
        self.inner.state.as_ref()?;
        Some(f64::from_bits(
            self.inner.limit_bits.load(Ordering::Relaxed),
        ))
    }

    /// Which meter was picked; `None` when none could be built (no signal).
    pub fn kind(&self) -> Option<MeterKind> {
        self.inner.kind
    }

    /// Whether a first `usage()` call has started the sampler thread. Always `false` for a
    /// [`manual`](Self::manual) sampler and when no meter could be built (there is nothing
    /// to start).
    pub fn is_started(&self) -> bool {
        self.inner.state.is_some()
            && self.inner.interval.is_some()
            && self.inner.hot.started.load(Ordering::Acquire)
    }

    #[cold]
    #[inline(never)]
    fn start(&self) {
        let inner = &self.inner;
        let _guard = inner.start.lock();
        if inner.hot.started.load(Ordering::Acquire) {
            return;
        }
        if let Some(interval) = inner.interval {
            // If the OS refuses the thread there is no signal; `started` is still set so
            // that `usage()` does not retry (and pay for a failed spawn) on every call.
            let _ = spawn(Arc::clone(inner), interval);
        }
        inner.hot.started.store(true, Ordering::Release);
    }
}

impl CpuSource for SystemCpu {
    #[inline]
    fn usage(&self) -> Option<u32> {
        if !self.inner.hot.started.load(Ordering::Acquire) {
            self.start();
        }
        decode(self.inner.hot.usage.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for SystemCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemCpu")
            .field("kind", &self.kind())
            .field("limit_cpus", &self.limit_cpus())
            .field(
                "usage",
                &decode(self.inner.hot.usage.load(Ordering::Relaxed)),
            )
            .field("started", &self.is_started())
            .finish()
    }
}

impl Inner {
    fn new(
        meter: Option<Box<dyn CpuMeter>>,
        interval: Option<Duration>,
        slot: Option<usize>,
    ) -> Inner {
        let limit = meter.as_ref().map_or(0.0, |m| m.limit_cpus());
        Inner {
            hot: CachePadded::new(Hot {
                usage: AtomicU32::new(NONE),
                // Nothing to start without a meter or without an interval.
                started: AtomicBool::new(meter.is_none() || interval.is_none()),
            }),
            limit_bits: AtomicU64::new(limit.to_bits()),
            kind: meter.as_ref().map(|m| m.kind()),
            state: meter.map(|m| {
                parking_lot::Mutex::new(State {
                    sampler: Sampler::new(m),
                    poisoned: false,
                })
            }),
            interval,
            shared_slot: slot,
            start: parking_lot::Mutex::new(()),
        }
    }

    /// One sample, published. Returns false once sampling is over for good (no meter, or a
    /// sample panicked).
    fn tick(&self, now: Nanos) -> bool {
        let Some(state) = &self.state else {
            return false;
        };
        let mut state = state.lock();
        if state.poisoned {
            return false;
        }
        let sampler = &mut state.sampler;
        let stepped = catch_unwind(AssertUnwindSafe(|| {
            let usage = sampler.step(now);
            (usage, sampler.limit_cpus())
        }));
        match stepped {
            Ok((usage, limit)) => {
                self.hot
                    .usage
                    .store(usage.unwrap_or(NONE), Ordering::Relaxed);
                self.limit_bits.store(limit.to_bits(), Ordering::Relaxed);
                true
            }
            Err(_) => {
                state.poisoned = true;
                self.hot.usage.store(NONE, Ordering::Relaxed);
                false
            }
        }
    }
}

fn decode(raw: u32) -> Option<u32> {
    (raw != NONE).then_some(raw)
}

/// Starts the sampler thread. It holds one strong reference, so a strong count of 1 means
/// no handle is left.
fn spawn(inner: Arc<Inner>, interval: Duration) -> std::io::Result<()> {
    thread::Builder::new()
        .name("keel-cpu-sampler".into())
        .spawn(move || {
            let clock = MonotonicClock::new();
            let mut idle_ticks = 0;
            // The first sample only primes the meter; the first value comes one interval on.
            let mut sampling = inner.tick(clock.now());
            loop {
                thread::sleep(interval);
                if sampling {
                    sampling = inner.tick(clock.now());
                }
                if Arc::strong_count(&inner) > 1 {
                    idle_ticks = 0;
                    continue;
                }
                idle_ticks += 1;
                if idle_ticks < IDLE_GRACE_TICKS {
                    continue;
                }
                let Some(slot) = inner.shared_slot else {
                    // A private sampler has no registry entry, so no handle can reappear.
                    return;
                };
                // Decide under the registry lock: `new` upgrades under the same lock, so no
                // handle can appear between this check and the slot being cleared.
                let mut slots = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
                if Arc::strong_count(&inner) == 1 {
                    slots[slot] = Weak::new();
                    return;
                }
                idle_ticks = 0;
            }
        })
        .map(drop)
}
