//! Why a JWT-SVID, or a JWT-SVID verifier's configuration, was refused.

use http::StatusCode;

use crate::peer::SpiffeIdError;
use crate::response::{ErrorCode, Refusal, Stage};

/// Why a JWT-SVID was rejected.
///
/// Each variant has a stable snake_case [`reason`](JwtSvidError::reason) and answers 401
/// with `error="invalid_token"` (gRPC UNAUTHENTICATED). `Display` never shows the token,
/// its claims or key ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtSvidError {
    /// Not a compact JWS with a JSON header and a JSON object claims set.
    #[error("JWT-SVID is malformed: {0}")]
    Malformed(&'static str),
    /// Longer than the configured bound; nothing was decoded.
    #[error("JWT-SVID is longer than {limit} bytes")]
    TooLarge {
        /// The bound in bytes.
        limit: usize,
    },
    /// `alg` is not one of RS256/384/512, PS256/384/512, ES256/384 (JWT-SVID §3), or not
    /// one the selected key may be used with.
    #[error("JWT-SVID algorithm is not allowed")]
    DisallowedAlgorithm,
    /// `typ` is present and neither `JWT` nor `JOSE` (JWT-SVID §2.3).
    #[error("JWT-SVID type is not `JWT` or `JOSE`")]
    InvalidType,
    /// The header lists critical extensions (`crit`).
    #[error("JWT-SVID requires an unsupported critical extension")]
    UnsupportedCrit,
    /// The header has no `kid` (JWT-SVID §2.2 requires one).
    #[error("JWT-SVID header has no `kid`")]
    MissingKeyId,
    /// A required claim (`sub`, `aud`, `exp`) is absent.
    #[error("JWT-SVID claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// A registered claim has the wrong JSON type (e.g. `exp` as a string).
    #[error("JWT-SVID claim `{0}` has the wrong type")]
    InvalidClaim(&'static str),
    /// `sub` is not a SPIFFE ID of a workload (an ID with a path).
    #[error("JWT-SVID subject is not a workload SPIFFE ID: {0}")]
    InvalidSubject(SpiffeIdError),
    /// No bundle is configured for the trust domain of `sub`.
    #[error("no SPIFFE bundle for the JWT-SVID's trust domain")]
    UnknownTrustDomain,
    /// No `jwt-svid` key of that trust domain's bundle has the token's `kid`.
    #[error("no key of the trust domain's bundle matches the JWT-SVID")]
    UnknownKey,
    /// The signature does not verify.
    #[error("JWT-SVID signature is invalid")]
    BadSignature,
    /// `exp` (plus leeway) has passed.
    #[error("JWT-SVID has expired")]
    Expired,
    /// `nbf` (minus leeway) is still in the future.
    #[error("JWT-SVID is not valid yet")]
    NotYetValid,
    /// `iat` is further in the future than the leeway.
    #[error("JWT-SVID was issued in the future")]
    IssuedInFuture,
    /// `aud` names none of the configured audiences.
    #[error("JWT-SVID audience is not accepted")]
    Audience,
}

impl JwtSvidError {
    /// A stable, machine-readable reason, e.g. `expired` or `unknown_trust_domain`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::TooLarge { .. } => "too_large",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::InvalidType => "invalid_type",
            Self::UnsupportedCrit => "unsupported_crit",
            Self::MissingKeyId => "missing_key_id",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim(_) => "invalid_claim",
            Self::InvalidSubject(_) => "invalid_subject",
            Self::UnknownTrustDomain => "unknown_trust_domain",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::Audience => "audience",
        }
    }

    /// How a request carrying this JWT-SVID is answered: 401 (gRPC UNAUTHENTICATED) with
    /// `error="invalid_token"` and a fixed description that never shows the token.
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        let description = match self {
            Self::Expired => "the workload token has expired",
            _ => "the workload token is invalid",
        };
        Refusal::new(
            Stage::Token,
            StatusCode::UNAUTHORIZED,
            self.reason(),
            description,
        )
        .with_error(ErrorCode::InvalidToken)
    }
}

/// Why a [`JwtSvidVerifier`](super::JwtSvidVerifier) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtSvidBuilderError {
    /// No audience was configured: every JWT-SVID must be checked against this service's
    /// own audience (an empty list would accept tokens minted for any other service).
    #[error("no audience configured for JWT-SVIDs: call `audience(..)`")]
    AudienceUnset,
    /// An audience is the empty string.
    #[error("a JWT-SVID audience is empty")]
    EmptyAudience,
}

impl JwtSvidBuilderError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::AudienceUnset => "audience_unset",
            Self::EmptyAudience => "empty_audience",
        }
    }
}
