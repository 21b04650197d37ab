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
//! axum routes must be infallible, so put a `HandleErrorLayer` above the shedder. With
//! feature `axum`, [`Overloaded`](crate::Overloaded) and [`ShedError<E>`] (for `E:
//! IntoResponse`, such as `Infallible`) are axum responses: a refusal answers
//! `503 Service Unavailable` with `Retry-After: 1`. Directly above the shedder the handler
//! is `|err: ShedError<Infallible>| async move { err }`. With a fallible layer in between
//! (a timeout), the error arrives as a `BoxError`, and
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
//! The same holds: report `ShedError::Overloaded` as `tonic::Code::Unavailable`
//! ([`Overloaded::GRPC_CODE`](crate::Overloaded::GRPC_CODE)); `ShedError::Inner` carries
//! the transport's own error.

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
mod axum;
mod classify;
mod error;
pub mod future;
mod layer;
mod service;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum::overloaded_response;
pub use classify::{Classify, DefaultClassifier};
pub use error::{ShedError, find_overloaded};
pub use layer::ShedderLayer;
pub use service::ShedderService;
