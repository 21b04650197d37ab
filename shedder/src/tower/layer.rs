//! [`ShedderLayer`]: puts services behind one shared [`Shedder`].

use std::fmt;

use keel_timex::{Clock, CoarseClock};
use tower_layer::Layer;

use super::{DefaultClassifier, ShedderService};
use crate::Shedder;

/// A tower `Layer` that puts every service it wraps behind one [`Shedder`].
///
/// Clones of the layer, the services it makes and their clones all share the shedder (its
/// state lives in an `Arc`): the in-flight count is the whole server's, whatever
/// connection a request came in on. For separate limits per route, use one layer per
/// route (see [`ShedderGroup`](crate::ShedderGroup)).
#[derive(Clone)]
pub struct ShedderLayer<C: Clock = CoarseClock, K = DefaultClassifier> {
    shedder: Shedder<C>,
    classify: K,
}

impl<C: Clock> ShedderLayer<C> {
    /// A layer around `shedder` with the [`DefaultClassifier`] (`Err` is a failure).
    pub fn new(shedder: Shedder<C>) -> Self {
        ShedderLayer {
            shedder,
            classify: DefaultClassifier,
        }
    }
}

impl<C: Clock, K> ShedderLayer<C, K> {
    /// The same layer deciding passes with `classify`, e.g. a closure that counts HTTP
    /// 5xx as failures (see [`Classify`](super::Classify)).
    pub fn classifier<K2>(self, classify: K2) -> ShedderLayer<C, K2> {
        ShedderLayer {
            shedder: self.shedder,
            classify,
        }
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

impl<S, C: Clock, K: Clone> Layer<S> for ShedderLayer<C, K> {
    type Service = ShedderService<S, C, K>;

    fn layer(&self, inner: S) -> Self::Service {
        ShedderService::new(inner, self.shedder.clone()).classifier(self.classify.clone())
    }
}

impl<C: Clock, K> fmt::Debug for ShedderLayer<C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedderLayer")
            .field("shedder", &self.shedder)
            .field("classifier", &std::any::type_name::<K>())
            .finish()
    }
}
