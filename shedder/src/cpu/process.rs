//! The process meter: this process's CPU time over wall time × its allowed CPUs.
//!
//! The CPU time is utime + stime of `/proc/self/stat`, which sums every thread of the
//! process, in clock ticks of 10 ms (`USER_HZ` = 100 on every mainstream architecture; read
//! without libc, so assumed). `/proc/self/schedstat` has nanoseconds but counts only the
//! main thread, so it would miss the work of every other thread.

use std::path::{Path, PathBuf};

use keel_timex::Nanos;

use super::CpuError;
use super::files::{Reader, allowed_cpus, under};
use super::meter::{CpuMeter, CpuTime, MeterKind};
use super::parse::proc_self_ticks;

/// Nanoseconds per clock tick (`USER_HZ` = 100).
const TICK_NS: u64 = 10_000_000;

#[derive(Debug)]
pub(crate) struct Process {
    reader: Reader,
    root: PathBuf,
    stat: PathBuf,
    limit: f64,
    time: CpuTime,
}

impl Process {
    pub(crate) fn new(root: &Path) -> Result<Process, CpuError> {
        let mut meter = Process {
            reader: Reader::new(),
            root: root.to_owned(),
            stat: under(root, "/proc/self/stat"),
            limit: 0.0,
            time: CpuTime::default(),
        };
        meter.cpu_ns()?;
        meter.refresh_limit()?;
        Ok(meter)
    }

    fn cpu_ns(&mut self) -> Result<u64, CpuError> {
        let text = self.reader.read(&self.stat)?;
        let ticks = proc_self_ticks(text).map_err(|e| CpuError::format(&self.stat, e))?;
        Ok(ticks.saturating_mul(TICK_NS))
    }
}

impl CpuMeter for Process {
    fn sample(&mut self, now: Nanos) -> Result<Option<f64>, CpuError> {
        let reading = self.cpu_ns();
        self.time.sample(reading, now, self.limit)
    }

    fn limit_cpus(&self) -> f64 {
        self.limit
    }

    fn refresh_limit(&mut self) -> Result<(), CpuError> {
        self.limit = allowed_cpus(&self.root, &mut self.reader) as f64;
        Ok(())
    }

    fn kind(&self) -> MeterKind {
        MeterKind::Process
    }
}
