//! [`ShedderService`]: a tower `Service` behind a load shedder.

use std::fmt;
use std::task::{Context, Poll};

use keel_timex::{Clock, CoarseClock};
use tower_service::Service;

use super::future::ResponseFuture;
use super::{Classify, DefaultClassifier, ShedError};
use crate::Shedder;

/// A tower `Service` behind a [`Shedder`]; usually made by
/// [`ShedderLayer`](super::ShedderLayer).
///
/// - `poll_ready` forwards the inner service's readiness and nothing else: the shedder
///   never makes it `Pending` or an error, even while it refuses every call.
/// - `call` asks [`Shedder::allow_owned`]: a refused call resolves at once to
///   [`ShedError::Overloaded`] without calling the inner service; an admitted one carries
///   its guard in the [`ResponseFuture`], and the classifier `K` reports its outcome.
///
/// `Clone` when `S` and `K` are; clones share the shedder, so the per-connection clones
/// hyper, axum and tonic make all count toward one in-flight figure.
#[derive(Clone)]
pub struct ShedderService<S, C: Clock = CoarseClock, K = DefaultClassifier> {
    inner: S,
    shedder: Shedder<C>,
    classify: K,
}

impl<S, C: Clock> ShedderService<S, C> {
    /// Puts `inner` behind `shedder`, with the [`DefaultClassifier`].
    pub fn new(inner: S, shedder: Shedder<C>) -> Self {
        ShedderService {
            inner,
            shedder,
            classify: DefaultClassifier,
        }
    }
}

impl<S, C: Clock, K> ShedderService<S, C, K> {
    /// The same service deciding passes with `classify` (see [`Classify`]).
    pub fn classifier<K2>(self, classify: K2) -> ShedderService<S, C, K2> {
        ShedderService {
            inner: self.inner,
            shedder: self.shedder,
            classify,
        }
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

impl<S, C, K, Req> Service<Req> for ShedderService<S, C, K>
where
    S: Service<Req>,
    C: Clock,
    K: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = ShedError<S::Error>;
    type Future = ResponseFuture<S::Future, C, K>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ShedError::Inner)
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

impl<S: fmt::Debug, C: Clock, K> fmt::Debug for ShedderService<S, C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedderService")
            .field("shedder", &self.shedder)
            .field("inner", &self.inner)
            .field("classifier", &std::any::type_name::<K>())
            .finish()
    }
}
