//! The prober's life: one thread per failing limiter however many calls fail, gone once
//! the server answers or the limiter is dropped. One test in its own binary, because it
//! counts this process's threads (Linux: /proc/self/task).
#![cfg(all(feature = "redis", target_os = "linux"))]

mod support;

use std::time::Duration;

use keel_limiter::redis::RedisStore;
use keel_limiter::{PeriodLimiter, Rate, TokenLimiter};
use support::eventually;

/// How long a prober may take to start (and name itself), to end, or to switch back:
/// polled, with a deadline far beyond the probe interval (100 ms) for a loaded machine.
const WITHIN: Duration = Duration::from_secs(30);

/// Threads named `keel-redis-probe` (the kernel keeps 15 bytes of a name).
fn probers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "keel-redis-prob")
        .count()
}

/// A new thread names itself once it runs: wait for `n`, then check it stays `n` for two
/// probe intervals (a second prober would show up by then).
fn assert_probers(n: usize) {
    assert!(eventually(WITHIN, || probers() == n), "{}", probers());
    let end = std::time::Instant::now() + Duration::from_millis(200);
    while std::time::Instant::now() < end {
        assert_eq!(probers(), n);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn one_prober_per_failing_limiter_and_none_after() {
    let mut server = redis_or_skip!();
    assert_eq!(probers(), 0);

    // A limiter whose server is not there: the first call starts one prober; however
    // many calls follow, from however many threads, there is still one.
    let dead = format!("redis://127.0.0.1:{}/", support::free_port());
    let l = TokenLimiter::builder(Rate::per_second(5), 10)
        .redis(RedisStore::open(&dead).unwrap(), "dead")
        .build()
        .unwrap();
    assert!(l.allow());
    assert_probers(1);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                for _ in 0..1000 {
                    let _ = l.allow();
                }
            });
        }
    });
    assert_probers(1);
    assert_eq!(l.snapshot().redis.unwrap().switches_to_fallback, 1);

    // Dropping the limiter ends its prober (it holds only a weak reference).
    drop(l);
    assert!(eventually(WITHIN, || probers() == 0));

    // A limiter on a live server that goes down and comes back: its prober ends once
    // the server answers.
    let p = PeriodLimiter::builder(5, Duration::from_secs(60))
        .redis(support::store(&server.url()), "live")
        .build()
        .unwrap();
    assert!(p.take("k").unwrap().is_allowed());
    assert_eq!(probers(), 0);
    server.stop();
    assert!(p.take("k").unwrap().is_allowed());
    assert_probers(1);
    server.restart();
    assert!(eventually(WITHIN, || {
        p.snapshot().redis.unwrap().healthy
    }));
    assert!(eventually(WITHIN, || probers() == 0));
    // Failing again starts a new prober (one).
    server.stop();
    assert!(p.take("k").unwrap().is_allowed());
    assert!(p.take("k").unwrap().is_allowed());
    assert_probers(1);
    let s = p.snapshot().redis.unwrap();
    assert_eq!((s.switches_to_fallback, s.switches_back), (2, 1));
    drop(p);
    assert!(eventually(WITHIN, || probers() == 0));
}
