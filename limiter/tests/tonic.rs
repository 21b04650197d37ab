//! Refusals as gRPC statuses: `Denied` and `LimitError` into `tonic::Status` (codes, message,
//! `retry-after` metadata), and the responding mode in front of tonic's `Routes` (the
//! service `Server::builder().layer(..)` wraps), stacked with keel-shedder's layer in both
//! orders: a refusal is a trailers-only response with `grpc-status: 8`, and never reaches
//! the gRPC service.
#![cfg(all(feature = "tonic", not(loom)))]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use keel_limiter::tower::{LimitError, RateLimitLayer, denied_status};
use keel_limiter::{Denied, Rate, TokenLimiter};
use keel_shedder::tower::{ShedError, ShedderLayer};
use keel_shedder::{Overloaded, Shedder, cpu::ManualCpu};
use keel_timex::ManualClock;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Code, Status};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

#[test]
fn a_refusal_is_resource_exhausted_with_the_wait_in_message_and_metadata() {
    let limited = Status::from(Denied::Limited {
        retry_after: Duration::from_millis(1500),
    });
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(limited.message(), "rate limited: retry after 1.5s");
    assert_eq!(limited.metadata().get("retry-after").unwrap(), "2");

    let key_table_full = Status::from(Denied::KeyCapacity {
        retry_after: Duration::from_millis(200),
    });
    assert_eq!(key_table_full.code(), Code::ResourceExhausted);
    assert_eq!(key_table_full.metadata().get("retry-after").unwrap(), "1");

    // No wait helps a cost above the burst: no retry-after.
    let never = Status::from(Denied::NeverFits { n: 3, burst: 2 });
    assert_eq!(never.code(), Code::ResourceExhausted);
    assert!(never.metadata().get("retry-after").is_none());
    assert_eq!(
        never.message(),
        "3 tokens can never be granted: the bucket holds at most 2"
    );

    // A backend that is down: the client may retry elsewhere, after a second.
    let down = Status::from(Denied::Unavailable);
    assert_eq!(down.code(), Code::Unavailable);
    assert_eq!(down.metadata().get("retry-after").unwrap(), "1");

    for denied in [Denied::Unavailable, Denied::NeverFits { n: 3, burst: 2 }] {
        assert_eq!(
            Status::from(denied).code() as i32,
            denied.grpc_code(),
            "{denied:?}"
        );
    }
}

#[test]
fn limit_errors_convert_in_either_stacking_order() {
    let denied = Denied::Limited {
        retry_after: Duration::from_millis(100),
    };
    let overloaded = Overloaded::new(Some(950), 12, 10.0);

    let limited: LimitError<ShedError<Status>> = LimitError::Limited(denied);
    assert_eq!(Status::from(limited).code(), Code::ResourceExhausted);
    let shed: LimitError<ShedError<Status>> = LimitError::Inner(ShedError::Overloaded(overloaded));
    assert_eq!(Status::from(shed).code(), Code::Unavailable);
    let inner: LimitError<ShedError<Status>> =
        LimitError::Inner(ShedError::Inner(Status::not_found("no such user")));
    let inner = Status::from(inner);
    assert_eq!(
        (inner.code(), inner.message()),
        (Code::NotFound, "no such user")
    );

    let limited: ShedError<LimitError<Status>> = ShedError::Inner(LimitError::Limited(denied));
    assert_eq!(Status::from(limited).code(), Code::ResourceExhausted);

    // Boxed on the way up.
    let boxed: Box<dyn std::error::Error + Send + Sync> =
        Box::new(LimitError::<std::io::Error>::Limited(denied));
    assert_eq!(
        denied_status(&*boxed).unwrap().code(),
        Code::ResourceExhausted
    );
    let other: Box<dyn std::error::Error + Send + Sync> = "connection reset".into();
    assert!(denied_status(&*other).is_none());
}

/// A gRPC service that answers every call OK (a trailers-only response, enough here)
/// and counts the calls that reach it.
#[derive(Debug, Clone)]
struct Echo {
    calls: Arc<AtomicUsize>,
}

impl NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

impl Service<Request<Body>> for Echo {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Ok(Status::new(Code::Ok, "").into_http()))
    }
}

/// What tonic's server asks of the layered service (tonic 0.14 `Router::serve`): the
/// check that `Server::builder().layer(layer)` takes the layer as it is.
fn served_by_tonic<L>(layer: L, routes: Routes) -> L::Service
where
    L: Layer<Routes>,
    L::Service: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    <L::Service as Service<Request<Body>>>::Future: Send,
    <L::Service as Service<Request<Body>>>::Error: Into<tower::BoxError> + Send + 'static,
{
    layer.layer(routes)
}

fn call() -> Request<Body> {
    Request::post("/test.Echo/Say")
        .header("content-type", "application/grpc")
        .body(Body::empty())
        .unwrap()
}

async fn send<S>(server: &S) -> HeaderMap
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let response = server.clone().oneshot(call()).await.unwrap();
    assert_eq!(
        response.status(),
        http::StatusCode::OK,
        "gRPC answers in its status"
    );
    response.headers().clone()
}

#[tokio::test(flavor = "current_thread")]
async fn the_responding_mode_answers_grpc_status_8_in_front_of_tonic() {
    for limiter_outer in [true, false] {
        let calls = Arc::new(AtomicUsize::new(0));
        let routes = Routes::new(Echo {
            calls: Arc::clone(&calls),
        });
        let limiter = TokenLimiter::builder(Rate::per_second(10), 1)
            .build_with_clock(ManualClock::new())
            .unwrap();
        let shedder = Shedder::builder()
            .cpu_source(ManualCpu::new(0))
            .build_with_clock(ManualClock::new())
            .unwrap();
        let limit = RateLimitLayer::unkeyed(limiter).respond_grpc();
        let shed = ShedderLayer::new(shedder).respond_grpc();

        let first = if limiter_outer {
            let server = served_by_tonic(ServiceBuilder::new().layer(limit).layer(shed), routes);
            (send(&server).await, send(&server).await)
        } else {
            let server = served_by_tonic(ServiceBuilder::new().layer(shed).layer(limit), routes);
            (send(&server).await, send(&server).await)
        };
        let (admitted, refused) = first;
        assert_eq!(
            admitted["grpc-status"], "0",
            "limiter outer: {limiter_outer}"
        );
        assert_eq!(
            refused["grpc-status"], "8",
            "limiter outer: {limiter_outer}"
        );
        let status = Status::from_header_map(&refused).expect("a gRPC status");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "rate limited: retry after 100ms");
        assert_eq!(refused["retry-after"], "1");
        assert_eq!(refused["content-type"], "application/grpc");
        assert_eq!(calls.load(Ordering::Relaxed), 1, "refused, not called");
    }
}
