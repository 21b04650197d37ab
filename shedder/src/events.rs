//! `tracing` events (feature `tracing`): shedding started and stopped, and the statistics
//! of every period (go-zero's `shedding_stat` log line, every minute).
//!
//! Without the feature every method is an empty inline function.

use crate::PeriodStats;

#[derive(Debug, Default)]
pub(crate) struct Events;

#[cfg(feature = "tracing")]
impl Events {
    /// The first drop after a quiet spell. Transitions happen at most once per cool-off.
    #[cold]
    pub(crate) fn started(&self, name: &str, _now: u64) {
        tracing::warn!(shedder = name, "shedder started dropping requests");
    }

    /// The cool-off passed since the CPU was last over the threshold.
    #[cold]
    pub(crate) fn stopped(&self, name: &str, _now: u64) {
        tracing::info!(shedder = name, "shedder stopped dropping requests");
    }

    /// One statistics period ended.
    #[cold]
    pub(crate) fn period(&self, name: &str, s: &PeriodStats) {
        let cpu = s.cpu.map(i64::from).unwrap_or(-1);
        if s.drop > 0 {
            tracing::warn!(
                shedder = name,
                cpu,
                total = s.total,
                pass = s.pass,
                drop = s.drop,
                shadow_drop = s.shadow_drop,
                seconds = s.length.as_secs_f64(),
                "shedding_stat_drop"
            );
        } else {
            tracing::info!(
                shedder = name,
                cpu,
                total = s.total,
                pass = s.pass,
                drop = s.drop,
                shadow_drop = s.shadow_drop,
                seconds = s.length.as_secs_f64(),
                "shedding_stat"
            );
        }
    }
}

#[cfg(not(feature = "tracing"))]
impl Events {
    #[inline(always)]
    pub(crate) fn started(&self, _name: &str, _now: u64) {}

    #[inline(always)]
    pub(crate) fn stopped(&self, _name: &str, _now: u64) {}

    #[inline(always)]
    pub(crate) fn period(&self, _name: &str, _s: &PeriodStats) {}
}
