//! [`CpuMode`]: which counters the CPU signal is read from, and building that meter.

use std::path::Path;

use super::{CpuError, CpuMeter};

/// Which CPU the signal measures.
///
/// Only Linux has a CPU signal: on other platforms every mode fails to
/// [`detect`](CpuMode::detect) with [`CpuError::Unsupported`], and a
/// [`SystemCpu`](super::SystemCpu) built on it reports no signal (`usage()` is `None`).
///
/// ```
/// use keel_shedder::cpu::CpuMode;
///
/// match CpuMode::Auto.detect() {
///     Ok(meter) => println!("{} meter, {} CPUs", meter.kind(), meter.limit_cpus()),
///     Err(e) => println!("no CPU signal: {e}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CpuMode {
    /// The cgroup this process runs in if there is one (v2, else v1), else the host. The
    /// right choice in a container, and equivalent to `Host` on a machine without cgroup
    /// CPU accounting.
    #[default]
    Auto,
    /// The cgroup only (v2, else v1): usage of everything in this process's cgroup relative
    /// to its CPU quota, or its cpuset when there is no quota.
    Cgroup,
    /// The whole machine (`/proc/stat`), relative to all its cores.
    Host,
    /// This process alone, relative to the CPUs it may run on. For several services sharing
    /// one cgroup when each should shed on its own load only.
    Process,
}

impl CpuMode {
    /// The meter for this mode reading the real `/proc` and `/sys/fs/cgroup`.
    pub fn detect(self) -> Result<Box<dyn CpuMeter>, CpuError> {
        self.detect_in(Path::new("/"))
    }

    /// The meter for this mode reading `<root>/proc/...` and `<root>/sys/fs/cgroup/...`
    /// instead: for tests with fixture trees, or a host's files mounted elsewhere.
    pub fn detect_in(self, root: &Path) -> Result<Box<dyn CpuMeter>, CpuError> {
        imp::detect(self, root)
    }

    /// Index into per-mode tables.
    pub(crate) fn index(self) -> usize {
        match self {
            CpuMode::Auto => 0,
            CpuMode::Cgroup => 1,
            CpuMode::Host => 2,
            CpuMode::Process => 3,
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::super::cgroup_v1::CgroupV1;
    use super::super::cgroup_v2::{self, CgroupV2};
    use super::super::host::Host;
    use super::super::process::Process;
    use super::*;

    fn boxed<M: CpuMeter>(m: Result<M, CpuError>) -> Result<Box<dyn CpuMeter>, CpuError> {
        m.map(|m| Box::new(m) as Box<dyn CpuMeter>)
    }

    /// v2 when the unified hierarchy is mounted at /sys/fs/cgroup, else v1.
    fn cgroup(root: &Path) -> Result<Box<dyn CpuMeter>, CpuError> {
        if cgroup_v2::detected(root) {
            boxed(CgroupV2::new(root))
        } else {
            boxed(CgroupV1::new(root))
        }
    }

    pub(super) fn detect(mode: CpuMode, root: &Path) -> Result<Box<dyn CpuMeter>, CpuError> {
        match mode {
            CpuMode::Auto => cgroup(root).or_else(|_| boxed(Host::new(root))),
            CpuMode::Cgroup => cgroup(root),
            CpuMode::Host => boxed(Host::new(root)),
            CpuMode::Process => boxed(Process::new(root)),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub(super) fn detect(_: CpuMode, _: &Path) -> Result<Box<dyn CpuMeter>, CpuError> {
        Err(CpuError::Unsupported)
    }
}
