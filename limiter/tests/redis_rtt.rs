//! The cost of one Redis decision on loopback (a private redis-server): a quick loop, not
//! a benchmark suite. Ignored by default; run with
//! `cargo test -p keel-limiter --features redis --release --test redis_rtt -- --ignored --nocapture`.
#![cfg(feature = "redis")]

mod support;

use std::time::{Duration, Instant};

use keel_limiter::{PeriodLimiter, Rate, TokenLimiter};

const CALLS: u32 = 20_000;

fn report(what: &str, calls: u32, elapsed: Duration) {
    let per = elapsed / calls;
    println!(
        "{what:<44} {calls:>7} decisions in {elapsed:>10.1?}: {per:>8.1?} per decision, {:>8.0}/s",
        f64::from(calls) / elapsed.as_secs_f64()
    );
}

#[test]
#[ignore = "timing loop: run with --ignored --nocapture (release)"]
fn round_trip_per_decision() {
    let server = redis_or_skip!();
    let token = TokenLimiter::builder(Rate::per_second(1_000_000), 1_000_000)
        .redis(support::store(&server.url()), "rtt")
        .build()
        .unwrap();
    let period = PeriodLimiter::builder(1_000_000, Duration::from_secs(3600))
        .redis(support::store(&server.url()), "rtt-p")
        .build()
        .unwrap();
    // Warm up: connections opened, scripts loaded.
    for _ in 0..1000 {
        assert!(token.allow_key("k"));
        assert!(period.take("k").unwrap().is_allowed());
    }

    let start = Instant::now();
    for _ in 0..CALLS {
        assert!(token.allow_key("k"));
    }
    report("token, sync, 1 thread", CALLS, start.elapsed());

    let start = Instant::now();
    for _ in 0..CALLS {
        assert!(period.take("k").unwrap().is_allowed());
    }
    report("period, sync, 1 thread", CALLS, start.elapsed());

    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..8 {
            let token = &token;
            s.spawn(move || {
                let key = format!("k{t}");
                for _ in 0..CALLS / 8 {
                    assert!(token.allow_key(&key));
                }
            });
        }
    });
    report("token, sync, 8 threads (pool)", CALLS, start.elapsed());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..1000 {
            assert!(token.allow_key_n_async("k", 1).await.is_ok());
        }
        let start = Instant::now();
        for _ in 0..CALLS {
            assert!(token.allow_key_n_async("k", 1).await.is_ok());
        }
        report("token, async, 1 task", CALLS, start.elapsed());

        let start = Instant::now();
        for _ in 0..CALLS {
            assert!(period.take_async("k").await.unwrap().is_allowed());
        }
        report("period, async, 1 task", CALLS, start.elapsed());

        for tasks in [64u32, 256] {
            let start = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|t| {
                    let token = token.clone();
                    tokio::spawn(async move {
                        let key = format!("k{t}");
                        for _ in 0..CALLS / tasks {
                            assert!(token.allow_key_n_async(&key, 1).await.is_ok());
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
            let done = CALLS / tasks * tasks;
            report(
                &format!("token, async, {tasks} tasks (multiplexed)"),
                done,
                start.elapsed(),
            );
        }
    });
    let s = token.snapshot().redis.unwrap();
    assert_eq!(s.errors, 0, "{s:?}");
}
