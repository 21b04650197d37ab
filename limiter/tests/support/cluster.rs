//! A private 3-master Redis Cluster per test, started by `.ci/redis-cluster` on free ports
//! of 127.0.0.1 and stopped (its processes killed, its directory removed) on drop, also
//! when the test panics. The shared Redis on 6379 is never touched.
//!
//! Without `redis-server` / `redis-cli` a test is skipped (with a printed reason), unless
//! `KEEL_REQUIRE_SERVICES=1` (set by CI): then it fails.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::required;

/// Starts a cluster, or returns from the test (skipped) when Redis is not installed.
#[macro_export]
macro_rules! cluster_or_skip {
    () => {
        match support::cluster::RedisCluster::start() {
            Some(cluster) => cluster,
            None => return,
        }
    };
}

/// The options every test cluster runs with: the masters that are up keep serving their
/// slots while one is down (as production clusters with replicas do during a failover;
/// with full coverage required, every node would answer `CLUSTERDOWN` once the dead
/// master is marked failed), and a short node timeout so that a restarted master is
/// taken back quickly.
const OPTIONS: [&str; 4] = [
    "--cluster-require-full-coverage",
    "no",
    "--cluster-node-timeout",
    "2000",
];

pub(crate) struct RedisCluster {
    dir: PathBuf,
    ports: [u16; 3],
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/redis-cluster")
}

fn run(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run .ci/redis-cluster")
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether nothing listens on `port` of 127.0.0.1 right now.
fn free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A base port whose three node ports and their cluster bus ports (+10000) are free now,
/// in 20000..=45000, starting from a pseudo-random point (process, sequence, time) so that
/// concurrent tests rarely try the same ones.
fn free_base(seq: usize) -> u16 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    let mut base = 20_000 + (std::process::id() as usize * 7919 + seq * 104_729 + nanos) % 25_000;
    for _ in 0..25_000 {
        let ports = (0..3).flat_map(|i| [base + i, base + i + 10_000]);
        if ports.clone().all(|p| p != 6379 && free(p as u16)) {
            return base as u16;
        }
        base = 20_000 + (base - 20_000 + 3) % 25_000;
    }
    panic!("no 3 free ports (with their bus ports) on 127.0.0.1");
}

impl RedisCluster {
    /// A running cluster whose every node says `cluster_state:ok`; `None` (test skipped)
    /// when `redis-server` or `redis-cli` is not installed.
    pub(crate) fn start() -> Option<RedisCluster> {
        for program in ["redis-server", "redis-cli"] {
            if !installed(program) {
                let why = format!("{program} is not available");
                assert!(!required(), "KEEL_REQUIRE_SERVICES=1 but {why}");
                eprintln!("skipped: {why}");
                return None;
            }
        }
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let mut failures = Vec::new();
        // The ports were free a moment ago; another process may take one first: try again.
        for _ in 0..5 {
            let seq = SEQ.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("keel-limiter-cluster-{}-{seq}", std::process::id()));
            let base = free_base(seq);
            let cluster = RedisCluster {
                dir,
                ports: [base, base + 1, base + 2],
            };
            let base = base.to_string();
            let dir = cluster.dir.to_str().expect("a UTF-8 temp dir");
            let mut args = vec!["start", dir, &base];
            args.extend(OPTIONS);
            let out = run(&args);
            if out.status.success() {
                let urls = String::from_utf8_lossy(&out.stdout);
                assert_eq!(urls.lines().collect::<Vec<_>>(), cluster.urls());
                return Some(cluster);
            }
            failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
            drop(cluster); // stops what was started
        }
        panic!("could not start a Redis Cluster: {failures:#?}");
    }

    pub(crate) fn ports(&self) -> [u16; 3] {
        self.ports
    }

    /// `redis://127.0.0.1:PORT/` of each master.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect()
    }

    /// A plain connection to the node on `port` (for test set-up and checks).
    pub(crate) fn node(&self, port: u16) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .expect("client")
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect to a cluster node")
    }

    /// `CLUSTER KEYSLOT key`, asked of a node.
    pub(crate) fn keyslot(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.node(self.ports[0]))
            .expect("CLUSTER KEYSLOT")
    }

    /// The port of the master serving `slot`, from the nodes' own `CLUSTER SLOTS`.
    pub(crate) fn port_of_slot(&self, slot: u16) -> u16 {
        let ranges: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut self.node(self.ports[0]))
            .expect("CLUSTER SLOTS")
            .into_iter()
            .map(|range| match range {
                redis::Value::Array(f) => {
                    let int = |v: &redis::Value| match v {
                        redis::Value::Int(i) => *i,
                        other => panic!("not an integer: {other:?}"),
                    };
                    let master = match &f[2] {
                        redis::Value::Array(m) => m,
                        other => panic!("not a node: {other:?}"),
                    };
                    let host = match &master[0] {
                        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                        other => panic!("not a host: {other:?}"),
                    };
                    (
                        int(&f[0]) as u16,
                        int(&f[1]) as u16,
                        (host, int(&master[1]) as u16),
                    )
                }
                other => panic!("not a slot range: {other:?}"),
            })
            .collect();
        ranges
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, (_, port))| *port)
            .expect("every slot is served")
    }

    /// Whether the node on `port` holds `key` (`EXISTS`, asked of that node itself).
    pub(crate) fn holds(&self, port: u16, key: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query::<i64>(&mut self.node(port))
            .expect("EXISTS")
            == 1
    }

    /// Crashes the master on `port` (SIGKILL).
    pub(crate) fn kill(&self, port: u16) {
        let out = run(&["node-stop", self.dir.to_str().unwrap(), &port.to_string()]);
        assert!(out.status.success(), "node-stop: {out:?}");
    }

    /// Starts the master on `port` again (empty: it saves nothing); it rejoins with its
    /// slots.
    pub(crate) fn restart(&self, port: u16) {
        let out = run(&["node-start", self.dir.to_str().unwrap(), &port.to_string()]);
        assert!(out.status.success(), "node-start: {out:?}");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let out = run(&["stop", self.dir.to_str().unwrap_or("")]);
        if !out.status.success() {
            eprintln!(
                "stopping the test cluster failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
