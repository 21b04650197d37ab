//! [`RefusalMode`]: how a [`RateLimitService`](super::RateLimitService) reports a refusal,
//! as its error ([`AsError`], the default) or as a response it answers itself
//! ([`RespondHttp`](super::RespondHttp), [`RespondGrpc`](super::RespondGrpc)).

use super::LimitError;
use crate::Denied;

/// How a [`RateLimitService`](super::RateLimitService) reports a refusal: the mode is a
/// zero-sized marker type parameter of the layer, the service and the response future,
/// chosen with the layer's builder methods.
///
/// - [`AsError`] (the default): the service's error is [`LimitError<S::Error>`], and a
///   refusal is [`LimitError::Limited`], for the caller to answer.
/// - [`RespondHttp`](super::RespondHttp) (feature `axum`,
///   [`RateLimitLayer::respond_http`](super::RateLimitLayer::respond_http)): a refusal is
///   answered as an axum `Response` (429 or 503 with `Retry-After`); the service's error
///   is the inner service's `S::Error`, so an infallible axum stack stays infallible.
/// - [`RespondGrpc`](super::RespondGrpc) (feature `tonic`,
///   [`RateLimitLayer::respond_grpc`](super::RateLimitLayer::respond_grpc)): a refusal is
///   answered as a trailers-only gRPC response (`RESOURCE_EXHAUSTED` or `UNAVAILABLE`);
///   the error is again `S::Error`.
///
/// In every mode a refusal is produced without calling the inner service. The trait is
/// sealed: the modes are this crate's.
pub trait RefusalMode<Res, Err>: sealed::Sealed {
    /// The service's error.
    type Error;

    /// What a refused call resolves to.
    fn refused(denied: Denied) -> Result<Res, Self::Error>;

    /// The inner service's error (from `poll_ready` or its call), as the service's error.
    fn inner(err: Err) -> Self::Error;
}

/// The default [`RefusalMode`]: a refusal is the service's error,
/// [`LimitError::Limited`]; the inner service's errors are [`LimitError::Inner`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AsError;

impl<Res, Err> RefusalMode<Res, Err> for AsError {
    type Error = LimitError<Err>;

    #[inline]
    fn refused(denied: Denied) -> Result<Res, LimitError<Err>> {
        Err(LimitError::Limited(denied))
    }

    #[inline]
    fn inner(err: Err) -> LimitError<Err> {
        LimitError::Inner(err)
    }
}

/// The `Retry-After` value a response to `denied` carries, in whole seconds: the wait
/// rounded up and at least 1 ([`Denied::retry_after_secs`]); 1 for a backend that is down
/// ([`Denied::Unavailable`]: the limiter probes it every 100 ms, and a client told
/// nothing retries at once); none when no wait helps ([`Denied::NeverFits`]).
#[cfg(any(feature = "axum", feature = "tonic"))]
pub(crate) fn retry_after_header(denied: Denied) -> Option<u64> {
    match denied {
        Denied::Unavailable => Some(1),
        other => other.retry_after_secs(),
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
