//! A fault-injecting TCP proxy for integration tests: listens on `127.0.0.1:0` and forwards
//! to an upstream address, in one of three modes switched at run time through an atomic.
//!
//! - [`Fault::Pass`]: forward bytes both ways.
//! - [`Fault::Refuse`]: accept new connections and close them at once; kill existing ones.
//! - [`Fault::Stall`]: accept new connections and hold them without forwarding; existing
//!   ones stop forwarding. What a client sends meanwhile is buffered (a black hole that
//!   answers nothing), and forwarded if the proxy goes back to `Pass` before the client
//!   gives up: a network blip that ends, not a reset.
//!
//! Every accepted connection is time-stamped, so a test can count how many calls reached
//! the proxy in any interval.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How often a connection task re-reads the mode while it waits for bytes.
const TICK: Duration = Duration::from_millis(5);

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Fault {
    Pass = 0,
    Refuse = 1,
    Stall = 2,
}

impl Fault {
    fn from_u8(v: u8) -> Fault {
        match v {
            1 => Fault::Refuse,
            2 => Fault::Stall,
            _ => Fault::Pass,
        }
    }
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    mode: AtomicU8,
    /// When each connection was accepted.
    accepts: Mutex<Vec<Instant>>,
}

impl Shared {
    fn mode(&self) -> Fault {
        Fault::from_u8(self.mode.load(Ordering::SeqCst))
    }
}

/// The proxy; dropping it stops accepting (connection tasks end with the runtime or when
/// their sockets close).
#[derive(Debug)]
pub(crate) struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` in [`Fault::Pass`] mode.
    pub(crate) async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            mode: AtomicU8::new(Fault::Pass as u8),
            accepts: Mutex::new(Vec::new()),
        });
        let acceptor = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Proxy {
            addr,
            shared,
            acceptor,
        })
    }

    /// Where clients should connect.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn set(&self, fault: Fault) {
        self.shared.mode.store(fault as u8, Ordering::SeqCst);
    }

    /// Connections accepted at or after `from` and before `to`.
    pub(crate) fn accepts_between(&self, from: Instant, to: Instant) -> usize {
        let accepts = self
            .shared
            .accepts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        accepts.iter().filter(|&&t| from <= t && t < to).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            // EMFILE and friends: back off rather than spin.
            tokio::time::sleep(TICK).await;
            continue;
        };
        shared
            .accepts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Instant::now());
        if shared.mode() == Fault::Refuse {
            drop(socket); // accepted, then closed at once
            continue;
        }
        tokio::spawn(serve(socket, Arc::clone(&shared)));
    }
}

/// One client connection. The upstream connection is opened lazily, the first time the
/// proxy is in `Pass` mode, so a connection accepted during a stall reaches the upstream
/// only if the stall ends while the client still waits.
async fn serve(mut client: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let mut upstream: Option<TcpStream> = None;
    // Bytes the client sent while the proxy stalled, not yet forwarded.
    let mut pending: Vec<u8> = Vec::new();
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_upstream = vec![0u8; 16 * 1024];
    loop {
        match shared.mode() {
            // Dropping both sockets kills the connection.
            Fault::Refuse => return,
            Fault::Stall => {
                // Keep reading (to notice the client giving up) but forward nothing, and
                // read nothing from the upstream.
                tokio::select! {
                    r = client.read(&mut from_client) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&from_client[..n]),
                    },
                    () = tokio::time::sleep(TICK) => {}
                }
            }
            Fault::Pass => {
                let up = match upstream.as_mut() {
                    Some(up) => up,
                    None => match TcpStream::connect(shared.upstream).await {
                        Ok(up) => {
                            let _ = up.set_nodelay(true);
                            upstream.insert(up)
                        }
                        Err(_) => return,
                    },
                };
                if !pending.is_empty() {
                    if up.write_all(&pending).await.is_err() {
                        return;
                    }
                    pending.clear();
                }
                tokio::select! {
                    r = client.read(&mut from_client) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if up.write_all(&from_client[..n]).await.is_err() {
                                return;
                            }
                        }
                    },
                    r = up.read(&mut from_upstream) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if client.write_all(&from_upstream[..n]).await.is_err() {
                                return;
                            }
                        }
                    },
                    () = tokio::time::sleep(TICK) => {}
                }
            }
        }
    }
}
