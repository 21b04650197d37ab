//! axum responses (feature `axum`): [`Denied`] and [`LimitError`] as `IntoResponse`,
//! [`denied_response`] for boxed errors, and [`RespondHttp`], the mode in which the layer
//! answers a refusal itself.

use std::error::Error;

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::RETRY_AFTER;

use super::refusal::retry_after_header;
use super::{LimitError, RefusalMode, find_denied};
use crate::Denied;

/// `429 Too Many Requests` with `Retry-After` in whole seconds (the wait rounded up, at
/// least 1), or `503 Service Unavailable` with `Retry-After: 1` for a backend that is down
/// and fails closed ([`Denied::Unavailable`]: the limiter probes it every 100 ms; the
/// header keeps clients from retrying at once). A cost above the burst
/// ([`Denied::NeverFits`]) answers 429 without `Retry-After`: no wait helps. The body is
/// the refusal's text (text/plain), such as `rate limited: retry after 100ms`.
///
/// ```
/// use axum_core::response::IntoResponse;
/// use keel_limiter::Denied;
/// use std::time::Duration;
///
/// let response = Denied::Limited { retry_after: Duration::from_millis(1500) }.into_response();
/// assert_eq!(response.status(), 429);
/// assert_eq!(response.headers()["retry-after"], "2");
/// ```
impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let status = match self {
            Denied::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::TOO_MANY_REQUESTS,
        };
        let mut response = (status, self.to_string()).into_response();
        if let Some(secs) = retry_after_header(self) {
            response.headers_mut().insert(RETRY_AFTER, secs.into());
        }
        response
    }
}

/// A refusal answers as [`Denied`] does (429 or 503); an inner error as the inner error
/// does.
///
/// So the error of a stack of keel layers is its own response, whatever their order:
/// directly above them, `HandleErrorLayer::new(|e: LimitError<ShedError<Infallible>>|
/// async move { e })` is the whole error handling (see the [module docs](super#axum)).
impl<E: IntoResponse> IntoResponse for LimitError<E> {
    fn into_response(self) -> Response {
        match self {
            LimitError::Limited(denied) => denied.into_response(),
            LimitError::Inner(e) => e.into_response(),
        }
    }
}

/// The response for `err` if a rate limiter refused the request somewhere in it (see
/// [`find_denied`]); `None` for any other error, which is the caller's to answer.
///
/// For `HandleErrorLayer` and `map_err` users whose errors are tower's `BoxError` (a
/// `Timeout` or other fallible layer between axum and the limiter).
///
/// ```
/// use keel_limiter::Denied;
/// use keel_limiter::tower::{LimitError, denied_response};
/// use std::error::Error;
///
/// let boxed: Box<dyn Error + Send + Sync> =
///     Box::new(LimitError::<std::io::Error>::Limited(Denied::Unavailable));
/// assert_eq!(denied_response(&*boxed).unwrap().status(), 503);
/// let other: Box<dyn Error + Send + Sync> = "connection reset".into();
/// assert!(denied_response(&*other).is_none());
/// ```
pub fn denied_response(err: &(dyn Error + 'static)) -> Option<Response> {
    find_denied(err).map(IntoResponse::into_response)
}

/// The [`RefusalMode`] of
/// [`RateLimitLayer::respond_http`](super::RateLimitLayer::respond_http): a refused call
/// resolves to `Ok` with the response of [`Denied`] (429 or 503, with `Retry-After`), and
/// the service's error is the inner service's error, unchanged.
///
/// For services whose response is axum's `Response` (an axum `Router`, its routes, a
/// `service_fn` answering `Response`). Behind `Router::layer` the stack stays infallible,
/// so no `HandleErrorLayer` is needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RespondHttp;

impl<Err> RefusalMode<Response, Err> for RespondHttp {
    type Error = Err;

    #[inline]
    fn refused(denied: Denied) -> Result<Response, Err> {
        Ok(denied.into_response())
    }

    #[inline]
    fn inner(err: Err) -> Err {
        err
    }
}
