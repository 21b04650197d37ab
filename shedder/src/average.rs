//! [`InFlightAverage`]: go-zero's `avgFlying`, lock-free.
//!
//! go-zero guards the average with a spin lock taken on every completion. Here it is one
//! `AtomicU64` holding the `f64`'s bits, updated by a compare-and-swap loop, on the
//! completions of timed requests (see `Builder::latency_sample_period`), at most once per
//! `Builder::in_flight_average_interval`.
//!
//! Why the interval: a step reads the total in flight, i.e. every thread's stripe, and
//! writes one shared word. With two threads completing requests that costs about 150 ns
//! per step in cache misses (measured: 33 ns per request at 2 threads with a step on every
//! eighth request, 15 ns without steps). One step per millisecond keeps the average
//! current at any rate that can overload a server, for a negligible cost.

use crate::decision::ema;
use crate::sync::{AtomicU64, Ordering};

/// `last_step` before the first step.
const NEVER: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) struct InFlightAverage {
    bits: AtomicU64,
    /// Clock nanos of the last step, or [`NEVER`].
    last_step: AtomicU64,
    /// Minimum nanos between steps; 0 = every call.
    interval: u64,
}

impl InFlightAverage {
    pub(crate) fn new(interval: u64) -> InFlightAverage {
        InFlightAverage {
            bits: AtomicU64::new(0f64.to_bits()),
            last_step: AtomicU64::new(NEVER),
            interval,
        }
    }

    /// Whether a completion at `now` should step the average; claims the step if so.
    /// Costs one load of a word that changes at most once per interval.
    #[inline]
    pub(crate) fn claim(&self, now: u64) -> bool {
        if self.interval == 0 {
            return true;
        }
        let last = self.last_step.load(Ordering::Relaxed);
        if last != NEVER && now.saturating_sub(last) < self.interval {
            return false;
        }
        self.last_step
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// One averaging step with `flying` requests in flight. Concurrent steps are all
    /// applied, in some order (a plain load and store could lose one).
    #[inline]
    pub(crate) fn step(&self, flying: f64) {
        let mut current = self.bits.load(Ordering::Relaxed);
        loop {
            let next = ema(f64::from_bits(current), flying).to_bits();
            match self.bits.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn set(&self, avg: f64) {
        self.bits.store(avg.to_bits(), Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn steps_at_most_once_per_interval() {
        let avg = InFlightAverage::new(1_000_000);
        assert!(avg.claim(0), "the first step is always due");
        assert!(!avg.claim(999_999));
        assert!(avg.claim(1_000_000));
        assert!(!avg.claim(1_000_001));
        assert!(avg.claim(5_000_000));
        let every = InFlightAverage::new(0);
        assert!((0..3).all(|_| every.claim(7)));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two completions averaging at once: both steps land, in one order or the other.
    #[test]
    fn loom_concurrent_steps_are_both_applied() {
        loom::model(|| {
            let avg = Arc::new(InFlightAverage::new(0));
            let other = {
                let avg = avg.clone();
                thread::spawn(move || avg.step(10.0))
            };
            avg.step(20.0);
            other.join().unwrap();
            let a_then_b = ema(ema(0.0, 10.0), 20.0);
            let b_then_a = ema(ema(0.0, 20.0), 10.0);
            let got = avg.get();
            assert!(got == a_then_b || got == b_then_a, "{got}");
        });
    }
}
