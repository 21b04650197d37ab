//! The period limiter on a private redis-server: go-zero's scenarios, aligned windows on
//! the server's clock, a shared quota, self-healing keys and keys of the wrong type.
#![cfg(feature = "redis")]

mod support;

use std::time::{Duration, Instant};

use keel_limiter::redis::{RedisErrorKind, RedisStats};
use keel_limiter::{Denied, FailurePolicy, PeriodLimiter, PeriodState};
use support::{RedisServer, eventually};

fn limiter(server: &RedisServer, quota: u32, period: Duration, prefix: &str) -> PeriodLimiter {
    PeriodLimiter::builder(quota, period)
        .redis(support::store(&server.url()), prefix)
        .build()
        .unwrap()
}

fn stats(l: &PeriodLimiter) -> RedisStats {
    l.snapshot().redis.expect("a redis limiter has redis stats")
}

fn tally(l: &PeriodLimiter, key: &str, calls: usize) -> [usize; 3] {
    let mut counts = [0; 3];
    for _ in 0..calls {
        let d = l.take(key).expect("no error under the default policy");
        assert!(d.resets_in <= l.snapshot().period, "{d:?}");
        counts[match d.state {
            PeriodState::Allowed => 0,
            PeriodState::HitQuota => 1,
            PeriodState::OverQuota => 2,
        }] += 1;
    }
    counts
}

/// go-zero `TestPeriodLimit_Take`: quota 5, 100 takes → 4 Allowed, 1 HitQuota, 95
/// OverQuota. go-zero's period is 1 s; here it is a minute, so that a busy machine cannot
/// spread the 100 round trips (or the PTTL read after them) over two windows.
#[test]
fn take() {
    let server = redis_or_skip!();
    let l = limiter(&server, 5, Duration::from_secs(60), "take");
    assert_eq!(tally(&l, "first", 100), [4, 1, 95]);
    let s = stats(&l);
    assert_eq!((s.decisions, s.errors, s.healthy), (100, 0, true));
    // The window started at the first hit: its key expires within the period.
    let ttl: i64 = redis::cmd("PTTL")
        .arg("{take:first}")
        .query(&mut server.connection())
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");
}

/// go-zero `TestPeriodLimit_TakeWithAlign`, with the window aligned on the server's clock.
/// The 100 takes must fall in one second of the server's clock; a run that a busy machine
/// spread over two (the server's clock shows it) is made again on a fresh key, and the
/// exact figures are asserted on the first run that fit in one window.
#[test]
fn take_with_align() {
    let server = redis_or_skip!();
    let l = PeriodLimiter::builder(5, Duration::from_secs(1))
        .align(Duration::ZERO)
        .redis(support::store(&server.url()), "align")
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut runs = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "no run of 100 takes fit in one second of the server's clock ({runs} runs in 60 s)"
        );
        // Start early in a second of the server's clock (setup, not an assertion on time).
        if server.time_ms() % 1000 >= 400 {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        runs += 1;
        let key = format!("first-{runs}");
        let before = server.time_ms();
        let first = l.take(&key).unwrap();
        let after = server.time_ms();
        let rest = tally(&l, &key, 99);
        let end = server.time_ms();
        // The window ends on the next whole second of the server's clock.
        let boundary = (before / 1000 + 1) * 1000;
        if end >= boundary {
            continue; // the takes crossed a second boundary: two windows, not one
        }
        assert_eq!(first.state, PeriodState::Allowed);
        let left = first.resets_in.as_millis() as u64;
        assert!(
            (boundary - after..=boundary - before).contains(&left),
            "{left}"
        );
        assert_eq!(rest, [3, 1, 95]);
        return;
    }
}

/// Aligned with an offset: a day's window ends at the offset's midnight.
#[test]
fn align_offset_moves_the_boundary() {
    let server = redis_or_skip!();
    let day = Duration::from_secs(86_400);
    let offset = Duration::from_secs(2 * 3600); // UTC+2
    let to_midnight = |local_ms: u64| 86_400_000 - local_ms % 86_400_000;
    let off = offset.as_millis() as u64;
    for (prefix, east) in [("day", true), ("day-west", false)] {
        let builder = PeriodLimiter::builder(5, day);
        let builder = if east {
            builder.align(offset)
        } else {
            builder.align_west(offset)
        };
        let l = builder
            .redis(support::store(&server.url()), prefix)
            .build()
            .unwrap();
        let local = |unix_ms: u64| if east { unix_ms + off } else { unix_ms - off };
        let before = server.time_ms();
        let d = l.take("k").unwrap();
        let after = server.time_ms();
        let left = d.resets_in.as_millis() as u64;
        // A local day boundary between `before` and `after` would make this fail; the
        // test takes a few ms.
        let (least, most) = (to_midnight(local(after)), to_midnight(local(before)));
        assert!(
            (least..=most).contains(&left),
            "{prefix}: {left} not in {least}..={most}"
        );
    }
}

/// go-zero `TestQuotaFull`: quota 1 → the first take is HitQuota.
#[test]
fn quota_full() {
    let server = redis_or_skip!();
    let l = limiter(&server, 1, Duration::from_secs(1), "full");
    assert_eq!(l.take("k").unwrap().state, PeriodState::HitQuota);
    assert_eq!(l.take("k").unwrap().state, PeriodState::OverQuota);
}

/// A window's key expires with the window: the next take starts a new one.
#[test]
fn a_new_window_starts_when_the_key_expires() {
    let server = redis_or_skip!();
    let l = limiter(&server, 2, Duration::from_millis(50), "short");
    assert_eq!(l.take("k").unwrap().state, PeriodState::Allowed);
    // Fill the window until a take is refused. A busy machine may let the 50 ms run out
    // between two takes: the next one then starts a new window, and filling goes on.
    let deadline = Instant::now() + Duration::from_secs(30);
    let over = loop {
        let d = l.take("k").unwrap();
        if d.state == PeriodState::OverQuota {
            break d;
        }
        assert!(Instant::now() < deadline, "no take refused within 30 s");
    };
    std::thread::sleep(over.resets_in + Duration::from_millis(5));
    assert!(eventually(Duration::from_secs(10), || {
        l.take("k").unwrap().state == PeriodState::Allowed
    }));
}

#[tokio::test]
async fn take_async() {
    let server = redis_or_skip!();
    let l = limiter(&server, 5, Duration::from_secs(10), "async");
    let mut states = Vec::new();
    for _ in 0..7 {
        states.push(l.take_async("k").await.unwrap().state);
    }
    use PeriodState::*;
    assert_eq!(
        states,
        [
            Allowed, Allowed, Allowed, Allowed, HitQuota, OverQuota, OverQuota
        ]
    );
}

/// Two instances on separate stores enforce one quota exactly under 200 concurrent tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_quota_exactly() {
    let server = redis_or_skip!();
    let a = limiter(&server, 50, Duration::from_secs(60), "shared");
    let b = limiter(&server, 50, Duration::from_secs(60), "shared");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { l.take_async("user").await }));
    }
    let mut counts = [0; 3];
    for t in tasks {
        let d = t.await.unwrap().expect("no error under the default policy");
        counts[match d.state {
            PeriodState::Allowed => 0,
            PeriodState::HitQuota => 1,
            PeriodState::OverQuota => 2,
        }] += 1;
    }
    assert_eq!(counts, [49, 1, 150]);
    assert_eq!(stats(&a).errors + stats(&b).errors, 0);
}

/// A counter without a TTL (go-zero's key once its EXPIRE failed: it never expires)
/// gets one on the next take.
#[test]
fn a_key_without_ttl_heals() {
    let server = redis_or_skip!();
    let mut c = server.connection();
    let _: () = redis::cmd("SET")
        .arg("{heal:k}")
        .arg(3)
        .query(&mut c)
        .unwrap();
    // A minute: the key cannot expire again before the PTTL below, however busy the
    // machine.
    let l = limiter(&server, 5, Duration::from_secs(60), "heal");
    let d = l.take("k").unwrap();
    assert_eq!(d.state, PeriodState::Allowed); // 4th of 5
    assert!(d.resets_in <= Duration::from_secs(60) && !d.resets_in.is_zero());
    let ttl: i64 = redis::cmd("PTTL").arg("{heal:k}").query(&mut c).unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");
}

/// Keys of the wrong type and non-integer counters go to the failure policy; no panic.
#[test]
fn bad_keys_go_to_the_policy() {
    let server = redis_or_skip!();
    let mut c = server.connection();
    let _: () = redis::cmd("HSET")
        .arg("{bad:hash}")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("{bad:text}")
        .arg("abc")
        .query(&mut c)
        .unwrap();

    let rescue = limiter(&server, 5, Duration::from_secs(1), "bad");
    assert_eq!(rescue.take("hash").unwrap().state, PeriodState::Allowed);
    assert_eq!(
        stats(&rescue).last_error_kind,
        Some(RedisErrorKind::WrongType)
    );
    assert_eq!(rescue.snapshot().policy_decisions, 1);

    let closed = PeriodLimiter::builder(5, Duration::from_secs(1))
        .redis(support::store(&server.url()), "bad")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    assert_eq!(closed.take("text"), Err(Denied::Unavailable));
    let s = stats(&closed);
    // INCRBY on a string that is not a number: that key is someone else's.
    assert_eq!(s.last_error_kind, Some(RedisErrorKind::WrongType));
    assert!(s.healthy && s.key_errors == 1, "{s:?}");

    let open = PeriodLimiter::builder(5, Duration::from_secs(1))
        .redis(support::store(&server.url()), "bad")
        .failure_policy(FailurePolicy::FailOpen)
        .build()
        .unwrap();
    assert!(open.take("hash").unwrap().is_allowed());
    assert_eq!(stats(&open).errors, 1);
}
