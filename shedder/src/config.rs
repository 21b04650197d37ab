//! [`Builder`]: validated configuration with go-zero's defaults.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_timex::{Clock, CoarseClock};

use crate::cpu::CpuSource;
use crate::cpu_choice::CpuChoice;
use crate::{ConfigError, Shedder};

/// go-zero's statistics window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5);
/// go-zero's bucket count (100 ms buckets).
pub const DEFAULT_BUCKETS: u32 = 50;
/// go-zero's CPU threshold: 900 millis, 90% of the CPUs (or quota) the process may use.
pub const DEFAULT_CPU_THRESHOLD: u32 = 900;
/// go-zero's cool-off: how long after the CPU was last above the threshold a shedder that
/// has dropped keeps checking the in-flight limit.
pub const DEFAULT_COOL_OFF: Duration = Duration::from_secs(1);
/// Time one request in this many (on average, per thread): see
/// [`Builder::latency_sample_period`].
pub const DEFAULT_LATENCY_SAMPLE_PERIOD: u32 = 8;
/// At most one step of the in-flight average per this interval: see
/// [`Builder::in_flight_average_interval`].
pub const DEFAULT_IN_FLIGHT_AVERAGE_INTERVAL: Duration = Duration::from_millis(1);

/// What a shedder does when its [`CpuSource`] has no signal (an unsupported platform,
/// unreadable cgroup and `/proc` files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuFallback {
    /// Never shed (go-zero: its CPU reading is 0 there). The default: without a CPU signal
    /// a burst of slow requests cannot be told apart from an overloaded server.
    #[default]
    NeverShed,
    /// Treat the CPU as always at the threshold: shed whenever the in-flight count exceeds
    /// what the window shows the service sustains (max pass × min latency). For services
    /// whose bottleneck is not their own CPU.
    InFlightOnly,
}

/// Configures a [`Shedder`]; every default is go-zero's.
///
/// Bounds, checked by `build` (each refusal is a [`ConfigError`] naming the bound):
///
/// | setting | accepted |
/// |---|---|
/// | [`window`](Builder::window) | at least 1 ns per bucket, at most [`MAX_WINDOW`](Builder::MAX_WINDOW) (2^64 − 1 ns, 584 years) |
/// | [`buckets`](Builder::buckets) | `1..=`[`MAX_BUCKETS`](Builder::MAX_BUCKETS) (4096) |
/// | [`cpu_threshold`](Builder::cpu_threshold) | `1..=999` millis |
/// | [`latency_sample_period`](Builder::latency_sample_period) | `1..=u32::MAX` |
/// | [`cool_off`](Builder::cool_off), [`in_flight_average_interval`](Builder::in_flight_average_interval) | any; beyond 584 years counts as 584 years |
///
/// ```
/// use keel_shedder::Shedder;
/// use std::time::Duration;
///
/// let shedder = Shedder::builder()
///     .name("api")
///     .window(Duration::from_secs(5))
///     .buckets(50)
///     .cpu_threshold(900)
///     .build()?;
/// assert_eq!(shedder.name(), "api");
///
/// assert!(Shedder::builder().cpu_threshold(1000).build().is_err()); // would never shed
/// # Ok::<(), keel_shedder::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct Builder {
    pub(crate) name: Option<String>,
    pub(crate) window: Duration,
    pub(crate) buckets: u32,
    pub(crate) cpu_threshold: u32,
    pub(crate) cool_off: Duration,
    pub(crate) sample_period: u32,
    pub(crate) avg_interval: Duration,
    pub(crate) cpu: Option<CpuChoice>,
    pub(crate) fallback: CpuFallback,
    pub(crate) shadow: bool,
    pub(crate) enabled: bool,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("window", &self.window)
            .field("buckets", &self.buckets)
            .field("cpu_threshold", &self.cpu_threshold)
            .field("cool_off", &self.cool_off)
            .field("sample_period", &self.sample_period)
            .field("avg_interval", &self.avg_interval)
            .field("cpu", &self.cpu)
            .field("fallback", &self.fallback)
            .field("shadow", &self.shadow)
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            name: None,
            window: DEFAULT_WINDOW,
            buckets: DEFAULT_BUCKETS,
            cpu_threshold: DEFAULT_CPU_THRESHOLD,
            cool_off: DEFAULT_COOL_OFF,
            sample_period: DEFAULT_LATENCY_SAMPLE_PERIOD,
            avg_interval: DEFAULT_IN_FLIGHT_AVERAGE_INTERVAL,
            cpu: None,
            fallback: CpuFallback::NeverShed,
            shadow: false,
            enabled: true,
        }
    }
}

impl Builder {
    /// The most buckets a window may have. The capacity estimate folds the finished
    /// buckets once per bucket, so with tiny buckets the bucket count is the work of one
    /// decision; every thread that records holds its own copy of them too. go-zero uses 50.
    pub const MAX_BUCKETS: u32 = 4096;

    /// The longest window: 2^64 − 1 ns, about 584 years, the whole time line of a
    /// [`Clock`] reading.
    pub const MAX_WINDOW: Duration = Duration::from_nanos(u64::MAX);

    /// The shedder's name, for logs and statistics. Default: `shedder-N`, N counting up.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// How far back the pass and latency statistics reach (default 5 s). At most
    /// [`MAX_WINDOW`](Builder::MAX_WINDOW), and at least one nanosecond per bucket.
    pub fn window(mut self, window: Duration) -> Builder {
        self.window = window;
        self
    }

    /// Buckets in the window (default 50, so 100 ms each), from 1 to
    /// [`MAX_BUCKETS`](Builder::MAX_BUCKETS). The bucket being filled is never used for
    /// decisions.
    pub fn buckets(mut self, buckets: u32) -> Builder {
        self.buckets = buckets;
        self
    }

    /// CPU usage in millis (1..=999) at or above which the service counts as overloaded
    /// (default 900: 90% of the CPUs or cgroup quota, smoothed over about 5 s).
    pub fn cpu_threshold(mut self, millis: u32) -> Builder {
        self.cpu_threshold = millis;
        self
    }

    /// How long after the CPU was last over the threshold a shedder that dropped keeps
    /// shedding on the in-flight check alone (default 1 s), so a brief dip in CPU does not
    /// let a flood in. Zero turns it off.
    pub fn cool_off(mut self, cool_off: Duration) -> Builder {
        self.cool_off = cool_off;
        self
    }

    /// Time one request in `period` (default 8), chosen at random per thread.
    ///
    /// A precise clock read costs about 25 ns, twice per timed request: timing every
    /// request would cost more than the rest of the shedder. Passes are still counted for
    /// every request, the latency statistic (per-bucket mean, then the minimum over the
    /// window) comes from the sample, and the in-flight average is updated on the sampled
    /// completions (see [`in_flight_average_interval`](Builder::in_flight_average_interval)).
    /// Use 1 to time every request, as go-zero does.
    pub fn latency_sample_period(mut self, period: u32) -> Builder {
        self.sample_period = period;
        self
    }

    /// The in-flight average (β = 0.9) takes at most one step per `interval` (default
    /// 1 ms), on the completion of a timed request. go-zero steps it on every completion;
    /// each step reads every thread's in-flight stripe and writes one shared word, which
    /// with several threads costs more than the rest of a request. At 1 ms the average
    /// still follows the in-flight count within about 10 ms at any rate that can overload
    /// a server. `Duration::ZERO` steps on every timed completion.
    pub fn in_flight_average_interval(mut self, interval: Duration) -> Builder {
        self.avg_interval = interval;
        self
    }

    /// go-zero's exact statistics, for deterministic tests and comparisons: every request
    /// timed ([`latency_sample_period(1)`](Builder::latency_sample_period)) and the
    /// in-flight average stepped on every completion
    /// ([`in_flight_average_interval(ZERO)`](Builder::in_flight_average_interval)). Costs
    /// two precise clock reads (about 50 ns) per request.
    pub fn exact_statistics(self) -> Builder {
        self.latency_sample_period(1)
            .in_flight_average_interval(Duration::ZERO)
    }

    /// Where the CPU usage comes from. Default: [`SystemCpu`](crate::cpu::SystemCpu) in
    /// [`CpuMode::Auto`](crate::cpu::CpuMode::Auto): the cgroup (container) usage relative
    /// to its quota, else the host's, sampled every 250 ms by one lazily started thread per
    /// process. Tests inject a [`ManualCpu`](crate::cpu::ManualCpu).
    pub fn cpu_source(mut self, source: impl CpuSource) -> Builder {
        self.cpu = Some(CpuChoice::of(source));
        self
    }

    /// Use the system CPU signal in `mode`: the cgroup, the host or this process alone
    /// (shorthand for `cpu_source(SystemCpu::new(mode))`).
    ///
    /// ```
    /// use keel_shedder::{Shedder, cpu::CpuMode};
    ///
    /// // Several services share one container: shed on this process's own CPU use.
    /// let shedder = Shedder::builder().cpu_mode(CpuMode::Process).build()?;
    /// # drop(shedder);
    /// # Ok::<(), keel_shedder::ConfigError>(())
    /// ```
    pub fn cpu_mode(self, mode: crate::cpu::CpuMode) -> Builder {
        self.cpu_source(crate::cpu::SystemCpu::new(mode))
    }

    /// What to do while the CPU source has no signal (default [`CpuFallback::NeverShed`]).
    pub fn cpu_fallback(mut self, fallback: CpuFallback) -> Builder {
        self.fallback = fallback;
        self
    }

    /// Dry run: decide and count as usual (the snapshot's `dropped` and the statistics say
    /// what would have been shed) but admit every request.
    pub fn shadow(mut self, shadow: bool) -> Builder {
        self.shadow = shadow;
        self
    }

    /// `false` builds a no-op shedder that admits everything and records nothing (go-zero's
    /// `Disable()`, per shedder instead of a global switch). Default `true`.
    pub fn enabled(mut self, enabled: bool) -> Builder {
        self.enabled = enabled;
        self
    }

    /// Builds a shedder on the process-wide [`CoarseClock`].
    pub fn build(self) -> Result<Shedder, ConfigError> {
        self.validate()?;
        self.build_with_clock(CoarseClock::new())
    }

    /// Builds a shedder on `clock` (a [`ManualClock`](keel_timex::ManualClock) in tests).
    /// Latency is read with [`Clock::now_precise`], bucket times with [`Clock::now`].
    pub fn build_with_clock<C: Clock>(self, clock: C) -> Result<Shedder<C>, ConfigError> {
        self.validate()?;
        let interval = self.window / self.buckets;
        let window = keel_rollingwindow::RollingWindow::builder(self.buckets as usize, interval)
            .ignore_current_bucket(true)
            .build_with_clock(clock)
            .map_err(|_| ConfigError::WindowTooShort {
                window: self.window,
                buckets: self.buckets,
            })?;
        Ok(Shedder::from_parts(self, window))
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=999).contains(&self.cpu_threshold) {
            return Err(ConfigError::ThresholdOutOfRange {
                threshold: self.cpu_threshold,
            });
        }
        if self.buckets == 0 {
            return Err(ConfigError::ZeroBuckets);
        }
        if self.buckets > Builder::MAX_BUCKETS {
            return Err(ConfigError::TooManyBuckets {
                buckets: self.buckets,
                max: Builder::MAX_BUCKETS,
            });
        }
        if self.window > Builder::MAX_WINDOW {
            return Err(ConfigError::WindowTooLong {
                window: self.window,
                max: Builder::MAX_WINDOW,
            });
        }
        if (self.window / self.buckets).is_zero() {
            return Err(ConfigError::WindowTooShort {
                window: self.window,
                buckets: self.buckets,
            });
        }
        if self.sample_period == 0 {
            return Err(ConfigError::ZeroSamplePeriod);
        }
        Ok(())
    }

    pub(crate) fn name_or_default(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        self.name
            .clone()
            .unwrap_or_else(|| format!("shedder-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    pub(crate) fn cpu_or_default(&self) -> CpuChoice {
        self.cpu.clone().unwrap_or_else(CpuChoice::system)
    }
}

// A builder is shared by a `ShedderGroup` across threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Builder>();
    assert_send_sync::<Arc<Builder>>();
};
