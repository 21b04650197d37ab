//! A fault-injecting TCP proxy between the service and PostgreSQL, switched at run time:
//!
//! - [`Fault::Pass`]: bytes flow both ways.
//! - [`Fault::Refuse`]: connections are killed, new ones closed as soon as accepted (a
//!   database down, a reset).
//! - [`Fault::Stall`]: nothing is forwarded, nothing answered, connections stay open (a
//!   database hung, a network black hole); back in `Pass`, what waited flows on.
//!
//! The mode is a `watch` channel: every connection's task wakes on a switch, so a switch
//! takes effect on open connections at once, with no polling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Pass,
    Refuse,
    Stall,
}

/// The proxy. Dropping it stops it: the acceptor is aborted, and connection tasks end
/// when they see the mode channel closed.
pub(crate) struct Proxy {
    port: u16,
    mode: watch::Sender<Fault>,
    accepted: Arc<AtomicU64>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on `127.0.0.1:0` to `upstream`, passing.
    pub(crate) async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (mode, watching) = watch::channel(Fault::Pass);
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&accepted);
        let acceptor = tokio::spawn(accept(listener, upstream, watching, counter));
        Ok(Proxy {
            port,
            mode,
            accepted,
            acceptor,
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }

    /// Connections accepted so far (each one the service tried to open).
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<Fault>,
    accepted: Arc<AtomicU64>,
) {
    while let Ok((client, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::Relaxed);
        if *mode.borrow() != Fault::Refuse {
            tokio::spawn(pipe(client, upstream, mode.clone()));
        } // else dropped: closed as soon as accepted
    }
}

/// One connection, from its client's side to the upstream and back, obeying the mode.
async fn pipe(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Fault>) {
    // A connection accepted during a stall reaches the upstream only once it ends.
    if !passing(&mut mode).await {
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let (mut up, mut down) = (vec![0; 16 * 1024], vec![0; 16 * 1024]);
    loop {
        // Reads are cancel-safe: a switch in the middle of one loses no byte.
        tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() || !passing(&mut mode).await {
                    return; // the proxy is gone, or refusing: both sockets close
                }
            }
            read = from_client.read(&mut up) => match read {
                Ok(n) if n > 0 => if to_server.write_all(&up[..n]).await.is_err() { return },
                _ => return,
            },
            read = from_server.read(&mut down) => match read {
                Ok(n) if n > 0 => if to_client.write_all(&down[..n]).await.is_err() { return },
                _ => return,
            },
        }
    }
}

/// Waits while the proxy stalls; `true` once it passes, `false` if it refuses or is gone.
async fn passing(mode: &mut watch::Receiver<Fault>) -> bool {
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Fault::Pass => return true,
            Fault::Refuse => return false,
            Fault::Stall => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}
