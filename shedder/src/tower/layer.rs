//! [`ShedderLayer`]: puts services behind one shared [`Shedder`].

use std::fmt;
use std::marker::PhantomData;

use keel_timex::{Clock, CoarseClock};
use tower_layer::Layer;

#[cfg(feature = "tonic")]
use super::RespondGrpc;
#[cfg(feature = "axum")]
use super::RespondHttp;
use super::{AsError, DefaultClassifier, ShedderService};
use crate::Shedder;

/// A tower `Layer` that puts every service it wraps behind one [`Shedder`].
///
/// Clones of the layer, the services it makes and their clones all share the shedder (its
/// state lives in an `Arc`): the in-flight count is the whole server's, whatever
/// connection a request came in on. For separate limits per route, use one layer per
/// route (see [`ShedderGroup`](crate::ShedderGroup)).
///
/// A refusal is the service's error ([`ShedError::Overloaded`](super::ShedError::Overloaded))
/// unless [`respond_http`](ShedderLayer::respond_http) or
/// [`respond_grpc`](ShedderLayer::respond_grpc) make the layer answer it itself; the
/// marker `M` ([`RefusalMode`](super::RefusalMode)) records the choice.
#[derive(Clone)]
pub struct ShedderLayer<C: Clock = CoarseClock, K = DefaultClassifier, M = AsError> {
    shedder: Shedder<C>,
    classify: K,
    mode: PhantomData<fn() -> M>,
}

impl<C: Clock> ShedderLayer<C> {
    /// A layer around `shedder` with the [`DefaultClassifier`] (`Err` is a failure).
    pub fn new(shedder: Shedder<C>) -> Self {
        ShedderLayer::from_parts(shedder, DefaultClassifier)
    }
}

impl<C: Clock, K, M> ShedderLayer<C, K, M> {
    fn from_parts(shedder: Shedder<C>, classify: K) -> Self {
        ShedderLayer {
            shedder,
            classify,
            mode: PhantomData,
        }
    }

    /// The same layer deciding passes with `classify`, e.g. a closure that counts HTTP
    /// 5xx as failures (see [`Classify`](super::Classify)).
    pub fn classifier<K2>(self, classify: K2) -> ShedderLayer<C, K2, M> {
        ShedderLayer::from_parts(self.shedder, classify)
    }

    /// The same layer, its services answering a refusal themselves with an HTTP response
    /// (feature `axum`): 503 Service Unavailable with `Retry-After: 1` (see
    /// [`RespondHttp`]). The inner service is not called, as before; the service's error
    /// becomes the inner service's own, so behind an axum `Router` (whose routes are
    /// infallible) no `HandleErrorLayer` is needed.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn respond_http(self) -> ShedderLayer<C, K, RespondHttp> {
        ShedderLayer::from_parts(self.shedder, self.classify)
    }

    /// The same layer, its services answering a refusal themselves with a trailers-only
    /// gRPC response (feature `tonic`): `UNAVAILABLE` (see [`RespondGrpc`]). The inner
    /// service is not called, as before; the service's error becomes the inner service's
    /// own, so `tonic::transport::Server::builder().layer(..)` takes the layer as it is.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    pub fn respond_grpc(self) -> ShedderLayer<C, K, RespondGrpc> {
        ShedderLayer::from_parts(self.shedder, self.classify)
    }

    /// The shedder every service of this layer shares.
    pub fn shedder(&self) -> &Shedder<C> {
        &self.shedder
    }
}

impl<C: Clock> From<Shedder<C>> for ShedderLayer<C> {
    fn from(shedder: Shedder<C>) -> Self {
        ShedderLayer::new(shedder)
    }
}

impl<S, C: Clock, K: Clone, M> Layer<S> for ShedderLayer<C, K, M> {
    type Service = ShedderService<S, C, K, M>;

    fn layer(&self, inner: S) -> Self::Service {
        ShedderService::from_parts(inner, self.shedder.clone(), self.classify.clone())
    }
}

impl<C: Clock, K, M> fmt::Debug for ShedderLayer<C, K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedderLayer")
            .field("shedder", &self.shedder)
            .field("classifier", &std::any::type_name::<K>())
            .field("refusals", &std::any::type_name::<M>())
            .finish()
    }
}
