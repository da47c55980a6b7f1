//! Why a DPoP-bound request, its proof or a [`DpopVerifier`](super::DpopVerifier)
//! configuration was refused.

use http::StatusCode;

use crate::response::{ErrorCode, Refusal, Stage};
use crate::token::TokenError;

/// Why a DPoP proof or the access token it accompanies was refused (RFC 9449).
///
/// Each variant has a stable snake_case [`reason`](DpopError::reason) and one RFC 9449 §7.1
/// error code: `invalid_dpop_proof` for the proof, `invalid_token` for the token and its
/// binding, `use_dpop_nonce` when the proof lacks the server's current nonce. `Display`
/// never shows the proof, the token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// `Authorization: DPoP` came without a `DPoP` proof header.
    #[error("request carries no DPoP proof")]
    MissingProof,
    /// The request carries more than one `DPoP` header (RFC 9449 §4.3, check 1).
    #[error("request carries more than one DPoP proof")]
    MultipleProofs,
    /// The proof is longer than the configured bound; nothing was decoded.
    #[error("DPoP proof is longer than {limit} bytes")]
    TooLarge {
        /// The bound in bytes.
        limit: usize,
    },
    /// Not a compact JWS with JSON header and claims: bad shape or encoding, duplicate
    /// member names, nesting too deep, a member of the wrong type.
    #[error("DPoP proof is malformed: {0}")]
    Malformed(&'static str),
    /// A claim every proof must carry (`jti`, `htm`, `htu`, `iat`, and `ath` with an
    /// access token) is absent.
    #[error("DPoP proof lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// The header's `typ` is not `dpop+jwt`.
    #[error("DPoP proof type is not `dpop+jwt`")]
    InvalidType,
    /// `alg` is `none`, symmetric, unknown, outside the allow-list or unfit for the key.
    #[error("DPoP proof algorithm is not allowed")]
    DisallowedAlgorithm,
    /// The header lists critical extensions (`crit`).
    #[error("DPoP proof requires an unsupported critical extension")]
    UnsupportedCrit,
    /// The `jwk` header is missing, or not a supported public key.
    #[error("DPoP proof key is missing or unsupported: {0}")]
    InvalidKey(&'static str),
    /// The `jwk` header holds private key material (`d`, `p`, `q`, `k`, ...).
    #[error("DPoP proof key holds private key material")]
    PrivateKey,
    /// The signature does not verify with the `jwk` key.
    #[error("DPoP proof signature is invalid")]
    BadSignature,
    /// `htm` is not the request's method.
    #[error("DPoP proof is for another HTTP method")]
    MethodMismatch,
    /// `htu` is not the request's URI (after RFC 3986 normalization, without query and
    /// fragment).
    #[error("DPoP proof is for another URI")]
    UriMismatch,
    /// `iat` lies further in the future than the leeway.
    #[error("DPoP proof was issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the accepted proof age (plus leeway).
    #[error("DPoP proof is too old")]
    Stale,
    /// A proof with this `jti` from this key was accepted before, within its window.
    #[error("DPoP proof was used before")]
    Replayed,
    /// The replay cache of the token's issuer holds only unexpired proofs: a new proof
    /// cannot be remembered, so it is refused rather than risk forgetting an old one.
    #[error("DPoP proof cannot be checked for replay now")]
    ReplayCacheFull,
    /// `ath` is not the base64url SHA-256 hash of the access token.
    #[error("DPoP proof is for another access token")]
    AccessTokenHash,
    /// The proof lacks the server's current nonce, or carries an expired or forged one.
    /// Carries the nonce to send back in `DPoP-Nonce`.
    #[error("DPoP proof must carry the server's current nonce")]
    UseNonce(Box<str>),
    /// The access token did not verify.
    #[error(transparent)]
    Token(TokenError),
    /// The access token has no `cnf.jkt` (RFC 9449 §6.1): it is not bound to a DPoP key.
    #[error("access token is not bound to a DPoP key")]
    Unbound,
    /// The token's `cnf.jkt` is not the RFC 7638 thumbprint of the proof's key.
    #[error("access token is bound to another key")]
    KeyMismatch,
    /// `Authorization: DPoP` holds no single token (two `Authorization` headers, a value
    /// that is not one b64token).
    #[error("DPoP credential is malformed")]
    MalformedCredential,
    /// The route requires DPoP and the request brought a bearer token.
    #[error("route requires a DPoP-bound token")]
    BearerNotAccepted,
    /// The route requires DPoP and the request brought no credential.
    #[error("request carries no DPoP-bound token")]
    MissingToken,
}

impl DpopError {
    /// A stable, machine-readable reason, e.g. `dpop_replayed`; for [`DpopError::Token`]
    /// the token's own [`TokenError::reason`].
    pub fn reason(&self) -> &'static str {
        match self {
            DpopError::MissingProof => "dpop_missing_proof",
            DpopError::MultipleProofs => "dpop_multiple_proofs",
            DpopError::TooLarge { .. } => "dpop_too_large",
            DpopError::Malformed(_) => "dpop_malformed",
            DpopError::MissingClaim(_) => "dpop_missing_claim",
            DpopError::InvalidType => "dpop_invalid_type",
            DpopError::DisallowedAlgorithm => "dpop_disallowed_algorithm",
            DpopError::UnsupportedCrit => "dpop_unsupported_crit",
            DpopError::InvalidKey(_) => "dpop_invalid_key",
            DpopError::PrivateKey => "dpop_private_key",
            DpopError::BadSignature => "dpop_bad_signature",
            DpopError::MethodMismatch => "dpop_method_mismatch",
            DpopError::UriMismatch => "dpop_uri_mismatch",
            DpopError::IssuedInFuture => "dpop_issued_in_future",
            DpopError::Stale => "dpop_stale",
            DpopError::Replayed => "dpop_replayed",
            DpopError::ReplayCacheFull => "dpop_replay_cache_full",
            DpopError::AccessTokenHash => "dpop_access_token_hash",
            DpopError::UseNonce(_) => "dpop_use_nonce",
            DpopError::Token(error) => error.reason(),
            DpopError::Unbound => "dpop_unbound_token",
            DpopError::KeyMismatch => "dpop_key_mismatch",
            DpopError::MalformedCredential => "malformed_request",
            DpopError::BearerNotAccepted => "dpop_required",
            DpopError::MissingToken => "missing_token",
        }
    }

    /// The RFC 9449 §7.1 error code, or `None` when the request had no credential (a
    /// challenge without `error`).
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            DpopError::MissingToken => None,
            DpopError::MalformedCredential => Some(ErrorCode::InvalidRequest),
            DpopError::UseNonce(_) => Some(ErrorCode::UseDpopNonce),
            DpopError::Token(_)
            | DpopError::Unbound
            | DpopError::KeyMismatch
            | DpopError::BearerNotAccepted => Some(ErrorCode::InvalidToken),
            _ => Some(ErrorCode::InvalidDpopProof),
        }
    }

    /// How the request is answered: 401 (gRPC UNAUTHENTICATED) with a `WWW-Authenticate:
    /// DPoP` challenge, 400 `invalid_request` for a malformed credential; a
    /// [`UseNonce`](DpopError::UseNonce) refusal carries the nonce in `DPoP-Nonce`. The
    /// challenge's `algs` are added by whoever knows them
    /// ([`DpopVerifier::refusal`](super::DpopVerifier::refusal)).
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        let (status, description) = match self {
            DpopError::Token(error) => {
                let token = error.refusal();
                (token.status(), token.description())
            }
            DpopError::MalformedCredential => {
                (StatusCode::BAD_REQUEST, "the DPoP credential is malformed")
            }
            DpopError::UseNonce(_) => (
                StatusCode::UNAUTHORIZED,
                "the DPoP proof must carry the server nonce",
            ),
            DpopError::ReplayCacheFull => (
                StatusCode::UNAUTHORIZED,
                "the DPoP proof cannot be checked now",
            ),
            DpopError::Unbound | DpopError::KeyMismatch => (
                StatusCode::UNAUTHORIZED,
                "the token is not bound to the proof key",
            ),
            DpopError::BearerNotAccepted | DpopError::MissingToken => {
                (StatusCode::UNAUTHORIZED, "a DPoP-bound token is required")
            }
            _ => (StatusCode::UNAUTHORIZED, "the DPoP proof is invalid"),
        };
        let mut refusal =
            Refusal::new(Stage::Token, status, self.reason(), description).with_dpop_scheme();
        if let Some(code) = self.error_code() {
            refusal = refusal.with_error(code);
        }
        if let DpopError::UseNonce(nonce) = self {
            refusal = refusal.with_dpop_nonce(nonce.clone());
        }
        refusal
    }
}

impl From<TokenError> for DpopError {
    fn from(error: TokenError) -> Self {
        DpopError::Token(error)
    }
}

/// Why a [`DpopVerifier`](super::DpopVerifier) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopBuilderError {
    /// The algorithm allow-list is empty.
    #[error("no algorithm is allowed for DPoP proofs")]
    NoAlgorithms,
    /// The allow-list names a symmetric (HMAC) algorithm; a proof is signed by the
    /// client's own public key (RFC 9449 §4.2).
    #[error("`{0}` is symmetric and cannot sign DPoP proofs")]
    SymmetricAlgorithm(&'static str),
    /// A public origin is not `http(s)://host[:port][/path]` without query or fragment.
    #[error("public origin `{0}` is not an http(s) origin")]
    Origin(String),
    /// The nonce secret is shorter than 32 bytes.
    #[error("the DPoP nonce secret must be at least 32 bytes")]
    NonceSecretTooShort,
    /// The replay cache capacity or the proof age is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// No random nonce secret could be generated.
    #[error("no random nonce secret could be generated")]
    Random,
}
