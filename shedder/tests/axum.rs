//! Refusals as axum responses: a real axum `Router` behind the shedder and keel-limiter's
//! layer, stacked in both orders, answered by the one-line `HandleErrorLayer` or by the
//! layers themselves (`respond_http`). The shedder is overloaded on cue (an injected CPU, a
//! manual clock), the limiter never refuses (a burst far above the requests sent): 503
//! with `Retry-After: 1`, 200 otherwise, and a refused request never reaches the handler.
#![cfg(all(feature = "axum", not(loom)))]

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Router};
use keel_limiter::tower::{LimitError, RateLimitLayer};
use keel_limiter::{Rate, TokenLimiter};
use keel_shedder::cpu::ManualCpu;
use keel_shedder::tower::{ShedError, ShedderLayer, overloaded_response};
use keel_shedder::{Overloaded, OwnedGuard, Shedder};
use keel_timex::ManualClock;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// The limiter's burst: more than any test sends, so it never refuses.
const BURST: u32 = 100;

/// Which keel layer is the outer one.
#[derive(Debug, Clone, Copy)]
enum Order {
    ShedderOuter,
    LimiterOuter,
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
    (Order::ShedderOuter, Answer::OneLineHandler),
    (Order::LimiterOuter, Answer::OneLineHandler),
    (Order::ShedderOuter, Answer::Layers),
    (Order::LimiterOuter, Answer::Layers),
];

/// A shedder on a manual clock that never moves (so the window it reads stays empty and
/// its limit at the minimum) with an injected CPU, an unkeyed limiter that never refuses,
/// and a count of the handler's calls.
struct Rig {
    shedder: Shedder<ManualClock>,
    cpu: ManualCpu,
    limiter: TokenLimiter<ManualClock>,
    calls: Arc<AtomicUsize>,
}

impl Rig {
    fn new() -> Rig {
        let clock = ManualClock::new();
        let cpu = ManualCpu::new(300);
        let shedder = Shedder::builder()
            .cpu_source(cpu.clone())
            .exact_statistics()
            .build_with_clock(clock.clone())
            .expect("valid shedder");
        let limiter = TokenLimiter::builder(Rate::per_second(10), BURST)
            .build_with_clock(clock)
            .expect("valid limiter");
        Rig {
            shedder,
            cpu,
            limiter,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Overloads the shedder: 20 requests held open, one finishing (which moves the
    /// in-flight average above the limit of 1), the CPU saturated. Returns the held ones.
    fn overload(&self) -> Vec<OwnedGuard<ManualClock>> {
        let held: Vec<_> = (0..20)
            .map(|_| self.shedder.allow_owned().expect("admitted"))
            .collect();
        self.shedder.allow_owned().expect("admitted").pass();
        self.cpu.set(1000);
        held
    }

    /// Ends the overload: the held requests finish, the CPU calms down.
    fn recover(&self, held: Vec<OwnedGuard<ManualClock>>) {
        held.into_iter().for_each(OwnedGuard::pass);
        self.cpu.set(300);
    }

    /// A router whose one route counts its calls, behind both keel layers.
    fn app(&self, order: Order, answer: Answer) -> Router {
        let calls = Arc::clone(&self.calls);
        let router = Router::new().route(
            "/",
            get(move || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { "hello" }
            }),
        );
        let shed = ShedderLayer::new(self.shedder.clone());
        let limit = RateLimitLayer::unkeyed(self.limiter.clone());
        match (order, answer) {
            (Order::ShedderOuter, Answer::OneLineHandler) => router.layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(
                        |e: ShedError<LimitError<Infallible>>| async move { e },
                    ))
                    .layer(shed)
                    .layer(limit),
            ),
            (Order::LimiterOuter, Answer::OneLineHandler) => router.layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(
                        |e: LimitError<ShedError<Infallible>>| async move { e },
                    ))
                    .layer(limit)
                    .layer(shed),
            ),
            (Order::ShedderOuter, Answer::Layers) => router.layer(
                ServiceBuilder::new()
                    .layer(shed.respond_http())
                    .layer(limit.respond_http()),
            ),
            (Order::LimiterOuter, Answer::Layers) => router.layer(
                ServiceBuilder::new()
                    .layer(limit.respond_http())
                    .layer(shed.respond_http()),
            ),
        }
    }
}

fn get_root() -> Request {
    Request::get("/")
        .body(Body::empty())
        .expect("valid request")
}

/// The status and `Retry-After` header of a request.
async fn send(app: &Router) -> (StatusCode, Option<String>) {
    let response = app.clone().oneshot(get_root()).await.expect("infallible");
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().expect("ascii").to_owned());
    (response.status(), retry_after)
}

const OK: (StatusCode, Option<String>) = (StatusCode::OK, None);

fn unavailable() -> (StatusCode, Option<String>) {
    (StatusCode::SERVICE_UNAVAILABLE, Some("1".to_owned()))
}

#[tokio::test(flavor = "current_thread")]
async fn a_refusal_is_503_with_retry_after_in_every_stack() {
    for (order, answer) in STACKS {
        let rig = Rig::new();
        let app = rig.app(order, answer);
        let stack = format!("{order:?}, {answer:?}");

        assert_eq!(send(&app).await, OK, "{stack}");
        let held = rig.overload();
        assert_eq!(send(&app).await, unavailable(), "{stack}");
        assert_eq!(send(&app).await, unavailable(), "{stack}");
        assert_eq!(
            rig.calls(),
            1,
            "{stack}: a refused request reached the handler"
        );
        assert_eq!(rig.shedder.snapshot().dropped, 2, "{stack}");

        // The limiter is asked only when it is the outer layer: a request the shedder
        // refuses first costs no token.
        let taken = f64::from(BURST) - rig.limiter.tokens();
        let expected = match order {
            Order::ShedderOuter => 1.0,
            Order::LimiterOuter => 3.0,
        };
        assert_eq!(taken, expected, "{stack}");

        rig.recover(held);
        assert_eq!(send(&app).await, OK, "{stack}");
        assert_eq!(rig.calls(), 2, "{stack}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_refusal_body_is_plain_text() {
    for (order, answer) in STACKS {
        let rig = Rig::new();
        let app = rig.app(order, answer);
        let _held = rig.overload();
        let refused = app.oneshot(get_root()).await.unwrap();
        let stack = format!("{order:?}, {answer:?}");
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE, "{stack}");
        assert_eq!(
            refused.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8",
            "{stack}"
        );
        let body = axum::body::to_bytes(refused.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"service overloaded", "{stack}");
    }
}

/// The backend's own error.
#[derive(Debug)]
struct Fault;

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("backend failed")
    }
}

impl std::error::Error for Fault {}

/// In the responding mode the service's error is the inner service's, unchanged, and the
/// classifier still sees the inner results only (a refusal is not an outcome).
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
    let mut svc = ShedderLayer::new(rig.shedder.clone())
        .respond_http()
        .layer(backend);

    let failing = Request::get("/")
        .header("x-fail", "1")
        .body(Body::empty())
        .unwrap();
    let err: Fault = svc.ready().await.unwrap().call(failing).await.unwrap_err();
    assert_eq!(err.to_string(), "backend failed");
    let ok = svc.ready().await.unwrap().call(get_root()).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    let _held = rig.overload();
    let refused = svc.ready().await.unwrap().call(get_root()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rig.calls(), 2);
    let s = rig.shedder.snapshot();
    // 20 held + 1 passed by `overload`, 1 failed and 1 passed through the service.
    assert_eq!((s.admitted, s.dropped), (23, 1), "{s:?}");

    // A readiness error is the inner service's too.
    let mut broken = ShedderLayer::new(rig.shedder.clone())
        .respond_http()
        .layer(Broken);
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

#[tokio::test(flavor = "current_thread")]
async fn overloaded_response_finds_the_refusal_in_a_boxed_error() {
    let rig = Rig::new();
    async fn handle(err: BoxError) -> Response {
        overloaded_response(&*err)
            .unwrap_or_else(|| (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response())
    }
    let app = Router::new().route("/", get(|| async { "hello" })).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(handle))
            .map_err(BoxError::from)
            .layer(ShedderLayer::new(rig.shedder.clone())),
    );
    assert_eq!(send(&app).await, OK);
    let _held = rig.overload();
    assert_eq!(send(&app).await, unavailable());
    assert!(overloaded_response(&Fault).is_none());
    let direct = Overloaded::new(Some(1000), 20, 1.0).into_response();
    assert_eq!(direct.status(), StatusCode::SERVICE_UNAVAILABLE);
}
