//! The "mutex-window" peer: go-zero's `collection.RollingWindow` design behind one lock.

use std::time::Duration;

use keel_timex::{Clock, CoarseClock};
use parking_lot::Mutex;

use super::WindowUnderTest;

/// go-zero's rolling window (`core/collection/rollingwindow.go`) ported as directly as possible.
#[derive(Debug)]
pub struct MutexWindow<C: Clock = CoarseClock> {
    ring: Mutex<Ring>,
    clock: C,
    interval: u64,
}

/// One bucket of a [`MutexWindow`], as go-zero's `Bucket{Sum, Count}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MutexWindowBucket {
    pub sum: i64,
    pub count: u64,
}

#[derive(Debug)]
struct Ring {
    buckets: Box<[MutexWindowBucket]>,
    offset: usize,
    last_time: u64,
}

impl<C: Clock> MutexWindow<C> {
    pub fn with_clock(size: usize, interval: Duration, clock: C) -> MutexWindow<C> {
        assert!(size > 0, "size must be positive");
        let interval = u64::try_from(interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        MutexWindow {
            ring: Mutex::new(Ring {
                buckets: vec![MutexWindowBucket::default(); size].into_boxed_slice(),
                offset: 0,
                last_time: clock.now().as_nanos(),
            }),
            clock,
            interval,
        }
    }

    #[inline]
    pub fn add(&self, v: i64) {
        let now = self.clock.now().as_nanos();
        let mut ring = self.ring.lock();
        self.update_offset(&mut ring, now);
        let offset = ring.offset;
        let bucket = &mut ring.buckets[offset];
        bucket.sum += v;
        bucket.count += 1;
    }

    pub fn reduce(&self, mut f: impl FnMut(&MutexWindowBucket)) {
        let now = self.clock.now().as_nanos();
        let ring = self.ring.lock();
        let size = ring.buckets.len();
        let span = self.span(&ring, now);
        let start = (ring.offset + span + 1) % size;
        for i in 0..size - span {
            f(&ring.buckets[(start + i) % size]);
        }
    }

    fn span(&self, ring: &Ring, now: u64) -> usize {
        let passed = now.saturating_sub(ring.last_time) / self.interval;
        usize::try_from(passed).map_or(ring.buckets.len(), |p| p.min(ring.buckets.len()))
    }

    fn update_offset(&self, ring: &mut Ring, now: u64) {
        let span = self.span(ring, now);
        if span == 0 {
            return;
        }
        let size = ring.buckets.len();
        for i in 0..span {
            ring.buckets[(ring.offset + i + 1) % size] = MutexWindowBucket::default();
        }
        ring.offset = (ring.offset + span) % size;
        ring.last_time = now - (now - ring.last_time) % self.interval;
    }
}

impl WindowUnderTest for MutexWindow {
    const NAME: &'static str = "mutex-window (go-zero design)";

    fn with_buckets(size: usize, interval: Duration) -> Self {
        MutexWindow::with_clock(size, interval, CoarseClock::new())
    }

    #[inline]
    fn add(&self, v: i64) {
        MutexWindow::add(self, v);
    }

    fn count(&self) -> u64 {
        let mut n = 0;
        self.reduce(|b| n += b.count);
        n
    }
}

#[cfg(test)]
mod tests {
    use keel_timex::ManualClock;

    use super::*;

    #[test]
    fn behaves_like_go_zero() {
        let clock = ManualClock::new();
        let interval = Duration::from_millis(50);
        let w = MutexWindow::with_clock(3, interval, clock.clone());
        let sums = || {
            let mut out = Vec::new();
            w.reduce(|b| out.push(b.sum));
            out
        };
        assert_eq!(sums(), [0, 0, 0]);
        w.add(1);
        assert_eq!(sums(), [0, 0, 1]);
        clock.advance(interval);
        w.add(2);
        w.add(3);
        assert_eq!(sums(), [0, 1, 5]);
        clock.advance(interval);
        w.add(4);
        w.add(5);
        w.add(6);
        assert_eq!(sums(), [1, 5, 15]);
        clock.advance(interval);
        w.add(7);
        assert_eq!(sums(), [5, 15, 7]);
    }

    #[test]
    fn idle_time_drops_expired_buckets_from_reads() {
        let clock = ManualClock::new();
        let interval = Duration::from_millis(50);
        let w = MutexWindow::with_clock(3, interval, clock.clone());
        w.add(1);
        clock.advance(interval * 2);
        let mut seen = 0;
        w.reduce(|_| seen += 1);
        assert_eq!(
            seen, 1,
            "two slices passed with no adds: one bucket left to visit"
        );
        clock.advance(interval * 5);
        seen = 0;
        w.reduce(|_| seen += 1);
        assert_eq!(seen, 0);
    }
}
