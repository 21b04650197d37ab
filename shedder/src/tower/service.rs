//! [`ShedderService`]: a tower `Service` behind a load shedder.

use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use keel_timex::{Clock, CoarseClock};
use tower_service::Service;

#[cfg(feature = "tonic")]
use super::RespondGrpc;
#[cfg(feature = "axum")]
use super::RespondHttp;
use super::future::ResponseFuture;
use super::{AsError, Classify, DefaultClassifier, RefusalMode};
use crate::Shedder;

/// A tower `Service` behind a [`Shedder`]; usually made by
/// [`ShedderLayer`](super::ShedderLayer).
///
/// - `poll_ready` forwards the inner service's readiness and nothing else: the shedder
///   never makes it `Pending` or an error, even while it refuses every call.
/// - `call` asks [`Shedder::allow_owned`]: a refused call resolves at once to the refusal
///   without calling the inner service, as the [`RefusalMode`] `M` reports it
///   ([`ShedError::Overloaded`](super::ShedError::Overloaded) by default; a response of its
///   own after `respond_http` or `respond_grpc`); an admitted one carries its guard in the
///   [`ResponseFuture`], and the classifier `K` reports its outcome.
///
/// `Clone` when `S` and `K` are; clones share the shedder, so the per-connection clones
/// hyper, axum and tonic make all count toward one in-flight figure.
#[derive(Clone)]
pub struct ShedderService<S, C: Clock = CoarseClock, K = DefaultClassifier, M = AsError> {
    inner: S,
    shedder: Shedder<C>,
    classify: K,
    mode: PhantomData<fn() -> M>,
}

impl<S, C: Clock> ShedderService<S, C> {
    /// Puts `inner` behind `shedder`, with the [`DefaultClassifier`].
    pub fn new(inner: S, shedder: Shedder<C>) -> Self {
        ShedderService::from_parts(inner, shedder, DefaultClassifier)
    }
}

impl<S, C: Clock, K, M> ShedderService<S, C, K, M> {
    pub(crate) fn from_parts(inner: S, shedder: Shedder<C>, classify: K) -> Self {
        ShedderService {
            inner,
            shedder,
            classify,
            mode: PhantomData,
        }
    }

    /// The same service deciding passes with `classify` (see [`Classify`]).
    pub fn classifier<K2>(self, classify: K2) -> ShedderService<S, C, K2, M> {
        ShedderService::from_parts(self.inner, self.shedder, classify)
    }

    /// The same service answering a refusal itself with an HTTP response, as
    /// [`ShedderLayer::respond_http`](super::ShedderLayer::respond_http) does.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn respond_http(self) -> ShedderService<S, C, K, RespondHttp> {
        ShedderService::from_parts(self.inner, self.shedder, self.classify)
    }

    /// The same service answering a refusal itself with a gRPC status, as
    /// [`ShedderLayer::respond_grpc`](super::ShedderLayer::respond_grpc) does.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    pub fn respond_grpc(self) -> ShedderService<S, C, K, RespondGrpc> {
        ShedderService::from_parts(self.inner, self.shedder, self.classify)
    }

    /// The shedder, shared with every clone of this service.
    pub fn shedder(&self) -> &Shedder<C> {
        &self.shedder
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, K, M, Req> Service<Req> for ShedderService<S, C, K, M>
where
    S: Service<Req>,
    C: Clock,
    K: Classify<S::Response, S::Error> + Clone,
    M: RefusalMode<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = M::Error;
    type Future = ResponseFuture<S::Future, C, K, M>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(M::inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        // Admission first: a refused request costs no work of the inner service (whose
        // readiness stays reserved for the next call).
        match self.shedder.allow_owned() {
            Err(overloaded) => ResponseFuture::refused(overloaded),
            Ok(guard) => {
                ResponseFuture::admitted(self.inner.call(req), guard, self.classify.clone())
            }
        }
    }
}

impl<S: fmt::Debug, C: Clock, K, M> fmt::Debug for ShedderService<S, C, K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedderService")
            .field("shedder", &self.shedder)
            .field("inner", &self.inner)
            .field("classifier", &std::any::type_name::<K>())
            .field("refusals", &std::any::type_name::<M>())
            .finish()
    }
}
