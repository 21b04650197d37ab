//! [`BreakerLayer`]: wraps services in a [`BreakerService`] sharing one breaker.

use std::fmt;

use keel_timex::{Clock, CoarseClock};
use tower_layer::Layer;

use super::{BreakerService, DefaultClassifier};
use crate::Breaker;

/// A tower `Layer` that puts every service it wraps behind one [`Breaker`].
///
/// Clones of the layer, and every service it makes (and their clones), share the breaker:
/// its state lives in the [`Breaker`]'s `Arc`. For one breaker per dependency, make one
/// layer per dependency.
#[derive(Clone)]
pub struct BreakerLayer<C: Clock = CoarseClock, K = DefaultClassifier> {
    breaker: Breaker<C>,
    classifier: K,
}

impl<C: Clock> BreakerLayer<C> {
    /// A layer around `breaker`, with the [`DefaultClassifier`] (`Err` is a failure).
    pub const fn new(breaker: Breaker<C>) -> Self {
        BreakerLayer {
            breaker,
            classifier: DefaultClassifier,
        }
    }
}

impl<C: Clock, K> BreakerLayer<C, K> {
    /// Replaces the classifier, e.g. with a closure that counts HTTP 5xx as failures:
    /// see [`Classify`](super::Classify).
    pub fn classifier<K2>(self, classifier: K2) -> BreakerLayer<C, K2> {
        BreakerLayer {
            breaker: self.breaker,
            classifier,
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

impl<S, C: Clock, K: Clone> Layer<S> for BreakerLayer<C, K> {
    type Service = BreakerService<S, C, K>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService::with_classifier(inner, self.breaker.clone(), self.classifier.clone())
    }
}

impl<C: Clock, K> fmt::Debug for BreakerLayer<C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerLayer")
            .field("breaker", &self.breaker)
            .field("classifier", &std::any::type_name::<K>())
            .finish()
    }
}
