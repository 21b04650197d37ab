//! The breaker in front of a real PostgreSQL, with faults injected by a TCP proxy.
//!
//! `KEEL_REQUIRE_SERVICES=1 cargo test -p keel-breaker --test postgres -- --nocapture`
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user `postgres`, database `test`, trust auth). If
//! it is not reachable the test prints why and passes, unless `KEEL_REQUIRE_SERVICES=1`, in
//! which case it fails.
//!
//! # Scenario
//!
//! Sixteen workers share one breaker (2 s window of 20 buckets, the breaker's own deadline of
//! 500 ms per call (`Builder::timeout`), other settings default, the real
//! [`CoarseClock`](keel_timex::CoarseClock) since the I/O is real). Each keeps one
//! connection through the proxy and loops: one call = `SELECT 1` on that connection,
//! preceded by a reconnect if the previous call failed, all inside `breaker.call_async`
//! (nothing but the breaker's deadline times it); then a 40 ms pause (about 400 calls/s in
//! all). Reusing the
//! connection keeps a healthy call cheap (no backend fork per call) and makes every proxy
//! connection during a fault an admitted call, so the proxy's accept count shows how many
//! calls got past the breaker. Outcomes are logged with the time each call returned, and
//! each figure below is over a one-second span of that log.
//!
//! 0. storm (1.5 s, the database healthy): sixteen more tasks play handlers whose callers
//!    go away. Each runs a fan-out of three reads with `try_join!` in which the first finds
//!    nothing (an acceptable error that ends the join), so the two slow siblings
//!    (`pg_sleep(0.05)`) are cancelled mid-query; and a read whose client disconnects
//!    10 ms into it. Thousands of cancelled calls, about twice the window's successes:
//!    the breaker must record none of them as a failure (counted as failures, as keel did
//!    before its cancellation policy, they shed this healthy database at once).
//! 1. healthy (1.5 s, right after the storm): every call succeeds, none is rejected, no new
//!    connection.
//! 2. refuse: the proxy kills the connections and closes new ones at once. Within 4 s some
//!    second must have more than 70% of the calls rejected and fewer proxy connections than
//!    20% of the calls; the fault then lasts one more second, which must do the same.
//! 3. heal: the proxy passes again. Some second ending within two windows (4 s) must have
//!    more than 90% of the calls succeed.
//! 4. stall: as 2, within 5 s, from the breaker that just recovered; the proxy holds
//!    connections without forwarding, so calls fail slowly, by the breaker's deadline, and
//!    fewer of them complete: the breaker gets less evidence per second than with
//!    refusals.
//! 5. heal again, as 3.
//!
//! Typical figures here: shedding from about 2.2-2.5 s into either fault (the healthy
//! successes must first leave the 2 s window), then 95-99% rejected (drop probability
//! `(total - 5) / (total + 1)`, about 0.99), healed 2.0-2.7 s after the fault. The limits
//! are about twice that, for a loaded machine; a breaker that does not open, lets rejected
//! calls reach the proxy, takes timeouts for successes or does not close again fails. Every
//! wait is bounded, so the test takes 12-14 s, at most about 21 s.
// tokio-postgres is not built under `--cfg loom` (tokio has no `net` there).
#![cfg(all(not(loom), feature = "tokio"))]

#[path = "support/proxy.rs"]
mod proxy;

use std::error::Error;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use keel_breaker::{Breaker, BreakerError};
use tokio::sync::Barrier;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use proxy::{Fault, Proxy};

const POSTGRES: &str = "127.0.0.1:5432";
const USER: &str = "postgres";
const DATABASE: &str = "test";

const WINDOW: Duration = Duration::from_secs(2);
const BUCKETS: u32 = 20;

const WORKERS: usize = 16;
const PACE: Duration = Duration::from_millis(40);
/// The breaker's deadline for one call (reconnect and query).
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
const STORM: Duration = Duration::from_millis(1500);
const STORM_TASKS: usize = 16;
/// A read slow enough to be cancelled mid-query.
const SLOW_READ: &str = "SELECT pg_sleep(0.05)";
/// How long a disconnecting client waits before it goes away.
const CLIENT_PATIENCE: Duration = Duration::from_millis(10);
/// For the probe and the workers' first connection, outside the breaker.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

const HEALTHY: Duration = Duration::from_millis(1500);
const REFUSE_LIMIT: Duration = Duration::from_secs(4);
const STALL_LIMIT: Duration = Duration::from_secs(5);
/// The span the fault and heal thresholds are measured over.
const SECOND: Duration = Duration::from_secs(1);
const HEAL_LIMIT: Duration = Duration::from_secs(4); // two windows
const MIN_REJECTED_SHARE: f64 = 0.70;
const MAX_CONNECTS_SHARE: f64 = 0.20;
const MIN_OK_SHARE: f64 = 0.90;
/// Fewer calls than this in a measured second and the figures mean nothing.
const MIN_CALLS_PER_SECOND: usize = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ok,
    Failed,
    Rejected,
}

/// Every call's outcome with the time it returned.
#[derive(Debug, Default)]
struct Log(Mutex<Vec<(Instant, Kind)>>);

impl Log {
    fn push(&self, kind: Kind) {
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        log.push((Instant::now(), kind));
    }
}

/// What happened in `[from, to)`.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    calls: usize,
    ok: usize,
    failed: usize,
    rejected: usize,
    connects: usize,
}

impl Figures {
    fn of(log: &Log, proxy: &Proxy, from: Instant, to: Instant) -> Figures {
        let mut f = Figures {
            connects: proxy.accepts_between(from, to),
            ..Figures::default()
        };
        let log = log.0.lock().unwrap_or_else(PoisonError::into_inner);
        for &(_, kind) in log.iter().filter(|(at, _)| from <= *at && *at < to) {
            f.calls += 1;
            match kind {
                Kind::Ok => f.ok += 1,
                Kind::Failed => f.failed += 1,
                Kind::Rejected => f.rejected += 1,
            }
        }
        f
    }

    fn share(part: usize, calls: usize) -> f64 {
        if calls == 0 {
            0.0
        } else {
            part as f64 / calls as f64
        }
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "calls {:5}  rejected {:5} ({:5.1}%)  failed {:4}  ok {:5} ({:5.1}%)  \
             proxy connects {:4}",
            self.calls,
            self.rejected,
            100.0 * Figures::share(self.rejected, self.calls),
            self.failed,
            self.ok,
            100.0 * Figures::share(self.ok, self.calls),
            self.connects,
        )
    }
}

/// Why a call failed.
#[derive(Debug)]
enum CallError {
    Connect(tokio_postgres::Error),
    Query(tokio_postgres::Error),
    TimedOut(&'static str),
    Unexpected(String),
    /// The row does not exist: the database answered, an acceptable error.
    NotFound,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Connect(e) => write!(f, "connect: {}", chain(e)),
            CallError::Query(e) => write!(f, "query: {}", chain(e)),
            CallError::TimedOut(what) => write!(f, "{what} timed out"),
            CallError::Unexpected(what) => write!(f, "unexpected answer: {what}"),
            CallError::NotFound => f.write_str("not found"),
        }
    }
}

/// `error: source: source...`: tokio-postgres keeps the useful part ("Connection refused")
/// in the source.
fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// A client and its connection task, which is aborted with it.
struct Conn {
    client: Client,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connect(addr: SocketAddr, limit: Duration) -> Result<Conn, CallError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(USER)
        .dbname(DATABASE);
    match timeout(limit, config.connect(NoTls)).await {
        Err(_) => Err(CallError::TimedOut("connect")),
        Ok(Err(e)) => Err(CallError::Connect(e)),
        Ok(Ok((client, connection))) => {
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Conn { client, task })
        }
    }
}

/// The first column of the first row `sql` returns; `NotFound` if it returns no row.
async fn read(conn: &Conn, sql: &str) -> Result<Option<String>, CallError> {
    let messages = conn
        .client
        .simple_query(sql)
        .await
        .map_err(CallError::Query)?;
    let row = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    });
    let row = row.ok_or(CallError::NotFound)?;
    Ok(row.get(0).map(str::to_owned))
}

async fn select_one(conn: &Conn) -> Result<(), CallError> {
    match read(conn, "SELECT 1").await?.as_deref() {
        Some("1") => Ok(()),
        other => Err(CallError::Unexpected(format!("{other:?}"))),
    }
}

/// One call: (re)connect if needed, then `SELECT 1`; any error drops the connection. Not
/// timed here: the breaker's deadline ends it.
async fn call(slot: &mut Option<Conn>, addr: SocketAddr) -> Result<(), CallError> {
    let conn = match slot {
        Some(conn) => conn,
        None => slot.insert(connect(addr, SETUP_TIMEOUT).await?),
    };
    let result = select_one(conn).await;
    if result.is_err() {
        *slot = None;
    }
    result
}

async fn worker(
    breaker: Breaker,
    addr: SocketAddr,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
    ready: Arc<Barrier>,
) {
    let first = connect(addr, SETUP_TIMEOUT).await;
    let mut slot = Some(first.unwrap_or_else(|e| panic!("first connection via the proxy: {e}")));
    ready.wait().await;
    while !stop.load(Ordering::Relaxed) {
        let kind = match breaker.call_async(call(&mut slot, addr)).await {
            Ok(()) => Kind::Ok,
            Err(BreakerError::Inner(_) | BreakerError::TimedOut(_)) => Kind::Failed,
            Err(BreakerError::Rejected(_)) => Kind::Rejected,
        };
        log.push(kind);
        tokio::time::sleep(PACE).await;
    }
}

/// A handler that goes away early, over and over, on its own connection until `until`:
/// a fan-out whose first read finds nothing (so `try_join!` cancels the two slow siblings
/// mid-query), then a slow read whose client disconnects after [`CLIENT_PATIENCE`].
async fn storm_task(breaker: Breaker, addr: SocketAddr, until: Instant) -> usize {
    let connection = || async {
        connect(addr, SETUP_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("storm connection via the proxy: {e}"))
    };
    // The missing row is read on a connection of its own, so that it answers at once while
    // the slow reads queue up on the other.
    let (fast, slow) = (connection().await, connection().await);
    let not_found = |e: &CallError| matches!(e, CallError::NotFound);
    let mut handlers = 0;
    while Instant::now() < until {
        let fan_out = tokio::try_join!(
            breaker.call_async_with(read(&fast, "SELECT 1 WHERE false"), not_found),
            breaker.call_async(read(&slow, SLOW_READ)),
            breaker.call_async(read(&slow, SLOW_READ)),
        );
        assert!(
            matches!(fan_out, Err(BreakerError::Inner(CallError::NotFound))),
            "the fan-out ends on its missing row: {fan_out:?}"
        );
        tokio::select! {
            _ = breaker.call_async(read(&slow, SLOW_READ)) => {}
            () = tokio::time::sleep(CLIENT_PATIENCE) => {} // the client disconnects
        }
        handlers += 2;
    }
    handlers
}

/// Phase 0: the storm of cancellations against the healthy database, then the verdict on
/// what the breaker recorded.
async fn storm_phase(breaker: &Breaker, addr: SocketAddr) {
    let until = Instant::now() + STORM;
    let tasks: Vec<_> = (0..STORM_TASKS)
        .map(|_| tokio::spawn(storm_task(breaker.clone(), addr, until)))
        .collect();
    let mut handlers = 0;
    for task in tasks {
        handlers += timeout(STORM + SETUP_TIMEOUT, task)
            .await
            .expect("storm tasks end")
            .expect("storm task panicked");
    }
    let s = breaker.snapshot();
    println!(
        "[  storm] {handlers} handlers gone early: {} calls cancelled; window: accepts {},          total {}, drop ratio {:.3}",
        s.cancelled, s.history.accepts, s.history.total, s.drop_ratio
    );
    assert!(s.cancelled > 0, "the storm cancelled no call");
    assert_eq!(
        s.history.total,
        s.history.accepts,
        "a cancelled call or a missing row was counted as a failure: {s:?}; recent: {:?}",
        breaker.recent_failures()
    );
    assert_eq!(s.drop_ratio, 0.0);
}

fn report(breaker: &Breaker, phase: &str, whole: Figures, last: Figures) {
    println!("[{phase:>7}] whole phase:  {whole}");
    println!("[{phase:>7}] last second:  {last}");
    let s = breaker.snapshot();
    println!(
        "[{phase:>7}] snapshot: drop_ratio {:.3}, accepts {}, total {}, working {}, failing {}",
        s.drop_ratio,
        s.history.accepts,
        s.history.total,
        s.history.working_buckets,
        s.history.failing_buckets
    );
}

/// Polls the last second of calls every 50 ms until `good` holds (with enough calls to
/// judge) or `limit` has passed since `start`. Returns when, and that second's figures.
async fn first_good_second(
    proxy: &Proxy,
    log: &Log,
    start: Instant,
    limit: Duration,
    good: impl Fn(&Figures) -> bool,
) -> Result<(Duration, Figures), Figures> {
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = Instant::now();
        let elapsed = now - start;
        let last = Figures::of(log, proxy, now.checked_sub(SECOND).unwrap_or(start), now);
        if elapsed >= SECOND && last.calls >= MIN_CALLS_PER_SECOND && good(&last) {
            return Ok((elapsed, last));
        }
        if elapsed >= limit {
            return Err(last);
        }
    }
}

/// Injects `fault`, waits at most `limit` for a second in which the breaker sheds the calls
/// (most rejected, few reaching the proxy), then keeps the fault for one more second, which
/// must shed as well: the verdict is on the fault phase's last second.
async fn fault_phase(
    breaker: &Breaker,
    proxy: &Proxy,
    log: &Log,
    (fault, name, limit): (Fault, &str, Duration),
) {
    let sheds = |f: &Figures| {
        Figures::share(f.rejected, f.calls) > MIN_REJECTED_SHARE
            && Figures::share(f.connects, f.calls) < MAX_CONNECTS_SHARE
    };
    let start = Instant::now();
    proxy.set(fault);
    let first = first_good_second(proxy, log, start, limit, sheds).await;
    if first.is_ok() {
        tokio::time::sleep(SECOND).await;
    }
    let end = Instant::now();
    let whole = Figures::of(log, proxy, start, end);
    let last = Figures::of(log, proxy, end - SECOND, end);
    report(breaker, name, whole, last);
    for f in breaker.recent_failures() {
        println!("[{name:>7}] recent failure: {f}");
    }
    let want = format!(
        "want > {:.0}% rejected and proxy connects < {:.0}% of calls",
        100.0 * MIN_REJECTED_SHARE,
        100.0 * MAX_CONNECTS_SHARE
    );
    match first {
        Ok((after, first)) => println!(
            "[{name:>7}] shedding from the second ending {:.2} s into the fault: {first}",
            after.as_secs_f64()
        ),
        Err(_) => panic!("{name}: the breaker did not shed within {limit:?} ({want}): {last}"),
    }
    assert!(whole.failed > 0, "{name}: no call failed: {whole}");
    assert!(
        last.calls >= MIN_CALLS_PER_SECOND && sheds(&last),
        "{name}: the breaker stopped shedding in the fault's last second ({want}): {last}"
    );
}

/// Passes again and waits, at most [`HEAL_LIMIT`], for a second with mostly successes.
async fn heal_phase(breaker: &Breaker, proxy: &Proxy, log: &Log, name: &str) {
    let start = Instant::now();
    proxy.set(Fault::Pass);
    let healed = first_good_second(proxy, log, start, HEAL_LIMIT, |last| {
        Figures::share(last.ok, last.calls) > MIN_OK_SHARE
    })
    .await;
    let whole = Figures::of(log, proxy, start, Instant::now());
    let last = match healed {
        Ok((_, last)) | Err(last) => last,
    };
    report(breaker, name, whole, last);
    let Ok((after, _)) = healed else {
        panic!(
            "{name}: not healed within two windows ({HEAL_LIMIT:?}): want > {:.0}% ok over a \
             second; last second: {last}",
            100.0 * MIN_OK_SHARE
        );
    };
    println!(
        "[{name:>7}] healed: the second ending {:.2} s after the fault had > {:.0}% ok",
        after.as_secs_f64(),
        100.0 * MIN_OK_SHARE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_sheds_a_failing_postgres_and_recovers() {
    let upstream: SocketAddr = POSTGRES.parse().expect("a socket address");
    if let Err(e) = connect(upstream, SETUP_TIMEOUT).await {
        if std::env::var("KEEL_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("KEEL_REQUIRE_SERVICES=1 but PostgreSQL is not reachable at {POSTGRES}: {e}");
        }
        println!("skipping: PostgreSQL not reachable at {POSTGRES}: {e}");
        return;
    }
    let test_start = Instant::now();
    let proxy = Proxy::start(upstream).await.expect("start the proxy");
    let breaker = Breaker::builder()
        .name("postgres")
        .window(WINDOW)
        .buckets(BUCKETS)
        .timeout(CALL_TIMEOUT)
        .build()
        .expect("a valid breaker");
    let log = Arc::new(Log::default());
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(WORKERS + 1));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(worker(
                breaker.clone(),
                proxy.addr(),
                Arc::clone(&log),
                Arc::clone(&stop),
                Arc::clone(&ready),
            ))
        })
        .collect();
    timeout(SETUP_TIMEOUT + SECOND, ready.wait())
        .await
        .expect("every worker connects through the proxy");
    println!(
        "{WORKERS} workers, one call each per {PACE:?}; \
         breaker window {WINDOW:?} / {BUCKETS} buckets"
    );

    // 0. The storm of cancellations, the workers calling alongside.
    storm_phase(&breaker, proxy.addr()).await;

    // 1. Healthy, right after the storm.
    let start = Instant::now();
    tokio::time::sleep(HEALTHY).await;
    let end = Instant::now();
    let healthy = Figures::of(&log, &proxy, start, end);
    report(
        &breaker,
        "healthy",
        healthy,
        Figures::of(&log, &proxy, end - SECOND, end),
    );
    assert!(
        healthy.calls >= 50,
        "too few calls while healthy: {healthy}"
    );
    assert_eq!(
        (healthy.rejected, healthy.failed, healthy.connects),
        (0, 0, 0),
        "healthy: every call should succeed on its connection: {healthy}"
    );

    // 2-5. Two faults, each followed by the recovery.
    fault_phase(
        &breaker,
        &proxy,
        &log,
        (Fault::Refuse, "refuse", REFUSE_LIMIT),
    )
    .await;
    heal_phase(&breaker, &proxy, &log, "heal").await;
    fault_phase(&breaker, &proxy, &log, (Fault::Stall, "stall", STALL_LIMIT)).await;
    assert!(
        breaker
            .recent_failures()
            .iter()
            .any(|f| f.reason.contains("timed out")),
        "stall: calls should have failed by timeout"
    );
    heal_phase(&breaker, &proxy, &log, "heal").await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        timeout(SETUP_TIMEOUT, w)
            .await
            .expect("workers stop")
            .expect("worker panicked");
    }
    println!(
        "total: {} in {:.1} s",
        Figures::of(&log, &proxy, test_start, Instant::now()),
        test_start.elapsed().as_secs_f64()
    );
}
