//! The tower integration on a manual clock: each key gets its burst and is refused with
//! the time to wait, refusals never reach the inner service and never touch readiness,
//! clones share one limiter, keyless requests follow the chosen `MissingKey`, inner errors
//! come back unchanged, `Retry-After` is rounded up.
#![cfg(feature = "tower")]

#[cfg(feature = "redis")]
mod support;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use keel_limiter::tower::{
    KeyExtractor, LimitError, MissingKey, RateLimitLayer, RateLimitService, Unkeyed, find_denied,
};
use keel_limiter::{Denied, Rate, TokenLimiter};
use keel_timex::ManualClock;
use tower::{Layer, Service, ServiceExt};

/// The refill interval of the test limiter (10 tokens a second).
const TOKEN: Duration = Duration::from_millis(100);
/// Its burst.
const BURST: u32 = 2;

/// A request: the client it comes from (the key), and whether the backend fails it.
#[derive(Debug, Clone, Copy)]
struct Req {
    client: Option<&'static str>,
    fail: bool,
}

fn from(client: &'static str) -> Req {
    Req {
        client: Some(client),
        fail: false,
    }
}

const KEYLESS: Req = Req {
    client: None,
    fail: false,
};

fn by_client(req: &Req) -> Option<String> {
    req.client.map(str::to_owned)
}

/// The backend's own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fault;

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("backend failed")
    }
}

impl std::error::Error for Fault {}

const PENDING: u8 = 0;
const READY: u8 = 1;
const BROKEN: u8 = 2;

/// The inner service: answers with the request's client (or fails it), counting the calls
/// that reach it; the test sets its readiness (shared by its clones).
#[derive(Debug, Clone)]
struct Backend {
    calls: Arc<AtomicUsize>,
    readiness: Arc<AtomicU8>,
}

impl Backend {
    fn new() -> Backend {
        Backend {
            calls: Arc::new(AtomicUsize::new(0)),
            readiness: Arc::new(AtomicU8::new(READY)),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Service<Req> for Backend {
    type Response = &'static str;
    type Error = Fault;
    type Future = std::future::Ready<Result<&'static str, Fault>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        match self.readiness.load(Ordering::Relaxed) {
            PENDING => Poll::Pending,
            READY => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(Fault)),
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.calls.fetch_add(1, Ordering::Relaxed);
        std::future::ready(if req.fail {
            Err(Fault)
        } else {
            Ok(req.client.unwrap_or("anonymous"))
        })
    }
}

type Answer = Result<&'static str, LimitError<Fault>>;

/// A limiter of 10 tokens a second in bursts of 2 on a manual clock, and a backend.
struct Rig {
    clock: ManualClock,
    limiter: TokenLimiter<ManualClock>,
    backend: Backend,
}

impl Rig {
    fn new() -> Rig {
        let clock = ManualClock::new();
        let limiter = TokenLimiter::builder(Rate::per_second(10), BURST)
            .build_with_clock(clock.clone())
            .expect("valid configuration");
        Rig {
            clock,
            limiter,
            backend: Backend::new(),
        }
    }

    fn layer(&self) -> RateLimitLayer<fn(&Req) -> Option<String>, ManualClock> {
        RateLimitLayer::new(
            self.limiter.clone(),
            by_client as fn(&Req) -> Option<String>,
        )
    }
}

/// Drives `svc` to readiness and calls it; the in-memory decision and the backend answer
/// at the first poll.
fn send<S: Service<Req>>(svc: &mut S, req: Req) -> Result<S::Response, S::Error> {
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(ready) = svc.poll_ready(&mut cx) else {
        panic!("the service is not ready");
    };
    ready?;
    let mut fut = std::pin::pin!(svc.call(req));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(answer) => answer,
        Poll::Pending => panic!("not answered at the first poll"),
    }
}

fn limited(retry_after: Duration) -> Answer {
    Err(LimitError::Limited(Denied::Limited { retry_after }))
}

#[test]
fn each_key_gets_its_burst_then_waits_for_its_tokens() {
    let rig = Rig::new();
    let mut svc = rig.layer().layer(rig.backend.clone());

    for client in ["alice", "bob"] {
        for _ in 0..BURST {
            assert_eq!(send(&mut svc, from(client)), Ok(client));
        }
    }
    for client in ["alice", "bob"] {
        let err = send(&mut svc, from(client)).unwrap_err();
        assert_eq!(Err(err.clone()), limited(TOKEN), "{client}");
        assert!(err.is_limited());
        assert_eq!(err.http_status(), Some(429));
        assert_eq!(err.retry_after_secs(), Some(1));
        assert_eq!(err.to_string(), "rate limited: retry after 100ms");
    }
    assert_eq!(rig.backend.calls(), 4, "refusals reached the backend");

    // Halfway to the next token the wait is halved; refusals took nothing.
    rig.clock.advance(TOKEN / 2);
    assert_eq!(send(&mut svc, from("alice")), limited(TOKEN / 2));
    rig.clock.advance(TOKEN / 2);
    for client in ["alice", "bob"] {
        assert_eq!(send(&mut svc, from(client)), Ok(client));
        assert_eq!(send(&mut svc, from(client)), limited(TOKEN));
    }
    assert_eq!(rig.backend.calls(), 6);

    // A client seen for the first time starts with a full bucket.
    assert_eq!(send(&mut svc, from("carol")), Ok("carol"));
}

#[test]
fn the_cost_is_taken_per_request_and_a_cost_above_the_burst_never_fits() {
    let rig = Rig::new();
    let mut whole = rig.layer().cost(BURST).layer(rig.backend.clone());
    assert_eq!(send(&mut whole, from("alice")), Ok("alice"));
    assert_eq!(send(&mut whole, from("alice")), limited(TOKEN * BURST));
    assert_eq!(rig.limiter.key_tokens("alice"), 0.0);

    let mut too_big = rig.layer().cost(BURST + 1).layer(rig.backend.clone());
    let err = send(&mut too_big, from("bob")).unwrap_err();
    let never = Denied::NeverFits {
        n: BURST + 1,
        burst: BURST,
    };
    assert_eq!(err, LimitError::Limited(never));
    assert_eq!(err.http_status(), Some(429));
    assert_eq!(err.retry_after_secs(), None, "no wait helps");
    assert_eq!(rig.backend.calls(), 1);
    assert_eq!(rig.limiter.key_tokens("bob"), f64::from(BURST));
}

#[test]
#[should_panic(expected = "at least one token")]
fn a_cost_of_zero_is_refused_at_construction() {
    let _ = Rig::new().layer().cost(0);
}

#[tokio::test(flavor = "current_thread")]
async fn clones_of_the_layer_and_the_service_share_one_limiter() {
    let rig = Rig::new();
    let layer = rig.layer();
    let a = layer.layer(rig.backend.clone());
    let b = a.clone();
    let c = layer.clone().layer(rig.backend.clone());

    assert_eq!(a.oneshot(from("alice")).await, Ok("alice"));
    assert_eq!(b.clone().oneshot(from("alice")).await, Ok("alice"));
    assert_eq!(c.clone().oneshot(from("alice")).await, limited(TOKEN));
    assert_eq!(layer.limiter().key_tokens("alice"), 0.0);
    assert_eq!(c.limiter().key_tokens("alice"), 0.0);

    // Tokens taken outside the layer count too.
    rig.limiter.allow_key_n("bob", BURST).unwrap();
    assert_eq!(b.oneshot(from("bob")).await, limited(TOKEN));
    assert_eq!(rig.backend.calls(), 2);
}

#[test]
fn poll_ready_is_the_inner_readiness_while_refusing() {
    let rig = Rig::new();
    let mut svc = RateLimitService::new(rig.backend.clone(), rig.limiter.clone(), by_client);
    let poll_ready = |svc: &mut RateLimitService<_, _, _>| {
        Service::<Req>::poll_ready(svc, &mut Context::from_waker(Waker::noop()))
    };

    // Backpressure is kept whatever the buckets hold.
    rig.backend.readiness.store(PENDING, Ordering::Relaxed);
    assert!(poll_ready(&mut svc).is_pending());
    rig.limiter.allow_key_n("alice", BURST).unwrap();
    assert!(poll_ready(&mut svc).is_pending());

    // Refusing does not make a ready service unready or failed.
    rig.backend.readiness.store(READY, Ordering::Relaxed);
    for _ in 0..3 {
        assert!(matches!(poll_ready(&mut svc), Poll::Ready(Ok(()))));
        assert_eq!(send(&mut svc, from("alice")), limited(TOKEN));
    }
    assert!(matches!(poll_ready(&mut svc), Poll::Ready(Ok(()))));
    assert_eq!(rig.backend.calls(), 0);

    // The inner service's own readiness error comes through as it is.
    rig.backend.readiness.store(BROKEN, Ordering::Relaxed);
    assert!(matches!(
        poll_ready(&mut svc),
        Poll::Ready(Err(LimitError::Inner(Fault)))
    ));
}

#[test]
fn inner_errors_come_back_unchanged() {
    let rig = Rig::new();
    let mut svc = rig.layer().layer(rig.backend.clone());
    let failing = Req {
        fail: true,
        ..from("alice")
    };

    let err = send(&mut svc, failing).unwrap_err();
    assert_eq!(err, LimitError::Inner(Fault));
    assert!(!err.is_limited());
    assert_eq!(err.denied(), None);
    assert_eq!(err.http_status(), None);
    assert_eq!(err.retry_after_secs(), None);
    assert_eq!(err.to_string(), "backend failed");
    assert_eq!(err.inner(), Some(&Fault));
    assert_eq!(err.clone().into_inner(), Some(Fault));
    // The call was admitted: its token is spent, whatever the backend answered.
    assert_eq!(rig.limiter.key_tokens("alice"), f64::from(BURST - 1));

    // Boxed (as a tower `Timeout` above would), it keeps its source and holds no refusal.
    let boxed: tower::BoxError = Box::new(err);
    let source = std::error::Error::source(&*boxed).expect("a source");
    assert_eq!(source.downcast_ref::<Fault>(), Some(&Fault));
    assert_eq!(find_denied(&*boxed), None);

    // A boxed refusal is found again.
    send(&mut svc, from("alice")).unwrap();
    let refused: tower::BoxError = Box::new(send(&mut svc, from("alice")).unwrap_err());
    let retry_after = TOKEN;
    assert_eq!(
        find_denied(&*refused),
        Some(Denied::Limited { retry_after })
    );
    assert_eq!(
        LimitError::<Fault>::from(Denied::Unavailable).http_status(),
        Some(503)
    );
}

#[test]
fn retry_after_secs_rounds_up_to_whole_seconds_and_at_least_one() {
    let secs = |denied: Denied| LimitError::<Fault>::Limited(denied).retry_after_secs();
    let limited = |retry_after| secs(Denied::Limited { retry_after });
    let ms = Duration::from_millis;
    for (wait, header) in [
        (Duration::ZERO, 1),
        (Duration::from_nanos(1), 1),
        (ms(999), 1),
        (ms(1000), 1),
        (ms(1000) + Duration::from_nanos(1), 2),
        (ms(2500), 3),
        (Duration::from_secs(60), 60),
    ] {
        assert_eq!(limited(wait), Some(header), "{wait:?}");
    }
    let key_table_full = Denied::KeyCapacity {
        retry_after: ms(1200),
    };
    assert_eq!(secs(key_table_full), Some(2));
    assert_eq!(secs(Denied::NeverFits { n: 3, burst: 2 }), None);
    assert_eq!(secs(Denied::Unavailable), None);
}

#[test]
fn keyless_requests_share_the_unkeyed_bucket_by_default() {
    let rig = Rig::new();
    let mut svc = rig.layer().layer(rig.backend.clone());
    for _ in 0..BURST {
        assert_eq!(send(&mut svc, KEYLESS), Ok("anonymous"));
    }
    assert_eq!(send(&mut svc, KEYLESS), limited(TOKEN));
    assert_eq!(rig.limiter.tokens(), 0.0);
    // Keyed clients are not affected.
    assert_eq!(send(&mut svc, from("alice")), Ok("alice"));
}

#[test]
fn keyless_requests_can_be_left_unlimited() {
    let rig = Rig::new();
    let mut svc = rig
        .layer()
        .missing_key(MissingKey::Allow)
        .layer(rig.backend.clone());
    for _ in 0..10 {
        assert_eq!(send(&mut svc, KEYLESS), Ok("anonymous"));
    }
    assert_eq!(
        rig.limiter.tokens(),
        f64::from(BURST),
        "the limiter was asked"
    );
    // Keyed clients are still limited.
    for _ in 0..BURST {
        assert_eq!(send(&mut svc, from("alice")), Ok("alice"));
    }
    assert_eq!(send(&mut svc, from("alice")), limited(TOKEN));
    assert_eq!(rig.backend.calls(), 12);
}

#[test]
fn an_unkeyed_layer_limits_the_whole_service() {
    let rig = Rig::new();
    let layer = RateLimitLayer::unkeyed(rig.limiter.clone());
    let mut svc = layer.layer(rig.backend.clone());
    assert_eq!(send(&mut svc, from("alice")), Ok("alice"));
    assert_eq!(send(&mut svc, from("bob")), Ok("bob"));
    assert_eq!(send(&mut svc, from("carol")), limited(TOKEN));
    assert_eq!(KeyExtractor::<Req>::key(&Unkeyed, &from("alice")), None);

    // Unkeyed and keyless-allowed: nothing is limited.
    let mut open = layer
        .missing_key(MissingKey::Allow)
        .layer(rig.backend.clone());
    assert_eq!(send(&mut open, from("carol")), Ok("carol"));
}

#[test]
fn layers_services_and_futures_are_send_sync_clone_and_debug() {
    fn send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
    fn is_send<T: Send>(_: &T) {}

    let rig = Rig::new();
    let layer = RateLimitLayer::new(rig.limiter.clone(), |req: &Req| by_client(req)).cost(1);
    send_sync_clone(&layer);
    let mut svc = layer.layer(rig.backend.clone());
    send_sync_clone(&svc);
    let admitted = svc.call(from("alice"));
    is_send(&admitted);
    assert!(format!("{layer:?}").contains("RateLimitLayer"));
    assert!(format!("{svc:?}").contains("RateLimitService"));
    assert!(format!("{admitted:?}").contains("called"));

    rig.limiter.allow_key_n("alice", 1).unwrap();
    let refused = svc.call(from("alice"));
    assert!(format!("{refused:?}").contains("refused"), "{refused:?}");
}

/// On Redis the decision is a script awaited in the response future, and the inner
/// service is called after it.
#[cfg(feature = "redis")]
mod on_redis {
    use keel_limiter::FailurePolicy;
    use keel_limiter::redis::RedisStore;

    use super::*;
    use crate::support;

    fn layer(
        store: RedisStore,
        policy: FailurePolicy,
    ) -> RateLimitLayer<fn(&Req) -> Option<String>> {
        // One token a minute: the refusal below cannot be undone by a slow machine.
        let limiter = TokenLimiter::builder(Rate::per_minute(1), BURST)
            .redis(store, "tower")
            .failure_policy(policy)
            .build()
            .unwrap();
        RateLimitLayer::new(limiter, by_client as fn(&Req) -> Option<String>)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_decision_is_awaited_then_the_ready_service_called() {
        let server = crate::redis_or_skip!();
        let layer = layer(support::store(&server.url()), FailurePolicy::FailClosed);
        let backend = Backend::new();
        let mut svc = layer.layer(backend.clone());

        for called in 0..BURST as usize {
            let fut = svc.ready().await.unwrap().call(from("alice"));
            assert!(format!("{fut:?}").contains("deciding"), "{fut:?}");
            assert_eq!(backend.calls(), called, "called before the decision");
            assert_eq!(fut.await, Ok("alice"));
        }
        let err = svc
            .ready()
            .await
            .unwrap()
            .call(from("alice"))
            .await
            .unwrap_err();
        assert!(
            matches!(err.denied(), Some(Denied::Limited { .. })),
            "{err:?}"
        );
        // Within the minute the next token takes, in whole seconds (rounded up).
        let secs = err
            .retry_after_secs()
            .expect("a refusal says when to retry");
        assert!((1..=60).contains(&secs), "{secs}");
        assert_eq!(
            svc.ready().await.unwrap().call(from("bob")).await,
            Ok("bob")
        );
        assert_eq!(backend.calls(), 3);
        assert_eq!(
            layer.limiter().snapshot().policy_decisions,
            0,
            "Redis decided"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_redis_that_fails_closed_answers_503() {
        let url = format!("redis://127.0.0.1:{}", support::free_port());
        let layer = layer(RedisStore::open(&url).unwrap(), FailurePolicy::FailClosed);
        let backend = Backend::new();
        let err = layer
            .layer(backend.clone())
            .oneshot(from("alice"))
            .await
            .unwrap_err();
        assert_eq!(err, LimitError::Limited(Denied::Unavailable));
        assert_eq!(err.http_status(), Some(503));
        assert_eq!(err.retry_after_secs(), None);
        assert_eq!(backend.calls(), 0);
    }
}
