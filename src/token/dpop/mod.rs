//! DPoP (RFC 9449): access tokens bound to a key the client proves it holds, with a fresh
//! signed proof on every request.
//!
//! A [`DpopVerifier`] wraps a [`Verifier`]: it checks the proof (`typ`, an asymmetric
//! `alg` from an allow-list, a public `jwk`, the signature, `htm`, `htu`, `iat`, `jti`
//! against replay, `ath`, optionally a server nonce), verifies the token, and checks that the
//! token's `cnf.jkt` is the RFC 7638 thumbprint of the proof's key. Under the
//! [guard](crate::guard::GuardBuilder::dpop), requests with `Authorization: DPoP` are checked
//! this way, and routes can [require it](crate::guard::RouteRule::require_dpop).
//!
//! # Example
//!
//! ```
//! use meshguard::token::dpop::DpopVerifier;
//! use meshguard::token::{Issuer, KeySet, Verifier};
//!
//! let jwks = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"demo",
//!     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::new("https://idp.example", KeySet::from_jwks_json(jwks)?).audience("api"))
//!     .build()?;
//! let dpop = DpopVerifier::builder(verifier)
//!     .public_origin("https://api.example")
//!     .build()?;
//! let refused = dpop.verify("a.b.c", "not-a-proof", "GET", "https://api.example/orders");
//! assert_eq!(refused.unwrap_err().reason(), "dpop_malformed");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod htu;
mod jwk;
mod nonce;
mod proof;
mod replay;
mod request;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;

pub use error::{DpopBuilderError, DpopError};
pub use jwk::jwk_thumbprint;

use super::verifier::Presentation;
use super::{Algorithm, AlgorithmSet, TokenError, VerifiedToken, Verifier};
use crate::response::Refusal;
use nonce::Nonces;
use proof::Proof;
use replay::ReplayCache;
pub(crate) use request::{Origin, is_dpop};

/// The default bound on a proof's length: 8 KiB (a proof with an RSA-4096 key is under 2).
pub const DEFAULT_MAX_PROOF_BYTES: usize = 8 * 1024;

/// The default age after which a proof is refused: 60 seconds from its `iat`.
pub const DEFAULT_PROOF_MAX_AGE: Duration = Duration::from_secs(60);

/// The default clock-skew allowance on a proof's `iat`: 5 seconds.
pub const DEFAULT_PROOF_LEEWAY: Duration = Duration::from_secs(5);

/// The default number of proofs remembered per token issuer against replay.
pub const DEFAULT_REPLAY_CAPACITY: usize = 65_536;

/// Verifies DPoP-bound access tokens with their proofs. Cloning is cheap.
///
/// Built with [`DpopVerifier::builder`]; see the [module](self) for an example.
#[derive(Clone)]
pub struct DpopVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Verifier,
    algorithms: AlgorithmSet,
    /// The allowed algorithms as the `algs` of a challenge.
    algs: Arc<str>,
    max_proof_bytes: usize,
    max_age: i64,
    leeway: i64,
    replay: ReplayCache,
    nonces: Option<Nonces>,
    origin: Option<Origin>,
}

/// A DPoP-bound token that passed, with the thumbprint of the key its proof was signed with.
#[derive(Clone, Debug)]
pub struct DpopVerified {
    token: VerifiedToken,
    thumbprint: String,
}

impl DpopVerified {
    /// The verified access token.
    pub fn token(&self) -> &VerifiedToken {
        &self.token
    }

    /// The verified access token, owned.
    pub fn into_token(self) -> VerifiedToken {
        self.token
    }

    /// The RFC 7638 thumbprint of the proof's key, equal to the token's `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }
}

impl DpopVerifier {
    /// Starts a configuration around `verifier`, which verifies the access tokens (their
    /// issuers, keys, audiences and clock).
    pub fn builder(verifier: Verifier) -> DpopVerifierBuilder {
        DpopVerifierBuilder {
            verifier,
            algorithms: None,
            max_proof_bytes: DEFAULT_MAX_PROOF_BYTES,
            max_age: DEFAULT_PROOF_MAX_AGE,
            leeway: DEFAULT_PROOF_LEEWAY,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
            nonce: None,
            origins: Vec::new(),
            host_scheme: None,
        }
    }

    /// Verifies the access `token` of a request with method `method` (`GET`, ...) to `uri`
    /// (the absolute URI the client sent it to, e.g. `https://api.example/orders?id=1`), with
    /// its DPoP `proof`.
    ///
    /// # Errors
    ///
    /// The [`DpopError`] of the first check that failed, in this order: the proof's length,
    /// shape, header, `typ`, `crit`, `alg`, `jwk`, signature and claims syntax; the presence
    /// of `jti`, `htm`, `htu`, `iat` and `ath`; `htm`; `htu`; the nonce, when required;
    /// `iat`; `ath`; the token (as [`Verifier::verify`], wrapped in [`DpopError::Token`]);
    /// its `cnf.jkt` against the proof's key; last the replay cache, so that only a proof
    /// that passed everything else is remembered.
    pub fn verify(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        uri: &str,
    ) -> Result<DpopVerified, DpopError> {
        let expected = htu::normalize(uri);
        let proof = self.check_proof(token, proof, method, &|htu| {
            expected.as_deref() == Some(htu)
        })?;
        let verified = self.inner.verifier.verify_as(token, Presentation::Dpop);
        self.finish(proof, verified)
    }

    /// [`verify`](Self::verify), waiting for a remote key source as
    /// [`Verifier::verify_async`] does when the token's key is not known yet.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    #[cfg(feature = "remote-jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
    pub async fn verify_async(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        uri: &str,
    ) -> Result<DpopVerified, DpopError> {
        match self.verify(token, proof, method, uri) {
            Err(DpopError::Token(
                error @ (TokenError::UnknownKey | TokenError::KeySourceUnavailable),
            )) => {
                if self.inner.verifier.wait_for_keys(token, &error).await {
                    self.verify(token, proof, method, uri)
                } else {
                    Err(DpopError::Token(error))
                }
            }
            done => done,
        }
    }

    /// The nonce a client must put into its next proof, when nonces are
    /// [required](DpopVerifierBuilder::require_nonce): to send in a `DPoP-Nonce` header.
    pub fn nonce(&self) -> Option<String> {
        let now = self.inner.verifier.now();
        self.inner.nonces.as_ref().map(|nonces| nonces.current(now))
    }

    /// The algorithms a proof may be signed with.
    pub fn algorithms(&self) -> AlgorithmSet {
        self.inner.algorithms
    }

    /// The verifier of the access tokens.
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// How a request refused with `error` is answered: [`DpopError::refusal`] with this
    /// verifier's algorithms in the challenge's `algs`.
    #[must_use]
    pub fn refusal(&self, error: &DpopError) -> Refusal {
        error.refusal().with_dpop_algs(Arc::clone(&self.inner.algs))
    }

    /// The allowed algorithms, space-separated, for `algs`.
    pub(crate) fn algs(&self) -> &Arc<str> {
        &self.inner.algs
    }

    /// The checks on the proof that need no token verification; `uri_matches` is given the
    /// proof's normalized `htu`.
    fn check_proof(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        uri_matches: &dyn Fn(&str) -> bool,
    ) -> Result<Checked, DpopError> {
        let inner = &*self.inner;
        let proof = proof::read(proof, inner.max_proof_bytes, inner.algorithms)?;
        let claims = &proof.claims;
        let jti = claims
            .jti
            .as_deref()
            .ok_or(DpopError::MissingClaim("jti"))?;
        let htm = claims
            .htm
            .as_deref()
            .ok_or(DpopError::MissingClaim("htm"))?;
        let htu = claims
            .htu
            .as_deref()
            .ok_or(DpopError::MissingClaim("htu"))?;
        let iat = claims.issued_at().ok_or(DpopError::MissingClaim("iat"))?;
        let ath = claims
            .ath
            .as_deref()
            .ok_or(DpopError::MissingClaim("ath"))?;
        if jti.is_empty() {
            return Err(DpopError::MissingClaim("jti"));
        }
        // Methods are case-sensitive (RFC 9110 §9.1).
        if htm != method {
            return Err(DpopError::MethodMismatch);
        }
        if !htu::normalize(htu).is_some_and(|htu| uri_matches(&htu)) {
            return Err(DpopError::UriMismatch);
        }
        let now = inner.verifier.now();
        if let Some(nonces) = &inner.nonces
            && !claims
                .nonce
                .as_deref()
                .is_some_and(|nonce| nonces.accepts(nonce, now))
        {
            return Err(DpopError::UseNonce(nonces.current(now).into()));
        }
        if iat > now.saturating_add(inner.leeway) {
            return Err(DpopError::IssuedInFuture);
        }
        let expires = iat
            .saturating_add(inner.max_age)
            .saturating_add(inner.leeway);
        if now > expires {
            return Err(DpopError::Stale);
        }
        if ath != URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes())) {
            return Err(DpopError::AccessTokenHash);
        }
        Ok(Checked { proof, expires })
    }

    /// The token's binding to the proof's key, then the replay cache.
    fn finish(
        &self,
        checked: Checked,
        verified: Result<VerifiedToken, TokenError>,
    ) -> Result<DpopVerified, DpopError> {
        let token = verified?;
        let Checked { proof, expires } = checked;
        let jkt = token.dpop_thumbprint().ok_or(DpopError::Unbound)?;
        if jkt != proof.thumbprint {
            return Err(DpopError::KeyMismatch);
        }
        let jti = proof.claims.jti.as_deref().unwrap_or_default();
        self.inner.replay.record(
            token.issuer(),
            &proof.thumbprint,
            jti,
            expires,
            self.inner.verifier.now(),
        )?;
        Ok(DpopVerified {
            token,
            thumbprint: proof.thumbprint,
        })
    }
}

/// A proof that passed every check before the token's, and the last second it is accepted.
struct Checked {
    proof: Proof,
    expires: i64,
}

impl fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("verifier", &self.inner.verifier)
            .field("algorithms", &self.inner.algorithms)
            .field("max_age", &self.inner.max_age)
            .field("nonces", &self.inner.nonces.is_some())
            .finish_non_exhaustive()
    }
}

/// Configuration for a [`DpopVerifier`].
#[must_use]
pub struct DpopVerifierBuilder {
    verifier: Verifier,
    algorithms: Option<AlgorithmSet>,
    max_proof_bytes: usize,
    max_age: Duration,
    leeway: Duration,
    replay_capacity: usize,
    nonce: Option<(Option<Vec<u8>>, Duration)>,
    origins: Vec<String>,
    host_scheme: Option<String>,
}

impl DpopVerifierBuilder {
    /// The algorithms a proof may be signed with; symmetric ones are refused by
    /// [`build`](Self::build). Defaults to every asymmetric algorithm (ES256, ES384,
    /// EdDSA, RS256–512, PS256–512).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Bounds a proof's length in bytes. Defaults to [`DEFAULT_MAX_PROOF_BYTES`].
    pub fn max_proof_bytes(mut self, max: usize) -> Self {
        self.max_proof_bytes = max;
        self
    }

    /// How long after its `iat` a proof is accepted (and remembered against replay).
    /// Defaults to [`DEFAULT_PROOF_MAX_AGE`].
    pub fn proof_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The clock skew tolerated on a proof's `iat`, both ways. Defaults to
    /// [`DEFAULT_PROOF_LEEWAY`].
    pub fn proof_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How many proofs are remembered per token issuer. Each is kept until its age passed
    /// (max age plus leeway after its `iat`), so the capacity bounds the proofs per second
    /// one issuer's clients can make: at most `capacity / (max age + 2 × leeway)`. Past it,
    /// proofs are refused with `dpop_replay_cache_full` until old ones expire: a full cache
    /// never forgets a proof that could still be replayed. About 150 bytes per entry.
    /// Defaults to [`DEFAULT_REPLAY_CAPACITY`].
    pub fn replay_capacity(mut self, capacity: usize) -> Self {
        self.replay_capacity = capacity;
        self
    }

    /// Requires proofs to carry a nonce this server made (RFC 9449 §8), valid for `period`
    /// to twice `period`. A proof without a current one is refused with `use_dpop_nonce`
    /// and a `DPoP-Nonce` header holding the nonce to use. This bounds how long a proof made
    /// in advance (by a client whose clock is wrong, or an attacker who had its key for a
    /// while) stays usable. The secret is random, so replicas of a service do not accept
    /// each other's nonces; see [`nonce_secret`](Self::nonce_secret). Defaults to off.
    pub fn require_nonce(mut self, period: Duration) -> Self {
        let secret = self.nonce.take().and_then(|(secret, _)| secret);
        self.nonce = Some((secret, period));
        self
    }

    /// The secret nonces are made with (at least 32 bytes), shared by the replicas of a
    /// service so that a nonce from one is accepted by all; implies
    /// [`require_nonce`](Self::require_nonce) (with a 5-minute period unless set).
    pub fn nonce_secret(mut self, secret: &[u8]) -> Self {
        let period = self
            .nonce
            .take()
            .map_or(Duration::from_secs(300), |(_, period)| period);
        self.nonce = Some((Some(secret.to_vec()), period));
        self
    }

    /// The origin (`https://api.example`, or with a path prefix, `https://gw.example/orders`)
    /// clients address this service as; call again for more. Under the guard, the `htu` a
    /// proof must carry is this origin followed by the request's path, whatever the request's
    /// `Host` says: behind a proxy or gateway, give the public origin the client used.
    /// Without an origin, only [`verify`](DpopVerifier::verify) (given the URI) can be used.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Under the guard, takes the origin of `htu` from the request: its URI's scheme and
    /// authority (HTTP/2), else the `Host` header with `scheme` (`https` when this server
    /// terminates TLS). `X-Forwarded-*` and `Forwarded` are never read.
    ///
    /// # Security
    ///
    /// The client chooses `Host`. A proof made for another service that accepts the same
    /// tokens (same issuer, same audience) can then be replayed here, once, within its age,
    /// by a client that names that service's host. With
    /// [`public_origin`](Self::public_origin) it cannot. Defaults to off.
    pub fn origin_from_host(mut self, scheme: impl Into<String>) -> Self {
        self.host_scheme = Some(scheme.into());
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`DpopBuilderError::NoAlgorithms`], [`DpopBuilderError::SymmetricAlgorithm`],
    /// [`DpopBuilderError::Origin`] for an origin or scheme that is not `http(s)`,
    /// [`DpopBuilderError::NonceSecretTooShort`], [`DpopBuilderError::Zero`] for a zero
    /// capacity, age or nonce period.
    pub fn build(self) -> Result<DpopVerifier, DpopBuilderError> {
        let asymmetric: AlgorithmSet = Algorithm::ALL
            .into_iter()
            .filter(|alg| !alg.is_symmetric())
            .collect();
        let algorithms = self.algorithms.unwrap_or(asymmetric);
        if algorithms.is_empty() {
            return Err(DpopBuilderError::NoAlgorithms);
        }
        if let Some(symmetric) = algorithms.iter().find(|alg| alg.is_symmetric()) {
            return Err(DpopBuilderError::SymmetricAlgorithm(symmetric.as_str()));
        }
        if self.replay_capacity == 0 {
            return Err(DpopBuilderError::Zero("the replay capacity"));
        }
        if self.max_age.is_zero() {
            return Err(DpopBuilderError::Zero("the proof age"));
        }
        let nonces = match self.nonce {
            Some((_, period)) if period.as_secs() == 0 => {
                return Err(DpopBuilderError::Zero("the nonce period"));
            }
            Some((secret, period)) => Some(Nonces::new(secret.as_deref(), seconds(period))?),
            None => None,
        };
        let origin = Origin::new(self.origins, self.host_scheme)?;
        let algs: Vec<&str> = algorithms.iter().map(Algorithm::as_str).collect();
        let replay = ReplayCache::new(self.verifier.issuer_names(), self.replay_capacity);
        Ok(DpopVerifier {
            inner: Arc::new(Inner {
                replay,
                verifier: self.verifier,
                algorithms,
                algs: Arc::from(algs.join(" ")),
                max_proof_bytes: self.max_proof_bytes,
                max_age: seconds(self.max_age),
                leeway: seconds(self.leeway),
                nonces,
                origin,
            }),
        })
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}
