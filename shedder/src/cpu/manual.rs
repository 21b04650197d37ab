//! [`ManualCpu`] and [`NoCpu`]: injected and absent CPU signals.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::CpuSource;

/// Stored when a [`ManualCpu`] reports no signal.
const NONE: u32 = u32::MAX;

/// A CPU signal set by hand: tests, simulations, or a user's own measurement.
///
/// Clones share one value. Values above 1000 are clamped to 1000.
///
/// ```
/// use keel_shedder::cpu::{CpuSource, ManualCpu};
///
/// let cpu = ManualCpu::new(100);
/// let seen_by_shedder = cpu.clone();
/// cpu.set(2000);
/// assert_eq!(seen_by_shedder.usage(), Some(1000));
/// cpu.clear();
/// assert_eq!(seen_by_shedder.usage(), None);
/// ```
#[derive(Clone)]
pub struct ManualCpu {
    millis: Arc<AtomicU32>,
}

impl ManualCpu {
    /// A signal reading `millis` (clamped to 1000).
    pub fn new(millis: u32) -> ManualCpu {
        ManualCpu {
            millis: Arc::new(AtomicU32::new(millis.min(1000))),
        }
    }

    /// Sets the reading (clamped to 1000).
    pub fn set(&self, millis: u32) {
        self.millis.store(millis.min(1000), Ordering::Relaxed);
    }

    /// From now on, report no signal.
    pub fn clear(&self) {
        self.millis.store(NONE, Ordering::Relaxed);
    }
}

impl Default for ManualCpu {
    fn default() -> Self {
        ManualCpu::new(0)
    }
}

impl CpuSource for ManualCpu {
    #[inline]
    fn usage(&self) -> Option<u32> {
        match self.millis.load(Ordering::Relaxed) {
            NONE => None,
            m => Some(m),
        }
    }
}

impl fmt::Debug for ManualCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualCpu").field(&self.usage()).finish()
    }
}

/// No CPU signal at all: [`usage`](CpuSource::usage) is always `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoCpu;

impl CpuSource for NoCpu {
    #[inline]
    fn usage(&self) -> Option<u32> {
        None
    }
}
