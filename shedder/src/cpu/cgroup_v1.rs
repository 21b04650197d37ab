//! The cgroup v1 meter: `cpuacct.usage` over wall time × the cgroup's CPU limit.

use std::path::{Path, PathBuf};

use super::CpuError;
use super::files::{Reader, allowed_cpus, cgroup_dir, cpuset_count, under};
use super::meter::{CpuMeter, CpuTime, MeterKind};
use super::parse::{V1Line, parse_uint, quota_cpus, v1_lines};

/// Where the v1 controller hierarchies are mounted, one directory each.
const MOUNT: &str = "/sys/fs/cgroup";

/// One controller's hierarchy: its mount directory and our cgroup directory inside it.
#[derive(Debug)]
struct Hierarchy {
    mount: PathBuf,
    dir: PathBuf,
}

#[derive(Debug)]
pub(crate) struct CgroupV1 {
    reader: Reader,
    root: PathBuf,
    /// `<cpuacct dir>/cpuacct.usage`.
    usage: PathBuf,
    cpu: Option<Hierarchy>,
    cpuset: Option<Hierarchy>,
    limit: f64,
    time: CpuTime,
}

impl CgroupV1 {
    pub(crate) fn new(root: &Path) -> Result<CgroupV1, CpuError> {
        let mut reader = Reader::new();
        let cgroup_file = under(root, "/proc/self/cgroup");
        let text = reader.read(&cgroup_file)?;
        let lines = v1_lines(text).map_err(|e| CpuError::format(&cgroup_file, e))?;
        let mount = under(root, MOUNT);
        let usage = find(&mount, &lines, "cpuacct", "cpuacct.usage")
            .ok_or(CpuError::NoData("no cgroup v1 cpuacct.usage"))?
            .dir
            .join("cpuacct.usage");
        let cpu = find(&mount, &lines, "cpu", "cpu.cfs_quota_us");
        let cpuset = find(&mount, &lines, "cpuset", "cpuset.cpus")
            .or_else(|| find(&mount, &lines, "cpuset", "cpuset.effective_cpus"));
        let mut meter = CgroupV1 {
            reader,
            root: root.to_owned(),
            usage,
            cpu,
            cpuset,
            limit: 0.0,
            time: CpuTime::default(),
        };
        meter.usage_ns()?;
        meter.refresh_limit()?;
        Ok(meter)
    }

    fn usage_ns(&mut self) -> Result<u64, CpuError> {
        let text = self.reader.read(&self.usage)?;
        parse_uint(text).map_err(|e| CpuError::format(&self.usage, e.to_string()))
    }

    /// The smallest CFS quota from our cgroup up to the hierarchy root (-1 means none).
    fn quota(&mut self) -> Result<Option<f64>, CpuError> {
        let Some(h) = &self.cpu else {
            return Ok(None);
        };
        let mut best: Option<f64> = None;
        for dir in h.dir.ancestors().take_while(|d| d.starts_with(&h.mount)) {
            let quota_path = dir.join("cpu.cfs_quota_us");
            let Some(quota) = self.reader.read_opt(&quota_path)? else {
                continue;
            };
            // parse_uint reads -1 (no quota) as 0, which quota_cpus treats as none.
            let quota =
                parse_uint(quota).map_err(|e| CpuError::format(&quota_path, e.to_string()))?;
            if quota == 0 {
                continue;
            }
            let period_path = dir.join("cpu.cfs_period_us");
            let period = parse_uint(self.reader.read(&period_path)?)
                .map_err(|e| CpuError::format(&period_path, e.to_string()))?;
            let cpus = quota_cpus(quota, period).map_err(|e| CpuError::format(&period_path, e))?;
            best = match (best, cpus) {
                (Some(b), Some(q)) => Some(b.min(q)),
                (b, q) => b.or(q),
            };
        }
        Ok(best)
    }

    fn cpus(&mut self) -> Result<usize, CpuError> {
        if let Some(h) = &self.cpuset {
            // effective_cpus first: cpuset.cpus may be wider than what the parent allows.
            const NAMES: &[&str] = &["cpuset.effective_cpus", "cpuset.cpus"];
            if let Some(n) = cpuset_count(&mut self.reader, &h.dir, NAMES)? {
                return Ok(n);
            }
        }
        Ok(allowed_cpus(&self.root, &mut self.reader))
    }
}

/// Our directory in the hierarchy carrying `controller`: the mount is named after the
/// controller or after the whole joined list (`cpu,cpuacct`); inside it, our cgroup path
/// when it exists, else the mount itself (a container's private view).
fn find(mount: &Path, lines: &[V1Line<'_>], controller: &str, file: &str) -> Option<Hierarchy> {
    let line = lines.iter().find(|l| l.has(controller))?;
    [line.controllers, controller]
        .iter()
        .map(|name| mount.join(name))
        .filter(|m| m.is_dir())
        .find_map(|m| {
            let dir = cgroup_dir(&m, line.path)
                .filter(|d| d.join(file).exists())
                .or_else(|| m.join(file).exists().then(|| m.clone()))?;
            Some(Hierarchy { mount: m, dir })
        })
}

super::meter::cgroup_meter!(CgroupV1, MeterKind::CgroupV1);
