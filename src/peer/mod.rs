//! Who is calling: the mTLS peer's identity (SPIFFE X509-SVID or plain X.509), from the
//! TLS connection or from Envoy's `x-forwarded-client-cert` behind a trusted proxy.
//!
//! This module reads identity from a connection the TLS stack has already verified; it
//! verifies no signatures, trust anchors or validity periods itself. With the `rustls`
//! feature, `server_config` builds a rustls `ServerConfig` that requires client
//! certificates chained to a CA bundle (PEM or SPIFFE bundle) so that the verification is
//! in place, and `svid_server_config` / `svid_client_config` build the server and calling
//! sides of mTLS between services on an `SvidStore`, rotating without a restart. [`PeerIdentity`] then reads the SPIFFE ID (under the X509-SVID rules, stricter
//! than go-spiffe), SANs, subject and SHA-256 thumbprint of the verified chain;
//! [`Authorizer`]s decide which SPIFFE IDs may call; [`XfccPolicy`] decides when a proxy's
//! XFCC header is believed, and [`ForwardedAddress`] how such a proxy reports the client's
//! address. Where mTLS ends at a proxy that forwards no certificate, a JWT-SVID carries the
//! workload's SPIFFE ID instead (see [`token::jwt_svid`](crate::token::jwt_svid)); the
//! authorizers decide on its ID as on a certificate's.
//!
//! # Example
//!
//! ```
//! use meshguard::peer::{Authorizer, PeerIdentity, TrustDomain};
//!
//! # fn chain() -> Vec<Vec<u8>> {
//! #     let key = rcgen::KeyPair::generate().unwrap();
//! #     let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
//! #     params.subject_alt_names =
//! #         vec![rcgen::SanType::URI("spiffe://example.org/ns/shop/sa/cart".try_into().unwrap())];
//! #     params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
//! #     vec![params.self_signed(&key).unwrap().der().to_vec()]
//! # }
//! // The chain as the TLS stack verified it, leaf first (e.g. rustls `peer_certificates()`).
//! let peer = PeerIdentity::from_der_chain(&chain())?;
//! assert_eq!(
//!     peer.spiffe_id().map(|id| id.as_str()),
//!     Some("spiffe://example.org/ns/shop/sa/cart")
//! );
//!
//! let authz = Authorizer::member_of(TrustDomain::new("example.org")?);
//! assert!(authz.authorize(&peer).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(all(feature = "rustls", any(feature = "axum", feature = "tonic")))]
mod acceptor;
mod authorize;
#[cfg(all(feature = "axum", feature = "rustls"))]
mod axum;
mod binding;
mod client_address;
mod connect;
mod error;
mod forwarded;
mod identity;
mod layer;
#[cfg(all(feature = "rustls", any(feature = "axum", feature = "tonic")))]
mod pending;
mod spiffe;
#[cfg(feature = "rustls")]
mod svid;
#[cfg(feature = "rustls")]
mod tls;
#[cfg(all(feature = "tonic", feature = "rustls"))]
mod tonic;
mod xfcc;

pub use authorize::{AuthorizeError, Authorizer};
pub use binding::{BindingError, CertificateBinding};
pub use client_address::{
    DEFAULT_MAX_FORWARDED_ELEMENTS, DEFAULT_MAX_FORWARDED_LEN, ForwardedAddress, ForwardedError,
};
pub use connect::MtlsConnectInfo;
pub use error::PeerError;
pub use forwarded::{DirectPeer, ElementSelection, XFCC_HEADER, XfccPolicy, XfccPolicyBuilder};
pub use identity::{
    IdentitySource, MAX_CERTIFICATE_LEN, MAX_CHAIN_LEN, MAX_PEM_LEN, PeerIdentity,
    certificates_from_pem,
};
pub use layer::PeerIdentityLayer;
pub(crate) use layer::client_ip;
pub use spiffe::{MAX_SPIFFE_ID_LEN, MAX_TRUST_DOMAIN_LEN, SpiffeId, SpiffeIdError, TrustDomain};
pub use xfcc::{
    DEFAULT_MAX_XFCC_ELEMENTS, DEFAULT_MAX_XFCC_LEN, MAX_XFCC_PAIRS, XfccElement, XfccError,
    parse_xfcc, parse_xfcc_with_limits,
};

#[cfg(all(feature = "rustls", any(feature = "axum", feature = "tonic")))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "rustls", any(feature = "axum", feature = "tonic"))))
)]
pub use acceptor::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_MAX_PENDING_PER_SOURCE,
    HandshakeLimits,
};
#[cfg(all(feature = "axum", feature = "rustls"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "axum", feature = "rustls"))))]
pub use axum::{MtlsListener, MtlsStream};
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub use svid::{
    CredentialFolder, DEFAULT_FAILURE_TOLERANCE, DEFAULT_POLL_INTERVAL, MAX_DELIVERY_LEN,
    MAX_FOLDER_ENTRIES, MAX_TRUST_DOMAINS, PemFiles, Svid, SvidFileError, SvidFileWatcher,
    SvidHealth, SvidStatus, SvidStore, SvidUpdateError, X509Update, svid_client_config,
    svid_server_config,
};
#[cfg(feature = "workload-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "workload-api")))]
pub use svid::{
    DEFAULT_MAX_BACKOFF, DEFAULT_MIN_BACKOFF, DEFAULT_START_TIMEOUT, MAX_WORKLOAD_SVIDS,
    MIN_BACKOFF_FLOOR, SPIFFE_ENDPOINT_SOCKET, WorkloadApiError, WorkloadApiSource,
    WorkloadApiWatcher,
};
#[cfg(all(feature = "tonic", feature = "rustls"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "tonic", feature = "rustls"))))]
pub use svid::{SvidConnecting, SvidConnector};
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub use tls::{
    ClientRoots, MAX_BUNDLE_LEN, MAX_BUNDLE_ROOTS, TlsConfigError, identity_from_connection,
    server_config, server_config_from_pem,
};
#[cfg(all(feature = "tonic", feature = "rustls"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "tonic", feature = "rustls"))))]
pub use tonic::{TlsIncoming, peer_identity};
