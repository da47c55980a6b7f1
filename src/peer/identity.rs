//! The identity of a peer, read from its already-verified certificate chain.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::error::PeerError;
use super::spiffe::SpiffeId;

/// Most certificates accepted in one chain (leaf included).
///
/// A workload chain is a leaf and a few intermediates; anything longer is refused before
/// more than the size check is done.
pub const MAX_CHAIN_LEN: usize = 8;

/// Largest DER certificate accepted, in bytes.
pub const MAX_CERTIFICATE_LEN: usize = 64 * 1024;

/// Largest PEM input accepted by [`PeerIdentity::from_pem`] and
/// [`certificates_from_pem`], in bytes.
pub const MAX_PEM_LEN: usize = 1024 * 1024;

/// Where an identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentitySource {
    /// The certificate chain of this connection's own TLS handshake.
    Tls,
    /// An `x-forwarded-client-cert` element written by a trusted proxy.
    Xfcc,
}

/// Who the peer is: its SPIFFE ID, SANs, subject and certificate thumbprint.
///
/// Only parsing a certificate chain ([`from_der_chain`](Self::from_der_chain),
/// [`from_svid_chain`](Self::from_svid_chain), [`from_pem`](Self::from_pem)) or a trusted
/// XFCC element ([`XfccPolicy`](super::XfccPolicy)) makes one.
///
/// This type reads identity; it does not verify signatures, trust anchors or validity
/// periods. That is the TLS stack's job (see `server_config` with the `rustls` feature):
/// build a `PeerIdentity` only from a chain the TLS handshake has already verified.
///
/// Cloning is cheap: the identity is shared, so that a connection's identity goes into each
/// request's extensions and [`Caller`](crate::caller::Caller) without copying its fields.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerIdentity(Arc<Identity>);

#[derive(PartialEq, Eq)]
struct Identity {
    spiffe_id: Option<SpiffeId>,
    dns: Vec<String>,
    uris: Vec<String>,
    subject: Option<String>,
    common_name: Option<String>,
    serial: Option<String>,
    not_before: Option<SystemTime>,
    not_after: Option<SystemTime>,
    sha256: [u8; 32],
    x5t_s256: String,
    source: IdentitySource,
}

impl PeerIdentity {
    /// Reads the identity of a verified chain, leaf first, as TLS presents it.
    ///
    /// A leaf that carries a `spiffe:` URI SAN claims to be an X509-SVID and must then
    /// satisfy every X509-SVID rule (see [`from_svid_chain`](Self::from_svid_chain)), so a
    /// broken SVID is rejected instead of quietly becoming an identity without SPIFFE ID.
    /// A leaf without one yields an identity whose [`spiffe_id`](Self::spiffe_id) is `None`.
    ///
    /// # Errors
    ///
    /// Returns a [`PeerError`] for an empty chain, a chain longer than [`MAX_CHAIN_LEN`], a
    /// certificate larger than [`MAX_CERTIFICATE_LEN`] or not valid DER, a leaf that is a CA,
    /// an intermediate that is not a CA with `keyCertSign`, or a broken X509-SVID.
    pub fn from_der_chain<C: AsRef<[u8]>>(chain: &[C]) -> Result<Self, PeerError> {
        parse_chain(chain, SvidRule::IfClaimed, IdentitySource::Tls)
    }

    /// Reads the identity of a verified chain that must be an X509-SVID.
    ///
    /// Beyond [`from_der_chain`](Self::from_der_chain): the leaf has exactly one URI SAN,
    /// it is a valid SPIFFE ID with a non-root path, the leaf is not a CA, has
    /// `digitalSignature` and has neither `keyCertSign` nor `cRLSign`. This is stricter
    /// than go-spiffe, which checks neither `digitalSignature` nor the path.
    ///
    /// # Errors
    ///
    /// As [`from_der_chain`](Self::from_der_chain), plus [`PeerError::NoUriSan`] for a leaf
    /// without URI SAN.
    pub fn from_svid_chain<C: AsRef<[u8]>>(chain: &[C]) -> Result<Self, PeerError> {
        parse_chain(chain, SvidRule::Required, IdentitySource::Tls)
    }

    /// Reads the identity of the `CERTIFICATE` blocks of PEM text, leaf first, as
    /// [`from_der_chain`](Self::from_der_chain) does. Other blocks (keys) are skipped.
    ///
    /// # Errors
    ///
    /// As [`certificates_from_pem`] and [`from_der_chain`](Self::from_der_chain).
    pub fn from_pem(pem: &[u8]) -> Result<Self, PeerError> {
        Self::from_der_chain(&certificates_from_pem(pem)?)
    }

    /// The SPIFFE ID, when the leaf is a valid X509-SVID.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        self.0.spiffe_id.as_ref()
    }

    /// The DNS SANs of the leaf, in certificate order.
    pub fn dns_names(&self) -> &[String] {
        &self.0.dns
    }

    /// The URI SANs of the leaf, in certificate order (the SPIFFE ID included).
    pub fn uris(&self) -> &[String] {
        &self.0.uris
    }

    /// The subject distinguished name, in RFC 4514 style (`CN=web, O=Example`); `None` when
    /// empty or, for XFCC, absent.
    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// The first common name (CN) of the subject; `None` when there is none or the identity
    /// came from an XFCC element without `Cert`.
    pub fn common_name(&self) -> Option<&str> {
        self.0.common_name.as_deref()
    }

    /// The serial number in lowercase hex; `None` when the identity came from an XFCC
    /// element without `Cert`.
    pub fn serial(&self) -> Option<&str> {
        self.0.serial.as_deref()
    }

    /// Start of the validity period; `None` when the identity came from an XFCC element
    /// without `Cert`.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.0.not_before
    }

    /// End of the validity period; `None` when the identity came from an XFCC element
    /// without `Cert`.
    pub fn not_after(&self) -> Option<SystemTime> {
        self.0.not_after
    }

    /// SHA-256 of the leaf certificate's DER encoding.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.0.sha256
    }

    /// The leaf's SHA-256 thumbprint in base64url without padding, the form of RFC 8705's
    /// `cnf["x5t#S256"]`.
    pub fn x5t_s256(&self) -> &str {
        &self.0.x5t_s256
    }

    /// Where this identity came from.
    pub fn source(&self) -> IdentitySource {
        self.0.source
    }

    /// Builds an identity from the fields of an XFCC element that has no `Cert`.
    pub(crate) fn from_forwarded_fields(
        spiffe_id: Option<SpiffeId>,
        dns: Vec<String>,
        uris: Vec<String>,
        subject: Option<String>,
        sha256: [u8; 32],
    ) -> Self {
        Self(Arc::new(Identity {
            spiffe_id,
            dns,
            uris,
            subject,
            common_name: None,
            serial: None,
            not_before: None,
            not_after: None,
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
            sha256,
            source: IdentitySource::Xfcc,
        }))
    }

    /// Builds an identity from a chain forwarded in an XFCC element.
    pub(crate) fn from_forwarded_chain<C: AsRef<[u8]>>(chain: &[C]) -> Result<Self, PeerError> {
        parse_chain(chain, SvidRule::IfClaimed, IdentitySource::Xfcc)
    }
}

impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Identity {
            spiffe_id,
            dns,
            uris,
            subject,
            common_name,
            serial,
            not_before,
            not_after,
            sha256,
            x5t_s256,
            source,
        } = &*self.0;
        f.debug_struct("PeerIdentity")
            .field("spiffe_id", spiffe_id)
            .field("dns", dns)
            .field("uris", uris)
            .field("subject", subject)
            .field("common_name", common_name)
            .field("serial", serial)
            .field("not_before", not_before)
            .field("not_after", not_after)
            .field("sha256", sha256)
            .field("x5t_s256", x5t_s256)
            .field("source", source)
            .finish()
    }
}

/// Decodes the `CERTIFICATE` blocks of PEM text into DER, in order; other blocks (keys)
/// are skipped.
///
/// # Errors
///
/// [`PeerError::MalformedPem`] when the input is longer than [`MAX_PEM_LEN`] or a block
/// cannot be decoded, [`PeerError::NoPemCertificates`] when there is no certificate block,
/// [`PeerError::ChainTooLong`] past [`MAX_CHAIN_LEN`] certificates.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, PeerError> {
    certificate_blocks(
        pem,
        MAX_CHAIN_LEN,
        PeerError::ChainTooLong { max: MAX_CHAIN_LEN },
    )
}

/// The `CERTIFICATE` blocks of `pem` as [`certificates_from_pem`] reads them, with `max`
/// blocks at most and `too_many` past that: chains and trust bundles have different bounds.
pub(crate) fn certificate_blocks(
    pem: &[u8],
    max: usize,
    too_many: PeerError,
) -> Result<Vec<Vec<u8>>, PeerError> {
    if pem.len() > MAX_PEM_LEN {
        return Err(PeerError::MalformedPem);
    }
    let mut certs = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|_| PeerError::MalformedPem)?;
        if block.label == "CERTIFICATE" {
            if certs.len() == max {
                return Err(too_many);
            }
            certs.push(block.contents);
        }
    }
    if certs.is_empty() {
        return Err(PeerError::NoPemCertificates);
    }
    Ok(certs)
}

/// SHA-256 of `der`.
pub(crate) fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SvidRule {
    /// The leaf must be an X509-SVID.
    Required,
    /// The leaf must be a valid X509-SVID if it carries a `spiffe:` URI SAN.
    IfClaimed,
}

fn parse_chain<C: AsRef<[u8]>>(
    chain: &[C],
    rule: SvidRule,
    source: IdentitySource,
) -> Result<PeerIdentity, PeerError> {
    if chain.len() > MAX_CHAIN_LEN {
        return Err(PeerError::ChainTooLong { max: MAX_CHAIN_LEN });
    }
    let (leaf_der, signers) = chain.split_first().ok_or(PeerError::NoCertificate)?;
    let leaf_der = leaf_der.as_ref();
    let leaf = parse_certificate(leaf_der)?;
    let (dns, uris) = subject_alt_names(&leaf)?;
    let claims_spiffe = rule == SvidRule::Required || uris.iter().any(|u| has_spiffe_scheme(u));
    let spiffe_id = if claims_spiffe {
        Some(validate_svid_leaf(&leaf, &uris)?)
    } else {
        if is_ca(&leaf)? {
            return Err(PeerError::LeafIsCa);
        }
        None
    };
    for signer in signers {
        validate_signing_certificate(&parse_certificate(signer.as_ref())?)?;
    }
    let subject = Some(leaf.subject().to_string()).filter(|s| !s.is_empty());
    let common_name = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let sha256 = sha256(leaf_der);
    Ok(PeerIdentity(Arc::new(Identity {
        spiffe_id,
        dns,
        uris,
        subject,
        common_name,
        serial: Some(hex(leaf.raw_serial())),
        not_before: Some(to_system_time(leaf.validity().not_before.timestamp())),
        not_after: Some(to_system_time(leaf.validity().not_after.timestamp())),
        x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
        sha256,
        source,
    })))
}

fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, PeerError> {
    if der.len() > MAX_CERTIFICATE_LEN {
        return Err(PeerError::CertificateTooLarge {
            max: MAX_CERTIFICATE_LEN,
        });
    }
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(PeerError::MalformedCertificate),
    }
}

/// DNS and URI SANs; any SAN that is not valid text makes the certificate malformed so that
/// an unreadable URI SAN cannot hide from the exactly-one-URI rule.
fn subject_alt_names(cert: &X509Certificate<'_>) -> Result<(Vec<String>, Vec<String>), PeerError> {
    let mut dns = Vec::new();
    let mut uris = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|_| PeerError::MalformedCertificate)?;
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(d) => dns.push((*d).to_owned()),
            GeneralName::URI(u) => uris.push((*u).to_owned()),
            GeneralName::Invalid(..) => return Err(PeerError::MalformedCertificate),
            _ => {}
        }
    }
    Ok((dns, uris))
}

/// X509-SVID §4.1 and §4.3, in go-spiffe's order, then the non-root path (§5.2).
fn validate_svid_leaf(leaf: &X509Certificate<'_>, uris: &[String]) -> Result<SpiffeId, PeerError> {
    let uri = match uris {
        [] => return Err(PeerError::NoUriSan),
        [uri] => uri,
        _ => return Err(PeerError::MoreThanOneUriSan),
    };
    let id = SpiffeId::new(uri).map_err(PeerError::InvalidSpiffeId)?;
    if is_ca(leaf)? {
        return Err(PeerError::LeafIsCa);
    }
    let usage = leaf
        .key_usage()
        .map_err(|_| PeerError::MalformedCertificate)?;
    let usage = usage.map(|ext| *ext.value);
    if !usage.is_some_and(|u| u.digital_signature()) {
        return Err(PeerError::LeafMissingDigitalSignature);
    }
    if usage.is_some_and(|u| u.key_cert_sign()) {
        return Err(PeerError::LeafHasKeyCertSign);
    }
    if usage.is_some_and(|u| u.crl_sign()) {
        return Err(PeerError::LeafHasCrlSign);
    }
    if id.path().is_empty() {
        return Err(PeerError::LeafRootPath);
    }
    Ok(id)
}

fn validate_signing_certificate(cert: &X509Certificate<'_>) -> Result<(), PeerError> {
    if !is_ca(cert)? {
        return Err(PeerError::SigningCertNotCa);
    }
    let usage = cert
        .key_usage()
        .map_err(|_| PeerError::MalformedCertificate)?;
    if !usage.is_some_and(|ext| ext.value.key_cert_sign()) {
        return Err(PeerError::SigningCertMissingKeyCertSign);
    }
    Ok(())
}

fn is_ca(cert: &X509Certificate<'_>) -> Result<bool, PeerError> {
    let bc = cert
        .basic_constraints()
        .map_err(|_| PeerError::MalformedCertificate)?;
    Ok(bc.is_some_and(|ext| ext.value.ca))
}

pub(crate) fn has_spiffe_scheme(uri: &str) -> bool {
    uri.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("spiffe:"))
}

fn to_system_time(unix: i64) -> SystemTime {
    let offset = Duration::from_secs(unix.unsigned_abs());
    let time = if unix >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    };
    // Only years far outside any platform's range fail; the epoch is then the safe,
    // obviously-wrong value rather than a panic.
    time.unwrap_or(SystemTime::UNIX_EPOCH)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    #[test]
    fn negative_timestamps_are_before_the_epoch() {
        assert!(to_system_time(-10) < SystemTime::UNIX_EPOCH);
        assert_eq!(
            to_system_time(10),
            SystemTime::UNIX_EPOCH + Duration::from_secs(10)
        );
    }

    #[test]
    fn spiffe_scheme_check_ignores_case_and_short_input() {
        assert!(has_spiffe_scheme("SPIFFE://td/x"));
        assert!(!has_spiffe_scheme("spiff"));
        assert!(!has_spiffe_scheme("https://td/x"));
    }
}
