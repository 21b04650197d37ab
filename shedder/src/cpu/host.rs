//! The host meter: busy over total jiffies of the aggregate `/proc/stat` line.

use std::path::{Path, PathBuf};

use keel_timex::Nanos;

use super::CpuError;
use super::files::{Reader, under};
use super::meter::{CpuMeter, MeterKind, millis};
use super::parse::{proc_stat_cores, proc_stat_times};

#[derive(Debug)]
pub(crate) struct Host {
    reader: Reader,
    stat: PathBuf,
    cores: f64,
    /// (busy, total) jiffies at the previous sample.
    prev: Option<(u64, u64)>,
}

impl Host {
    pub(crate) fn new(root: &Path) -> Result<Host, CpuError> {
        let mut reader = Reader::new();
        let stat = under(root, "/proc/stat");
        let text = reader.read(&stat)?;
        proc_stat_times(text).map_err(|e| CpuError::format(&stat, e))?;
        let cores = match proc_stat_cores(text) {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Ok(Host {
            reader,
            stat,
            cores: cores as f64,
            prev: None,
        })
    }
}

impl CpuMeter for Host {
    /// Jiffies are already a share of all cores' time, so wall time is not needed.
    fn sample(&mut self, _now: Nanos) -> Result<Option<f64>, CpuError> {
        let read = self
            .reader
            .read(&self.stat)
            .and_then(|text| proc_stat_times(text).map_err(|e| CpuError::format(&self.stat, e)));
        let (busy, total) = match read {
            Ok(v) => v,
            Err(e) => {
                self.prev = None;
                return Err(e);
            }
        };
        let Some((prev_busy, prev_total)) = self.prev.replace((busy, total)) else {
            return Ok(None);
        };
        // Checked: a counter going backwards re-primes instead of reporting a spike.
        let (Some(d_busy), Some(d_total)) =
            (busy.checked_sub(prev_busy), total.checked_sub(prev_total))
        else {
            return Ok(None);
        };
        if d_total == 0 {
            return Ok(None);
        }
        Ok(Some(millis(d_busy as f64 / d_total as f64)))
    }

    fn limit_cpus(&self) -> f64 {
        self.cores
    }

    fn kind(&self) -> MeterKind {
        MeterKind::Host
    }
}
