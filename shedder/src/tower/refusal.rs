//! [`RefusalMode`]: how a [`ShedderService`](super::ShedderService) reports a refusal, as
//! its error ([`AsError`], the default) or as a response it answers itself
//! ([`RespondHttp`](super::RespondHttp), [`RespondGrpc`](super::RespondGrpc)).

use super::ShedError;
use crate::Overloaded;

/// How a [`ShedderService`](super::ShedderService) reports a refusal: the mode is a
/// zero-sized marker type parameter of the layer, the service and the response future,
/// chosen with the layer's builder methods.
///
/// - [`AsError`] (the default): the service's error is [`ShedError<S::Error>`], and a
///   refusal is [`ShedError::Overloaded`], for the caller to answer.
/// - [`RespondHttp`](super::RespondHttp) (feature `axum`,
///   [`ShedderLayer::respond_http`](super::ShedderLayer::respond_http)): a refusal is
///   answered as an axum `Response` (503 with `Retry-After: 1`); the service's error is the
///   inner service's `S::Error`, so an infallible axum stack stays infallible.
/// - [`RespondGrpc`](super::RespondGrpc) (feature `tonic`,
///   [`ShedderLayer::respond_grpc`](super::ShedderLayer::respond_grpc)): a refusal is
///   answered as a trailers-only gRPC response (`UNAVAILABLE`); the error is again
///   `S::Error`.
///
/// In every mode a refusal is produced without calling the inner service, and the
/// [`Classify`](super::Classify)er sees only the inner service's results (a refusal was
/// not admitted: it has no outcome to report). The trait is sealed: the modes are this
/// crate's.
pub trait RefusalMode<Res, Err>: sealed::Sealed {
    /// The service's error.
    type Error;

    /// What a refused call resolves to.
    fn refused(overloaded: Overloaded) -> Result<Res, Self::Error>;

    /// The inner service's error (from `poll_ready` or its call), as the service's error.
    fn inner(err: Err) -> Self::Error;
}

/// The default [`RefusalMode`]: a refusal is the service's error,
/// [`ShedError::Overloaded`]; the inner service's errors are [`ShedError::Inner`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AsError;

impl<Res, Err> RefusalMode<Res, Err> for AsError {
    type Error = ShedError<Err>;

    #[inline]
    fn refused(overloaded: Overloaded) -> Result<Res, ShedError<Err>> {
        Err(ShedError::Overloaded(overloaded))
    }

    #[inline]
    fn inner(err: Err) -> ShedError<Err> {
        ShedError::Inner(err)
    }
}

/// The `Retry-After` of a refusal, in seconds: the default
/// [cool-off](crate::Builder::cool_off). A client that comes back sooner is likely refused
/// again (a load balancer may try another instance at once).
#[cfg(any(feature = "axum", feature = "tonic"))]
pub(crate) const RETRY_AFTER_SECS: u64 = 1;

pub(crate) mod sealed {
    /// Keeps [`RefusalMode`](super::RefusalMode) to this crate's markers.
    pub trait Sealed {}

    impl Sealed for super::AsError {}
    #[cfg(feature = "axum")]
    impl Sealed for super::super::RespondHttp {}
    #[cfg(feature = "tonic")]
    impl Sealed for super::super::RespondGrpc {}
}
