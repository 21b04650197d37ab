//! tower integration (feature `tower`): [`ShedderLayer`] and [`ShedderService`] put any
//! tower `Service` (an axum router, a tonic server, a hyper service) behind a
//! [`Shedder`](crate::Shedder).
//!
//! - **Shared state.** The layer holds a [`Shedder`](crate::Shedder), whose state lives in
//!   an `Arc`: clones of the layer and of every service it makes (axum and hyper clone the
//!   service per connection, axum's `Router::layer` per route) count toward one in-flight
//!   figure and obey one decision.
//! - **Readiness.** `poll_ready` forwards the inner service's readiness and nothing else.
//!   The shedder never makes it `Pending` (which would queue requests, the opposite of
//!   shedding) nor an error (tower reads that as "this service is dead").
//! - **Rejection.** `call` asks [`Shedder::allow_owned`](crate::Shedder::allow_owned). A
//!   refused call resolves at once to [`ShedError::Overloaded`] and the inner service is
//!   not called: refusing costs a decision, not a request.
//! - **Outcomes.** An admitted call carries its [`OwnedGuard`](crate::OwnedGuard) in the
//!   [`ResponseFuture`](future::ResponseFuture). When the inner future completes, a
//!   [`Classify`]er decides: a pass records the latency since `call` and counts toward the
//!   throughput the shedder has seen, a failure only releases the slot.
//!   [`DefaultClassifier`] counts `Err` as a failure; for HTTP, where errors are responses,
//!   pass a closure that counts 5xx as failures. A response future dropped before it
//!   completes (a timeout, a client gone) is **cancelled**: the slot is released, nothing
//!   is recorded. For HTTP the inner future completes when the response *head* is ready:
//!   time spent streaming a body afterwards is neither in flight nor in the latency.
//! - **Errors** are [`ShedError<S::Error>`](ShedError), not boxed: `ShedError::Overloaded`
//!   is the case to answer with 503 ([`ShedError::http_status`]) or gRPC `UNAVAILABLE`
//!   ([`Overloaded::GRPC_CODE`](crate::Overloaded::GRPC_CODE)); the inner service's errors
//!   come back unchanged as `ShedError::Inner`. Once boxed into a `BoxError` by a layer
//!   above, [`find_overloaded`] gets the refusal back.
//! - **Or responses.** [`ShedderLayer::respond_http`] (feature `axum`) and
//!   [`ShedderLayer::respond_grpc`] (feature `tonic`) make the layer answer a refusal
//!   itself, with the response a handler of the error would give, still at once and
//!   without calling the inner service. The service's error is then the inner service's
//!   own, unchanged. The choice is a zero-sized marker type parameter ([`RefusalMode`]:
//!   [`AsError`] by default), so the default layer is the same code and size as without it.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//!
//! use keel_shedder::tower::{ShedError, ShedderLayer};
//! use keel_shedder::{Shedder, cpu::ManualCpu};
//! use keel_timex::ManualClock;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The CPU signal is injected here; by default it is the container's CPU usage.
//! let cpu = ManualCpu::new(300);
//! let shedder = Shedder::builder()
//!     .exact_statistics()
//!     .cpu_source(cpu.clone())
//!     .build_with_clock(ManualClock::new())
//!     .unwrap();
//! let service = ServiceBuilder::new()
//!     // The service answers with status codes: a 5xx is a failure, not a pass.
//!     .layer(
//!         ShedderLayer::new(shedder.clone())
//!             .classifier(|r: &Result<u16, Infallible>| matches!(r, Ok(s) if *s >= 500)),
//!     )
//!     .service(service_fn(|_path: &'static str| async { Ok::<u16, Infallible>(200) }));
//!
//! // What an HTTP server answers: a refusal becomes 503 Service Unavailable.
//! let status = |result: Result<u16, ShedError<Infallible>>| match result {
//!     Ok(status) => status,
//!     Err(ShedError::Overloaded(_)) => 503,
//!     Err(ShedError::Inner(never)) => match never {},
//! };
//! assert_eq!(status(service.clone().oneshot("/").await), 200);
//! assert_eq!(shedder.snapshot().admitted, 1);
//! assert_eq!(shedder.snapshot().in_flight, 0);
//!
//! // Overload: 20 requests still running, one finishing (which updates the in-flight
//! // average), and the CPU saturated.
//! let running: Vec<_> = (0..20).map(|_| shedder.allow_owned().unwrap()).collect();
//! shedder.allow_owned().unwrap().pass();
//! cpu.set(1000);
//! assert_eq!(status(service.clone().oneshot("/").await), 503);
//! assert_eq!(shedder.snapshot().dropped, 1);
//!
//! // The running requests finish, the CPU calms down: admitted again.
//! running.into_iter().for_each(|guard| guard.pass());
//! cpu.set(300);
//! assert_eq!(status(service.oneshot("/").await), 200);
//! # }
//! ```
//!
//! # axum
//!
//! axum routes must be infallible. With feature `axum`, [`Overloaded`](crate::Overloaded)
//! and [`ShedError<E>`] (for `E: IntoResponse`, such as `Infallible`, or a rate limiter's
//! `LimitError<Infallible>`) are axum responses: a refusal answers
//! `503 Service Unavailable` with `Retry-After: 1`. There are two ways to answer it.
//!
//! **The layer answers it** ([`respond_http`](ShedderLayer::respond_http)): nothing else
//! to write, no `HandleErrorLayer`. Here with keel-limiter's layer in the same mode, in
//! either order:
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use axum::body::Body;
//! use axum::extract::Request;
//! use axum::http::{StatusCode, header};
//! use axum::{Router, routing::get};
//! use keel_limiter::tower::RateLimitLayer;
//! use keel_limiter::{Rate, TokenLimiter};
//! use keel_shedder::tower::ShedderLayer;
//! use keel_shedder::{Shedder, cpu::ManualCpu};
//! use keel_timex::ManualClock;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! // A server would use `Shedder::new()`; this example injects the CPU, holds the clock
//! // still and times every request, to overload the shedder on cue.
//! let cpu = ManualCpu::new(300);
//! let shedder = Shedder::builder()
//!     .cpu_source(cpu.clone())
//!     .exact_statistics()
//!     .build_with_clock(ManualClock::new())
//!     .unwrap();
//! let limiter = TokenLimiter::builder(Rate::per_second(100), 20).build().unwrap();
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(ShedderLayer::new(shedder.clone()).respond_http())
//!         .layer(RateLimitLayer::unkeyed(limiter).respond_http()),
//! );
//!
//! let get = || Request::get("/").body(Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), StatusCode::OK);
//!
//! // Overloaded, as in the example above.
//! let _running: Vec<_> = (0..20).map(|_| shedder.allow_owned().unwrap()).collect();
//! shedder.allow_owned().unwrap().pass();
//! cpu.set(1000);
//! let refused = app.oneshot(get()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
//! # }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! **A `HandleErrorLayer` answers it**, for the default mode (a stack that also wants to
//! see the errors, log them, or answer them otherwise). Directly above the keel layers the
//! error is its own response, so the handler is one line whatever their order:
//! `|e: ShedError<Infallible>| async move { e }` above the shedder alone,
//! `|e: ShedError<LimitError<Infallible>>| async move { e }` above the shedder and a rate
//! limiter below it, `|e: LimitError<ShedError<Infallible>>| async move { e }` the other
//! way round:
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::convert::Infallible;
//!
//! use axum::body::Body;
//! use axum::error_handling::HandleErrorLayer;
//! use axum::extract::Request;
//! use axum::http::{StatusCode, header};
//! use axum::{Router, routing::get};
//! use keel_limiter::tower::{LimitError, RateLimitLayer};
//! use keel_limiter::{Rate, TokenLimiter};
//! use keel_shedder::tower::{ShedError, ShedderLayer};
//! use keel_shedder::{Shedder, cpu::ManualCpu};
//! use keel_timex::ManualClock;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! let cpu = ManualCpu::new(300);
//! let shedder = Shedder::builder()
//!     .cpu_source(cpu.clone())
//!     .exact_statistics()
//!     .build_with_clock(ManualClock::new())
//!     .unwrap();
//! let limiter = TokenLimiter::builder(Rate::per_second(100), 20).build().unwrap();
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(HandleErrorLayer::new(|e: ShedError<LimitError<Infallible>>| async move { e }))
//!         .layer(ShedderLayer::new(shedder.clone()))
//!         .layer(RateLimitLayer::unkeyed(limiter)),
//! );
//!
//! let get = || Request::get("/").body(Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), StatusCode::OK);
//! let _running: Vec<_> = (0..20).map(|_| shedder.allow_owned().unwrap()).collect();
//! shedder.allow_owned().unwrap().pass();
//! cpu.set(1000);
//! let refused = app.oneshot(get()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
//! # }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! With a fallible layer in between (a timeout), the error arrives as a `BoxError`, and
//! [`overloaded_response`] picks out the refusal:
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use axum::body::Body;
//! use axum::error_handling::HandleErrorLayer;
//! use axum::http::{Request, StatusCode, header};
//! use axum::response::{IntoResponse, Response};
//! use axum::{BoxError, Router, routing::get};
//! use keel_shedder::tower::{ShedderLayer, overloaded_response};
//! use keel_shedder::{Shedder, cpu::ManualCpu};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! async fn handle_error(err: BoxError) -> Response {
//!     if let Some(overloaded) = overloaded_response(&*err) {
//!         return overloaded;
//!     }
//!     if err.is::<tower::timeout::error::Elapsed>() {
//!         return StatusCode::GATEWAY_TIMEOUT.into_response();
//!     }
//!     (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response()
//! }
//!
//! // A server would use `Shedder::new()`; this example injects the CPU and times every
//! // request, to overload the shedder on cue.
//! let cpu = ManualCpu::new(300);
//! let shedder = Shedder::builder()
//!     .cpu_source(cpu.clone())
//!     .exact_statistics()
//!     .build()
//!     .unwrap();
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(HandleErrorLayer::new(handle_error))
//!         .timeout(Duration::from_secs(10))
//!         .layer(ShedderLayer::new(shedder.clone()).classifier(
//!             |r: &Result<Response, Infallible>| {
//!                 matches!(r, Ok(res) if res.status().is_server_error())
//!             },
//!         )),
//! );
//!
//! let get = || Request::get("/").body(Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), StatusCode::OK);
//!
//! // Overloaded, as in the example above.
//! let _running: Vec<_> = (0..20).map(|_| shedder.allow_owned().unwrap()).collect();
//! shedder.allow_owned().unwrap().pass();
//! cpu.set(1000);
//! let refused = app.oneshot(get()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
//! # }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! # tonic
//!
//! With feature `tonic` (tonic 0.14 without its default features: `tonic::Status` and its
//! metadata, not the transport), `tonic::Status::from` turns
//! [`Overloaded`](crate::Overloaded) and [`ShedError<E>`] (for `E: Into<Status>`) into
//! `UNAVAILABLE` with a `retry-after: 1` metadata entry; [`overloaded_status`] does it for
//! a boxed error. tonic's server takes the layer as it is in
//! [`respond_grpc`](ShedderLayer::respond_grpc) mode: a refusal is answered as a
//! trailers-only gRPC response, and the error stays tonic's `Infallible`. (In the default
//! mode tonic's server would not recognise the error and would reset the stream.)
//!
//! ```
//! # #[cfg(feature = "tonic")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use keel_shedder::tower::ShedderLayer;
//! use keel_shedder::{Shedder, cpu::ManualCpu};
//! use keel_timex::ManualClock;
//! use tonic::body::Body;
//! use tonic::service::Routes;
//! use tower::{Layer, ServiceExt};
//!
//! let cpu = ManualCpu::new(300);
//! let shedder = Shedder::builder()
//!     .cpu_source(cpu.clone())
//!     .exact_statistics()
//!     .build_with_clock(ManualClock::new())
//!     .unwrap();
//! let layer = ShedderLayer::new(shedder.clone()).respond_grpc();
//! // A server: `Server::builder().layer(layer).add_service(..).serve(addr)`. Here the
//! // service tonic wraps, with no gRPC service added: it answers UNIMPLEMENTED (12).
//! let server = layer.layer(Routes::default());
//! let call = || http::Request::post("/echo.Echo/Say").body(Body::empty()).unwrap();
//! assert_eq!(server.clone().oneshot(call()).await.unwrap().headers()["grpc-status"], "12");
//!
//! let _running: Vec<_> = (0..20).map(|_| shedder.allow_owned().unwrap()).collect();
//! shedder.allow_owned().unwrap().pass();
//! cpu.set(1000);
//! let refused = server.oneshot(call()).await.unwrap();
//! assert_eq!(refused.headers()["grpc-status"], "14"); // UNAVAILABLE
//! assert_eq!(refused.headers()["retry-after"], "1");
//! # }
//! # #[cfg(not(feature = "tonic"))]
//! # fn main() {}
//! ```
//!
//! Without the feature, [`Overloaded::GRPC_CODE`](crate::Overloaded::GRPC_CODE) gives the
//! code (14) for another gRPC stack.

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
mod axum;
mod classify;
mod error;
pub mod future;
mod layer;
mod refusal;
mod service;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
mod tonic;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum::{RespondHttp, ServerErrors, overloaded_response};
pub use classify::{Classify, DefaultClassifier};
pub use error::{ShedError, find_overloaded};
pub use layer::ShedderLayer;
pub use refusal::{AsError, RefusalMode};
pub use service::ShedderService;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub use tonic::{RespondGrpc, overloaded_status};
