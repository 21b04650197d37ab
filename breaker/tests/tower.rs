//! The tower integration: shared state, rejections from `call`, classification, cancellation.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use keel_breaker::tower::{BreakerLayer, BreakerService, DefaultClassifier};
use keel_breaker::{Breaker, BreakerError, History, Mode};
use keel_timex::ManualClock;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// A deterministic breaker on a manual clock, and a handle to move that clock.
fn manual_breaker() -> (Breaker<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let breaker = Breaker::builder()
        .seed(1)
        .build_with_clock(clock.clone())
        .expect("valid configuration");
    (breaker, clock)
}

/// The inner service's own error.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Backend(&'static str);

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend: {}", self.0)
    }
}

impl std::error::Error for Backend {}

/// A service that fails when asked to (`true`), counting the calls that reach it.
fn counting(
    calls: &Arc<AtomicUsize>,
) -> impl Service<bool, Response = u32, Error = Backend, Future: Send> + Clone + Send + Sync + fmt::Debug
{
    let calls = Arc::clone(calls);
    service_fn(move |fail: bool| {
        calls.fetch_add(1, Ordering::Relaxed);
        async move { if fail { Err(Backend("down")) } else { Ok(7) } }
    })
}

/// One `poll_ready` with a no-op waker.
fn poll_ready_once<S: Service<R>, R>(svc: &mut S) -> Poll<Result<(), S::Error>> {
    svc.poll_ready(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn clones_share_one_breaker() {
    let (breaker, clock) = manual_breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = BreakerLayer::new(breaker.clone());
    let failing = ServiceBuilder::new()
        .layer(layer.clone())
        .service(counting(&calls));
    let cloned = failing.clone();
    let from_layer_clone = layer.clone().layer(counting(&calls));

    // Fresh: nothing is rejected.
    assert_eq!(cloned.clone().oneshot(false).await, Ok(7));
    assert_eq!(breaker.snapshot().history.accepts, 1);

    // Failures through one clone only...
    for _ in 0..100 {
        let _ = failing.clone().oneshot(true).await;
    }
    assert!(
        breaker.snapshot().drop_ratio > 0.5,
        "{:?}",
        breaker.snapshot()
    );

    // ...make the other clone and a service from a clone of the layer reject.
    for svc in [cloned.clone(), from_layer_clone.clone()] {
        let mut rejected = false;
        for _ in 0..50 {
            if svc.clone().oneshot(false).await == Err(BreakerError::Rejected(Default::default())) {
                rejected = true;
                break;
            }
        }
        assert!(rejected, "a clone never saw the shared breaker reject");
    }

    // Once the window has passed, every clone is admitted again.
    clock.advance(Duration::from_secs(11));
    assert_eq!(breaker.snapshot().history, History::default());
    assert_eq!(cloned.oneshot(false).await, Ok(7));
    assert_eq!(from_layer_clone.oneshot(false).await, Ok(7));
}

#[tokio::test]
async fn rejections_come_from_call_without_calling_the_inner_service() {
    let (breaker, _clock) = manual_breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = BreakerLayer::new(breaker.clone()).layer(counting(&calls));

    breaker.set_mode(Mode::ForcedOpen);
    for _ in 0..3 {
        assert!(matches!(poll_ready_once(&mut svc), Poll::Ready(Ok(()))));
        let result = svc.ready().await.unwrap().call(false).await;
        assert!(
            matches!(result, Err(BreakerError::Rejected(_))),
            "{result:?}"
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "circuit breaker is open",
            "the error displays as the rejection"
        );
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "the inner service was called"
    );
    // A forced open breaker records nothing.
    assert_eq!(breaker.snapshot().history, History::default());

    breaker.set_mode(Mode::Adaptive);
    assert_eq!(svc.ready().await.unwrap().call(false).await, Ok(7));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn the_rejected_future_is_ready_at_once() {
    let (breaker, _clock) = manual_breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = BreakerService::new(counting(&calls), breaker.clone());
    breaker.set_mode(Mode::ForcedOpen);

    let mut fut = std::pin::pin!(svc.call(false));
    let polled = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    assert!(matches!(
        polled,
        Poll::Ready(Err(BreakerError::Rejected(_)))
    ));
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

/// A service whose readiness the test controls.
#[derive(Clone)]
struct Gate {
    open: Arc<AtomicBool>,
}

impl Service<()> for Gate {
    type Response = ();
    type Error = Backend;
    type Future = std::future::Ready<Result<(), Backend>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Backend>> {
        if self.open.load(Ordering::Relaxed) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, (): ()) -> Self::Future {
        std::future::ready(Ok(()))
    }
}

#[tokio::test]
async fn poll_ready_forwards_the_inner_readiness_only() {
    let (breaker, _clock) = manual_breaker();
    let open = Arc::new(AtomicBool::new(false));
    let mut svc = BreakerService::new(Gate { open: open.clone() }, breaker.clone());

    // Backpressure is kept, whatever the breaker says.
    assert!(poll_ready_once(&mut svc).is_pending());
    breaker.set_mode(Mode::ForcedOpen);
    assert!(poll_ready_once(&mut svc).is_pending());

    // An open breaker does not make a ready service unready or failed.
    open.store(true, Ordering::Relaxed);
    assert!(matches!(poll_ready_once(&mut svc), Poll::Ready(Ok(()))));
    assert!(svc.call(()).await.unwrap_err().is_rejected());
    assert!(matches!(poll_ready_once(&mut svc), Poll::Ready(Ok(()))));
}

#[tokio::test]
async fn the_classifier_decides_what_a_failure_is() {
    let status = |code: u16| service_fn(move |()| async move { Ok::<u16, Infallible>(code) });
    let is_5xx = |r: &Result<u16, Infallible>| matches!(r, Ok(code) if *code >= 500);

    // The default classifier: every `Ok` is a success, 500 included.
    let (breaker, _clock) = manual_breaker();
    let svc = BreakerLayer::new(breaker.clone()).layer(status(500));
    for _ in 0..50 {
        assert_eq!(svc.clone().oneshot(()).await, Ok(500));
    }
    assert_eq!(breaker.snapshot().history.accepts, 50);

    // A 4xx is the caller's fault: a success for the breaker.
    let (breaker, _clock) = manual_breaker();
    let svc = BreakerLayer::new(breaker.clone())
        .classifier(is_5xx)
        .layer(status(404));
    for _ in 0..50 {
        assert_eq!(svc.clone().oneshot(()).await, Ok(404));
    }
    assert_eq!(breaker.snapshot().history.accepts, 50);

    // A 5xx is a failure: the breaker ends up rejecting.
    let (breaker, _clock) = manual_breaker();
    let svc = BreakerLayer::new(breaker.clone())
        .classifier(is_5xx)
        .layer(status(500));
    let mut rejected = 0;
    for _ in 0..100 {
        match svc.clone().oneshot(()).await {
            Ok(code) => assert_eq!(code, 500, "the response comes back unchanged"),
            Err(e) => {
                assert!(e.is_rejected());
                rejected += 1;
            }
        }
    }
    let history = breaker.snapshot().history;
    assert!(rejected > 0, "the breaker never rejected: {history:?}");
    assert_eq!(history.accepts, 0);
    assert_eq!(history.total, 100, "failures and rejections together");
    assert!(
        breaker.recent_failures().is_empty(),
        "a closure gives no reason"
    );
}

#[tokio::test]
async fn a_dropped_response_future_is_a_cancellation() {
    let (breaker, _clock) = manual_breaker();
    let started = Arc::new(AtomicUsize::new(0));
    let started2 = Arc::clone(&started);
    let mut svc = BreakerLayer::new(breaker.clone()).layer(service_fn(move |()| {
        started2.fetch_add(1, Ordering::Relaxed);
        std::future::pending::<Result<(), Backend>>()
    }));

    let mut fut = Box::pin(svc.ready().await.unwrap().call(()));
    let polled = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    assert!(polled.is_pending());
    assert_eq!(started.load(Ordering::Relaxed), 1);
    assert_eq!(
        breaker.snapshot().history.total,
        0,
        "nothing recorded mid-call"
    );

    // Cancelled (a client gone, a timeout around the layer) before completion: nothing is
    // recorded for or against the dependency, the cancellation is counted.
    drop(fut);
    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.history, History::default());
    assert_eq!(snapshot.cancelled, 1);

    // A future dropped without ever being polled is a cancellation too.
    drop(svc.ready().await.unwrap().call(()));
    let snapshot = breaker.snapshot();
    assert_eq!((snapshot.history.total, snapshot.cancelled), (0, 2));
}

#[tokio::test]
async fn inner_errors_come_back_unchanged() {
    let (breaker, _clock) = manual_breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    let svc: BreakerService<_, ManualClock, DefaultClassifier> =
        BreakerLayer::new(breaker.clone()).layer(counting(&calls));

    let err = svc.clone().oneshot(true).await.unwrap_err();
    assert_eq!(err, BreakerError::Inner(Backend("down")));
    assert_eq!(err.into_inner(), Some(Backend("down")));
    assert_eq!(svc.clone().oneshot(false).await, Ok(7));

    // The default classifier counted the error as a failure and kept its text.
    let history = breaker.snapshot().history;
    assert_eq!((history.accepts, history.total), (1, 2));
    let reasons = breaker.recent_failures();
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].reason, "backend: down");

    // And the error converts into tower's `BoxError`, keeping its source.
    let boxed: tower::BoxError = Box::new(svc.oneshot(true).await.unwrap_err());
    let source = std::error::Error::source(&*boxed).expect("a source");
    assert_eq!(source.downcast_ref::<Backend>(), Some(&Backend("down")));
}

#[test]
fn services_layers_and_futures_are_send_sync_and_clone() {
    fn send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
    fn send<T: Send>(_: &T) {}

    let (breaker, _clock) = manual_breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = BreakerLayer::new(breaker).classifier(|r: &Result<u32, Backend>| r.is_err());
    send_sync_clone(&layer);
    let mut svc = layer.layer(counting(&calls));
    send_sync_clone(&svc);
    let fut = svc.call(false);
    send(&fut);
    assert!(format!("{svc:?}").contains("BreakerService"));
    assert!(format!("{layer:?}").contains("BreakerLayer"));
    assert!(format!("{fut:?}").contains("Called"));
}
