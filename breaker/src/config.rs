//! [`Builder`]: validated configuration with go-zero's defaults.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_timex::{Clock, CoarseClock};

use crate::decision::{MIN_K, Params};
use crate::{Breaker, ConfigError, Mode, OnCancel};

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
/// Bounds, checked by `build` (each refusal is a [`ConfigError`] naming the bound):
///
/// | setting | accepted |
/// |---|---|
/// | [`window`](Builder::window) | at least 1 ns per bucket, at most [`MAX_WINDOW`](Builder::MAX_WINDOW) (2^64 − 1 ns, 584 years) |
/// | [`buckets`](Builder::buckets) | `1..=`[`MAX_BUCKETS`](Builder::MAX_BUCKETS) (4096) |
/// | [`k`](Builder::k) | finite, at least 1.1 |
/// | [`protection`](Builder::protection) | any `u32` |
/// | [`force_pass_interval`](Builder::force_pass_interval) | longer than zero; beyond 584 years it means never |
/// | [`live_refresh`](Builder::live_refresh) | any; beyond 584 years it means never refresh while one slice lasts |
/// | [`slow_call`](Builder::slow_call), `timeout` | longer than zero; any length above |
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
    pub(crate) slow_call: Option<Duration>,
    pub(crate) on_cancel: OnCancel,
    pub(crate) timeout: Option<Duration>,
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
            slow_call: None,
            on_cancel: OnCancel::Ignore,
            timeout: None,
        }
    }
}

impl Builder {
    /// The most buckets a window may have. A decision folds the finished buckets once per
    /// bucket, so with tiny buckets the bucket count is the work of one decision; every
    /// thread that records holds its own copy of them too. go-zero uses 40.
    pub const MAX_BUCKETS: u32 = 4096;

    /// The longest window: 2^64 − 1 ns, about 584 years, the whole time line of a
    /// [`Clock`] reading.
    pub const MAX_WINDOW: Duration = Duration::from_nanos(u64::MAX);

    /// The breaker's name, for logs and registries. Default: `breaker-N`, N counting up.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// How far back the statistics reach (default 10 s). At most
    /// [`MAX_WINDOW`](Builder::MAX_WINDOW), and at least one nanosecond per bucket.
    pub fn window(mut self, window: Duration) -> Builder {
        self.window = window;
        self
    }

    /// Buckets in the window (default 40, so 250 ms each), from 1 to
    /// [`MAX_BUCKETS`](Builder::MAX_BUCKETS).
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
    /// breaker notices a recovery even under a high drop ratio. Must be longer than zero;
    /// an interval beyond 2^64 − 1 ns (584 years) counts as that, i.e. never.
    pub fn force_pass_interval(mut self, every: Duration) -> Builder {
        self.force_pass = every;
        self
    }

    /// Seed of the random drop decisions, for reproducible tests. Default: random.
    ///
    /// A seeded breaker draws from one sequence of its own, the same on every run when one
    /// thread calls it; every draw updates a word all threads share. Unseeded, each thread
    /// draws from a generator of its own (cheaper when several threads are rejected).
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

    /// A call that runs longer than `threshold` counts as a **failure**, whatever its result,
    /// and so does a call cancelled by its caller after running that long (default: no
    /// threshold). This is how a breaker hears about a dependency that has become slow
    /// rather than broken, without a timer: calls are timed with the breaker's clock (the
    /// coarse clock by default: millisecond resolution). resilience4j's slow-call duration
    /// threshold, in SRE-throttle form.
    ///
    /// Must be longer than zero. Where a slow call should also be *ended*, set a
    /// [`timeout`](Builder::timeout) too (feature `tokio`).
    ///
    /// ```
    /// use keel_breaker::Breaker;
    /// use keel_timex::ManualClock;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = Breaker::builder()
    ///     .slow_call(Duration::from_millis(500))
    ///     .build_with_clock(clock.clone())?;
    /// let permit = breaker.allow().unwrap();
    /// clock.advance(Duration::from_secs(2)); // the query took 2 s
    /// permit.success();
    /// let s = breaker.snapshot().history;
    /// assert_eq!((s.accepts, s.total), (0, 1)); // counted as a failure
    /// # Ok::<(), keel_breaker::ConfigError>(())
    /// ```
    pub fn slow_call(mut self, threshold: Duration) -> Builder {
        self.slow_call = Some(threshold);
        self
    }

    /// What a call cancelled by its caller counts as (default [`OnCancel::Ignore`]: nothing,
    /// unless it was already slower than [`slow_call`](Builder::slow_call)). A panic is
    /// always a failure.
    pub fn on_cancel(mut self, on_cancel: OnCancel) -> Builder {
        self.on_cancel = on_cancel;
        self
    }

    /// A deadline the breaker owns for [`call_async`](Breaker::call_async) and its variants
    /// and for the tower layer's calls (default: none). When it passes first, the call's
    /// future is dropped, the caller gets
    /// [`BreakerError::TimedOut`](crate::BreakerError::TimedOut) and the breaker records a
    /// **failure**, so a stalled dependency opens the breaker.
    ///
    /// Prefer this to wrapping `tokio::time::timeout` *around* a breaker call: that
    /// cancels the call from outside, and a cancellation records nothing by default (it
    /// cannot tell a stalled database from a client that went away; see
    /// [`OnCancel`]). A timeout *inside* the call (around the query, its expiry returned as
    /// the call's error) is counted as a failure as well. Synchronous
    /// [`call`](Breaker::call)s cannot be interrupted: use
    /// [`slow_call`](Builder::slow_call) for those.
    ///
    /// Must be longer than zero. The timer is tokio's (`tokio::time::sleep`), so a paused
    /// tokio clock drives it in tests.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), keel_breaker::ConfigError> {
    /// use keel_breaker::{Breaker, BreakerError};
    /// use std::time::Duration;
    ///
    /// let breaker = Breaker::builder().timeout(Duration::from_millis(250)).build()?;
    /// let stalled = std::future::pending::<Result<u32, std::io::Error>>();
    /// let result = breaker.call_async(stalled).await;
    /// assert!(matches!(result, Err(BreakerError::TimedOut(_))));
    /// assert_eq!(breaker.snapshot().history.total, 1); // a failure
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.timeout = Some(timeout);
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
        if self.force_pass.is_zero() {
            return Err(ConfigError::ZeroForcePass);
        }
        if self.slow_call.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroSlowCall);
        }
        if self.timeout.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroTimeout);
        }
        Ok(Params::new(
            self.k,
            f64::from(self.protection),
            self.buckets,
            // Decisions compare it in nanoseconds: longer than that is never anyway.
            self.force_pass.min(Builder::MAX_WINDOW),
        ))
    }

    pub(crate) fn name_or_default(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        self.name
            .clone()
            .unwrap_or_else(|| format!("breaker-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }
}
