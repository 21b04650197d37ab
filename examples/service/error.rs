//! The service's errors: [`ApiError`] (what a route answers instead of its value) and
//! [`StartError`] (why the service could not start).

use std::fmt;

use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use keel::breaker::BreakerError;
use keel::collection::cache::TakeError;
use keel::rediscache::TakeError as SharedTakeError;

use crate::db::DbError;

/// Why a route has no answer.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// No such user (or an incomplete profile): 404.
    NotFound,
    /// A database read that did not succeed: keel's answer for the breaker's part (503 with
    /// `Retry-After: 1` when it refused the call, 504 when its deadline passed), 500 for a
    /// failing database.
    Database(BreakerError<DbError>),
    /// The shared cache (`--redis`) could not answer: Redis failed (its `FailFast` policy:
    /// the database is not asked instead, so a Redis outage is not a database stampede), or
    /// another instance's rebuild of the key gave no value within the lease wait. 503 with
    /// `Retry-After: 1`.
    Unavailable,
    /// A loader panicked: 500.
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not found").into_response(),
            ApiError::Database(e) => e.into_response(),
            ApiError::Unavailable => {
                let retry = [(RETRY_AFTER, "1")];
                (StatusCode::SERVICE_UNAVAILABLE, retry, "cache unavailable").into_response()
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

/// The database's own failure; its text stays in the breaker's recent failures, not in
/// the response.
impl IntoResponse for DbError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, "database error").into_response()
    }
}

impl From<BreakerError<DbError>> for ApiError {
    fn from(e: BreakerError<DbError>) -> Self {
        ApiError::Database(e)
    }
}

/// A cached read: the loader's error arrives typed, as the one `Arc` every caller of that
/// load shares.
impl From<TakeError<BreakerError<DbError>>> for ApiError {
    fn from(e: TakeError<BreakerError<DbError>>) -> Self {
        match e {
            TakeError::Failed(e) => ApiError::Database((*e).clone()),
            TakeError::NotFound => ApiError::NotFound,
            _ => ApiError::Internal, // LoaderPanicked
        }
    }
}

/// A read through the shared cache: the loader's error as above; Redis failing (or a
/// rebuild elsewhere not finishing in time) is 503.
impl From<SharedTakeError<BreakerError<DbError>>> for ApiError {
    fn from(e: SharedTakeError<BreakerError<DbError>>) -> Self {
        match e {
            SharedTakeError::Loader(e) => ApiError::Database((*e).clone()),
            SharedTakeError::NotFound => ApiError::NotFound,
            SharedTakeError::LoaderPanicked => ApiError::Internal,
            _ => ApiError::Unavailable, // Redis, Busy, Overloaded
        }
    }
}

/// Why the service did not start.
#[derive(Debug)]
pub(crate) enum StartError {
    Breaker(keel::breaker::ConfigError),
    Shedder(keel::shedder::ConfigError),
    Limiter(keel::limiter::ConfigError),
    Cache(keel::collection::cache::ConfigError),
    SharedCache(keel::rediscache::ConfigError),
    /// The shared cache's Redis (`--redis`): a bad URL, or no connection at start.
    Redis(redis::RedisError),
    Pool(keel::syncx::pool::ConfigError),
    /// The schema name is not a plain lower-case SQL identifier.
    Schema(String),
    /// PostgreSQL refused the connection string, a connection or the setup.
    Postgres(tokio_postgres::Error),
    /// Binding the listener failed.
    Io(std::io::Error),
    /// The Prometheus recorder could not be installed (another recorder was).
    Metrics(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Breaker(e) => write!(f, "breaker: {e}"),
            StartError::Shedder(e) => write!(f, "shedder: {e}"),
            StartError::Limiter(e) => write!(f, "limiter: {e}"),
            StartError::Cache(e) => write!(f, "cache: {e}"),
            StartError::SharedCache(e) => write!(f, "shared cache: {e}"),
            StartError::Redis(e) => write!(f, "shared cache: redis: {e}"),
            StartError::Pool(e) => write!(f, "pool: {e}"),
            StartError::Schema(s) => write!(f, "schema {s:?}: use lower-case letters, digits, _"),
            StartError::Postgres(e) => write!(f, "postgres: {e}"),
            StartError::Io(e) => write!(f, "{e}"),
            StartError::Metrics(e) => write!(f, "metrics: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// `From` for each source, so `?` works throughout the start-up.
macro_rules! from {
    ($($variant:ident($error:ty)),* $(,)?) => {$(
        impl From<$error> for StartError {
            fn from(e: $error) -> Self {
                StartError::$variant(e)
            }
        }
    )*};
}

from!(
    Breaker(keel::breaker::ConfigError),
    Shedder(keel::shedder::ConfigError),
    Limiter(keel::limiter::ConfigError),
    Cache(keel::collection::cache::ConfigError),
    SharedCache(keel::rediscache::ConfigError),
    Redis(redis::RedisError),
    Pool(keel::syncx::pool::ConfigError),
    Postgres(tokio_postgres::Error),
    Io(std::io::Error),
);
