//! tower integration (feature `tower`): [`RateLimitLayer`] and [`RateLimitService`] put any
//! tower `Service` (an axum router, a tonic server, a hyper service) behind a
//! [`TokenLimiter`](crate::TokenLimiter), with one bucket per client.
//!
//! - **Keys.** A [`KeyExtractor`] (any closure `Fn(&Req) -> Option<String>`) names the
//!   bucket a request takes its tokens from: a client IP, a user, an API key, a tenant.
//!   A request without a key takes from the limiter's unkeyed bucket, which all keyless
//!   requests share ([`MissingKey::Shared`], the default: leaving the key out does not
//!   escape the limit), or is not limited at all ([`MissingKey::Allow`]).
//!   [`RateLimitLayer::unkeyed`] puts the whole service under the one unkeyed bucket.
//! - **Cost.** Every request takes [`cost`](RateLimitLayer::cost) tokens (default 1).
//! - **Shared state.** The layer holds a [`TokenLimiter`](crate::TokenLimiter), whose
//!   buckets live in an `Arc`: clones of the layer and of every service it makes (axum and
//!   hyper clone the service per connection, axum's `Router::layer` per route) take from
//!   the same buckets. On Redis (feature `redis`) every instance of the server does too.
//! - **Readiness.** `poll_ready` forwards the inner service's readiness and nothing else.
//!   The limiter never makes it `Pending`: it has no request, hence no key, to wait for,
//!   and waiting would queue requests a client should be told to retry. Nor an error, which
//!   tower reads as "this service is dead". (tower's own `RateLimit` does wait in
//!   `poll_ready`, for one unkeyed rate.)
//! - **Rejection.** `call` keys the request and asks the limiter. A refused call resolves
//!   to [`LimitError::Limited`] and the inner service is not called: refusing costs a
//!   decision, not a request, and takes no token. In memory the decision is one
//!   compare-and-swap taken in `call`, and an admitted request is passed on at once, as
//!   without the layer. On Redis the decision is a script to await, so the
//!   [`ResponseFuture`](future::ResponseFuture) awaits it, then calls the inner service.
//! - **The deferred call** is why the inner service must be `Clone`. tower lets `call` be
//!   made only on the instance `poll_ready` reported ready (readiness may hold a
//!   concurrency permit or a buffer slot); a clone of it starts unready. So `call` moves
//!   the ready instance into the future with the request and keeps a fresh clone in its
//!   place (`mem::replace`), which the caller's next `poll_ready` drives: the instance that
//!   was polled is the one called. A refusal drops that instance, releasing its readiness.
//! - **Errors** are [`LimitError<S::Error>`](LimitError), not boxed.
//!   [`LimitError::Limited`] holds the [`Denied`](crate::Denied) reason: answer it with
//!   [`http_status`](LimitError::http_status) (429 Too Many Requests, or 503 when a
//!   Redis-backed limiter fails closed) and a `Retry-After` header of
//!   [`retry_after_secs`](LimitError::retry_after_secs) (rounded up, at least 1; none for a
//!   cost above the burst, [`Denied::NeverFits`](crate::Denied::NeverFits), which no wait
//!   helps). The inner service's errors come back unchanged as [`LimitError::Inner`]. Once
//!   boxed into a `BoxError` by a layer above, [`find_denied`] gets the refusal back.
//! - **Or responses.** [`RateLimitLayer::respond_http`] (feature `axum`) and
//!   [`RateLimitLayer::respond_grpc`] (feature `tonic`) make the layer answer a refusal
//!   itself, with the response a handler of the error would give, still without calling
//!   the inner service (on Redis, after awaiting the decision as above). The service's
//!   error is then the inner service's own, unchanged. The choice is a zero-sized marker
//!   type parameter ([`RefusalMode`]: [`AsError`] by default), so the default layer is the
//!   same code and size as without it.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use keel_limiter::tower::{LimitError, RateLimitLayer};
//! use keel_limiter::{Denied, Rate, TokenLimiter};
//! use keel_timex::ManualClock;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! struct Request {
//!     client: &'static str,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // 10 requests a second per client, in bursts of 2 (a server would use `.build()`).
//! let clock = ManualClock::new();
//! let limiter = TokenLimiter::builder(Rate::per_second(10), 2)
//!     .build_with_clock(clock.clone())
//!     .unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(limiter, |req: &Request| Some(req.client.to_owned())))
//!     .service(service_fn(|_req: Request| async { Ok::<u16, Infallible>(200) }));
//!
//! // What an HTTP server answers: the status, and the Retry-After header if any.
//! let answer = |result: Result<u16, LimitError<Infallible>>| match result {
//!     Ok(status) => (status, None),
//!     Err(LimitError::Inner(never)) => match never {},
//!     Err(refused) => (refused.http_status().unwrap(), refused.retry_after_secs()),
//! };
//! let from = |client| Request { client };
//!
//! for _ in 0..2 {
//!     assert_eq!(answer(service.clone().oneshot(from("alice")).await), (200, None));
//! }
//! let refused = service.clone().oneshot(from("alice")).await.unwrap_err();
//! let retry_after = Duration::from_millis(100);
//! assert_eq!(refused, LimitError::Limited(Denied::Limited { retry_after }));
//! assert_eq!(answer(Err(refused)), (429, Some(1)));
//!
//! // Another client has its own bucket.
//! assert_eq!(answer(service.clone().oneshot(from("bob")).await), (200, None));
//!
//! // 100 ms later alice's bucket holds a token again.
//! clock.advance(retry_after);
//! assert_eq!(answer(service.oneshot(from("alice")).await), (200, None));
//! # }
//! ```
//!
//! # axum and hyper
//!
//! axum routes must be infallible. With feature `axum`, [`Denied`](crate::Denied) and
//! [`LimitError<E>`] (for `E: IntoResponse`, such as `Infallible`, or a shedder's
//! `ShedError<Infallible>`) are axum responses: 429 Too Many Requests with `Retry-After`
//! in whole seconds, or 503 with `Retry-After: 1` for a backend that is down and fails
//! closed. There are two ways to answer a refusal.
//!
//! **The layer answers it** ([`respond_http`](RateLimitLayer::respond_http)): nothing else
//! to write, no `HandleErrorLayer`. Here with keel-shedder's layer in the same mode, in
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
//! // One bucket per API key, 10 requests a second in bursts of 2. (A server would use
//! // `.build()` and `Shedder::new()`; this example holds the clock and the CPU still.)
//! let api_key = |req: &Request| Some(req.headers().get("x-api-key")?.to_str().ok()?.to_owned());
//! let limiter = TokenLimiter::builder(Rate::per_second(10), 2)
//!     .build_with_clock(ManualClock::new())
//!     .unwrap();
//! let shedder = Shedder::builder().cpu_source(ManualCpu::new(0)).build().unwrap();
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(RateLimitLayer::new(limiter, api_key).respond_http())
//!         .layer(ShedderLayer::new(shedder).respond_http()),
//! );
//!
//! let get = || Request::get("/").header("x-api-key", "k-42").body(Body::empty()).unwrap();
//! for _ in 0..2 {
//!     assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), StatusCode::OK);
//! }
//! let refused = app.oneshot(get()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
//! # }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! A real server keys by client IP:
//! `req.extensions().get::<ConnectInfo<SocketAddr>>()` (served with
//! `into_make_service_with_connect_info`), or a header a trusted proxy sets.
//!
//! **A `HandleErrorLayer` answers it**, for the default mode (a stack that also wants to
//! see the errors, log them, or answer them otherwise): the error is its own response, so
//! the handler is one line, whatever the order of the keel layers below it
//! (`LimitError<ShedError<Infallible>>` here, `ShedError<LimitError<Infallible>>` the
//! other way round):
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
//! let limiter = TokenLimiter::builder(Rate::per_second(10), 2)
//!     .build_with_clock(ManualClock::new())
//!     .unwrap();
//! let shedder = Shedder::builder().cpu_source(ManualCpu::new(0)).build().unwrap();
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(HandleErrorLayer::new(|e: LimitError<ShedError<Infallible>>| async move { e }))
//!         .layer(RateLimitLayer::unkeyed(limiter))
//!         .layer(ShedderLayer::new(shedder)),
//! );
//!
//! let get = || Request::get("/").body(Body::empty()).unwrap();
//! for _ in 0..2 {
//!     assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), StatusCode::OK);
//! }
//! let refused = app.oneshot(get()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
//! # }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! With a fallible layer between the two (a timeout), the handler receives a `BoxError`:
//! [`denied_response`] picks the refusal out of it (`None` for any other error). hyper
//! users without axum answer [`LimitError::http_status`] and
//! [`retry_after_secs`](LimitError::retry_after_secs) in their service's error path.
//!
//! # tonic
//!
//! With feature `tonic` (tonic 0.14 without its default features: `tonic::Status` and its
//! metadata, not the transport), `tonic::Status::from` turns [`Denied`](crate::Denied) and
//! [`LimitError<E>`] (for `E: Into<Status>`) into `RESOURCE_EXHAUSTED`, or `UNAVAILABLE`
//! for a failing backend, with the wait in the message and in a `retry-after` metadata
//! entry (whole seconds); [`denied_status`] does it for a boxed error. tonic's server
//! takes the layer as it is in [`respond_grpc`](RateLimitLayer::respond_grpc) mode: a
//! refusal is answered as a trailers-only gRPC response, and the error stays tonic's
//! `Infallible`. (In the default mode tonic's server would not recognise the error and
//! would reset the stream.)
//!
//! ```
//! # #[cfg(feature = "tonic")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use keel_limiter::tower::RateLimitLayer;
//! use keel_limiter::{Rate, TokenLimiter};
//! use keel_timex::ManualClock;
//! use tonic::body::Body;
//! use tonic::service::Routes;
//! use tower::{Layer, ServiceExt};
//!
//! let limiter = TokenLimiter::builder(Rate::per_second(10), 1)
//!     .build_with_clock(ManualClock::new())
//!     .unwrap();
//! let layer = RateLimitLayer::unkeyed(limiter).respond_grpc();
//! // A server: `Server::builder().layer(layer).add_service(..).serve(addr)`. Here the
//! // service tonic wraps, with no gRPC service added: it answers UNIMPLEMENTED (12).
//! let server = layer.layer(Routes::default());
//! let call = || http::Request::post("/echo.Echo/Say").body(Body::empty()).unwrap();
//!
//! let admitted = server.clone().oneshot(call()).await.unwrap();
//! assert_eq!(admitted.headers()["grpc-status"], "12");
//! let refused = server.oneshot(call()).await.unwrap();
//! assert_eq!(refused.headers()["grpc-status"], "8"); // RESOURCE_EXHAUSTED
//! assert_eq!(refused.headers()["retry-after"], "1");
//! # }
//! # #[cfg(not(feature = "tonic"))]
//! # fn main() {}
//! ```
//!
//! Without the feature, [`Denied::grpc_code`](crate::Denied::grpc_code) gives the code
//! (8 or 14) for another gRPC stack.

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
mod axum;
mod error;
pub mod future;
mod key;
mod layer;
mod limit;
mod refusal;
mod service;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
mod tonic;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum::{RespondHttp, denied_response};
pub use error::{LimitError, find_denied};
pub use key::{KeyExtractor, MissingKey, Unkeyed};
pub use layer::RateLimitLayer;
pub use refusal::{AsError, RefusalMode};
pub use service::RateLimitService;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub use tonic::{RespondGrpc, denied_status};
