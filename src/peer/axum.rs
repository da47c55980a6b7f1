//! Peer identity in an axum server on tokio-rustls, through connect info.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use super::acceptor::{Acceptor, HandshakeLimits};
use super::connect::MtlsConnectInfo;
use super::identity::PeerIdentity;

/// An [`axum::serve::Listener`] that terminates TLS with a rustls `ServerConfig` (see
/// [`server_config`](super::server_config)) and reads each client's identity once per
/// connection.
///
/// Every connection is accepted at once and handshakes concurrently, within
/// [`HandshakeLimits`] (a timeout, and bounds on pending handshakes overall and per source
/// that shed the oldest): sockets left idle or fed a byte at a time cannot keep other
/// clients out. A connection whose verified certificate breaks the identity rules (a
/// malformed SVID) is closed.
///
/// # Example
///
/// ```no_run
/// use std::sync::Arc;
/// use axum::{Router, extract::ConnectInfo, routing::get};
/// use meshguard::peer::{Authorizer, MtlsConnectInfo, MtlsListener};
///
/// # async fn run(config: rustls::ServerConfig) -> std::io::Result<()> {
/// let allowed = Authorizer::id("spiffe://example.org/ns/shop/sa/cart".parse().unwrap());
/// let app = Router::new().route(
///     "/",
///     get(move |ConnectInfo(peer): ConnectInfo<MtlsConnectInfo>| async move {
///         match peer.identity().map(|id| allowed.authorize(id)) {
///             Some(Ok(())) => "hello",
///             _ => "refused",
///         }
///     }),
/// );
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// let listener = MtlsListener::new(tcp, Arc::new(config));
/// axum::serve(listener, app.into_make_service_with_connect_info::<MtlsConnectInfo>()).await
/// # }
/// ```
///
/// # Slow clients after the handshake
///
/// Once TLS is up the connection belongs to the HTTP server. `axum::serve` gives hyper no
/// timer, so hyper's header read timeout is off: a client may hold its connection by
/// sending nothing, or request headers a byte at a time. Where untrusted clients can
/// connect, serve the listener with hyper's own builders instead: HTTP/1 with a timer and
/// `header_read_timeout` (which also closes connections idle between requests), chosen by
/// the ALPN protocol the handshake settled (hyper-util's `auto` builder first waits,
/// without a deadline, for bytes that tell the versions apart). hyper has no such deadline
/// for HTTP/2: bound those connections by number or age yourself, or in a proxy in front.
///
/// ```no_run
/// use std::time::Duration;
/// use axum::{Extension, Router, extract::ConnectInfo, serve::Listener as _};
/// use hyper::server::conn::{http1, http2};
/// use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
/// use hyper_util::service::TowerToHyperService;
/// use meshguard::peer::{MtlsConnectInfo, MtlsListener};
///
/// # async fn run(mut listener: MtlsListener, app: Router) {
/// let mut h1 = http1::Builder::new();
/// h1.timer(TokioTimer::new())
///     .header_read_timeout(Duration::from_secs(10));
/// let h2 = http2::Builder::new(TokioExecutor::new());
/// loop {
///     let (stream, remote) = listener.accept().await;
///     let info = MtlsConnectInfo::new(remote, stream.identity().cloned());
///     let is_h2 = stream.get_ref().get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
///     let service = TowerToHyperService::new(app.clone().layer(Extension(ConnectInfo(info))));
///     let io = TokioIo::new(stream);
///     if is_h2 {
///         tokio::spawn(h2.serve_connection(io, service));
///     } else {
///         tokio::spawn(h1.serve_connection(io, service).with_upgrades());
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct MtlsListener {
    acceptor: Acceptor,
}

impl MtlsListener {
    /// Serves TLS with `config` on `listener`, with the default [`HandshakeLimits`].
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> Self {
        Self {
            acceptor: Acceptor::new(listener, config),
        }
    }

    /// Replaces the [`HandshakeLimits`]; see there for what each bound does.
    pub fn with_handshake_limits(mut self, limits: HandshakeLimits) -> Self {
        self.acceptor.set_limits(limits);
        self
    }

    /// The limits on TLS handshakes in progress.
    pub fn handshake_limits(&self) -> HandshakeLimits {
        self.acceptor.limits()
    }
}

impl axum::serve::Listener for MtlsListener {
    type Io = MtlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (inner, remote, identity) =
            std::future::poll_fn(|cx| self.acceptor.poll_next(cx)).await;
        (MtlsStream { inner, identity }, remote)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.acceptor.local_addr()
    }
}

/// A TLS connection accepted by [`MtlsListener`], with its client's identity.
#[derive(Debug)]
pub struct MtlsStream {
    inner: TlsStream<TcpStream>,
    identity: Option<PeerIdentity>,
}

impl MtlsStream {
    /// The client's identity; `None` when it sent no certificate.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.identity.as_ref()
    }

    /// The underlying TLS stream.
    pub fn get_ref(&self) -> &TlsStream<TcpStream> {
        &self.inner
    }
}

impl AsyncRead for MtlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for MtlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connected<IncomingStream<'_, MtlsListener>> for MtlsConnectInfo {
    fn connect_info(stream: IncomingStream<'_, MtlsListener>) -> Self {
        Self::new(*stream.remote_addr(), stream.io().identity.clone())
    }
}
