//! [`BreakerLayer`]: wraps services in a [`BreakerService`] sharing one breaker.

use std::fmt;
use std::marker::PhantomData;

use keel_timex::{Clock, CoarseClock};
use tower_layer::Layer;

#[cfg(feature = "tonic")]
use super::RespondGrpc;
#[cfg(feature = "axum")]
use super::RespondHttp;
use super::{AsError, BreakerService, DefaultClassifier};
use crate::Breaker;

/// A tower `Layer` that puts every service it wraps behind one [`Breaker`].
///
/// Clones of the layer, and every service it makes (and their clones), share the breaker:
/// its state lives in the [`Breaker`]'s `Arc`. For one breaker per dependency, make one
/// layer per dependency.
///
/// A rejection or timeout is the service's error ([`BreakerError`](crate::BreakerError))
/// unless [`respond_http`](BreakerLayer::respond_http) or
/// [`respond_grpc`](BreakerLayer::respond_grpc) make the layer answer it itself; the marker
/// `M` ([`RefusalMode`](super::RefusalMode)) records the choice.
pub struct BreakerLayer<C: Clock = CoarseClock, K = DefaultClassifier, M = AsError> {
    breaker: Breaker<C>,
    classifier: K,
    mode: PhantomData<fn() -> M>,
}

impl<C: Clock, K: Clone, M> Clone for BreakerLayer<C, K, M> {
    fn clone(&self) -> Self {
        BreakerLayer {
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
            mode: PhantomData,
        }
    }
}

impl<C: Clock> BreakerLayer<C> {
    /// A layer around `breaker`, with the [`DefaultClassifier`] (`Err` is a failure).
    pub const fn new(breaker: Breaker<C>) -> Self {
        BreakerLayer {
            breaker,
            classifier: DefaultClassifier,
            mode: PhantomData,
        }
    }
}

impl<C: Clock, K, M> BreakerLayer<C, K, M> {
    /// Replaces the classifier, e.g. with a closure that counts HTTP 5xx as failures (or
    /// [`ServerErrors`](super::ServerErrors), feature `axum`): see
    /// [`Classify`](super::Classify).
    pub fn classifier<K2>(self, classifier: K2) -> BreakerLayer<C, K2, M> {
        BreakerLayer {
            breaker: self.breaker,
            classifier,
            mode: PhantomData,
        }
    }

    /// The same layer, its services answering a rejection (503 with `Retry-After`) or a
    /// timeout (504) themselves with an HTTP response (feature `axum`; see
    /// [`RespondHttp`]). The service's error becomes the inner service's own, so behind an
    /// axum `Router` no `HandleErrorLayer` is needed.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn respond_http(self) -> BreakerLayer<C, K, RespondHttp> {
        self.with_mode()
    }

    /// The same layer, its services answering a rejection (`UNAVAILABLE`) or a timeout
    /// (`DEADLINE_EXCEEDED`) themselves with a trailers-only gRPC response (feature
    /// `tonic`; see [`RespondGrpc`]), so `tonic::transport::Server::builder().layer(..)`
    /// takes the layer as it is.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    pub fn respond_grpc(self) -> BreakerLayer<C, K, RespondGrpc> {
        self.with_mode()
    }

    #[cfg(any(feature = "axum", feature = "tonic"))]
    fn with_mode<M2>(self) -> BreakerLayer<C, K, M2> {
        BreakerLayer {
            breaker: self.breaker,
            classifier: self.classifier,
            mode: PhantomData,
        }
    }

    /// The breaker the layer's services share.
    pub const fn breaker(&self) -> &Breaker<C> {
        &self.breaker
    }
}

impl<C: Clock> From<Breaker<C>> for BreakerLayer<C> {
    fn from(breaker: Breaker<C>) -> Self {
        BreakerLayer::new(breaker)
    }
}

impl<S, C: Clock, K: Clone, M> Layer<S> for BreakerLayer<C, K, M> {
    type Service = BreakerService<S, C, K, M>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService::from_parts(inner, self.breaker.clone(), self.classifier.clone())
    }
}

impl<C: Clock, K, M> fmt::Debug for BreakerLayer<C, K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerLayer")
            .field("breaker", &self.breaker)
            .field("classifier", &std::any::type_name::<K>())
            .field("refusals", &std::any::type_name::<M>())
            .finish()
    }
}
