//! [`RedisStore`]: the client, the sync connection pool and the shared async connection.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Connection, ErrorKind, RedisResult, ServerErrorKind, Value};

use super::scripts::Call;
use super::{BackendError, Link, RedisErrorKind};
use crate::ConfigError;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(100);
const DEFAULT_MAX_IDLE: usize = 16;
/// Zero durations mean "no timeout" to std's sockets (or are refused): the knobs raise
/// them to this.
const MIN_DURATION: Duration = Duration::from_millis(1);

/// A connection to one Redis server, shared by the limiters built on it (see the
/// [module docs](crate::redis) for the keys, the scripts and the failure handling).
///
/// Opening a store does not connect: connections are opened on first use (blocking ones
/// for sync calls, one multiplexed connection for async calls), so a limiter can be built
/// while Redis is down and starts on its failure policy. Cheap to clone; clones share the
/// connections. Configure it before sharing it: each knob returns a store with its own
/// (new) connections.
///
/// ```no_run
/// use keel_limiter::redis::RedisStore;
/// use keel_limiter::{FailurePolicy, PeriodLimiter, Rate, TokenLimiter};
/// use std::time::Duration;
///
/// let store = RedisStore::open("redis://127.0.0.1:6379/")?
///     .timeout(Duration::from_millis(200))
///     .probe_interval(Duration::from_millis(100));
///
/// // 100 requests per second per client, shared by every instance on this Redis.
/// let api = TokenLimiter::builder(Rate::per_second(100), 20)
///     .redis(store.clone(), "api")
///     .failure_policy(FailurePolicy::Rescue)
///     .build()?;
/// if api.allow_key("203.0.113.7") { /* serve */ }
///
/// // 5 SMS per user per day, days starting at midnight UTC.
/// let sms = PeriodLimiter::builder(5, Duration::from_secs(86_400))
///     .align(Duration::ZERO)
///     .redis(store, "sms")
///     .build()?;
/// assert!(sms.take("alice")?.is_allowed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A URL that does not parse is refused at once:
///
/// ```
/// use keel_limiter::ConfigError;
/// use keel_limiter::redis::RedisStore;
///
/// assert!(matches!(RedisStore::open("not a url"), Err(ConfigError::Redis(_))));
/// assert!(RedisStore::open("redis://127.0.0.1:6379/0").is_ok()); // no connection yet
/// ```
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    connect_timeout: Duration,
    timeout: Duration,
    probe_interval: Duration,
    max_idle: usize,
}

struct Shared {
    client: redis::Client,
    config: Config,
    /// Bumped when the server is lost: connections opened before are not used again.
    epoch: AtomicU64,
    /// Idle blocking connections (all of the current epoch).
    idle: Mutex<Vec<Connection>>,
    /// The multiplexed connection async calls share, with its epoch.
    multiplexed: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// One async connect at a time.
    connecting: tokio::sync::Mutex<()>,
    /// Async connects finished (a caller that waited for one does not try again).
    connects: AtomicU64,
}

impl RedisStore {
    /// A store for the server at `url` (`redis://[user:password@]host[:port][/db]`,
    /// `rediss://` needs TLS support in the `redis` crate, `redis+unix:///path`). Does
    /// not connect.
    pub fn open(url: &str) -> Result<RedisStore, ConfigError> {
        redis::Client::open(url)
            .map(RedisStore::from_client)
            .map_err(|e| ConfigError::Redis(e.to_string()))
    }

    /// A store on an existing client.
    pub fn from_client(client: redis::Client) -> RedisStore {
        RedisStore::with_config(
            client,
            Config {
                connect_timeout: DEFAULT_TIMEOUT,
                timeout: DEFAULT_TIMEOUT,
                probe_interval: DEFAULT_PROBE_INTERVAL,
                max_idle: DEFAULT_MAX_IDLE,
            },
        )
    }

    fn with_config(client: redis::Client, config: Config) -> RedisStore {
        RedisStore {
            shared: Arc::new(Shared {
                client,
                config,
                epoch: AtomicU64::new(0),
                idle: Mutex::new(Vec::new()),
                multiplexed: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                connects: AtomicU64::new(0),
            }),
        }
    }

    fn reconfigured(self, change: impl FnOnce(&mut Config)) -> RedisStore {
        let mut config = self.shared.config;
        change(&mut config);
        RedisStore::with_config(self.shared.client.clone(), config)
    }

    /// How long a reply may take (default 1 s; at least 1 ms). A decision that times out
    /// is decided by the failure policy.
    pub fn timeout(self, timeout: Duration) -> RedisStore {
        self.reconfigured(|c| c.timeout = timeout.max(MIN_DURATION))
    }

    /// How long connecting may take (default 1 s; at least 1 ms).
    pub fn connect_timeout(self, timeout: Duration) -> RedisStore {
        self.reconfigured(|c| c.connect_timeout = timeout.max(MIN_DURATION))
    }

    /// How often a limiter that switched to its failure policy pings Redis (default
    /// 100 ms, go-zero's; at least 1 ms).
    pub fn probe_interval(self, interval: Duration) -> RedisStore {
        self.reconfigured(|c| c.probe_interval = interval.max(MIN_DURATION))
    }

    /// At most this many idle blocking connections kept for sync calls (default 16).
    /// Each thread in a sync call uses its own connection; connections beyond this are
    /// closed after the call.
    pub fn max_idle(self, max: usize) -> RedisStore {
        self.reconfigured(|c| c.max_idle = max)
    }

    /// The underlying client.
    pub fn client(&self) -> &redis::Client {
        &self.shared.client
    }

    pub(crate) fn probe_interval_value(&self) -> Duration {
        self.shared.config.probe_interval
    }

    /// Runs `call` on a blocking connection: `EVALSHA`, and if the server does not have
    /// the script (`NOSCRIPT`) the same call once more as `EVAL` (after calling
    /// `reloaded`, which counts it).
    pub(crate) fn eval(
        &self,
        call: &Call,
        reloaded: &(dyn Fn() + Sync),
    ) -> Result<Value, BackendError> {
        self.with_connection(|c| match call.evalsha().query(c) {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                reloaded();
                call.eval().query(c)
            }
            other => other,
        })
    }

    /// [`eval`](Self::eval) on the shared multiplexed connection.
    pub(crate) async fn eval_async(
        &self,
        call: &Call,
        reloaded: &(dyn Fn() + Sync),
    ) -> Result<Value, BackendError> {
        let (epoch, mut connection) = self.multiplexed().await?;
        let result = match call.evalsha().query_async(&mut connection).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                reloaded();
                call.eval().query_async(&mut connection).await
            }
            other => other,
        };
        result.map_err(|e| {
            let e = BackendError::from_redis(&e);
            if e.link == Link::Lost {
                self.shared.lost(epoch);
            }
            e
        })
    }

    /// `PING` on a blocking connection.
    pub(crate) fn ping(&self) -> Result<(), BackendError> {
        let reply: String = self.with_connection(|c| redis::cmd("PING").query(c))?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(BackendError::new(
                RedisErrorKind::Script,
                Link::Usable,
                format!("PING answered {reply:?}"),
            ))
        }
    }

    fn with_connection<T>(
        &self,
        call: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, BackendError> {
        let shared = &*self.shared;
        let (mut connection, epoch) = shared.checkout()?;
        match call(&mut connection) {
            Ok(v) => {
                shared.checkin(connection, epoch);
                Ok(v)
            }
            Err(e) => {
                let e = BackendError::from_redis(&e);
                match e.link {
                    Link::Usable => shared.checkin(connection, epoch),
                    Link::Broken => drop(connection),
                    Link::Lost => {
                        drop(connection);
                        shared.lost(epoch);
                    }
                }
                Err(e)
            }
        }
    }

    /// The shared multiplexed connection, opened if there is none.
    async fn multiplexed(&self) -> Result<(u64, MultiplexedConnection), BackendError> {
        let shared = &*self.shared;
        if let Some(c) = shared.current_multiplexed() {
            return Ok(c);
        }
        let connects_seen = shared.connects.load(Ordering::Acquire);
        let _one_at_a_time = shared.connecting.lock().await;
        if let Some(c) = shared.current_multiplexed() {
            return Ok(c);
        }
        if shared.connects.load(Ordering::Acquire) != connects_seen {
            // Someone connected while this caller waited, and it failed already (or was
            // lost at once): do not queue one connect timeout behind another.
            return Err(BackendError::new(
                RedisErrorKind::Connection,
                Link::Usable,
                "connecting failed (a concurrent attempt)",
            ));
        }
        let epoch = shared.epoch.load(Ordering::Acquire);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(shared.config.connect_timeout))
            .set_response_timeout(Some(shared.config.timeout));
        let result = shared
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await;
        shared.connects.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(connection) => {
                *shared.multiplexed.lock() = Some((epoch, connection.clone()));
                Ok((epoch, connection))
            }
            Err(e) => {
                // Whatever the server said, there is no connection: the server's.
                shared.lost(epoch);
                Err(BackendError::connecting(&e))
            }
        }
    }
}

impl Shared {
    /// An idle blocking connection, or a new one.
    fn checkout(&self) -> Result<(Connection, u64), BackendError> {
        let epoch = {
            let mut idle = self.idle.lock();
            let epoch = self.epoch.load(Ordering::Acquire);
            if let Some(c) = idle.pop() {
                return Ok((c, epoch));
            }
            epoch
        };
        let opened = self
            .client
            .get_connection_with_timeout(self.config.connect_timeout)
            .and_then(|c| {
                c.set_read_timeout(Some(self.config.timeout))?;
                c.set_write_timeout(Some(self.config.timeout))?;
                Ok(c)
            });
        opened.map(|c| (c, epoch)).map_err(|e| {
            // Failing to connect is the server's whatever its cause; the pool's
            // connections are as suspect as the new one.
            self.lost(epoch);
            BackendError::connecting(&e)
        })
    }

    fn checkin(&self, connection: Connection, epoch: u64) {
        let mut idle = self.idle.lock();
        if epoch == self.epoch.load(Ordering::Acquire) && idle.len() < self.config.max_idle {
            idle.push(connection);
            return;
        }
        drop(idle);
        drop(connection);
    }

    fn current_multiplexed(&self) -> Option<(u64, MultiplexedConnection)> {
        let slot = self.multiplexed.lock();
        match &*slot {
            Some((epoch, c)) if *epoch == self.epoch.load(Ordering::Acquire) => {
                Some((*epoch, c.clone()))
            }
            _ => None,
        }
    }

    /// The server was lost by a connection of `epoch`: no connection opened before is used
    /// again (once per epoch, however many callers see the loss).
    fn lost(&self, epoch: u64) {
        let closed = {
            let mut idle = self.idle.lock();
            if self
                .epoch
                .compare_exchange(epoch, epoch + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return;
            }
            std::mem::take(&mut *idle)
        };
        drop(closed);
        let old = self.multiplexed.lock().take();
        drop(old);
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &*self.shared;
        let info = shared.client.get_connection_info();
        f.debug_struct("RedisStore")
            .field("addr", &info.addr().to_string())
            .field("db", &info.redis_settings().db())
            .field("connect_timeout", &shared.config.connect_timeout)
            .field("timeout", &shared.config.timeout)
            .field("probe_interval", &shared.config.probe_interval)
            .field("max_idle", &shared.config.max_idle)
            .field("idle", &shared.idle.lock().len())
            .finish_non_exhaustive()
    }
}
