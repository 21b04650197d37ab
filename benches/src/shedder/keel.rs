//! keel's own shedder, as the suite measures it.

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use keel_shedder::cpu::ManualCpu;
use keel_shedder::{OwnedGuard, Shedder, Snapshot};

use super::ShedderUnderTest;

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
