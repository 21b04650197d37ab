//! Per-minute shedding statistics (go-zero's `SheddingStat`), without a thread per shedder.
//!
//! go-zero runs a goroutine per shedder that swaps three counters to zero every minute,
//! forever. Here the counters are the in-flight stripes' monotonic totals; the first
//! admission after a minute boundary rolls the period over (one relaxed load and a compare
//! on every other admission) and emits the `tracing` event. A minute without traffic rolls
//! over at the next request, so a period can be longer than a minute: its length is kept.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_timex::{Clock, Nanos};
use parking_lot::Mutex;

use crate::inflight::Totals;
use crate::shedder::Inner;

/// The statistics period.
pub const STATS_PERIOD: Duration = Duration::from_secs(60);

/// What a shedder decided over one statistics period (normally a minute).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodStats {
    /// How long the period lasted.
    pub length: Duration,
    /// Decisions made: `pass + drop`.
    pub total: u64,
    /// Requests admitted.
    pub pass: u64,
    /// Requests refused.
    pub drop: u64,
    /// In shadow mode: requests admitted that would have been refused.
    pub shadow_drop: u64,
    /// The CPU usage (millis) when the period was read, if there is a signal.
    pub cpu: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Base {
    totals: Totals,
    at: u64,
}

#[derive(Debug)]
pub(crate) struct Minute {
    next_roll: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    base: Base,
    last: Option<PeriodStats>,
}

fn period_ns() -> u64 {
    STATS_PERIOD.as_nanos() as u64
}

impl Minute {
    pub(crate) fn new(start: Nanos) -> Minute {
        Minute {
            next_roll: AtomicU64::new(start.as_nanos().saturating_add(period_ns())),
            state: Mutex::new(State {
                base: Base {
                    at: start.as_nanos(),
                    ..Base::default()
                },
                last: None,
            }),
        }
    }

    /// Rolls the period over if `now` is past its end.
    #[inline]
    pub(crate) fn tick<C: Clock>(&self, now: Nanos, inner: &Inner<C>) {
        if now.as_nanos() >= self.next_roll.load(Ordering::Relaxed) {
            self.roll(now, inner);
        }
    }

    #[cold]
    fn roll<C: Clock>(&self, now: Nanos, inner: &Inner<C>) {
        // One thread rolls; the others go on deciding.
        let Some(mut state) = self.state.try_lock() else {
            return;
        };
        if now.as_nanos() < self.next_roll.load(Ordering::Relaxed) {
            return;
        }
        let base = read_base(now, inner);
        inner
            .metrics
            .in_flight(base.totals.admitted.saturating_sub(base.totals.completed));
        let stats = between(&state.base, &base, inner.cpu.usage());
        state.base = base;
        state.last = Some(stats);
        self.next_roll.store(
            now.as_nanos().saturating_add(period_ns()),
            Ordering::Relaxed,
        );
        drop(state);
        inner.events.period(&inner.name, &stats);
    }

    /// The current (unfinished) period so far.
    pub(crate) fn current<C: Clock>(&self, inner: &Inner<C>) -> PeriodStats {
        let now = inner.stats.clock().now();
        let state = self.state.lock();
        between(&state.base, &read_base(now, inner), inner.cpu.usage())
    }

    /// The last finished period, if one has ended.
    pub(crate) fn last(&self) -> Option<PeriodStats> {
        self.state.lock().last
    }
}

fn read_base<C: Clock>(now: Nanos, inner: &Inner<C>) -> Base {
    Base {
        totals: inner.inflight.totals(),
        at: now.as_nanos(),
    }
}

fn between(from: &Base, to: &Base, cpu: Option<u32>) -> PeriodStats {
    let pass = to.totals.admitted.wrapping_sub(from.totals.admitted);
    let drop = to.totals.dropped.wrapping_sub(from.totals.dropped);
    PeriodStats {
        length: Duration::from_nanos(to.at.saturating_sub(from.at)),
        total: pass + drop,
        pass,
        drop,
        shadow_drop: to.totals.would_drop.wrapping_sub(from.totals.would_drop),
        cpu,
    }
}
