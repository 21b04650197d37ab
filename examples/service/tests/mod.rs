//! Integration tests: each starts the service on 127.0.0.1:0 with a schema of its own on
//! PostgreSQL (127.0.0.1:5432, user postgres, database test) behind a fault-injecting
//! proxy, and drives it over loopback with a bounded HTTP client. Without PostgreSQL (or
//! Redis, for the shared limit and the shared cache) a test prints why and passes, unless
//! `KEEL_REQUIRE_SERVICES=1`, which fails it.
//!
//! `cargo test --example service --all-features -- --nocapture` shows the figures.

mod abuse;
mod client;
mod env;
mod load;
mod metrics;
mod normal;
mod outage;
mod overload;
mod proxy;
mod shared_cache;
mod shared_limit;
mod storm;
