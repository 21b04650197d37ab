//! Feature `metrics`, in memory: `keel_limiter_decisions_total` counts every answer of the
//! token and period limiters, once, by outcome (`allowed`: a grant, `Allowed` or
//! `HitQuota`; `limited`: every refusal answered 429, `Limited`, `OverQuota`,
//! `KeyCapacity` and `NeverFits`; `unavailable`) with `backend="memory"`; keys never
//! become label values; the handles are registered at build time and keep recording into
//! the recorder installed then. A proptest drives random sequences of decisions, clock
//! steps and sweeps and checks each counter against the answers the API returned.
//!
//! Each test has its own `DebuggingRecorder`, installed with `metrics::with_local_recorder`
//! while its limiters are built (`recorded::Recorded`).

mod recorded;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use keel_limiter::{Denied, PeriodDecision, PeriodLimiter, PeriodState, Rate, TokenLimiter};
use keel_timex::ManualClock;
use proptest::prelude::*;
use recorded::Recorded;

const DECISIONS: &str = "keel_limiter_decisions_total";
const OUTCOMES: [&str; 3] = ["allowed", "limited", "unavailable"];

/// Runs an in-memory async call: it never waits, so one poll answers.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an in-memory decision never waits"),
    }
}

/// The outcome label a token limiter's answer is counted under (the contract, spelled out
/// per variant).
fn token_outcome(r: &Result<(), Denied>) -> &'static str {
    match r {
        Ok(()) => "allowed",
        Err(Denied::Limited { .. } | Denied::KeyCapacity { .. } | Denied::NeverFits { .. }) => {
            "limited"
        }
        Err(Denied::Unavailable) => "unavailable",
        Err(other) => panic!("a new refusal: {other:?}"),
    }
}

/// The outcome label a period limiter's answer is counted under.
fn period_outcome(r: &Result<PeriodDecision, Denied>) -> &'static str {
    match r {
        Ok(d) => match d.state {
            PeriodState::Allowed | PeriodState::HitQuota => "allowed",
            PeriodState::OverQuota => "limited",
        },
        Err(Denied::KeyCapacity { .. }) => "limited",
        Err(Denied::Unavailable) => "unavailable",
        Err(other) => panic!("not a period answer: {other:?}"),
    }
}

/// Exactly the three `backend="memory"` series of limiter `name` of `kind`, and no other
/// series of it.
#[track_caller]
fn assert_memory_series(rec: &Recorded, name: &str, kind: &str) {
    let series: Vec<_> = rec
        .counters()
        .into_keys()
        .filter(|(_, labels)| labels.iter().any(|(k, v)| k == "name" && v == name))
        .collect();
    let expected: Vec<_> = OUTCOMES
        .iter()
        .map(|outcome| {
            let mut labels = vec![
                ("backend".to_owned(), "memory".to_owned()),
                ("kind".to_owned(), kind.to_owned()),
                ("name".to_owned(), name.to_owned()),
                ("outcome".to_owned(), (*outcome).to_owned()),
            ];
            labels.sort();
            (DECISIONS.to_owned(), labels)
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(series, expected);
}

#[test]
fn handles_registered_under_a_local_recorder_keep_recording_into_it() {
    let rec = Recorded::new();
    let clock = ManualClock::new();
    let limiter = rec.build(|| {
        TokenLimiter::builder(Rate::per_second(10), 100)
            .name("local")
            .build_with_clock(clock.clone())
            .unwrap()
    });
    // Registered at build time, before any decision.
    assert_memory_series(&rec, "local", "token");
    assert_eq!(rec.decisions("local", "memory", "allowed"), 0);

    // Outside the closure, on this thread and on another one.
    assert!(limiter.allow());
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..5 {
                assert!(limiter.allow_key("k"));
            }
        })
        .join()
        .unwrap();
    });
    // Counted in the limiter's atomics; published on demand (or within a second).
    limiter.publish_metrics();
    assert_eq!(rec.decisions("local", "memory", "allowed"), 6);

    // A limiter built outside (no recorder installed: this binary never installs a global
    // one) records nowhere, even when used inside.
    let silent = TokenLimiter::builder(Rate::per_second(10), 100)
        .name("silent")
        .build_with_clock(clock)
        .unwrap();
    rec.build(|| assert!(silent.allow()));
    silent.publish_metrics();
    assert!(rec.matching(DECISIONS, &[("name", "silent")]).is_empty());
    assert_eq!(rec.sum(DECISIONS, &[]), 6);
}

#[test]
fn token_decisions_by_outcome() {
    let rec = Recorded::new();
    let clock = ManualClock::new();
    let limiter = rec.build(|| {
        TokenLimiter::builder(Rate::per_second(10), 2)
            .name("api")
            .max_keys(1)
            .build_with_clock(clock.clone())
            .unwrap()
    });
    let allowed = |n| {
        limiter.publish_metrics();
        rec.decisions("api", "memory", "allowed") == n
    };
    let limited = |n| {
        limiter.publish_metrics();
        rec.decisions("api", "memory", "limited") == n
    };

    assert!(limiter.allow());
    assert_eq!(ready(limiter.allow_n_async(1)), Ok(()));
    assert!(allowed(2) && limited(0));
    assert!(matches!(limiter.allow_n(1), Err(Denied::Limited { .. })));
    assert!(allowed(2) && limited(1));
    // More than the burst: refused at once, a 429 like the others.
    assert_eq!(
        limiter.allow_n(3),
        Err(Denied::NeverFits { n: 3, burst: 2 })
    );
    assert_eq!(
        ready(limiter.allow_key_n_async("a", 3)),
        Err(Denied::NeverFits { n: 3, burst: 2 })
    );
    assert!(allowed(2) && limited(3));
    // The key table holds one key: a second one is refused while the first is not idle.
    assert!(limiter.allow_key("a"));
    assert!(matches!(
        limiter.allow_key_n("b", 1),
        Err(Denied::KeyCapacity { .. })
    ));
    assert!(allowed(3) && limited(4));
    clock.advance(Duration::from_millis(100));
    assert!(limiter.allow());
    assert!(allowed(4) && limited(4));
    assert_eq!(rec.decisions("api", "memory", "unavailable"), 0);
    assert_memory_series(&rec, "api", "token");
    // Nothing but decisions for an in-memory limiter.
    assert_eq!(rec.counters().len(), 3);
}

#[test]
fn period_decisions_by_outcome() {
    let rec = Recorded::new();
    let clock = ManualClock::new();
    let limiter = rec.build(|| {
        PeriodLimiter::builder(2, Duration::from_secs(1))
            .name("sms")
            .max_keys(1)
            .build_with_clock(clock.clone())
            .unwrap()
    });
    assert_eq!(limiter.take("k").unwrap().state, PeriodState::Allowed);
    assert_eq!(
        ready(limiter.take_async("k")).unwrap().state,
        PeriodState::HitQuota
    );
    assert_eq!(limiter.take("k").unwrap().state, PeriodState::OverQuota);
    assert!(matches!(limiter.take("j"), Err(Denied::KeyCapacity { .. })));
    limiter.publish_metrics();
    assert_eq!(rec.decisions("sms", "memory", "allowed"), 2);
    assert_eq!(rec.decisions("sms", "memory", "limited"), 2);
    clock.advance(Duration::from_secs(1));
    assert_eq!(limiter.take("j").unwrap().state, PeriodState::Allowed);
    let _ = limiter.snapshot(); // a snapshot publishes too
    assert_eq!(rec.decisions("sms", "memory", "allowed"), 3);
    assert_eq!(rec.decisions("sms", "memory", "limited"), 2);
    assert_eq!(rec.decisions("sms", "memory", "unavailable"), 0);
    assert_memory_series(&rec, "sms", "period");
    assert_eq!(rec.counters().len(), 3);
}

#[test]
fn default_names_are_the_builders() {
    let rec = Recorded::new();
    let (token, period) = rec.build(|| {
        (
            TokenLimiter::builder(Rate::per_second(10), 2)
                .build()
                .unwrap(),
            PeriodLimiter::builder(2, Duration::from_secs(1))
                .build()
                .unwrap(),
        )
    });
    assert_eq!(
        (token.name(), period.name()),
        ("token-limiter", "period-limiter")
    );
    assert!(token.allow());
    assert!(period.take("k").unwrap().is_allowed());
    token.publish_metrics();
    period.publish_metrics();
    assert_memory_series(&rec, "token-limiter", "token");
    assert_memory_series(&rec, "period-limiter", "period");
    assert_eq!(rec.decisions("token-limiter", "memory", "allowed"), 1);
    assert_eq!(rec.decisions("period-limiter", "memory", "allowed"), 1);
}

/// A thousand keys are still one series per outcome: no key is a label value, and every
/// label value comes from the fixed sets or the limiter's name.
#[test]
fn keys_never_become_label_values() {
    let rec = Recorded::new();
    let clock = ManualClock::new();
    let (token, period) = rec.build(|| {
        (
            TokenLimiter::builder(Rate::per_second(1), 1)
                .name("per-ip")
                .build_with_clock(clock.clone())
                .unwrap(),
            PeriodLimiter::builder(1, Duration::from_secs(60))
                .name("per-user")
                .build_with_clock(clock.clone())
                .unwrap(),
        )
    });
    const KEYS: u64 = 1_000;
    for i in 0..KEYS {
        let key = format!("key-{i}");
        // Twice each: one grant, one refusal.
        assert!(token.allow_key(&key));
        assert!(!token.allow_key(&key));
        assert!(period.take(&key).unwrap().is_allowed());
        assert!(!period.take(&key).unwrap().is_allowed());
    }
    assert_eq!(token.len(), KEYS as usize);
    token.publish_metrics();
    period.publish_metrics();
    let counters = rec.counters();
    assert_eq!(counters.len(), 6, "{counters:#?}");
    for (metric, labels) in counters.keys() {
        assert_eq!(metric, DECISIONS);
        for (k, v) in labels {
            let fixed = match k.as_str() {
                "name" => ["per-ip", "per-user"].contains(&v.as_str()),
                "kind" => ["token", "period"].contains(&v.as_str()),
                "outcome" => OUTCOMES.contains(&v.as_str()),
                "backend" => v == "memory",
                _ => false,
            };
            assert!(fixed, "label {k}={v}");
        }
    }
    for name in ["per-ip", "per-user"] {
        assert_eq!(rec.decisions(name, "memory", "allowed"), KEYS);
        assert_eq!(rec.decisions(name, "memory", "limited"), KEYS);
    }
}

/// Two limiters with their own names have their own series.
#[test]
fn each_name_has_its_own_series() {
    let rec = Recorded::new();
    let (a, b) = rec.build(|| {
        let build = |name| {
            TokenLimiter::builder(Rate::per_second(1), 1)
                .name(name)
                .build_with_clock(ManualClock::new())
                .unwrap()
        };
        (build("a"), build("b"))
    });
    assert!(a.allow());
    assert!(!a.allow());
    assert!(b.allow());
    a.publish_metrics();
    b.publish_metrics();
    assert_eq!(
        (
            rec.decisions("a", "memory", "allowed"),
            rec.decisions("a", "memory", "limited")
        ),
        (1, 1)
    );
    assert_eq!(
        (
            rec.decisions("b", "memory", "allowed"),
            rec.decisions("b", "memory", "limited")
        ),
        (1, 0)
    );
}

#[derive(Debug, Clone)]
enum Op {
    Token {
        key: Option<u8>,
        n: u32,
        via_async: bool,
    },
    Period {
        key: u8,
        via_async: bool,
    },
    Advance(u64),
    Sweep,
}

const BURST: u32 = 3;

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            // n up to burst + 1: some requests never fit. Five keys, three slots: some
            // new keys meet a full table.
            5 => (prop::option::of(0u8..5), 1..=BURST + 1, any::<bool>())
                .prop_map(|(key, n, via_async)| Op::Token { key, n, via_async }),
            4 => (0u8..5, any::<bool>()).prop_map(|(key, via_async)| Op::Period { key, via_async }),
            2 => (0u64..1_500).prop_map(Op::Advance),
            1 => Just(Op::Sweep),
        ],
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every answer is counted once, under the outcome the API returned.
    #[test]
    fn counters_equal_the_answers(ops in ops()) {
        let rec = Recorded::new();
        let clock = ManualClock::new();
        let (token, period) = rec.build(|| {
            (
                TokenLimiter::builder(Rate::per_second(2), BURST)
                    .name("t")
                    .max_keys(3)
                    .build_with_clock(clock.clone())
                    .unwrap(),
                PeriodLimiter::builder(2, Duration::from_secs(1))
                    .name("p")
                    .max_keys(3)
                    .build_with_clock(clock.clone())
                    .unwrap(),
            )
        });
        let mut expected = std::collections::BTreeMap::<(&str, &str), u64>::new();
        let mut calls = 0;
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Token { key, n, via_async } => {
                    let key = key.map(|k| format!("k{k}"));
                    let r = match (&key, via_async) {
                        (None, false) => token.allow_n(n),
                        (None, true) => ready(token.allow_n_async(n)),
                        (Some(k), false) => token.allow_key_n(k, n),
                        (Some(k), true) => ready(token.allow_key_n_async(k, n)),
                    };
                    *expected.entry(("t", token_outcome(&r))).or_default() += 1;
                    calls += 1;
                }
                Op::Period { key, via_async } => {
                    let key = format!("k{key}");
                    let r = if via_async { ready(period.take_async(&key)) } else { period.take(&key) };
                    *expected.entry(("p", period_outcome(&r))).or_default() += 1;
                    calls += 1;
                }
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                }
                Op::Sweep => {
                    token.evict_idle();
                    period.evict_idle();
                }
            }
            // Now and then mid-run (the snapshot swaps the recorder's counts: the totals
            // must still add up).
            if i % 37 == 0 || i + 1 == ops.len() {
                token.publish_metrics();
                period.publish_metrics();
                for name in ["t", "p"] {
                    for outcome in OUTCOMES {
                        prop_assert_eq!(
                            rec.decisions(name, "memory", outcome),
                            expected.get(&(name, outcome)).copied().unwrap_or(0),
                            "{} {} after op {}", name, outcome, i
                        );
                    }
                }
            }
        }
        prop_assert_eq!(rec.sum(DECISIONS, &[]), calls);
        prop_assert_eq!(rec.counters().len(), 6);
    }
}
