//! [`MemoryPeriod`]: fixed-window counters in process memory.
//!
//! A key's window is one `u64`: the window's end in milliseconds of the limiter's clock
//! (upper 40 bits, 34 years) and the count (lower 24 bits, saturating just above the
//! quota: counting further would tell nothing new).

use std::time::Duration;

use super::keyed::{Full, Idle, KeyedCells};
use crate::{Denied, PeriodState};

const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// The largest quota the packed count can tell apart from "over".
pub(crate) const MAX_QUOTA: u32 = (COUNT_MASK - 1) as u32;

const MS: u64 = 1_000_000;

fn pack(end_ms: u64, count: u64) -> u64 {
    (end_ms << COUNT_BITS) | count
}

fn unpack(v: u64) -> (u64, u64) {
    (v >> COUNT_BITS, v & COUNT_MASK)
}

/// A window is at rest once it has ended.
struct WindowIdle;

impl Idle for WindowIdle {
    #[inline]
    fn idle_in(&self, value: u64, now: u64) -> u64 {
        let (end_ms, _) = unpack(value);
        end_ms.saturating_mul(MS).saturating_sub(now)
    }
}

/// Where windows start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Windows {
    /// A key's window starts at its first request (go-zero without `Align`).
    FromFirstHit,
    /// Windows are aligned on multiples of the period in Unix time shifted by `offset_ms`
    /// (go-zero's `Align` with the local UTC offset): `unix_ms_at_zero` is the Unix time
    /// at clock time 0.
    Aligned {
        unix_ms_at_zero: i128,
        offset_ms: i128,
    },
}

#[derive(Debug)]
pub(crate) struct MemoryPeriod {
    quota: u64,
    period_ms: u64,
    windows: Windows,
    keyed: KeyedCells,
}

impl MemoryPeriod {
    pub(crate) fn new(
        quota: u32,
        period_ms: u64,
        windows: Windows,
        max_keys: Option<usize>,
    ) -> Self {
        MemoryPeriod {
            quota: u64::from(quota),
            period_ms,
            windows,
            keyed: KeyedCells::new(max_keys),
        }
    }

    /// The end (ms of clock time) of a window opened at `now_ms`.
    fn window_end(&self, now_ms: u64) -> u64 {
        match self.windows {
            Windows::FromFirstHit => now_ms + self.period_ms,
            Windows::Aligned {
                unix_ms_at_zero,
                offset_ms,
            } => {
                let local = unix_ms_at_zero + i128::from(now_ms) + offset_ms;
                let into = local.rem_euclid(i128::from(self.period_ms)) as u64;
                now_ms + (self.period_ms - into)
            }
        }
    }

    /// Counts one request for `key` at `now` (clock nanos).
    pub(crate) fn take(&self, key: &str, now: u64) -> Result<(PeriodState, Duration), Denied> {
        let now_ms = now / MS;
        let quota = self.quota;
        self.keyed
            .update(key, now, &WindowIdle, |v| {
                let (end_ms, count) = unpack(v);
                let (end_ms, count) = if v == 0 || now_ms >= end_ms {
                    (self.window_end(now_ms), 1)
                } else {
                    (end_ms, (count + 1).min(quota + 1))
                };
                let state = match count.cmp(&quota) {
                    std::cmp::Ordering::Less => PeriodState::Allowed,
                    std::cmp::Ordering::Equal => PeriodState::HitQuota,
                    std::cmp::Ordering::Greater => PeriodState::OverQuota,
                };
                let resets_in = Duration::from_nanos((end_ms * MS).saturating_sub(now));
                let next = pack(end_ms, count);
                // Over quota the word no longer changes: skip the write (a hot key's
                // refusals then only read it).
                ((next != v).then_some(next), (state, resets_in))
            })
            .map_err(|Full(wait)| Denied::KeyCapacity {
                retry_after: Duration::from_nanos(wait),
            })
    }

    pub(crate) fn len(&self) -> usize {
        self.keyed.len()
    }

    pub(crate) fn sweep(&self, now: u64) -> usize {
        self.keyed.sweep_all(now, &WindowIdle)
    }
}
