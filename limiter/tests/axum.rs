//! Refusals as axum responses: a real axum `Router` behind the rate limiter and
//! keel-shedder's layer, stacked in both orders, answered by the one-line
//! `HandleErrorLayer` or by the layers themselves (`respond_http`). The limiter refuses on a
//! manual clock, the shedder never does (its CPU is held at 0): 429 with `Retry-After`,
//! 200 otherwise, and a refused request never reaches the handler.
#![cfg(all(feature = "axum", not(loom)))]

#[cfg(feature = "redis")]
mod support;

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Router};
use keel_limiter::tower::{LimitError, RateLimitLayer, denied_response};
use keel_limiter::{Denied, Rate, TokenLimiter};
use keel_shedder::tower::{ShedError, ShedderLayer};
use keel_shedder::{Shedder, cpu::ManualCpu};
use keel_timex::ManualClock;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// The refill interval of the test limiter (10 tokens a second).
const TOKEN: Duration = Duration::from_millis(100);
/// Its burst.
const BURST: u32 = 2;

/// Which keel layer is the outer one.
#[derive(Debug, Clone, Copy)]
enum Order {
    LimiterOuter,
    ShedderOuter,
}

/// Who answers a refusal.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// A `HandleErrorLayer` above both, whose handler returns the error as it is.
    OneLineHandler,
    /// The layers themselves (`respond_http`): no `HandleErrorLayer`.
    Layers,
}

const STACKS: [(Order, Answer); 4] = [
    (Order::LimiterOuter, Answer::OneLineHandler),
    (Order::ShedderOuter, Answer::OneLineHandler),
    (Order::LimiterOuter, Answer::Layers),
    (Order::ShedderOuter, Answer::Layers),
];

/// The client a request comes from, in its `x-client` header.
fn by_client(req: &Request) -> Option<String> {
    let client = req.headers().get("x-client")?.to_str().ok()?;
    Some(client.to_owned())
}

/// A limiter of 10 tokens a second in bursts of 2 per client on a manual clock, a shedder
/// whose CPU stays at 0 (it never refuses), and a count of the handler's calls.
struct Rig {
    clock: ManualClock,
    limiter: TokenLimiter<ManualClock>,
    shedder: Shedder<ManualClock>,
    calls: Arc<AtomicUsize>,
}

impl Rig {
    fn new() -> Rig {
        let clock = ManualClock::new();
        let limiter = TokenLimiter::builder(Rate::per_second(10), BURST)
            .build_with_clock(clock.clone())
            .expect("valid limiter");
        let shedder = Shedder::builder()
            .cpu_source(ManualCpu::new(0))
            .build_with_clock(clock.clone())
            .expect("valid shedder");
        Rig {
            clock,
            limiter,
            shedder,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// A router whose one route counts its calls, behind both keel layers.
    fn app(
        &self,
        order: Order,
        answer: Answer,
        limit: RateLimitLayer<Keyed, ManualClock>,
    ) -> Router {
        let calls = Arc::clone(&self.calls);
        let router = Router::new().route(
            "/",
            get(move || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { "hello" }
            }),
        );
        let shed = ShedderLayer::new(self.shedder.clone());
        match (order, answer) {
            (Order::LimiterOuter, Answer::OneLineHandler) => router.layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(
                        |e: LimitError<ShedError<Infallible>>| async move { e },
                    ))
                    .layer(limit)
                    .layer(shed),
            ),
            (Order::ShedderOuter, Answer::OneLineHandler) => router.layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(
                        |e: ShedError<LimitError<Infallible>>| async move { e },
                    ))
                    .layer(shed)
                    .layer(limit),
            ),
            (Order::LimiterOuter, Answer::Layers) => router.layer(
                ServiceBuilder::new()
                    .layer(limit.respond_http())
                    .layer(shed.respond_http()),
            ),
            (Order::ShedderOuter, Answer::Layers) => router.layer(
                ServiceBuilder::new()
                    .layer(shed.respond_http())
                    .layer(limit.respond_http()),
            ),
        }
    }

    /// The limiter's layer, keyed by client.
    fn limit(&self) -> RateLimitLayer<Keyed, ManualClock> {
        RateLimitLayer::new(self.limiter.clone(), by_client as Keyed)
    }
}

type Keyed = fn(&Request) -> Option<String>;

fn from(client: &str) -> Request {
    Request::get("/")
        .header("x-client", client)
        .body(Body::empty())
        .expect("valid request")
}

/// The status and `Retry-After` header of `client`'s request.
async fn send(app: &Router, client: &str) -> (StatusCode, Option<String>) {
    let response = app.clone().oneshot(from(client)).await.expect("infallible");
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().expect("ascii").to_owned());
    (response.status(), retry_after)
}

const OK: (StatusCode, Option<String>) = (StatusCode::OK, None);

fn too_many(secs: &str) -> (StatusCode, Option<String>) {
    (StatusCode::TOO_MANY_REQUESTS, Some(secs.to_owned()))
}

#[tokio::test(flavor = "current_thread")]
async fn a_refusal_is_429_with_retry_after_in_every_stack() {
    for (order, answer) in STACKS {
        let rig = Rig::new();
        let app = rig.app(order, answer, rig.limit());
        let stack = format!("{order:?}, {answer:?}");

        for _ in 0..BURST {
            assert_eq!(send(&app, "alice").await, OK, "{stack}");
        }
        assert_eq!(send(&app, "alice").await, too_many("1"), "{stack}");
        assert_eq!(
            rig.calls(),
            2,
            "{stack}: the refused request reached the handler"
        );

        // Another client has its own bucket; alice's refills after the wait.
        assert_eq!(send(&app, "bob").await, OK, "{stack}");
        rig.clock.advance(TOKEN);
        assert_eq!(send(&app, "alice").await, OK, "{stack}");
        assert_eq!(rig.calls(), 4, "{stack}");
        assert_eq!(rig.shedder.snapshot().dropped, 0, "{stack}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_refusal_body_says_why_and_retry_after_is_rounded_up() {
    for (order, answer) in STACKS {
        // One token every 1.5 s: the second request waits 1.5 s, announced as 2.
        let clock = ManualClock::new();
        let mut rig = Rig::new();
        rig.limiter = TokenLimiter::builder(Rate::new(2, Duration::from_secs(3)), 1)
            .build_with_clock(clock)
            .expect("valid limiter");
        let app = rig.app(order, answer, rig.limit());
        let stack = format!("{order:?}, {answer:?}");

        assert_eq!(send(&app, "alice").await, OK, "{stack}");
        let refused = app.clone().oneshot(from("alice")).await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "{stack}");
        assert_eq!(refused.headers()[header::RETRY_AFTER], "2", "{stack}");
        assert_eq!(
            refused.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        let body = axum::body::to_bytes(refused.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"rate limited: retry after 1.5s", "{stack}");
        assert_eq!(rig.calls(), 1, "{stack}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_cost_above_the_burst_is_429_without_retry_after() {
    for (order, answer) in STACKS {
        let rig = Rig::new();
        let app = rig.app(order, answer, rig.limit().cost(BURST + 1));
        let stack = format!("{order:?}, {answer:?}");
        assert_eq!(
            send(&app, "alice").await,
            (StatusCode::TOO_MANY_REQUESTS, None),
            "{stack}"
        );
        assert_eq!(rig.calls(), 0, "{stack}");
    }
}

#[test]
fn denied_responses() {
    let cases = [
        (Denied::Limited { retry_after: TOKEN }, 429, Some("1")),
        (
            Denied::Limited {
                retry_after: Duration::from_secs(3),
            },
            429,
            Some("3"),
        ),
        (
            Denied::KeyCapacity {
                retry_after: Duration::from_millis(2001),
            },
            429,
            Some("3"),
        ),
        (Denied::NeverFits { n: 3, burst: 2 }, 429, None),
        (Denied::Unavailable, 503, Some("1")),
    ];
    for (denied, status, retry_after) in cases {
        let response = denied.into_response();
        assert_eq!(response.status(), status, "{denied:?}");
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap()),
            retry_after,
            "{denied:?}"
        );
        // The error answers as the refusal it holds.
        let error = LimitError::<Infallible>::Limited(denied).into_response();
        assert_eq!(error.status(), status, "{denied:?}");
    }
}

#[test]
fn an_inner_error_answers_as_it_does() {
    let inner = LimitError::Inner((StatusCode::IM_A_TEAPOT, "short and stout"));
    assert_eq!(inner.into_response().status(), StatusCode::IM_A_TEAPOT);
}

/// The backend's own error, for a stack with a fallible layer in between.
#[derive(Debug)]
struct Fault;

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("backend failed")
    }
}

impl std::error::Error for Fault {}

#[tokio::test(flavor = "current_thread")]
async fn denied_response_finds_the_refusal_in_a_boxed_error() {
    let rig = Rig::new();
    async fn handle(err: BoxError) -> Response {
        denied_response(&*err)
            .unwrap_or_else(|| (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response())
    }
    let calls = Arc::clone(&rig.calls);
    let app = Router::new()
        .route(
            "/",
            get(move || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { "hello" }
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle))
                .map_err(BoxError::from)
                .layer(rig.limit()),
        );
    for _ in 0..BURST {
        assert_eq!(send(&app, "alice").await, OK);
    }
    assert_eq!(send(&app, "alice").await, too_many("1"));
    assert_eq!(rig.calls(), 2);
    assert!(denied_response(&Fault).is_none());
}

/// In the responding mode the service's error is the inner service's, unchanged: from
/// its call and from its readiness.
#[tokio::test(flavor = "current_thread")]
async fn in_the_responding_mode_inner_errors_come_back_unchanged() {
    let rig = Rig::new();
    let calls = Arc::clone(&rig.calls);
    let backend = service_fn(move |req: Request| {
        calls.fetch_add(1, Ordering::Relaxed);
        let fail = req.headers().contains_key("x-fail");
        async move {
            if fail {
                Err(Fault)
            } else {
                Ok::<Response, Fault>("hello".into_response())
            }
        }
    });
    let mut svc = rig.limit().respond_http().layer(backend);

    let failing = Request::get("/")
        .header("x-client", "alice")
        .header("x-fail", "1")
        .body(Body::empty())
        .unwrap();
    let err: Fault = svc.ready().await.unwrap().call(failing).await.unwrap_err();
    assert_eq!(err.to_string(), "backend failed");
    let ok = svc
        .ready()
        .await
        .unwrap()
        .call(from("alice"))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let refused = svc
        .ready()
        .await
        .unwrap()
        .call(from("alice"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(rig.calls(), 2);

    // A readiness error is the inner service's too.
    let mut broken = rig.limit().respond_http().layer(Broken);
    let err: Fault = broken.ready().await.unwrap_err();
    assert_eq!(err.to_string(), "backend failed");
}

/// A service whose readiness fails.
#[derive(Debug, Clone)]
struct Broken;

impl Service<Request> for Broken {
    type Response = Response;
    type Error = Fault;
    type Future = std::future::Ready<Result<Response, Fault>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Fault>> {
        std::task::Poll::Ready(Err(Fault))
    }

    fn call(&mut self, _req: Request) -> Self::Future {
        unreachable!("never ready, never called")
    }
}

/// On Redis the decision is awaited in the response future; a refusal found there is
/// answered the same way, and the inner service is still not called.
#[cfg(feature = "redis")]
mod on_redis {
    use keel_limiter::FailurePolicy;
    use keel_limiter::redis::RedisStore;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_redis_that_fails_closed_answers_503_with_retry_after() {
        // Nothing listens on this port: every decision fails, and the policy refuses.
        let url = format!("redis://127.0.0.1:{}", support::free_port());
        let limiter = TokenLimiter::builder(Rate::per_second(10), BURST)
            .redis(RedisStore::open(&url).unwrap(), "axum")
            .failure_policy(FailurePolicy::FailClosed)
            .build()
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let backend = service_fn(move |_: Request| {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Ok::<Response, Infallible>("hello".into_response()) }
        });
        let mut svc = RateLimitLayer::new(limiter, by_client as Keyed)
            .respond_http()
            .layer(backend);

        let fut = svc.ready().await.unwrap().call(from("alice"));
        assert!(format!("{fut:?}").contains("deciding"), "{fut:?}");
        let refused = fut.await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        assert_eq!(calls.load(Ordering::Relaxed), 0);
    }
}
