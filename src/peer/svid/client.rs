//! [`svid_client_config`]: the calling side of mTLS between services, a rustls
//! `ClientConfig` that presents the current SVID of an [`SvidStore`] and authorizes the
//! server by its SPIFFE ID.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::super::authorize::Authorizer;
use super::super::identity::PeerIdentity;
use super::super::tls::TlsConfigError;
use super::server::{StoreTime, leaf_trust_domain, other, unknown_issuer};
use super::store::SvidStore;

/// Builds a rustls `ClientConfig` (ring, TLS 1.2 and 1.3) that presents the current SVID of
/// `store` and accepts a server only when its X509-SVID chains to the current bundle of the
/// server's own trust domain and `authorizer` accepts its SPIFFE ID (go-spiffe's
/// `MTLSClientConfig`).
///
/// Like [`svid_server_config`](super::svid_server_config), every handshake reads the store,
/// so one config (and one HTTP client built on it) follows rotations of the SVID and the
/// bundles.
///
/// - The server name the client dials is not checked: SPIFFE authorizes servers by their
///   ID, which `authorizer` decides on. The name still goes out as SNI when it is a DNS
///   name. So `authorizer` is the only check of who the server is: name the server's ID
///   ([`Authorizer::id`], [`Authorizer::one_of`]) or a path prefix. With
///   [`Authorizer::member_of`] every workload of that trust domain is a valid server for
///   every call; [`Authorizer::any`] is refused.
/// - The SVID presented is [`SvidStore::valid_now`]: once it has expired and nothing
///   replaced it, no certificate is sent and the server refuses the handshake.
/// - Sessions are never resumed: a resumed session skips the server's certificate, so a
///   changed bundle or a server that is no longer trusted would go unnoticed.
/// - ALPN offers `http/1.1` only, for `reqwest` as meshguard builds it (without HTTP/2).
///   For an HTTP/2 client set `alpn_protocols` to `h2`; [`SvidConnector`] does that for
///   tonic.
///
/// [`SvidConnector`]: super::super::SvidConnector
///
/// # Errors
///
/// [`TlsConfigError::UnrestrictedServer`] when `authorizer` accepts any SPIFFE ID;
/// [`TlsConfigError::Rustls`] when rustls refuses the protocol versions of the provider
/// (not with the ring provider the store uses).
///
/// # Example
///
/// ```no_run
/// use meshguard::peer::{Authorizer, SvidStore, svid_client_config};
///
/// # async fn call(store: SvidStore) -> Result<(), Box<dyn std::error::Error>> {
/// let payments = Authorizer::id("spiffe://example.org/ns/shop/sa/payments".parse()?);
/// let client = reqwest::Client::builder()
///     .tls_backend_preconfigured(svid_client_config(&store, payments)?)
///     .build()?;
/// let answer = client.get("https://payments.shop:8443/charges").send().await?;
/// # let _ = answer;
/// # Ok(())
/// # }
/// ```
pub fn svid_client_config(
    store: &SvidStore,
    authorizer: Authorizer,
) -> Result<ClientConfig, TlsConfigError> {
    if authorizer.is_unrestricted() {
        return Err(TlsConfigError::UnrestrictedServer);
    }
    let provider = Arc::clone(store.provider());
    let verifier = Arc::new(SvidServerVerifier {
        store: store.clone(),
        authorizer,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_details(provider, StoreTime::of(store))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(SvidClientCert {
            store: store.clone(),
        }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// Presents the store's SVID while it is valid.
#[derive(Debug)]
struct SvidClientCert {
    store: SvidStore,
}

impl ResolvesClientCert for SvidClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let svid = self.store.valid_now();
        if svid.is_none() {
            tracing::debug!("no valid svid to present: the server will refuse the handshake");
        }
        svid.map(|svid| Arc::clone(svid.certified_key()))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Verifies a server chain against the current bundle of its leaf's trust domain, ignoring
/// the server name, then authorizes its SPIFFE ID.
#[derive(Debug)]
struct SvidServerVerifier {
    store: SvidStore,
    authorizer: Authorizer,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SvidServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let identity = PeerIdentity::from_svid_chain(&[end_entity.as_ref()]).map_err(other)?;
        let trust_domain = leaf_trust_domain(&identity)?;
        let svid = self.store.current().ok_or(unknown_issuer())?;
        let roots = svid.roots(trust_domain).ok_or(unknown_issuer())?;
        let leaf = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &leaf,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        self.authorizer.authorize(&identity).map_err(other)?;
        Ok(ServerCertVerified::assertion())
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
