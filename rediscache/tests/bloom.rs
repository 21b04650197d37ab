//! `RedisBloom` on real Redis servers: no false negatives; the measured false positives of
//! 100 000 absent ids against the configured rate; bit-for-bit agreement with keel-
//! collection's in-memory `BloomFilter`; exactly one script call (`EVALSHA`) per operation
//! (counted by `INFO commandstats` on a private redis-server); errors; a Redis Cluster
//! (`.ci/redis-cluster`, a private 3-master cluster).
//!
//! The shared Redis on 127.0.0.1:6379 is never flushed: each test uses a filter name of
//! its own and deletes its key at the end. Without the services a test is skipped, unless
//! `KEEL_REQUIRE_SERVICES=1`: then it fails.

mod support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keel_collection::bloom::BloomFilter;
use keel_rediscache::bloom::{BloomConfigError, RedisBloom};
use keel_rediscache::{Connection, RedisErrorKind};
use redis::aio::ConnectionLike;

/// Deletes a filter's key when the test ends, passed or failed.
struct DeleteOnDrop {
    client: redis::Client,
    key: String,
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if let Ok(mut c) = self
            .client
            .get_connection_with_timeout(Duration::from_secs(2))
        {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&self.key).query(&mut c);
        }
    }
}

/// A filter on the shared Redis with a name of its own, and the guard deleting its key.
async fn shared_filter(expected: u64, p: f64) -> Option<(RedisBloom, DeleteOnDrop, redis::Client)> {
    let client = support::shared().await?;
    let connection = support::connection(&client).await;
    let bloom = RedisBloom::new(connection, &support::unique("bloom"), expected, p).unwrap();
    let guard = DeleteOnDrop {
        client: client.clone(),
        key: bloom.key().to_owned(),
    };
    Some((bloom, guard, client))
}

/// Runs `lookups` contains of distinct ids that were never added (random 64-bit ids at
/// or above `from`) over 8 concurrent tasks; the number answered `true`.
async fn false_positives<C>(bloom: &RedisBloom<C>, from: u64, lookups: u64) -> u64
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    const TASKS: u64 = 8;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let bloom = bloom.clone();
        tasks.push(tokio::spawn(async move {
            let mut positives = 0;
            for i in (t..lookups).step_by(TASKS as usize) {
                // A bijection of i (odd multiplier, xor-shift): distinct ids, spread widely.
                let mut id = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                id ^= id >> 29;
                let id = from + id % (u64::MAX - from);
                if bloom.contains(&id.to_string()).await.expect("contains") {
                    positives += 1;
                }
            }
            positives
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    total
}

/// Adds the ids `0..n` (as strings) over 8 concurrent tasks.
async fn add_ids<C>(bloom: &RedisBloom<C>, n: u64)
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let mut tasks = Vec::new();
    for t in 0..8 {
        let bloom = bloom.clone();
        tasks.push(tokio::spawn(async move {
            for id in (t..n).step_by(8) {
                bloom.add(&id.to_string()).await.expect("add");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_false_negatives_and_the_configured_false_positive_rate() {
    const LOOKUPS: u64 = 100_000;
    for (n, p) in [(10_000, 0.01), (20_000, 0.001)] {
        let Some((bloom, _guard, _)) = shared_filter(n, p).await else {
            return;
        };
        add_ids(&bloom, n).await;
        for id in 0..n {
            assert!(bloom.contains(&id.to_string()).await.unwrap(), "{id} lost");
        }
        let positives = false_positives(&bloom, n, LOOKUPS).await;
        let bound = 1.5 * p * LOOKUPS as f64 + 20.0;
        println!(
            "RedisBloom n = {n}, p = {p} (m = {} bits, k = {}): {positives} false positives \
             in {LOOKUPS} lookups of absent ids (configured {:.0}, bound {bound:.0})",
            bloom.params().bits(),
            bloom.params().hashes(),
            p * LOOKUPS as f64,
        );
        assert!(positives as f64 <= bound, "{positives} > {bound}");
        bloom.clear().await.unwrap();
    }
}

/// The Redis filter sets exactly the bits the in-memory filter sets (the bitmap read back
/// with GET is the in-memory filter's `to_bytes`), and both answer alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agrees_bit_for_bit_with_the_in_memory_filter() {
    let Some((bloom, _guard, client)) = shared_filter(5_000, 0.01).await else {
        return;
    };
    let local = BloomFilter::with_params(bloom.params()).unwrap();
    for i in 0..5_000u64 {
        let key = format!("order:{i}");
        let fresh = bloom.add(&key).await.unwrap();
        assert_eq!(fresh, local.insert(&key), "{key}: was it new?");
    }
    // Other key types hash as in memory too.
    for i in 0..200u64 {
        assert_eq!(bloom.add(&i).await.unwrap(), local.insert(&i));
    }
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut stored: Vec<u8> = redis::cmd("GET")
        .arg(bloom.key())
        .query_async(&mut c)
        .await
        .unwrap();
    let expected = local.to_bytes();
    assert!(stored.len() <= expected.len());
    stored.resize(expected.len(), 0); // Redis stores up to the highest byte set
    assert!(stored == expected, "the bitmaps differ");

    let mut disagreements = 0;
    let mut positives = 0;
    for i in 0..20_000u64 {
        let key = format!("order:{}", i * 7);
        let remote = bloom.contains(&key).await.unwrap();
        if remote != local.contains(&key) {
            disagreements += 1;
        }
        positives += u64::from(remote);
    }
    assert_eq!(disagreements, 0);
    assert!(positives >= 700); // i*7 < 5000 for 715 of them: present
    bloom.clear().await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(bloom.key())
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

/// `INFO commandstats` as command name -> calls.
async fn command_calls(c: &mut redis::aio::MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(c)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// Each add and each contains is one EVALSHA and nothing else (once the scripts are
/// loaded; after a SCRIPT FLUSH the first call is EVALSHA, SCRIPT LOAD, EVALSHA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_script_call_per_operation() {
    let Some(server) = support::RedisServer::start() else {
        return;
    };
    let client = server.client();
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    // A plain multiplexed connection: any clonable async connection will do.
    let bloom = RedisBloom::new(connection, "calls", 1_000, 0.001).unwrap();
    assert_eq!(bloom.params().hashes(), 10);
    assert!(bloom.add("warm").await.unwrap()); // loads the scripts (NOSCRIPT, LOAD, again)
    assert!(bloom.contains("warm").await.unwrap());

    let before = command_calls(&mut admin).await;
    for i in 0..50 {
        bloom.add(&i).await.unwrap();
    }
    for i in 0..50 {
        assert!(bloom.contains(&i).await.unwrap());
    }
    let after = command_calls(&mut admin).await;
    let delta =
        |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    let others: u64 = after
        .keys()
        .filter(|name| !matches!(name.as_str(), "evalsha" | "info" | "setbit" | "getbit"))
        .map(|name| delta(name))
        .sum();
    println!(
        "100 operations: {} EVALSHA ({} SETBIT, {} GETBIT inside), {others} other commands",
        delta("evalsha"),
        delta("setbit"),
        delta("getbit")
    );
    assert_eq!(delta("evalsha"), 100);
    // Inside the scripts: 10 bits set per add, 10 tested per contains of a present key.
    assert_eq!((delta("setbit"), delta("getbit")), (500, 500));
    assert_eq!(others, 0, "{before:?} -> {after:?}");

    // After SCRIPT FLUSH the scripts are loaded again by themselves.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(bloom.contains(&7).await.unwrap());
    assert!(!bloom.add(&7).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed() {
    assert_eq!(
        RedisBloom::new((), "x", 0, 0.01).unwrap_err(),
        BloomConfigError::ZeroItems
    );
    assert!(matches!(
        RedisBloom::new((), "x", 10, f64::NAN),
        Err(BloomConfigError::InvalidRate(_))
    ));
    assert!(matches!(
        RedisBloom::new((), "x", 1 << 40, 0.01),
        Err(BloomConfigError::TooManyBits { .. })
    ));
    let sized = RedisBloom::new((), "users", 1_000, 0.01).unwrap();
    assert_eq!(sized.key(), "{users}:bloom");
    assert_eq!((sized.params().bits(), sized.params().hashes()), (9_586, 7));
    assert!(format!("{sized:?}").contains("{users}:bloom"));

    // A key of another type: the server's error.
    let Some((bloom, _guard, client)) = shared_filter(100, 0.01).await else {
        return;
    };
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("LPUSH")
        .arg(bloom.key())
        .arg("x")
        .query_async(&mut c)
        .await
        .unwrap();
    let error = bloom.contains("a").await.unwrap_err();
    assert_eq!(error.kind(), RedisErrorKind::Server, "{error}");
    assert_eq!(
        bloom.add("a").await.unwrap_err().kind(),
        RedisErrorKind::Server
    );
    bloom.clear().await.unwrap();
    assert!(bloom.add("a").await.unwrap());

    // A server that is gone: a connection error, or the timeout.
    let Some(mut server) = support::RedisServer::start() else {
        return;
    };
    let connection = Connection::single(server.client()).await.unwrap();
    let bloom = RedisBloom::new(connection, "gone", 100, 0.01)
        .unwrap()
        .timeout(Duration::from_secs(5));
    assert!(bloom.add("a").await.unwrap());
    server.stop();
    let error = bloom.contains("a").await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            RedisErrorKind::Connection | RedisErrorKind::Timeout
        ),
        "{error}"
    );
}

/// `.ci/redis-cluster`, found from this crate's directory.
fn cluster_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/redis-cluster")
}

/// A private 3-master cluster, stopped (and its directory removed) on drop.
struct Cluster {
    dir: PathBuf,
    urls: Vec<String>,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let script = cluster_script();
        if !script.exists() {
            return support::missing(".ci/redis-cluster does not exist");
        }
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            return support::missing("redis-server is not available");
        }
        let dir = std::env::temp_dir().join(support::unique("bloom-cluster"));
        for _ in 0..5 {
            let base = free_base_port();
            let out = Command::new(&script)
                .arg("start")
                .arg(&dir)
                .arg(base.to_string())
                .output()
                .expect("run .ci/redis-cluster");
            if out.status.success() {
                let urls = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.starts_with("redis://"))
                    .map(str::to_owned)
                    .collect();
                return Some(Cluster { dir, urls });
            }
            eprintln!(
                "redis-cluster start on {base} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = Command::new(&script).arg("stop").arg(&dir).status();
        }
        panic!("could not start a private redis cluster");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(cluster_script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// A base port whose 3 ports and 3 bus ports (+10000) are free now.
fn free_base_port() -> u16 {
    let free = |port: u16| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
    loop {
        let base = support::free_port();
        if (20_000..=45_000).contains(&base)
            && (0..3).all(|i| free(base + i) && free(base + i + 10_000))
        {
            return base;
        }
    }
}

/// On a Redis Cluster: filters whose keys live on different nodes, through a
/// `ClusterConnection` and through the crate's `Connection`, agree with the in-memory
/// filter and have no false negatives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_a_redis_cluster() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let client = redis::cluster::ClusterClient::new(cluster.urls.clone()).unwrap();
    let raw = client.get_async_connection().await.unwrap();
    let wrapped = Connection::cluster(&client).await.unwrap();
    let mut owners = std::collections::HashSet::new();
    for name in ["a", "b", "c", "d", "e", "f"] {
        let bloom = RedisBloom::new(raw.clone(), name, 2_000, 0.01).unwrap();
        let other = RedisBloom::new(wrapped.clone(), name, 2_000, 0.01).unwrap();
        let local = BloomFilter::with_params(bloom.params()).unwrap();
        for i in 0..2_000u64 {
            let key = format!("{name}:{i}");
            assert_eq!(bloom.add(&key).await.unwrap(), local.insert(&key));
        }
        owners.insert(key_owner(&cluster, bloom.key()));
        for i in 0..2_000u64 {
            assert!(other.contains(&format!("{name}:{i}")).await.unwrap());
        }
        for i in 2_000..6_000u64 {
            let key = format!("{name}:{i}");
            assert_eq!(bloom.contains(&key).await.unwrap(), local.contains(&key));
        }
        let positives = false_positives(&bloom, 1 << 40, 10_000).await;
        println!("cluster filter {name}: {positives} false positives in 10000");
        assert!(positives <= 170, "{positives}");
        other.clear().await.unwrap();
    }
    assert!(owners.len() >= 2, "the filters' keys all live on one node");
}

/// The port of the node holding `key` (the one answering EXISTS with 1; the others
/// answer MOVED).
fn key_owner(cluster: &Cluster, key: &str) -> String {
    cluster
        .urls
        .iter()
        .find(|url| {
            let mut c = redis::Client::open(url.as_str())
                .unwrap()
                .get_connection()
                .unwrap();
            redis::cmd("EXISTS").arg(key).query::<i64>(&mut c) == Ok(1)
        })
        .cloned()
        .expect("a node holds the key")
}
