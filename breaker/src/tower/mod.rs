//! tower integration (feature `tower`): [`BreakerLayer`] and [`BreakerService`] put any tower
//! `Service` (axum, tonic, hyper clients and servers) behind a [`Breaker`](crate::Breaker).
//!
//! - **Shared state.** The layer holds a [`Breaker`](crate::Breaker), whose state lives in
//!   an `Arc`: clones of the layer and of every service it makes feed and obey one breaker.
//! - **Readiness.** `poll_ready` only forwards the inner service's readiness, so backpressure
//!   is kept; the breaker never makes it `Pending` nor an error (tower reads `Err` from
//!   `poll_ready` as "this service is dead").
//! - **Rejection.** `call` asks the breaker; a rejected call resolves at once to
//!   [`BreakerError::Rejected`](crate::BreakerError::Rejected) and the inner service is not
//!   called.
//! - **Outcomes.** An admitted call carries its [`OwnedPermit`](crate::OwnedPermit) in the
//!   [`ResponseFuture`](future::ResponseFuture). On completion a [`Classify`]er decides:
//!   [`DefaultClassifier`] counts `Err` as a failure (keeping its text among the breaker's
//!   [recent failures](crate::Breaker::recent_failures)); a closure can count HTTP 5xx as
//!   failures and 4xx as successes. A panic in the inner future is a failure.
//! - **Deadline.** With a [`Builder::timeout`](crate::Builder::timeout) (feature `tokio`)
//!   the call ends at the deadline with [`BreakerError::TimedOut`](crate::BreakerError::TimedOut)
//!   and counts as a failure: the way to tell the breaker about a stalled dependency.
//! - **Cancellation.** A response future dropped before completion (the client went away, a
//!   `tower::timeout::Timeout` *around* the layer fired) is a cancellation: by default it
//!   records nothing ([`OnCancel`](crate::OnCancel)), unless the call had run longer than
//!   the [slow-call threshold](crate::Builder::slow_call). So a storm of client
//!   disconnects cannot open the breaker of a healthy dependency; use the breaker's own
//!   timeout rather than tower's `Timeout` to have stalls counted.
//! - **Errors** are [`BreakerError<S::Error>`](crate::BreakerError), not boxed: match
//!   `BreakerError::Rejected` to answer 503 / `UNAVAILABLE`; inner errors come back
//!   unchanged as `BreakerError::Inner`. `BreakerError<E>` implements `std::error::Error`
//!   when `E` does, so it converts into tower's `BoxError` where one is expected.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//!
//! use keel_breaker::tower::BreakerLayer;
//! use keel_breaker::{Breaker, BreakerError, Mode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let breaker = Breaker::builder().name("inventory").build().unwrap();
//! let service = ServiceBuilder::new()
//!     // The service answers with status codes: 5xx is a failure, 4xx is not.
//!     .layer(
//!         BreakerLayer::new(breaker.clone())
//!             .classifier(|r: &Result<u16, Infallible>| matches!(r, Ok(s) if *s >= 500)),
//!     )
//!     .service(service_fn(|path: &'static str| async move {
//!         Ok::<u16, Infallible>(if path == "/missing" { 404 } else { 200 })
//!     }));
//!
//! // What an HTTP server would answer: a rejection becomes 503 Service Unavailable.
//! let status = |result: Result<u16, BreakerError<Infallible>>| match result {
//!     Ok(status) => status,
//!     Err(BreakerError::Rejected(_)) => 503,
//!     Err(BreakerError::TimedOut(_)) => 504, // with a `Builder::timeout`
//!     Err(BreakerError::Inner(never)) => match never {},
//! };
//! assert_eq!(status(service.clone().oneshot("/").await), 200);
//! assert_eq!(status(service.clone().oneshot("/missing").await), 404);
//!
//! // An operator sheds the dependency: calls are refused without reaching it.
//! breaker.set_mode(Mode::ForcedOpen);
//! assert_eq!(status(service.clone().oneshot("/").await), 503);
//! # }
//! ```
//!
//! # axum
//!
//! With feature `axum`, the layer can answer a rejection (503, `Retry-After: 1`) or a
//! timeout (504) itself: [`BreakerLayer::respond_http`] keeps the service infallible, so it
//! goes straight into `Router::layer` with no `HandleErrorLayer`. [`ServerErrors`] counts 5xx
//! responses as failures. The breaker below guards the routes it wraps (a backend proxied
//! by them, a database they all read):
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use axum::{Router, routing::get};
//! use keel_breaker::tower::{BreakerLayer, ServerErrors};
//! use keel_breaker::{Breaker, Mode};
//! use tower::ServiceExt;
//!
//! let breaker = Breaker::builder().name("inventory").build().unwrap();
//! let app = Router::new()
//!     .route("/stock", get(|| async { "12" }))
//!     .layer(BreakerLayer::new(breaker.clone()).classifier(ServerErrors).respond_http());
//!
//! let get = || Request::get("/stock").body(Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), StatusCode::OK);
//! breaker.set_mode(Mode::ForcedOpen);
//! let refused = app.oneshot(get()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(refused.headers()["retry-after"], "1");
//! # }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! In the default mode, [`BreakerError`](crate::BreakerError) is itself a response
//! (`IntoResponse` when its inner error is), so `HandleErrorLayer::new(|e:
//! BreakerError<Infallible>| async move { e })` is the whole error handling, in any order
//! with keel's limiter and shedder layers; [`refusal_response`] finds a refusal in a boxed
//! error.
//!
//! # tonic
//!
//! With feature `tonic`, `tonic::Status::from` turns [`Rejected`](crate::Rejected) into
//! `UNAVAILABLE` (with `retry-after: 1` metadata), [`TimedOut`](crate::TimedOut) into
//! `DEADLINE_EXCEEDED`, and a `BreakerError<Status>` into its status;
//! [`BreakerLayer::respond_grpc`] answers them itself as trailers-only gRPC responses, so
//! `Server::builder().layer(..)` needs no glue.

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
mod axum;
mod classify;
mod find;
pub mod future;
mod layer;
mod refusal;
mod service;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
mod tonic;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum::{RespondHttp, ServerErrors, refusal_response};
pub use classify::{Classify, DefaultClassifier};
pub use find::find_refusal;
pub use layer::BreakerLayer;
pub use refusal::{AsError, Refusal, RefusalMode};
pub use service::BreakerService;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub use tonic::{RespondGrpc, refusal_status};
