//! PostgreSQL: a bounded pool of connections, the three reads the routes need, each under
//! the breaker and its deadline, and the tables (created at start if missing).

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel::breaker::{Breaker, BreakerError};
use keel::syncx::pool::Pool;
use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::{Client, NoTls};

use crate::config::Config;
use crate::error::StartError;

/// The user's name, or NULL; every read is one row: its answer, then the deliberate delay
/// (`pg_sleep` in the select list always runs, whatever the answer).
const USER: &str = "SELECT (SELECT name FROM users WHERE id = $1), pg_sleep($2)";
const POSTS: &str = "SELECT ARRAY(SELECT title FROM posts WHERE user_id = $1 ORDER BY id DESC LIMIT 5), pg_sleep($2)";
const SETTINGS: &str = "SELECT (SELECT theme FROM settings WHERE user_id = $1), pg_sleep($2)";

/// A database call that failed (the breaker counts it). Cheap to clone, so one load's
/// error can answer every request that shared it.
#[derive(Debug, Clone)]
pub(crate) enum DbError {
    Postgres(Arc<tokio_postgres::Error>),
    /// A pool slot could not be had (the pool never times out: not expected).
    NoConnection,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Postgres(e) => write!(f, "postgres: {e}"),
            DbError::NoConnection => f.write_str("no database connection"),
        }
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Postgres(Arc::new(e))
    }
}

/// What a read returns: its value, or why not (the breaker refused it, its deadline
/// passed, or the database failed).
pub(crate) type Read<T> = Result<T, BreakerError<DbError>>;

/// The service's database. Clones share the pool, the breaker and the counters.
#[derive(Clone)]
pub(crate) struct Db {
    pool: Pool<Conn, Infallible>,
    pg: Arc<tokio_postgres::Config>,
    breaker: Breaker,
    query_delay: Duration,
    posts_delay: Duration,
    started: Arc<AtomicU64>,
}

impl Db {
    pub(crate) fn new(config: &Config, breaker: Breaker) -> Result<Db, StartError> {
        Ok(Db {
            // Slots, not connections: a slot connects (under the breaker) when first used.
            pool: Pool::builder(config.pool_size, || Ok(Conn::default())).build()?,
            pg: Arc::new(pg_config(config)?),
            breaker,
            query_delay: config.query_delay,
            posts_delay: config.posts_delay,
            started: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The user's name; `None` if there is no such user.
    pub(crate) async fn user(&self, id: i64) -> Read<Option<String>> {
        self.read(USER, id, self.query_delay).await
    }

    /// The user's latest post titles (the heavy read).
    pub(crate) async fn posts(&self, id: i64) -> Read<Vec<String>> {
        self.read(POSTS, id, self.posts_delay).await
    }

    /// The user's theme; `None` if the user has no settings.
    pub(crate) async fn settings(&self, id: i64) -> Read<Option<String>> {
        self.read(SETTINGS, id, self.query_delay).await
    }

    /// Database calls made since the service started (slots taken; the breaker may still
    /// refuse some), for `/stats` and the tests.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// One read: a pool slot, then the query under the breaker. Waiting for a slot is this
    /// service's own queue, not the database failing, so it stays outside the breaker and
    /// its deadline; the shedder in front keeps that queue short.
    async fn read<T: FromSqlOwned>(&self, sql: &str, id: i64, delay: Duration) -> Read<T> {
        let mut conn = self
            .pool
            .get_async()
            .await
            .map_err(|_| BreakerError::Inner(DbError::NoConnection))?;
        self.started.fetch_add(1, Ordering::Relaxed);
        let query = conn.query(&self.pg, sql, id, delay);
        self.breaker.call_async(query).await
    }
}

/// A pool slot: a connection, once one has been opened.
#[derive(Default)]
struct Conn {
    client: Option<Client>,
}

impl Conn {
    /// Runs `sql` on this slot's connection, opening one if it has none. The client is
    /// taken out for the query and put back only once it has answered: a connection whose
    /// query was abandoned (an error, the breaker's deadline, a client gone) may still be
    /// busy or broken, so it is dropped (closed) with the abandoned future.
    async fn query<T: FromSqlOwned>(
        &mut self,
        pg: &tokio_postgres::Config,
        sql: &str,
        id: i64,
        delay: Duration,
    ) -> Result<T, DbError> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => connect(pg).await?,
        };
        let row = client.query_one(sql, &[&id, &delay.as_secs_f64()]).await?;
        self.client = Some(client);
        Ok(row.try_get(0)?)
    }
}

async fn connect(pg: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = pg.connect(NoTls).await?;
    // The connection's I/O; it ends when the client is dropped or the socket closes.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The connection settings: `config.postgres`, reading `config.schema`.
fn pg_config(config: &Config) -> Result<tokio_postgres::Config, StartError> {
    let mut pg: tokio_postgres::Config = config.postgres.parse()?;
    pg.options(format!("-c search_path={}", schema_name(&config.schema)?));
    Ok(pg)
}

/// `name` if it is a plain lower-case SQL identifier (it is spliced into SQL text).
pub(crate) fn schema_name(name: &str) -> Result<&str, StartError> {
    let plain = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(name)
    } else {
        Err(StartError::Schema(name.to_owned()))
    }
}

/// Creates the schema and tables if missing, with demo rows: users 1..=1000, three posts
/// each, settings for the even ones (so an odd user's profile is incomplete: 404).
pub(crate) async fn prepare(config: &Config) -> Result<(), StartError> {
    let client = connect(&pg_config(config)?).await?;
    let schema = schema_name(&config.schema)?;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.users (id bigint PRIMARY KEY, name text NOT NULL);
             CREATE TABLE IF NOT EXISTS {schema}.posts (
                 id bigserial PRIMARY KEY, user_id bigint NOT NULL, title text NOT NULL);
             CREATE INDEX IF NOT EXISTS posts_by_user ON {schema}.posts (user_id, id);
             CREATE TABLE IF NOT EXISTS {schema}.settings (user_id bigint PRIMARY KEY, theme text NOT NULL);
             INSERT INTO {schema}.users SELECT i, 'user ' || i FROM generate_series(1, 1000) i
                 ON CONFLICT DO NOTHING;
             INSERT INTO {schema}.settings SELECT i, 'dark' FROM generate_series(2, 1000, 2) i
                 ON CONFLICT DO NOTHING;
             INSERT INTO {schema}.posts (user_id, title)
                 SELECT u, 'post ' || n FROM generate_series(1, 1000) u, generate_series(1, 3) n
                 WHERE NOT EXISTS (SELECT 1 FROM {schema}.posts);"
        ))
        .await?;
    Ok(())
}
