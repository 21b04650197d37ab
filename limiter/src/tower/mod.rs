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
//! axum routes must be infallible, so put a `HandleErrorLayer` above the limiter and turn a
//! refusal into its response there. axum is not a dependency of this crate, so this is not
//! compiled here:
//!
//! ```ignore
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//!
//! use axum::error_handling::HandleErrorLayer;
//! use axum::extract::{ConnectInfo, Request};
//! use axum::http::{HeaderValue, StatusCode, header};
//! use axum::response::{IntoResponse, Response};
//! use axum::{Router, routing::get};
//! use keel_limiter::tower::{LimitError, RateLimitLayer};
//! use keel_limiter::{Rate, TokenLimiter};
//! use tower::ServiceBuilder;
//!
//! async fn refused(err: LimitError<Infallible>) -> Response {
//!     let status = StatusCode::from_u16(err.http_status().unwrap_or(500))
//!         .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
//!     let mut response = (status, err.to_string()).into_response();
//!     if let Some(secs) = err.retry_after_secs() {
//!         response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
//!     }
//!     response
//! }
//!
//! // One bucket per client IP (served with `into_make_service_with_connect_info`).
//! let client_ip = |req: &Request| {
//!     let ConnectInfo(addr) = req.extensions().get::<ConnectInfo<SocketAddr>>()?;
//!     Some(addr.ip().to_string())
//! };
//! let limiter = TokenLimiter::builder(Rate::per_second(10), 20).build()?;
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(HandleErrorLayer::new(refused))
//!         .layer(RateLimitLayer::new(limiter, client_ip)),
//! );
//! ```
//!
//! With a fallible layer between the two (a timeout), the handler receives a `BoxError`:
//! [`find_denied`] picks the refusal out of it, and `LimitError::<Infallible>::from(denied)`
//! answers it as above. hyper users do the same in their service's error path.
//!
//! # tonic
//!
//! Report [`LimitError::Limited`] as `tonic::Code::ResourceExhausted` (or `Unavailable`
//! for [`Denied::Unavailable`](crate::Denied::Unavailable)), with the wait in the message
//! or metadata; `LimitError::Inner` carries the transport's own error.

mod error;
pub mod future;
mod key;
mod layer;
mod limit;
mod service;

pub use error::{LimitError, find_denied};
pub use key::{KeyExtractor, MissingKey, Unkeyed};
pub use layer::RateLimitLayer;
pub use service::RateLimitService;
