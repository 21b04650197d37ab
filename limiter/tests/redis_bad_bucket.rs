//! One bad token bucket never takes the limiter off Redis. A key written by someone else
//! (another type, a hash whose fields are not numbers, missing, negative or not finite)
//! gets the failure policy's answer for its own requests; the healthy keys' requests,
//! nine in ten, keep being decided on Redis (their buckets in Redis move), the limiter
//! never switches, and the error counters move by exactly the number of bad requests.
//! Each fault with `FailClosed`, `FailOpen` and `Rescue`, sync and async, on a private
//! redis-server.
#![cfg(feature = "redis")]

mod faults;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use faults::{Mode, POLICIES, allow, assert_key_errors, dump, pttl, token_stats};
use keel_limiter::redis::RedisErrorKind;
use keel_limiter::{Denied, FailurePolicy, Rate, TokenLimiter};

const BURST: u32 = 50;
/// Requests per policy; every tenth is for the bad key.
const REQUESTS: usize = 100;
const BAD: u64 = (REQUESTS / 10) as u64;
/// Tokens per bad-key request: the rescue's own bucket (burst 50) grants 5 of the 10.
const BAD_N: u32 = 10;

/// Writes the bad value at the given Redis key.
type Write = fn(&mut redis::Connection, &str);

async fn one_bad_bucket(mode: Mode, fault: &str, kind: RedisErrorKind, write: Write) {
    let server = redis_or_skip!();
    let mut c = server.connection();
    for policy in POLICIES {
        let prefix = format!("{fault}-{policy:?}");
        let bad = format!("{{{prefix}:bad}}");
        write(&mut c, &bad);
        let before = dump(&mut c, &bad);
        assert!(before.is_some());
        // One token an hour: the buckets do not visibly refill during the test.
        let l = TokenLimiter::builder(Rate::new(1, Duration::from_secs(3600)), BURST)
            .redis(support::store(&server.url()), prefix.as_str())
            .failure_policy(policy)
            .build()
            .unwrap();

        let mut bad_answers = Vec::new();
        let mut taken: HashMap<String, u32> = HashMap::new();
        for i in 0..REQUESTS {
            if i % 10 == 0 {
                bad_answers.push(allow(&l, mode, "bad", BAD_N).await);
            } else {
                let key = format!("h{}", i % 3);
                assert_eq!(
                    allow(&l, mode, &key, 1).await,
                    Ok(()),
                    "{policy:?}: healthy key {key}, request {i}"
                );
                *taken.entry(key).or_default() += 1;
            }
        }

        // The bad key's requests got the policy's answer, and only those.
        match policy {
            FailurePolicy::FailClosed => {
                assert_eq!(bad_answers, vec![Err(Denied::Unavailable); BAD as usize]);
            }
            FailurePolicy::FailOpen => assert_eq!(bad_answers, vec![Ok(()); BAD as usize]),
            FailurePolicy::Rescue => {
                // The rescue's bucket: 50 tokens, 10 a request, then refusals that name
                // the hours until 10 tokens are back.
                assert_eq!(bad_answers[..5], [Ok(()); 5], "{bad_answers:?}");
                for a in &bad_answers[5..] {
                    assert!(
                        matches!(a, Err(Denied::Limited { retry_after }) if *retry_after > Duration::from_secs(3600)),
                        "{bad_answers:?}"
                    );
                }
            }
        }
        let snapshot = l.snapshot();
        assert_eq!(snapshot.policy_decisions, BAD, "{policy:?}");
        // Only the bad key ever reached the rescue's memory.
        let rescued = usize::from(policy == FailurePolicy::Rescue);
        assert_eq!(snapshot.keys, rescued, "{policy:?}");
        assert_key_errors(&token_stats(&l), kind, BAD, REQUESTS as u64 - BAD);

        // The healthy buckets in Redis moved by exactly what was taken.
        assert_eq!(taken.values().sum::<u32>(), 90);
        for (key, n) in &taken {
            let redis_key = format!("{{{prefix}:{key}}}");
            let tokens: f64 = redis::cmd("HGET")
                .arg(&redis_key)
                .arg("tokens")
                .query(&mut c)
                .unwrap();
            let expected = f64::from(BURST - n);
            assert!(
                (expected..expected + 0.5).contains(&tokens),
                "{policy:?} {redis_key}: {tokens} tokens, {n} taken"
            );
            assert!(pttl(&mut c, &redis_key) > 0);
        }
        // The bad key is left as it was: the limiter never writes what it did not write.
        assert_eq!(dump(&mut c, &bad), before, "{policy:?}: {bad} changed");
    }
}

fn wrong_type(c: &mut redis::Connection, key: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("not a bucket")
        .query(c)
        .unwrap();
}

fn hset(c: &mut redis::Connection, key: &str, fields: &[(&str, &str)]) {
    let mut cmd = redis::cmd("HSET");
    cmd.arg(key);
    for (f, v) in fields {
        cmd.arg(*f).arg(*v);
    }
    let _: () = cmd.query(c).unwrap();
}

/// A plausible `ts` (µs of the server's clock), so only the field under test is wrong.
fn now_us(c: &mut redis::Connection) -> String {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    (s * 1_000_000 + us).to_string()
}

fn non_numeric(c: &mut redis::Connection, key: &str) {
    let ts = now_us(c);
    hset(c, key, &[("tokens", "many"), ("ts", &ts)]);
}

fn missing_field(c: &mut redis::Connection, key: &str) {
    hset(c, key, &[("tokens", "3")]);
}

fn negative(c: &mut redis::Connection, key: &str) {
    let ts = now_us(c);
    hset(c, key, &[("tokens", "-5"), ("ts", &ts)]);
}

/// `-inf` tokens made the script answer a wait of -2^63 µs; NaN refilled the bucket.
fn non_finite(c: &mut redis::Connection, key: &str) {
    hset(c, key, &[("tokens", "-inf"), ("ts", "nan")]);
}

#[tokio::test]
async fn wrong_type_sync() {
    one_bad_bucket(Mode::Sync, "wrong", RedisErrorKind::WrongType, wrong_type).await;
}

#[tokio::test]
async fn wrong_type_async() {
    one_bad_bucket(Mode::Async, "wrong", RedisErrorKind::WrongType, wrong_type).await;
}

#[tokio::test]
async fn non_numeric_field_sync() {
    one_bad_bucket(
        Mode::Sync,
        "nan-field",
        RedisErrorKind::UnexpectedReply,
        non_numeric,
    )
    .await;
}

#[tokio::test]
async fn non_numeric_field_async() {
    one_bad_bucket(
        Mode::Async,
        "nan-field",
        RedisErrorKind::UnexpectedReply,
        non_numeric,
    )
    .await;
}

#[tokio::test]
async fn missing_field_sync() {
    one_bad_bucket(
        Mode::Sync,
        "missing",
        RedisErrorKind::UnexpectedReply,
        missing_field,
    )
    .await;
}

#[tokio::test]
async fn missing_field_async() {
    one_bad_bucket(
        Mode::Async,
        "missing",
        RedisErrorKind::UnexpectedReply,
        missing_field,
    )
    .await;
}

#[tokio::test]
async fn negative_field_sync() {
    one_bad_bucket(
        Mode::Sync,
        "negative",
        RedisErrorKind::UnexpectedReply,
        negative,
    )
    .await;
}

#[tokio::test]
async fn negative_field_async() {
    one_bad_bucket(
        Mode::Async,
        "negative",
        RedisErrorKind::UnexpectedReply,
        negative,
    )
    .await;
}

#[tokio::test]
async fn non_finite_fields_sync() {
    one_bad_bucket(
        Mode::Sync,
        "infinite",
        RedisErrorKind::UnexpectedReply,
        non_finite,
    )
    .await;
}

#[tokio::test]
async fn non_finite_fields_async() {
    one_bad_bucket(
        Mode::Async,
        "infinite",
        RedisErrorKind::UnexpectedReply,
        non_finite,
    )
    .await;
}

/// Lease mode takes its batches through the same script: a bad key's lease request gets
/// the policy's answer, the healthy keys keep leasing from Redis.
#[tokio::test]
async fn a_bad_key_in_lease_mode() {
    let server = redis_or_skip!();
    let mut c = server.connection();
    wrong_type(&mut c, "{lease:bad}");
    let l = TokenLimiter::builder(Rate::new(1, Duration::from_secs(3600)), BURST)
        .redis(support::store(&server.url()), "lease")
        .lease(10, Duration::from_secs(60))
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    for mode in [Mode::Sync, Mode::Async] {
        for _ in 0..5 {
            assert_eq!(allow(&l, mode, "bad", 1).await, Err(Denied::Unavailable));
            assert_eq!(allow(&l, mode, "good", 1).await, Ok(()));
        }
    }
    // Ten tokens spent from one lease of ten: one round trip for the healthy key, ten for
    // the bad one (nothing leased, each asks again).
    assert_key_errors(&token_stats(&l), RedisErrorKind::WrongType, 10, 1);
    let tokens: f64 = redis::cmd("HGET")
        .arg("{lease:good}")
        .arg("tokens")
        .query(&mut c)
        .unwrap();
    assert!((40.0..40.5).contains(&tokens), "{tokens}");
}
