//! keel's reference service: an axum service reading PostgreSQL, with every keel seam a
//! real service needs, and integration tests that drive it over loopback through
//! overload, an abusive client, a database outage, a storm of disconnects, and two
//! instances sharing their limits and their user cache on Redis.
//!
//! ```sh
//! cargo run --release --example service --features "full axum tokio redis metrics" -- \
//!     [--listen 127.0.0.1:8080] [--postgres host=127.0.0.1 user=postgres dbname=test] \
//!     [--redis redis://127.0.0.1:6379]
//! ```
//!
//! # Endpoints
//!
//! - `GET /users/{id}`: one PostgreSQL read behind the coalescing cache and the breaker
//!   (with the breaker's own deadline); a missing user is 404, and remembered for a while
//!   (negative caching), so probing ids that do not exist does not reach the database.
//!   With `--redis` the cache is shared by every instance (keel-rediscache): a user is
//!   read from PostgreSQL once across all of them.
//! - `GET /profile/{id}`: the user, their latest posts and their settings, read in
//!   parallel with `tokio::try_join!`; the first error answers and drops the other reads.
//! - `GET /healthz`, `GET /stats` (the keel primitives' snapshots), `GET /metrics` (their
//!   counters in Prometheus's text format: keel's `metrics` feature recording into
//!   metrics-exporter-prometheus; see METRICS.md): outside the limiter and the shedder, so
//!   a health check or a scrape is never refused.
//!
//! # The stack, outermost first
//!
//! 1. **Per-client token limiter** (`RateLimitLayer`, 429 + `Retry-After`): keyed by the
//!    `x-client-id` header, else the peer's IP (`ConnectInfo`). Outermost, so an abusive
//!    client is turned away before it takes any of the capacity everyone shares: its
//!    refusals never count as in flight in the shedder, nor teach the shedder that
//!    requests take 0 ms (a 429 inside the shedder would be a pass with no latency, and
//!    the shedder would shrink its in-flight allowance for everyone). With `--redis`, the
//!    buckets are shared by every instance.
//! 2. **Load shedder** (`ShedderLayer`, 503 + `Retry-After: 1`): refuses at once what the
//!    service has not shown it can finish in time (in flight vs max passes × min latency,
//!    while the CPU is busy), so the requests it admits keep their latency. 5xx answers
//!    are not passes (go-zero's rule). Inside the limiter, it sees only the traffic the
//!    limits allow.
//! 3. **Handlers**: the user read goes through the **cache** (`users.rs`, one `take`: one
//!    load per key for all concurrent requests, "not found" cached negatively), whose
//!    loader is the **breaker**'s call (`call_async`, 503 + `Retry-After: 1` when it
//!    refuses, 504 when its deadline passes). The cache is outside the breaker: a hit
//!    never touches the database, so it is no evidence either way. Without `--redis` it is
//!    keel-collection's in-process `Cache`; with `--redis`, keel-rediscache's `RedisCache`
//!    named `{redis_prefix}:users`: this instance's local tier, then Redis (shared by every
//!    instance with the same prefix), then the loader, called **once per key across all
//!    instances** (the others wait for its value under a rebuild lease in Redis). Its
//!    failure policy is `FailFast`: while Redis fails, a miss is answered 503 +
//!    `Retry-After: 1` instead of going to the database (every instance's misses at once,
//!    with no lease to coalesce them, would be a stampede); local hits are still served.
//!    It connects at start: with `--redis` and no Redis, the service does not start.
//!
//! The breaker guards the database, not the routes: it wraps each query, not the router
//! (a `BreakerLayer` would count cache hits and 404s as database successes). Waiting for a
//! pooled connection stays outside it, since a queue of our own is not the database
//! failing. Its deadline is the breaker's own `Builder::timeout`, not a
//! `tokio::time::timeout` around the call: that would be a cancellation, which records
//! nothing, and a stalled database would never open the breaker. Conversely a request
//! whose client disconnects, or a fan-out read dropped because a sibling failed, is a
//! cancellation and records nothing, so neither can open it.
//!
//! The fan-out is `tokio::try_join!`, as keel-mapreduce's docs advise for a fixed handful
//! of different reads: each has its own type, the first error is returned as it is, and
//! the rest are dropped. keel-mapreduce is for streams of items over bounded workers with
//! a reducer, which three fixed reads are not.
//!
//! # What keel asks of the service author
//!
//! The lines of keel wiring, per integration, as rustfmt lays them out (non-blank, no
//! comments, no `use` lines; the `// keel:` markers in `app.rs` and `users.rs` delimit most
//! of them; the start-up errors' variants are not counted, for any primitive):
//!
//! | integration | lines | where |
//! |---|---:|---|
//! | per-client limiter: key, layer, 429 + `Retry-After`, `--redis` | 13 | `app.rs`: builder 5 (the Redis option 3), layer 1, `client_key` 7 |
//! | load shedder: 503 + `Retry-After` | 13 | `app.rs`: builder 5 (the tests' CPU injection 3), layer 5, `server_error` 3 |
//! | breaker with its deadline: 503 / 504 | 8 | `app.rs`: builder 5; `db.rs`: the call 1, field and init 2 |
//! | cache: coalescing loader, negative caching; with `--redis` shared by every instance | 33 | `users.rs`: the `Users` enum 5, `build` 18 (in process 5, on Redis 7, the choice 6), `take` 7, `impl` 2; `app.rs`: 1 |
//! | responses: breaker, database and cache errors; Redis failing 503 | 37 | `error.rs`: `From` impls 24 (the shared cache's 10), `IntoResponse for DbError` 5, arms and variants 8 (the 503 5) |
//! | fan-out: a refusal waits for the admitted reads | 8 | `routes.rs`: `refusal_waits` |
//! | total | 112 | |
//!
//! `COMPARISON.md` writes the same service against tower_governor + tower + failsafe +
//! moka, counted the same way (without the shared cache, which they have no counterpart
//! of: 71 lines of keel did the rest before it).
//!
//! # Files
//!
//! `config` (the knobs), `args` (flags), `app` (the keel wiring and `serve`), `users` (the
//! user cache: in process or shared on Redis), `routes` (handlers), `prometheus` (the
//! recorder and `/metrics`), `db` (pool, reads, tables), `error` (answers and start-up
//! errors), `tests` (the integration tests and their HTTP client and fault-injecting
//! proxy).

mod app;
mod args;
mod config;
mod db;
mod error;
mod prometheus;
mod routes;
#[cfg(test)]
mod tests;
mod users;

use std::process::ExitCode;

use args::{Args, HELP};
use users::Users;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("service: {e}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("service: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    db::prepare(&args.config).await?;
    let server = app::serve(&args.config, args.listen).await?;
    let limits = match server.app.limiter.snapshot().redis {
        Some(_) => "on Redis",
        None => "in memory",
    };
    let users = match server.app.users {
        Users::Local(_) => "in this process",
        Users::Shared(_) => "shared on Redis",
    };
    println!(
        "listening on http://{} (per-client limits {limits}, user cache {users})",
        server.addr
    );
    server.task.await??;
    Ok(())
}
