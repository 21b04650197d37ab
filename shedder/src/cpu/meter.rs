//! [`CpuMeter`]: raw, unsmoothed usage from counter deltas, and the delta arithmetic shared
//! by the meters.

use std::fmt;

use keel_timex::Nanos;

use super::CpuError;

/// Turns the kernel's cumulative CPU counters into usage between two samples.
///
/// A meter is stateful: each [`sample`](CpuMeter::sample) measures the time since the
/// previous one, and the first only primes it. Build the real ones with
/// [`CpuMode::detect`](super::CpuMode::detect); implement it yourself to feed a
/// [`SystemCpu`](super::SystemCpu) from your own source or from a test script.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use keel_shedder::cpu::{CpuMeter, CpuMode};
/// use keel_timex::{Clock, MonotonicClock};
///
/// if let Ok(mut meter) = CpuMode::Auto.detect() {
///     let clock = MonotonicClock::new();
///     assert_eq!(meter.sample(clock.now()).unwrap(), None); // primes
///     std::thread::sleep(std::time::Duration::from_millis(20));
///     if let Some(millis) = meter.sample(clock.now()).unwrap() {
///         assert!((0.0..=1000.0).contains(&millis));
///     }
///     assert!(meter.limit_cpus() > 0.0);
/// }
/// # }
/// ```
pub trait CpuMeter: Send + 'static {
    /// Usage since the previous sample in millis of [`limit_cpus`](CpuMeter::limit_cpus),
    /// in `0.0..=1000.0`, where `now` is a monotonic reading (meters that divide by wall
    /// time use it; others ignore it).
    ///
    /// `Ok(None)` when there is nothing to report yet: the first call, a counter that went
    /// backwards (a reset: the meter re-primes instead of reporting a spike), or no time
    /// having passed. After an `Err` the next call re-primes.
    fn sample(&mut self, now: Nanos) -> Result<Option<f64>, CpuError>;

    /// How many CPUs 1000 millis stands for: the cgroup quota or cpuset, or the host's
    /// cores. Always positive.
    fn limit_cpus(&self) -> f64;

    /// Re-reads the limit (a container's quota can be resized while it runs). The default
    /// does nothing; on error the previous limit stays.
    fn refresh_limit(&mut self) -> Result<(), CpuError> {
        Ok(())
    }

    /// Which kind of meter this is, for display.
    fn kind(&self) -> MeterKind {
        MeterKind::Custom
    }
}

impl fmt::Debug for dyn CpuMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpuMeter")
            .field("kind", &self.kind())
            .field("limit_cpus", &self.limit_cpus())
            .finish()
    }
}

/// Where a meter's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MeterKind {
    /// cgroup v2: `cpu.stat` `usage_usec` over wall time × (`cpu.max` or cpuset).
    CgroupV2,
    /// cgroup v1: `cpuacct.usage` over wall time × (`cpu.cfs_quota_us` or cpuset).
    CgroupV1,
    /// The whole host: busy over total jiffies of `/proc/stat`.
    Host,
    /// This process alone: `/proc/self/stat` CPU time over wall time × allowed CPUs.
    Process,
    /// A meter implemented outside this crate.
    Custom,
}

impl fmt::Display for MeterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MeterKind::CgroupV2 => "cgroup v2",
            MeterKind::CgroupV1 => "cgroup v1",
            MeterKind::Host => "host",
            MeterKind::Process => "process",
            MeterKind::Custom => "custom",
        })
    }
}

/// The previous reading of a CPU-time counter, for "CPU time over wall time × CPUs" meters.
#[derive(Debug, Default)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct CpuTime {
    prev: Option<(u64, u64)>,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl CpuTime {
    /// Records `cpu_ns` at `now` and returns the usage since the previous record:
    /// Δcpu / (Δwall × limit) × 1000, capped at 1000. `None` on the first record, when
    /// either counter went backwards or no wall time passed; the new values become the
    /// baseline either way, so a reset costs one sample, never a spike.
    pub(crate) fn advance(&mut self, cpu_ns: u64, now: Nanos, limit_cpus: f64) -> Option<f64> {
        let now = now.as_nanos();
        let (prev_cpu, prev_wall) = self.prev.replace((cpu_ns, now))?;
        let cpu = cpu_ns.checked_sub(prev_cpu)?;
        let wall = now.checked_sub(prev_wall).filter(|w| *w > 0)?;
        if limit_cpus.is_nan() || limit_cpus <= 0.0 {
            return None;
        }
        Some(millis(cpu as f64 / (wall as f64 * limit_cpus)))
    }

    /// Forgets the baseline: after a failed read the next sample only primes.
    pub(crate) fn reset(&mut self) {
        self.prev = None;
    }

    /// [`advance`](Self::advance) on a fresh reading of the CPU-time counter, or forget the
    /// previous record if the reading failed (the next good one primes again).
    pub(crate) fn sample(
        &mut self,
        reading: Result<u64, CpuError>,
        now: Nanos,
        limit_cpus: f64,
    ) -> Result<Option<f64>, CpuError> {
        match reading {
            Ok(cpu_ns) => Ok(self.advance(cpu_ns, now, limit_cpus)),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }
}

/// A busy fraction as millis in `0..=1000` (finite inputs only reach here).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
/// The `CpuMeter` of a cgroup meter: both versions read a CPU-time counter
/// (`usage_ns`) and a limit of min(quota, cpus), and differ only in where those live.
macro_rules! cgroup_meter {
    ($meter:ty, $kind:expr) => {
        impl $crate::cpu::CpuMeter for $meter {
            fn sample(
                &mut self,
                now: keel_timex::Nanos,
            ) -> Result<Option<f64>, $crate::cpu::CpuError> {
                let reading = self.usage_ns();
                self.time.sample(reading, now, self.limit)
            }

            fn limit_cpus(&self) -> f64 {
                self.limit
            }

            fn refresh_limit(&mut self) -> Result<(), $crate::cpu::CpuError> {
                let cpus = self.cpus()? as f64;
                self.limit = self.quota()?.map_or(cpus, |q| q.min(cpus));
                Ok(())
            }

            fn kind(&self) -> $crate::cpu::MeterKind {
                $kind
            }
        }
    };
}
pub(crate) use cgroup_meter;

pub(crate) fn millis(fraction: f64) -> f64 {
    (fraction * 1000.0).clamp(0.0, 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn cpu_time_formula() {
        let mut t = CpuTime::default();
        assert_eq!(t.advance(0, Nanos::from_nanos(0), 1.5), None);
        // 0.75 CPU-seconds in 1 s against 1.5 CPUs: half the limit.
        assert_eq!(
            t.advance(SEC * 3 / 4, Nanos::from_nanos(SEC), 1.5),
            Some(500.0)
        );
        // 0.3 CPU-seconds in 2 s against 1.5 CPUs: 100 millis.
        let got = t.advance(SEC * 3 / 4 + SEC * 3 / 10, Nanos::from_nanos(3 * SEC), 1.5);
        assert!((got.unwrap() - 100.0).abs() < 1e-9, "{got:?}");
    }

    #[test]
    fn cpu_time_caps_and_survives_resets() {
        let mut t = CpuTime::default();
        t.advance(10 * SEC, Nanos::from_nanos(SEC), 1.0);
        assert_eq!(
            t.advance(13 * SEC, Nanos::from_nanos(2 * SEC), 1.0),
            Some(1000.0)
        );
        // Counter reset: no spike, and the reset value is the new baseline.
        assert_eq!(t.advance(5, Nanos::from_nanos(3 * SEC), 1.0), None);
        assert_eq!(
            t.advance(5 + SEC / 4, Nanos::from_nanos(4 * SEC), 1.0),
            Some(250.0)
        );
        // No wall time: nothing to divide by.
        assert_eq!(t.advance(5 + SEC, Nanos::from_nanos(4 * SEC), 1.0), None);
        t.reset();
        assert_eq!(t.advance(6 * SEC, Nanos::from_nanos(5 * SEC), 1.0), None);
        assert_eq!(t.advance(6 * SEC, Nanos::from_nanos(6 * SEC), 0.0), None);
    }
}
