//! [`InFlightAverage`]: go-zero's `avgFlying`, lock-free.
//!
//! go-zero guards the average with a spin lock taken on every completion. Here it is one
//! `AtomicU64` holding the `f64`'s bits, updated by a compare-and-swap loop, and only on
//! the completions of timed requests (see `Builder::latency_sample_period`).

use crate::decision::ema;
use crate::sync::{AtomicU64, Ordering};

#[derive(Debug)]
pub(crate) struct InFlightAverage {
    bits: AtomicU64,
}

impl InFlightAverage {
    pub(crate) fn new() -> InFlightAverage {
        InFlightAverage {
            bits: AtomicU64::new(0f64.to_bits()),
        }
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

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two completions averaging at once: both steps land, in one order or the other.
    #[test]
    fn loom_concurrent_steps_are_both_applied() {
        loom::model(|| {
            let avg = Arc::new(InFlightAverage::new());
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
