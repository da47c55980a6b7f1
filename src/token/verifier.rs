//! [`Verifier`]: compact JWS parsing, signature verification and claim checks in one pass.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::algorithm::Algorithm;
use super::claims::VerifiedToken;
use super::clock::{Clock, SystemClock};
use super::error::{BuilderError, TokenError};
use super::issuer::{Issuer, PreparedIssuer};
use super::json;

/// The default bound on a token's length: 16 KiB, checked before anything is decoded.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Verifies JWT access tokens against one or more configured issuers.
///
/// Built once with [`Verifier::builder`]; keys are parsed and expanded then, so
/// [`verify`](Verifier::verify) only decodes, checks one signature and compares claims.
/// Cloning is cheap (the configuration is shared).
///
/// The token's `iss` selects the issuer before any signature work; its `alg` only selects
/// among the algorithms that configuration and key allow; `kid` is an opaque lookup string.
///
/// # Example
///
/// ```
/// use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
///
/// let secret = b"demo-secret-that-is-at-least-32-bytes!";
/// let verifier = Verifier::builder()
///     .issuer(Issuer::new("https://idp.example", KeySet::hmac_secret("k1", secret)?).audience("orders"))
///     .build()?;
///
/// let signer = TokenSigner::new(Algorithm::HS256, secret)?.with_kid("k1");
/// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
/// let token = signer.sign(&serde_json::json!({
///     "iss": "https://idp.example", "aud": "orders", "sub": "alice", "exp": now + 300,
/// }))?;
///
/// let verified = verifier.verify(&token)?;
/// assert_eq!(verified.subject(), Some("alice"));
/// assert_eq!(verifier.verify("not.a.token").unwrap_err().reason(), "malformed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: Vec<PreparedIssuer>,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    /// Starts a configuration; add at least one [`Issuer`].
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder {
            issuers: Vec::new(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            clock: Arc::new(SystemClock),
        }
    }

    /// Verifies a compact JWS token and returns its verified claims.
    ///
    /// # Errors
    ///
    /// A [`TokenError`] naming the first check that failed. Checks run in this order:
    /// length, shape and encoding, header (`alg`, `crit`, nesting), claims syntax, issuer
    /// selection, algorithm allow-list, key lookup, signature, then claim types, `typ`,
    /// `exp`/`nbf`/`iat`/lifetime, `iss`, `aud` and required claims. A forged token is
    /// therefore reported as `bad_signature` even when its claims are also wrong.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(TokenError::TooLarge {
                limit: inner.max_token_bytes,
            });
        }
        let parts = split(token)?;
        let header_bytes = decode_part(parts.header, "header is not base64url")?;
        let header =
            json::parse_header(&header_bytes).map_err(|_| TokenError::Malformed("bad header"))?;
        let alg = Algorithm::from_jose_name(&header.alg).ok_or(TokenError::DisallowedAlgorithm)?;
        if header.crit {
            return Err(TokenError::UnsupportedCrit);
        }
        if header
            .cty
            .as_deref()
            .is_some_and(|cty| cty.eq_ignore_ascii_case("JWT"))
        {
            // A nested JWT (RFC 7519 §5.2) would need every layer verified; meshguard
            // accepts only a single signed layer.
            return Err(TokenError::Malformed("nested tokens are not accepted"));
        }
        let payload = decode_part(parts.payload, "payload is not base64url")?;
        let claims =
            json::parse_claims(&payload).map_err(|_| TokenError::Malformed("bad claims set"))?;
        let issuer = inner.select_issuer(claims.iss.as_deref())?;
        if !issuer.algorithms.contains(alg) {
            return Err(TokenError::DisallowedAlgorithm);
        }
        let key = issuer.keys.select(header.kid.as_deref(), alg)?;
        let signature = decode_part(parts.signature, "signature is not base64url")?;
        if !key.verify(parts.signing_input.as_bytes(), &signature) {
            return Err(TokenError::BadSignature);
        }
        issuer.check_claims(&header, &claims, inner.clock.unix_seconds())?;
        Ok(VerifiedToken::new(&header, alg, claims, &payload))
    }
}

impl Inner {
    fn select_issuer(&self, iss: Option<&str>) -> Result<&PreparedIssuer, TokenError> {
        if let [only] = self.issuers.as_slice() {
            // One issuer: its own checks report a wrong or missing `iss` in their turn.
            return Ok(only);
        }
        let iss = iss.ok_or(TokenError::MissingClaim("iss".into()))?;
        self.issuers
            .iter()
            .find(|issuer| issuer.issuer.as_deref() == Some(iss))
            .ok_or(TokenError::Issuer)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers: Vec<_> = self
            .inner
            .issuers
            .iter()
            .map(|issuer| issuer.issuer.as_deref().unwrap_or("<any>"))
            .collect();
        f.debug_struct("Verifier")
            .field("issuers", &issuers)
            .field("max_token_bytes", &self.inner.max_token_bytes)
            .finish_non_exhaustive()
    }
}

/// Configuration for a [`Verifier`].
#[must_use]
pub struct VerifierBuilder {
    issuers: Vec<Issuer>,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl VerifierBuilder {
    /// Adds an issuer. With several, each token's `iss` picks exactly one of them.
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Bounds the token length in bytes. Defaults to [`DEFAULT_MAX_TOKEN_BYTES`].
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Replaces the wall clock, e.g. with a [`FixedClock`](super::FixedClock) in tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration and prepares every key.
    ///
    /// # Errors
    ///
    /// [`BuilderError::IssuerUnset`] without issuers or when [`Issuer::any`] is combined with
    /// others, [`BuilderError::DuplicateIssuer`], [`BuilderError::AudienceUnset`],
    /// [`BuilderError::NoAlgorithms`], or [`BuilderError::NoUsableKeys`] when no key can
    /// verify any allowed algorithm.
    pub fn build(self) -> Result<Verifier, BuilderError> {
        if self.issuers.is_empty()
            || (self.issuers.len() > 1 && self.issuers.iter().any(|i| i.issuer.is_none()))
        {
            return Err(BuilderError::IssuerUnset);
        }
        let mut issuers: Vec<PreparedIssuer> = Vec::with_capacity(self.issuers.len());
        for issuer in self.issuers {
            let prepared = issuer.prepare()?;
            if issuers.iter().any(|seen| seen.issuer == prepared.issuer) {
                return Err(BuilderError::DuplicateIssuer(
                    prepared.issuer.unwrap_or_default(),
                ));
            }
            issuers.push(prepared);
        }
        Ok(Verifier {
            inner: Arc::new(Inner {
                issuers,
                max_token_bytes: self.max_token_bytes,
                clock: self.clock,
            }),
        })
    }
}

struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signing_input: &'a str,
}

/// Splits `header.payload.signature`; anything else (JWE's five parts, a missing or empty
/// part) is malformed.
fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    let mut dots = token.match_indices('.').map(|(at, _)| at);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    let (Some(header), Some(payload), Some(signature), Some(signing_input)) = (
        token.get(..first),
        token.get(first + 1..second),
        token.get(second + 1..),
        token.get(..second),
    ) else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(TokenError::Malformed("empty part"));
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// Strict base64url: no padding, no `+` or `/`, no stray bits (RFC 7515 §2).
fn decode_part(part: &str, what: &'static str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(what))
}
