//! [`MemoryPeriod`]: fixed-window counters in process memory.
//!
//! A key's window is one `u64`: the window's end in milliseconds of the limiter's clock and
//! the count (saturating just above the quota: counting further would tell nothing new).
//! The count takes the fewest bits that tell `quota + 1` apart (2 for a quota of 1, 24 for
//! the largest), the end the rest. Every end up to the end of the clock (`u64::MAX` ns,
//! 584 years) fits: in whole milliseconds when the end has 45 bits or more (quotas up to
//! 524 286), else in units of 2, 4, … 32 ms, an end then being rounded up to its
//! unit (a window at most 31 ms longer than its period, never shorter). A window that would
//! end after the clock's last reading never ends: the clock cannot get there.

use std::time::Duration;

use super::keyed::{Full, Idle, KeyedCells};
use crate::{Denied, PeriodState};

/// The most bits the count takes: quotas up to [`MAX_QUOTA`].
const MAX_COUNT_BITS: u32 = 24;
/// The largest quota the packed count can tell apart from "over".
pub(crate) const MAX_QUOTA: u32 = (1 << MAX_COUNT_BITS) - 2;

const MS: u64 = 1_000_000;
/// One millisecond past the clock's last reading: a window ending here never ends.
const END_OF_CLOCK_MS: u64 = u64::MAX / MS + 1;
/// The bits an end of up to [`END_OF_CLOCK_MS`] takes in whole milliseconds.
const END_BITS: u32 = u64::BITS - END_OF_CLOCK_MS.leading_zeros();

/// How one limiter packs its windows, from its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Bits of the count (the low bits).
    count_bits: u32,
    /// The end is stored in units of `2^shift` ms.
    shift: u32,
}

impl Layout {
    fn for_quota(quota: u64) -> Layout {
        let count_bits = u64::BITS - (quota + 1).leading_zeros();
        Layout {
            count_bits,
            shift: END_BITS.saturating_sub(u64::BITS - count_bits),
        }
    }

    /// `end_ms` must be a multiple of the unit ([`Layout::end_at`] makes it one).
    #[inline]
    fn pack(self, end_ms: u64, count: u64) -> u64 {
        ((end_ms >> self.shift) << self.count_bits) | count
    }

    #[inline]
    fn unpack(self, v: u64) -> (u64, u64) {
        let end_ms = (v >> self.count_bits) << self.shift;
        (end_ms, v & ((1 << self.count_bits) - 1))
    }

    /// A window end of `end_ms` as stored: at most the end of the clock, rounded up to the
    /// unit.
    #[inline]
    fn end_at(self, end_ms: u64) -> u64 {
        let unit_mask = (1 << self.shift) - 1;
        (end_ms.min(END_OF_CLOCK_MS) + unit_mask) & !unit_mask
    }
}

/// A window is at rest once it has ended.
struct WindowIdle(Layout);

impl Idle for WindowIdle {
    #[inline]
    fn idle_in(&self, value: u64, now: u64) -> u64 {
        let (end_ms, _) = self.0.unpack(value);
        if end_ms >= END_OF_CLOCK_MS {
            // Ends after the clock's last reading: never at rest.
            return u64::MAX;
        }
        (end_ms * MS).saturating_sub(now)
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
    layout: Layout,
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
            layout: Layout::for_quota(u64::from(quota)),
            period_ms,
            windows,
            keyed: KeyedCells::new(max_keys),
        }
    }

    /// The end (ms of clock time) of a window opened at `now_ms`, as stored.
    fn window_end(&self, now_ms: u64) -> u64 {
        let left = match self.windows {
            Windows::FromFirstHit => self.period_ms,
            Windows::Aligned {
                unix_ms_at_zero,
                offset_ms,
            } => {
                let local = unix_ms_at_zero + i128::from(now_ms) + offset_ms;
                let into = local.rem_euclid(i128::from(self.period_ms)) as u64;
                self.period_ms - into
            }
        };
        self.layout.end_at(now_ms.saturating_add(left))
    }

    /// Counts one request for `key` at `now` (clock nanos).
    pub(crate) fn take(&self, key: &str, now: u64) -> Result<(PeriodState, Duration), Denied> {
        let now_ms = now / MS;
        let quota = self.quota;
        let layout = self.layout;
        self.keyed
            .update(key, now, &WindowIdle(layout), |v| {
                let (end_ms, count) = layout.unpack(v);
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
                // As durations: an end past the clock's last reading does not fit in u64 ns.
                let resets_in = Duration::from_millis(end_ms) - Duration::from_nanos(now);
                let next = layout.pack(end_ms, count);
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
        self.keyed.sweep_all(now, &WindowIdle(self.layout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_fit_every_end_of_the_clock_and_every_count() {
        assert_eq!(END_BITS, 45);
        for quota in [
            1,
            2,
            3,
            100,
            524_285,
            524_286,
            524_287,
            1 << 20,
            u64::from(MAX_QUOTA),
        ] {
            let l = Layout::for_quota(quota);
            for end in [
                0,
                1,
                999,
                1 << 40,
                END_OF_CLOCK_MS - 1,
                END_OF_CLOCK_MS,
                u64::MAX,
            ] {
                let stored = l.end_at(end);
                let wanted = end.min(END_OF_CLOCK_MS);
                assert!(
                    stored >= wanted && stored - wanted < 1 << l.shift,
                    "{quota} {end}"
                );
                for count in [1, quota, quota + 1] {
                    let v = l.pack(stored, count);
                    assert_ne!(v, 0);
                    assert_eq!(l.unpack(v), (stored, count), "{quota} {end} {count}");
                }
            }
        }
        assert_eq!(
            Layout::for_quota(1),
            Layout {
                count_bits: 2,
                shift: 0
            }
        );
        assert_eq!(Layout::for_quota(524_286).shift, 0);
        assert_eq!(Layout::for_quota(524_287).shift, 1);
        assert_eq!(Layout::for_quota(u64::from(MAX_QUOTA)).shift, 5);
    }

    #[test]
    fn a_window_past_2_pow_40_ms_stays_closed_for_its_whole_period() {
        let century_ms = 100 * 365 * 86_400 * 1000;
        let century = Duration::from_millis(century_ms);
        let start = 5 * MS;
        let later = start + (century_ms - 1) * MS;
        let p = MemoryPeriod::new(1, century_ms, Windows::FromFirstHit, None);
        assert_eq!(p.take("k", start), Ok((PeriodState::HitQuota, century)));
        assert_eq!(p.take("k", start).unwrap().0, PeriodState::OverQuota);
        // Decades later, the same window.
        let (state, resets_in) = p.take("k", later).unwrap();
        assert_eq!(
            (state, resets_in),
            (PeriodState::OverQuota, Duration::from_millis(1))
        );
        assert_eq!(
            p.take("k", start + century_ms * MS).unwrap().0,
            PeriodState::HitQuota
        );

        // The largest quota stores ends in 32 ms units: at most 31 ms longer.
        let p = MemoryPeriod::new(MAX_QUOTA, century_ms, Windows::FromFirstHit, None);
        let (state, resets_in) = p.take("k", start).unwrap();
        assert_eq!(state, PeriodState::Allowed);
        assert!(resets_in >= century && resets_in < century + Duration::from_millis(32));
        let (state, resets_in) = p.take("k", later).unwrap();
        assert_eq!(state, PeriodState::Allowed, "count 2 of the same window");
        assert!(resets_in >= Duration::from_millis(1) && resets_in < Duration::from_millis(33));
    }

    #[test]
    fn a_window_that_ends_after_the_clock_never_ends() {
        let p = MemoryPeriod::new(1, u64::MAX, Windows::FromFirstHit, None);
        assert_eq!(p.take("k", 0).unwrap().0, PeriodState::HitQuota);
        for now in [1 << 62, u64::MAX - 1, u64::MAX] {
            let (state, resets_in) = p.take("k", now).unwrap();
            assert_eq!(state, PeriodState::OverQuota);
            assert!(resets_in > Duration::ZERO);
            assert_eq!(p.sweep(now), 1, "a window that never ends is never idle");
        }
        // Opened at the clock's very end, it does not end either.
        let p = MemoryPeriod::new(2, 1, Windows::FromFirstHit, None);
        assert_eq!(p.take("k", u64::MAX).unwrap().0, PeriodState::Allowed);
        assert_eq!(p.take("k", u64::MAX).unwrap().0, PeriodState::HitQuota);
    }
}
