//! axum responses (feature `axum`): [`Rejected`], [`TimedOut`] and [`BreakerError`] as
//! `IntoResponse`, [`refusal_response`] for boxed errors, [`RespondHttp`] (the layer answers
//! a refusal itself) and [`ServerErrors`] (5xx responses are the failures).

use std::error::Error;

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::RETRY_AFTER;

use super::{Classify, Refusal, RefusalMode, find_refusal};
use crate::{BreakerError, Rejected, TimedOut};

/// `503 Service Unavailable`, `Retry-After: 1`, body `circuit breaker is open`
/// (text/plain). One second is the default force-pass interval: a client that comes back
/// sooner is likely refused again.
///
/// ```
/// use axum_core::response::IntoResponse;
/// use keel_breaker::Rejected;
///
/// let response = Rejected::new().into_response();
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "1");
/// ```
impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, self.to_string()).into_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, Rejected::RETRY_AFTER_SECS.into());
        response
    }
}

/// `504 Gateway Timeout`, body `call timed out after …` (text/plain): the dependency did not
/// answer within the breaker's deadline.
impl IntoResponse for TimedOut {
    fn into_response(self) -> Response {
        (StatusCode::GATEWAY_TIMEOUT, self.to_string()).into_response()
    }
}

/// A rejection answers 503, a timeout 504, an inner error as the inner error does.
///
/// So with infallible handlers behind the layer, `HandleErrorLayer::new(|e:
/// BreakerError<Infallible>| async move { e })` is the whole error handling, whatever
/// other keel layers are stacked around it.
impl<E: IntoResponse, T: IntoResponse> IntoResponse for BreakerError<E, T> {
    fn into_response(self) -> Response {
        match self {
            BreakerError::Rejected(r) => r.into_response(),
            BreakerError::TimedOut(t) => t.into_response(),
            BreakerError::Inner(e) => e.into_response(),
        }
    }
}

/// The response for `err` if a breaker rejected or timed out the request somewhere in it
/// (see [`find_refusal`]); `None` for any other error, which is the caller's to answer.
///
/// ```
/// use keel_breaker::tower::refusal_response;
/// use keel_breaker::{BreakerError, Rejected};
/// use std::error::Error;
///
/// let boxed: Box<dyn Error + Send + Sync> =
///     Box::new(BreakerError::<std::io::Error>::Rejected(Rejected::new()));
/// assert_eq!(refusal_response(&*boxed).unwrap().status(), 503);
/// let other: Box<dyn Error + Send + Sync> = "connection reset".into();
/// assert!(refusal_response(&*other).is_none());
/// ```
pub fn refusal_response(err: &(dyn Error + 'static)) -> Option<Response> {
    find_refusal(err).map(IntoResponse::into_response)
}

/// The [`RefusalMode`] of [`BreakerLayer::respond_http`](super::BreakerLayer::respond_http):
/// a rejected call resolves to `Ok` with a 503 response (`Retry-After: 1`), a timed-out one
/// with 504, and the service's error is the inner service's error, unchanged.
///
/// For services whose response is axum's `Response`. Behind `Router::layer` the stack stays
/// infallible, so no `HandleErrorLayer` is needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RespondHttp;

impl<Err> RefusalMode<Response, Err> for RespondHttp {
    type Error = Err;

    #[inline]
    fn refused(refusal: Refusal) -> Result<Response, Err> {
        Ok(refusal.into_response())
    }

    #[inline]
    fn inner(err: Err) -> Err {
        err
    }
}

/// A [`Classify`]er for HTTP services: a `5xx` response or an `Err` is a failure; any
/// other response (a `404` included: the dependency answered) is a success.
///
/// ```
/// use keel_breaker::tower::{Classify, ServerErrors};
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

impl<B, Err> Classify<http::Response<B>, Err> for ServerErrors {
    #[inline]
    fn is_failure(&self, result: &Result<http::Response<B>, Err>) -> bool {
        result
            .as_ref()
            .map_or(true, |response| response.status().is_server_error())
    }
}
