//! Accepts TCP connections and runs their TLS handshakes concurrently, within limits that
//! idle or slow clients cannot exhaust.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::identity::PeerIdentity;
use super::pending::{Pending, Source};

/// How long a client may take to finish the TLS handshake, by default: many round trips on
/// the slowest links, while a socket left idle is closed well before a client would retry.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most TLS handshakes in progress at once, by default.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 1024;

/// Most TLS handshakes in progress at once from one source, by default: an IPv4 address or
/// an IPv6 /64 prefix (what one host usually holds).
pub const DEFAULT_MAX_PENDING_PER_SOURCE: usize = 64;

/// Limits on the TLS handshakes a [`MtlsListener`](super::MtlsListener) or
/// [`TlsIncoming`](super::TlsIncoming) runs at once.
///
/// Every connection is accepted at once and handshakes in its own task, bounded by
/// [`timeout`](Self::timeout). When a new connection would pass
/// [`max_pending_per_source`](Self::max_pending_per_source) or
/// [`max_pending`](Self::max_pending), the *oldest* pending handshake (of that source, or of
/// all) is closed to make room. A real client finishes its handshake within a few round
/// trips, so it is almost never the oldest; sockets left idle or fed byte by byte are.
/// Refusing the newest connection instead would let a few thousand idle sockets lock every
/// client out, and a plain semaphore taken before `accept` does exactly that.
///
/// The per-source bound keeps one host's sockets from shedding another host's handshakes;
/// the global bound caps the file descriptors and memory all pending handshakes hold.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use meshguard::peer::HandshakeLimits;
///
/// let limits = HandshakeLimits::new()
///     .with_timeout(Duration::from_secs(2))
///     .with_max_pending_per_source(16);
/// assert_eq!(limits.max_pending(), meshguard::peer::DEFAULT_MAX_PENDING_HANDSHAKES);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeLimits {
    timeout: Duration,
    max_pending: usize,
    max_pending_per_source: usize,
}

impl HandshakeLimits {
    /// The defaults: [`DEFAULT_HANDSHAKE_TIMEOUT`], [`DEFAULT_MAX_PENDING_HANDSHAKES`] and
    /// [`DEFAULT_MAX_PENDING_PER_SOURCE`].
    pub fn new() -> Self {
        Self {
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_pending: DEFAULT_MAX_PENDING_HANDSHAKES,
            max_pending_per_source: DEFAULT_MAX_PENDING_PER_SOURCE,
        }
    }

    /// How long a client may take from the moment its connection is accepted to the end of
    /// the TLS handshake; the connection is then closed. The deadline covers the whole
    /// handshake, so a client sending its messages a byte at a time gains nothing.
    ///
    /// # Security
    ///
    /// A longer timeout lets each idle socket hold its slot longer; clients on slow links
    /// need a few round trips. Defaults to [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Most handshakes in progress at once; past it, the oldest is closed. Values below 1
    /// count as 1.
    ///
    /// # Security
    ///
    /// Each pending handshake holds a file descriptor and a few kilobytes; a larger value
    /// lets clients from many addresses hold more of them. A smaller value sheds real
    /// clients sooner under a flood from many addresses. Keep the process's open-file
    /// limit well above this plus the connections you serve: out of descriptors, the
    /// listener can accept nothing, so it cannot shed either, until a handshake ends.
    /// Defaults to [`DEFAULT_MAX_PENDING_HANDSHAKES`].
    pub fn with_max_pending(mut self, max: usize) -> Self {
        self.max_pending = max.max(1);
        self
    }

    /// Most handshakes in progress at once from one source (an IPv4 address, or the /64
    /// prefix of an IPv6 address); past it, that source's oldest is closed. Values below 1
    /// count as 1.
    ///
    /// # Security
    ///
    /// Clients behind one NAT or proxy share a source: set it above the number of
    /// connections such a gateway opens at the same instant. A larger value lets one host
    /// take more of [`max_pending`](Self::max_pending) from the others. Defaults to
    /// [`DEFAULT_MAX_PENDING_PER_SOURCE`].
    pub fn with_max_pending_per_source(mut self, max: usize) -> Self {
        self.max_pending_per_source = max.max(1);
        self
    }

    /// The handshake timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Most handshakes in progress at once.
    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// Most handshakes in progress at once from one source.
    pub fn max_pending_per_source(&self) -> usize {
        self.max_pending_per_source
    }
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self::new()
    }
}

/// A finished handshake: the stream, the client's address and its identity (`None` when
/// the client sent no certificate, which only a config with optional client auth allows).
pub(crate) type Accepted = (TlsStream<TcpStream>, SocketAddr, Option<PeerIdentity>);

/// Most connections taken from the listener in one poll before finished handshakes are
/// handed over, so that a flood of new sockets cannot starve the ones already through.
const ACCEPT_BATCH: usize = 64;

/// How long to wait after `accept` fails (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A TCP listener whose connections come out TLS-terminated. It does its work when polled,
/// as the server's accept loop does; dropping it closes every pending handshake.
pub(crate) struct Acceptor {
    listener: TcpListener,
    tls: TlsAcceptor,
    limits: HandshakeLimits,
    handshakes: JoinSet<Option<Accepted>>,
    pending: Pending,
    backoff: Option<Pin<Box<Sleep>>>,
}

impl Acceptor {
    pub(crate) fn new(listener: TcpListener, config: Arc<ServerConfig>) -> Self {
        Self {
            listener,
            tls: TlsAcceptor::from(config),
            limits: HandshakeLimits::new(),
            handshakes: JoinSet::new(),
            pending: Pending::default(),
            backoff: None,
        }
    }

    pub(crate) fn set_limits(&mut self, limits: HandshakeLimits) {
        self.limits = limits;
    }

    pub(crate) fn limits(&self) -> HandshakeLimits {
        self.limits
    }

    /// Accepts what is waiting, starts its handshakes, and returns the next one finished.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Accepted> {
        // Finished handshakes first: shedding must not pick one that is already through.
        if let Poll::Ready(accepted) = self.poll_finished(cx) {
            return Poll::Ready(accepted);
        }
        self.accept_waiting(cx);
        self.poll_finished(cx)
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn accept_waiting(&mut self, cx: &mut Context<'_>) {
        for _ in 0..ACCEPT_BATCH {
            if let Some(backoff) = self.backoff.as_mut() {
                if backoff.as_mut().poll(cx).is_pending() {
                    return;
                }
                self.backoff = None;
            }
            match self.listener.poll_accept(cx) {
                Poll::Ready(Ok((tcp, remote))) => self.start(tcp, remote),
                // Out of file descriptors and similar: back off instead of spinning.
                Poll::Ready(Err(_)) => {
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
                Poll::Pending => return,
            }
        }
        // More may be waiting; come back once the finished handshakes are handed over.
        cx.waker().wake_by_ref();
    }

    fn start(&mut self, tcp: TcpStream, remote: SocketAddr) {
        let source = Source::of(remote.ip());
        if self.pending.count(source) >= self.limits.max_pending_per_source {
            self.pending.shed_oldest_of(source);
        }
        if self.pending.len() >= self.limits.max_pending {
            self.pending.shed_oldest();
        }
        let abort = self.handshakes.spawn(handshake(
            self.tls.clone(),
            tcp,
            remote,
            self.limits.timeout,
        ));
        self.pending.insert(source, abort);
    }

    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<Accepted> {
        loop {
            match self.handshakes.poll_join_next_with_id(cx) {
                Poll::Ready(Some(Ok((id, done)))) => {
                    self.pending.finish(id);
                    if let Some(accepted) = done {
                        return Poll::Ready(accepted);
                    }
                }
                // Shed (already forgotten) or panicked.
                Poll::Ready(Some(Err(e))) => self.pending.finish(e.id()),
                // An empty set registers no waker; the listener's does.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("listener", &self.listener)
            .field("limits", &self.limits)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

async fn handshake(
    tls: TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    timeout: Duration,
) -> Option<Accepted> {
    let stream = tokio::time::timeout(timeout, tls.accept(tcp))
        .await
        .ok()?
        .ok()?;
    // A certificate the TLS stack accepted but that breaks the identity rules (a malformed
    // SVID, say) closes the connection: fail closed.
    let identity = match stream.get_ref().1.peer_certificates() {
        None => None,
        Some(chain) => Some(PeerIdentity::from_der_chain(chain).ok()?),
    };
    Some((stream, remote, identity))
}
