//! tonic statuses (feature `tonic`): [`Denied`] and [`LimitError`] into `tonic::Status`,
//! [`denied_status`] for boxed errors, and [`RespondGrpc`], the mode in which the layer
//! answers a refusal itself.

use std::error::Error;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::refusal::retry_after_header;
use super::{LimitError, RefusalMode, find_denied};
use crate::Denied;

/// The metadata key of the wait, in whole seconds, as HTTP's `Retry-After` header.
const RETRY_AFTER: &str = "retry-after";

/// `RESOURCE_EXHAUSTED`, or `UNAVAILABLE` for a backend that is down and fails closed
/// ([`Denied::Unavailable`]: the client may retry elsewhere). The message is the
/// refusal's text, with the wait (`rate limited: retry after 100ms`); the wait is also a
/// `retry-after` metadata entry in whole seconds, as HTTP's `Retry-After` header (rounded
/// up, at least 1; 1 for `Unavailable`; none for [`Denied::NeverFits`], which no wait
/// helps).
///
/// ```
/// use keel_limiter::Denied;
/// use std::time::Duration;
/// use tonic::{Code, Status};
///
/// let status = Status::from(Denied::Limited { retry_after: Duration::from_millis(1500) });
/// assert_eq!(status.code(), Code::ResourceExhausted);
/// assert_eq!(status.message(), "rate limited: retry after 1.5s");
/// assert_eq!(status.metadata().get("retry-after").unwrap(), "2");
/// ```
impl From<Denied> for Status {
    fn from(denied: Denied) -> Status {
        let code = match denied {
            Denied::Unavailable => Code::Unavailable,
            _ => Code::ResourceExhausted,
        };
        let mut status = Status::new(code, denied.to_string());
        if let Some(secs) = retry_after_header(denied) {
            status
                .metadata_mut()
                .insert(RETRY_AFTER, MetadataValue::from(secs));
        }
        status
    }
}

/// A refusal becomes the status of [`Denied`]; an inner error its own status.
///
/// With the inner errors statuses (a tonic client's, or a `ShedError<Status>` of a
/// shedder below), `Status::from(err)` answers the whole stack in either order.
impl<E: Into<Status>> From<LimitError<E>> for Status {
    fn from(err: LimitError<E>) -> Status {
        match err {
            LimitError::Limited(denied) => denied.into(),
            LimitError::Inner(e) => e.into(),
        }
    }
}

/// The status for `err` if a rate limiter refused the request somewhere in it (see
/// [`find_denied`]); `None` for any other error, which is the caller's to answer.
///
/// For errors boxed on the way up (tower's `BoxError`), e.g. in a `map_err` in front of a
/// tonic server.
///
/// ```
/// use keel_limiter::Denied;
/// use keel_limiter::tower::{LimitError, denied_status};
/// use std::error::Error;
///
/// let boxed: Box<dyn Error + Send + Sync> =
///     Box::new(LimitError::<std::io::Error>::Limited(Denied::Unavailable));
/// assert_eq!(denied_status(&*boxed).unwrap().code(), tonic::Code::Unavailable);
/// let other: Box<dyn Error + Send + Sync> = "connection reset".into();
/// assert!(denied_status(&*other).is_none());
/// ```
pub fn denied_status(err: &(dyn Error + 'static)) -> Option<Status> {
    find_denied(err).map(Status::from)
}

/// The [`RefusalMode`] of
/// [`RateLimitLayer::respond_grpc`](super::RateLimitLayer::respond_grpc): a refused call
/// resolves to `Ok` with a trailers-only gRPC response carrying the status of [`Denied`]
/// (HTTP 200, `content-type: application/grpc`, `grpc-status: 8` (`RESOURCE_EXHAUSTED`)
/// or `14` (`UNAVAILABLE`), `grpc-message`, `retry-after`, an empty body: tonic's
/// `Status::into_http`), and the service's error is the inner service's error, unchanged.
///
/// For services answering `http::Response<B>` with any body `B: Default`, such as the
/// `Routes` that `tonic::transport::Server::builder().layer(..)` wraps (whose error is
/// `Infallible`): tonic's server needs no glue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RespondGrpc;

impl<B: Default, Err> RefusalMode<http::Response<B>, Err> for RespondGrpc {
    type Error = Err;

    #[inline]
    fn refused(denied: Denied) -> Result<http::Response<B>, Err> {
        Ok(Status::from(denied).into_http())
    }

    #[inline]
    fn inner(err: Err) -> Err {
        err
    }
}
