//! The handlers: a cached user read, a profile fanned out over three reads, health and
//! statistics.

use axum::Json;
use axum::extract::{Path, State};
use keel::breaker::BreakerError;
use serde_json::{Value, json};

use crate::app::App;
use crate::error::ApiError;

/// `GET /users/{id}`: 200 with the user, 404 if there is none; through the cache
/// ([`Users::take`](crate::users::Users::take)).
pub(crate) async fn user(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let name = app.users.take(id, &app.db).await?;
    Ok(Json(json!({ "id": id, "name": name })))
}

/// `GET /profile/{id}`: the user, their latest posts and their settings, read in parallel.
/// The first error (a missing part: 404; a failed or timed-out read) answers at once and
/// drops the other reads, which the breaker counts as cancelled, not failed.
pub(crate) async fn profile(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let (name, posts, theme) = tokio::try_join!(
        refusal_waits(app.users.take(id, &app.db)),
        refusal_waits(async { Ok(app.db.posts(id).await?) }),
        refusal_waits(async { app.db.settings(id).await?.ok_or(ApiError::NotFound) }),
    )?;
    Ok(Json(
        json!({ "id": id, "name": name?, "posts": posts?, "theme": theme? }),
    ))
}

/// A read of the fan-out whose refusal by the breaker does not stop the other reads: it
/// is answered only once they are done. A read the breaker let through while it refuses
/// most is its probe of a recovering database; dropped, it would be a cancellation, which
/// tells the breaker nothing, and a breaker whose calls are all fanned out would stay open
/// after the database is back (the outage test saw it: every request 503 for 30 s).
async fn refusal_waits<T>(
    read: impl Future<Output = Result<T, ApiError>>,
) -> Result<Result<T, ApiError>, ApiError> {
    match read.await {
        Err(refused @ ApiError::Database(BreakerError::Rejected(_))) => Ok(Err(refused)),
        other => other.map(Ok),
    }
}

/// `GET /healthz`: the process answers (outside the limiter and the shedder).
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /stats`: what the breaker, the shedder, the limiter and the cache have seen (the
/// shared cache's counters, this instance's, with `--redis`).
pub(crate) async fn stats(State(app): State<App>) -> Json<Value> {
    let (breaker, shedder) = (app.breaker.snapshot(), app.shedder.snapshot());
    let limiter = app.limiter.snapshot();
    Json(json!({
        "breaker": {
            "accepts": breaker.history.accepts,
            "total": breaker.history.total,
            "drop_ratio": breaker.drop_ratio,
            "cancelled": breaker.cancelled,
            "recent_failures": app.breaker.recent_failures().iter().map(|f| f.reason.clone()).collect::<Vec<_>>(),
        },
        "shedder": {
            "cpu": shedder.cpu,
            "in_flight": shedder.in_flight,
            "max_flight": shedder.max_flight,
            "admitted": shedder.admitted,
            "dropped": shedder.dropped,
        },
        "limiter": {
            "keys": limiter.keys,
            "redis_healthy": limiter.redis.map(|r| r.healthy),
        },
        "cache": app.users.stats(),
        "database_calls": app.db.started(),
    }))
}
