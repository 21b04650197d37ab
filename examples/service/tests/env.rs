//! What every test needs: PostgreSQL (or a printed reason to skip), a schema of its own
//! behind the fault-injecting proxy, and the service started on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keel::limiter::Rate;
use keel::shedder::cpu::ManualCpu;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::timeout;
use tokio_postgres::NoTls;

use super::proxy::Proxy;
use crate::app::{self, Server};
use crate::config::Config;
use crate::db;

const POSTGRES: &str = "127.0.0.1:5432";
const ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";
pub(crate) const REDIS: &str = "redis://127.0.0.1:6379";
const REDIS_ADDR: &str = "127.0.0.1:6379";
/// For setting up and probing, outside the service.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// These tests run one at a time (each holds this while it runs): they measure latencies
/// and load the machine, so two at once would disturb each other's figures.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// CI sets `KEEL_REQUIRE_SERVICES=1`: a missing service then fails the test.
fn required() -> bool {
    std::env::var("KEEL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Prints why the test does not run, or fails it if services are required.
fn skip(why: &str) {
    assert!(!required(), "KEEL_REQUIRE_SERVICES=1 but {why}");
    eprintln!("skipped: {why} (set KEEL_REQUIRE_SERVICES=1 to fail instead)");
}

/// A test's PostgreSQL schema, proxy and base configuration.
pub(crate) struct Env {
    /// The service's configuration for this test: PostgreSQL through the proxy, the test's
    /// schema, the CPU set by hand (idle), limits no test traffic reaches; tests change
    /// what their scenario needs.
    pub(crate) config: Config,
    pub(crate) proxy: Proxy,
    _serial: MutexGuard<'static, ()>,
}

impl Env {
    /// A schema named after `test` and unique to this run, with the service's tables,
    /// reached through a fresh proxy; `None` (after [`skip`]) without PostgreSQL.
    pub(crate) async fn start(test: &str) -> Option<Env> {
        let serial = SERIAL.lock().await;
        // A probe: is PostgreSQL there at all?
        match timeout(SETUP_TIMEOUT, tokio_postgres::connect(ADMIN, NoTls)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return skip_none(&format!("PostgreSQL at {POSTGRES}: {e}")),
            Err(_) => return skip_none(&format!("PostgreSQL at {POSTGRES}: no answer")),
        }
        let upstream: SocketAddr = POSTGRES.parse().expect("an address");
        let proxy = Proxy::start(upstream).await.expect("the proxy starts");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let config = Config {
            postgres: format!(
                "host=127.0.0.1 port={} user=postgres dbname=test",
                proxy.port()
            ),
            schema: format!(
                "keel_svc_{test}_{}_{}",
                std::process::id(),
                nanos % 1_000_000_000_000
            ),
            cpu: Some(ManualCpu::new(0)),
            rate: Rate::per_second(100_000),
            burst: 100_000,
            ..Config::default()
        };
        let env = Env {
            config,
            proxy,
            _serial: serial,
        };
        // From here on, dropping `env` drops the schema, whatever happens.
        timeout(SETUP_TIMEOUT, db::prepare(&env.config))
            .await
            .expect("the tables are created in time")
            .expect("the tables are created");
        Some(env)
    }

    /// The service with `config`, on a free port of 127.0.0.1.
    pub(crate) async fn serve(&self, config: &Config) -> Server {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        app::serve(config, loopback)
            .await
            .expect("the service starts")
    }
}

impl Drop for Env {
    /// Drops this test's schema (only it: others may be running on the same database),
    /// also when the test failed.
    fn drop(&mut self) {
        if let Err(e) = drop_schema(&self.config.schema) {
            eprintln!("note: schema {} left behind: {e}", self.config.schema);
        }
    }
}

/// `DROP SCHEMA … CASCADE` on a thread and runtime of its own: it runs from `Drop`, inside
/// the test's runtime or while the test unwinds.
fn drop_schema(schema: &str) -> Result<(), String> {
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    let cleanup = move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let dropped = timeout(SETUP_TIMEOUT, async {
                let (client, connection) = tokio_postgres::connect(ADMIN, NoTls).await?;
                tokio::spawn(connection);
                client.batch_execute(&sql).await
            });
            match dropped.await {
                Ok(done) => done.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {SETUP_TIMEOUT:?}")),
            }
        })
    };
    std::thread::spawn(cleanup)
        .join()
        .unwrap_or_else(|_| Err("the cleanup panicked".to_owned()))
}

fn skip_none<T>(why: &str) -> Option<T> {
    skip(why);
    None
}

/// Whether Redis answers `PING` at 127.0.0.1:6379; if not, [`skip`]s.
pub(crate) async fn redis_up() -> bool {
    let ping = async {
        let mut stream = TcpStream::connect(REDIS_ADDR).await?;
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").await?;
        let mut answer = [0; 7];
        stream.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match timeout(SETUP_TIMEOUT, ping).await {
        Ok(Ok(answer)) if &answer == b"+PONG\r\n" => true,
        outcome => {
            skip(&format!(
                "Redis at {REDIS_ADDR} did not answer PING: {outcome:?}"
            ));
            false
        }
    }
}

/// Re-checks `condition` every few milliseconds until it holds: `false` if `limit` passes
/// first. For states with no event to wait on (a snapshot's counters); `limit` is a
/// generous bound, not a synchronisation.
pub(crate) async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !condition() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}
