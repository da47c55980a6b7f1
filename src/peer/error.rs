//! Errors of peer identification.

use http::StatusCode;

use super::client_address::ForwardedError;
use super::spiffe::SpiffeIdError;
use super::xfcc::XfccError;
use crate::response::{Refusal, Stage};

/// Why a peer identity could not be established from a certificate chain, PEM text or an
/// XFCC header.
///
/// Each variant has a stable [`reason`](Self::reason) string; the `Display` text is for
/// humans and may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The peer presented no certificate.
    #[error("no client certificate was presented")]
    NoCertificate,
    /// The chain holds more certificates than the configured bound.
    #[error("certificate chain has more than {max} certificates")]
    ChainTooLong {
        /// The bound.
        max: usize,
    },
    /// A trust bundle in PEM holds more roots than
    /// [`MAX_BUNDLE_ROOTS`](super::MAX_BUNDLE_ROOTS).
    #[error("trust bundle has more than {max} certificates")]
    TooManyRoots {
        /// The bound.
        max: usize,
    },
    /// A certificate is larger than [`MAX_CERTIFICATE_LEN`](super::MAX_CERTIFICATE_LEN).
    #[error("certificate is larger than {max} bytes")]
    CertificateTooLarge {
        /// The bound.
        max: usize,
    },
    /// A certificate is not valid DER X.509 (or has trailing data or duplicate extensions).
    #[error("malformed certificate")]
    MalformedCertificate,
    /// PEM input could not be decoded.
    #[error("malformed PEM")]
    MalformedPem,
    /// PEM input holds no `CERTIFICATE` block.
    #[error("no certificates found in PEM input")]
    NoPemCertificates,
    /// An X509-SVID must carry exactly one URI SAN; this leaf has none.
    #[error("certificate contains no URI SAN")]
    NoUriSan,
    /// An X509-SVID must carry exactly one URI SAN; this leaf has several.
    #[error("certificate contains more than one URI SAN")]
    MoreThanOneUriSan,
    /// The URI SAN is not a valid SPIFFE ID.
    #[error("URI SAN is not a valid SPIFFE ID: {0}")]
    InvalidSpiffeId(#[source] SpiffeIdError),
    /// A workload's SPIFFE ID must have a path (X509-SVID §5.2).
    #[error("leaf certificate SPIFFE ID must have a non-root path")]
    LeafRootPath,
    /// The leaf has `basicConstraints CA=true`.
    #[error("leaf certificate must not have CA flag set to true")]
    LeafIsCa,
    /// The SVID leaf lacks the `digitalSignature` key usage.
    #[error("leaf certificate must have 'digitalSignature' set as key usage")]
    LeafMissingDigitalSignature,
    /// The SVID leaf has the `keyCertSign` key usage.
    #[error("leaf certificate must not have 'keyCertSign' set as key usage")]
    LeafHasKeyCertSign,
    /// The SVID leaf has the `cRLSign` key usage.
    #[error("leaf certificate must not have 'cRLSign' set as key usage")]
    LeafHasCrlSign,
    /// A certificate after the leaf is not a CA.
    #[error("signing certificate must have CA flag set to true")]
    SigningCertNotCa,
    /// A certificate after the leaf lacks the `keyCertSign` key usage.
    #[error("signing certificate must have 'keyCertSign' set as key usage")]
    SigningCertMissingKeyCertSign,
    /// The XFCC header could not be parsed.
    #[error("invalid x-forwarded-client-cert header: {0}")]
    Xfcc(#[from] XfccError),
    /// The request carries more than one XFCC header field.
    #[error("more than one x-forwarded-client-cert header")]
    XfccMultipleHeaders,
    /// The XFCC header came from a peer that is not a trusted proxy, and the policy rejects
    /// such requests instead of ignoring the header.
    #[error("x-forwarded-client-cert header from an untrusted peer")]
    XfccUntrusted,
    /// The header has fewer elements than the configured element selection needs.
    #[error("x-forwarded-client-cert header has no element at the configured position")]
    XfccElementMissing,
    /// The trusted element has neither a `Hash` nor a `Cert`, so the certificate is unknown.
    #[error("x-forwarded-client-cert element has neither Hash nor Cert")]
    XfccNoCertificate,
    /// The `Hash` value is not 64 hexadecimal digits.
    #[error("x-forwarded-client-cert Hash is not a hex SHA-256")]
    XfccBadHash,
    /// The `Hash` does not match the SHA-256 of the forwarded `Cert`.
    #[error("x-forwarded-client-cert Hash does not match Cert")]
    XfccHashMismatch,
    /// The `Cert` or `Chain` value is not URL-encoded PEM.
    #[error("x-forwarded-client-cert Cert or Chain is not URL-encoded PEM")]
    XfccBadCertEncoding,
    /// `Chain` does not start with the certificate given in `Cert`.
    #[error("x-forwarded-client-cert Chain does not start with Cert")]
    XfccChainMismatch,
    /// A trusted proxy's `Forwarded` or `X-Forwarded-For` header could not be read.
    #[error("invalid client address header: {0}")]
    Forwarded(#[from] ForwardedError),
}

impl PeerError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoCertificate => "no_certificate",
            Self::ChainTooLong { .. } => "chain_too_long",
            Self::TooManyRoots { .. } => "too_many_roots",
            Self::CertificateTooLarge { .. } => "certificate_too_large",
            Self::MalformedCertificate => "malformed_certificate",
            Self::MalformedPem => "malformed_pem",
            Self::NoPemCertificates => "no_certificates",
            Self::NoUriSan => "no_uri_san",
            Self::MoreThanOneUriSan => "more_than_one_uri_san",
            Self::InvalidSpiffeId(_) => "invalid_spiffe_id",
            Self::LeafRootPath => "leaf_root_path",
            Self::LeafIsCa => "leaf_is_ca",
            Self::LeafMissingDigitalSignature => "leaf_missing_digital_signature",
            Self::LeafHasKeyCertSign => "leaf_has_key_cert_sign",
            Self::LeafHasCrlSign => "leaf_has_crl_sign",
            Self::SigningCertNotCa => "signing_cert_not_ca",
            Self::SigningCertMissingKeyCertSign => "signing_cert_missing_key_cert_sign",
            Self::Xfcc(e) => e.reason(),
            Self::XfccMultipleHeaders => "xfcc_multiple_headers",
            Self::XfccUntrusted => "xfcc_untrusted",
            Self::XfccElementMissing => "xfcc_element_missing",
            Self::XfccNoCertificate => "xfcc_no_certificate",
            Self::XfccBadHash => "xfcc_bad_hash",
            Self::XfccHashMismatch => "xfcc_hash_mismatch",
            Self::XfccBadCertEncoding => "xfcc_bad_cert_encoding",
            Self::XfccChainMismatch => "xfcc_chain_mismatch",
            Self::Forwarded(e) => e.reason(),
        }
    }

    /// How the request is answered: 400 (gRPC INVALID_ARGUMENT) for a trusted proxy's
    /// header that does not parse, otherwise 403 with gRPC UNAUTHENTICATED, without a
    /// bearer challenge: the refusal is about the certificate, not a token.
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        let (status, description) = match self {
            Self::Xfcc(_) | Self::XfccMultipleHeaders => (
                StatusCode::BAD_REQUEST,
                "the forwarded client certificate header is malformed",
            ),
            Self::Forwarded(_) => (
                StatusCode::BAD_REQUEST,
                "the forwarded client address header is malformed",
            ),
            Self::NoCertificate | Self::XfccElementMissing => {
                (StatusCode::FORBIDDEN, "a client certificate is required")
            }
            _ => (
                StatusCode::FORBIDDEN,
                "the client certificate is not acceptable",
            ),
        };
        let refusal = Refusal::new(Stage::Peer, status, self.reason(), description);
        match status {
            StatusCode::FORBIDDEN => refusal.with_grpc_status(16),
            _ => refusal,
        }
    }
}
