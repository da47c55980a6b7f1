//! What a server knows about the connection a request arrived on.

use std::net::SocketAddr;

use super::error::PeerError;
use super::forwarded::DirectPeer;
use super::identity::PeerIdentity;

/// The client's address and verified identity, read once per connection.
///
/// `MtlsListener` (features `axum` and `rustls`) provides it to axum as
/// `ConnectInfo<MtlsConnectInfo>` when the app is served with
/// `into_make_service_with_connect_info::<MtlsConnectInfo>()`. A server of your own (plain
/// hyper, a unix socket) can insert it into each request's extensions itself; the
/// [`PeerIdentityLayer`](super::PeerIdentityLayer) reads it from either place.
#[derive(Debug, Clone)]
pub struct MtlsConnectInfo {
    remote_addr: SocketAddr,
    identity: Option<PeerIdentity>,
}

impl MtlsConnectInfo {
    /// A connection from `remote_addr` whose client presented a certificate with
    /// `identity`, verified by the TLS handshake (`None` when it sent none).
    pub fn new(remote_addr: SocketAddr, identity: Option<PeerIdentity>) -> Self {
        Self {
            remote_addr,
            identity,
        }
    }

    /// The client's socket address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The client's identity; `None` when it sent no certificate.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.identity.as_ref()
    }

    /// This connection as the direct peer, for [`XfccPolicy::resolve`](super::XfccPolicy::resolve).
    pub fn direct_peer(&self) -> DirectPeer<'_> {
        DirectPeer::tcp(self.remote_addr, self.identity.as_ref())
    }
}

/// The connection a request arrived on, as the server recorded it in the request
/// extensions: [`MtlsConnectInfo`] (also inside axum's `ConnectInfo`), axum's
/// `ConnectInfo<SocketAddr>`, or tonic's TCP and TLS connect info.
///
/// The one place that knows these types; the address and the identity are both read from
/// what it found, and tonic's certificate chain is only parsed when the identity is asked for.
pub(crate) struct Connection<'a> {
    address: Option<SocketAddr>,
    certificate: Certificate<'a>,
}

/// What the server recorded of the client's own certificate.
enum Certificate<'a> {
    /// No certificate, or a connection the server did not describe.
    None,
    /// An identity read once per connection.
    Identified(Option<&'a PeerIdentity>),
    /// tonic keeps the verified chain, not an identity.
    #[cfg(all(feature = "tonic", feature = "rustls"))]
    Tonic(&'a tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>),
}

impl<'a> Connection<'a> {
    /// The connection `extensions` describe.
    pub(crate) fn of(extensions: &'a http::Extensions) -> Self {
        if let Some(info) = extensions.get::<MtlsConnectInfo>() {
            return Self::mtls(info);
        }
        #[cfg(feature = "axum")]
        {
            use axum::extract::ConnectInfo;
            if let Some(ConnectInfo(info)) = extensions.get::<ConnectInfo<MtlsConnectInfo>>() {
                return Self::mtls(info);
            }
            if let Some(ConnectInfo(address)) = extensions.get::<ConnectInfo<SocketAddr>>() {
                return Self {
                    address: Some(*address),
                    certificate: Certificate::None,
                };
            }
        }
        #[cfg(all(feature = "tonic", feature = "rustls"))]
        {
            use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
            if let Some(tls) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
                return Self {
                    address: tls.get_ref().remote_addr(),
                    certificate: Certificate::Tonic(tls),
                };
            }
            if let Some(tcp) = extensions.get::<TcpConnectInfo>() {
                return Self {
                    address: tcp.remote_addr(),
                    certificate: Certificate::None,
                };
            }
        }
        Self {
            address: None,
            certificate: Certificate::None,
        }
    }

    fn mtls(info: &'a MtlsConnectInfo) -> Self {
        Self {
            address: Some(info.remote_addr),
            certificate: Certificate::Identified(info.identity.as_ref()),
        }
    }

    /// The client's socket address, when the server recorded it.
    pub(crate) fn address(&self) -> Option<SocketAddr> {
        self.address
    }

    /// The identity of the client's own certificate (shared, not copied); `None` when it
    /// sent none or the server did not say.
    ///
    /// # Errors
    ///
    /// A [`PeerError`] when tonic's verified chain breaks the identity rules.
    pub(crate) fn identity(&self) -> Result<Option<PeerIdentity>, PeerError> {
        match self.certificate {
            Certificate::None => Ok(None),
            Certificate::Identified(identity) => Ok(identity.cloned()),
            #[cfg(all(feature = "tonic", feature = "rustls"))]
            Certificate::Tonic(tls) => match tls.peer_certs() {
                Some(chain) => PeerIdentity::from_der_chain(&chain).map(Some),
                None => Ok(None),
            },
        }
    }
}
