//! The `keel-rediscache` suite: keel's two-tier `RedisCache<u64>` against multi-tier-cache and
//! the floors under each tier, on the shared Redis ([`rediscache::url`]; skipped without it).

use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, Instant};

use criterion::Criterion;
use keel_collection::cache::Cache;
use keel_rediscache::{RedisCache, UnixClock};
use keel_timex::{Clock, CoarseClock};
use multi_tier_cache::{Bytes, CacheManager};
use redis::aio::ConnectionManager;
use std::sync::Arc;
use tokio::runtime::Runtime;

use crate::figures::Figures;
use crate::rediscache;
use crate::tally::TalliedGroup;

pub const KEYS: usize = 10_000;

/// Every group of this suite (for the bench target), then the tallies' warnings.
pub fn all(c: &mut Criterion) {
    run(c).print();
}

/// A lookup of the `i`-th key (whose value is `i`), as one benchmark makes it.
trait Lookup {
    const NAME: &'static str;

    /// Whether the lookup found the expected value.
    fn lookup(&self, i: usize) -> impl Future<Output = bool>;
}

fn keel_key(i: usize) -> String {
    format!("k{i}")
}

/// keel-collection's cache, the local tier's floor.
struct LocalGet<C: Clock> {
    cache: Cache<String, u64, C>,
    keys: Arc<Vec<String>>,
}

impl<C: Clock> LocalGet<C> {
    fn new(clock: C, keys: &Arc<Vec<String>>) -> Self {
        let cache = Cache::builder(Duration::from_secs(3_600))
            .capacity(2 * KEYS)
            .clock(clock)
            .build()
            .expect("valid settings");
        for (i, key) in keys.iter().enumerate() {
            cache.set(key.clone(), i as u64);
        }
        LocalGet {
            cache,
            keys: Arc::clone(keys),
        }
    }
}

impl Lookup for LocalGet<CoarseClock> {
    const NAME: &'static str = "keel-collection Cache get (CoarseClock)";
    async fn lookup(&self, i: usize) -> bool {
        self.cache.get(&self.keys[i]) == Some(i as u64)
    }
}

impl Lookup for LocalGet<UnixClock> {
    const NAME: &'static str = "keel-collection Cache get (UnixClock)";
    async fn lookup(&self, i: usize) -> bool {
        self.cache.get(&self.keys[i]) == Some(i as u64)
    }
}

/// keel-rediscache's `take`; the loader answers `u64::MAX`, so a call of it is counted.
struct KeelTake {
    cache: RedisCache<u64>,
    keys: Arc<Vec<String>>,
}

impl Lookup for KeelTake {
    const NAME: &'static str = "keel-rediscache RedisCache take";
    async fn lookup(&self, i: usize) -> bool {
        let got = self
            .cache
            .take(&self.keys[i], || async { Ok::<_, Infallible>(u64::MAX) })
            .await;
        matches!(got, Ok(v) if v == i as u64)
    }
}

/// multi-tier-cache's `get_typed::<u64>`.
struct PeerTyped {
    manager: Arc<CacheManager>,
    keys: Arc<Vec<String>>,
}

impl Lookup for PeerTyped {
    const NAME: &'static str = "multi-tier-cache get_typed";
    async fn lookup(&self, i: usize) -> bool {
        let got = self.manager.get_typed::<u64>(&self.keys[i]).await;
        matches!(got, Ok(Some(v)) if v == i as u64)
    }
}

/// multi-tier-cache's `get` (the stored JSON bytes, not decoded).
struct PeerBytes(PeerTyped);

impl Lookup for PeerBytes {
    const NAME: &'static str = "multi-tier-cache get (Bytes)";
    async fn lookup(&self, i: usize) -> bool {
        let got = self.0.manager.get(&self.0.keys[i]).await;
        matches!(got, Ok(Some(b)) if !b.is_empty())
    }
}

/// A raw `GET` of keel's entry keys on a `ConnectionManager` (cloned per call).
struct RawGet {
    conn: ConnectionManager,
    keys: Arc<Vec<String>>,
}

impl Lookup for RawGet {
    const NAME: &'static str = "redis GET (ConnectionManager)";
    async fn lookup(&self, i: usize) -> bool {
        let mut conn = self.conn.clone();
        let got: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
            .arg(&self.keys[i])
            .query_async(&mut conn)
            .await;
        matches!(got, Ok(Some(b)) if !b.is_empty())
    }
}

/// `iters` lookups per sample walking the keys in order, continuing where the last sample ended.
fn bench<L: Lookup>(g: &mut TalliedGroup<'_, '_>, runtime: &Runtime, subject: &L) {
    let mut next = 0usize;
    g.bench_counted(L::NAME, |iters| {
        runtime.block_on(async {
            let mut i = next;
            let mut bad = 0;
            let start = Instant::now();
            for _ in 0..iters {
                if !subject.lookup(i).await {
                    bad += 1;
                }
                i += 1;
                if i == KEYS {
                    i = 0;
                }
            }
            let elapsed = start.elapsed();
            next = i;
            (elapsed, bad)
        })
    });
}

/// The caches of one run, filled.
struct Setup {
    coarse: LocalGet<CoarseClock>,
    unix: LocalGet<UnixClock>,
    keel_l1: KeelTake,
    keel_l2: KeelTake,
    peer_l1: PeerTyped,
    peer_l2: PeerTyped,
    raw: RawGet,
}

async fn setup(client: &redis::Client, url: &str, name: &str) -> Result<Setup, String> {
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(keel_key).collect());
    let peer_keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("{name}:k{i}")).collect());

    let keel_l1 = rediscache::keel(client, name, 2 * KEYS).await?;
    // Fills Redis and this instance's local tier.
    for (i, key) in keys.iter().enumerate() {
        keel_l1
            .take(key, || async move { Ok::<_, Infallible>(i as u64) })
            .await
            .map_err(|e| format!("keel fill: {e}"))?;
    }
    let keel_l2 = rediscache::keel(client, name, 1).await?;
    let entry_keys: Arc<Vec<String>> =
        Arc::new(keys.iter().map(|k| keel_l1.redis_key(k)).collect());

    let peer_l1 = rediscache::multi_tier(url, 2 * KEYS as u64).await?;
    for (i, key) in peer_keys.iter().enumerate() {
        let json = serde_json::to_vec(&(i as u64)).map_err(|e| e.to_string())?;
        peer_l1
            .set_with_strategy(key, Bytes::from(json), rediscache::PEER_STRATEGY)
            .await
            .map_err(|e| format!("multi-tier-cache fill: {e}"))?;
    }
    let peer_l2 = rediscache::multi_tier(url, 1).await?;

    let conn = ConnectionManager::new(client.clone())
        .await
        .map_err(|e| format!("raw ConnectionManager: {e}"))?;
    Ok(Setup {
        coarse: LocalGet::new(CoarseClock::new(), &keys),
        unix: LocalGet::new(UnixClock::new(), &keys),
        keel_l1: KeelTake {
            cache: keel_l1,
            keys: Arc::clone(&keys),
        },
        keel_l2: KeelTake {
            cache: keel_l2,
            keys,
        },
        peer_l1: PeerTyped {
            manager: peer_l1,
            keys: Arc::clone(&peer_keys),
        },
        peer_l2: PeerTyped {
            manager: peer_l2,
            keys: peer_keys,
        },
        raw: RawGet {
            conn,
            keys: entry_keys,
        },
    })
}

/// Every group of this suite, the caches' own counts and the cleanup printed.
pub fn run(c: &mut Criterion) -> Figures {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let url = rediscache::url();
    let client = match runtime.block_on(rediscache::reachable(&url)) {
        Ok(client) => client,
        Err(why) => {
            println!("rediscache suite skipped: Redis not reachable ({why})");
            return Figures::default();
        }
    };
    let name = rediscache::unique("rediscache");
    let setup = match runtime.block_on(setup(&client, &url, &name)) {
        Ok(setup) => setup,
        Err(why) => {
            let _ = runtime.block_on(rediscache::cleanup(&client, &rediscache::prefixes(&name)));
            println!("rediscache suite skipped: {why}");
            return Figures::default();
        }
    };
    let mut calls = Vec::new();
    let keel_before = (
        setup.keel_l1.cache.snapshot(),
        setup.keel_l2.cache.snapshot(),
    );
    let peer_before = (
        setup.peer_l1.manager.get_stats(),
        setup.peer_l2.manager.get_stats(),
    );

    let rt = &runtime;
    let mut g = TalliedGroup::new(c, "rediscache l1-hit".to_owned(), 1, &mut calls);
    bench(&mut g, rt, &setup.coarse);
    bench(&mut g, rt, &setup.unix);
    bench(&mut g, rt, &setup.keel_l1);
    bench(&mut g, rt, &setup.peer_l1);
    let peer_l1_bytes = PeerBytes(setup.peer_l1);
    bench(&mut g, rt, &peer_l1_bytes);
    g.finish();

    let mut g = TalliedGroup::new(c, "rediscache l2-hit".to_owned(), 1, &mut calls);
    bench(&mut g, rt, &setup.raw);
    bench(&mut g, rt, &setup.keel_l2);
    bench(&mut g, rt, &setup.peer_l2);
    let peer_l2_bytes = PeerBytes(setup.peer_l2);
    bench(&mut g, rt, &peer_l2_bytes);
    g.finish();

    // Lookups answered by the wrong tier, from the caches' own counts.
    let (k1, k2) = (
        setup.keel_l1.cache.snapshot(),
        setup.keel_l2.cache.snapshot(),
    );
    println!(
        "rediscache: keel l1-hit instance: {} local hits, {} local misses, {} Redis hits, {} loads \
         during the groups (expected: misses, Redis hits and loads 0)",
        k1.l1_hits - keel_before.0.l1_hits,
        k1.misses - keel_before.0.misses,
        k1.l2_hits - keel_before.0.l2_hits,
        k1.loads - keel_before.0.loads,
    );
    println!(
        "rediscache: keel l2-hit instance (local capacity 1): {} local hits, {} Redis hits, {} loads \
         (expected: local hits and loads 0)",
        k2.l1_hits - keel_before.1.l1_hits,
        k2.l2_hits - keel_before.1.l2_hits,
        k2.loads - keel_before.1.loads,
    );
    let (p1, p2) = (
        peer_l1_bytes.0.manager.get_stats(),
        peer_l2_bytes.0.manager.get_stats(),
    );
    println!(
        "rediscache: multi-tier-cache l1-hit manager: {} L1 hits, {} L2 hits, {} misses (expected: L2 \
         hits and misses 0)",
        p1.l1_hits - peer_before.0.l1_hits,
        p1.l2_hits - peer_before.0.l2_hits,
        p1.misses - peer_before.0.misses,
    );
    println!(
        "rediscache: multi-tier-cache l2-hit manager (moka L1 of capacity 1): {} L1 hits, {} L2 hits, \
         {} misses, {} promotions to L1 (expected: L1 hits and misses 0)",
        p2.l1_hits - peer_before.1.l1_hits,
        p2.l2_hits - peer_before.1.l2_hits,
        p2.misses - peer_before.1.misses,
        p2.promotions - peer_before.1.promotions,
    );
    drop(setup.keel_l1);
    drop(setup.keel_l2);
    match runtime.block_on(rediscache::cleanup(&client, &rediscache::prefixes(&name))) {
        Ok(n) => println!("rediscache: deleted the run's {n} keys under {name}"),
        Err(e) => println!("rediscache: cleanup of {name} failed: {e}"),
    }
    let mut f = Figures::default();
    f.check_tallies(&calls, "lookups unexpected");
    f
}
