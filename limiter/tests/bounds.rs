//! The documented bounds of the in-memory limiters: long periods work for their whole length
//! (no wrap of the packed window end), refills beyond `TokenBuilder::MAX_REFILL` are
//! `BurstTooLong`, and a clock driven to the end of its range neither panics nor hands out
//! tokens it has not refilled.

use std::time::Duration;

use keel_limiter::{
    ConfigError, Denied, PeriodLimiter, PeriodState, Rate, TokenBuilder, TokenLimiter,
};
use keel_timex::{Clock, ManualClock, Nanos};

const YEAR: Duration = Duration::from_secs(365 * 86_400);

#[test]
fn a_period_of_100_years_stays_closed_for_100_years() {
    for period in [
        Duration::from_millis(1 << 40),
        Duration::from_millis((1 << 40) + 1),
        YEAR * 100,
    ] {
        let clock = ManualClock::new();
        let limiter = PeriodLimiter::builder(2, period)
            .build_with_clock(clock.clone())
            .unwrap();
        assert_eq!(limiter.take("k").unwrap().state, PeriodState::Allowed);
        assert_eq!(limiter.take("k").unwrap().state, PeriodState::HitQuota);
        let refused = limiter.take("k").unwrap();
        assert_eq!(refused.state, PeriodState::OverQuota);
        assert_eq!(refused.resets_in, period, "{period:?}");
        clock.advance(Duration::from_secs(30));
        assert_eq!(limiter.take("k").unwrap().state, PeriodState::OverQuota);
        clock.advance(period / 2);
        let later = limiter.take("k").unwrap();
        assert_eq!(later.state, PeriodState::OverQuota, "{period:?}");
        assert_eq!(
            later.resets_in,
            period - period / 2 - Duration::from_secs(30)
        );
        assert_eq!(limiter.evict_idle(), 1, "the open window is kept");
        clock.advance(period);
        assert_eq!(limiter.take("k").unwrap().state, PeriodState::Allowed);
    }
}

#[test]
fn a_period_past_the_end_of_the_clock_never_ends() {
    // (A period of exactly 2^64 - 1 ns ends at the clock's last millisecond, so it ends.)
    for period in [Duration::from_secs(u64::MAX), Duration::MAX] {
        let clock = ManualClock::new();
        let limiter = PeriodLimiter::builder(1, period)
            .build_with_clock(clock.clone())
            .unwrap();
        assert_eq!(limiter.take("k").unwrap().state, PeriodState::HitQuota);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Nanos::MAX);
        let last = limiter.take("k").unwrap();
        assert_eq!(last.state, PeriodState::OverQuota, "{period:?}");
        assert!(last.resets_in > Duration::ZERO);
        assert_eq!(limiter.evict_idle(), 1);
        assert_eq!(limiter.take("k").unwrap().state, PeriodState::OverQuota);
    }
}

#[test]
fn quotas_and_periods_outside_the_bounds_are_refused() {
    let build = |quota, period| PeriodLimiter::builder(quota, period).build();
    assert!(build(16_777_214, Duration::from_secs(1)).is_ok());
    assert_eq!(
        build(16_777_215, Duration::from_secs(1)).unwrap_err(),
        ConfigError::QuotaTooLarge { quota: 16_777_215 }
    );
    assert_eq!(
        build(u32::MAX, Duration::from_secs(1)).unwrap_err(),
        ConfigError::QuotaTooLarge { quota: u32::MAX }
    );
    assert_eq!(
        build(0, Duration::from_secs(1)).unwrap_err(),
        ConfigError::ZeroQuota
    );
    for short in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
    ] {
        let err = build(1, short).unwrap_err();
        assert_eq!(err, ConfigError::ZeroPeriod);
        assert!(err.to_string().contains("1 ms"), "{err}");
    }
    assert!(build(1, Duration::from_millis(1)).is_ok());
}

#[test]
fn the_largest_quota_rounds_window_ends_up_by_less_than_32_ms() {
    let clock = ManualClock::new();
    let limiter = PeriodLimiter::builder(16_777_214, Duration::from_millis(1000))
        .build_with_clock(clock.clone())
        .unwrap();
    clock.advance(Duration::from_millis(7));
    let first = limiter.take("k").unwrap();
    assert_eq!(first.state, PeriodState::Allowed);
    assert!(first.resets_in >= Duration::from_millis(1000));
    assert!(first.resets_in < Duration::from_millis(1032));
    clock.advance(Duration::MAX);
    assert_eq!(limiter.take("k").unwrap().state, PeriodState::Allowed);
}

#[test]
fn refills_longer_than_146_years_are_refused_with_the_bound() {
    assert_eq!(
        TokenBuilder::MAX_REFILL,
        Duration::from_nanos((1 << 62) - 1)
    );
    let longest = Rate::new(1, TokenBuilder::MAX_REFILL);
    assert!(TokenLimiter::builder(longest, 1).build().is_ok());
    for (rate, burst) in [
        (
            Rate::new(1, TokenBuilder::MAX_REFILL + Duration::from_nanos(1)),
            1,
        ),
        (Rate::new(1, YEAR * 100), 2),
        (Rate::new(1, Duration::MAX), 1),
        (Rate::new(1, Duration::from_secs(2)), u32::MAX),
    ] {
        let err = TokenLimiter::builder(rate, burst).build().unwrap_err();
        assert_eq!(err, ConfigError::BurstTooLong { rate, burst });
        assert!(err.to_string().contains("146 years"), "{err}");
    }
}

#[test]
fn a_rate_of_one_per_century_holds_its_single_token_for_a_century() {
    let clock = ManualClock::new();
    let limiter = TokenLimiter::builder(Rate::new(1, YEAR * 100), 1)
        .build_with_clock(clock.clone())
        .unwrap();
    // Start late on the clock (150 + 100 years stays below the 292-year horizon): the
    // refill must not saturate into "always full".
    clock.advance(YEAR * 150);
    assert!(limiter.allow());
    assert_eq!(
        limiter.allow_n(1),
        Err(Denied::Limited {
            retry_after: YEAR * 100
        })
    );
    clock.advance(YEAR * 50);
    assert!(!limiter.allow());
    clock.advance(YEAR * 50);
    assert!(limiter.allow());
}

#[test]
fn at_the_end_of_the_clock_a_bucket_drains_and_stays_empty() {
    for (rate, burst) in [
        (Rate::per_second(10), 3),
        (Rate::new(1_000_000_000, Duration::from_secs(1)), 1),
        (Rate::new(1, TokenBuilder::MAX_REFILL), 1),
    ] {
        let clock = ManualClock::new();
        let limiter = TokenLimiter::builder(rate, burst)
            .build_with_clock(clock.clone())
            .unwrap();
        assert!(limiter.allow());
        for (i, jump) in [TokenBuilder::HORIZON, Duration::MAX]
            .into_iter()
            .enumerate()
        {
            clock.advance(jump);
            // A new key's bucket is full, then drained, then nothing more: time stopped.
            let key = format!("k{i}");
            let granted = (0..burst + 2).filter(|_| limiter.allow_key(&key)).count();
            assert_eq!(granted, burst as usize, "{rate:?}");
            assert!(limiter.key_tokens(&key) < 1.0);
        }
        // The unkeyed bucket, taken from at 0, is full again at the horizon: once.
        let unkeyed = (0..burst + 2).filter(|_| limiter.allow()).count();
        assert_eq!(unkeyed, burst as usize, "{rate:?}");
        let _ = limiter.evict_idle();
        assert!(
            !limiter.allow_key("k0"),
            "{rate:?}: an empty bucket was evicted"
        );
    }
}
