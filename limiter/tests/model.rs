//! proptest with the manual clock: the limiters against plain reference models.
//!
//! - Token bucket: the model keeps a credit in nanoseconds of refill (capped at
//!   burst × interval) and the time it was last topped up, the textbook formulation; the
//!   limiter keeps one theoretical arrival time per bucket. They must agree on every
//!   decision and every retry-after, for random keys, token counts, clock steps and idle
//!   sweeps (so sweeping must never change a decision), and no interval may see more than
//!   burst + rate × its length granted.
//! - Period: the model keeps (window end, count) per key; the limiter must give the same
//!   state sequence and never more than the quota per window.

use std::collections::HashMap;
use std::time::Duration;

use keel_limiter::{Denied, PeriodLimiter, PeriodState, Rate, TokenLimiter};
use keel_timex::{Clock, ManualClock};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Take { key: Option<u8>, n: u32 },
    Advance(u64),
    Sweep,
}

fn ops(max_n: u32) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            6 => (prop::option::of(0u8..4), 1..=max_n).prop_map(|(key, n)| Op::Take { key, n }),
            3 => (0u64..400).prop_map(|ms| Op::Advance(ms * 1_000_000 + ms * 7)),
            1 => Just(Op::Sweep),
        ],
        1..300,
    )
}

/// The textbook token bucket in nanoseconds of credit.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    credit: u64,
    at: u64,
}

struct TokenModel {
    interval: u64,
    capacity: u64,
    buckets: HashMap<Option<u8>, Bucket>,
}

impl TokenModel {
    fn take(&mut self, key: Option<u8>, n: u32, now: u64) -> Result<(), Denied> {
        let capacity = self.capacity;
        let b = self.buckets.entry(key).or_insert(Bucket {
            credit: capacity,
            at: now,
        });
        b.credit = (b.credit + (now - b.at)).min(capacity);
        b.at = now;
        let cost = u64::from(n) * self.interval;
        if b.credit >= cost {
            b.credit -= cost;
            Ok(())
        } else {
            Err(Denied::Limited {
                retry_after: Duration::from_nanos(cost - b.credit),
            })
        }
    }
}

fn key_name(k: u8) -> String {
    format!("user-{k}")
}

fn check_token(rate: Rate, burst: u32, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let limiter = TokenLimiter::builder(rate, burst)
        .build_with_clock(clock.clone())
        .unwrap();
    let interval = rate.interval().as_nanos() as u64;
    let mut model = TokenModel {
        interval,
        capacity: interval * u64::from(burst),
        buckets: HashMap::new(),
    };
    // (time, tokens) of every grant, per bucket.
    let mut grants: HashMap<Option<u8>, Vec<(u64, u64)>> = HashMap::new();
    for op in ops {
        let now = clock.now().as_nanos();
        match op {
            Op::Take { key, n } => {
                let n = n.min(burst);
                let expected = model.take(key, n, now);
                let got = match key {
                    None => limiter.allow_n(n),
                    Some(k) => limiter.allow_key_n(&key_name(k), n),
                };
                prop_assert_eq!(got, expected, "take {} from {:?} at {}", n, key, now);
                if got.is_ok() {
                    grants.entry(key).or_default().push((now, u64::from(n)));
                }
            }
            Op::Advance(ns) => {
                clock.advance(Duration::from_nanos(ns));
            }
            Op::Sweep => {
                limiter.evict_idle();
            }
        }
    }
    // No interval [a, b] sees more than burst + (b − a) / interval tokens granted.
    for g in grants.values() {
        for (i, &(a, _)) in g.iter().enumerate() {
            let mut total = 0;
            for &(b, n) in &g[i..] {
                total += n;
                let bound = u64::from(burst) + (b - a) / interval;
                prop_assert!(
                    total <= bound,
                    "{} tokens in [{}, {}], bound {}",
                    total,
                    a,
                    b,
                    bound
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn token_bucket_matches_the_textbook_model(
        tokens in 1u32..50,
        period_ms in 1u64..3000,
        burst in 1u32..8,
        ops in ops(8),
    ) {
        check_token(Rate::new(tokens, Duration::from_millis(period_ms)), burst, ops)?;
    }

    #[test]
    fn period_limiter_matches_the_window_model(
        quota in 1u32..6,
        period_ms in 1u64..1500,
        aligned in any::<bool>(),
        start_ms in 0u64..100_000,
        ops in ops(1),
    ) {
        check_period(quota, period_ms, aligned.then_some(start_ms), ops)?;
    }
}

fn check_period(
    quota: u32,
    period_ms: u64,
    aligned_at: Option<u64>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let b = PeriodLimiter::builder(quota, Duration::from_millis(period_ms));
    let b = match aligned_at {
        Some(unix_ms) => b
            .align(Duration::ZERO)
            .unix_time_at_start(Duration::from_millis(unix_ms)),
        None => b,
    };
    let limiter = b.build_with_clock(clock.clone()).unwrap();
    // key → (window end ms of clock time, count).
    let mut model: HashMap<Option<u8>, (u64, u32)> = HashMap::new();
    let mut allowed: HashMap<(Option<u8>, u64), u32> = HashMap::new();
    for op in ops {
        let now_ms = clock.now().as_nanos() / 1_000_000;
        match op {
            Op::Take { key, .. } => {
                let entry = model.entry(key).or_insert((0, 0));
                if entry.1 == 0 || now_ms >= entry.0 {
                    let end = match aligned_at {
                        None => now_ms + period_ms,
                        Some(unix) => (((unix + now_ms) / period_ms) + 1) * period_ms - unix,
                    };
                    *entry = (end, 0);
                }
                entry.1 += 1;
                let expected = match entry.1.cmp(&quota) {
                    std::cmp::Ordering::Less => PeriodState::Allowed,
                    std::cmp::Ordering::Equal => PeriodState::HitQuota,
                    std::cmp::Ordering::Greater => PeriodState::OverQuota,
                };
                let name = key.map_or_else(|| "".to_owned(), key_name);
                let got = limiter.take(&name).unwrap();
                prop_assert_eq!(got.state, expected, "key {:?} at {} ms", key, now_ms);
                prop_assert!(got.resets_in <= Duration::from_millis(period_ms));
                if got.is_allowed() {
                    let n = allowed.entry((key, entry.0)).or_default();
                    *n += 1;
                    prop_assert!(*n <= quota);
                }
            }
            Op::Advance(ns) => {
                clock.advance(Duration::from_nanos(ns));
            }
            Op::Sweep => {
                limiter.evict_idle();
            }
        }
    }
    Ok(())
}

#[test]
fn the_model_agrees_on_a_known_sequence() {
    // Rate 2/s, burst 2: two at once, the third waits 500 ms.
    let ops = vec![
        Op::Take { key: None, n: 1 },
        Op::Take { key: None, n: 1 },
        Op::Take { key: None, n: 1 },
        Op::Advance(500_000_000),
        Op::Sweep,
        Op::Take { key: None, n: 1 },
        Op::Take { key: Some(1), n: 2 },
    ];
    check_token(Rate::per_second(2), 2, ops).unwrap();
}
