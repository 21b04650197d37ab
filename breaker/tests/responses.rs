//! The breaker's refusals as responses: a real axum `Router` behind the breaker's layer,
//! answered by the layer itself (`respond_http`, no `HandleErrorLayer`) or by a one-line
//! `HandleErrorLayer`; gRPC statuses and the trailers-only response of `respond_grpc`. Time
//! is tokio's paused clock (the breaker's deadline) and the breaker is forced open to reject
//! on cue.
#![cfg(all(feature = "axum", feature = "tonic", feature = "tokio", not(loom)))]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use keel_breaker::tower::{BreakerLayer, ServerErrors};
use keel_breaker::{Breaker, BreakerError, Mode, Rejected, TimedOut};
use keel_timex::TokioClock;
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

const TIMEOUT: Duration = Duration::from_secs(1);

fn breaker() -> Breaker<TokioClock> {
    Breaker::builder()
        .name("backend")
        .timeout(TIMEOUT)
        .build_with_clock(TokioClock::new())
        .unwrap()
}

/// `/ok` answers 200, `/fail` 500, `/stall` never; each call that reaches a handler counts.
fn routes(calls: &Arc<AtomicUsize>) -> Router {
    let counted = |status: Option<StatusCode>, calls: Arc<AtomicUsize>| {
        move || async move {
            calls.fetch_add(1, Ordering::Relaxed);
            match status {
                Some(status) => status,
                None => std::future::pending().await,
            }
        }
    };
    Router::new()
        .route("/ok", get(counted(Some(StatusCode::OK), Arc::clone(calls))))
        .route(
            "/fail",
            get(counted(
                Some(StatusCode::INTERNAL_SERVER_ERROR),
                Arc::clone(calls),
            )),
        )
        .route("/stall", get(counted(None, Arc::clone(calls))))
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn status_of(app: &Router, path: &str) -> Response {
    app.clone().oneshot(get_req(path)).await.unwrap()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_layer_answers_rejections_and_timeouts_itself() {
    let breaker = breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    // No HandleErrorLayer: the layer's service is infallible behind the Router.
    let app = routes(&calls).layer(
        BreakerLayer::new(breaker.clone())
            .classifier(ServerErrors)
            .respond_http(),
    );

    assert_eq!(status_of(&app, "/ok").await.status(), StatusCode::OK);
    assert_eq!(status_of(&app, "/fail").await.status(), 500);
    let h = breaker.snapshot().history;
    assert_eq!((h.accepts, h.total), (1, 2), "a 5xx is a failure");

    let timed_out = status_of(&app, "/stall").await;
    assert_eq!(timed_out.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(breaker.snapshot().history.total, 3);
    assert_eq!(calls.load(Ordering::Relaxed), 3);

    breaker.set_mode(Mode::ForcedOpen);
    let rejected = status_of(&app, "/ok").await;
    assert_eq!(rejected.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejected.headers()[header::RETRY_AFTER], "1");
    assert_eq!(
        calls.load(Ordering::Relaxed),
        3,
        "a rejected request never reaches a handler"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_one_line_handler_answers_the_error_mode() {
    let breaker = breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = routes(&calls).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(
                |e: BreakerError<Infallible>| async move { e },
            ))
            .layer(BreakerLayer::new(breaker.clone()).classifier(ServerErrors)),
    );
    assert_eq!(status_of(&app, "/ok").await.status(), StatusCode::OK);
    assert_eq!(
        status_of(&app, "/stall").await.status(),
        StatusCode::GATEWAY_TIMEOUT
    );
    breaker.set_mode(Mode::ForcedOpen);
    let rejected = status_of(&app, "/ok").await;
    assert_eq!(rejected.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejected.headers()[header::RETRY_AFTER], "1");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[test]
fn refusals_are_grpc_statuses() {
    let status = tonic::Status::from(Rejected::new());
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(status.metadata().get("retry-after").unwrap(), "1");
    let status = tonic::Status::from(TimedOut::new(TIMEOUT));
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    assert_eq!(status.message(), "call timed out after 1s");
    // A stack's error whose inner error is a status converts whole.
    let inner: BreakerError<tonic::Status> = BreakerError::Inner(tonic::Status::not_found("x"));
    assert_eq!(tonic::Status::from(inner).code(), tonic::Code::NotFound);
    let err: BreakerError<tonic::Status> = Rejected::new().into();
    assert_eq!(err.grpc_code(), Some(14));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_layer_answers_grpc_refusals_itself() {
    let breaker = breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    // A gRPC server's routes answer `http::Response<tonic::body::Body>` and never fail.
    let svc = BreakerLayer::new(breaker.clone())
        .classifier(|r: &Result<http::Response<tonic::body::Body>, Infallible>| r.is_err())
        .respond_grpc()
        .layer(service_fn(move |stall: bool| {
            counted.fetch_add(1, Ordering::Relaxed);
            async move {
                if stall {
                    std::future::pending::<()>().await;
                }
                Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
            }
        }));
    let ok = svc.clone().oneshot(false).await.unwrap();
    assert_eq!(ok.headers().get("grpc-status"), None);
    let timed_out = svc.clone().oneshot(true).await.unwrap();
    assert_eq!(timed_out.headers()["grpc-status"], "4");
    breaker.set_mode(Mode::ForcedOpen);
    let rejected = svc.clone().oneshot(false).await.unwrap();
    assert_eq!(
        rejected.status(),
        200,
        "trailers-only gRPC responses are HTTP 200"
    );
    assert_eq!(rejected.headers()["grpc-status"], "14");
    assert_eq!(rejected.headers()["retry-after"], "1");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}
