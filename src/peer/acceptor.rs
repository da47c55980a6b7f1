//! Accepts TCP connections and runs TLS handshakes concurrently, off the accept loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::identity::PeerIdentity;

/// How long a client may take to finish the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most handshakes in progress at once; past it, accepting waits.
pub(crate) const MAX_PENDING_HANDSHAKES: usize = 1024;

/// A finished handshake: the stream, the client's address and its identity (`None` when
/// the client sent no certificate, which only a config with optional client auth allows).
pub(crate) type Accepted = (TlsStream<TcpStream>, SocketAddr, Option<PeerIdentity>);

/// A background task feeding finished handshakes into a channel; dropping it stops the
/// task.
#[derive(Debug)]
pub(crate) struct Acceptor {
    rx: mpsc::Receiver<Accepted>,
    local_addr: io::Result<SocketAddr>,
    task: JoinHandle<()>,
}

impl Acceptor {
    /// Spawns the accept loop on the current tokio runtime.
    pub(crate) fn spawn(listener: TcpListener, config: Arc<ServerConfig>) -> Self {
        let local_addr = listener.local_addr();
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx));
        Self {
            rx,
            local_addr,
            task,
        }
    }

    /// The next finished handshake; `None` once the accept loop has stopped.
    #[cfg(feature = "axum")]
    pub(crate) async fn next(&mut self) -> Option<Accepted> {
        self.rx.recv().await
    }

    #[cfg(feature = "tonic")]
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Accepted>> {
        self.rx.poll_recv(cx)
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.local_addr {
            Ok(addr) => Ok(*addr),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, tx: mpsc::Sender<Accepted>) {
    let permits = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and similar: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(permit);
            let Ok(Ok(tls)) = handshake else {
                return;
            };
            // A certificate the TLS stack accepted but that breaks the identity rules
            // (a malformed SVID, say) closes the connection: fail closed.
            let identity = match tls.get_ref().1.peer_certificates() {
                None => None,
                Some(chain) => match PeerIdentity::from_der_chain(chain) {
                    Ok(identity) => Some(identity),
                    Err(_) => return,
                },
            };
            // The receiver is gone only when the server shut down.
            let _ = tx.send((tls, remote, identity)).await;
        });
    }
}
