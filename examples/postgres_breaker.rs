//! A breaker around real tokio-postgres calls.
//!
//! `cargo run --release --example postgres_breaker [-- --url "host=... user=... dbname=..."]`
//!
//! The connection string (key=value or `postgres://`) comes from `--url`, else
//! `DATABASE_URL`, else `host=127.0.0.1 port=5432 user=postgres dbname=test`. If PostgreSQL
//! is not reachable the example says so and exits with status 0.
//!
//! One query every 10 ms through `call_async_with`, in three phases:
//! 1. healthy: `SELECT 1`, a missing table (SQLSTATE 42P01), a duplicate key (23505). Those
//!    errors are *acceptable*: the database answered, so the breaker counts a success (the
//!    caller still gets the error) and stays closed.
//! 2. slow: every query outlives the session's 20 ms `statement_timeout` (57014). That is a
//!    failure, as is any I/O or connection error (no SQLSTATE): once the healthy calls have
//!    left the window, the breaker rejects most calls without sending them.
//! 3. recovered: fast queries again; the breaker admits more and more until it closes.
//!
//! A 2 s window (20 buckets) makes all this fit in a few seconds; keep the default 10 s in
//! production.

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use keel_breaker::{Breaker, BreakerError};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

const DEFAULT_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// `--url X`, `DATABASE_URL` or the default, parsed.
fn args() -> Result<(String, Config), String> {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    while let Some(arg) = args.next() {
        if arg != "--url" {
            return Err(format!("unknown argument {arg:?}; usage: [--url CONNINFO]"));
        }
        url = Some(args.next().ok_or("--url needs a value")?);
    }
    let url = url
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    match url.parse() {
        Ok(config) => Ok((url, config)),
        Err(e) => Err(format!("invalid connection string {url:?}: {}", chain(&e))),
    }
}

/// Connects within 3 s and drives the connection on a task.
async fn connect(config: &Config) -> Result<Client, String> {
    let connecting = tokio::time::timeout(Duration::from_secs(3), config.connect(NoTls));
    let (client, connection) = match connecting.await {
        Err(_) => return Err("no answer within 3 s".to_owned()),
        Ok(result) => result.map_err(|e| chain(&e))?,
    };
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("connection lost: {}", chain(&e));
        }
    });
    Ok(client)
}

/// The classifier: an error the database answered with on purpose is not its failure.
fn answered(e: &PgError) -> bool {
    e.0.code()
        .is_some_and(|c| *c == SqlState::UNDEFINED_TABLE || *c == SqlState::UNIQUE_VIOLATION)
}

/// The error and its sources: tokio-postgres keeps the useful part there.
fn chain(e: &dyn Error) -> String {
    let (mut text, mut source) = (e.to_string(), e.source());
    while let Some(s) = source {
        (text, source) = (format!("{text}: {s}"), s.source());
    }
    text
}

/// A tokio-postgres error displayed with its sources, so that the breaker's recent failures
/// read "db error: ERROR: canceling statement due to statement timeout", not "db error".
struct PgError(tokio_postgres::Error);

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain(&self.0))
    }
}

async fn query(client: &Client, slow: bool, i: u32) -> Result<(), PgError> {
    let sql = match (slow, i % 3) {
        (true, _) => "SELECT pg_sleep(1)",
        (false, 0) => "SELECT 1",
        (false, 1) => "SELECT * FROM keel_no_such_table",
        (false, _) => "INSERT INTO keel_demo VALUES (1)",
    };
    client.batch_execute(sql).await.map_err(PgError)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (url, config) = args().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let client = match connect(&config).await {
        Ok(client) => client,
        Err(why) => {
            println!("PostgreSQL is not reachable at {url:?}: {why}");
            return println!("Nothing to show: start it, or point --url / DATABASE_URL at one.");
        }
    };
    let setup = "SET statement_timeout = '20ms';
                 CREATE TEMP TABLE keel_demo (id int PRIMARY KEY);
                 INSERT INTO keel_demo VALUES (1)";
    if let Err(e) = client.batch_execute(setup).await {
        return println!("setting up the session failed: {}", chain(&e));
    }

    let breaker = Breaker::builder()
        .name("postgres")
        .window(Duration::from_secs(2))
        .buckets(20)
        .build()
        .expect("a valid configuration");
    println!("connected to {url:?}; every 0.5 s: calls by outcome, then the drop ratio");
    let mut i = 0u32;
    for (phase, slow, ticks) in [
        ("healthy", false, 3),
        ("slow", true, 6),
        ("recovered", false, 6),
    ] {
        for _ in 0..ticks {
            let tick = Instant::now() + Duration::from_millis(500);
            let [mut ok, mut acceptable, mut failed, mut rejected] = [0u32; 4];
            while Instant::now() < tick {
                i += 1;
                let result = breaker.call_async_with(query(&client, slow, i), answered);
                match result.await {
                    Ok(()) => ok += 1,
                    Err(BreakerError::Inner(e)) if answered(&e) => acceptable += 1,
                    Err(BreakerError::Inner(_) | BreakerError::TimedOut(_)) => failed += 1,
                    Err(BreakerError::Rejected(_)) => rejected += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            println!(
                "{phase:>9}: ok {ok:3}  acceptable error {acceptable:3}  failed {failed:3}  \
                 rejected {rejected:3}  drop ratio {:.2}",
                breaker.snapshot().drop_ratio
            );
        }
    }

    println!("\n{:?}\nrecent failures, newest first:", breaker.snapshot());
    for f in breaker.recent_failures() {
        println!("  {f}");
    }
}
