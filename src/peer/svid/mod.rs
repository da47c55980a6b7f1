//! The service's own X509-SVID and trust bundles, kept current while it runs.
//!
//! An [`SvidStore`] holds the material a rotating TLS configuration presents and verifies
//! peers against. Sources hand each delivery to [`SvidStore::update`] as an
//! [`X509Update`]; the store checks it all (the leaf is a valid X509-SVID, the key is its
//! key, it is within its validity period, its own trust domain has a bundle and it chains
//! to it) before one atomic swap, and keeps the last good material when a check fails.
//! [`SvidStore::status`] tells readiness probes whether handshakes can succeed.
//!
//! [`svid_server_config`] and [`svid_client_config`] build one rustls configuration each
//! that reads the store at every handshake: the certificate presented is the current SVID
//! while it is valid (expired material is never served), a peer's chain is verified against
//! the current bundle of the peer's own trust domain, and an [`Authorizer`] decides on its
//! SPIFFE ID. Established connections keep the material they were set up with. With the
//! `tonic` feature, [`SvidConnector`] dials tonic `Channel`s with the client configuration.
//!
//! [`Authorizer`]: super::Authorizer
//!
//! # Example
//!
//! ```
//! use meshguard::peer::{SvidHealth, SvidStore, TrustDomain, X509Update};
//!
//! # let ca_key = rcgen::KeyPair::generate()?;
//! # let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
//! # ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
//! # ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
//! # let ca_cert = ca.self_signed(&ca_key)?;
//! # let key = rcgen::KeyPair::generate()?;
//! # let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new())?;
//! # leaf.subject_alt_names =
//! #     vec![rcgen::SanType::URI("spiffe://example.org/orders".try_into()?)];
//! # leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
//! # let leaf = leaf.signed_by(&key, &rcgen::Issuer::from_params(&ca, &ca_key))?;
//! # let (svid_pem, key_pem, bundle_pem) = (leaf.pem(), key.serialize_pem(), ca_cert.pem());
//! let store = SvidStore::new();
//! let update = X509Update::from_pem(svid_pem.as_bytes(), key_pem.as_bytes())?
//!     .with_bundle_pem(TrustDomain::new("example.org")?, bundle_pem.as_bytes())?;
//! let svid = store.update(update)?;
//! assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/orders");
//! assert_eq!(store.status().health(), SvidHealth::Current);
//!
//! // A delivery whose key is not the certificate's is refused; the old material stays.
//! let other_key = rcgen::KeyPair::generate()?.serialize_pem();
//! let bad = X509Update::from_pem(svid_pem.as_bytes(), other_key.as_bytes())?
//!     .with_bundle_pem(TrustDomain::new("example.org")?, bundle_pem.as_bytes())?;
//! assert_eq!(store.update(bad).unwrap_err().reason(), "key_mismatch");
//! assert_eq!(store.status().health(), SvidHealth::Failing);
//! assert_eq!(store.current().map(|svid| svid.generation()), Some(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! One store serves and calls: the server side behind axum (or tonic's `TlsIncoming`), the
//! calling side in reqwest and tonic, all following the rotations a source feeds the store.
//!
//! ```rust,no_run
//! use std::future::IntoFuture as _;
//! use std::sync::Arc;
//! use meshguard::peer::{
//!     Authorizer, MtlsConnectInfo, MtlsListener, SvidConnector, SvidStore, TrustDomain,
//!     svid_client_config, svid_server_config,
//! };
//!
//! # async fn run(store: SvidStore, app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
//! // Serving: every SVID of example.org may connect; the guard decides per request.
//! let members = Authorizer::member_of(TrustDomain::new("example.org")?);
//! let server = Arc::new(svid_server_config(&store, members)?);
//! let tcp = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! let serving = axum::serve(
//!     MtlsListener::new(tcp, server),
//!     app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
//! );
//! tokio::spawn(serving.into_future());
//!
//! // Calling payments: only its SPIFFE ID is accepted as the server.
//! let payments = Authorizer::id("spiffe://example.org/ns/shop/sa/payments".parse()?);
//! let http = reqwest::Client::builder()
//!     .tls_backend_preconfigured(svid_client_config(&store, payments.clone())?)
//!     .build()?;
//! let _ = http.get("https://payments.shop:8443/charges").send().await?;
//! let grpc = tonic::transport::Endpoint::from_static("http://payments.shop:50051")
//!     .connect_with_connector(SvidConnector::new(&store, payments)?)
//!     .await?;
//! # let _ = grpc;
//! # Ok(())
//! # }
//! ```

mod client;
#[cfg(feature = "tonic")]
mod connector;
mod error;
mod files;
mod material;
mod server;
mod store;
#[cfg(test)]
mod tests;
mod update;
#[cfg(feature = "workload-api")]
mod workload_api;

pub use client::svid_client_config;
#[cfg(feature = "tonic")]
pub use connector::{SvidConnecting, SvidConnector};
pub use error::SvidUpdateError;
pub use files::{
    CredentialFolder, DEFAULT_FAILURE_TOLERANCE, DEFAULT_POLL_INTERVAL, MAX_DELIVERY_LEN,
    MAX_FOLDER_ENTRIES, PemFiles, SvidFileError, SvidFileWatcher,
};
pub use material::{MAX_TRUST_DOMAINS, Svid};
pub use server::svid_server_config;
pub use store::{SvidHealth, SvidStatus, SvidStore};
pub use update::X509Update;
#[cfg(feature = "workload-api")]
pub use workload_api::{
    DEFAULT_MAX_BACKOFF, DEFAULT_MIN_BACKOFF, DEFAULT_START_TIMEOUT, MAX_WORKLOAD_SVIDS,
    MIN_BACKOFF_FLOOR, SPIFFE_ENDPOINT_SOCKET, WorkloadApiError, WorkloadApiSource,
    WorkloadApiWatcher,
};
