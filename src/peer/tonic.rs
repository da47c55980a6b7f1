//! Peer identity in a tonic server: a TLS incoming stream and `peer_certs` extraction.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use super::acceptor::{Acceptor, HandshakeLimits};
use super::error::PeerError;
use super::identity::PeerIdentity;

/// The identity of the client of a tonic request, from its verified certificate chain
/// (`Request::peer_certs`), on a server fed by [`TlsIncoming`] or tonic's own TLS.
///
/// # Errors
///
/// [`PeerError::NoCertificate`] when the connection carries no client certificate (no TLS,
/// or optional client auth), otherwise as [`PeerIdentity::from_der_chain`].
///
/// # Example
///
/// ```
/// use meshguard::peer::{Authorizer, peer_identity};
///
/// fn check(request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
///     let allowed = Authorizer::member_of("example.org".parse().unwrap());
///     let peer = peer_identity(&request)
///         .map_err(|e| tonic::Status::unauthenticated(e.reason()))?;
///     allowed
///         .authorize(&peer)
///         .map_err(|e| tonic::Status::permission_denied(e.reason()))?;
///     Ok(request)
/// }
/// // Without a TLS connection there is no certificate.
/// assert_eq!(check(tonic::Request::new(())).unwrap_err().message(), "no_certificate");
/// ```
pub fn peer_identity<T>(request: &tonic::Request<T>) -> Result<PeerIdentity, PeerError> {
    let chain = request.peer_certs().ok_or(PeerError::NoCertificate)?;
    PeerIdentity::from_der_chain(&chain)
}

/// A stream of TLS connections for `tonic::transport::Server::serve_with_incoming`,
/// terminated with a rustls `ServerConfig` (see [`server_config`](super::server_config)),
/// so that the SPIFFE-aware client verification of that config applies to gRPC too.
///
/// Every connection is accepted at once and handshakes concurrently, within
/// [`HandshakeLimits`] (a timeout, and bounds on pending handshakes overall and per source
/// that shed the oldest): sockets left idle or fed a byte at a time cannot keep other
/// clients out. A connection whose verified certificate breaks the identity rules is
/// closed.
///
/// Once TLS is up the connection belongs to tonic, which sets no deadline on a client that
/// sends its request slowly or nothing at all. Where untrusted clients can connect, bound
/// each connection's life with `Server::max_connection_age` and
/// `max_connection_age_grace`, and each request with `Server::timeout`.
#[derive(Debug)]
pub struct TlsIncoming {
    acceptor: Acceptor,
}

impl TlsIncoming {
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

    /// The local address of the listener.
    ///
    /// # Errors
    ///
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.acceptor.local_addr()
    }
}

impl futures_core::Stream for TlsIncoming {
    type Item = Result<TlsStream<TcpStream>, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // The stream never ends: the listener lives as long as this value.
        self.get_mut()
            .acceptor
            .poll_next(cx)
            .map(|(tls, _, _)| Some(Ok(tls)))
    }
}
