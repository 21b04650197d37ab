//! All three refusing layers on one axum `Router`, through the umbrella crate alone: the
//! per-client limiter, the shedder and the breaker answer their refusals themselves
//! (`respond_http`: no `HandleErrorLayer`), or a one-line `HandleErrorLayer` answers the
//! nested error of the default mode. Every refusal is decided on cue: a manual clock for the
//! limiter, a manual CPU for the shedder, a forced-open breaker.
#![cfg(all(
    feature = "breaker",
    feature = "shedder",
    feature = "limiter",
    feature = "axum"
))]

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::{Router, routing::get};
use keel::breaker::tower::{BreakerLayer, ServerErrors};
use keel::breaker::{Breaker, BreakerError, Mode};
use keel::limiter::tower::{LimitError, RateLimitLayer};
use keel::limiter::{Rate, TokenLimiter};
use keel::shedder::tower::{ShedError, ShedderLayer};
use keel::shedder::{Shedder, cpu::ManualCpu};
use keel::timex::ManualClock;
use tower::{ServiceBuilder, ServiceExt};

struct Rig {
    clock: ManualClock,
    limiter: TokenLimiter<ManualClock>,
    shedder: Shedder<ManualClock>,
    cpu: ManualCpu,
    breaker: Breaker<ManualClock>,
}

impl Rig {
    fn new() -> Rig {
        let clock = ManualClock::new();
        let cpu = ManualCpu::new(0);
        Rig {
            limiter: TokenLimiter::builder(Rate::per_second(10), 2)
                .build_with_clock(clock.clone())
                .unwrap(),
            shedder: Shedder::builder()
                .cpu_source(cpu.clone())
                .exact_statistics()
                .build_with_clock(clock.clone())
                .unwrap(),
            breaker: Breaker::builder().build_with_clock(clock.clone()).unwrap(),
            cpu,
            clock,
        }
    }
}

fn by_client(req: &Request<Body>) -> Option<String> {
    Some(req.headers().get("x-client")?.to_str().ok()?.to_owned())
}

fn routes() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

async fn get_from(app: &Router, client: &str) -> Response {
    let req = Request::get("/")
        .header("x-client", client)
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap()
}

/// The body of a refusal: which layer answered.
async fn text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Drives `app` through each refusal and checks the answers.
async fn every_refusal_is_an_answer(rig: &Rig, app: &Router) {
    for _ in 0..2 {
        assert_eq!(get_from(app, "alice").await.status(), StatusCode::OK);
    }
    let limited = get_from(app, "alice").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()[header::RETRY_AFTER], "1");
    assert!(text(limited).await.starts_with("rate limited"));
    assert_eq!(get_from(app, "bob").await.status(), StatusCode::OK);

    rig.breaker.set_mode(Mode::ForcedOpen);
    let rejected = get_from(app, "carol").await;
    assert_eq!(rejected.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejected.headers()[header::RETRY_AFTER], "1");
    assert_eq!(text(rejected).await, "circuit breaker is open");
    rig.breaker.set_mode(Mode::Adaptive);

    // Overload the shedder: requests in flight and a saturated CPU.
    let running: Vec<_> = (0..20)
        .map(|_| rig.shedder.allow_owned().unwrap())
        .collect();
    rig.shedder.allow_owned().unwrap().pass();
    rig.cpu.set(1000);
    let shed = get_from(app, "dave").await;
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
    assert_eq!(text(shed).await, "service overloaded");
    running.into_iter().for_each(|g| g.pass());
    rig.cpu.set(0);
    rig.clock.advance(Duration::from_secs(2));
    assert_eq!(get_from(app, "alice").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "current_thread")]
async fn the_layers_answer_their_refusals_themselves() {
    let rig = Rig::new();
    let app = routes().layer(
        ServiceBuilder::new()
            .layer(RateLimitLayer::new(rig.limiter.clone(), by_client).respond_http())
            .layer(ShedderLayer::new(rig.shedder.clone()).respond_http())
            .layer(
                BreakerLayer::new(rig.breaker.clone())
                    .classifier(ServerErrors)
                    .respond_http(),
            ),
    );
    every_refusal_is_an_answer(&rig, &app).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_one_line_handler_answers_the_nested_errors() {
    let rig = Rig::new();
    let app = routes().layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(
                |e: LimitError<ShedError<BreakerError<Infallible>>>| async move { e },
            ))
            .layer(RateLimitLayer::new(rig.limiter.clone(), by_client))
            .layer(ShedderLayer::new(rig.shedder.clone()))
            .layer(BreakerLayer::new(rig.breaker.clone()).classifier(ServerErrors)),
    );
    every_refusal_is_an_answer(&rig, &app).await;
}
