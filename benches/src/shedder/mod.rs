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

/// The fixed in-flight limit of the peers that have one (tower's `ConcurrencyLimit`, the
/// tokio `Semaphore`, rust-zero-core's `max_concurrency`): far above what two benchmark
/// threads reach, so only their rejecting setups, which hold it all, ever hit it.
pub const CAPACITY: usize = 1024;

/// A load shedder as the suite sees it: one generic driver runs every implementation, so
/// each one only says how to build it in an admitting and in a rejecting state and how to
/// make one request.
pub trait ShedderUnderTest: Send + Sync + 'static {
    /// The benchmark id in the admitting groups, and the name in the report.
    const NAME: &'static str;
    /// The benchmark id in the rejection group.
    const REJECTION_NAME: &'static str = Self::NAME;

    /// A shedder that admits every request of the benchmark threads.
    fn admitting() -> Self;

    /// A shedder that refuses: overloaded the way its design sheds (CPU and in-flight for
    /// keel, a full limit or queue for the peers), with requests held open in the setup.
    fn overloaded() -> Self;

    /// One request that completes at once: ask, then report a pass (or drop the permit).
    /// `false` if it was refused.
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

/// `tokio::sync::Semaphore::new(CAPACITY)`: `try_acquire()`, then dropping the permit. No
/// statistics, no clock: what a fixed concurrency limit costs.
#[derive(Debug)]
pub struct TokioSemaphore(Semaphore);

impl ShedderUnderTest for TokioSemaphore {
    const NAME: &'static str = "tokio Semaphore try_acquire";

    fn admitting() -> Self {
        TokioSemaphore(Semaphore::new(CAPACITY))
    }

    /// Every permit taken (and forgotten): `try_acquire` fails.
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

/// `AdaptiveShedder::new(LoadShedderConfig::production(CAPACITY))` over go-zero's window of
/// 5 s in 50 buckets, its CPU signal its own process sampler (not injectable).
pub struct RustZeroCore {
    shedder: AdaptiveShedder,
    /// The rejecting setup's permits, held open.
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

    /// Permits taken until it refuses one: at [`CAPACITY`] in flight (or earlier, if the
    /// process is busy enough for its own CPU signal) and held open.
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

/// The injected CPU usage of the high-load shedder while it is measured (millis): over
/// go-zero's threshold of 900, so every decision runs the in-flight check, with an overload
/// factor of 0.5.
pub const HIGH_LOAD_CPU: u32 = 950;

/// Requests held open by [`Keel::overloaded`]: far over its limit at 100% CPU
/// (`max(1, max_pass × min_rt × 0.01) × 0.1`, 1 on a fresh window).
const HELD: usize = 1000;

/// Requests one warm-up round of [`KeelHighLoad`] keeps in flight together.
const WARM_IN_FLIGHT: usize = 100;
/// How long each warm-up request takes.
const WARM_LATENCY: Duration = Duration::from_millis(25);

/// keel's [`Shedder`] with go-zero's defaults and an injected CPU signal ([`ManualCpu`]):
/// admitting at CPU 0, overloaded at 1000 with [`HELD`] requests held open.
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
        // The in-flight average moves only as (timed) requests finish: finish half of them
        // while the count is between 2 × HELD and HELD.
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

/// [`Keel`] at [`HIGH_LOAD_CPU`]: over the threshold, so every decision also runs the
/// in-flight check, yet admits (go-zero's `BenchmarkAdaptiveShedder_Allow/high load`).
#[derive(Debug)]
pub struct KeelHighLoad {
    keel: Keel,
    /// Held by a warm-up round, or by the benchmark to keep warm-up rounds out.
    warm: Mutex<()>,
}

impl KeelHighLoad {
    /// One warm-up round (about 25 ms), unless the shedder is being measured: it waits.
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

    /// Keeps warm-up rounds out (none has a request in flight) while the guard lives.
    pub fn pause(&self) -> MutexGuard<'_, ()> {
        self.warm.lock().expect("never poisoned")
    }

    /// The shedder's state, for the report.
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

    /// Guards the wiring of each adapter: a benchmark whose request never reached the
    /// shedder, or whose "rejection" was in fact an admission, would measure the wrong thing.
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

    /// The high-load shedder is measured on its checked path (CPU over the threshold) with
    /// a window whose limit two benchmark threads stay far below.
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
