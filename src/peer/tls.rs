//! A rustls `ServerConfig` that requires client certificates chained to trusted roots.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore,
    ServerConfig, SignatureScheme,
};

use super::error::PeerError;
use super::identity::{
    MAX_PEM_LEN, PeerIdentity, certificate_blocks, certificates_from_pem, has_spiffe_scheme,
};
use super::spiffe::TrustDomain;
use crate::token::jwt_svid::{BundleError, MAX_SPIFFE_BUNDLE_BYTES, SpiffeBundle};
use x509_parser::extensions::GeneralName;

/// Largest SPIFFE bundle document accepted, in bytes.
/// The same bound as JWT-SVID bundles ([`MAX_SPIFFE_BUNDLE_BYTES`]): one parser reads both.
pub const MAX_BUNDLE_LEN: usize = MAX_SPIFFE_BUNDLE_BYTES;

/// Most X.509 roots accepted from one trust bundle: a SPIFFE bundle document, or a bundle or
/// CA set in PEM.
pub const MAX_BUNDLE_ROOTS: usize = 64;

/// Why a TLS configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// PEM input is malformed, too large, or holds no certificate.
    #[error("invalid PEM certificates: {0}")]
    Certificates(#[source] PeerError),
    /// The private key PEM holds no usable key.
    #[error("invalid private key PEM")]
    PrivateKey,
    /// A SPIFFE bundle document holds no X.509 root, or more than [`MAX_BUNDLE_ROOTS`].
    #[error("invalid SPIFFE bundle: {0}")]
    Bundle(&'static str),
    /// A SPIFFE bundle document breaks the bundle format (see [`BundleError`]).
    #[error("invalid SPIFFE bundle: {0}")]
    BundleDocument(#[source] BundleError),
    /// No trust anchor was configured.
    #[error("no client trust anchors configured")]
    NoRoots,
    /// A root given in a trust domain's bundle names another trust domain in its `spiffe://`
    /// URI SAN: taken, it would let that domain's CA issue identities of this one.
    #[error("invalid SPIFFE bundle: {0}")]
    ForeignRoot(String),
    /// A CA bundle for every client and per-trust-domain SPIFFE bundles were both
    /// configured; which one applies would be ambiguous.
    #[error("a CA bundle and SPIFFE bundles cannot be combined")]
    MixedRoots,
    /// rustls refused a certificate, key or root.
    #[error("rustls: {0}")]
    Rustls(String),
    /// The calling side was given an authorizer that accepts any SPIFFE ID
    /// ([`Authorizer::any`](super::Authorizer::any)): every workload of every trusted trust
    /// domain could pose as the server and receive what the client sends.
    #[error("the calling side needs an authorizer that names the servers it may reach")]
    UnrestrictedServer,
}

impl TlsConfigError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Certificates(_) => "invalid_certificates",
            Self::PrivateKey => "invalid_private_key",
            Self::Bundle(_) | Self::BundleDocument(_) => "invalid_bundle",
            Self::ForeignRoot(_) => "foreign_root",
            Self::NoRoots => "no_roots",
            Self::MixedRoots => "mixed_roots",
            Self::Rustls(_) => "rustls",
            Self::UnrestrictedServer => "unrestricted_server",
        }
    }
}

/// The roots client certificates must chain to.
///
/// Either one CA bundle for every client ([`ClientRoots::ca_pem`]), or SPIFFE bundles per
/// trust domain ([`ClientRoots::spiffe`]), in which case a client certificate is verified
/// only against the bundle of its own SPIFFE ID's trust domain: a chain to trust domain B's
/// root whose leaf claims `spiffe://A/...` is refused.
#[derive(Debug, Clone, Default)]
pub struct ClientRoots {
    any: Vec<CertificateDer<'static>>,
    spiffe: Vec<(TrustDomain, Vec<CertificateDer<'static>>)>,
}

impl ClientRoots {
    /// Roots from a PEM CA bundle, trusted for any client certificate.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::Certificates`] when the PEM holds no certificate, more than
    /// [`MAX_BUNDLE_ROOTS`] or is malformed.
    pub fn ca_pem(pem: &[u8]) -> Result<Self, TlsConfigError> {
        let roots = roots_from_pem(pem).map_err(TlsConfigError::Certificates)?;
        Ok(Self {
            any: roots,
            spiffe: Vec::new(),
        })
    }

    /// Starts SPIFFE roots with no trust domain; add bundles with
    /// [`with_bundle_json`](Self::with_bundle_json) or
    /// [`with_bundle_pem`](Self::with_bundle_pem).
    pub fn spiffe() -> Self {
        Self::default()
    }

    /// Adds the X.509 roots of `trust_domain` from a SPIFFE bundle document (a JWK set
    /// whose `x509-svid` keys carry exactly one `x5c` certificate each), read as strictly as
    /// a JWT-SVID bundle ([`SpiffeBundle::from_json`]): the whole document must keep the
    /// bundle format, `jwt-svid` entries included.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::BundleDocument`] when the document is larger than
    /// [`MAX_BUNDLE_LEN`], not strict JSON, has no `keys` array or breaks the format in any
    /// entry (an `x509-svid` key without exactly one base64 DER `x5c` certificate, a
    /// `jwt-svid` key without a unique `kid`); [`TlsConfigError::Bundle`] when it has no
    /// `x509-svid` key at all or more than [`MAX_BUNDLE_ROOTS`];
    /// [`TlsConfigError::ForeignRoot`] when a root names another trust domain in its
    /// `spiffe://` URI SAN.
    pub fn with_bundle_json(
        mut self,
        trust_domain: TrustDomain,
        json: &[u8],
    ) -> Result<Self, TlsConfigError> {
        let roots = bundle_roots(&trust_domain, json)?;
        check_roots(&trust_domain, &roots)?;
        self.spiffe.push((trust_domain, roots));
        Ok(self)
    }

    /// Adds the X.509 roots of `trust_domain` from PEM.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::Certificates`] when the PEM holds no certificate, more than
    /// [`MAX_BUNDLE_ROOTS`] or is malformed; [`TlsConfigError::ForeignRoot`] when a root
    /// names another trust domain in its `spiffe://` URI SAN (as a SPIRE CA does: a
    /// federated bundle is added under its own trust domain).
    pub fn with_bundle_pem(
        mut self,
        trust_domain: TrustDomain,
        pem: &[u8],
    ) -> Result<Self, TlsConfigError> {
        let roots = roots_from_pem(pem).map_err(TlsConfigError::Certificates)?;
        check_roots(&trust_domain, &roots)?;
        self.spiffe.push((trust_domain, roots));
        Ok(self)
    }

    /// A rustls client-certificate verifier for these roots, on ring. Client certificates
    /// are mandatory.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::NoRoots`] when no root is configured,
    /// [`TlsConfigError::MixedRoots`] when a CA bundle was given SPIFFE bundles too,
    /// [`TlsConfigError::Rustls`] when rustls refuses a root.
    pub fn verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        if !self.any.is_empty() && !self.spiffe.is_empty() {
            return Err(TlsConfigError::MixedRoots);
        }
        if !self.any.is_empty() {
            return webpki_verifier(&self.any, &provider);
        }
        if self.spiffe.is_empty() {
            return Err(TlsConfigError::NoRoots);
        }
        let mut domains = Vec::with_capacity(self.spiffe.len());
        let mut subjects = Vec::new();
        for (td, roots) in &self.spiffe {
            let verifier = webpki_verifier(roots, &provider)?;
            subjects.extend_from_slice(verifier.root_hint_subjects());
            domains.push((td.clone(), verifier));
        }
        Ok(Arc::new(SpiffeClientVerifier {
            domains,
            subjects,
            algorithms: provider.signature_verification_algorithms,
        }))
    }
}

/// Builds a rustls `ServerConfig` (ring, TLS 1.2 and 1.3) that presents `cert_chain` with
/// `key` and requires every client to present a certificate chained to `client_roots`.
/// ALPN offers `h2` and `http/1.1`, so the config serves axum and tonic alike. Sessions are
/// never resumed: each connection's client chain is verified in a full handshake.
///
/// Identity is then read from the verified chain with [`PeerIdentity::from_der_chain`];
/// this crate does not verify chains itself.
///
/// # Errors
///
/// [`TlsConfigError`] when no root is configured or rustls refuses the key or chain.
///
/// # Example
///
/// ```
/// use meshguard::peer::{ClientRoots, TrustDomain, server_config_from_pem};
///
/// # let ca_key = rcgen::KeyPair::generate()?;
/// # let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
/// # ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
/// # let ca_cert = ca.self_signed(&ca_key)?;
/// # let key = rcgen::KeyPair::generate()?;
/// # let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?
/// #     .signed_by(&key, &rcgen::Issuer::from_params(&ca, &ca_key))?;
/// # let (server_pem, key_pem, bundle_pem) = (server.pem(), key.serialize_pem(), ca_cert.pem());
/// let roots = ClientRoots::spiffe()
///     .with_bundle_pem(TrustDomain::new("example.org")?, bundle_pem.as_bytes())?;
/// let config = server_config_from_pem(server_pem.as_bytes(), key_pem.as_bytes(), &roots)?;
/// assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: &ClientRoots,
) -> Result<ServerConfig, TlsConfigError> {
    let verifier = client_roots.verifier()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(cert_chain, key)
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // A resumed session (TLS 1.3 tickets live 24 h in rustls, TLS 1.2 session ids too) carries
    // the client chain of its first handshake without verifying it again: a certificate that
    // expired since, or a trust domain no longer trusted, would keep getting in. Every
    // connection gets a full handshake, as go-spiffe's configurations do.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// [`server_config`] from the server's PEM chain (leaf first) and PEM private key.
///
/// # Errors
///
/// As [`server_config`], plus [`TlsConfigError::Certificates`] and
/// [`TlsConfigError::PrivateKey`] for unusable PEM.
pub fn server_config_from_pem(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
    client_roots: &ClientRoots,
) -> Result<ServerConfig, TlsConfigError> {
    let chain = pem_certificates(cert_chain_pem)?;
    if key_pem.len() > MAX_PEM_LEN {
        return Err(TlsConfigError::PrivateKey);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsConfigError::PrivateKey)?;
    server_config(chain, key, client_roots)
}

/// The identity of the client of a rustls server connection, once the handshake is done;
/// `None` when the client presented no certificate.
///
/// # Errors
///
/// As [`PeerIdentity::from_der_chain`].
pub fn identity_from_connection(
    connection: &rustls::ServerConnection,
) -> Result<Option<PeerIdentity>, PeerError> {
    connection
        .peer_certificates()
        .map(PeerIdentity::from_der_chain)
        .transpose()
}

fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let ders = certificates_from_pem(pem).map_err(TlsConfigError::Certificates)?;
    Ok(ders.into_iter().map(CertificateDer::from).collect())
}

/// Refuses roots that name another trust domain than `trust_domain`.
fn check_roots(
    trust_domain: &TrustDomain,
    roots: &[CertificateDer<'_>],
) -> Result<(), TlsConfigError> {
    roots
        .iter()
        .try_for_each(|root| check_root_trust_domain(trust_domain, root))
        .map_err(TlsConfigError::ForeignRoot)
}

/// The roots of a trust bundle in PEM: up to [`MAX_BUNDLE_ROOTS`] certificates, where a
/// chain stops at [`MAX_CHAIN_LEN`](super::MAX_CHAIN_LEN).
pub(crate) fn roots_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PeerError> {
    let ders = certificate_blocks(
        pem,
        MAX_BUNDLE_ROOTS,
        PeerError::TooManyRoots {
            max: MAX_BUNDLE_ROOTS,
        },
    )?;
    Ok(ders.into_iter().map(CertificateDer::from).collect())
}

fn webpki_verifier(
    roots: &[CertificateDer<'static>],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsConfigError> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(root.clone())
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(store), Arc::clone(provider))
        .build()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))
}

/// The X.509 roots of a SPIFFE bundle document, read by the same strict parser as JWT-SVID
/// bundles ([`SpiffeBundle::from_json`]), so both kinds of authority come from one reading
/// of the format.
fn bundle_roots(
    trust_domain: &TrustDomain,
    json: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let bundle = SpiffeBundle::from_json(trust_domain.clone(), json)
        .map_err(TlsConfigError::BundleDocument)?;
    let roots = bundle.x509_authorities();
    if roots.is_empty() {
        return Err(TlsConfigError::Bundle("no x509-svid key"));
    }
    if roots.len() > MAX_BUNDLE_ROOTS {
        return Err(TlsConfigError::Bundle("too many roots"));
    }
    Ok(roots
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect())
}

/// A SPIRE CA certificate names its trust domain in a `spiffe://<td>` URI SAN. A root that
/// names another trust domain than the bundle it was given in is refused: taken, it would
/// let that domain's CA issue SVIDs for this one (spiffe-helper's
/// `include_federated_domains` appends federated roots to the own bundle file). A root
/// without a SPIFFE URI SAN says nothing about its trust domain and is kept.
pub(crate) fn check_root_trust_domain(
    trust_domain: &TrustDomain,
    root: &CertificateDer<'_>,
) -> Result<(), String> {
    let cert = match x509_parser::parse_x509_certificate(root.as_ref()) {
        Ok(([], cert)) => cert,
        _ => return Err("a root is not a well-formed certificate".to_owned()),
    };
    let san = cert
        .subject_alternative_name()
        .map_err(|_| "a root has a malformed subject alternative name".to_owned())?;
    let uris = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    for uri in uris.filter(|uri| has_spiffe_scheme(uri)) {
        match TrustDomain::new(uri) {
            Ok(named) if named == *trust_domain => {}
            Ok(named) => {
                return Err(format!(
                    "a root belongs to trust domain `{}` (URI SAN `{uri}`); federated roots \
                     must be given as their own trust domain's bundle",
                    named.as_str()
                ));
            }
            Err(_) => return Err(format!("a root has an invalid SPIFFE URI SAN `{uri}`")),
        }
    }
    Ok(())
}

/// Verifies a client chain against the roots of the trust domain its leaf's SPIFFE ID
/// names, and nothing else.
#[derive(Debug)]
struct SpiffeClientVerifier {
    domains: Vec<(TrustDomain, Arc<dyn ClientCertVerifier>)>,
    subjects: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let identity = PeerIdentity::from_svid_chain(&[end_entity.as_ref()]).map_err(|e| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
        })?;
        let trust_domain = identity.spiffe_id().map(|id| id.trust_domain()).ok_or(
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        )?;
        let (_, verifier) = self
            .domains
            .iter()
            .find(|(td, _)| td == trust_domain)
            .ok_or(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))?;
        verifier.verify_client_cert(end_entity, intermediates, now)
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
