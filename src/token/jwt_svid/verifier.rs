//! [`JwtSvidVerifier`]: JWT-SVID verification (JWT-SVID §2–§4) against SPIFFE bundles, on
//! the same strict JOSE reader and ring verifiers as access tokens.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};

use super::super::algorithm::Algorithm;
use super::super::clock::{Clock, SystemClock};
use super::super::error::TokenError;
use super::super::issuer::DEFAULT_LEEWAY;
use super::super::json::{self, RawClaims};
use super::super::verifier::{DEFAULT_MAX_TOKEN_BYTES, decode_part, split};
use super::bundles::{BundleSet, jwt_svid_algorithms};
use super::error::{JwtSvidBuilderError, JwtSvidError};
use crate::caller::WorkloadIdentity;
use crate::peer::{SpiffeId, SpiffeIdError};

/// Verifies JWT-SVIDs: the calling workload's identity as a signed token, for services
/// reached through a proxy that ends mTLS.
///
/// A token passes when, in this order: it is at most
/// [`max_token_bytes`](JwtSvidBuilder::max_token_bytes) long and a compact JWS; its `alg`
/// is RS256/384/512, PS256/384/512 or ES256/384 (never HMAC, EdDSA or `none`); its `typ`,
/// when present, is `JWT` or `JOSE`; it has no `crit` and a `kid`; its `sub` is a SPIFFE ID
/// with a path; the [`BundleSet`] has a bundle for that ID's trust domain and that bundle
/// a `jwt-svid` key with the token's `kid` that may verify `alg`; the signature holds; it
/// has `exp` and is not expired, not before `nbf`, not issued in the future (each with the
/// leeway); and its `aud` contains one of the configured audiences.
///
/// The key comes from the bundle of `sub`'s own trust domain and nowhere else: a token
/// claiming `spiffe://a/...` signed by trust domain `b`'s key fails even when both
/// bundles are loaded and the key ids collide.
///
/// # Example
///
/// ```
/// use meshguard::token::jwt_svid::{BundleSet, JwtSvidVerifier};
///
/// let verifier = JwtSvidVerifier::builder(BundleSet::new()).audience("orders").build()?;
/// // HS256 is never a JWT-SVID algorithm, whatever the keys.
/// let hs256 = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.c2ln";
/// assert_eq!(verifier.verify(hs256).unwrap_err().reason(), "disallowed_algorithm");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct JwtSvidVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    bundles: BundleSet,
    audiences: Vec<String>,
    leeway: i64,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl JwtSvidVerifier {
    /// Starts a configuration trusting `bundles`; add at least one audience.
    pub fn builder(bundles: BundleSet) -> JwtSvidBuilder {
        JwtSvidBuilder {
            bundles,
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            clock: Arc::new(SystemClock),
        }
    }

    /// The bundles this verifier trusts (a shared handle: updating it updates the
    /// verifier).
    pub fn bundles(&self) -> &BundleSet {
        &self.inner.bundles
    }

    /// Verifies a JWT-SVID and returns the workload it identifies.
    ///
    /// # Errors
    ///
    /// A [`JwtSvidError`] naming the first check that failed, in the order the type's
    /// documentation lists them.
    pub fn verify(&self, token: &str) -> Result<VerifiedJwtSvid, JwtSvidError> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(JwtSvidError::TooLarge {
                limit: inner.max_token_bytes,
            });
        }
        let parts = split(token).map_err(from_token_error)?;
        let header_bytes =
            decode_part(parts.header, "header is not base64url").map_err(from_token_error)?;
        let header =
            json::parse_header(&header_bytes).map_err(|_| JwtSvidError::Malformed("bad header"))?;
        let alg = Algorithm::from_jose_name(&header.alg)
            .filter(|alg| jwt_svid_algorithms().contains(*alg))
            .ok_or(JwtSvidError::DisallowedAlgorithm)?;
        if header
            .typ
            .as_deref()
            .is_some_and(|typ| typ != "JWT" && typ != "JOSE")
        {
            return Err(JwtSvidError::InvalidType);
        }
        if header.crit {
            return Err(JwtSvidError::UnsupportedCrit);
        }
        if header
            .cty
            .as_deref()
            .is_some_and(|cty| cty.eq_ignore_ascii_case("JWT"))
        {
            return Err(JwtSvidError::Malformed("nested tokens are not accepted"));
        }
        let kid = header.kid.as_deref().ok_or(JwtSvidError::MissingKeyId)?;
        if parts.signature.is_empty() {
            return Err(JwtSvidError::Malformed("empty signature"));
        }
        let payload =
            decode_part(parts.payload, "payload is not base64url").map_err(from_token_error)?;
        // `sub` picks the trust domain and so the keys: the claims are read before the
        // signature is checked, but nothing read from them is trusted until it is.
        let claims =
            json::parse_claims(&payload).map_err(|_| JwtSvidError::Malformed("bad claims set"))?;
        if let Some(wrong) = claims.wrong_type {
            return Err(JwtSvidError::InvalidClaim(wrong.0));
        }
        let sub = claims
            .sub
            .as_deref()
            .ok_or(JwtSvidError::MissingClaim("sub"))?;
        let id = workload_id(sub)?;
        let bundle = inner
            .bundles
            .prepared(id.trust_domain())
            .ok_or(JwtSvidError::UnknownTrustDomain)?;
        let key = bundle
            .keys
            .select(Some(kid), alg)
            .map_err(from_token_error)?;
        let signature =
            decode_part(parts.signature, "signature is not base64url").map_err(from_token_error)?;
        if !key.verify(parts.signing_input.as_bytes(), &signature) {
            return Err(JwtSvidError::BadSignature);
        }
        inner.check_claims(&claims, inner.clock.unix_seconds())?;
        let audiences = claims
            .aud
            .iter()
            .flatten()
            .map(|aud| aud.as_ref().to_owned())
            .collect();
        let (expires_at, issued_at) = (claims.exp.unwrap_or_default(), claims.iat);
        drop(claims);
        let payload = String::from_utf8(payload)
            .map_err(|_| JwtSvidError::Malformed("claims set is not UTF-8"))?;
        Ok(VerifiedJwtSvid {
            inner: Arc::new(Verified {
                id,
                alg,
                kid: kid.into(),
                audiences,
                expires_at,
                issued_at,
                payload,
                claims: OnceLock::new(),
            }),
        })
    }
}

impl Inner {
    /// `exp` (required), `nbf` and `iat` with the leeway, then `aud` (required).
    fn check_claims(&self, claims: &RawClaims<'_>, now: i64) -> Result<(), JwtSvidError> {
        let exp = claims.exp.ok_or(JwtSvidError::MissingClaim("exp"))?;
        // RFC 7519 §4.1.4: the current time must be before `exp`.
        if now >= exp.saturating_add(self.leeway) {
            return Err(JwtSvidError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| now.saturating_add(self.leeway) < nbf)
        {
            return Err(JwtSvidError::NotYetValid);
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(self.leeway))
        {
            return Err(JwtSvidError::IssuedInFuture);
        }
        let aud = claims
            .aud
            .as_ref()
            .ok_or(JwtSvidError::MissingClaim("aud"))?;
        if !aud
            .iter()
            .any(|a| self.audiences.iter().any(|expected| expected == a))
        {
            return Err(JwtSvidError::Audience);
        }
        Ok(())
    }
}

/// `sub` as the SPIFFE ID of a workload: a valid ID with a path (the ID of a trust domain
/// itself names no workload).
fn workload_id(sub: &str) -> Result<SpiffeId, JwtSvidError> {
    let id = SpiffeId::new(sub).map_err(JwtSvidError::InvalidSubject)?;
    if id.path().is_empty() {
        return Err(JwtSvidError::InvalidSubject(SpiffeIdError::MissingPath));
    }
    Ok(id)
}

/// The access-token reader's refusals, as JWT-SVID refusals. Splitting, decoding and key
/// selection refuse only with the variants named here; anything else would be a key that
/// cannot serve, so it reads as no key.
fn from_token_error(error: TokenError) -> JwtSvidError {
    match error {
        TokenError::Malformed(why) => JwtSvidError::Malformed(why),
        TokenError::DisallowedAlgorithm => JwtSvidError::DisallowedAlgorithm,
        TokenError::BadSignature => JwtSvidError::BadSignature,
        _ => JwtSvidError::UnknownKey,
    }
}

impl fmt::Debug for JwtSvidVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSvidVerifier")
            .field("bundles", &self.inner.bundles)
            .field("audiences", &self.inner.audiences)
            .field("leeway", &self.inner.leeway)
            .finish_non_exhaustive()
    }
}

/// Configuration for a [`JwtSvidVerifier`]; the audience is required.
#[must_use]
pub struct JwtSvidBuilder {
    bundles: BundleSet,
    audiences: Vec<String>,
    leeway: Duration,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl JwtSvidBuilder {
    /// Accepts JWT-SVIDs whose `aud` contains `audience` (exact, case-sensitive); call again
    /// to accept more. At least one is required: a JWT-SVID is meant for the audience it
    /// names, and one minted for another service must not be accepted here.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts each of `audiences` (see [`audience`](Self::audience)).
    pub fn audiences(mut self, audiences: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// The clock skew tolerated on `exp`, `nbf` and `iat`. Defaults to
    /// [`DEFAULT_LEEWAY`] (60 s, go-jose's default).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Bounds the token length in bytes. Defaults to [`DEFAULT_MAX_TOKEN_BYTES`].
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Replaces the wall clock, e.g. with a [`FixedClock`](crate::token::FixedClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The verifier.
    ///
    /// # Errors
    ///
    /// [`JwtSvidBuilderError::AudienceUnset`] without an audience (go-spiffe accepts an
    /// empty list and then any audience; here it is a configuration error),
    /// [`JwtSvidBuilderError::EmptyAudience`] for an empty audience string.
    pub fn build(self) -> Result<JwtSvidVerifier, JwtSvidBuilderError> {
        if self.audiences.is_empty() {
            return Err(JwtSvidBuilderError::AudienceUnset);
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(JwtSvidBuilderError::EmptyAudience);
        }
        Ok(JwtSvidVerifier {
            inner: Arc::new(Inner {
                bundles: self.bundles,
                audiences: self.audiences,
                leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
                max_token_bytes: self.max_token_bytes,
                clock: self.clock,
            }),
        })
    }
}

/// A JWT-SVID that passed every check: the calling workload's SPIFFE ID and the token's
/// claims.
///
/// Only [`JwtSvidVerifier::verify`] makes one. It is a [`WorkloadIdentity`], so a
/// [`Caller`](crate::caller::Caller) made from it is decided by the workload, and
/// [`Authorizer::authorize_id`](crate::peer::Authorizer::authorize_id) decides on its
/// [`spiffe_id`](Self::spiffe_id). Cloning is cheap.
#[derive(Clone)]
pub struct VerifiedJwtSvid {
    inner: Arc<Verified>,
}

struct Verified {
    id: SpiffeId,
    alg: Algorithm,
    kid: Box<str>,
    audiences: Vec<String>,
    expires_at: i64,
    issued_at: Option<i64>,
    payload: String,
    claims: OnceLock<Map<String, Value>>,
}

impl VerifiedJwtSvid {
    /// The workload's SPIFFE ID (`sub`).
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.inner.id
    }

    /// The algorithm the signature was verified with.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.alg
    }

    /// The `kid` of the bundle key that verified it.
    pub fn key_id(&self) -> &str {
        &self.inner.kid
    }

    /// `aud`, as a list whether the token carried a string or an array.
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }

    /// `exp`, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> i64 {
        self.inner.expires_at
    }

    /// `iat`, in seconds since the Unix epoch.
    pub fn issued_at(&self) -> Option<i64> {
        self.inner.issued_at
    }

    /// Every claim, as JSON.
    pub fn claims(&self) -> &Map<String, Value> {
        self.inner
            .claims
            .get_or_init(|| serde_json::from_str(&self.inner.payload).unwrap_or_default())
    }
}

impl fmt::Debug for VerifiedJwtSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedJwtSvid")
            .field("spiffe_id", &self.inner.id)
            .field("alg", &self.inner.alg)
            .field("expires_at", &self.inner.expires_at)
            .finish_non_exhaustive()
    }
}

impl WorkloadIdentity for VerifiedJwtSvid {
    fn spiffe_id(&self) -> Option<&str> {
        Some(self.inner.id.as_str())
    }

    fn trust_domain(&self) -> Option<&str> {
        Some(self.inner.id.trust_domain().as_str())
    }
}
