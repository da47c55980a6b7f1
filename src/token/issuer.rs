//! Per-issuer rules: which keys, algorithms, audiences and claim checks apply to its tokens.

use std::sync::Arc;
use std::time::Duration;

use super::algorithm::{Algorithm, AlgorithmSet};
use super::claims::VerifiedToken;
use super::clock::Clock;
use super::crypto::RingVerifier;
use super::error::{TokenError, VerifierBuilderError};
use super::json::{RawClaims, RawHeader};
use super::keys::KeySet;
use super::media_type::TokenType;
use super::remote::source::KeySource;
use super::verifier::Presentation;

/// The default clock-skew allowance for `exp`, `nbf` and `iat`: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// How one issuer's tokens are verified: its keys and the checks its claims must pass.
///
/// Built with [`Issuer::new`] (tokens must carry this exact `iss`) or [`Issuer::any`];
/// every relaxation is a named method.
///
/// # Example
///
/// ```
/// use meshguard::token::{Algorithm, Issuer, KeySet};
///
/// let keys = KeySet::hmac_secret("k1", b"an-example-secret-of-32-bytes-min")?;
/// let issuer = Issuer::new("https://idp.example", keys)
///     .audience("api://orders")
///     .algorithms([Algorithm::HS256])
///     .require_claim("sub");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Issuer {
    pub(crate) issuer: Option<String>,
    pub(crate) keys: KeySet,
    #[cfg(feature = "remote-jwks")]
    pub(crate) remote: Option<super::remote::RemoteJwks>,
    audiences: Option<Vec<String>>,
    pub(crate) algorithms: AlgorithmSet,
    leeway: Duration,
    max_lifetime: Option<Duration>,
    require_exp: bool,
    required_claims: Vec<String>,
    token_types: Option<Vec<String>>,
    allow_unverified_confirmation: bool,
}

impl Issuer {
    /// Tokens whose `iss` equals `issuer` exactly (no normalization), verified with `keys`.
    pub fn new(issuer: impl Into<String>, keys: KeySet) -> Self {
        Issuer::with_issuer(Some(issuer.into()), keys)
    }

    /// Tokens with any `iss`, or none, verified with `keys`.
    ///
    /// # Security
    ///
    /// Whoever holds one of `keys` can mint tokens for any issuer name. Use it only when
    /// the keys belong to a single issuer. A verifier with an `any` issuer can hold no other.
    pub fn any(keys: KeySet) -> Self {
        Issuer::with_issuer(None, keys)
    }

    fn with_issuer(issuer: Option<String>, keys: KeySet) -> Self {
        Issuer {
            issuer,
            keys,
            #[cfg(feature = "remote-jwks")]
            remote: None,
            audiences: None,
            algorithms: AlgorithmSet::all(),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: None,
            require_exp: true,
            required_claims: Vec::new(),
            token_types: None,
            allow_unverified_confirmation: false,
        }
    }

    /// Accepts tokens whose `aud` (string or array) contains `audience`; call again to accept
    /// more. Comparison is exact and case-sensitive. A token without `aud` is rejected.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences
            .get_or_insert_with(Vec::new)
            .push(audience.into());
        self
    }

    /// Accepts tokens for any audience, including none.
    ///
    /// # Security
    ///
    /// A token the issuer minted for another service is then accepted here (RFC 8725 §3.9).
    /// Defaults to requiring [`audience`](Issuer::audience).
    pub fn allow_any_audience(mut self) -> Self {
        self.audiences = Some(Vec::new());
        self
    }

    /// Restricts the algorithms accepted from this issuer. Each key is further limited to
    /// its own `alg` or, without one, to what its type and curve allow. Defaults to every
    /// supported algorithm (HMAC ones only ever match HMAC secrets).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The clock skew tolerated on `exp`, `nbf` and `iat`. Defaults to [`DEFAULT_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Rejects tokens whose `exp` lies more than `max` in the future. Defaults to no limit.
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(max);
        self
    }

    /// Requires a top-level claim to be present (any value).
    pub fn require_claim(mut self, name: impl Into<String>) -> Self {
        self.required_claims.push(name.into());
        self
    }

    /// Accepts tokens without `exp`.
    ///
    /// # Security
    ///
    /// Such a token never expires; a leaked one works forever. Defaults to requiring `exp`.
    pub fn allow_missing_exp(mut self) -> Self {
        self.require_exp = false;
        self
    }

    /// Requires the header `typ` to name one of `types`.
    ///
    /// Values are media types compared as RFC 7515 §4.1.9 says: without regard to ASCII
    /// case, and a value without `/` read as if `application/` preceded it, whether it is
    /// configured or in the token, so `at+jwt` and `Application/AT+JWT` are one type.
    /// Nothing else is normalized: a `typ` with parameters (`at+jwt; charset=x`) or
    /// surrounding whitespace names another type and is refused. A token without `typ` is
    /// refused, and so is every token when no configured value names a media type (an empty
    /// string, or `application/` alone).
    pub fn require_token_type(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.token_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Accepts tokens bound by a confirmation method meshguard does not check (a `cnf`
    /// member other than `x5t#S256`, such as DPoP's `jkt` or `jwk`) as plain bearer tokens.
    ///
    /// # Security
    ///
    /// The issuer bound such a token to a key its client holds, so that a stolen copy is
    /// useless without that key. Accepted here unchecked, a stolen copy works from anyone:
    /// the protection the issuer meant to give is lost. Use it only when another component
    /// (a proxy that verifies DPoP proofs, say) checks the binding before the request gets
    /// here. A `cnf["x5t#S256"]` is still checked by the guard's certificate binding.
    /// Defaults to refusing them with `unsupported_confirmation`.
    pub fn allow_unverified_confirmation(mut self) -> Self {
        self.allow_unverified_confirmation = true;
        self
    }

    /// The RFC 9068 JWT access-token profile: `typ` must be `at+jwt` (or, the same type,
    /// `application/at+jwt`, in any case; see
    /// [`require_token_type`](Issuer::require_token_type)), so an OpenID Connect ID token is
    /// refused; and `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti` must be present.
    pub fn access_token_profile(self) -> Self {
        let mut issuer = self.require_token_type(["at+jwt"]);
        for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
            if !issuer.required_claims.iter().any(|c| c == claim) {
                issuer.required_claims.push(claim.to_owned());
            }
        }
        issuer
    }

    pub(crate) fn prepare(
        self,
        clock: &Arc<dyn Clock>,
    ) -> Result<PreparedIssuer, VerifierBuilderError> {
        if self.algorithms.is_empty() {
            return Err(VerifierBuilderError::NoAlgorithms);
        }
        let remote = self.remote_keys(clock);
        let Some(audiences) = self.audiences else {
            return Err(VerifierBuilderError::AudienceUnset);
        };
        let keys = match remote? {
            Some(remote) => remote,
            None => {
                let keys = PreparedKeys::new(&self.keys, self.algorithms);
                if keys.entries.is_empty() {
                    return Err(VerifierBuilderError::NoUsableKeys);
                }
                KeySource::Static(keys)
            }
        };
        Ok(PreparedIssuer {
            issuer: self.issuer,
            audiences,
            algorithms: self.algorithms,
            keys,
            leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
            max_lifetime: self
                .max_lifetime
                .map(|max| i64::try_from(max.as_secs()).unwrap_or(i64::MAX)),
            require_exp: self.require_exp,
            required_claims: self.required_claims,
            token_types: self
                .token_types
                .map(|types| types.iter().filter_map(|t| TokenType::new(t)).collect()),
            allow_unverified_confirmation: self.allow_unverified_confirmation,
        })
    }
}

/// Keys expanded into ready verifiers, one per (key, algorithm) the configuration allows.
pub(crate) struct PreparedKeys {
    entries: Vec<PreparedKey>,
}

struct PreparedKey {
    kid: Option<Box<str>>,
    verifiers: Vec<RingVerifier>,
}

impl PreparedKeys {
    pub(crate) fn new(keys: &KeySet, allowed: AlgorithmSet) -> Self {
        let entries = keys
            .keys()
            .iter()
            .map(|key| PreparedKey {
                kid: key.kid().map(Into::into),
                verifiers: key
                    .algorithms(allowed)
                    .iter()
                    .filter_map(|alg| key.ring_verifier(alg))
                    .collect(),
            })
            .filter(|key| !key.verifiers.is_empty())
            .collect();
        PreparedKeys { entries }
    }

    /// Whether no key can verify any allowed algorithm.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The verifier for a token's `kid` and `alg`.
    ///
    /// A token without `kid` is only accepted when the set holds exactly one key (RFC 8725
    /// §3.10 leaves trial of several keys open; refusing it keeps one token, one key).
    /// A token with a `kid` that no key carries falls back to a lone key without `kid`
    /// (a PEM key configured by hand).
    pub(crate) fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<&RingVerifier, TokenError> {
        let key = match kid {
            Some(kid) => self
                .entries
                .iter()
                .filter(|key| key.kid.as_deref() == Some(kid))
                .find(|key| key.verifiers.iter().any(|v| v.algorithm() == alg))
                .or_else(|| {
                    self.entries
                        .iter()
                        .find(|key| key.kid.as_deref() == Some(kid))
                })
                .or_else(|| match self.entries.as_slice() {
                    [only] if only.kid.is_none() => Some(only),
                    _ => None,
                }),
            None => match self.entries.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        };
        let key = key.ok_or(TokenError::UnknownKey)?;
        key.verifiers
            .iter()
            .find(|verifier| verifier.algorithm() == alg)
            .ok_or(TokenError::DisallowedAlgorithm)
    }
}

/// An [`Issuer`] after `build()`: keys prepared, durations in seconds.
pub(crate) struct PreparedIssuer {
    pub(crate) issuer: Option<String>,
    audiences: Vec<String>,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) keys: KeySource,
    leeway: i64,
    max_lifetime: Option<i64>,
    require_exp: bool,
    required_claims: Vec<String>,
    token_types: Option<Vec<TokenType>>,
    allow_unverified_confirmation: bool,
}

impl PreparedIssuer {
    /// Every check on a token whose signature has been verified.
    pub(crate) fn check_claims(
        &self,
        header: &RawHeader<'_>,
        claims: &RawClaims<'_>,
        now: i64,
        presented: Presentation,
    ) -> Result<(), TokenError> {
        if let Some(wrong) = claims.wrong_type {
            return Err(TokenError::InvalidClaim(wrong.0));
        }
        if let Some(types) = &self.token_types {
            let typ = header.typ.as_deref().unwrap_or_default();
            if !types.iter().any(|t| t.matches(typ)) {
                return Err(TokenError::InvalidType);
            }
        }
        self.check_times(claims.exp, claims.nbf, claims.iat, now)?;
        if let Some(expected) = &self.issuer {
            match &claims.iss {
                Some(iss) if iss == expected => {}
                Some(_) => return Err(TokenError::Issuer),
                None => return Err(TokenError::MissingClaim("iss".into())),
            }
        }
        if !self.audiences.is_empty() {
            let Some(aud) = &claims.aud else {
                return Err(TokenError::MissingClaim("aud".into()));
            };
            if !aud.iter().any(|a| self.audiences.iter().any(|e| e == a)) {
                return Err(TokenError::Audience);
            }
        }
        if let Some(missing) = self.required_claims.iter().find(|c| !claims.has(c)) {
            return Err(TokenError::MissingClaim(missing.as_str().into()));
        }
        // A bound token accepted without its binding checked is a bearer token its
        // issuer never meant to issue. With a DPoP proof, `jkt` is checked by the caller.
        let unverified = match presented {
            Presentation::Bearer => claims.unverified_confirmation,
            Presentation::Dpop => claims.other_confirmation,
        };
        if unverified && !self.allow_unverified_confirmation {
            return Err(TokenError::UnsupportedConfirmation);
        }
        Ok(())
    }

    /// The confirmation check again for a token taken from the cache, which may have been
    /// verified with a DPoP proof: presented as a bearer token, a DPoP-bound one is refused.
    pub(crate) fn check_presentation(
        &self,
        token: &VerifiedToken,
        presented: Presentation,
    ) -> Result<(), TokenError> {
        if presented == Presentation::Bearer
            && token.dpop_thumbprint().is_some()
            && !self.allow_unverified_confirmation
        {
            return Err(TokenError::UnsupportedConfirmation);
        }
        Ok(())
    }

    /// The time checks: `exp`, the maximum lifetime, `nbf` and `iat`, each with leeway.
    /// Also run on a cached token, whose other claims cannot change.
    pub(crate) fn check_times(
        &self,
        exp: Option<i64>,
        nbf: Option<i64>,
        iat: Option<i64>,
        now: i64,
    ) -> Result<(), TokenError> {
        match exp {
            // RFC 7519 §4.1.4: the current time must be before `exp`.
            Some(exp) if now >= exp.saturating_add(self.leeway) => return Err(TokenError::Expired),
            Some(exp) => {
                if let Some(max) = self.max_lifetime
                    && exp.saturating_sub(now) > max
                {
                    return Err(TokenError::LifetimeExceeded);
                }
            }
            None if self.require_exp => return Err(TokenError::MissingClaim("exp".into())),
            None => {}
        }
        if let Some(nbf) = nbf
            && now.saturating_add(self.leeway) < nbf
        {
            return Err(TokenError::NotYetValid);
        }
        if let Some(iat) = iat
            && iat > now.saturating_add(self.leeway)
        {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }
}
