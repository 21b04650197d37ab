//! The CPU signal: how busy the CPUs this process may use are, in millis (0..=1000).
//!
//! Reusable on its own. A [`CpuSource`] answers the *smoothed* usage the shedder compares
//! with its threshold; [`SystemCpu`] is the real one (a lazily started, process-wide
//! sampler over cgroup v2, cgroup v1, `/proc/stat` or this process's own CPU time),
//! [`ManualCpu`] is for tests and for users with their own signal, [`NoCpu`] reports none.
//!
//! Underneath, a [`CpuMeter`] turns the kernel's cumulative counters into the usage
//! between two samples; [`CpuMode::detect`] builds the right one, and you can read it
//! yourself for an instantaneous, unsmoothed value.
//!
//! # Where the numbers come from (Linux)
//!
//! | mode | CPU time | relative to |
//! |---|---|---|
//! | cgroup v2 | `cpu.stat` `usage_usec` of this process's cgroup | min(`cpu.max` quota, smallest up to the root; `cpuset.cpus.effective`) |
//! | cgroup v1 | `cpuacct.usage` | min(`cpu.cfs_quota_us / cpu.cfs_period_us`; `cpuset` CPUs) |
//! | host | busy jiffies of `/proc/stat` (user, nice, system, irq, softirq, steal) | all jiffies (busy, idle, iowait) |
//! | process | utime + stime of `/proc/self/stat` | `Cpus_allowed_list` of `/proc/self/status` |
//!
//! For the cgroup and process meters, usage = ΔCPU time / (Δwall time × limit CPUs) ×
//! 1000, capped at 1000. A sample reads one small file (limits are read at detection and
//! re-read once a minute). Other platforms have no CPU signal: [`CpuMode::detect`] fails
//! with [`CpuError::Unsupported`] and [`SystemCpu`]'s `usage()` is `None`.
//!
//! # Differences from go-zero
//!
//! - **Denominator.** go-zero divides the cgroup's CPU time by the host's `/proc/stat`
//!   time, scaled by host cores / limit. That assumes the cgroup could use every host core:
//!   with a cpuset smaller than the host, its usage reads too low. Here the cgroup's CPU
//!   time is divided by wall time × the cgroup's own limit, which is exact for quotas and
//!   cpusets alike.
//! - **Smoothing.** The average is an `f64`, rounded when published; go-zero truncates to
//!   an integer each step, which pins it at 0 for steady usage below 20 and biases it low.
//!   It is seeded with the first sample instead of ramping up from 0 over ~5 s.
//! - **Resets.** A counter going backwards gives no sample (the meter re-primes); go-zero's
//!   unsigned subtraction wraps and reports 1000.
//! - **Quota search.** The smallest quota from this process's cgroup up to the hierarchy
//!   root counts, not only the one at `/sys/fs/cgroup`, and our own cgroup path from
//!   `/proc/self/cgroup` is honoured when visible (go-zero assumes a private cgroup view).
//! - **Lifecycle.** No thread at program start: the sampler starts with the first
//!   `usage()` and stops after the last handle is dropped. A failed read gives "no signal"
//!   (`None`) rather than 0, and the shedder decides what that means.
//! - **Detection.** v2 is recognised by `/sys/fs/cgroup/cgroup.controllers`, not by
//!   `statfs` magic (no libc here); a hybrid layout (v2 mounted under `unified/`) is v1,
//!   as in go-zero.
//! - **Parsers.** A CPU-list range longer than 65536 is rejected instead of expanded.

mod error;
// Only the Linux meters read files; the parsers stay compiled (and tested) everywhere.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
mod files;
mod manual;
mod meter;
mod mode;
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
mod parse;
mod sampler;
mod system;

#[cfg(target_os = "linux")]
mod cgroup_v1;
#[cfg(target_os = "linux")]
mod cgroup_v2;
#[cfg(target_os = "linux")]
mod host;
#[cfg(target_os = "linux")]
mod process;

pub use error::CpuError;
pub use manual::{ManualCpu, NoCpu};
pub use meter::{CpuMeter, MeterKind};
pub use mode::CpuMode;
pub use system::{SAMPLE_INTERVAL, SystemCpu};

use std::sync::Arc;

/// Where a shedder reads the CPU usage it compares with its threshold.
///
/// `usage` is called on every admission decision, so it must be cheap (an atomic load):
/// sample in the background and answer from a cached value, as [`SystemCpu`] does.
///
/// ```
/// use keel_shedder::cpu::{CpuSource, ManualCpu};
///
/// let cpu = ManualCpu::new(450);
/// assert_eq!(cpu.usage(), Some(450));
/// cpu.set(980);
/// assert_eq!(cpu.usage(), Some(980));
/// ```
pub trait CpuSource: Send + Sync + 'static {
    /// Smoothed usage of the CPUs this process may use, in millis: 1000 means all of them
    /// (all of the cgroup quota in a container). `None` means there is no signal (an
    /// unsupported platform, unreadable files); the shedder then applies its
    /// [`CpuFallback`](crate::CpuFallback).
    fn usage(&self) -> Option<u32>;
}

impl<T: CpuSource + ?Sized> CpuSource for Arc<T> {
    #[inline]
    fn usage(&self) -> Option<u32> {
        (**self).usage()
    }
}

impl<T: CpuSource + ?Sized> CpuSource for Box<T> {
    #[inline]
    fn usage(&self) -> Option<u32> {
        (**self).usage()
    }
}
