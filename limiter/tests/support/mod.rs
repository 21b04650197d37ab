//! A private `redis-server` per test: a free port on 127.0.0.1, no persistence, killed on
//! drop. The shared Redis on 6379 is never touched.
//!
//! Without `redis-server` on the PATH a test is skipped (with a printed reason), unless
//! `KEEL_REQUIRE_SERVICES=1` (set by CI): then it fails.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub(crate) mod cluster;

/// How long a server may take to answer `PING` after it was started.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// The response timeout of the stores the tests open on live servers: a busy machine can
/// stall a loopback reply past the 1 s default, and a test that is not about timeouts
/// must not see its decisions go to the failure policy for that (a stalled server is
/// tested with a timeout of its own).
pub(crate) const BUSY_MACHINE_TIMEOUT: Duration = Duration::from_secs(30);

/// A store on `url` that waits [`BUSY_MACHINE_TIMEOUT`] for a reply.
#[cfg(feature = "redis")]
pub(crate) fn store(url: &str) -> keel_limiter::redis::RedisStore {
    keel_limiter::redis::RedisStore::open(url)
        .expect("a valid Redis URL")
        .timeout(BUSY_MACHINE_TIMEOUT)
}

pub(crate) struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Starts a server (or with `stopped`, a server not running yet), or returns from the
/// test (skipped) when `redis-server` is missing.
#[macro_export]
macro_rules! redis_or_skip {
    () => {
        match support::RedisServer::start() {
            Some(server) => server,
            None => return,
        }
    };
    (stopped) => {
        match support::RedisServer::stopped() {
            Some(server) => server,
            None => return,
        }
    };
}

fn required() -> bool {
    std::env::var("KEEL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A port nobody listens on right now (bound to port 0, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl RedisServer {
    /// A new server on a free port, answering `PING`; `None` (test skipped) when
    /// `redis-server` is not installed.
    pub(crate) fn start() -> Option<RedisServer> {
        let dir = Self::prepare()?;
        // The port was free a moment ago; another process may take it first: try again.
        // A failed attempt's drop removes the directory; `spawn` makes it again.
        for _ in 0..20 {
            let mut server = RedisServer {
                port: free_port(),
                dir: dir.clone(),
                child: None,
            };
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("could not start redis-server on a free port");
    }

    /// A server not running yet, on a port nobody listens on: `restart` starts it.
    pub(crate) fn stopped() -> Option<RedisServer> {
        Some(RedisServer {
            port: free_port(),
            dir: Self::prepare()?,
            child: None,
        })
    }

    /// Checks that `redis-server` is there and makes the server's directory.
    fn prepare() -> Option<PathBuf> {
        match Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => {}
            other => {
                let why = format!("redis-server is not available ({other:?})");
                assert!(!required(), "KEEL_REQUIRE_SERVICES=1 but {why}");
                eprintln!("skipped: {why}");
                return None;
            }
        }
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "keel-limiter-redis-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        Some(dir)
    }

    /// Starts the process on `self.port` and waits for `PING`; false if it exited.
    fn spawn(&mut self) -> bool {
        std::fs::create_dir_all(&self.dir).expect("create the server's directory");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if self.ping() {
                // Someone else's server may have had the port first (ours then exits):
                // the one answering must be ours.
                return self.answering_is_ours() || {
                    eprintln!(
                        "port {} is answered by another redis-server: trying another",
                        self.port
                    );
                    self.stop();
                    false
                };
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                eprintln!("redis-server on port {} exited: {status}", self.port);
                self.child = None;
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A client of its own (for test set-up: SET, SCRIPT FLUSH, TIME).
    pub(crate) fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    pub(crate) fn connection(&self) -> redis::Connection {
        self.client()
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("connect to the test server")
    }

    /// Whether the server answers `PING` now.
    pub(crate) fn ping(&self) -> bool {
        let Ok(mut c) = self
            .client()
            .get_connection_with_timeout(Duration::from_millis(200))
        else {
            return false;
        };
        redis::cmd("PING")
            .query::<String>(&mut c)
            .is_ok_and(|r| r == "PONG")
    }

    /// Whether the process answering on the port is the one this server started.
    fn answering_is_ours(&self) -> bool {
        let Some(pid) = self.child.as_ref().map(|c| c.id()) else {
            return false;
        };
        let info = self
            .client()
            .get_connection_with_timeout(Duration::from_secs(2))
            .and_then(|mut c| redis::cmd("INFO").arg("server").query::<String>(&mut c));
        let Ok(info) = info else {
            return false;
        };
        info.lines()
            .any(|l| l.trim() == format!("process_id:{pid}"))
    }

    /// Kills the server (SIGKILL: connections are reset, nothing is saved).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (SIGSTOP) or continues (SIGCONT) the server: a stalled server accepts
    /// connections (the kernel's backlog) but answers nothing.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a running server").id();
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {signal} {pid}");
    }

    /// Starts the server (again) on its port (empty: it saves nothing).
    pub(crate) fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// The server's clock, in ms since the Unix epoch.
    pub(crate) fn time_ms(&self) -> u64 {
        let (s, us): (u64, u64) = redis::cmd("TIME")
            .query(&mut self.connection())
            .expect("TIME");
        s * 1000 + us / 1000
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `cond` every 5 ms until it holds or `deadline` passes; whether it held.
pub(crate) fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
