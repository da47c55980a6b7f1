//! [`Verifier`]: compact JWS parsing, signature verification and claim checks in one pass.

use std::fmt;
use std::sync::Arc;

use base64_simd::{Out, URL_SAFE_NO_PAD};

use super::algorithm::Algorithm;
use super::cache::{Entry, KeysPin, TokenCache};
use super::claims::{Pending, VerifiedToken};
use super::clock::{Clock, SystemClock};
use super::error::{TokenError, VerifierBuilderError};
use super::header::HeaderMemo;
use super::issuer::{Issuer, PreparedIssuer};
use super::json;

/// The default bound on a token's length: 16 KiB, checked before anything is decoded.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The default number of verified tokens a [`Verifier`] remembers (see
/// [`VerifierBuilder::token_cache`]).
pub const DEFAULT_TOKEN_CACHE: usize = 1024;

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
    cache: Option<TokenCache>,
    headers: HeaderMemo,
}

impl Verifier {
    /// Starts a configuration; add at least one [`Issuer`].
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder {
            issuers: Vec::new(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            clock: Arc::new(SystemClock),
            cache: DEFAULT_TOKEN_CACHE,
        }
    }

    /// Verifies a compact JWS token and returns its verified claims.
    ///
    /// # Errors
    ///
    /// A [`TokenError`] naming the first check that failed. Checks run in this order:
    /// length, shape and encoding, header (`alg`, `crit`, nesting), issuer selection (which
    /// reads the claims first when several issuers are configured), algorithm allow-list, key
    /// lookup, signature, claims syntax, then claim types, `typ`,
    /// `exp`/`nbf`/`iat`/lifetime, `iss`, `aud`, required claims, and confirmation methods
    /// (a `cnf` member other than `x5t#S256` is refused unless the issuer
    /// [allows it](Issuer::allow_unverified_confirmation)). A forged token is
    /// therefore reported as `bad_signature` even when its claims are also wrong.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        self.verify_as(token, Presentation::Bearer)
    }

    /// [`verify`](Self::verify) for a token presented as `presented`: with a DPoP proof, a
    /// `cnf.jkt` binding is left for the caller to check against the proof's key.
    pub(crate) fn verify_as(
        &self,
        token: &str,
        presented: Presentation,
    ) -> Result<VerifiedToken, TokenError> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(TokenError::TooLarge {
                limit: inner.max_token_bytes,
            });
        }
        if let Some(cache) = &inner.cache
            && let Some((token, issuer)) = inner.cached(cache, token)
        {
            issuer.check_presentation(&token, presented)?;
            return Ok(token);
        }
        let parts = split(token)?;
        let remembered = inner.headers.read(parts.header)?;
        let header = remembered.header();
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
        if parts.signature.is_empty() {
            return Err(TokenError::Malformed("empty signature"));
        }
        let payload = decode_part(parts.payload, "payload is not base64url")?;
        // With several issuers the claims must be read first: `iss` picks the keys. With one,
        // they are read only after the signature holds, so a forgery costs no JSON parsing.
        let mut claims = json::RawClaims::default();
        let read_early = !matches!(inner.issuers.as_slice(), [_]);
        let issuer = match inner.issuers.as_slice() {
            [only] => only,
            _ => {
                read_claims(&payload, &mut claims)?;
                inner.select_issuer(claims.iss.as_deref())?
            }
        };
        if !issuer.algorithms.contains(alg) {
            return Err(TokenError::DisallowedAlgorithm);
        }
        let keys = issuer.keys.load()?;
        let key = keys.select(header.kid.as_deref(), alg)?;
        let mut signature_buffer = PartBuffer::new();
        let signature = signature_buffer.decode(parts.signature, "signature is not base64url")?;
        if !key.verify(parts.signing_input.as_bytes(), signature) {
            return Err(TokenError::BadSignature);
        }
        if !read_early {
            read_claims(&payload, &mut claims)?;
        }
        issuer.check_claims(&header, &claims, inner.clock.unix_seconds(), presented)?;
        let several_issuers = inner.issuers.len() > 1;
        let verified = Pending::new(&remembered, alg, &mut claims, &payload, several_issuers)
            .with_payload(payload)
            .ok_or(TokenError::Malformed("bad claims set"))?;
        if let Some(cache) = &inner.cache
            && let Some(index) = inner.issuers.iter().position(|i| std::ptr::eq(i, issuer))
        {
            let entry = Entry {
                token: verified.clone(),
                issuer: index,
                keys: KeysPin::of(&keys),
            };
            cache.insert(token, entry);
        }
        Ok(verified)
    }
}

/// How a token came with its request: alone (`Bearer`), or with a DPoP proof whose key the
/// caller checks against the token's `cnf.jkt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presentation {
    Bearer,
    Dpop,
}

impl Verifier {
    /// The verifier's clock, in seconds since the Unix epoch.
    pub(crate) fn now(&self) -> i64 {
        self.inner.clock.unix_seconds()
    }

    /// The configured issuers, in configuration order.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn issuers(&self) -> &[PreparedIssuer] {
        &self.inner.issuers
    }

    /// The `iss` of each configured issuer, in configuration order; `None` for
    /// [`Issuer::any`].
    pub(crate) fn issuer_names(&self) -> impl Iterator<Item = Option<&str>> {
        self.inner.issuers.iter().map(|i| i.issuer.as_deref())
    }

    /// The issuer a token would be checked against, or `None` when it names no configured
    /// one; for a second attempt after that issuer's key source has refreshed.
    pub(crate) fn issuer_for(&self, token: &str) -> Option<&PreparedIssuer> {
        if let [only] = self.inner.issuers.as_slice() {
            return Some(only);
        }
        let parts = split(token).ok()?;
        let payload = decode_part(parts.payload, "payload is not base64url").ok()?;
        let claims = parse_claims(&payload).ok()?;
        self.inner.select_issuer(claims.iss.as_deref()).ok()
    }
}

impl Inner {
    /// A token verified before, when nothing that decided it has changed since: the keys
    /// of its issuer are the same snapshot, and its time claims still hold now.
    fn cached(&self, cache: &TokenCache, token: &str) -> Option<(VerifiedToken, &PreparedIssuer)> {
        let entry = cache.get(token)?;
        let issuer = self.issuers.get(entry.issuer)?;
        let current = issuer.keys.load().ok()?;
        let verified = &entry.token;
        let times = issuer.check_times(
            verified.expires_at(),
            verified.not_before(),
            verified.issued_at(),
            self.clock.unix_seconds(),
        );
        if !entry.keys.is_current(&current) || times.is_err() {
            cache.remove(token);
            return None;
        }
        Some((entry.token, issuer))
    }

    /// The issuer whose `iss` the token names; only called with two or more issuers.
    fn select_issuer(&self, iss: Option<&str>) -> Result<&PreparedIssuer, TokenError> {
        let iss = iss.ok_or(TokenError::MissingClaim("iss".into()))?;
        self.issuers
            .iter()
            .find(|issuer| issuer.issuer.as_deref() == Some(iss))
            .ok_or(TokenError::Issuer)
    }
}

fn parse_claims(payload: &[u8]) -> Result<json::RawClaims<'_>, TokenError> {
    json::parse_claims(payload).map_err(|_| TokenError::Malformed("bad claims set"))
}

fn read_claims<'a>(payload: &'a [u8], claims: &mut json::RawClaims<'a>) -> Result<(), TokenError> {
    json::parse_claims_into(payload, claims).map_err(|_| TokenError::Malformed("bad claims set"))
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
    cache: usize,
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

    /// How many verified tokens to remember; `0` turns the cache off. Defaults to
    /// [`DEFAULT_TOKEN_CACHE`].
    ///
    /// A token verified before is answered from the cache after re-checking only what can
    /// change: its `exp`, `nbf`, `iat` and lifetime against the clock, and that its
    /// issuer's keys are still the ones that verified it (a remote refresh or rotation
    /// empties the cache's view of that issuer). Refused tokens are never cached. Each
    /// entry holds its token text; the memory bound is about `capacity` × the token size
    /// (at most [`max_token_bytes`](Self::max_token_bytes)).
    pub fn token_cache(mut self, capacity: usize) -> Self {
        self.cache = capacity;
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
    /// [`VerifierBuilderError::IssuerUnset`] without issuers or when [`Issuer::any`] is combined with
    /// others, [`VerifierBuilderError::DuplicateIssuer`], [`VerifierBuilderError::AudienceUnset`],
    /// [`VerifierBuilderError::NoAlgorithms`], or [`VerifierBuilderError::NoUsableKeys`] when no key can
    /// verify any allowed algorithm.
    pub fn build(self) -> Result<Verifier, VerifierBuilderError> {
        if self.issuers.is_empty()
            || (self.issuers.len() > 1 && self.issuers.iter().any(|i| i.issuer.is_none()))
        {
            return Err(VerifierBuilderError::IssuerUnset);
        }
        let mut issuers: Vec<PreparedIssuer> = Vec::with_capacity(self.issuers.len());
        for issuer in self.issuers {
            let prepared = issuer.prepare(&self.clock)?;
            if issuers.iter().any(|seen| seen.issuer == prepared.issuer) {
                return Err(VerifierBuilderError::DuplicateIssuer(
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
                cache: (self.cache > 0).then(|| TokenCache::new(self.cache)),
                headers: HeaderMemo::new(),
            }),
        })
    }
}

pub(crate) struct Parts<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    pub(crate) signing_input: &'a str,
}

/// Splits `header.payload.signature`; anything else (JWE's five parts, a missing part) is
/// malformed.
pub(crate) fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    const MALFORMED: TokenError = TokenError::Malformed("not three dot-separated parts");
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(MALFORMED);
    };
    let (Some(header), Some(payload), Some(signature), Some(signing_input)) = (
        token.get(..first),
        token.get(first + 1..second),
        token.get(second + 1..),
        token.get(..second),
    ) else {
        return Err(MALFORMED);
    };
    // An empty signature is refused after the header is read, so `alg: none` tokens (which
    // carry one) are reported as the disallowed algorithm they are.
    if header.is_empty() || payload.is_empty() {
        return Err(TokenError::Malformed("empty part"));
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// Strict base64url: no padding, no `+` or `/`, no stray bits (RFC 7515 §2). SIMD decoding
/// matters here: for HMAC tokens, decoding is a sizeable share of the whole verification.
pub(crate) fn decode_part(part: &str, what: &'static str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode_to_vec(part)
        .map_err(|_| TokenError::Malformed(what))
}

/// Room on the stack for a decoded signature (HMAC, ECDSA and EdDSA signatures are at most
/// 96 bytes, an RSA-2048 one 256), so the common token needs no allocation for it; longer
/// ones go to the heap.
struct PartBuffer {
    stack: [u8; 320],
    heap: Vec<u8>,
}

impl PartBuffer {
    fn new() -> Self {
        PartBuffer {
            stack: [0; 320],
            heap: Vec::new(),
        }
    }

    fn decode(&mut self, part: &str, what: &'static str) -> Result<&[u8], TokenError> {
        if part.len() / 4 * 3 + 3 <= self.stack.len() {
            let decoded = URL_SAFE_NO_PAD
                .decode(part.as_bytes(), Out::from_slice(&mut self.stack))
                .map_err(|_| TokenError::Malformed(what))?;
            return Ok(decoded);
        }
        self.heap = decode_part(part, what)?;
        Ok(&self.heap)
    }
}
