//! The token limiter on a private redis-server: go-zero's scenarios, shared buckets, the
//! server's clock, NOSCRIPT and keys of the wrong type.
#![cfg(feature = "redis")]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keel_limiter::redis::RedisErrorKind;
use keel_limiter::{Denied, FailurePolicy, Rate, TokenLimiter};
use keel_timex::ManualClock;

fn limiter(server: &support::RedisServer, rate: Rate, burst: u32, prefix: &str) -> TokenLimiter {
    let store = support::store(&server.url());
    TokenLimiter::builder(rate, burst)
        .redis(store, prefix)
        .build()
        .unwrap()
}

fn stats(l: &TokenLimiter) -> keel_limiter::redis::RedisStats {
    l.snapshot().redis.expect("a redis limiter has redis stats")
}

/// go-zero `TestTokenLimit_Take`: rate 5, burst 10, 100 calls 10 ms apart → at least
/// burst + rate, and no more than the bucket can have refilled. The 100 calls span about
/// 1 s, the time the rate's 5 tokens take: the last one waits, if need be, until 1.1 s
/// after the first returned, so that they have come back on the server's clock however
/// fast the machine.
#[test]
fn take_paced_calls() {
    let server = redis_or_skip!();
    let l = limiter(&server, Rate::per_second(5), 10, "take");
    let start = Instant::now();
    let mut first_returned = start;
    let mut allowed = 0u32;
    for i in 0..100 {
        if i == 99 {
            let since = first_returned.elapsed();
            std::thread::sleep(Duration::from_millis(1100).saturating_sub(since));
        }
        if l.allow() {
            allowed += 1;
        }
        if i == 0 {
            first_returned = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert!(allowed >= 15, "allowed {allowed} in {elapsed:.3} s");
    let most = 10 + (5.0 * elapsed).floor() as u32 + 1;
    assert!(
        allowed <= most,
        "allowed {allowed} > {most} in {elapsed:.3} s"
    );
    let s = stats(&l);
    assert_eq!((s.decisions, s.errors, s.healthy), (100, 0, true));
    assert_eq!(l.snapshot().policy_decisions, 0);
}

/// go-zero `TestTokenLimit_TakeBurst`: 100 immediate calls → the burst (go-zero asserts
/// ≥ 10; here exactly 10 unless the calls took long enough to refill a token).
#[test]
fn take_burst() {
    let server = redis_or_skip!();
    let l = limiter(&server, Rate::per_second(5), 10, "burst");
    let start = Instant::now();
    let allowed = (0..100).filter(|_| l.allow()).count() as u32;
    let elapsed = start.elapsed().as_secs_f64();
    let most = 10 + (5.0 * elapsed).floor() as u32;
    assert!(
        (10..=most).contains(&allowed),
        "allowed {allowed} in {elapsed:.3} s"
    );
    if elapsed < 0.2 {
        assert_eq!(allowed, 10);
    }
}

#[test]
fn refusals_say_when_to_retry_and_keys_are_separate() {
    let server = redis_or_skip!();
    // One token a minute: nothing comes back while these few calls run, however busy the
    // machine, so every refusal below is certain.
    let l = limiter(&server, Rate::per_minute(1), 2, "retry");
    let token = Duration::from_secs(60);
    let emptied = Instant::now();
    assert_eq!(l.allow_key_n("a", 2), Ok(()));
    let Err(Denied::Limited { retry_after }) = l.allow_key_n("a", 1) else {
        panic!("an empty bucket refuses");
    };
    // One token takes a minute, less what has refilled since the bucket was emptied.
    let since = emptied.elapsed();
    assert!(retry_after <= token, "{retry_after:?}");
    assert!(
        retry_after + since + Duration::from_millis(2) >= token,
        "{retry_after:?} after {since:?}"
    );
    let Err(Denied::Limited { retry_after: two }) = l.allow_key_n("a", 2) else {
        panic!("an empty bucket refuses");
    };
    assert!(two > retry_after && two <= 2 * token, "{two:?}");
    // Another key has its own bucket; the unkeyed bucket too.
    assert_eq!(l.allow_key_n("b", 2), Ok(()));
    assert_eq!(l.allow_n(2), Ok(()));
    // More than the burst never fits (decided before Redis).
    assert_eq!(
        l.allow_key_n("c", 3),
        Err(Denied::NeverFits { n: 3, burst: 2 })
    );

    // Waiting the time a refusal names is enough (10 tokens a second). Taken until one is
    // refused: on a busy machine a token may come back between two calls.
    let fast = limiter(&server, Rate::per_second(10), 2, "retry-fast");
    assert_eq!(fast.allow_key_n("a", 2), Ok(()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let retry_after = loop {
        match fast.allow_key_n("a", 1) {
            Ok(()) => assert!(Instant::now() < deadline, "nothing refused within 30 s"),
            Err(Denied::Limited { retry_after }) => break retry_after,
            Err(other) => panic!("{other:?}"),
        }
    };
    std::thread::sleep(retry_after);
    assert_eq!(fast.allow_key_n("a", 1), Ok(()));
}

/// `key`'s PTTL, for a TTL of `full_ms` set by a call made after `start`: at most that, and
/// no less than what is left of it now; or the key is gone (-2) if a busy machine let it all
/// pass before the PTTL (never -1: a key without a TTL would still be there).
fn assert_ttl(c: &mut redis::Connection, key: &str, full_ms: i64, start: Instant) {
    let ttl: i64 = redis::cmd("PTTL").arg(key).query(c).unwrap();
    let waited = start.elapsed().as_millis() as i64 + 1;
    if ttl == -2 {
        assert!(
            waited >= full_ms,
            "{key} gone {waited} ms into its {full_ms} ms"
        );
    } else {
        assert!(
            (1..=full_ms).contains(&ttl) && ttl + waited >= full_ms,
            "{key}: {ttl} ms left {waited} ms into its {full_ms} ms"
        );
    }
}

#[test]
fn the_bucket_state_is_one_hash_with_a_ttl() {
    let server = redis_or_skip!();
    // A token a minute: the key lives 20 minutes, so it is still there below.
    let l = limiter(&server, Rate::per_minute(1), 10, "layout");
    let start = Instant::now();
    assert!(l.allow_key("k"));
    let mut c = server.connection();
    let kind: String = redis::cmd("TYPE").arg("{layout:k}").query(&mut c).unwrap();
    assert_eq!(kind, "hash");
    let (tokens, ts): (f64, u64) = redis::cmd("HMGET")
        .arg("{layout:k}")
        .arg("tokens")
        .arg("ts")
        .query(&mut c)
        .unwrap();
    assert!((8.99..=9.0).contains(&tokens), "{tokens}");
    // The timestamp is the server's clock in µs.
    let server_ms = server.time_ms();
    assert!(ts / 1000 <= server_ms && server_ms - ts / 1000 < 60_000);
    // TTL: twice the fill time (10 minutes).
    assert_ttl(&mut c, "{layout:k}", 1_200_000, start);
    // go-zero's zero TTL case (burst × 2 < rate) gets a TTL (20 ms) and works.
    let fast = limiter(&server, Rate::per_second(100), 1, "fast");
    let start = Instant::now();
    assert!(fast.allow_key("k"));
    assert_ttl(&mut c, "{fast:k}", 20, start);
    assert_eq!(stats(&fast).errors, 0);
}

/// Two instances on separate stores (separate connections) share one bucket exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_bucket_exactly() {
    let server = redis_or_skip!();
    // One token an hour: nothing refills during the test.
    let a = limiter(&server, Rate::per_minute(1), 50, "shared");
    let b = limiter(&server, Rate::per_minute(1), 50, "shared");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            l.allow_key_n_async("tenant", 1).await
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => allowed += 1,
            Err(Denied::Limited { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(allowed, 50);
    let (sa, sb) = (stats(&a), stats(&b));
    assert_eq!(sa.decisions + sb.decisions, 200);
    assert_eq!(sa.errors + sb.errors, 0);
}

#[test]
fn sync_threads_on_two_stores_share_one_bucket_exactly() {
    let server = redis_or_skip!();
    let a = limiter(&server, Rate::per_minute(1), 40, "threads");
    let b = limiter(&server, Rate::per_minute(1), 40, "threads");
    let allowed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let l = if i % 2 == 0 { &a } else { &b };
                s.spawn(move || (0..25).filter(|_| l.allow_key("t")).count())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(allowed, 40);
}

/// Sync and async calls reach the same bucket.
#[tokio::test]
async fn sync_and_async_share_the_bucket() {
    let server = redis_or_skip!();
    let l = limiter(&server, Rate::per_minute(1), 3, "mixed");
    assert_eq!(l.allow_key_n_async("k", 2).await, Ok(()));
    let l2 = l.clone();
    let sync = tokio::task::spawn_blocking(move || l2.allow_key_n("k", 1))
        .await
        .unwrap();
    assert_eq!(sync, Ok(()));
    assert!(matches!(
        l.allow_key_n_async("k", 1).await,
        Err(Denied::Limited { .. })
    ));
    assert!(matches!(l.allow_n_async(3).await, Ok(())));
}

/// The scripts read the server's clock: two limiters whose clocks are an hour apart
/// still share one bucket exactly (with the client's time, the later one would see an
/// hour of refill).
#[test]
fn client_clocks_do_not_matter() {
    let server = redis_or_skip!();
    let build = |clock: ManualClock| {
        TokenLimiter::builder(Rate::per_minute(1), 5)
            .redis(support::store(&server.url()), "clock")
            .build_with_clock(clock)
            .unwrap()
    };
    let early = ManualClock::new();
    let late = ManualClock::new();
    late.advance(Duration::from_secs(3600));
    let (a, b) = (build(early.clone()), build(late.clone()));
    let mut allowed = 0;
    for i in 0..20 {
        let l = if i % 2 == 0 { &a } else { &b };
        if l.allow_key("k") {
            allowed += 1;
        }
        // Moving the client clocks changes nothing either.
        early.advance(Duration::from_secs(60));
        late.advance(Duration::from_secs(600));
    }
    assert_eq!(
        allowed,
        5,
        "redis stats {:?} / {:?}",
        a.snapshot().redis,
        b.snapshot().redis
    );
}

/// No client time is sent: every argument of the scripts' calls, seen with MONITOR, is
/// the key, the configuration or `n`, never a time.
#[test]
fn no_client_time_is_sent() {
    let server = redis_or_skip!();
    let mut monitor = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    monitor
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    monitor.write_all(b"MONITOR\r\n").unwrap();
    let mut lines = BufReader::new(monitor.try_clone().unwrap());
    let mut ok = String::new();
    lines.read_line(&mut ok).unwrap();
    assert_eq!(ok.trim_end(), "+OK");

    let l = limiter(&server, Rate::per_second(5), 10, "mon");
    assert!(l.allow_key_n("k", 3).is_ok());
    let p = keel_limiter::PeriodLimiter::builder(5, Duration::from_secs(1))
        .align(Duration::from_secs(3600))
        .redis(support::store(&server.url()), "mon-p")
        .build()
        .unwrap();
    assert!(p.take("k").unwrap().is_allowed());

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let times = [
        now.as_secs(),
        now.as_millis() as u64,
        now.as_micros() as u64,
    ];
    let (mut token_seen, mut period_seen) = (false, false);
    while !(token_seen && period_seen) {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        if !line.contains("\"EVALSHA\"") && !line.contains("\"EVAL\"") {
            continue;
        }
        // `<server time> [db addr] "EVALSHA" "<sha>" "1" "<key>" args...`
        let args: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        let after_key = &args[4..];
        if args[3] == "{mon:k}" {
            token_seen = true;
            assert_eq!(after_key, ["5", "1000000", "10", "3", "4000"], "{line}");
        } else {
            period_seen = true;
            assert_eq!(args[3], "{mon-p:k}", "{line}");
            assert_eq!(after_key, ["1000", "3600000"], "{line}");
        }
        for arg in after_key {
            if let Ok(v) = arg.parse::<u64>() {
                for t in times {
                    assert!(v.abs_diff(t) > t / 10, "{arg} looks like a time: {line}");
                }
            }
        }
    }
}

/// NOSCRIPT (the script cache flushed between calls) is reloaded transparently, sync and
/// async.
#[tokio::test]
async fn noscript_is_reloaded() {
    let server = redis_or_skip!();
    // A token an hour: the check of the bucket below allows 36 s of refill.
    let l = limiter(
        &server,
        Rate::new(1, Duration::from_secs(3600)),
        10,
        "noscript",
    );
    assert!(l.allow_key_n_async("k", 1).await.is_ok());
    let l2 = l.clone();
    let flush = || {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query(&mut server.connection())
            .unwrap();
    };
    flush();
    assert!(
        tokio::task::spawn_blocking(move || l2.allow_key_n("k", 1))
            .await
            .unwrap()
            .is_ok()
    );
    flush();
    assert!(l.allow_key_n_async("k", 1).await.is_ok());
    let s = stats(&l);
    assert_eq!((s.decisions, s.errors, s.healthy), (3, 0, true));
    // The three decisions took three tokens from the one bucket.
    let tokens: f64 = redis::cmd("HGET")
        .arg("{noscript:k}")
        .arg("tokens")
        .query(&mut server.connection())
        .unwrap();
    assert!((7.0..7.01).contains(&tokens), "{tokens}");
}

/// A key of the wrong type is an error the failure policy handles for that request only:
/// the server is fine, so the limiter stays on Redis for every other key.
#[test]
fn a_key_of_the_wrong_type_goes_to_the_policy() {
    let server = redis_or_skip!();
    let _: () = redis::cmd("SET")
        .arg("{wrong:k}")
        .arg("not a bucket")
        .query(&mut server.connection())
        .unwrap();
    let rescue = limiter(&server, Rate::per_second(5), 10, "wrong");
    assert_eq!(rescue.allow_key_n("k", 1), Ok(()));
    let s = stats(&rescue);
    assert_eq!(s.errors, 1);
    assert_eq!(s.last_error_kind, Some(RedisErrorKind::WrongType));
    assert!(
        s.last_error.as_deref().unwrap().contains("WRONGTYPE"),
        "{s:?}"
    );
    assert_eq!(rescue.snapshot().policy_decisions, 1);
    assert_eq!((s.key_errors, s.switches_to_fallback), (1, 0), "{s:?}");
    assert!(s.healthy, "one broken key does not switch the limiter");
    assert_eq!(rescue.allow_key_n("fine", 1), Ok(()));
    assert_eq!(stats(&rescue).decisions, 1, "the other key went to Redis");

    let closed = TokenLimiter::builder(Rate::per_second(5), 10)
        .redis(support::store(&server.url()), "wrong")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    assert_eq!(closed.allow_key_n("k", 1), Err(Denied::Unavailable));

    // A corrupt bucket (a hash with a non-number) is an error too, not a panic.
    let _: () = redis::cmd("HSET")
        .arg("{wrong:h}")
        .arg("tokens")
        .arg("many")
        .arg("ts")
        .arg("1")
        .query(&mut server.connection())
        .unwrap();
    let other = limiter(&server, Rate::per_second(5), 10, "wrong");
    assert_eq!(other.allow_key_n("h", 1), Ok(()));
    let s = stats(&other);
    assert_eq!(s.last_error_kind, Some(RedisErrorKind::UnexpectedReply));
    assert!(s.healthy && s.key_errors == 1, "{s:?}");
}
