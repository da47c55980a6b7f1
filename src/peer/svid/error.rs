//! Why an SVID update was refused.

use super::super::error::PeerError;
use super::super::spiffe::TrustDomain;

/// Why new X509-SVID material was not taken: the store keeps serving the last good material
/// and reports this error through `tracing` and [`SvidStatus`](super::SvidStatus).
///
/// Each variant has a stable [`reason`](Self::reason) string; the `Display` text is for
/// humans and may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SvidUpdateError {
    /// The certificate chain is malformed or its leaf is not a valid X509-SVID.
    #[error("the SVID certificate chain is not a valid X509-SVID: {0}")]
    Chain(#[source] PeerError),
    /// The private key is missing, malformed or of a kind the crypto provider cannot sign
    /// with.
    #[error("the SVID private key is not usable: {0}")]
    PrivateKey(String),
    /// The private key does not belong to the leaf certificate (a writer replaced one file
    /// and not yet the other, or the files are from different SVIDs).
    #[error("the private key does not match the SVID's certificate")]
    KeyMismatch,
    /// The leaf certificate's validity starts in the future.
    #[error("the SVID is not valid yet")]
    NotYetValid,
    /// The leaf certificate has expired.
    #[error("the SVID has expired")]
    Expired,
    /// No trust bundle was given for the SVID's own trust domain.
    #[error("no trust bundle for the SVID's own trust domain `{0}`")]
    MissingBundle(TrustDomain),
    /// A trust bundle holds no certificate, too many, or one rustls refuses as a root.
    #[error("the trust bundle of `{trust_domain}` is not usable: {detail}")]
    Bundle {
        /// The trust domain the bundle was given for.
        trust_domain: TrustDomain,
        /// What is wrong with it.
        detail: String,
    },
    /// Two bundles were given for the same trust domain.
    #[error("two trust bundles for `{0}`")]
    DuplicateBundle(TrustDomain),
    /// More trust domains than [`MAX_TRUST_DOMAINS`](super::MAX_TRUST_DOMAINS).
    #[error("more than {max} trust domains")]
    TooManyTrustDomains {
        /// The bound.
        max: usize,
    },
    /// The SVID does not chain to its own trust domain's bundle (a CA rotation where the
    /// bundle lags behind the SVID, or material from another trust domain).
    #[error("the SVID does not chain to its trust bundle: {0}")]
    Untrusted(String),
    /// The source could not deliver material (a file could not be read, the Workload API
    /// stream failed).
    #[error("the SVID source failed: {0}")]
    Source(String),
}

impl SvidUpdateError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Chain(_) => "invalid_svid",
            Self::PrivateKey(_) => "invalid_private_key",
            Self::KeyMismatch => "key_mismatch",
            Self::NotYetValid => "svid_not_yet_valid",
            Self::Expired => "svid_expired",
            Self::MissingBundle(_) => "missing_bundle",
            Self::Bundle { .. } => "invalid_bundle",
            Self::DuplicateBundle(_) => "duplicate_bundle",
            Self::TooManyTrustDomains { .. } => "too_many_trust_domains",
            Self::Untrusted(_) => "svid_untrusted",
            Self::Source(_) => "source_failed",
        }
    }
}
