//! [`RedisStore`]: the client (one server's or a cluster's), the sync connection pool and
//! the shared async connection.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::cluster::{ClusterClient, ClusterConfig, ClusterConnection};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, Cmd, Connection, ConnectionLike, ErrorKind, RedisResult,
    ServerErrorKind, Value,
};

use super::cluster::{Topology, host_port};
use super::scripts::Call;
use super::{BackendError, Link, RedisErrorKind};
use crate::ConfigError;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(100);
const DEFAULT_MAX_IDLE: usize = 16;
/// How often a cluster call is sent again (after `MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`,
/// a lost node connection), in [`RedisStore::open_cluster`]'s client: once.
const CLUSTER_RETRIES: u32 = 1;
/// The wait before such a retry (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`), in ms:
/// between these two.
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (10, 100);
/// Zero durations mean "no timeout" to std's sockets (or are refused): the knobs raise
/// them to this.
const MIN_DURATION: Duration = Duration::from_millis(1);

/// A connection to one Redis server or to one Redis Cluster, shared by the limiters built
/// on it (see the [module docs](crate::redis) for the keys, the scripts, the failure
/// handling and [clusters](crate::redis#redis-cluster)).
///
/// Opening a store does not connect: connections are opened on first use (blocking ones
/// for sync calls, one multiplexed connection for async calls; on a cluster, each of them
/// a cluster connection with one connection per master), so a limiter can be built while
/// Redis is down and starts on its failure policy. Cheap to clone; clones share the
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
///
/// A Redis Cluster: the same limiters, on a store opened with the URLs of some of its
/// masters (one that answers is enough; the client learns the others from it):
///
/// ```no_run
/// use keel_limiter::redis::RedisStore;
/// use keel_limiter::{Rate, TokenLimiter};
///
/// let store = RedisStore::open_cluster([
///     "redis://10.0.0.1:6379/",
///     "redis://10.0.0.2:6379/",
///     "redis://10.0.0.3:6379/",
/// ])?;
/// assert!(store.is_cluster());
/// let api = TokenLimiter::builder(Rate::per_second(100), 20)
///     .redis(store, "api") // key k lives at {api:k}, on the master serving its slot
///     .build()?;
/// if api.allow_key("203.0.113.7") { /* serve */ }
/// # Ok::<(), Box<dyn std::error::Error>>(())
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

/// One server's client, or a cluster's.
#[derive(Clone)]
enum Client {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

/// A blocking connection: to the server, or a cluster connection (one connection per
/// master it has talked to, routing each call by its key's slot).
enum SyncConnection {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

impl SyncConnection {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            SyncConnection::Single(c) => c,
            SyncConnection::Cluster(c) => &mut **c,
        }
    }
}

/// The connection async calls share: multiplexed to the server, or an async cluster
/// connection.
#[derive(Clone)]
enum AsyncConnection {
    Single(MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl AsyncConnection {
    async fn query(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            AsyncConnection::Single(c) => cmd.query_async(c).await,
            AsyncConnection::Cluster(c) => cmd.query_async(c).await,
        }
    }
}

struct Shared {
    client: Client,
    config: Config,
    /// Bumped when the server is lost: connections opened before are not used again.
    /// (Not on a cluster: its connections repair the connection of each node themselves.)
    epoch: AtomicU64,
    /// Idle blocking connections (all of the current epoch).
    idle: Mutex<Vec<SyncConnection>>,
    /// The connection async calls share, with its epoch and its generation (the count of
    /// async connects before it).
    multiplexed: Mutex<Option<(u64, u64, AsyncConnection)>>,
    /// One async connect at a time.
    connecting: tokio::sync::Mutex<()>,
    /// Async connects finished (a caller that waited for one does not try again).
    connects: AtomicU64,
    /// A cluster's slot map, as last read (`CLUSTER SLOTS`): which master a key's
    /// failure concerns.
    topology: Mutex<Option<Arc<Topology>>>,
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

    /// A store for the Redis Cluster whose nodes include `urls` (`redis://host:port/`,
    /// as for [`open`](Self::open); one node that answers is enough, the others are
    /// learnt from it). Does not connect.
    ///
    /// The cluster client follows `MOVED` and `ASK` redirections and waits out
    /// `TRYAGAIN` and `CLUSTERDOWN`, retrying a call once (10 to 100 ms after those two);
    /// what is still an error after that goes to the failure policy (see
    /// [the module docs](crate::redis#redis-cluster)). For other retry settings, build
    /// the client yourself and use [`from_cluster_client`](Self::from_cluster_client).
    ///
    /// ```
    /// use keel_limiter::ConfigError;
    /// use keel_limiter::redis::RedisStore;
    ///
    /// let store = RedisStore::open_cluster(["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"]);
    /// assert!(store.is_ok_and(|s| s.is_cluster())); // no connection yet
    /// assert!(matches!(RedisStore::open_cluster(["not a url"]), Err(ConfigError::Redis(_))));
    /// assert!(matches!(RedisStore::open_cluster(Vec::<String>::new()), Err(ConfigError::Redis(_))));
    /// ```
    pub fn open_cluster<I>(urls: I) -> Result<RedisStore, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        if urls.is_empty() {
            return Err(ConfigError::Redis(
                "a cluster store needs at least one node URL".to_owned(),
            ));
        }
        ClusterClient::builder(urls)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_RETRY_WAIT_MS.0)
            .max_retry_wait(CLUSTER_RETRY_WAIT_MS.1)
            .build()
            .map(RedisStore::from_cluster_client)
            .map_err(|e| ConfigError::Redis(e.to_string()))
    }

    /// A store on an existing client.
    pub fn from_client(client: redis::Client) -> RedisStore {
        RedisStore::with_config(Client::Single(client), Config::default())
    }

    /// A store on an existing Redis Cluster client (its retry settings are kept; the
    /// store's [`timeout`](Self::timeout) and [`connect_timeout`](Self::connect_timeout)
    /// apply to each connection it opens).
    pub fn from_cluster_client(client: ClusterClient) -> RedisStore {
        RedisStore::with_config(Client::Cluster(Box::new(client)), Config::default())
    }

    fn with_config(client: Client, config: Config) -> RedisStore {
        RedisStore {
            shared: Arc::new(Shared {
                client,
                config,
                epoch: AtomicU64::new(0),
                idle: Mutex::new(Vec::new()),
                multiplexed: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                connects: AtomicU64::new(0),
                topology: Mutex::new(None),
            }),
        }
    }

    fn reconfigured(self, change: impl FnOnce(&mut Config)) -> RedisStore {
        let mut config = self.shared.config;
        change(&mut config);
        RedisStore::with_config(self.shared.client.clone(), config)
    }

    /// How long a reply may take (default 1 s; at least 1 ms). A decision that times out
    /// is decided by the failure policy. (On a cluster, a call the cluster client sends
    /// again, after a redirection or a lost connection, may take this long once more.)
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

    /// The underlying client of a one-server store (`None` for a cluster store).
    pub fn client(&self) -> Option<&redis::Client> {
        match &self.shared.client {
            Client::Single(c) => Some(c),
            Client::Cluster(_) => None,
        }
    }

    /// The underlying client of a cluster store (`None` for a one-server store).
    pub fn cluster_client(&self) -> Option<&ClusterClient> {
        match &self.shared.client {
            Client::Single(_) => None,
            Client::Cluster(c) => Some(&**c),
        }
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.shared.client, Client::Cluster(_))
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
        self.with_connection(|c| {
            let c = c.as_dyn();
            match call.evalsha().query(c) {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    reloaded();
                    call.eval().query(c)
                }
                other => other,
            }
        })
    }

    /// [`eval`](Self::eval) on the shared multiplexed connection.
    pub(crate) async fn eval_async(
        &self,
        call: &Call,
        reloaded: &(dyn Fn() + Sync),
    ) -> Result<Value, BackendError> {
        let (epoch, generation, mut connection) = self.multiplexed().await?;
        let result = match connection.query(&call.evalsha()).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                reloaded();
                connection.query(&call.eval()).await
            }
            other => other,
        };
        result.map_err(|e| {
            let e = BackendError::from_redis(&e);
            if e.link == Link::Lost {
                if self.is_cluster() {
                    // Replaced, in case the cluster connection itself is gone; the
                    // blocking connections (which repair each node's connection on use)
                    // are kept.
                    self.shared.replace_async(generation);
                } else {
                    self.shared.lost(epoch);
                }
            }
            e
        })
    }

    /// `PING` on a blocking connection (on a cluster: to one node, at random).
    pub(crate) fn ping(&self) -> Result<(), BackendError> {
        let reply: String = self.with_connection(|c| redis::cmd("PING").query(c.as_dyn()))?;
        pong(&reply)
    }

    /// Whether the cluster node `node` (`host:port`) serves its slots: its `CLUSTER INFO`
    /// says `cluster_state:ok` (a master that just restarted answers `PING` but refuses
    /// its keys with `CLUSTERDOWN` until it has rejoined; a cluster that requires full
    /// coverage refuses every key while a master is down). Where `CLUSTER INFO` is refused
    /// (an ACL, a proxy), a `PONG` is enough. On a blocking cluster connection.
    pub(crate) fn ping_node(&self, node: &str) -> Result<(), BackendError> {
        let (host, port) = host_port(node).ok_or_else(|| {
            BackendError::new(
                RedisErrorKind::Connection,
                Link::Usable,
                format!("not a node address: {node:?}"),
            )
        })?;
        let routing = || {
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.to_owned(),
                port,
            })
        };
        let mut info = redis::cmd("CLUSTER");
        info.arg("INFO");
        match self.with_cluster_connection(|c| c.route_command(&info, routing())) {
            Ok(reply) => {
                let text = match &reply {
                    Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    Value::VerbatimString { text, .. } => text.clone(),
                    Value::SimpleString(s) => s.clone(),
                    other => return Err(BackendError::unexpected("CLUSTER INFO", other)),
                };
                if text.lines().any(|l| l.trim_end() == "cluster_state:ok") {
                    Ok(())
                } else {
                    Err(BackendError::new(
                        RedisErrorKind::Script,
                        Link::Usable,
                        format!("{node} does not serve its slots (cluster_state is not ok)"),
                    ))
                }
            }
            Err(e) if e.link == Link::Usable => {
                match self
                    .with_cluster_connection(|c| c.route_command(&redis::cmd("PING"), routing()))?
                {
                    Value::SimpleString(s) => pong(&s),
                    other => Err(BackendError::unexpected("PING", &other)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The cluster's slot map as last read, if it was.
    pub(crate) fn topology(&self) -> Option<Arc<Topology>> {
        self.shared.topology.lock().clone()
    }

    /// Reads the cluster's slot map again (`CLUSTER SLOTS`) from the first master of the
    /// last map that answers (or any node, the first time), on a blocking connection.
    pub(crate) fn refresh_topology(&self) -> Result<Arc<Topology>, BackendError> {
        let known: Vec<String> = self
            .topology()
            .map(|t| t.nodes().to_vec())
            .unwrap_or_default();
        let mut last = None;
        for node in &known {
            let Some((host, port)) = host_port(node) else {
                continue;
            };
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.to_owned(),
                port,
            });
            match self.with_cluster_connection(|c| c.route_command(&cluster_slots(), routing)) {
                Ok(reply) => match Topology::parse(&reply, Some(host)) {
                    Some(t) => return Ok(self.learnt(t)),
                    None => last = Some(BackendError::unexpected("CLUSTER SLOTS", &reply)),
                },
                Err(e) => last = Some(e),
            }
        }
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        match self.with_cluster_connection(|c| c.route_command(&cluster_slots(), routing)) {
            Ok(reply) => match Topology::parse(&reply, None) {
                Some(t) => Ok(self.learnt(t)),
                None => Err(BackendError::unexpected("CLUSTER SLOTS", &reply)),
            },
            Err(e) => Err(last.unwrap_or(e)),
        }
    }

    fn learnt(&self, topology: Topology) -> Arc<Topology> {
        let topology = Arc::new(topology);
        *self.shared.topology.lock() = Some(Arc::clone(&topology));
        topology
    }

    fn with_cluster_connection<T>(
        &self,
        call: impl FnOnce(&mut ClusterConnection) -> RedisResult<T>,
    ) -> Result<T, BackendError> {
        self.with_connection(|c| match c {
            SyncConnection::Cluster(c) => call(c),
            SyncConnection::Single(_) => Err(redis::RedisError::from((
                ErrorKind::InvalidClientConfig,
                "not a cluster store",
            ))),
        })
    }

    fn with_connection<T>(
        &self,
        call: impl FnOnce(&mut SyncConnection) -> RedisResult<T>,
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
                match (e.link, &connection) {
                    (Link::Usable, _) => shared.checkin(connection, epoch),
                    // One node of a cluster lost says nothing of the others (and the
                    // cluster connection reconnects to that node on its next call): only
                    // this connection is dropped.
                    (Link::Broken, _) | (Link::Lost, SyncConnection::Cluster(_)) => {
                        drop(connection)
                    }
                    (Link::Lost, SyncConnection::Single(_)) => {
                        drop(connection);
                        shared.lost(epoch);
                    }
                }
                Err(e)
            }
        }
    }

    /// The shared async connection, opened if there is none.
    async fn multiplexed(&self) -> Result<(u64, u64, AsyncConnection), BackendError> {
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
        let generation = connects_seen;
        let config = &shared.config;
        let result = match &shared.client {
            Client::Single(client) => {
                let async_config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.connect_timeout))
                    .set_response_timeout(Some(config.timeout));
                client
                    .get_multiplexed_async_connection_with_config(&async_config)
                    .await
                    .map(AsyncConnection::Single)
            }
            Client::Cluster(client) => {
                // Connecting to a cluster is several round trips (connect, `CLUSTER
                // SLOTS`, connect to each master): bounded as a whole too.
                let connect = client.get_async_connection_with_config(shared.cluster_config());
                match tokio::time::timeout(config.connect_timeout + config.timeout, connect).await {
                    Ok(connected) => connected.map(AsyncConnection::Cluster),
                    Err(_) => Err(redis::RedisError::from(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    ))),
                }
            }
        };
        shared.connects.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(mut connection) => {
                *shared.multiplexed.lock() = Some((epoch, generation, connection.clone()));
                if let AsyncConnection::Cluster(c) = &mut connection
                    && shared.topology.lock().is_none()
                {
                    shared.learn_topology_async(c).await;
                }
                Ok((epoch, generation, connection))
            }
            Err(e) => {
                // Whatever the server said, there is no connection: the server's.
                shared.lost(epoch);
                Err(BackendError::connecting(&e))
            }
        }
    }
}

/// `PING`'s answer.
fn pong(reply: &str) -> Result<(), BackendError> {
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

impl Default for Config {
    fn default() -> Self {
        Config {
            connect_timeout: DEFAULT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            max_idle: DEFAULT_MAX_IDLE,
        }
    }
}

impl Shared {
    fn cluster_config(&self) -> ClusterConfig {
        ClusterConfig::new()
            .set_connection_timeout(self.config.connect_timeout)
            .set_response_timeout(self.config.timeout)
    }

    /// An idle blocking connection, or a new one.
    fn checkout(&self) -> Result<(SyncConnection, u64), BackendError> {
        let epoch = {
            let mut idle = self.idle.lock();
            let epoch = self.epoch.load(Ordering::Acquire);
            if let Some(c) = idle.pop() {
                return Ok((c, epoch));
            }
            epoch
        };
        let timeout = Some(self.config.timeout);
        let opened = match &self.client {
            Client::Single(client) => client
                .get_connection_with_timeout(self.config.connect_timeout)
                .and_then(|c| {
                    c.set_read_timeout(timeout)?;
                    c.set_write_timeout(timeout)?;
                    Ok(SyncConnection::Single(c))
                }),
            Client::Cluster(client) => client
                .get_connection_with_config(self.cluster_config())
                .and_then(|mut c| {
                    c.set_write_timeout(timeout)?;
                    if self.topology.lock().is_none() {
                        self.learn_topology(&mut c);
                    }
                    Ok(SyncConnection::Cluster(Box::new(c)))
                }),
        };
        opened.map(|c| (c, epoch)).map_err(|e| {
            // Failing to connect is the server's whatever its cause; the pool's
            // connections are as suspect as the new one.
            self.lost(epoch);
            BackendError::connecting(&e)
        })
    }

    /// Reads the slot map on a new cluster connection (best effort: a limiter that has
    /// none blames the whole cluster for a server error, and its probe reads it).
    fn learn_topology(&self, c: &mut ClusterConnection) {
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        if let Ok(reply) = c.route_command(&cluster_slots(), routing)
            && let Some(t) = Topology::parse(&reply, None)
        {
            *self.topology.lock() = Some(Arc::new(t));
        }
    }

    /// [`learn_topology`](Self::learn_topology) on the async cluster connection.
    async fn learn_topology_async(&self, c: &mut redis::cluster_async::ClusterConnection) {
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        if let Ok(reply) = c.route_command(cluster_slots(), routing).await
            && let Some(t) = Topology::parse(&reply, None)
        {
            *self.topology.lock() = Some(Arc::new(t));
        }
    }

    fn checkin(&self, connection: SyncConnection, epoch: u64) {
        let mut idle = self.idle.lock();
        if epoch == self.epoch.load(Ordering::Acquire) && idle.len() < self.config.max_idle {
            idle.push(connection);
            return;
        }
        drop(idle);
        drop(connection);
    }

    fn current_multiplexed(&self) -> Option<(u64, u64, AsyncConnection)> {
        let slot = self.multiplexed.lock();
        match &*slot {
            Some((epoch, generation, c)) if *epoch == self.epoch.load(Ordering::Acquire) => {
                Some((*epoch, *generation, c.clone()))
            }
            _ => None,
        }
    }

    /// The async connection of `generation` is not used again (a newer one is kept).
    fn replace_async(&self, generation: u64) {
        let old = {
            let mut slot = self.multiplexed.lock();
            match &*slot {
                Some((_, g, _)) if *g == generation => slot.take(),
                _ => None,
            }
        };
        drop(old);
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

/// `CLUSTER SLOTS`.
fn cluster_slots() -> Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    cmd
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &*self.shared;
        let mut d = f.debug_struct("RedisStore");
        match &shared.client {
            Client::Single(client) => {
                let info = client.get_connection_info();
                d.field("addr", &info.addr().to_string())
                    .field("db", &info.redis_settings().db());
            }
            Client::Cluster(_) => {
                let masters = shared.topology.lock().as_ref().map(|t| t.nodes().to_vec());
                d.field("cluster", &true).field("masters", &masters);
            }
        }
        d.field("connect_timeout", &shared.config.connect_timeout)
            .field("timeout", &shared.config.timeout)
            .field("probe_interval", &shared.config.probe_interval)
            .field("max_idle", &shared.config.max_idle)
            .field("idle", &shared.idle.lock().len())
            .finish_non_exhaustive()
    }
}
