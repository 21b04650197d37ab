//! tonic statuses (feature `tonic`): [`Rejected`], [`TimedOut`] and [`BreakerError`] into
//! `tonic::Status`, [`refusal_status`] for boxed errors, and [`RespondGrpc`], the mode in
//! which the layer answers a refusal itself.

use std::error::Error;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::{Refusal, RefusalMode, find_refusal};
use crate::{BreakerError, Rejected, TimedOut};

/// `UNAVAILABLE` with the rejection's text and a `retry-after: 1` metadata entry (as HTTP's
/// `Retry-After`).
///
/// ```
/// use keel_breaker::Rejected;
/// use tonic::{Code, Status};
///
/// let status = Status::from(Rejected::new());
/// assert_eq!(status.code(), Code::Unavailable);
/// assert_eq!(status.metadata().get("retry-after").unwrap(), "1");
/// ```
impl From<Rejected> for Status {
    fn from(rejected: Rejected) -> Status {
        let mut status = Status::new(Code::Unavailable, rejected.to_string());
        status.metadata_mut().insert(
            "retry-after",
            MetadataValue::from(Rejected::RETRY_AFTER_SECS),
        );
        status
    }
}

/// `DEADLINE_EXCEEDED` with the timeout's text.
impl From<TimedOut> for Status {
    fn from(timed_out: TimedOut) -> Status {
        Status::new(Code::DeadlineExceeded, timed_out.to_string())
    }
}

/// A rejection becomes `UNAVAILABLE`, a timeout `DEADLINE_EXCEEDED`, an inner error its own
/// status (a tonic client's `Status` as it is).
impl<E: Into<Status>> From<BreakerError<E>> for Status {
    fn from(err: BreakerError<E>) -> Status {
        match err {
            BreakerError::Rejected(r) => r.into(),
            BreakerError::TimedOut(t) => t.into(),
            BreakerError::Inner(e) => e.into(),
        }
    }
}

/// The status for `err` if a breaker rejected or timed out the request somewhere in it (see
/// [`find_refusal`]); `None` for any other error.
pub fn refusal_status(err: &(dyn Error + 'static)) -> Option<Status> {
    find_refusal(err).map(refusal_into_status)
}

fn refusal_into_status(refusal: Refusal) -> Status {
    match refusal {
        BreakerError::Rejected(r) => r.into(),
        BreakerError::TimedOut(t) => t.into(),
    }
}

/// The [`RefusalMode`] of [`BreakerLayer::respond_grpc`](super::BreakerLayer::respond_grpc):
/// a rejected or timed-out call resolves to `Ok` with a trailers-only gRPC response (HTTP
/// 200, `grpc-status: 14` or `4`, `grpc-message`; tonic's `Status::into_http`), and the
/// service's error is the inner service's error, unchanged.
///
/// For services answering `http::Response<B>` with any body `B: Default`, such as the
/// `Routes` that `tonic::transport::Server::builder().layer(..)` wraps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RespondGrpc;

impl<B: Default, Err> RefusalMode<http::Response<B>, Err> for RespondGrpc {
    type Error = Err;

    #[inline]
    fn refused(refusal: Refusal) -> Result<http::Response<B>, Err> {
        Ok(refusal_into_status(refusal).into_http())
    }

    #[inline]
    fn inner(err: Err) -> Err {
        err
    }
}
