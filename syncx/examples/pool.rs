//! A small connection pool: a flaky "database" whose connections sometimes break, shared by
//! worker threads, with a max idle age and a timeout on checkout.
//!
//! Run: `cargo run -p keel-syncx --example pool`

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use keel_syncx::pool::{Pool, PoolError};

/// A pretend database connection.
struct Conn {
    id: u32,
    queries: u32,
}

impl Conn {
    /// Runs a query; every 7th query finds the connection broken.
    fn query(&mut self, sql: &str) -> Result<String, String> {
        self.queries += 1;
        if self.queries.is_multiple_of(7) {
            return Err(format!("conn {}: connection reset", self.id));
        }
        Ok(format!("conn {} ran {sql:?}", self.id))
    }
}

#[derive(Debug)]
struct ConnectError(String);

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opened = Arc::new(AtomicU32::new(0));
    let closed = Arc::new(AtomicU32::new(0));
    let (o, c) = (opened.clone(), closed.clone());
    let pool = Pool::builder(3, move || {
        let id = o.fetch_add(1, Ordering::SeqCst);
        if id == 4 {
            return Err(ConnectError(format!("conn {id}: connection refused")));
        }
        Ok(Conn { id, queries: 0 })
    })
    .max_age(Duration::from_secs(30)) // idle connections older than this are closed
    .destroy(move |conn: Conn| {
        c.fetch_add(1, Ordering::SeqCst);
        println!("closing conn {} after {} queries", conn.id, conn.queries);
    })
    .build()?;

    let workers: Vec<_> = (0..6)
        .map(|worker| {
            let pool = pool.clone();
            thread::spawn(move || {
                for i in 0..5 {
                    let mut conn = match pool.get_timeout(Duration::from_secs(1)) {
                        Ok(conn) => conn,
                        Err(PoolError::Create(e)) => {
                            println!("worker {worker}: {e}");
                            continue;
                        }
                        Err(PoolError::Timeout) => {
                            println!("worker {worker}: no connection within 1 s");
                            continue;
                        }
                    };
                    match conn.query(&format!("select {i}")) {
                        Ok(row) => println!("worker {worker}: {row}"),
                        Err(e) => {
                            println!("worker {worker}: {e}; discarding it");
                            conn.discard(); // closed now, its slot freed for a new one
                        }
                    }
                    // `conn` goes back to the pool here, most recently used first
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker panicked");
    }

    println!(
        "opened {} (one refused), closed {}, idle {}, in use {}",
        opened.load(Ordering::SeqCst),
        closed.load(Ordering::SeqCst),
        pool.idle(),
        pool.in_use()
    );
    assert!(pool.len() <= pool.max_size());
    drop(pool); // idle connections are closed with the pool
    println!("after drop: closed {}", closed.load(Ordering::SeqCst));
    Ok(())
}
