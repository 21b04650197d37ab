//! The Linux meters against fixture trees that reproduce real `/proc` and `/sys/fs/cgroup`
//! layouts, with counters advanced by known amounts between samples.
#![cfg(target_os = "linux")]

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel_shedder::cpu::{CpuError, CpuMeter, CpuMode, CpuSource, MeterKind, SystemCpu};
use keel_timex::{Clock, ManualClock, Nanos};

/// A directory tree under the system temp dir, removed on drop.
struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("keel-cpu-{}-{name}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        Tree { root }
    }

    /// Writes `content` to `<root>/<abs>`, creating directories (in place, as the kernel
    /// updates its files).
    fn write(&self, abs: &str, content: &str) -> &Tree {
        let path = self.path(abs);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        self
    }

    fn remove(&self, abs: &str) {
        fs::remove_file(self.path(abs)).unwrap();
    }

    fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    fn detect(&self, mode: CpuMode) -> Result<Box<dyn CpuMeter>, CpuError> {
        mode.detect_in(&self.root)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

const CG: &str = "/sys/fs/cgroup";
const SEC: u64 = 1_000_000_000;

fn at(secs: f64) -> Nanos {
    Nanos::from_nanos((secs * SEC as f64) as u64)
}

fn cpu_stat(usage_usec: u64) -> String {
    format!(
        "usage_usec {usage_usec}\nuser_usec {}\nsystem_usec 0\nnr_periods 0\n",
        usage_usec
    )
}

/// A cgroup v2 container with a private cgroup namespace: `0::/` and the container's own
/// cgroup mounted at /sys/fs/cgroup, 1.5 CPUs of quota on a 4-CPU cpuset.
fn v2_container() -> Tree {
    let t = Tree::new("v2");
    t.write("/proc/self/cgroup", "0::/\n")
        .write(
            &format!("{CG}/cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .write(&format!("{CG}/cpu.max"), "150000 100000\n")
        .write(&format!("{CG}/cpuset.cpus.effective"), "0-3\n")
        .write(&format!("{CG}/cpu.stat"), &cpu_stat(1_000_000));
    t
}

fn assert_err<T>(r: Result<T, CpuError>, what: &str, ok: impl Fn(&CpuError) -> bool) {
    match r {
        Ok(_) => panic!("{what}: expected an error"),
        Err(e) => assert!(ok(&e), "{what}: unexpected error {e:?} ({e})"),
    }
}

#[test]
fn v2_container_usage_is_relative_to_the_quota() {
    let t = v2_container();
    let mut m = t.detect(CpuMode::Auto).unwrap();
    assert_eq!(m.kind(), MeterKind::CgroupV2);
    assert_eq!(m.limit_cpus(), 1.5, "min(4 cpus, 1.5 quota)");
    assert_eq!(m.sample(at(10.0)).unwrap(), None, "the first sample primes");
    // 0.75 CPU-seconds in 1 s of a 1.5-CPU quota: half.
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(1_750_000));
    assert_eq!(m.sample(at(11.0)).unwrap(), Some(500.0));
    // 0.3 CPU-seconds in 0.5 s: 0.6 CPUs = 400 millis.
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(2_050_000));
    assert_eq!(m.sample(at(11.5)).unwrap(), Some(400.0));
    // More than the quota (a burst, or the quota was just lowered) is capped.
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(4_050_000));
    assert_eq!(m.sample(at(12.5)).unwrap(), Some(1000.0));
    // No CPU used.
    assert_eq!(m.sample(at(13.5)).unwrap(), Some(0.0));
    // Same instant again: nothing to divide by.
    assert_eq!(m.sample(at(13.5)).unwrap(), None);
}

#[test]
fn v2_counter_reset_gives_no_spike_and_re_primes() {
    let t = v2_container();
    let mut m = t.detect(CpuMode::Cgroup).unwrap();
    m.sample(at(1.0)).unwrap();
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(100));
    assert_eq!(m.sample(at(2.0)).unwrap(), None, "went backwards");
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(100 + 150_000));
    // Measured from the reset value: 0.15 s in 1 s of 1.5 CPUs.
    assert_eq!(m.sample(at(3.0)).unwrap(), Some(100.0));
}

#[test]
fn v2_read_failure_is_an_error_then_re_primes() {
    let t = v2_container();
    let mut m = t.detect(CpuMode::Cgroup).unwrap();
    m.sample(at(1.0)).unwrap();
    t.remove(&format!("{CG}/cpu.stat"));
    assert_err(
        m.sample(at(2.0)),
        "cpu.stat gone",
        |e| matches!(e, CpuError::Io { path, .. } if path.ends_with("cpu.stat")),
    );
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(9_000_000));
    assert_eq!(
        m.sample(at(3.0)).unwrap(),
        None,
        "re-primes after the error"
    );
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(9_000_000 + 1_500_000));
    assert_eq!(m.sample(at(4.0)).unwrap(), Some(1000.0));
}

#[test]
fn v2_nested_cgroup_takes_the_parents_quota() {
    let t = Tree::new("v2-nested");
    let pod = format!("{CG}/kubepods/pod1");
    let ctr = format!("{pod}/ctr");
    t.write("/proc/self/cgroup", "0::/kubepods/pod1/ctr\n")
        .write(&format!("{CG}/cgroup.controllers"), "cpuset cpu\n")
        // The host's root: must not be read for usage.
        .write(&format!("{CG}/cpu.stat"), &cpu_stat(555_000_000))
        .write(&format!("{CG}/cpuset.cpus.effective"), "0-15\n")
        .write(&format!("{CG}/kubepods/cpu.max"), "max 100000\n")
        .write(&format!("{pod}/cpu.max"), "200000 100000\n")
        .write(&format!("{ctr}/cpu.max"), "max 100000\n")
        .write(&format!("{ctr}/cpuset.cpus.effective"), "0-7\n")
        .write(&format!("{ctr}/cpu.stat"), &cpu_stat(0));
    let mut m = t.detect(CpuMode::Auto).unwrap();
    assert_eq!(m.limit_cpus(), 2.0, "the pod's quota caps the container");
    m.sample(at(0.0)).unwrap();
    t.write(&format!("{ctr}/cpu.stat"), &cpu_stat(1_000_000));
    assert_eq!(m.sample(at(1.0)).unwrap(), Some(500.0), "1 CPU of 2");

    // A tighter quota lower down wins, and a resize is seen on refresh.
    t.write(&format!("{ctr}/cpu.max"), "50000 100000\n");
    assert_eq!(m.limit_cpus(), 2.0, "not re-read on every sample");
    m.refresh_limit().unwrap();
    assert_eq!(m.limit_cpus(), 0.5);
    // A malformed file on refresh is an error and keeps the previous limit.
    t.write(&format!("{pod}/cpu.max"), "200000\n");
    assert_err(
        m.refresh_limit(),
        "cpu.max with one field",
        |e| matches!(e, CpuError::Format { path, .. } if path.ends_with("kubepods/pod1/cpu.max")),
    );
    assert_eq!(m.limit_cpus(), 0.5);
}

#[test]
fn v2_nested_cpuset_is_the_cgroups_own() {
    let t = Tree::new("v2-nested-cpuset");
    let ctr = format!("{CG}/system.slice/svc.service");
    t.write("/proc/self/cgroup", "0::/system.slice/svc.service\n")
        .write(&format!("{CG}/cgroup.controllers"), "cpuset cpu\n")
        .write(&format!("{CG}/cpuset.cpus.effective"), "0-15\n")
        .write(&format!("{ctr}/cpu.max"), "max 100000\n")
        .write(&format!("{ctr}/cpuset.cpus.effective"), "4-7\n")
        .write(&format!("{ctr}/cpu.stat"), &cpu_stat(0));
    assert_eq!(
        t.detect(CpuMode::Auto).unwrap().limit_cpus(),
        4.0,
        "not the host's 16"
    );
    // Without a cpuset of its own (controller not enabled there), the mount's applies.
    t.remove(&format!("{ctr}/cpuset.cpus.effective"));
    assert_eq!(t.detect(CpuMode::Auto).unwrap().limit_cpus(), 16.0);
}

#[test]
fn v2_max_quota_means_the_cpuset() {
    let t = v2_container();
    t.write(&format!("{CG}/cpu.max"), "max 100000\n");
    let mut m = t.detect(CpuMode::Auto).unwrap();
    assert_eq!(m.limit_cpus(), 4.0);
    m.sample(at(0.0)).unwrap();
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(2_000_000));
    assert_eq!(m.sample(at(1.0)).unwrap(), Some(250.0), "1 CPU of 4");
}

#[test]
fn v2_quota_above_the_cpuset_is_capped_by_the_cpuset() {
    let t = v2_container();
    t.write(&format!("{CG}/cpu.max"), "800000 100000\n")
        .write(&format!("{CG}/cpuset.cpus.effective"), "0,2\n");
    assert_eq!(t.detect(CpuMode::Auto).unwrap().limit_cpus(), 2.0);
}

#[test]
fn v2_without_cpuset_uses_the_allowed_cpus() {
    let t = v2_container();
    t.remove(&format!("{CG}/cpuset.cpus.effective"));
    t.remove(&format!("{CG}/cpu.max"));
    t.write(
        "/proc/self/status",
        "Name:\tsvc\nCpus_allowed:\t7\nCpus_allowed_list:\t0-2\nMems_allowed:\t1\n",
    );
    assert_eq!(t.detect(CpuMode::Auto).unwrap().limit_cpus(), 3.0);
}

#[test]
fn v2_invisible_cgroup_path_falls_back_to_the_mount() {
    let t = v2_container();
    // Without a cgroup namespace a container still sees its host path, but only its own
    // subtree is mounted.
    t.write("/proc/self/cgroup", "0::/system.slice/docker-abc.scope\n");
    let mut m = t.detect(CpuMode::Auto).unwrap();
    assert_eq!(m.limit_cpus(), 1.5);
    m.sample(at(0.0)).unwrap();
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(1_000_000 + 1_500_000));
    assert_eq!(m.sample(at(1.0)).unwrap(), Some(1000.0));
}

#[test]
fn v2_malformed_files_are_typed_errors() {
    let t = v2_container();
    t.write(&format!("{CG}/cpu.max"), "150000\n");
    assert_err(
        t.detect(CpuMode::Cgroup),
        "cpu.max one field",
        |e| matches!(e, CpuError::Format { path, .. } if path.ends_with("cpu.max")),
    );
    t.write(&format!("{CG}/cpu.max"), "lots 100000\n");
    assert_err(
        t.detect(CpuMode::Cgroup),
        "cpu.max bad quota",
        |e| matches!(e, CpuError::Format { detail, .. } if detail == "cgroup: bad int format: lots"),
    );
    t.write(&format!("{CG}/cpu.max"), "max 100000\n");

    t.write(&format!("{CG}/cpuset.cpus.effective"), "3-1\n");
    assert_err(t.detect(CpuMode::Cgroup), "reversed cpu range", |e| {
        matches!(e, CpuError::Format { detail, .. }
            if detail == "cgroup: bad int list format: 3-1")
    });
    t.write(&format!("{CG}/cpuset.cpus.effective"), "0-3\n");

    t.write(&format!("{CG}/cpu.stat"), "user_usec 5\n");
    assert_err(
        t.detect(CpuMode::Cgroup),
        "no usage_usec",
        |e| matches!(e, CpuError::Format { path, .. } if path.ends_with("cpu.stat")),
    );
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(1));

    t.write("/proc/self/cgroup", "1:cpu:/\n");
    assert_err(
        t.detect(CpuMode::Cgroup),
        "no 0:: line",
        |e| matches!(e, CpuError::Format { path, .. } if path.ends_with("proc/self/cgroup")),
    );
    t.remove("/proc/self/cgroup");
    assert_err(t.detect(CpuMode::Cgroup), "no /proc/self/cgroup", |e| {
        matches!(e, CpuError::Io { .. })
    });
    // Auto falls back to the host, which has no /proc/stat here either.
    assert_err(
        t.detect(CpuMode::Auto),
        "nothing at all",
        |e| matches!(e, CpuError::Io { path, .. } if path.ends_with("proc/stat")),
    );
}

/// cgroup v1 as Docker on a systemd host lays it out: cpu and cpuacct co-mounted at
/// `cpu,cpuacct`, our cgroup a subdirectory.
fn v1_docker(quota: &str) -> Tree {
    let t = Tree::new("v1");
    let acct = format!("{CG}/cpu,cpuacct/docker/abc");
    t.write(
        "/proc/self/cgroup",
        "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n3:cpuset:/docker/abc\n1:name=systemd:/docker/abc\n0::/system.slice/containerd.service\n",
    )
    .write(&format!("{CG}/cpu,cpuacct/cpuacct.usage"), "999999999999\n")
    .write(&format!("{CG}/cpu,cpuacct/cpu.cfs_quota_us"), "-1\n")
    .write(&format!("{CG}/cpu,cpuacct/cpu.cfs_period_us"), "100000\n")
    .write(&format!("{acct}/cpuacct.usage"), "5000000000\n")
    .write(&format!("{acct}/cpu.cfs_quota_us"), &format!("{quota}\n"))
    .write(&format!("{acct}/cpu.cfs_period_us"), "100000\n")
    .write(&format!("{CG}/cpuset/cpuset.cpus"), "0-7\n")
    .write(&format!("{CG}/cpuset/docker/abc/cpuset.cpus"), "0-1\n");
    t
}

#[test]
fn v1_joined_mount_without_quota_uses_the_cpuset() {
    let t = v1_docker("-1");
    let mut m = t.detect(CpuMode::Auto).unwrap();
    assert_eq!(m.kind(), MeterKind::CgroupV1);
    assert_eq!(m.limit_cpus(), 2.0);
    m.sample(at(0.0)).unwrap();
    let acct = format!("{CG}/cpu,cpuacct/docker/abc/cpuacct.usage");
    t.write(&acct, "5500000000\n");
    assert_eq!(m.sample(at(1.0)).unwrap(), Some(250.0), "0.5 CPU of 2");
    t.write(&acct, "1\n");
    assert_eq!(m.sample(at(2.0)).unwrap(), None, "reset: no spike");
}

#[test]
fn v1_quota_is_relative_to_the_quota() {
    let t = v1_docker("50000");
    let mut m = t.detect(CpuMode::Cgroup).unwrap();
    assert_eq!(m.limit_cpus(), 0.5);
    m.sample(at(0.0)).unwrap();
    t.write(
        &format!("{CG}/cpu,cpuacct/docker/abc/cpuacct.usage"),
        "5250000000\n",
    );
    assert_eq!(m.sample(at(1.0)).unwrap(), Some(500.0), "0.25 CPU of 0.5");
    // A parent's tighter quota counts too.
    t.write(
        &format!("{CG}/cpu,cpuacct/docker/cpu.cfs_quota_us"),
        "25000\n",
    )
    .write(
        &format!("{CG}/cpu,cpuacct/docker/cpu.cfs_period_us"),
        "100000\n",
    );
    m.refresh_limit().unwrap();
    assert_eq!(m.limit_cpus(), 0.25);
}

#[test]
fn v1_separate_mounts_and_private_view() {
    // Each controller mounted alone, and the container sees only its own cgroup at the
    // hierarchy root while /proc/self/cgroup still names the host path.
    let t = Tree::new("v1-private");
    t.write(
        "/proc/self/cgroup",
        "3:cpuset:/docker/x\n2:cpuacct:/docker/x\n1:cpu:/docker/x\n",
    )
    .write(&format!("{CG}/cpuacct/cpuacct.usage"), "0\n")
    .write(&format!("{CG}/cpu/cpu.cfs_quota_us"), "300000\n")
    .write(&format!("{CG}/cpu/cpu.cfs_period_us"), "100000\n")
    .write(&format!("{CG}/cpuset/cpuset.effective_cpus"), "0-3\n")
    .write(&format!("{CG}/cpuset/cpuset.cpus"), "0-5\n");
    let mut m = t.detect(CpuMode::Auto).unwrap();
    assert_eq!(m.limit_cpus(), 3.0, "min(4 effective cpus, 3 quota)");
    m.sample(at(0.0)).unwrap();
    t.write(&format!("{CG}/cpuacct/cpuacct.usage"), "1500000000\n");
    assert_eq!(m.sample(at(1.0)).unwrap(), Some(500.0));
}

#[test]
fn v1_malformed_and_missing() {
    let t = v1_docker("-1");
    t.write("/proc/self/cgroup", "4:cpu,cpuacct\n");
    assert_err(
        t.detect(CpuMode::Cgroup),
        "two fields",
        |e| matches!(e, CpuError::Format { path, .. } if path.ends_with("proc/self/cgroup")),
    );
    t.write("/proc/self/cgroup", "4:memory:/docker/abc\n");
    assert_err(t.detect(CpuMode::Cgroup), "no cpuacct", |e| {
        matches!(e, CpuError::NoData(_))
    });
    t.write(
        "/proc/self/cgroup",
        "4:cpu,cpuacct:/docker/abc\n3:cpuset:/docker/abc\n",
    );
    t.write(
        &format!("{CG}/cpu,cpuacct/docker/abc/cpuacct.usage"),
        "many\n",
    );
    assert_err(
        t.detect(CpuMode::Cgroup),
        "bad usage",
        |e| matches!(e, CpuError::Format { detail, .. } if detail == "cgroup: bad int format: many"),
    );
}

fn proc_stat(user: u64, system: u64, idle: u64, steal: u64) -> String {
    // Aggregate line plus two per-core lines (which must not be summed in).
    format!(
        "cpu  {user} 0 {system} {idle} 0 0 0 {steal} 0 0\n\
         cpu0 {user} 0 {system} {idle} 0 0 0 {steal} 0 0\n\
         cpu1 1 1 1 1 1 1 1 1 0 0\n\
         intr 12345 0 0\nctxt 999\nbtime 1700000000\n"
    )
}

#[test]
fn host_usage_is_busy_over_total_jiffies() {
    let t = Tree::new("host");
    t.write("/proc/stat", &proc_stat(100, 50, 1000, 0));
    let mut m = t.detect(CpuMode::Host).unwrap();
    assert_eq!(m.kind(), MeterKind::Host);
    assert_eq!(m.limit_cpus(), 2.0, "two per-core lines");
    assert_eq!(m.sample(at(0.0)).unwrap(), None);
    // +20 user, +10 system, +10 steal busy; +60 idle: 40 of 100.
    t.write("/proc/stat", &proc_stat(120, 60, 1060, 10));
    assert_eq!(
        m.sample(at(0.0)).unwrap(),
        Some(400.0),
        "wall time is not used"
    );
    // Idle only.
    t.write("/proc/stat", &proc_stat(120, 60, 1160, 10));
    assert_eq!(m.sample(at(1.0)).unwrap(), Some(0.0));
    // Nothing moved.
    assert_eq!(m.sample(at(2.0)).unwrap(), None);
    // Reset.
    t.write("/proc/stat", &proc_stat(1, 1, 1, 0));
    assert_eq!(m.sample(at(3.0)).unwrap(), None);
    t.write("/proc/stat", &proc_stat(51, 1, 51, 0));
    assert_eq!(m.sample(at(4.0)).unwrap(), Some(500.0));

    t.write("/proc/stat", "cpu0 1 2 3 4 5 6 7 8\n");
    assert_err(m.sample(at(5.0)), "no aggregate line", |e| {
        matches!(e, CpuError::Format { .. })
    });
    assert_err(t.detect(CpuMode::Host), "no aggregate line", |e| {
        matches!(e, CpuError::Format { .. })
    });
}

#[test]
fn auto_without_cgroups_is_the_host() {
    let t = Tree::new("no-cgroup");
    t.write("/proc/stat", &proc_stat(1, 1, 1, 0))
        .write("/proc/self/cgroup", "0::/\n");
    assert_eq!(t.detect(CpuMode::Auto).unwrap().kind(), MeterKind::Host);
    assert_err(t.detect(CpuMode::Cgroup), "no cgroup", |e| {
        matches!(e, CpuError::NoData(_))
    });
}

fn self_stat(utime: u64, stime: u64) -> String {
    format!(
        "4242 (keel svc) S 1 4242 4242 0 -1 4194560 1234 0 0 0 {utime} {stime} 0 0 20 0 9 0 5000 1000000 200 18446744073709551615\n"
    )
}

#[test]
fn process_usage_is_own_cpu_time_over_allowed_cpus() {
    let t = Tree::new("process");
    t.write("/proc/self/stat", &self_stat(100, 20)).write(
        "/proc/self/status",
        "Name:\tkeel svc\nCpus_allowed_list:\t0-3\n",
    );
    let mut m = t.detect(CpuMode::Process).unwrap();
    assert_eq!(m.kind(), MeterKind::Process);
    assert_eq!(m.limit_cpus(), 4.0);
    m.sample(at(0.0)).unwrap();
    // 150 ticks (1.5 s) in 1 s over 4 CPUs.
    t.write("/proc/self/stat", &self_stat(200, 70));
    assert_eq!(m.sample(at(1.0)).unwrap(), Some(375.0));
    t.write("/proc/self/stat", &self_stat(0, 0));
    assert_eq!(m.sample(at(2.0)).unwrap(), None);
    t.write("/proc/self/stat", "4242 (keel svc) S 1\n");
    assert_err(m.sample(at(3.0)), "truncated stat", |e| {
        matches!(e, CpuError::Format { .. })
    });
}

#[test]
fn a_fixture_meter_through_the_sampler() {
    let t = v2_container();
    let cpu = SystemCpu::manual(t.detect(CpuMode::Auto).unwrap());
    assert_eq!(cpu.kind(), Some(MeterKind::CgroupV2));
    assert_eq!(cpu.limit_cpus(), Some(1.5));
    let clock = ManualClock::new();
    assert_eq!(cpu.sample_at(clock.now()), None);
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(1_750_000));
    assert_eq!(
        cpu.sample_at(clock.advance(Duration::from_secs(1))),
        Some(500)
    );
    t.write(&format!("{CG}/cpu.stat"), &cpu_stat(3_250_000));
    // 500 * 0.95 + 1000 * 0.05.
    assert_eq!(
        cpu.sample_at(clock.advance(Duration::from_secs(1))),
        Some(525)
    );
    assert_eq!(cpu.usage(), Some(525));
    assert!(!cpu.is_started());
    // The files vanish: no signal rather than a stale one.
    t.remove(&format!("{CG}/cpu.stat"));
    assert_eq!(cpu.sample_at(clock.advance(Duration::from_secs(1))), None);
    assert_eq!(cpu.usage(), None);
}
