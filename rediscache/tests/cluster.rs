//! A private 3-master Redis Cluster (`.ci/redis-cluster`): the scripts (lease, fenced
//! write) run on one slot thanks to the `{name:key}` hash tag, one load across instances,
//! and `del` reaches the other instance (PUBLISH is broadcast to every node).

mod support;

use std::convert::Infallible;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel_rediscache::{Connection, RedisCache};

struct Cluster {
    dir: PathBuf,
    urls: Vec<String>,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/redis-cluster");
        if !script.exists() {
            return support::missing(".ci/redis-cluster is not there");
        }
        let dir = std::env::temp_dir().join(support::unique("cluster"));
        for _ in 0..10 {
            let base = free_base()?;
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
                "cluster start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = Command::new(&script).arg("stop").arg(&dir).status();
        }
        support::missing("could not start a Redis Cluster")
    }
}

/// A base port whose 3 ports and their bus ports (+10000) are free now.
fn free_base() -> Option<u16> {
    for _ in 0..50 {
        let base = support::free_port();
        if !(1024..=55_533).contains(&base) {
            continue;
        }
        let free = (0..3).all(|i| {
            [base + i, base + i + 10_000]
                .iter()
                .all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, *p)).is_ok())
        });
        if free {
            return Some(base);
        }
    }
    None
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/redis-cluster");
        let _ = Command::new(script).arg("stop").arg(&self.dir).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_load_and_invalidation_on_a_cluster() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let nodes = redis::cluster::ClusterClient::new(cluster.urls.clone()).unwrap();
    let mut caches = Vec::new();
    for i in 0..2 {
        let subscriber = redis::Client::open(cluster.urls[i].as_str()).unwrap();
        let cache: RedisCache<String> =
            RedisCache::builder("clustered", Connection::cluster(&nodes).await.unwrap())
                .timeout(support::BUSY_MACHINE_TIMEOUT)
                .subscriber(subscriber)
                .build()
                .unwrap();
        assert!(cache.wait_subscribed(Duration::from_secs(10)).await);
        caches.push(cache);
    }
    let loads = Arc::new(AtomicUsize::new(0));
    // Keys over many slots: each key's scripts stay on its own slot.
    for k in 0..20 {
        let key = format!("user{k}");
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (cache, loads, key) = (caches[i % 2].clone(), Arc::clone(&loads), key.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .take(&key, || {
                        let value = format!("v-{key}");
                        async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(value)
                        }
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), format!("v-{key}"));
        }
    }
    assert_eq!(
        loads.load(Ordering::SeqCst),
        20,
        "one load per key across both instances"
    );
    assert_eq!(
        caches
            .iter()
            .map(|c| c.snapshot().redis_errors)
            .sum::<u64>(),
        0
    );
    // del on one instance reaches the other, whose subscription is on another node.
    for k in 0..20 {
        let key = format!("user{k}");
        caches[0].del(&key).await.unwrap();
        let gone = support::eventually(Duration::from_secs(10), || {
            caches[1].local_entry(&key).is_none()
        })
        .await;
        assert!(gone, "{key} still served by the other instance");
    }
    println!(
        "cluster: 20 keys x 40 takes over 2 instances -> 20 loads; 20 deletes reached the other instance"
    );
}
