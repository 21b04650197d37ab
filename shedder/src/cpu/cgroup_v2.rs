//! The cgroup v2 meter: `cpu.stat` usage over wall time × the cgroup's CPU limit.

use std::path::{Path, PathBuf};

use super::CpuError;
use super::files::{Reader, allowed_cpus, cgroup_dir, cpuset_count, under};
use super::meter::{CpuMeter, CpuTime, MeterKind};
use super::parse::{keyed_value, parse_cpu_max, parse_uint, unified_path};

/// Where the unified hierarchy is mounted.
const MOUNT: &str = "/sys/fs/cgroup";

/// Whether `root` holds a cgroup v2 (unified) hierarchy at `/sys/fs/cgroup`. Its root has
/// `cgroup.controllers`, which a v1 or hybrid layout (v2 under `unified/`) lacks there.
pub(crate) fn detected(root: &Path) -> bool {
    under(root, MOUNT).join("cgroup.controllers").exists()
}

#[derive(Debug)]
pub(crate) struct CgroupV2 {
    reader: Reader,
    root: PathBuf,
    /// The mount, where the quota walk stops.
    mount: PathBuf,
    /// This process's cgroup directory.
    dir: PathBuf,
    /// `<dir>/cpu.stat`, kept so a sample builds no path.
    stat: PathBuf,
    limit: f64,
    time: CpuTime,
}

impl CgroupV2 {
    pub(crate) fn new(root: &Path) -> Result<CgroupV2, CpuError> {
        if !detected(root) {
            return Err(CpuError::NoData("no cgroup v2 hierarchy at /sys/fs/cgroup"));
        }
        let mut reader = Reader::new();
        let mount = under(root, MOUNT);
        let cgroup_file = under(root, "/proc/self/cgroup");
        let path = unified_path(reader.read(&cgroup_file)?)
            .ok_or_else(|| CpuError::format(&cgroup_file, "no \"0::<path>\" line"))?;
        // Our own cgroup when it is visible; else the mount, which is a container's private
        // view of its own cgroup (a cgroup namespace, or only its subtree bind-mounted).
        let dir = cgroup_dir(&mount, path)
            .filter(|d| d.join("cpu.stat").exists())
            .unwrap_or_else(|| mount.clone());
        let mut meter = CgroupV2 {
            reader,
            root: root.to_owned(),
            stat: dir.join("cpu.stat"),
            mount,
            dir,
            limit: 0.0,
            time: CpuTime::default(),
        };
        meter.usage_ns()?; // fail now, not on every sample, if cpu.stat is unusable
        meter.refresh_limit()?;
        Ok(meter)
    }

    /// Total CPU time of the cgroup, in ns.
    fn usage_ns(&mut self) -> Result<u64, CpuError> {
        let text = self.reader.read(&self.stat)?;
        let usec = keyed_value(text, "usage_usec")
            .ok_or_else(|| CpuError::format(&self.stat, "no usage_usec"))?;
        let usec = parse_uint(usec).map_err(|e| CpuError::format(&self.stat, e.to_string()))?;
        Ok(usec.saturating_mul(1000))
    }

    /// The smallest `cpu.max` quota from our cgroup up to the mount: a parent's quota caps
    /// every child, and the kernel does not copy it down.
    fn quota(&mut self) -> Result<Option<f64>, CpuError> {
        let mut best: Option<f64> = None;
        for dir in self
            .dir
            .ancestors()
            .take_while(|d| d.starts_with(&self.mount))
        {
            let path = dir.join("cpu.max");
            // The hierarchy root has no cpu.max; neither does a cgroup without the cpu
            // controller enabled.
            let Some(text) = self.reader.read_opt(&path)? else {
                continue;
            };
            let quota = parse_cpu_max(text).map_err(|e| CpuError::format(&path, e))?;
            best = match (best, quota) {
                (Some(b), Some(q)) => Some(b.min(q)),
                (b, q) => b.or(q),
            };
        }
        Ok(best)
    }

    /// The CPUs the cgroup may run on: its effective cpuset, else the mount's, else this
    /// process's allowed CPUs.
    fn cpus(&mut self) -> Result<usize, CpuError> {
        const NAMES: &[&str] = &["cpuset.cpus.effective"];
        if let Some(n) = cpuset_count(&mut self.reader, &self.dir, NAMES)? {
            return Ok(n);
        }
        if let Some(n) = cpuset_count(&mut self.reader, &self.mount, NAMES)? {
            return Ok(n);
        }
        Ok(allowed_cpus(&self.root, &mut self.reader))
    }
}

super::meter::cgroup_meter!(CgroupV2, MeterKind::CgroupV2);
