//! [`Builder`]: validated configuration with go-zero's defaults.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_timex::{Clock, CoarseClock};

use crate::decision::{MIN_K, Params};
use crate::{Breaker, ConfigError, Mode};

/// go-zero's statistics window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// go-zero's bucket count (250 ms buckets).
pub const DEFAULT_BUCKETS: u32 = 40;
/// go-zero's K.
pub const DEFAULT_K: f64 = 1.5;
/// go-zero's protection: requests subtracted from the total before anything is dropped.
pub const DEFAULT_PROTECTION: u32 = 5;
/// go-zero's force-pass interval.
pub const DEFAULT_FORCE_PASS: Duration = Duration::from_secs(1);
/// How long a decision may reuse a reading of the live bucket when several threads call.
pub const DEFAULT_LIVE_REFRESH: Duration = Duration::from_millis(1);

/// Configures a [`Breaker`]; every default is go-zero's.
///
/// ```
/// use keel_breaker::Breaker;
/// use std::time::Duration;
///
/// let breaker = Breaker::builder()
///     .name("orders-db")
///     .window(Duration::from_secs(10))
///     .buckets(40)
///     .k(1.5)
///     .build()?;
/// assert_eq!(breaker.name(), "orders-db");
///
/// assert!(Breaker::builder().k(0.9).build().is_err()); // k below 1.1 would never recover
/// # Ok::<(), keel_breaker::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct Builder {
    pub(crate) name: Option<String>,
    pub(crate) window: Duration,
    pub(crate) buckets: u32,
    pub(crate) k: f64,
    pub(crate) protection: u32,
    pub(crate) force_pass: Duration,
    pub(crate) seed: Option<u64>,
    pub(crate) mode: Mode,
    pub(crate) count_rejections: bool,
    pub(crate) live_refresh: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            name: None,
            window: DEFAULT_WINDOW,
            buckets: DEFAULT_BUCKETS,
            k: DEFAULT_K,
            protection: DEFAULT_PROTECTION,
            force_pass: DEFAULT_FORCE_PASS,
            seed: None,
            mode: Mode::Adaptive,
            count_rejections: true,
            live_refresh: DEFAULT_LIVE_REFRESH,
        }
    }
}

impl Builder {
    /// The breaker's name, for logs and registries. Default: `breaker-N`, N counting up.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// How far back the statistics reach (default 10 s).
    pub fn window(mut self, window: Duration) -> Builder {
        self.window = window;
        self
    }

    /// Buckets in the window (default 40, so 250 ms each).
    pub fn buckets(mut self, buckets: u32) -> Builder {
        self.buckets = buckets;
        self
    }

    /// The SRE K (default 1.5): how many requests per success the breaker lets through
    /// before dropping. Lower drops sooner. At least 1.1.
    pub fn k(mut self, k: f64) -> Builder {
        self.k = k;
        self
    }

    /// Requests in the window before anything is dropped (default 5).
    pub fn protection(mut self, protection: u32) -> Builder {
        self.protection = protection;
        self
    }

    /// While throttling, let one request through at least this often (default 1 s), so the
    /// breaker notices a recovery even under a high drop ratio.
    pub fn force_pass_interval(mut self, every: Duration) -> Builder {
        self.force_pass = every;
        self
    }

    /// Seed of the random drop decisions, for reproducible tests. Default: random.
    pub fn seed(mut self, seed: u64) -> Builder {
        self.seed = Some(seed);
        self
    }

    /// Start in [`Mode::Shadow`] (decide and count, never reject) when `true`.
    pub fn shadow(mut self, shadow: bool) -> Builder {
        self.mode = if shadow { Mode::Shadow } else { Mode::Adaptive };
        self
    }

    /// Whether the breaker's own rejections count in the total, as in go-zero (default
    /// `true`). Counting them makes throttling self-sustaining for longer under load; turning
    /// it off recovers faster but throttles less (go-zero PR #5551 discusses the trade-off).
    pub fn count_rejections(mut self, count: bool) -> Builder {
        self.count_rejections = count;
        self
    }

    /// With several threads calling, how long a decision may reuse one reading of the live
    /// (current) bucket (default 1 ms). A fresh reading merges every thread's copy of the
    /// bucket, which pulls in cache lines the other threads are writing: about 50 ns per
    /// decision with 2 threads on our machine. Reusing it for 1 ms means a decision may miss
    /// the last millisecond of other threads' outcomes. `Duration::ZERO` reads afresh every
    /// time. With one calling thread the live bucket is always read directly (it is cheap).
    /// The finished buckets are always exact.
    pub fn live_refresh(mut self, reuse_for: Duration) -> Builder {
        self.live_refresh = reuse_for;
        self
    }

    /// Builds a breaker on the process-wide [`CoarseClock`].
    pub fn build(self) -> Result<Breaker, ConfigError> {
        self.validate()?;
        self.build_with_clock(CoarseClock::new())
    }

    /// Builds a breaker on `clock` (a [`ManualClock`](keel_timex::ManualClock) in tests).
    pub fn build_with_clock<C: Clock>(self, clock: C) -> Result<Breaker<C>, ConfigError> {
        let params = self.validate()?;
        let interval = self.window / self.buckets;
        let window = keel_rollingwindow::RollingWindow::builder(self.buckets as usize, interval)
            .build_with_clock(clock)
            .map_err(|_| ConfigError::WindowTooShort {
                window: self.window,
                buckets: self.buckets,
            })?;
        Ok(Breaker::from_parts(self, params, window))
    }

    pub(crate) fn validate(&self) -> Result<Params, ConfigError> {
        if !self.k.is_finite() || self.k < MIN_K {
            return Err(ConfigError::KOutOfRange { k: self.k });
        }
        if self.buckets == 0 {
            return Err(ConfigError::ZeroBuckets);
        }
        if (self.window / self.buckets).is_zero() {
            return Err(ConfigError::WindowTooShort {
                window: self.window,
                buckets: self.buckets,
            });
        }
        if self.force_pass.is_zero() {
            return Err(ConfigError::ZeroForcePass);
        }
        Ok(Params {
            k: self.k,
            protection: f64::from(self.protection),
            buckets: f64::from(self.buckets),
            force_pass: self.force_pass,
        })
    }

    pub(crate) fn name_or_default(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        self.name
            .clone()
            .unwrap_or_else(|| format!("breaker-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }
}
