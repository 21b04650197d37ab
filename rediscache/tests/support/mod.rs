//! Test services: the shared Redis on 127.0.0.1:6379 (never flushed: every test uses a
//! cache name of its own), private `redis-server`s on free ports for fault injection
//! (killed on drop), and PostgreSQL on 127.0.0.1:5432.
//!
//! A test whose service is missing is skipped with a printed reason, unless
//! `KEEL_REQUIRE_SERVICES=1`: then it fails.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keel_rediscache::Connection;

pub(crate) const SHARED_URL: &str = "redis://127.0.0.1:6379/";
/// The command timeout of the caches the tests build (unless a test is about timeouts):
/// a busy machine can stall a reply past the 1 s default, and a test that checks values
/// must not fail on that.
pub(crate) const BUSY_MACHINE_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const POSTGRES: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

pub(crate) fn required() -> bool {
    std::env::var("KEEL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skips (returns `None`) or, under `KEEL_REQUIRE_SERVICES=1`, fails.
pub(crate) fn missing<T>(what: &str) -> Option<T> {
    assert!(!required(), "KEEL_REQUIRE_SERVICES=1 but {what}");
    eprintln!("skipped: {what}");
    None
}

/// A name no other test (or run) uses.
pub(crate) fn unique(prefix: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "keel-test-{prefix}-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The shared Redis's client, if it answers.
pub(crate) async fn shared() -> Option<redis::Client> {
    let client = redis::Client::open(SHARED_URL).expect("url");
    let ok = tokio::time::timeout(Duration::from_secs(2), async {
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.ok()
    })
    .await
    .ok()
    .flatten()
    .is_some();
    if ok {
        Some(client)
    } else {
        missing("the shared Redis on 127.0.0.1:6379 does not answer")
    }
}

pub(crate) async fn connection(client: &redis::Client) -> Connection {
    Connection::single(client.clone()).await.expect("connect")
}

/// Deletes every key of cache `name` (SCAN, never FLUSH).
pub(crate) async fn cleanup(client: &redis::Client, name: &str) {
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let pattern = format!("{{{name}:*");
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
        else {
            return;
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query_async(&mut c).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// Polls `cond` (every 2 ms, yielding to the runtime) until it holds or `deadline`
/// passes; whether it held.
pub(crate) async fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A private redis-server on a free port, killed on drop.
pub(crate) struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl RedisServer {
    pub(crate) fn start() -> Option<RedisServer> {
        match Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => {}
            other => return missing(&format!("redis-server is not available ({other:?})")),
        }
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "keel-rediscache-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
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

    fn spawn(&mut self) -> bool {
        std::fs::create_dir_all(&self.dir).expect("create the server's directory");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
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
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub(crate) fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

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

    /// SIGKILL: connections are reset, nothing is saved.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty).
    pub(crate) fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "redis-server did not restart");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL table of `n` rows `(id, name)` unique to the test, dropped by `drop_table`.
pub(crate) async fn postgres_table(n: i64) -> Option<(tokio_postgres::Client, String)> {
    let (client, connection) = match tokio_postgres::connect(POSTGRES, tokio_postgres::NoTls).await
    {
        Ok(c) => c,
        Err(e) => return missing(&format!("PostgreSQL on 127.0.0.1:5432: {e}")),
    };
    tokio::spawn(connection);
    let table = unique("pg").replace('-', "_");
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO {table} SELECT g, 'user ' || g FROM generate_series(1, {n}) g;"
        ))
        .await
        .expect("create the test table");
    Some((client, table))
}

pub(crate) async fn drop_table(client: &tokio_postgres::Client, table: &str) {
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await
        .expect("drop the test table");
}
