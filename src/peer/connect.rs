//! What a server knows about the connection a request arrived on.

use std::net::SocketAddr;

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
