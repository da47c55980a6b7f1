#![doc = include_str!("../README.md")]
//! ## Feature flags
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `cli` | the `meshguard` command-line tool |
//! | `axum` | `meshguard::axum`: extractors and rejections, axum's body for refusals, matched route templates for policies |
//! | `tonic` | tonic's body for refusals; with `rustls`, peer identity from tonic's TLS connect info and `peer::SvidConnector` for mTLS `Channel`s |
//! | `remote-jwks` (default) | [`token::remote`]: JWKS over HTTPS and OpenID Connect discovery, cached and refreshed |
//! | `introspection` | [`token::introspection`]: opaque tokens checked at their issuer's RFC 7662 endpoint, answers cached (implies `remote-jwks`) |
//! | `outgoing` | [`outgoing`]: credentials on outgoing requests (the inbound bearer token forwarded, OAuth 2.0 client credentials, RFC 8693 token exchange), cached and renewed, as a tower layer and plain functions (implies `remote-jwks`) |
//! | `rustls` | `peer::server_config`: a rustls `ServerConfig` requiring client certificates chained to a CA or SPIFFE bundle; `peer::SvidStore` with `peer::svid_server_config` and `peer::svid_client_config`, mTLS configs that rotate without a restart, fed from files on disk by `peer::PemFiles` or `peer::CredentialFolder`; with `axum`, `peer::MtlsListener`; with `tonic`, `peer::TlsIncoming` and `peer::peer_identity` |
//! | `workload-api` | `peer::WorkloadApiSource`: the service's own X509-SVIDs and trust bundles streamed from the SPIFFE Workload API into a `peer::SvidStore`, reconnecting with back-off (implies `rustls`) |
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
pub mod caller;
pub mod guard;
#[cfg(feature = "outgoing")]
#[cfg_attr(docsrs, doc(cfg(feature = "outgoing")))]
pub mod outgoing;
pub mod peer;
pub mod policy;
pub mod response;
mod route;
pub mod token;
mod watch;
