//! The period limiter on a private redis-server: go-zero's scenarios, aligned windows on
//! the server's clock, a shared quota, self-healing keys and keys of the wrong type.
#![cfg(feature = "redis")]

mod support;

use std::time::Duration;

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

/// go-zero `TestPeriodLimit_Take`: quota 5, period 1 s, 100 takes → 4 Allowed, 1
/// HitQuota, 95 OverQuota.
#[test]
fn take() {
    let server = redis_or_skip!();
    let l = limiter(&server, 5, Duration::from_secs(1), "take");
    assert_eq!(tally(&l, "first", 100), [4, 1, 95]);
    let s = stats(&l);
    assert_eq!((s.decisions, s.errors, s.healthy), (100, 0, true));
    // The window started at the first hit: its key expires within the period.
    let ttl: i64 = redis::cmd("PTTL")
        .arg("{take:first}")
        .query(&mut server.connection())
        .unwrap();
    assert!((1..=1000).contains(&ttl), "{ttl}");
}

/// go-zero `TestPeriodLimit_TakeWithAlign`, with the window aligned on the server's clock.
#[test]
fn take_with_align() {
    let server = redis_or_skip!();
    let l = PeriodLimiter::builder(5, Duration::from_secs(1))
        .align(Duration::ZERO)
        .redis(support::store(&server.url()), "align")
        .build()
        .unwrap();
    // Start early in a second of the server's clock, so the 100 takes stay in one window
    // (setup, not an assertion on time).
    let early = || server.time_ms() % 1000 < 400;
    assert!(eventually(Duration::from_secs(3), early));
    let before = server.time_ms();
    let first = l.take("first").unwrap();
    let after = server.time_ms();
    assert_eq!(first.state, PeriodState::Allowed);
    // The window ends on the next whole second of the server's clock.
    let boundary = (before / 1000 + 1) * 1000;
    assert!(after < boundary, "the take crossed a second boundary");
    let left = first.resets_in.as_millis() as u64;
    assert!(
        (boundary - after..=boundary - before).contains(&left),
        "{left}"
    );
    assert_eq!(tally(&l, "first", 99), [3, 1, 95]);
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

#[test]
fn a_new_window_starts_when_the_key_expires() {
    let server = redis_or_skip!();
    let l = limiter(&server, 2, Duration::from_millis(50), "short");
    assert_eq!(l.take("k").unwrap().state, PeriodState::Allowed);
    assert_eq!(l.take("k").unwrap().state, PeriodState::HitQuota);
    let over = l.take("k").unwrap();
    assert_eq!(over.state, PeriodState::OverQuota);
    std::thread::sleep(over.resets_in + Duration::from_millis(5));
    assert!(eventually(Duration::from_secs(2), || {
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
    let l = limiter(&server, 5, Duration::from_secs(1), "heal");
    let d = l.take("k").unwrap();
    assert_eq!(d.state, PeriodState::Allowed); // 4th of 5
    assert!(d.resets_in <= Duration::from_secs(1) && !d.resets_in.is_zero());
    let ttl: i64 = redis::cmd("PTTL").arg("{heal:k}").query(&mut c).unwrap();
    assert!((1..=1000).contains(&ttl), "{ttl}");
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
