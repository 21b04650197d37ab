//! [`ShedderUnderTest`]: the adapter the load-shedder suite drives, and its implementations
//! for keel and each peer.

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use keel_shedder::cpu::ManualCpu;
use keel_shedder::{OwnedGuard, Shedder, Snapshot};
use rust_zero_core::load::{AdaptiveShedder, LoadShedderConfig, ShedPermit};
use tokio::sync::Semaphore;

pub mod service;

pub use self::service::{LittleLoadShedder, TowerLoadShed};

pub const CAPACITY: usize = 1024;

/// A load shedder as the suite sees it: one generic driver runs every implementation.
pub trait ShedderUnderTest: Send + Sync + 'static {
    const NAME: &'static str;
    const REJECTION_NAME: &'static str = Self::NAME;

    /// A shedder that admits every request of the benchmark threads.
    fn admitting() -> Self;

    /// A shedder that refuses.
    fn overloaded() -> Self;

    /// One request that completes at once: ask, then report a pass (or drop the permit).
    fn request(&self) -> bool;

    /// One request that completes successfully: `false` if it was refused.
    #[inline]
    fn allow_pass(&self) -> bool {
        self.request()
    }

    /// One request to an overloaded shedder: `true` if it was refused.
    #[inline]
    fn reject(&self) -> bool {
        !self.request()
    }
}

/// `tokio::sync::Semaphore::new(CAPACITY)`: `try_acquire()`, then dropping the permit.
#[derive(Debug)]
pub struct TokioSemaphore(Semaphore);

impl ShedderUnderTest for TokioSemaphore {
    const NAME: &'static str = "tokio Semaphore try_acquire";

    fn admitting() -> Self {
        TokioSemaphore(Semaphore::new(CAPACITY))
    }

    fn overloaded() -> Self {
        let semaphore = Semaphore::new(CAPACITY);
        semaphore
            .try_acquire_many(CAPACITY as u32)
            .expect("a new semaphore has all its permits")
            .forget();
        TokioSemaphore(semaphore)
    }

    #[inline]
    fn request(&self) -> bool {
        self.0.try_acquire().is_ok()
    }
}

/// `AdaptiveShedder::new(LoadShedderConfig::production(CAPACITY))`: 5 s in 50 buckets.
pub struct RustZeroCore {
    shedder: AdaptiveShedder,
    _held: Mutex<Vec<ShedPermit>>,
}

impl RustZeroCore {
    fn build() -> AdaptiveShedder {
        AdaptiveShedder::new(
            LoadShedderConfig::production(CAPACITY)
                .with_rolling_window(Duration::from_millis(100), 50),
        )
    }
}

impl ShedderUnderTest for RustZeroCore {
    const NAME: &'static str = "rust-zero-core";

    fn admitting() -> Self {
        RustZeroCore {
            shedder: RustZeroCore::build(),
            _held: Mutex::new(Vec::new()),
        }
    }

    fn overloaded() -> Self {
        let shedder = RustZeroCore::build();
        let held: Vec<ShedPermit> = std::iter::from_fn(|| shedder.try_acquire())
            .take(CAPACITY + 1)
            .collect();
        assert!(held.len() <= CAPACITY, "refused nothing at its capacity");
        RustZeroCore {
            shedder,
            _held: Mutex::new(held),
        }
    }

    #[inline]
    fn request(&self) -> bool {
        // Dropping the permit records the completion.
        self.shedder.try_acquire().is_some()
    }
}

crate::opaque_debug!(RustZeroCore);

pub const HIGH_LOAD_CPU: u32 = 950;
const HELD: usize = 1000;
const WARM_IN_FLIGHT: usize = 100;
const WARM_LATENCY: Duration = Duration::from_millis(25);

/// keel's [`Shedder`] with go-zero's defaults and an injected CPU signal ([`ManualCpu`]).
#[derive(Debug)]
pub struct Keel {
    shedder: Shedder,
    cpu: ManualCpu,
    _held: Vec<OwnedGuard>,
}

impl Keel {
    fn with_cpu(millis: u32) -> Keel {
        let cpu = ManualCpu::new(millis);
        let shedder = Shedder::builder()
            .cpu_source(cpu.clone())
            .build()
            .expect("go-zero's defaults are valid");
        Keel {
            shedder,
            cpu,
            _held: Vec::new(),
        }
    }
}

impl ShedderUnderTest for Keel {
    const NAME: &'static str = "keel";
    const REJECTION_NAME: &'static str = "keel (overloaded)";

    fn admitting() -> Self {
        Keel::with_cpu(0)
    }

    fn overloaded() -> Self {
        let mut keel = Keel::with_cpu(0);
        let mut held: Vec<OwnedGuard> = (0..2 * HELD)
            .map(|_| keel.shedder.allow_owned().expect("the CPU is idle"))
            .collect();
        // The in-flight average moves as requests finish: half finish between 2 × HELD and HELD.
        for guard in held.drain(HELD..).rev() {
            guard.pass();
        }
        keel.cpu.set(1000);
        keel._held = held;
        keel
    }

    #[inline]
    fn request(&self) -> bool {
        match self.shedder.allow() {
            Ok(guard) => {
                guard.pass();
                true
            }
            Err(_) => false,
        }
    }
}

/// [`Keel`] at [`HIGH_LOAD_CPU`]: over the threshold.
#[derive(Debug)]
pub struct KeelHighLoad {
    keel: Keel,
    warm: Mutex<()>,
}

impl KeelHighLoad {
    pub fn warm_round(&self) {
        let _round = self.warm.lock().expect("never poisoned");
        self.keel.cpu.set(0);
        let guards: Vec<_> = (0..WARM_IN_FLIGHT)
            .filter_map(|_| self.keel.shedder.allow().ok())
            .collect();
        thread::sleep(WARM_LATENCY);
        for guard in guards {
            guard.pass();
        }
        self.keel.cpu.set(HIGH_LOAD_CPU);
    }

    pub fn pause(&self) -> MutexGuard<'_, ()> {
        self.warm.lock().expect("never poisoned")
    }

    pub fn snapshot(&self) -> Snapshot {
        self.keel.shedder.snapshot()
    }
}

impl ShedderUnderTest for KeelHighLoad {
    const NAME: &'static str = "keel (high load)";

    fn admitting() -> Self {
        KeelHighLoad {
            keel: Keel::with_cpu(HIGH_LOAD_CPU),
            warm: Mutex::new(()),
        }
    }

    fn overloaded() -> Self {
        KeelHighLoad {
            keel: Keel::overloaded(),
            warm: Mutex::new(()),
        }
    }

    #[inline]
    fn request(&self) -> bool {
        self.keel.request()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reaches_the_shedder<S: ShedderUnderTest>() {
        let admitting = S::admitting();
        for _ in 0..1000 {
            assert!(admitting.allow_pass(), "{}: a request was refused", S::NAME);
        }
        let overloaded = S::overloaded();
        for _ in 0..1000 {
            assert!(
                overloaded.reject(),
                "{}: a request was let through",
                S::REJECTION_NAME
            );
        }
    }

    #[test]
    fn every_adapter_reaches_its_shedder() {
        reaches_the_shedder::<Keel>();
        reaches_the_shedder::<KeelHighLoad>();
        reaches_the_shedder::<RustZeroCore>();
        reaches_the_shedder::<TowerLoadShed>();
        reaches_the_shedder::<LittleLoadShedder>();
        reaches_the_shedder::<TokioSemaphore>();
    }

    #[test]
    fn the_high_load_shedder_runs_the_in_flight_check_and_admits() {
        let high = KeelHighLoad::admitting();
        // Over a bucket (100 ms) of warm-up, so that a finished bucket holds it.
        for _ in 0..5 {
            high.warm_round();
        }
        let _paused = high.pause();
        let before = high.snapshot();
        assert!(
            before.overloaded && before.cpu == Some(HIGH_LOAD_CPU),
            "{before:?}"
        );
        assert_eq!(before.in_flight, 0);
        assert!(before.limit >= 10.0, "{before:?}");
        for _ in 0..1000 {
            assert!(high.allow_pass());
        }
        assert_eq!(high.snapshot().dropped, 0);
    }
}
