//! The tower integration on a manual clock and an injected CPU: admitted calls feed the
//! shedder, refusals come from `call` without reaching the inner service, readiness is
//! the inner service's, clones share one shedder, the classifier decides pass or fail,
//! cancelled calls give their slot back, inner errors come back unchanged.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use keel_shedder::cpu::ManualCpu;
use keel_shedder::tower::{
    DefaultClassifier, ShedError, ShedderLayer, ShedderService, find_overloaded,
};
use keel_shedder::{Overloaded, OwnedGuard, Shedder};
use keel_timex::ManualClock;
use tokio::sync::oneshot;
use tower::{Layer, Service, ServiceExt, service_fn};

const BUCKET: Duration = Duration::from_millis(100);

/// A shedder on a manual clock: 10 buckets of 100 ms, every request timed, CPU at 0.
struct Rig {
    shedder: Shedder<ManualClock>,
    cpu: ManualCpu,
    clock: ManualClock,
}

impl Rig {
    fn new() -> Rig {
        let cpu = ManualCpu::new(0);
        let clock = ManualClock::new();
        let shedder = Shedder::builder()
            .window(Duration::from_secs(1))
            .buckets(10)
            .exact_statistics()
            .cpu_source(cpu.clone())
            .build_with_clock(clock.clone())
            .expect("valid configuration");
        Rig {
            shedder,
            cpu,
            clock,
        }
    }

    /// Overloads the shedder through its public API: past the window of any earlier
    /// traffic, a bucket of 100 passes of 10 ms (max flight 10, so a limit of 1 at full
    /// CPU), then 5 requests held open while others complete (the in-flight average climbs
    /// toward 5), then the CPU at 1000. Returns the held requests.
    fn overload(&self) -> Vec<OwnedGuard<ManualClock>> {
        self.clock.advance(Duration::from_secs(2));
        let burst: Vec<_> = (0..100).map(|_| self.admit()).collect();
        self.clock.advance(Duration::from_millis(10));
        burst.into_iter().for_each(OwnedGuard::pass);
        self.clock.advance(BUCKET);

        let held: Vec<_> = (0..5).map(|_| self.admit()).collect();
        for _ in 0..20 {
            self.admit().pass();
        }
        self.cpu.set(1000);

        let s = self.shedder.snapshot();
        assert_eq!((s.max_pass, s.min_rt_ms, s.max_flight), (100, 10.0, 10.0));
        assert!((s.limit - 1.0).abs() < 1e-9, "{s:?}");
        assert!(s.avg_in_flight > s.limit && s.in_flight == 5, "{s:?}");
        held
    }

    fn admit(&self) -> OwnedGuard<ManualClock> {
        self.shedder.allow_owned().expect("admitted")
    }

    /// Moves to the next bucket, so the one the calls went to is read.
    fn finish_bucket(&self) {
        self.clock.advance(BUCKET);
    }
}

/// The inner service's own errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Down,
    Closed,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Down => "backend down",
            Fault::Closed => "backend closed",
        })
    }
}

impl std::error::Error for Fault {}

/// Answers every request with the request itself (the test picks the outcome), counting
/// the calls that reach it.
fn echo(
    calls: &Arc<AtomicUsize>,
) -> impl Service<Result<u32, Fault>, Response = u32, Error = Fault, Future: Send>
+ Clone
+ Send
+ Sync
+ fmt::Debug {
    let calls = Arc::clone(calls);
    service_fn(move |answer: Result<u32, Fault>| {
        calls.fetch_add(1, Ordering::Relaxed);
        std::future::ready(answer)
    })
}

/// A service answering whatever its request's sender sends, once it does.
fn waiting() -> impl Service<oneshot::Receiver<u32>, Response = u32, Error = Infallible> + Clone {
    service_fn(|rx: oneshot::Receiver<u32>| async move { Ok(rx.await.unwrap_or(0)) })
}

fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::pin::Pin::new(fut).poll(&mut Context::from_waker(Waker::noop()))
}

fn poll_ready_once<S: Service<R>, R>(svc: &mut S) -> Poll<Result<(), S::Error>> {
    svc.poll_ready(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test(flavor = "current_thread")]
async fn admitted_calls_pass_through_and_feed_the_shedder() {
    let rig = Rig::new();
    let mut svc = ShedderLayer::new(rig.shedder.clone()).layer(waiting());

    let (tx, rx) = oneshot::channel();
    let mut fut = Box::pin(svc.ready().await.unwrap().call(rx));
    assert!(poll_once(&mut fut).is_pending());
    let s = rig.shedder.snapshot();
    assert_eq!((s.admitted, s.in_flight, s.dropped), (1, 1, 0));

    // 7 ms later the inner service answers: the answer comes back as it was, the slot
    // is released and the pass is recorded with the latency since `call`.
    rig.clock.advance(Duration::from_millis(7));
    tx.send(42).unwrap();
    assert_eq!(fut.await, Ok(42));
    assert_eq!(rig.shedder.snapshot().in_flight, 0);

    for _ in 0..2 {
        assert_eq!(svc.ready().await.unwrap().call(ready_rx(1)).await, Ok(1));
    }
    rig.finish_bucket();
    let s = rig.shedder.snapshot();
    assert_eq!((s.admitted, s.in_flight, s.dropped), (3, 0, 0));
    assert_eq!(s.max_pass, 3, "three passes in the finished bucket");
    // Mean of 7, 1 and 1 ms (an instant answer counts as 1 ms), rounded.
    assert_eq!(s.min_rt_ms, 3.0);
}

/// A receiver that already holds `v`.
fn ready_rx(v: u32) -> oneshot::Receiver<u32> {
    let (tx, rx) = oneshot::channel();
    tx.send(v).unwrap();
    rx
}

#[tokio::test(flavor = "current_thread")]
async fn an_overloaded_shedder_refuses_in_call_without_calling_the_inner_service() {
    let rig = Rig::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = ShedderLayer::new(rig.shedder.clone()).layer(echo(&calls));
    let held = rig.overload();

    for round in 1..=3 {
        // Ready while refusing: the shedder never holds readiness back.
        assert!(matches!(poll_ready_once(&mut svc), Poll::Ready(Ok(()))));
        // The refusal is ready at the first poll.
        let mut fut = Box::pin(svc.call(Ok(7)));
        let Poll::Ready(Err(err)) = poll_once(&mut fut) else {
            panic!("not refused at once");
        };
        assert!(err.is_overloaded());
        assert_eq!(err.http_status(), Some(503));
        assert_eq!(err.to_string(), "service overloaded");
        let refusal = err.overloaded().expect("a refusal");
        assert_eq!(refusal.cpu(), Some(1000));
        assert_eq!(refusal.in_flight(), 5);
        assert!((refusal.limit() - 1.0).abs() < 1e-9);
        assert_eq!(rig.shedder.snapshot().dropped, round);
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "the inner service was called"
    );
    assert_eq!(rig.shedder.snapshot().in_flight, 5, "refusals hold no slot");

    // The held requests finish and the CPU calms down: calls reach the service again.
    held.into_iter().for_each(OwnedGuard::pass);
    rig.cpu.set(100);
    assert_eq!(svc.ready().await.unwrap().call(Ok(7)).await, Ok(7));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(rig.shedder.snapshot().in_flight, 0);
}

/// A service whose readiness the test sets: 0 pending, 1 ready, 2 failed.
#[derive(Clone)]
struct Gate(Arc<AtomicU8>);

impl Service<()> for Gate {
    type Response = ();
    type Error = Fault;
    type Future = std::future::Ready<Result<(), Fault>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        match self.0.load(Ordering::Relaxed) {
            0 => Poll::Pending,
            1 => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(Fault::Closed)),
        }
    }

    fn call(&mut self, (): ()) -> Self::Future {
        std::future::ready(Ok(()))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn poll_ready_is_the_inner_readiness_whatever_the_shedder_says() {
    let rig = Rig::new();
    let state = Arc::new(AtomicU8::new(0));
    let mut svc = ShedderService::new(Gate(state.clone()), rig.shedder.clone());

    // Backpressure is kept, admitting or refusing.
    assert!(poll_ready_once(&mut svc).is_pending());
    let _held = rig.overload();
    assert!(poll_ready_once(&mut svc).is_pending());

    // Refusing does not make a ready service unready or failed.
    state.store(1, Ordering::Relaxed);
    assert!(matches!(poll_ready_once(&mut svc), Poll::Ready(Ok(()))));
    assert!(svc.call(()).await.unwrap_err().is_overloaded());
    assert!(matches!(poll_ready_once(&mut svc), Poll::Ready(Ok(()))));

    // The inner service's own readiness error comes through as it is.
    state.store(2, Ordering::Relaxed);
    match poll_ready_once(&mut svc) {
        Poll::Ready(Err(ShedError::Inner(e))) => assert_eq!(e, Fault::Closed),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn clones_share_one_shedder() {
    let rig = Rig::new();
    let layer = ShedderLayer::new(rig.shedder.clone());
    let a = layer.layer(waiting());
    let b = a.clone();
    let c = layer.clone().layer(waiting());

    // Calls through every clone count toward one in-flight figure.
    let mut pending = Vec::new();
    let mut senders = Vec::new();
    for svc in [&a, &b, &c] {
        let (tx, rx) = oneshot::channel();
        let mut fut = Box::pin(svc.clone().oneshot(rx));
        assert!(poll_once(&mut fut).is_pending());
        pending.push(fut);
        senders.push(tx);
    }
    assert_eq!(rig.shedder.snapshot().in_flight, 3);
    assert_eq!(layer.shedder().snapshot().in_flight, 3);
    for (tx, fut) in senders.into_iter().zip(pending) {
        tx.send(5).unwrap();
        assert_eq!(fut.await, Ok(5));
    }
    assert_eq!(c.shedder().snapshot().in_flight, 0);

    // Overloaded through the shared shedder: every clone refuses.
    let held = rig.overload();
    for svc in [&a, &b, &c] {
        let err = svc.clone().oneshot(ready_rx(1)).await.unwrap_err();
        assert!(err.is_overloaded());
    }
    assert_eq!(rig.shedder.snapshot().dropped, 3);

    drop(held);
    rig.cpu.set(0);
    for svc in [a, b, c] {
        assert_eq!(svc.oneshot(ready_rx(2)).await, Ok(2));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_classifier_decides_pass_or_fail() {
    let status = |code: u16| service_fn(move |()| async move { Ok::<u16, Infallible>(code) });
    let is_5xx = |r: &Result<u16, Infallible>| matches!(r, Ok(code) if *code >= 500);

    // Passes show in the finished bucket (max pass 5, a latency); failures do not (the
    // empty window's max pass of 1 and min latency of 1000 ms stay).
    let passes_recorded = |rig: &Rig| {
        rig.finish_bucket();
        let s = rig.shedder.snapshot();
        assert_eq!(s.in_flight, 0);
        match (s.max_pass, s.min_rt_ms) {
            (5, rt) if rt < 1000.0 => true,
            (1, 1000.0) => false,
            other => panic!("neither 5 passes nor none: {other:?}"),
        }
    };
    async fn five<S: Service<()> + Clone>(svc: &S) -> Vec<Result<S::Response, S::Error>> {
        let mut results = Vec::new();
        for _ in 0..5 {
            results.push(svc.clone().oneshot(()).await);
        }
        results
    }

    // The default classifier: every `Ok` is a pass, 500 included.
    let rig = Rig::new();
    let svc = ShedderLayer::new(rig.shedder.clone()).layer(status(500));
    assert!(five(&svc).await.iter().all(|r| *r == Ok(500)));
    assert!(passes_recorded(&rig));

    // ... and every `Err` a failure.
    let rig = Rig::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = ShedderLayer::new(rig.shedder.clone())
        .layer(echo(&calls).map_request(|()| Err(Fault::Down)));
    assert!(five(&svc).await.iter().all(|r| r.is_err()));
    assert!(!passes_recorded(&rig));

    // A closure: 5xx is a failure, the response still comes back unchanged ...
    let rig = Rig::new();
    let svc = ShedderLayer::new(rig.shedder.clone())
        .classifier(is_5xx)
        .layer(status(503));
    assert!(five(&svc).await.iter().all(|r| *r == Ok(503)));
    assert!(!passes_recorded(&rig));

    // ... and a 4xx a pass.
    let rig = Rig::new();
    let svc = ShedderService::new(status(404), rig.shedder.clone()).classifier(is_5xx);
    assert!(five(&svc).await.iter().all(|r| *r == Ok(404)));
    assert!(passes_recorded(&rig));
}

#[tokio::test(flavor = "current_thread")]
async fn a_dropped_response_future_releases_its_slot_and_records_nothing() {
    let rig = Rig::new();
    let started = Arc::new(AtomicUsize::new(0));
    let started2 = Arc::clone(&started);
    let mut svc = ShedderLayer::new(rig.shedder.clone()).layer(service_fn(move |()| {
        started2.fetch_add(1, Ordering::Relaxed);
        std::future::pending::<Result<(), Fault>>()
    }));

    let mut fut = Box::pin(svc.ready().await.unwrap().call(()));
    assert!(poll_once(&mut fut).is_pending());
    assert_eq!(started.load(Ordering::Relaxed), 1);
    assert_eq!(rig.shedder.snapshot().in_flight, 1);

    // Cancelled (a timeout, a client gone) after 30 ms.
    rig.clock.advance(Duration::from_millis(30));
    drop(fut);
    assert_eq!(rig.shedder.snapshot().in_flight, 0);

    // A future dropped without ever being polled gives its slot back too.
    let fut = svc.ready().await.unwrap().call(());
    assert_eq!(rig.shedder.snapshot().in_flight, 1);
    drop(fut);

    rig.finish_bucket();
    let s = rig.shedder.snapshot();
    assert_eq!((s.admitted, s.in_flight, s.dropped), (2, 0, 0));
    assert_eq!(
        (s.max_pass, s.min_rt_ms),
        (1, 1000.0),
        "no pass and no latency recorded"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn inner_errors_come_back_unchanged() {
    let rig = Rig::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let svc: ShedderService<_, ManualClock, DefaultClassifier> =
        ShedderLayer::new(rig.shedder.clone()).layer(echo(&calls));

    let err = svc.clone().oneshot(Err(Fault::Down)).await.unwrap_err();
    assert_eq!(err, ShedError::Inner(Fault::Down));
    assert!(!err.is_overloaded());
    assert_eq!(err.http_status(), None);
    assert_eq!(err.to_string(), "backend down");
    assert_eq!(err.inner(), Some(&Fault::Down));
    assert_eq!(err.clone().into_inner(), Some(Fault::Down));

    // Boxed (as a tower `Timeout` above would), it keeps its source and holds no refusal.
    let boxed: tower::BoxError = Box::new(err);
    let source = std::error::Error::source(&*boxed).expect("a source");
    assert_eq!(source.downcast_ref::<Fault>(), Some(&Fault::Down));
    assert_eq!(find_overloaded(&*boxed), None);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

/// An application error wrapping whatever went wrong below it.
#[derive(Debug)]
struct Wrapped(tower::BoxError);

impl fmt::Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request failed")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A refusal from an overloaded shedder (there is no public constructor).
fn refusal() -> Overloaded {
    let rig = Rig::new();
    let _held = rig.overload();
    rig.shedder.allow().expect_err("overloaded")
}

#[tokio::test(flavor = "current_thread")]
async fn a_boxed_refusal_is_found_through_the_source_chain() {
    let refused = refusal();

    let direct: tower::BoxError = Box::new(refused);
    let shed: tower::BoxError = Box::new(ShedError::<Fault>::Overloaded(refused));
    let wrapped: tower::BoxError =
        Box::new(Wrapped(Box::new(ShedError::<Infallible>::from(refused))));
    for boxed in [&direct, &shed, &wrapped] {
        assert_eq!(find_overloaded(&**boxed), Some(refused), "{boxed}");
    }
    let not: tower::BoxError = Box::new(Wrapped("timeout".into()));
    assert_eq!(find_overloaded(&*not), None);
}

#[cfg(feature = "axum")]
mod axum_responses {
    use super::*;
    use axum::body::to_bytes;
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use keel_shedder::tower::overloaded_response;

    async fn parts(response: Response) -> (StatusCode, Option<String>, String) {
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body(), 1024).await.unwrap();
        (status, retry, String::from_utf8(body.to_vec()).unwrap())
    }

    fn shed_503() -> (StatusCode, Option<String>, String) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("1".to_owned()),
            "service overloaded".to_owned(),
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_refusal_answers_503_with_retry_after() {
        let refused = refusal();
        assert_eq!(parts(refused.into_response()).await, shed_503());
        let typed = ShedError::<Infallible>::Overloaded(refused);
        assert_eq!(parts(typed.into_response()).await, shed_503());

        // An inner error answers as it does itself.
        let teapot = ShedError::Inner(StatusCode::IM_A_TEAPOT).into_response();
        assert_eq!(parts(teapot).await.0, StatusCode::IM_A_TEAPOT);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn overloaded_response_answers_boxed_refusals_only() {
        let refused = refusal();
        let shed: tower::BoxError = Box::new(ShedError::<Fault>::Overloaded(refused));
        let response = overloaded_response(&*shed).expect("a refusal");
        assert_eq!(parts(response).await, shed_503());

        let inner: tower::BoxError = Box::new(ShedError::Inner(Fault::Down));
        assert!(overloaded_response(&*inner).is_none());
    }
}

#[test]
fn layers_services_and_futures_are_send_sync_and_clone() {
    fn send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
    fn send<T: Send>(_: &T) {}

    let rig = Rig::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let layer =
        ShedderLayer::new(rig.shedder.clone()).classifier(|r: &Result<u32, Fault>| r.is_err());
    send_sync_clone(&layer);
    let mut svc = layer.layer(echo(&calls));
    send_sync_clone(&svc);
    let fut = svc.call(Ok(7));
    send(&fut);
    assert!(format!("{svc:?}").contains("ShedderService"));
    assert!(format!("{layer:?}").contains("ShedderLayer"));
    assert!(format!("{fut:?}").contains("guard"));
    drop(fut);

    let _held = rig.overload();
    let refused = svc.call(Ok(7));
    assert!(format!("{refused:?}").contains("refused"));
}
