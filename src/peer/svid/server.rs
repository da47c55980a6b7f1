//! [`svid_server_config`]: one rustls `ServerConfig` that serves the current SVID of an
//! [`SvidStore`] and verifies clients against its current bundles, so it rotates without a
//! restart.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, ServerConfig,
    SignatureScheme,
};

use super::super::authorize::Authorizer;
use super::super::identity::PeerIdentity;
use super::super::spiffe::TrustDomain;
use super::super::tls::TlsConfigError;
use super::store::SvidStore;
use crate::token::Clock;

/// Builds a rustls `ServerConfig` (ring, TLS 1.2 and 1.3) that presents the current SVID of
/// `store` and requires every client to present an X509-SVID that chains to the current
/// bundle of the client's own trust domain and that `authorizer` accepts.
///
/// Build it once and hand it to [`MtlsListener`](super::super::MtlsListener),
/// [`TlsIncoming`](super::super::TlsIncoming) or any tokio-rustls server: every handshake
/// reads the store, so new handshakes take the material of the latest
/// [`SvidStore::update`] while established connections keep what they were set up with.
///
/// - The certificate served is [`SvidStore::valid_now`]: once the SVID has expired and
///   nothing replaced it, handshakes fail rather than serve expired material.
/// - A client chain is verified only against the bundle of the trust domain its leaf's
///   SPIFFE ID names, as the store holds it at that handshake: a trust domain dropped from
///   the bundles (de-federation) is refused from the next handshake on.
/// - `authorizer` decides at the TLS level which SPIFFE IDs may connect; a refused client
///   sees its handshake fail, with no HTTP or gRPC answer. Pass [`Authorizer::any`] to let
///   every SVID of a trusted trust domain in and decide per request instead (the guard's
///   peer rules, or an `Authorizer` in the handler), which answers 403 with a reason.
/// - The server sends no list of acceptable CA names in its certificate request: the
///   list would have to borrow from material that may be swapped during the handshake.
///   SVID clients hold one certificate and present it anyway.
/// - Sessions are never resumed: a resumed session would carry the client chain of its
///   first handshake past the verifier, after the client's SVID expired or its trust
///   domain was dropped.
/// - ALPN offers `h2` and `http/1.1`, so the config serves axum and tonic alike.
///
/// Validity is judged on the store's clock, which rustls also gets as its time provider.
///
/// # Errors
///
/// [`TlsConfigError::Rustls`] when rustls refuses the protocol versions of the provider
/// (not with the ring provider the store uses).
///
/// # Example
///
/// ```no_run
/// use std::sync::Arc;
/// use meshguard::peer::{Authorizer, MtlsListener, SvidStore, svid_server_config};
///
/// # async fn run(app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
/// // A source (files, the SPIFFE Workload API) keeps the store current.
/// let store = SvidStore::new();
/// let config = Arc::new(svid_server_config(&store, Authorizer::any())?);
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// axum::serve(
///     MtlsListener::new(tcp, config),
///     app.into_make_service_with_connect_info::<meshguard::peer::MtlsConnectInfo>(),
/// )
/// .await?;
/// # Ok(())
/// # }
/// ```
pub fn svid_server_config(
    store: &SvidStore,
    authorizer: Authorizer,
) -> Result<ServerConfig, TlsConfigError> {
    let provider = Arc::clone(store.provider());
    let verifier = Arc::new(SvidClientVerifier {
        store: store.clone(),
        authorizer,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ServerConfig::builder_with_details(provider, StoreTime::of(store))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SvidCertResolver {
            store: store.clone(),
        }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The store's clock as rustls's time provider, so that certificate validity in the
/// handshake is judged on the same clock as the material served.
#[derive(Debug)]
pub(super) struct StoreTime(Arc<dyn Clock>);

impl StoreTime {
    pub(super) fn of(store: &SvidStore) -> Arc<Self> {
        Arc::new(Self(Arc::clone(store.clock())))
    }
}

impl TimeProvider for StoreTime {
    fn current_time(&self) -> Option<UnixTime> {
        // A clock before 1970 gives no time, and rustls then fails the handshake.
        let seconds = u64::try_from(self.0.unix_seconds()).ok()?;
        Some(UnixTime::since_unix_epoch(Duration::from_secs(seconds)))
    }
}

/// Presents the store's SVID while it is valid.
#[derive(Debug)]
struct SvidCertResolver {
    store: SvidStore,
}

impl ResolvesServerCert for SvidCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let svid = self.store.valid_now();
        if svid.is_none() {
            tracing::debug!("no valid svid to present: handshake refused");
        }
        svid.map(|svid| Arc::clone(svid.certified_key()))
    }
}

/// Verifies a client chain against the current bundle of its leaf's trust domain, then
/// authorizes its SPIFFE ID.
#[derive(Debug)]
struct SvidClientVerifier {
    store: SvidStore,
    authorizer: Authorizer,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for SvidClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The subjects live in the swappable material and cannot be borrowed past this
        // call; an empty list asks the client for whatever certificate it has.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let identity = PeerIdentity::from_svid_chain(&[end_entity.as_ref()]).map_err(other)?;
        let trust_domain = leaf_trust_domain(&identity)?;
        let svid = self.store.current().ok_or(unknown_issuer())?;
        let verifier = svid.client_verifier(trust_domain).ok_or(unknown_issuer())?;
        let verified = verifier.verify_client_cert(end_entity, intermediates, now)?;
        self.authorizer.authorize(&identity).map_err(other)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The trust domain of a peer's SPIFFE ID, which picks the only bundle its chain may be
/// verified against.
pub(super) fn leaf_trust_domain(identity: &PeerIdentity) -> Result<&TrustDomain, rustls::Error> {
    identity
        .spiffe_id()
        .map(|id| id.trust_domain())
        .ok_or(unknown_issuer())
}

/// No bundle to verify against: the chain's issuer is not trusted.
pub(super) fn unknown_issuer() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
}

/// A meshguard refusal as a rustls certificate error, keeping the reason for logs.
pub(super) fn other<E: std::error::Error + Send + Sync + 'static>(error: E) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}
