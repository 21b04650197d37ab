//! go-zero's limiter scenarios (`periodlimit_test.go`, `tokenlimit_test.go`) on the
//! in-memory backend with the manual clock, and keel's guarantees around them: exact
//! counts under threads, bounded memory under key churn, refusals that say when to retry,
//! configuration refused at construction. The Redis backend runs the same scenarios in
//! `redis_*.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use keel_limiter::{ConfigError, Denied, PeriodLimiter, PeriodState, Rate, TokenLimiter};
use keel_timex::ManualClock;

fn tally(states: impl Iterator<Item = PeriodState>) -> (usize, usize, usize) {
    let mut t = (0, 0, 0);
    for s in states {
        match s {
            PeriodState::Allowed => t.0 += 1,
            PeriodState::HitQuota => t.1 += 1,
            PeriodState::OverQuota => t.2 += 1,
        }
    }
    t
}

#[test]
fn period_take_quota_5_gives_4_allowed_1_hit_95_over() {
    for aligned in [false, true] {
        let clock = ManualClock::new();
        let b = PeriodLimiter::builder(5, Duration::from_secs(1));
        let b = if aligned {
            b.align(Duration::ZERO)
                .unix_time_at_start(Duration::from_millis(1_700_000_000_250))
        } else {
            b
        };
        let l = b.build_with_clock(clock.clone()).unwrap();
        let counts = tally((0..100).map(|_| l.take("first").unwrap().state));
        assert_eq!(counts, (4, 1, 95), "aligned: {aligned}");
    }
}

#[test]
fn a_quota_of_one_is_hit_by_the_first_take() {
    // go-zero PR #1581: the first take of a quota of 1 is HitQuota, not Allowed.
    let l = PeriodLimiter::builder(1, Duration::from_secs(1))
        .build_with_clock(ManualClock::new())
        .unwrap();
    assert_eq!(l.take("k").unwrap().state, PeriodState::HitQuota);
    assert_eq!(l.take("k").unwrap().state, PeriodState::OverQuota);
}

#[test]
fn unaligned_windows_start_at_the_first_hit() {
    let clock = ManualClock::new();
    let l = PeriodLimiter::builder(2, Duration::from_secs(10))
        .build_with_clock(clock.clone())
        .unwrap();
    clock.advance(Duration::from_secs(3));
    assert!(l.take("k").unwrap().is_allowed());
    clock.advance(Duration::from_secs(9));
    let d = l.take("k").unwrap();
    assert_eq!(d.state, PeriodState::HitQuota);
    assert_eq!(d.resets_in, Duration::from_secs(1));
    assert_eq!(l.take("k").unwrap().state, PeriodState::OverQuota);
    clock.advance(Duration::from_secs(1));
    assert_eq!(l.take("k").unwrap().state, PeriodState::Allowed);
    // Keys are independent.
    assert_eq!(l.take("other").unwrap().state, PeriodState::Allowed);
}

#[test]
fn aligned_windows_end_on_local_boundaries() {
    // A day in UTC+2: 21:59:59 UTC is 23:59:59 local, one second before the reset.
    let clock = ManualClock::new();
    let day = Duration::from_secs(86_400);
    let unix = Duration::from_secs(1_700_000_000 / 86_400 * 86_400 + 22 * 3600 - 1);
    let l = PeriodLimiter::builder(1, day)
        .align(Duration::from_secs(2 * 3600))
        .unix_time_at_start(unix)
        .build_with_clock(clock.clone())
        .unwrap();
    let d = l.take("sms").unwrap();
    assert_eq!(d.state, PeriodState::HitQuota);
    assert_eq!(d.resets_in, Duration::from_secs(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(l.take("sms").unwrap().state, PeriodState::HitQuota);
    assert_eq!(l.take("sms").unwrap().resets_in, day);
    // West of UTC: 03:59:59 UTC is 23:59:59 at UTC−4.
    let unix = Duration::from_secs(1_700_000_000 / 86_400 * 86_400 + 4 * 3600 - 1);
    let west = PeriodLimiter::builder(1, day)
        .align_west(Duration::from_secs(4 * 3600))
        .unix_time_at_start(unix)
        .build_with_clock(ManualClock::new())
        .unwrap();
    assert_eq!(west.take("sms").unwrap().resets_in, Duration::from_secs(1));
}

#[test]
fn token_take_100_calls_10ms_apart() {
    // go-zero: rate 5, burst 10, 100 calls 10 ms apart (~1 s): allowed >= 15. Its Redis
    // script refills in whole-second steps, so crossing one second boundary credits 5
    // tokens at once; keel refills continuously: 10 at once, then one per 200 ms over
    // the 990 ms → 14.
    let clock = ManualClock::new();
    let l = TokenLimiter::builder(Rate::per_second(5), 10)
        .build_with_clock(clock.clone())
        .unwrap();
    let mut allowed = 0;
    for _ in 0..100 {
        if l.allow() {
            allowed += 1;
        }
        clock.advance(Duration::from_millis(10));
    }
    assert_eq!(allowed, 14);
    // One more second: exactly 5 more.
    let more = (0..100)
        .filter(|_| {
            let ok = l.allow();
            clock.advance(Duration::from_millis(10));
            ok
        })
        .count();
    assert_eq!(more, 5);
}

#[test]
fn token_take_burst() {
    let l = TokenLimiter::builder(Rate::per_second(5), 10)
        .build_with_clock(ManualClock::new())
        .unwrap();
    assert_eq!((0..100).filter(|_| l.allow()).count(), 10);
}

#[test]
fn refusals_say_when_to_retry_and_n_over_burst_never_fits() {
    let clock = ManualClock::new();
    let l = TokenLimiter::builder(Rate::per_second(4), 4)
        .build_with_clock(clock.clone())
        .unwrap();
    assert_eq!(l.allow_n(4), Ok(()));
    let d = l.allow_n(2).unwrap_err();
    assert_eq!(
        d,
        Denied::Limited {
            retry_after: Duration::from_millis(500)
        }
    );
    assert_eq!(d.http_status(), 429);
    assert_eq!(d.retry_after(), Some(Duration::from_millis(500)));
    clock.advance(Duration::from_millis(500));
    assert_eq!(l.allow_n(2), Ok(()));
    let never = l.allow_n(5).unwrap_err();
    assert_eq!(never, Denied::NeverFits { n: 5, burst: 4 });
    assert_eq!(never.retry_after(), None);
    assert!(never.to_string().contains("never"));
    assert_eq!(
        l.allow_key_n("k", 5),
        Err(Denied::NeverFits { n: 5, burst: 4 })
    );
}

#[test]
fn the_empty_key_is_the_unkeyed_bucket() {
    let l = TokenLimiter::builder(Rate::per_minute(1), 2)
        .build_with_clock(ManualClock::new())
        .unwrap();
    assert!(l.allow());
    assert!(l.allow_key(""));
    assert!(!l.allow());
    assert!(l.allow_key("someone"));
    assert_eq!(l.len(), 1);
}

#[test]
fn concurrent_callers_get_exactly_the_burst() {
    let l = TokenLimiter::builder(Rate::per_minute(1), 1000)
        .build_with_clock(ManualClock::new())
        .unwrap();
    let allowed = AtomicU64::new(0);
    let keyed = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..2000 {
                    if l.allow() {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                    if l.allow_key(["a", "b"][i % 2]) {
                        keyed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.into_inner(), 1000);
    assert_eq!(keyed.into_inner(), 2000);
}

#[test]
fn key_churn_cannot_grow_memory_without_bound() {
    let clock = ManualClock::new();
    // Every key's bucket is full again 100 ms after its last use.
    let l = TokenLimiter::builder(Rate::per_second(10), 1)
        .build_with_clock(clock.clone())
        .unwrap();
    for i in 0..200_000u32 {
        assert!(l.allow_key(&i.to_string()));
        if i % 100 == 0 {
            clock.advance(Duration::from_millis(10));
        }
    }
    // At most ~10 ms × 100 keys per ms... of live keys plus unswept ones per shard.
    assert!(l.len() < 20_000, "{} keys held", l.len());
    clock.advance(Duration::from_millis(100));
    assert_eq!(l.evict_idle(), 0);

    let p = PeriodLimiter::builder(3, Duration::from_millis(50))
        .build_with_clock(clock.clone())
        .unwrap();
    for i in 0..200_000u32 {
        p.take(&i.to_string()).unwrap();
        if i % 100 == 0 {
            clock.advance(Duration::from_millis(1));
        }
    }
    assert!(p.len() < 20_000, "{} keys held", p.len());
}

#[test]
fn the_key_cap_refuses_new_keys_instead_of_resetting_old_ones() {
    let clock = ManualClock::new();
    let l = TokenLimiter::builder(Rate::per_second(1), 2)
        .max_keys(32)
        .build_with_clock(clock.clone())
        .unwrap();
    for i in 0..32 {
        assert!(l.allow_key(&format!("k{i}")));
    }
    match l.allow_key_n("newcomer", 1) {
        // The first key's bucket is full again 1 s after its token was taken.
        Err(Denied::KeyCapacity { retry_after }) => assert_eq!(retry_after, Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    assert!(l.len() <= 32);
    // Existing keys keep their (partly used) buckets.
    assert!(l.allow_key("k0"));
    assert!(!l.allow_key("k0"));
    clock.advance(Duration::from_secs(1));
    assert!(l.allow_key("newcomer"));
}

#[test]
fn invalid_configuration_is_refused_at_construction() {
    let t = TokenLimiter::builder;
    assert_eq!(
        t(Rate::per_second(0), 1).build().unwrap_err(),
        ConfigError::ZeroRate
    );
    assert_eq!(
        t(Rate::new(1, Duration::ZERO), 1).build().unwrap_err(),
        ConfigError::ZeroRate
    );
    assert_eq!(
        t(Rate::per_second(1), 0).build().unwrap_err(),
        ConfigError::ZeroBurst
    );
    assert_eq!(
        t(Rate::per_second(1), 1).max_keys(0).build().unwrap_err(),
        ConfigError::ZeroMaxKeys
    );
    let p = PeriodLimiter::builder;
    assert_eq!(
        p(0, Duration::from_secs(1)).build().unwrap_err(),
        ConfigError::ZeroQuota
    );
    assert_eq!(
        p(1, Duration::ZERO).build().unwrap_err(),
        ConfigError::ZeroPeriod
    );
    assert_eq!(
        p(1, Duration::from_micros(999)).build().unwrap_err(),
        ConfigError::ZeroPeriod
    );
    assert!(matches!(
        p(u32::MAX, Duration::from_secs(1)).build(),
        Err(ConfigError::QuotaTooLarge { .. })
    ));
    assert!(ConfigError::ZeroRate.to_string().contains("token"));
}
