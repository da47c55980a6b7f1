//! [`SpiffeBundle`]: one trust domain's SPIFFE bundle document (SPIFFE Trust Domain and
//! Bundle §4), read into the keys that verify its JWT-SVIDs and the roots of its X509-SVIDs.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value};
use x509_parser::prelude::FromDer;

use super::super::error::KeyError;
use super::super::json::check_strict;
use super::super::keys::{KeySet, VerificationKey};
use crate::peer::TrustDomain;

/// The largest SPIFFE bundle document read, in bytes: 1 MiB.
pub const MAX_SPIFFE_BUNDLE_BYTES: usize = 1 << 20;

/// The most entries (`keys` members) one SPIFFE bundle may hold.
///
/// A bundle carries a trust domain's current authorities and those being rotated in or
/// out: a handful. The bound keeps a hostile document from making every verification scan
/// a long list.
pub const MAX_SPIFFE_BUNDLE_KEYS: usize = 256;

/// Why a SPIFFE bundle document was refused.
///
/// Each variant has a stable [`reason`](BundleError::reason); `Display` names the entry at
/// fault by its position, never its key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The document is larger than [`MAX_SPIFFE_BUNDLE_BYTES`].
    #[error("SPIFFE bundle is larger than {limit} bytes")]
    TooLarge {
        /// The bound in bytes.
        limit: usize,
    },
    /// Not a JSON object with a `keys` array (or duplicate member names, or too deep).
    #[error("SPIFFE bundle is malformed: {0}")]
    Malformed(String),
    /// More entries than [`MAX_SPIFFE_BUNDLE_KEYS`].
    #[error("SPIFFE bundle holds more than {limit} keys")]
    TooManyKeys {
        /// The bound.
        limit: usize,
    },
    /// An entry that breaks the bundle format: a `jwt-svid` key without `kid` or with a
    /// `kid` used before, an `x509-svid` entry without exactly one certificate, a key whose
    /// members cannot be read.
    #[error("SPIFFE bundle entry {index}: {why}")]
    Entry {
        /// The entry's position in `keys`, from 0.
        index: usize,
        /// What is wrong with it.
        why: String,
    },
    /// `spiffe_sequence` or `spiffe_refresh_hint` is not a non-negative integer.
    #[error("SPIFFE bundle member `{0}` is not a non-negative integer")]
    BadMember(&'static str),
    /// An update carries a lower `spiffe_sequence` than the bundle it would replace.
    #[error("SPIFFE bundle sequence {offered} is older than the current {current}")]
    Rollback {
        /// The sequence of the bundle in use.
        current: u64,
        /// The sequence of the bundle offered.
        offered: u64,
    },
}

impl BundleError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed(_) => "malformed",
            Self::TooManyKeys { .. } => "too_many_keys",
            Self::Entry { .. } => "bad_entry",
            Self::BadMember(_) => "bad_member",
            Self::Rollback { .. } => "rollback",
        }
    }
}

/// A trust domain's SPIFFE bundle: the keys its JWT-SVIDs are signed with (entries with
/// `use: "jwt-svid"`, each with a `kid`) and the roots of its X509-SVIDs (`use:
/// "x509-svid"`), with the bundle's `spiffe_sequence` and `spiffe_refresh_hint`.
///
/// The document does not name its trust domain (SPIFFE bundle §4): whoever obtained it
/// says which one it is for. Entries with another `use`, or none, are ignored, as the
/// format asks; `jwt-svid` keys of a type meshguard cannot verify with (an Ed25519 or
/// P-521 key, a symmetric key) are skipped and listed by [`skipped`](Self::skipped), so
/// one such key does not take the trust domain's other keys down with it.
///
/// # Example
///
/// ```
/// use meshguard::peer::TrustDomain;
/// use meshguard::token::jwt_svid::SpiffeBundle;
///
/// let json = br#"{"keys":[{"use":"jwt-svid","kty":"EC","crv":"P-256","kid":"k1",
///     "x":"64Mm92hnvqSdLxl6XQVu32-3rydodal1S8JgGYg5AGk",
///     "y":"x5hVyA9Z4OgQxpvkhTXwNsZACk1jz1xyuTDr6JdH3R0"}],
///     "spiffe_sequence":7,"spiffe_refresh_hint":300}"#;
/// let bundle = SpiffeBundle::from_json(TrustDomain::new("example.org")?, json)?;
/// assert_eq!(bundle.jwt_authorities().len(), 1);
/// assert_eq!(bundle.sequence(), Some(7));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SpiffeBundle {
    trust_domain: TrustDomain,
    sequence: Option<u64>,
    refresh_hint: Option<Duration>,
    jwt_authorities: KeySet,
    x509_authorities: Vec<Vec<u8>>,
    skipped: Vec<String>,
}

impl SpiffeBundle {
    /// Reads a SPIFFE bundle document for `trust_domain`.
    ///
    /// # Errors
    ///
    /// A [`BundleError`]: the document is too large, not strict JSON (duplicate member
    /// names are refused), has no `keys` array or too many entries, an entry breaks the
    /// format, or `spiffe_sequence`/`spiffe_refresh_hint` are not non-negative integers.
    pub fn from_json(trust_domain: TrustDomain, json: &[u8]) -> Result<Self, BundleError> {
        if json.len() > MAX_SPIFFE_BUNDLE_BYTES {
            return Err(BundleError::TooLarge {
                limit: MAX_SPIFFE_BUNDLE_BYTES,
            });
        }
        check_strict(json).map_err(|e| BundleError::Malformed(e.to_string()))?;
        let document: Document =
            serde_json::from_slice(json).map_err(|e| BundleError::Malformed(e.to_string()))?;
        if document.keys.len() > MAX_SPIFFE_BUNDLE_KEYS {
            return Err(BundleError::TooManyKeys {
                limit: MAX_SPIFFE_BUNDLE_KEYS,
            });
        }
        let mut bundle = SpiffeBundle {
            trust_domain,
            sequence: unsigned(document.spiffe_sequence.as_ref(), "spiffe_sequence")?,
            refresh_hint: unsigned(document.spiffe_refresh_hint.as_ref(), "spiffe_refresh_hint")?
                .map(Duration::from_secs),
            jwt_authorities: KeySet::new(),
            x509_authorities: Vec::new(),
            skipped: Vec::new(),
        };
        let mut kids = BTreeSet::new();
        for (index, entry) in document.keys.into_iter().enumerate() {
            let entry_error = |why: String| BundleError::Entry { index, why };
            let Value::Object(mut entry) = entry else {
                return Err(entry_error("not a JSON object".into()));
            };
            match entry.get("use").and_then(Value::as_str) {
                Some("jwt-svid") => {
                    let kid = match entry.get("kid") {
                        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
                        _ => return Err(entry_error("a `jwt-svid` key needs a `kid`".into())),
                    };
                    if !kids.insert(kid.clone()) {
                        return Err(entry_error("a second `jwt-svid` key with its `kid`".into()));
                    }
                    match jwt_authority(&mut entry) {
                        Ok(key) => bundle.jwt_authorities.push(key.with_kid(kid)),
                        Err(KeyError::Unsupported(why)) => bundle
                            .skipped
                            .push(format!("key {index}: unsupported key: {why}")),
                        Err(why) => return Err(entry_error(why.to_string())),
                    }
                }
                Some("x509-svid") => {
                    let der = x509_authority(&entry).map_err(|why| entry_error(why.into()))?;
                    bundle.x509_authorities.push(der);
                }
                _ => {}
            }
        }
        Ok(bundle)
    }

    /// The trust domain this bundle is for.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// `spiffe_sequence`: increases with every change of the bundle, when present.
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// `spiffe_refresh_hint`: how often the publisher suggests fetching the bundle again.
    pub fn refresh_hint(&self) -> Option<Duration> {
        self.refresh_hint
    }

    /// The keys that verify this trust domain's JWT-SVIDs, each with its `kid`.
    pub fn jwt_authorities(&self) -> &KeySet {
        &self.jwt_authorities
    }

    /// The X.509 roots (DER certificates) of this trust domain's X509-SVIDs.
    pub fn x509_authorities(&self) -> &[Vec<u8>] {
        &self.x509_authorities
    }

    /// The `jwt-svid` keys left out because meshguard cannot verify with them, each with
    /// the reason.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

impl fmt::Debug for SpiffeBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeBundle")
            .field("trust_domain", &self.trust_domain)
            .field("sequence", &self.sequence)
            .field("refresh_hint", &self.refresh_hint)
            .field("jwt_authorities", &self.jwt_authorities.len())
            .field("x509_authorities", &self.x509_authorities.len())
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Value>,
    spiffe_sequence: Option<Value>,
    spiffe_refresh_hint: Option<Value>,
}

fn unsigned(value: Option<&Value>, member: &'static str) -> Result<Option<u64>, BundleError> {
    match value {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or(BundleError::BadMember(member)),
    }
}

/// A `jwt-svid` entry as a verification key. Its `use` says what the key is for in SPIFFE
/// terms; as a JWK it is a signature key, so `use` is dropped before the JWK reader (which
/// refuses any `use` but `sig`) sees it. Symmetric keys have no place in a bundle: whoever
/// reads the bundle could sign with them.
fn jwt_authority(entry: &mut Map<String, Value>) -> Result<VerificationKey, KeyError> {
    entry.remove("use");
    if entry.get("kty").and_then(Value::as_str) == Some("oct") {
        return Err(KeyError::Unsupported("a symmetric (`oct`) key".into()));
    }
    let json = serde_json::to_vec(entry).map_err(|e| KeyError::Jwk(e.to_string()))?;
    let set = KeySet::from_jwk_json(&json)?;
    set.keys()
        .first()
        .cloned()
        .ok_or_else(|| KeyError::Jwk("no key".into()))
}

/// An `x509-svid` entry's root: exactly one `x5c` certificate (SPIFFE bundle §4.2.1),
/// standard base64 of DER that parses as a certificate.
fn x509_authority(entry: &Map<String, Value>) -> Result<Vec<u8>, &'static str> {
    let Some(Value::Array(chain)) = entry.get("x5c") else {
        return Err("an `x509-svid` entry needs `x5c`");
    };
    let [Value::String(certificate)] = chain.as_slice() else {
        return Err("an `x509-svid` entry must hold exactly one `x5c` certificate");
    };
    let der = STANDARD
        .decode(certificate)
        .map_err(|_| "`x5c` is not base64")?;
    x509_parser::certificate::X509Certificate::from_der(&der)
        .map_err(|_| "`x5c` is not a DER certificate")?;
    Ok(der)
}
