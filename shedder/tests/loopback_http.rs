//! A real HTTP server on 127.0.0.1 (axum on hyper, its own tokio runtime) with a CPU-heavy
//! handler behind a `ShedderLayer`, and a plain HTTP/1.1 client over loopback.
//!
//! The CPU signal is injected (`ManualCpu`): the real one depends on the machine and on
//! whatever else runs. Everything else is real: the clock, the window the shedder learns
//! from the warm-up traffic, the in-flight count, the sockets. Phases: warm-up with the CPU
//! low (every request admitted, the window learns what the server sustains), a burst with
//! the CPU at 1000 (some requests refused with a fast 503), recovery with the CPU low
//! again (everything admitted once the cool-off has passed).
#![cfg(feature = "axum")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Router};
use keel_shedder::Shedder;
use keel_shedder::cpu::ManualCpu;
use keel_shedder::tower::{ShedderLayer, overloaded_response};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tower::ServiceBuilder;

/// How long the handler keeps its worker thread busy.
const HANDLER_SPIN: Duration = Duration::from_millis(5);
/// Requests in the overload burst, and how many are in the air at once.
const BURST: usize = 400;
const CONCURRENCY: usize = 32;
/// Everything together must finish well within this.
const TEST_BOUND: Duration = Duration::from_secs(60);
/// How long each phase that waits for the shedder may take.
const PHASE_DEADLINE: Duration = Duration::from_secs(20);

/// How many times the handler ran (this binary has one test).
static HANDLED: AtomicUsize = AtomicUsize::new(0);

/// CPU-heavy work: a busy loop holding its worker thread, no await inside.
async fn work() -> &'static str {
    HANDLED.fetch_add(1, Ordering::SeqCst);
    let start = Instant::now();
    while start.elapsed() < HANDLER_SPIN {
        std::hint::spin_loop();
    }
    "done"
}

/// The error handler of a stack with a fallible layer (here a timeout) above the shedder:
/// its errors arrive boxed.
async fn handle_error(err: BoxError) -> Response {
    overloaded_response(&*err)
        .unwrap_or_else(|| (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response())
}

/// The server, on a runtime and thread of its own so that its busy handlers do not slow
/// the client down. Dropping it shuts it down.
struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Server {
    fn start(shedder: Shedder) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/work", get(work)).layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_error))
                .timeout(Duration::from_secs(30))
                .layer(ShedderLayer::new(shedder).classifier(
                    |r: &Result<Response, Infallible>| {
                        matches!(r, Ok(res) if res.status().is_server_error())
                    },
                )),
        );
        let (shutdown, stop) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("loopback-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(4)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stop.await;
                        })
                        .await
                        .expect("server");
                });
            })
            .unwrap();
        Server {
            addr,
            shutdown: Some(shutdown),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// One answer as the client saw it.
#[derive(Debug)]
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: String,
    elapsed: Duration,
}

/// A keep-alive HTTP/1.1 connection: one request at a time, as a browser or a pooled
/// client sends them.
struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        Ok(Conn {
            stream: BufReader::new(stream),
        })
    }

    /// `GET /work`, timed from the first byte sent to the last byte received.
    async fn get(&mut self) -> Result<Reply, String> {
        let start = Instant::now();
        self.stream
            .get_mut()
            .write_all(b"GET /work HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let status_line = self.line().await?;
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let (mut length, mut retry_after) = (None, None);
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header {line:?}"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("retry-after") {
                retry_after = Some(value.to_owned());
            }
        }
        let mut body = vec![0; length.ok_or("no content-length")?];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(|e| format!("body: {e}"))?;
        Ok(Reply {
            status,
            retry_after,
            body: String::from_utf8(body).map_err(|e| format!("body not UTF-8: {e}"))?,
            elapsed: start.elapsed(),
        })
    }

    async fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stream.read_line(&mut line).await {
            Ok(0) => Err("connection closed".to_owned()),
            Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_owned()),
            Err(e) => Err(format!("read: {e}")),
        }
    }
}

/// `total` requests over `concurrency` connections; every one must get an answer.
async fn fire(addr: SocketAddr, total: usize, concurrency: usize) -> Vec<Reply> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = JoinSet::new();
    for _ in 0..concurrency {
        let next = Arc::clone(&next);
        clients.spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut replies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                replies.push(conn.get().await?);
            }
            Ok::<_, String>(replies)
        });
    }
    let mut replies = Vec::with_capacity(total);
    while let Some(done) = clients.join_next().await {
        let done = done.expect("client task");
        replies.extend(done.unwrap_or_else(|e| panic!("request lost: {e}")));
    }
    assert_eq!(replies.len(), total);
    replies
}

fn median(mut times: Vec<Duration>) -> Duration {
    assert!(!times.is_empty());
    times.sort();
    times[times.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_server_answers_fast_503s_and_recovers() {
    let cpu = ManualCpu::new(100);
    // The real clock; every request timed so the window learns from the short warm-up.
    let shedder = Shedder::builder()
        .name("loopback")
        .exact_statistics()
        .cpu_source(cpu.clone())
        .build()
        .expect("valid configuration");
    let server = Server::start(shedder.clone());
    let addr = server.addr;

    tokio::time::timeout(TEST_BOUND, async {
        // Warm-up, CPU low: every request admitted until a finished bucket of the window
        // holds passes and latencies (max pass > 1, a measured min latency).
        let deadline = Instant::now() + PHASE_DEADLINE;
        let mut warm_up = 0;
        loop {
            for reply in fire(addr, 32, 4).await {
                assert_eq!((reply.status, reply.body.as_str()), (200, "done"));
                warm_up += 1;
            }
            let s = shedder.snapshot();
            if s.max_pass > 1 && s.min_rt_ms < 1000.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the window learned nothing: {s:?}"
            );
        }
        let learned = shedder.snapshot();
        assert_eq!((learned.admitted, learned.dropped), (warm_up, 0));

        // Burst, CPU saturated.
        cpu.set(1000);
        let handled_before = HANDLED.load(Ordering::SeqCst);
        let replies = fire(addr, BURST, CONCURRENCY).await;
        let handled = HANDLED.load(Ordering::SeqCst) - handled_before;
        let after = shedder.snapshot();
        let (ok, shed): (Vec<_>, Vec<_>) = replies.iter().partition(|r| r.status == 200);
        for r in &ok {
            assert_eq!(r.body, "done");
        }
        for r in &shed {
            assert_eq!(r.status, 503, "neither 200 nor 503: {r:?}");
            assert_eq!(r.body, "service overloaded");
            assert_eq!(r.retry_after.as_deref(), Some("1"));
        }
        assert!(
            !shed.is_empty(),
            "nothing shed at CPU 1000; learned {learned:?}, after {after:?}"
        );
        assert!(
            !ok.is_empty(),
            "nothing admitted during the burst: {after:?}"
        );
        // Every 503 is the shedder's, every 200 an admission of it.
        assert_eq!(after.dropped as usize, shed.len());
        assert_eq!((after.admitted - learned.admitted) as usize, ok.len());
        assert_eq!(after.in_flight, 0, "{after:?}");

        // A refusal costs a decision, not the handler's work: the handler ran once per 200
        // and never for a 503. (The medians show what that saves; comparing them would
        // make the verdict depend on how busy the machine is.)
        assert_eq!(handled, ok.len(), "the handler ran for a refused request");
        let ok_median = median(ok.iter().map(|r| r.elapsed).collect());
        let shed_median = median(shed.iter().map(|r| r.elapsed).collect());
        eprintln!(
            "burst: {} admitted (median {ok_median:?}), {} shed (median {shed_median:?}); \
             learned max_flight {:.2} (max_pass {}, min_rt {} ms)",
            ok.len(),
            shed.len(),
            learned.max_flight,
            learned.max_pass,
            learned.min_rt_ms,
        );

        // CPU low again: once the cool-off has passed, a burst as large is admitted whole.
        cpu.set(100);
        let deadline = Instant::now() + PHASE_DEADLINE;
        loop {
            let all_ok = fire(addr, CONCURRENCY, CONCURRENCY)
                .await
                .iter()
                .all(|r| r.status == 200);
            if all_ok && !shedder.snapshot().dropped_recently {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still shedding: {:?}",
                shedder.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before = shedder.snapshot();
        for reply in fire(addr, BURST, CONCURRENCY).await {
            assert_eq!((reply.status, reply.body.as_str()), (200, "done"));
        }
        let recovered = shedder.snapshot();
        assert_eq!(recovered.dropped, before.dropped);
        assert_eq!(recovered.admitted - before.admitted, BURST as u64);
        assert_eq!(recovered.in_flight, 0);
    })
    .await
    .expect("the test ran over its time bound: a request hung");
    drop(server);
}
