//! Redis: keel's Redis-backed token bucket (`allow_key_n_async`) against a raw `EVALSHA`
//! loop of an equivalent token-bucket script, on a private `redis-server` this module starts
//! on a free loopback port and stops afterwards.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::thread;
use std::time::{Duration, Instant};

use ::redis::Script;
use ::redis::aio::MultiplexedConnection;
use keel_limiter::redis::RedisStore;
use keel_limiter::{FailurePolicy, Rate, TokenLimiter};

use super::{ADMIT_BURST, ADMIT_RATE};
use crate::figures::Figures;

/// A `redis-server` of this process's own, on a free loopback port, with persistence off.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

const START_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        let port = match free_port() {
            Ok(port) => port,
            Err(e) => {
                eprintln!("redis rows skipped: no free loopback port ({e})");
                return None;
            }
        };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                eprintln!("redis rows skipped: cannot run redis-server ({e})");
                return None;
            }
        };
        // Dropped (and so killed) on every early return from here.
        let mut server = RedisServer { child, port };
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                eprintln!("redis rows skipped: redis-server exited ({status})");
                return None;
            }
            if server.answers() {
                return Some(server);
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("redis rows skipped: redis-server did not answer on port {port}");
        None
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn answers(&self) -> bool {
        let ping = || -> ::redis::RedisResult<String> {
            let client = ::redis::Client::open(self.url())?;
            let mut c = client.get_connection_with_timeout(Duration::from_millis(200))?;
            ::redis::cmd("PING").query(&mut c)
        };
        ping().is_ok_and(|pong| pong == "PONG")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now (the kernel's pick for port 0).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The raw side's token bucket, equivalent to keel's.
static TOKEN_BUCKET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = burst
if saved[1] and saved[2] then
  local idle = math.max(0, now - tonumber(saved[2]))
  tokens = math.min(burst, tonumber(saved[1]) + idle * rate)
end
if tokens < 1 then
  return {0, math.ceil((1 - tokens) / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'ts', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, 0}
",
    )
});

/// The buckets' TTL on the raw side: twice the time an empty bucket takes to fill, as keel sets it.
fn raw_ttl_ms() -> u64 {
    2 * u64::from(ADMIT_BURST) * 1000 / u64::from(ADMIT_RATE) + 1
}

/// keel's lease mode for each of `batches` on a fresh private server.
pub fn measure_lease(batches: &[u32], time: Duration, figures: &mut Figures) -> bool {
    let Some(server) = RedisServer::start() else {
        return false;
    };
    for &batch in batches {
        let store = RedisStore::open(&server.url()).expect("a valid URL");
        let keel = TokenLimiter::builder(Rate::per_second(ADMIT_RATE), ADMIT_BURST)
            .redis(store, format!("lease{batch}"))
            .lease(batch, Duration::from_secs(1))
            .failure_policy(FailurePolicy::FailClosed)
            .build()
            .expect("a valid limiter");
        // Warm up: the connection and the script cache.
        for _ in 0..u64::from(batch) * 2 {
            keel.allow_key("client");
        }
        let before = keel.snapshot().redis.map_or(0, |r| r.decisions);
        let (mut decisions, mut refused) = (0u64, 0u64);
        let start = Instant::now();
        while start.elapsed() < time {
            for _ in 0..1000 {
                if !keel.allow_key("client") {
                    refused += 1;
                }
            }
            decisions += 1000;
        }
        let per_second = decisions as f64 / start.elapsed().as_secs_f64();
        let round_trips = keel.snapshot().redis.map_or(0, |r| r.decisions) - before;
        let group = format!("limiter redis lease batch {batch}");
        figures.add(&group, "keel", per_second, "decisions/s");
        figures.add(&group, "round trips", round_trips as f64, "");
        figures.check(format_args!("{group}: refused"), refused, decisions);
    }
    true
}

/// How [`measure`] runs.
#[derive(Clone, Copy, Debug)]
pub struct RedisPlan {
    pub rounds: usize,
    pub round: Duration,
    pub warm_up: Duration,
}

impl RedisPlan {
    pub const STANDARD: RedisPlan = RedisPlan {
        rounds: 8,
        round: Duration::from_millis(200),
        warm_up: Duration::from_millis(200),
    };
}

/// keel against the raw loop at each of `tasks` on a fresh private server.
pub fn measure(tasks: &[usize], plan: RedisPlan, figures: &mut Figures) -> bool {
    let Some(server) = RedisServer::start() else {
        return false;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let store = RedisStore::open(&server.url()).expect("a valid URL");
    let keel = TokenLimiter::builder(Rate::per_second(ADMIT_RATE), ADMIT_BURST)
        .redis(store, "keel")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .expect("a valid limiter");
    let client = ::redis::Client::open(server.url()).expect("a valid URL");
    let raw = match runtime.block_on(client.get_multiplexed_async_connection()) {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("redis rows skipped: {e}");
            return false;
        }
    };
    for &n in tasks {
        let (keel, raw, overhead, unexpected) = runtime.block_on(compare(&keel, &raw, n, plan));
        let group = format!("limiter redis {n}t");
        figures.add(&group, "keel", keel, "decisions/s");
        figures.add(&group, "raw EVALSHA loop", raw, "decisions/s");
        let name = "keel overhead (median of paired rounds)";
        figures.add(&group, name, 100.0 * overhead, "%");
        if unexpected > 0 {
            figures
                .warnings
                .push(format!("{group}: {unexpected} decisions not admitted"));
        }
    }
    drop(runtime);
    drop(server);
    true
}

/// The medians of keel's and the raw loop's decisions per second and of the overhead.
async fn compare(
    keel: &TokenLimiter,
    raw: &MultiplexedConnection,
    tasks: usize,
    plan: RedisPlan,
) -> (f64, f64, f64, u64) {
    let mut unexpected = 0;
    unexpected += run_keel(keel, tasks, plan.warm_up).await.1;
    unexpected += run_raw(raw, tasks, plan.warm_up).await.1;
    let mut keel_rates = Vec::new();
    let mut raw_rates = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..plan.rounds {
        let ((k, k_bad), (r, r_bad)) = if round % 2 == 0 {
            let r = run_raw(raw, tasks, plan.round).await;
            (run_keel(keel, tasks, plan.round).await, r)
        } else {
            let k = run_keel(keel, tasks, plan.round).await;
            (k, run_raw(raw, tasks, plan.round).await)
        };
        unexpected += k_bad + r_bad;
        keel_rates.push(k);
        raw_rates.push(r);
        ratios.push(r / k - 1.0);
    }
    (
        median(keel_rates),
        median(raw_rates),
        median(ratios),
        unexpected,
    )
}

/// `tasks` tasks calling keel until `time` has passed.
async fn run_keel(keel: &TokenLimiter, tasks: usize, time: Duration) -> (f64, u64) {
    let start = Instant::now();
    let until = start + time;
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let keel = keel.clone();
            let key = format!("task-{i}");
            tokio::spawn(async move {
                let (mut admitted, mut other) = (0u64, 0u64);
                while Instant::now() < until {
                    match keel.allow_key_n_async(&key, 1).await {
                        Ok(()) => admitted += 1,
                        Err(_) => other += 1,
                    }
                }
                (admitted, other)
            })
        })
        .collect();
    finish(start, handles).await
}

/// `tasks` tasks sending the raw script until `time` has passed.
async fn run_raw(raw: &MultiplexedConnection, tasks: usize, time: Duration) -> (f64, u64) {
    let start = Instant::now();
    let until = start + time;
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let mut connection = raw.clone();
            let key = format!("{{raw:task-{i}}}");
            tokio::spawn(async move {
                let per_us = f64::from(ADMIT_RATE) / 1e6;
                let mut call = TOKEN_BUCKET.key(&key);
                call.arg(per_us).arg(ADMIT_BURST).arg(raw_ttl_ms());
                let (mut admitted, mut other) = (0u64, 0u64);
                while Instant::now() < until {
                    match call.invoke_async::<(i64, i64)>(&mut connection).await {
                        Ok((1, _)) => admitted += 1,
                        _ => other += 1,
                    }
                }
                (admitted, other)
            })
        })
        .collect();
    finish(start, handles).await
}

async fn finish(start: Instant, handles: Vec<tokio::task::JoinHandle<(u64, u64)>>) -> (f64, u64) {
    let (mut admitted, mut other) = (0, 0);
    for h in handles {
        let (a, o) = h.await.expect("a benchmark task panicked");
        admitted += a;
        other += o;
    }
    let decisions = admitted + other;
    (decisions as f64 / start.elapsed().as_secs_f64(), other)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn both_sides_are_admitted_by_a_private_server() {
        let plan = RedisPlan {
            rounds: 2,
            round: Duration::from_millis(50),
            warm_up: Duration::from_millis(50),
        };
        let mut figures = Figures::default();
        if !measure(&[1, 4], plan, &mut figures) {
            eprintln!("no redis-server: skipped");
            return;
        }
        assert!(figures.warnings.is_empty(), "{:?}", figures.warnings);
        for m in figures.values.iter().filter(|m| m.unit == "decisions/s") {
            assert!(m.value > 100.0, "{m:?}");
        }
        assert_eq!(figures.values.len(), 6);
    }
}
