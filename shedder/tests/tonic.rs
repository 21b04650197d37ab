//! Refusals as gRPC statuses: `Overloaded` and `ShedError` into `tonic::Status` (code,
//! message, `retry-after` metadata), and the responding mode in front of tonic's `Routes`
//! (the service `Server::builder().layer(..)` wraps), stacked with keel-limiter's layer in
//! both orders: a refusal is a trailers-only response with `grpc-status: 14`, and never
//! reaches the gRPC service.
#![cfg(all(feature = "tonic", not(loom)))]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use keel_limiter::tower::{LimitError, RateLimitLayer};
use keel_limiter::{Denied, Rate, TokenLimiter};
use keel_shedder::cpu::ManualCpu;
use keel_shedder::tower::{ShedError, ShedderLayer, overloaded_status};
use keel_shedder::{Overloaded, OwnedGuard, Shedder};
use keel_timex::ManualClock;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Code, Status};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

#[test]
fn a_refusal_is_unavailable_with_retry_after_metadata() {
    let status = Status::from(Overloaded::new(Some(950), 12, 10.0));
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.code() as i32, Overloaded::GRPC_CODE);
    assert_eq!(status.message(), "service overloaded");
    assert_eq!(status.metadata().get("retry-after").unwrap(), "1");
}

#[test]
fn shed_errors_convert_in_either_stacking_order() {
    let overloaded = Overloaded::new(Some(950), 12, 10.0);
    let denied = Denied::Limited {
        retry_after: Duration::from_millis(100),
    };

    let shed: ShedError<LimitError<Status>> = ShedError::Overloaded(overloaded);
    assert_eq!(Status::from(shed).code(), Code::Unavailable);
    let limited: ShedError<LimitError<Status>> = ShedError::Inner(LimitError::Limited(denied));
    assert_eq!(Status::from(limited).code(), Code::ResourceExhausted);
    let inner: ShedError<LimitError<Status>> =
        ShedError::Inner(LimitError::Inner(Status::not_found("no such user")));
    let inner = Status::from(inner);
    assert_eq!(
        (inner.code(), inner.message()),
        (Code::NotFound, "no such user")
    );

    let shed: LimitError<ShedError<Status>> = LimitError::Inner(ShedError::Overloaded(overloaded));
    assert_eq!(Status::from(shed).code(), Code::Unavailable);

    // Boxed on the way up.
    let boxed: Box<dyn std::error::Error + Send + Sync> =
        Box::new(ShedError::<std::io::Error>::Overloaded(overloaded));
    assert_eq!(
        overloaded_status(&*boxed).unwrap().code(),
        Code::Unavailable
    );
    let other: Box<dyn std::error::Error + Send + Sync> = "connection reset".into();
    assert!(overloaded_status(&*other).is_none());
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

async fn send<S>(server: &S) -> HeaderMap
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let call = Request::post("/test.Echo/Say")
        .header("content-type", "application/grpc")
        .body(Body::empty())
        .unwrap();
    let response = server.clone().oneshot(call).await.unwrap();
    assert_eq!(
        response.status(),
        http::StatusCode::OK,
        "gRPC answers in its status"
    );
    response.headers().clone()
}

#[tokio::test(flavor = "current_thread")]
async fn the_responding_mode_answers_grpc_status_14_in_front_of_tonic() {
    for shedder_outer in [true, false] {
        let calls = Arc::new(AtomicUsize::new(0));
        let routes = Routes::new(Echo {
            calls: Arc::clone(&calls),
        });
        let clock = ManualClock::new();
        let cpu = ManualCpu::new(300);
        let shedder = Shedder::builder()
            .cpu_source(cpu.clone())
            .exact_statistics()
            .build_with_clock(clock.clone())
            .unwrap();
        // A burst far above the requests sent: the limiter never refuses.
        let limiter = TokenLimiter::builder(Rate::per_second(10), 100)
            .build_with_clock(clock)
            .unwrap();
        let shed = ShedderLayer::new(shedder.clone()).respond_grpc();
        let limit = RateLimitLayer::unkeyed(limiter).respond_grpc();
        if shedder_outer {
            let server = served_by_tonic(ServiceBuilder::new().layer(shed).layer(limit), routes);
            check(server, &shedder, &cpu, &calls).await;
        } else {
            let server = served_by_tonic(ServiceBuilder::new().layer(limit).layer(shed), routes);
            check(server, &shedder, &cpu, &calls).await;
        }
    }
}

/// Admitted, refused while overloaded (without calling the gRPC service), admitted again.
async fn check<S>(server: S, shedder: &Shedder<ManualClock>, cpu: &ManualCpu, calls: &AtomicUsize)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    assert_eq!(send(&server).await["grpc-status"], "0");

    // Overloaded: 20 requests held open, one finishing, the CPU saturated.
    let held: Vec<_> = (0..20).map(|_| shedder.allow_owned().unwrap()).collect();
    shedder.allow_owned().unwrap().pass();
    cpu.set(1000);
    let refused = send(&server).await;
    assert_eq!(refused["grpc-status"], "14");
    assert_eq!(refused["retry-after"], "1");
    assert_eq!(refused["content-type"], "application/grpc");
    let status = Status::from_header_map(&refused).expect("a gRPC status");
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "service overloaded")
    );
    assert_eq!(calls.load(Ordering::Relaxed), 1, "refused, not called");

    held.into_iter().for_each(OwnedGuard::pass);
    cpu.set(300);
    assert_eq!(send(&server).await["grpc-status"], "0");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}
