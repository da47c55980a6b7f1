//! SPIFFE IDs and trust domains, parsed per the SPIFFE ID specification.
//!
//! # Example
//!
//! ```
//! use meshguard::peer::{SpiffeId, TrustDomain};
//!
//! let id: SpiffeId = "spiffe://example.org/ns/prod/sa/web".parse()?;
//! assert_eq!(id.trust_domain().as_str(), "example.org");
//! assert_eq!(id.path(), "/ns/prod/sa/web");
//! assert!(id.is_member_of(&TrustDomain::new("example.org")?));
//! assert!("spiffe://example.org/../web".parse::<SpiffeId>().is_err());
//! # Ok::<(), meshguard::peer::SpiffeIdError>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// Longest SPIFFE ID accepted, in bytes.
///
/// The specification requires support for IDs up to 2048 bytes and says IDs longer than that
/// should not be generated; rejecting them bounds the work done on untrusted input.
pub const MAX_SPIFFE_ID_LEN: usize = 2048;

/// Longest trust-domain name accepted, in bytes (SPIFFE ID specification §2.1).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

const SCHEME_PREFIX: &str = "spiffe://";

/// Why a SPIFFE ID or trust domain was rejected.
///
/// The checks run in go-spiffe's order, so the variant matches the error go-spiffe reports
/// for the same input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpiffeIdError {
    /// The input is empty.
    #[error("cannot be empty")]
    Empty,
    /// The input does not start with `spiffe://` (the scheme is case-sensitive).
    #[error("scheme is missing or invalid")]
    WrongScheme,
    /// The trust domain is empty.
    #[error("trust domain is missing")]
    MissingTrustDomain,
    /// The trust domain holds a character outside `[a-z0-9._-]`.
    #[error(
        "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
    )]
    BadTrustDomainChar,
    /// A path segment holds a character outside `[a-zA-Z0-9._-]`.
    #[error(
        "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
    )]
    BadPathSegmentChar,
    /// The path holds an empty segment (`//`).
    #[error("path cannot contain empty segments")]
    EmptySegment,
    /// The path holds a `.` or `..` segment.
    #[error("path cannot contain dot segments")]
    DotSegment,
    /// The path ends with `/`.
    #[error("path cannot have a trailing slash")]
    TrailingSlash,
    /// A path does not start with `/`.
    #[error("path must have a leading slash")]
    NoLeadingSlash,
    /// A path was required but is empty.
    #[error("path is missing")]
    MissingPath,
    /// The ID is longer than [`MAX_SPIFFE_ID_LEN`].
    #[error("SPIFFE ID is longer than {MAX_SPIFFE_ID_LEN} bytes")]
    TooLong,
    /// The trust domain is longer than [`MAX_TRUST_DOMAIN_LEN`].
    #[error("trust domain is longer than {MAX_TRUST_DOMAIN_LEN} bytes")]
    TrustDomainTooLong,
}

impl SpiffeIdError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::WrongScheme => "wrong_scheme",
            Self::MissingTrustDomain => "missing_trust_domain",
            Self::BadTrustDomainChar => "bad_trust_domain_char",
            Self::BadPathSegmentChar => "bad_path_segment_char",
            Self::EmptySegment => "empty_segment",
            Self::DotSegment => "dot_segment",
            Self::TrailingSlash => "trailing_slash",
            Self::NoLeadingSlash => "no_leading_slash",
            Self::MissingPath => "missing_path",
            Self::TooLong => "too_long",
            Self::TrustDomainTooLong => "trust_domain_too_long",
        }
    }
}

/// A SPIFFE trust domain, such as `example.org`.
///
/// Only a successful parse makes one, so its name always satisfies the specification.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain {
    name: Box<str>,
}

impl TrustDomain {
    /// Parses a trust-domain name (`example.org`) or the trust domain of a SPIFFE ID
    /// (`spiffe://example.org/web`), as go-spiffe's `TrustDomainFromString` does.
    ///
    /// # Errors
    ///
    /// Returns a [`SpiffeIdError`] when the name is empty, holds characters outside
    /// `[a-z0-9._-]`, is longer than [`MAX_TRUST_DOMAIN_LEN`], or, for an ID, when the
    /// whole ID is invalid.
    pub fn new(id_or_name: &str) -> Result<Self, SpiffeIdError> {
        if id_or_name.is_empty() {
            return Err(SpiffeIdError::MissingTrustDomain);
        }
        // Like go-spiffe, anything that looks like it has a scheme separator is parsed as a
        // full ID, which gives a better error for inputs such as `spiffe:/example.org`.
        if id_or_name.contains(":/") {
            return SpiffeId::new(id_or_name).map(|id| id.trust_domain);
        }
        if id_or_name.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(SpiffeIdError::TrustDomainTooLong);
        }
        if !id_or_name.bytes().all(is_trust_domain_char) {
            return Err(SpiffeIdError::BadTrustDomainChar);
        }
        Ok(Self {
            name: id_or_name.into(),
        })
    }

    /// The trust-domain name, such as `example.org`.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The SPIFFE ID of the trust domain itself (`spiffe://example.org`, empty path).
    pub fn id(&self) -> SpiffeId {
        SpiffeId {
            id: format!("{SCHEME_PREFIX}{}", self.name).into_boxed_str(),
            trust_domain: self.clone(),
        }
    }
}

impl FromStr for TrustDomain {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TrustDomain").field(&self.name).finish()
    }
}

/// A SPIFFE ID, such as `spiffe://example.org/ns/prod/sa/web`.
///
/// Only a successful parse makes one. The ID is kept exactly as written; two IDs are equal
/// when their texts are equal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    id: Box<str>,
    trust_domain: TrustDomain,
}

impl SpiffeId {
    /// Parses a SPIFFE ID.
    ///
    /// # Errors
    ///
    /// Returns a [`SpiffeIdError`] naming the first rule the input breaks, in go-spiffe's
    /// order: empty, scheme, trust-domain characters, missing trust domain, path.
    pub fn new(id: &str) -> Result<Self, SpiffeIdError> {
        if id.is_empty() {
            return Err(SpiffeIdError::Empty);
        }
        if id.len() > MAX_SPIFFE_ID_LEN {
            return Err(SpiffeIdError::TooLong);
        }
        let rest = id
            .strip_prefix(SCHEME_PREFIX)
            .ok_or(SpiffeIdError::WrongScheme)?;
        let td_len = rest.bytes().position(|b| b == b'/').unwrap_or(rest.len());
        let (td, path) = rest.split_at(td_len);
        if !td.bytes().all(is_trust_domain_char) {
            return Err(SpiffeIdError::BadTrustDomainChar);
        }
        if td.is_empty() {
            return Err(SpiffeIdError::MissingTrustDomain);
        }
        if td.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(SpiffeIdError::TrustDomainTooLong);
        }
        validate_path(path)?;
        Ok(Self {
            id: id.into(),
            trust_domain: TrustDomain { name: td.into() },
        })
    }

    /// The trust domain of this ID.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The path, with its leading `/`; empty for the ID of a trust domain itself.
    pub fn path(&self) -> &str {
        self.id
            .get(SCHEME_PREFIX.len() + self.trust_domain.name.len()..)
            .unwrap_or_default()
    }

    /// The whole ID as written.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// Whether this ID belongs to `trust_domain` (exact name comparison).
    pub fn is_member_of(&self, trust_domain: &TrustDomain) -> bool {
        self.trust_domain == *trust_domain
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl fmt::Debug for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SpiffeId").field(&self.id).finish()
    }
}

/// Checks a SPIFFE ID path (empty, or `/segment` repeated) the way go-spiffe does, so that
/// the same input fails with the same error.
pub(crate) fn validate_path(path: &str) -> Result<(), SpiffeIdError> {
    if path.is_empty() {
        return Ok(());
    }
    // The caller split at the first `/`, so a non-empty path starts with one; an input that
    // did not would be a trust-domain error already.
    let mut segment_start = 0;
    for (i, b) in path.bytes().enumerate() {
        if b == b'/' {
            match path.get(segment_start..i) {
                Some("/") => return Err(SpiffeIdError::EmptySegment),
                Some("/." | "/..") => return Err(SpiffeIdError::DotSegment),
                _ => {}
            }
            segment_start = i;
        } else if !is_path_segment_char(b) {
            return Err(SpiffeIdError::BadPathSegmentChar);
        }
    }
    match path.get(segment_start..) {
        Some("/") => Err(SpiffeIdError::TrailingSlash),
        Some("/." | "/..") => Err(SpiffeIdError::DotSegment),
        _ => Ok(()),
    }
}

fn is_trust_domain_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

fn is_path_segment_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_trust_domain_split() {
        let id = SpiffeId::new("spiffe://td/a/b").unwrap();
        assert_eq!(id.trust_domain().as_str(), "td");
        assert_eq!(id.path(), "/a/b");
        assert_eq!(id.as_str(), "spiffe://td/a/b");
        let td_id = id.trust_domain().id();
        assert_eq!(td_id.as_str(), "spiffe://td");
        assert_eq!(td_id.path(), "");
    }

    #[test]
    fn bare_trust_domain_length_bound() {
        assert!(TrustDomain::new(&"a".repeat(255)).is_ok());
        assert_eq!(
            TrustDomain::new(&"a".repeat(256)),
            Err(SpiffeIdError::TrustDomainTooLong)
        );
    }
}
