//! Model-based: sequences of take/set/del over 2–3 instances, each invalidation delivered
//! before the next operation (waiting for the receivers' counters), compared with a map
//! of what the cache tiers should hold over a database map.

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use keel_rediscache::RedisCache;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Take through an instance; the loader reads the database (`None`: no row).
    Take(usize, u8),
    /// Write the database only (the cache is not told: it keeps serving what it holds).
    Write(u8, u16),
    /// Remove the row from the database only.
    Remove(u8),
    /// `set` on an instance.
    Set(usize, u8, u16),
    /// `del` on an instance.
    Del(usize, u8),
}

fn op(instances: usize) -> impl Strategy<Value = Op> {
    let i = 0..instances;
    let k = 0u8..4;
    prop_oneof![
        4 => (i.clone(), k.clone()).prop_map(|(i, k)| Op::Take(i, k)),
        2 => (k.clone(), any::<u16>()).prop_map(|(k, v)| Op::Write(k, v)),
        1 => k.clone().prop_map(Op::Remove),
        1 => (i.clone(), k.clone(), any::<u16>()).prop_map(|(i, k, v)| Op::Set(i, k, v)),
        2 => (i, k).prop_map(|(i, k)| Op::Del(i, k)),
    ]
}

async fn run(client: redis::Client, instances: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let name = support::unique("model");
    let mut caches = Vec::new();
    for _ in 0..instances {
        let cache: RedisCache<u16> = RedisCache::builder(&name, support::connection(&client).await)
            .timeout(support::BUSY_MACHINE_TIMEOUT)
            .subscriber(client.clone())
            .build()
            .unwrap();
        prop_assert!(cache.wait_subscribed(Duration::from_secs(10)).await);
        caches.push(cache);
    }
    let mut db: HashMap<u8, u16> = HashMap::new();
    // What the cache holds for a key: a value or "not found" (a placeholder).
    let mut cached: HashMap<u8, Option<u16>> = HashMap::new();
    for op in ops {
        let before: Vec<u64> = caches
            .iter()
            .map(|c| c.snapshot().invalidations_received)
            .collect();
        let mut sender = None;
        match op {
            Op::Take(i, k) => {
                let row = db.get(&k).copied();
                let got = caches[i]
                    .take_optional(&k.to_string(), || async move { Ok::<_, Infallible>(row) })
                    .await
                    .unwrap();
                let want = *cached.entry(k).or_insert(row);
                prop_assert_eq!(got, want, "take {} on {}", k, i);
            }
            Op::Write(k, v) => {
                db.insert(k, v);
            }
            Op::Remove(k) => {
                db.remove(&k);
            }
            Op::Set(i, k, v) => {
                caches[i].set(&k.to_string(), v).await.unwrap();
                cached.insert(k, Some(v));
                sender = Some(i);
            }
            Op::Del(i, k) => {
                caches[i].del(&k.to_string()).await.unwrap();
                cached.remove(&k);
                sender = Some(i);
            }
        }
        if let Some(sender) = sender {
            // Delivered to every other instance before the next operation.
            let delivered = support::eventually(Duration::from_secs(10), || {
                caches
                    .iter()
                    .enumerate()
                    .all(|(j, c)| j == sender || c.snapshot().invalidations_received > before[j])
            })
            .await;
            prop_assert!(delivered, "invalidation not delivered");
        }
    }
    support::cleanup(&client, &name).await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn two_tiers_match_the_model(instances in 2usize..=3, ops in prop::collection::vec(op(3), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let Some(client) = runtime.block_on(support::shared()) else { return Ok(()) };
        let ops = ops
            .into_iter()
            .map(|op| match op {
                Op::Take(i, k) => Op::Take(i % instances, k),
                Op::Set(i, k, v) => Op::Set(i % instances, k, v),
                Op::Del(i, k) => Op::Del(i % instances, k),
                other => other,
            })
            .collect();
        runtime.block_on(run(client, instances, ops))?;
    }
}
