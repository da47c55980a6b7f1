//! [`PeerIdentityLayer`]: finds the calling workload's identity for each request — from the
//! connection's verified client certificate, or from a trusted proxy's XFCC header — checks
//! it against an [`Authorizer`], and puts the [`PeerIdentity`] into the request extensions.
//!
//! # Example
//!
//! ```
//! use meshguard::peer::{Authorizer, PeerIdentityLayer, XfccPolicy};
//!
//! let layer = PeerIdentityLayer::new()
//!     .authorize(Authorizer::member_of("example.org".parse()?))
//!     .xfcc(XfccPolicy::builder().trust_loopback().build());
//! // axum: Router::new().route(...).layer(layer)
//! # let _ = layer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::Request;

use super::authorize::Authorizer;
use super::client_address::ForwardedAddress;
use super::connect::Connection;
use super::error::PeerError;
use super::forwarded::{DirectPeer, XFCC_HEADER, XfccPolicy};
use super::identity::PeerIdentity;
use crate::response::Refusal;

/// Identifies the calling workload in front of a service (its tower `Layer` makes a
/// [`Guard`](crate::guard::Guard) with this check alone).
///
/// The direct peer is read from the request extensions: [`MtlsConnectInfo`](super::MtlsConnectInfo) (also inside
/// axum's `ConnectInfo`, as `MtlsListener` (features `axum` and `rustls`) provides it) or, under
/// tonic, the TLS connect info of its server. When the direct peer is a proxy trusted by
/// the [`XfccPolicy`], the caller is the client its XFCC header names; XFCC headers from
/// anyone else are removed from the request. With
/// [`client_address`](Self::client_address), the same trusted proxies also report the
/// client's address that policies see as `context.client_ip`.
///
/// Refusals: no identity when one is required → 403 (gRPC UNAUTHENTICATED); a certificate
/// that breaks the identity rules → 403 (gRPC UNAUTHENTICATED); an identity the
/// [`Authorizer`] rejects → 403 (gRPC PERMISSION_DENIED); an unparsable header from a
/// trusted proxy → 400. None of them carries a `WWW-Authenticate` challenge: they are not
/// about a bearer token. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct PeerIdentityLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    authorizer: Option<Authorizer>,
    xfcc: XfccPolicy,
    forwarded: Option<ForwardedAddress>,
    required: bool,
}

/// The client address a trusted proxy reported, recorded by [`PeerIdentityLayer`] for the
/// policies; `None` when the proxy did not name the client.
#[derive(Clone, Copy, Debug)]
struct ForwardedClient(Option<IpAddr>);

impl Default for PeerIdentityLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerIdentityLayer {
    /// A layer requiring a peer identity, accepting any verified one, believing no XFCC.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                authorizer: None,
                xfcc: XfccPolicy::disabled(),
                forwarded: None,
                required: true,
            }),
        }
    }

    /// Refuses peers that `authorizer` does not accept (403 / PERMISSION_DENIED).
    #[must_use]
    pub fn authorize(self, authorizer: Authorizer) -> Self {
        self.with(|config| config.authorizer = Some(authorizer))
    }

    /// When to believe `x-forwarded-client-cert`. Defaults to never.
    #[must_use]
    pub fn xfcc(self, policy: XfccPolicy) -> Self {
        self.with(|config| config.xfcc = policy)
    }

    /// Takes the client's address, which policies see as `context.client_ip`, from the
    /// forwarding header `address` names when the direct peer is a proxy the
    /// [`XfccPolicy`] trusts (see [`xfcc`](Self::xfcc)); from any other peer the header is
    /// ignored and the address is the socket peer's.
    ///
    /// From a trusted proxy, a header that does not parse is refused with 400; a header
    /// that is absent or does not name the client (`unknown`, an obfuscated identifier, too
    /// few entries) leaves `context.client_ip` out rather than give the proxy's own address.
    ///
    /// # Security
    ///
    /// Choose the header the trusted proxies append to and count them exactly (see
    /// [`ForwardedAddress::hops`]); a header they only pass along is the client's to write.
    /// Defaults to the socket peer for every request.
    #[must_use]
    pub fn client_address(self, address: ForwardedAddress) -> Self {
        self.with(|config| config.forwarded = Some(address))
    }

    /// Lets requests without a peer identity through; an identity that is present is still
    /// checked. Defaults to requiring one.
    #[must_use]
    pub fn optional(self) -> Self {
        self.with(|config| config.required = false)
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        change(&mut config);
        Self {
            config: Arc::new(config),
        }
    }

    /// Removes XFCC headers that did not come from a trusted proxy, without identifying
    /// anyone (for routes that take no identity).
    pub(crate) fn strip_untrusted<B>(&self, request: &mut Request<B>) {
        match direct_peer(request) {
            (Some(addr), Ok(own)) => {
                let direct = DirectPeer::tcp(addr, own.as_ref());
                self.config
                    .xfcc
                    .strip_untrusted(&direct, request.headers_mut());
            }
            // An unknown connection, or a certificate that breaks the identity rules, is
            // not a trusted proxy.
            _ => {
                request.headers_mut().remove(XFCC_HEADER);
            }
        }
    }

    /// The identity of the caller of `request`, or the refusal to answer with. Removes XFCC
    /// headers that did not come from a trusted proxy.
    pub(crate) fn identify<B>(
        &self,
        request: &mut Request<B>,
    ) -> Result<Option<PeerIdentity>, Refusal> {
        let config = &*self.config;
        let (remote, own) = direct_peer(request);
        let own = own.map_err(|error| error.refusal())?;
        let identity = match remote {
            Some(addr) => {
                let direct = DirectPeer::tcp(addr, own.as_ref());
                let identity = config
                    .xfcc
                    .resolve(&direct, request.headers())
                    .map_err(|error| error.refusal())?;
                if let Some(address) = &config.forwarded
                    && config.xfcc.is_trusted_proxy(&direct)
                {
                    let client = address
                        .resolve(request.headers())
                        .map_err(|error| PeerError::Forwarded(error).refusal())?;
                    request.extensions_mut().insert(ForwardedClient(client));
                }
                config.xfcc.strip_untrusted(&direct, request.headers_mut());
                identity
            }
            // Nothing is known about the connection, so no proxy can be trusted.
            None => {
                request.headers_mut().remove(XFCC_HEADER);
                own
            }
        };
        match (&identity, &config.authorizer) {
            (None, _) if config.required => Err(PeerError::NoCertificate.refusal()),
            (Some(peer), Some(authorizer)) => match authorizer.authorize(peer) {
                Ok(()) => Ok(identity),
                Err(error) => Err(error.refusal()),
            },
            _ => Ok(identity),
        }
    }
}

/// The client's IP address for the policies: what a trusted proxy reported when a
/// [`PeerIdentityLayer`] configured with [`client_address`](PeerIdentityLayer::client_address)
/// identified the request, else the socket peer's. IPv4-mapped IPv6 addresses are IPv4.
pub(crate) fn client_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    match extensions.get::<ForwardedClient>() {
        Some(ForwardedClient(reported)) => *reported,
        None => Connection::of(extensions)
            .address()
            .map(|address| address.ip().to_canonical()),
    }
}

/// The connection's address and the identity of its own certificate.
fn direct_peer<B>(
    request: &Request<B>,
) -> (Option<SocketAddr>, Result<Option<PeerIdentity>, PeerError>) {
    let connection = Connection::of(request.extensions());
    (connection.address(), connection.identity())
}
