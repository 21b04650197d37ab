//! [`Connection`]: one Redis server or a Redis Cluster, behind one type.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// The data connection of a cache: commands and scripts for values and leases.
///
/// Either one server through a [`ConnectionManager`] (a multiplexed connection that
/// reconnects by itself) or a Redis Cluster through a [`ClusterConnection`] (routes every
/// command to its key's node). Clones share the connection. The cache's pub/sub
/// subscription uses a connection of its own (see
/// [`Builder::subscriber`](crate::Builder::subscriber)).
///
/// ```no_run
/// use keel_rediscache::Connection;
///
/// # async fn open() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let single = Connection::single(client).await?;
///
/// let cluster = redis::cluster::ClusterClient::new(vec!["redis://127.0.0.1:7000/"])?;
/// let cluster = Connection::cluster(&cluster).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Connection {
    /// One server (or a primary behind a proxy).
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl Connection {
    /// A [`ConnectionManager`] on `client`, with a 1 s connect timeout and reconnection
    /// attempts backing off from 50 ms to 1 s (the cache bounds every command by its own
    /// [`timeout`](crate::Builder::timeout) besides).
    ///
    /// # Errors
    ///
    /// The redis error if the first connection fails.
    pub async fn single(client: redis::Client) -> RedisResult<Connection> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(3);
        let manager = ConnectionManager::new_with_config(client, config).await?;
        Ok(Connection::Single(manager))
    }

    /// An async connection to the cluster `client` knows.
    ///
    /// # Errors
    ///
    /// The redis error if no node could be reached.
    pub async fn cluster(client: &ClusterClient) -> RedisResult<Connection> {
        Ok(Connection::Cluster(client.get_async_connection().await?))
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Connection::Single(_) => f.write_str("Connection::Single"),
            Connection::Cluster(_) => f.write_str("Connection::Cluster"),
        }
    }
}
