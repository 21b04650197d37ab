//! [`RefusalMode`]: how a [`BreakerService`](super::BreakerService) reports the breaker's
//! own outcomes (a rejection, a timeout), as its error ([`AsError`], the default) or as a
//! response it answers itself ([`RespondHttp`](super::RespondHttp),
//! [`RespondGrpc`](super::RespondGrpc)).

use std::convert::Infallible;

use crate::BreakerError;

/// The breaker's own reason for not returning the inner service's answer: a rejection or
/// (with a [`timeout`](crate::Builder::timeout)) the deadline.
pub type Refusal = BreakerError<Infallible>;

/// How a [`BreakerService`](super::BreakerService) reports a rejection or a timeout: a
/// zero-sized marker type parameter of the layer, the service and the response future,
/// chosen with the layer's builder methods.
///
/// - [`AsError`] (the default): the service's error is
///   [`BreakerError<S::Error>`](crate::BreakerError), for the caller to answer.
/// - [`RespondHttp`](super::RespondHttp) (feature `axum`,
///   [`BreakerLayer::respond_http`](super::BreakerLayer::respond_http)): answered as an
///   axum `Response` (503 with `Retry-After`, or 504 for a timeout); the service's error is
///   the inner service's `S::Error`, so an infallible axum stack stays infallible.
/// - [`RespondGrpc`](super::RespondGrpc) (feature `tonic`,
///   [`BreakerLayer::respond_grpc`](super::BreakerLayer::respond_grpc)): answered as a
///   trailers-only gRPC response (`UNAVAILABLE`, or `DEADLINE_EXCEEDED`); the error is again
///   `S::Error`.
///
/// In every mode a rejected call does not reach the inner service, and the outcome is
/// recorded the same way. The trait is sealed: the modes are this crate's.
pub trait RefusalMode<Res, Err>: sealed::Sealed {
    /// The service's error.
    type Error;

    /// What a rejected or timed-out call resolves to.
    fn refused(refusal: Refusal) -> Result<Res, Self::Error>;

    /// The inner service's error (from `poll_ready` or its call), as the service's error.
    fn inner(err: Err) -> Self::Error;
}

/// The default [`RefusalMode`]: a rejection or timeout is the service's error
/// ([`BreakerError::Rejected`], [`BreakerError::TimedOut`]); the inner service's errors are
/// [`BreakerError::Inner`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AsError;

impl<Res, Err> RefusalMode<Res, Err> for AsError {
    type Error = BreakerError<Err>;

    #[inline]
    fn refused(refusal: Refusal) -> Result<Res, BreakerError<Err>> {
        Err(match refusal {
            BreakerError::Rejected(r) => BreakerError::Rejected(r),
            BreakerError::TimedOut(t) => BreakerError::TimedOut(t),
        })
    }

    #[inline]
    fn inner(err: Err) -> BreakerError<Err> {
        BreakerError::Inner(err)
    }
}

pub(crate) mod sealed {
    /// Keeps [`RefusalMode`](super::RefusalMode) to this crate's markers.
    pub trait Sealed {}

    impl Sealed for super::AsError {}
    #[cfg(feature = "axum")]
    impl Sealed for super::super::RespondHttp {}
    #[cfg(feature = "tonic")]
    impl Sealed for super::super::RespondGrpc {}
}
