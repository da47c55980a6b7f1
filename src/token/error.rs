//! Why a token, a bearer credential or a key configuration was refused.

use http::StatusCode;

use crate::response::{ErrorCode, Refusal, Stage};

/// Why a token was rejected.
///
/// Each variant has a stable snake_case [`reason`](TokenError::reason) (what the CLI prints
/// after `rejected:` and what metrics should count) and maps to the RFC 6750 error code
/// `invalid_token`. `Display` never contains the token, its claims or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS with a JSON header and a JSON object claims set.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// Longer than the configured bound; nothing was decoded.
    #[error("token is longer than {limit} bytes")]
    TooLarge {
        /// The configured bound in bytes.
        limit: usize,
    },
    /// The header's `alg` is `none`, unknown, outside the allow-list, or not one the
    /// selected key may be used with.
    #[error("token algorithm is not allowed")]
    DisallowedAlgorithm,
    /// No configured key matches the token's `kid` (or the token has no `kid` and the key set
    /// holds more than one key).
    #[error("no verification key matches the token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` (plus leeway) has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf` (minus leeway) is still in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is further in the future than the leeway.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `exp` is further away than the configured maximum lifetime.
    #[error("token lifetime exceeds the configured maximum")]
    LifetimeExceeded,
    /// `iss` is not an accepted issuer.
    #[error("token issuer is not accepted")]
    Issuer,
    /// `aud` names none of the accepted audiences.
    #[error("token audience is not accepted")]
    Audience,
    /// A claim the configuration requires is absent.
    #[error("required claim `{0}` is missing")]
    MissingClaim(Box<str>),
    /// A registered claim has the wrong JSON type (e.g. `exp` as a string).
    #[error("claim `{0}` has the wrong type")]
    InvalidClaim(&'static str),
    /// The header's `typ` is not the one the configuration requires (e.g. `at+jwt`).
    #[error("token type is not accepted")]
    InvalidType,
    /// The header lists critical extensions (`crit`) that meshguard does not implement.
    #[error("token requires an unsupported critical extension")]
    UnsupportedCrit,
    /// The token is bound to a key or certificate by a confirmation method (a `cnf` member,
    /// RFC 7800) that meshguard does not check, such as `jkt` (DPoP, RFC 9449) or `jwk`.
    /// Only `x5t#S256` (RFC 8705) is checked, by the guard's certificate binding.
    #[error("token is bound by a confirmation method that is not checked")]
    UnsupportedConfirmation,
    /// The issuer's keys could not be obtained (remote key source down past its stale
    /// period, or never reached).
    #[error("verification keys are unavailable")]
    KeySourceUnavailable,
}

impl TokenError {
    /// A stable, machine-readable reason, e.g. `expired` or `bad_signature`.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::TooLarge { .. } => "too_large",
            TokenError::DisallowedAlgorithm => "disallowed_algorithm",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::LifetimeExceeded => "lifetime_exceeded",
            TokenError::Issuer => "issuer",
            TokenError::Audience => "audience",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::InvalidClaim(_) => "invalid_claim",
            TokenError::InvalidType => "invalid_type",
            TokenError::UnsupportedCrit => "unsupported_crit",
            TokenError::UnsupportedConfirmation => "unsupported_confirmation",
            TokenError::KeySourceUnavailable => "key_source_unavailable",
        }
    }

    /// The RFC 6750 §3.1 error code for a `WWW-Authenticate` challenge: always
    /// `invalid_token`.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::InvalidToken
    }

    /// How a request carrying this token is answered: 401 (gRPC UNAUTHENTICATED) with
    /// [`error_code`](Self::error_code) and a fixed description that never shows the token.
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        let description = match self {
            TokenError::Expired => "the token has expired",
            TokenError::NotYetValid => "the token is not valid yet",
            TokenError::KeySourceUnavailable => "the token cannot be verified now",
            _ => "the token is invalid",
        };
        Refusal::new(
            Stage::Token,
            StatusCode::UNAUTHORIZED,
            self.reason(),
            description,
        )
        .with_error(self.error_code())
    }
}

/// Why no single bearer token could be taken from a request (RFC 6750 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// The request carries no bearer credential at all.
    #[error("request carries no bearer token")]
    Missing,
    /// An `Authorization: Bearer` header (or cookie) whose value is not one RFC 6750 b64token.
    #[error("bearer credential is malformed")]
    Malformed,
    /// The request carries a token in more than one place, or in two headers.
    #[error("request carries more than one bearer token")]
    Multiple,
}

impl BearerError {
    /// A stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            BearerError::Missing => "missing_token",
            BearerError::Malformed => "malformed_request",
            BearerError::Multiple => "multiple_tokens",
        }
    }

    /// The RFC 6750 §3.1 error code, or `None` when the request had no credential (a
    /// challenge without an `error` attribute, §3.1).
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            BearerError::Missing => None,
            BearerError::Malformed | BearerError::Multiple => Some(ErrorCode::InvalidRequest),
        }
    }

    /// How the request is answered: 401 with a bare challenge when it has no credential
    /// (gRPC UNAUTHENTICATED), 400 `invalid_request` otherwise (gRPC INVALID_ARGUMENT).
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        let (status, description) = match self {
            BearerError::Missing => (StatusCode::UNAUTHORIZED, "a bearer token is required"),
            BearerError::Malformed => (
                StatusCode::BAD_REQUEST,
                "the bearer credential is malformed",
            ),
            BearerError::Multiple => (
                StatusCode::BAD_REQUEST,
                "the request carries more than one token",
            ),
        };
        let refusal = Refusal::new(Stage::Token, status, self.reason(), description);
        match self.error_code() {
            Some(code) => refusal.with_error(code),
            None => refusal,
        }
    }
}

/// Why a key, key file or key set could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a PEM document with a supported block.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// A JWK that cannot be used.
    #[error("invalid JWK: {0}")]
    Jwk(String),
    /// A JWKS document that is not a JSON object with a `keys` array.
    #[error("invalid JWKS document: {0}")]
    Jwks(String),
    /// A key type, curve or algorithm meshguard does not verify with.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// An HMAC secret shorter than the hash output (RFC 7518 §3.2).
    #[error("HMAC secret of {len} bytes is too short for {alg} (needs at least {min})")]
    HmacSecretTooShort {
        /// The algorithm the secret was meant for.
        alg: &'static str,
        /// The secret's length.
        len: usize,
        /// The minimum length for that algorithm.
        min: usize,
    },
    /// The key's `alg` belongs to another key family (e.g. `HS256` on an RSA key).
    #[error("algorithm `{alg}` cannot be used with a {kty} key")]
    AlgorithmMismatch {
        /// The declared algorithm.
        alg: String,
        /// The key type.
        kty: &'static str,
    },
    /// The document is larger than the bound.
    #[error("key document is larger than {limit} bytes")]
    TooLarge {
        /// The bound in bytes.
        limit: usize,
    },
}

/// Why a [`Verifier`](super::Verifier) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierBuilderError {
    /// No key can verify any allowed algorithm.
    #[error("no usable verification key for the allowed algorithms")]
    NoUsableKeys,
    /// The algorithm allow-list is empty.
    #[error("no algorithm is allowed")]
    NoAlgorithms,
    /// Neither `issuer(..)` nor `allow_any_issuer()` was called.
    #[error("no issuer configured: call `issuer(..)` or, knowingly, `allow_any_issuer()`")]
    IssuerUnset,
    /// Neither `audience(..)` nor `allow_any_audience()` was called.
    #[error("no audience configured: call `audience(..)` or, knowingly, `allow_any_audience()`")]
    AudienceUnset,
    /// Two providers claim the same issuer.
    #[error("issuer `{0}` is configured twice")]
    DuplicateIssuer(String),
    /// A key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A remote key source is misconfigured or, with fail-fast start-up, unreachable.
    #[cfg(feature = "remote-jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
    #[error("remote key source: {0}")]
    KeySource(#[from] super::remote::RemoteError),
}
