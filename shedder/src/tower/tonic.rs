//! tonic statuses (feature `tonic`): [`Overloaded`] and [`ShedError`] into
//! `tonic::Status`, [`overloaded_status`] for boxed errors, and [`RespondGrpc`], the mode
//! in which the layer answers a refusal itself.

use std::error::Error;

use tonic::Status;
use tonic::metadata::MetadataValue;

use super::refusal::RETRY_AFTER_SECS;
use super::{RefusalMode, ShedError, find_overloaded};
use crate::Overloaded;

/// `UNAVAILABLE` ([`Overloaded::GRPC_CODE`]: the client may retry elsewhere), message
/// `service overloaded`, and a `retry-after` metadata entry of 1 second (the default
/// [cool-off](crate::Builder::cool_off), as HTTP's `Retry-After`).
///
/// ```
/// use keel_shedder::Overloaded;
/// use tonic::{Code, Status};
///
/// let status = Status::from(Overloaded::new(Some(950), 12, 10.0));
/// assert_eq!(status.code(), Code::Unavailable);
/// assert_eq!(status.message(), "service overloaded");
/// assert_eq!(status.metadata().get("retry-after").unwrap(), "1");
/// ```
impl From<Overloaded> for Status {
    fn from(overloaded: Overloaded) -> Status {
        let mut status = Status::unavailable(overloaded.to_string());
        status
            .metadata_mut()
            .insert("retry-after", MetadataValue::from(RETRY_AFTER_SECS));
        status
    }
}

/// A refusal becomes the status of [`Overloaded`]; an inner error its own status.
///
/// With the inner errors statuses (a tonic client's, or a `LimitError<Status>` of a rate
/// limiter below), `Status::from(err)` answers the whole stack in either order.
impl<E: Into<Status>> From<ShedError<E>> for Status {
    fn from(err: ShedError<E>) -> Status {
        match err {
            ShedError::Overloaded(overloaded) => overloaded.into(),
            ShedError::Inner(e) => e.into(),
        }
    }
}

/// The status for `err` if a shedder refused the request somewhere in it (see
/// [`find_overloaded`]); `None` for any other error, which is the caller's to answer.
///
/// For errors boxed on the way up (tower's `BoxError`), e.g. in a `map_err` in front of a
/// tonic server.
///
/// ```
/// use keel_shedder::Overloaded;
/// use keel_shedder::tower::{ShedError, overloaded_status};
/// use std::error::Error;
///
/// let refused = ShedError::<std::io::Error>::Overloaded(Overloaded::new(None, 3, 1.0));
/// let boxed: Box<dyn Error + Send + Sync> = Box::new(refused);
/// assert_eq!(overloaded_status(&*boxed).unwrap().code(), tonic::Code::Unavailable);
/// let other: Box<dyn Error + Send + Sync> = "connection reset".into();
/// assert!(overloaded_status(&*other).is_none());
/// ```
pub fn overloaded_status(err: &(dyn Error + 'static)) -> Option<Status> {
    find_overloaded(err).map(Status::from)
}

/// The [`RefusalMode`] of [`ShedderLayer::respond_grpc`](super::ShedderLayer::respond_grpc):
/// a refused call resolves to `Ok` with a trailers-only gRPC response carrying the status
/// of [`Overloaded`] (HTTP 200, `content-type: application/grpc`, `grpc-status: 14`
/// (`UNAVAILABLE`), `grpc-message`, `retry-after: 1`, an empty body: tonic's
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
    fn refused(overloaded: Overloaded) -> Result<http::Response<B>, Err> {
        Ok(Status::from(overloaded).into_http())
    }

    #[inline]
    fn inner(err: Err) -> Err {
        err
    }
}
