//! axum responses (feature `axum`): [`Overloaded`] and [`ShedError`] as
//! `IntoResponse`, [`overloaded_response`] for boxed errors, and [`RespondHttp`], the mode
//! in which the layer answers a refusal itself.

use std::error::Error;

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{HeaderValue, RETRY_AFTER};

use super::refusal::RETRY_AFTER_SECS;
use super::{RefusalMode, ShedError, find_overloaded};
use crate::Overloaded;

/// `503 Service Unavailable`, `Retry-After: 1`, body `service overloaded` (text/plain).
///
/// One second is the default [cool-off](crate::Builder::cool_off): a client that comes
/// back sooner is likely refused again (a load balancer may try another instance at once).
impl IntoResponse for Overloaded {
    fn into_response(self) -> Response {
        let retry_after = [(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS))];
        (
            StatusCode::SERVICE_UNAVAILABLE,
            retry_after,
            "service overloaded",
        )
            .into_response()
    }
}

/// A refusal answers as [`Overloaded`] does (503); an inner error as the inner error does.
///
/// With an infallible axum handler behind the layer, `ShedError<Infallible>` is the whole
/// error handling: `HandleErrorLayer::new(|e: ShedError<Infallible>| async move { e })`;
/// stacked with keel-limiter's layer (whose `LimitError<E>` answers the same way), the
/// error is `ShedError<LimitError<Infallible>>` or `LimitError<ShedError<Infallible>>`,
/// and the handler the same one line.
impl<E: IntoResponse> IntoResponse for ShedError<E> {
    fn into_response(self) -> Response {
        match self {
            ShedError::Overloaded(o) => o.into_response(),
            ShedError::Inner(e) => e.into_response(),
        }
    }
}

/// The 503 response for `err` if a shedder refused the request somewhere in it
/// (see [`find_overloaded`]); `None` for any other error, which is the caller's to answer.
///
/// For `HandleErrorLayer` and `map_err` users whose errors are tower's `BoxError` (a
/// `Timeout` or other fallible layer between axum and the shedder): the example in the
/// [module docs](super#axum).
pub fn overloaded_response(err: &(dyn Error + 'static)) -> Option<Response> {
    find_overloaded(err).map(IntoResponse::into_response)
}

/// The [`RefusalMode`] of [`ShedderLayer::respond_http`](super::ShedderLayer::respond_http):
/// a refused call resolves to `Ok` with the response of [`Overloaded`] (503 with
/// `Retry-After: 1`), and the service's error is the inner service's error, unchanged.
///
/// For services whose response is axum's `Response` (an axum `Router`, its routes, a
/// `service_fn` answering `Response`). Behind `Router::layer` the stack stays infallible,
/// so no `HandleErrorLayer` is needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RespondHttp;

impl<Err> RefusalMode<Response, Err> for RespondHttp {
    type Error = Err;

    #[inline]
    fn refused(overloaded: Overloaded) -> Result<Response, Err> {
        Ok(overloaded.into_response())
    }

    #[inline]
    fn inner(err: Err) -> Err {
        err
    }
}

/// A [`Classify`](super::Classify)er for HTTP services: a `5xx` response or an `Err` is a
/// failure (it did not do the real work: a fast 503 from a breaker below must not teach the
/// shedder that requests are quick); any other response, a `404` included, is a pass.
///
/// ```
/// use keel_shedder::tower::{Classify, ServerErrors};
/// use std::convert::Infallible;
///
/// let response = |status: u16| {
///     Ok::<_, Infallible>(http::Response::builder().status(status).body(()).unwrap())
/// };
/// assert!(ServerErrors.is_failure(&response(503)));
/// assert!(!ServerErrors.is_failure(&response(404)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerErrors;

impl<B, Err> super::Classify<http::Response<B>, Err> for ServerErrors {
    #[inline]
    fn is_failure(&self, result: &Result<http::Response<B>, Err>) -> bool {
        result
            .as_ref()
            .map_or(true, |response| response.status().is_server_error())
    }
}
