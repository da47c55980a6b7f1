//! Opaque access tokens, accepted by asking their issuer's introspection endpoint
//! (RFC 7662), with answers cached and one request in flight per token.
//!
//! Configure an [`Introspection`] once per issuer and [`build`](Introspection::build) an
//! [`Introspector`]; call [`Introspector::introspect`] per request, or
//! [`Introspector::verify_with`] to accept the issuer's JWTs (checked locally by a
//! [`Verifier`]) and its opaque tokens side by side. The result is a [`VerifiedToken`] like a
//! JWT's, without header. In front of a service,
//! [`AuthenticationLayer::introspection`](super::AuthenticationLayer::introspection) and
//! `GuardBuilder::introspection` do the same for each request's bearer token.
//!
//! # Example
//!
//! ```
//! use meshguard::token::introspection::{ClientAuth, Introspection};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let introspector = Introspection::new(
//!     "https://idp.example",
//!     "https://idp.example/token/introspection",
//!     ClientAuth::basic("orders-api", "the-client-secret"),
//! )
//! .audience("https://api.example/orders")
//! .build()?;
//! match introspector.introspect("an-opaque-token").await {
//!     Ok(token) => println!("subject {:?}", token.subject()),
//!     Err(refused) => println!("rejected: {}", refused.reason()),
//! }
//! # Ok(())
//! # }
//! ```

mod cache;
mod client;
mod error;
mod response;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Url};

use self::cache::AnswerCache;
use self::response::Answer;
use super::remote::discovery::checked_url;
use super::remote::fetch::{HttpSettings, client_with};
use super::{Clock, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, SystemClock, TokenError};
use super::{VerifiedToken, Verifier};

pub use crate::token::client_auth::ClientAuth;
pub use error::{IntrospectionBuilderError, IntrospectionError};

/// The longest an active token's answer is reused (also never past its `exp`): 60 seconds.
pub const DEFAULT_ACTIVE_TTL: Duration = Duration::from_secs(60);
/// How long an inactive (or refused) token's answer is reused: 5 seconds.
pub const DEFAULT_INACTIVE_TTL: Duration = Duration::from_secs(5);
/// How many tokens' answers are kept: 10,000.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// The largest introspection response read: 64 KiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How long connecting to the endpoint may take: 2 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one introspection request may take in all: 5 seconds. A request waits on it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How one issuer's opaque tokens are introspected and checked.
///
/// Built with [`Introspection::new`]; the endpoint must be `https://` (or `http://` to a
/// loopback host). Every relaxation is a named method.
#[derive(Clone, Debug)]
pub struct Introspection {
    issuer: String,
    endpoint: String,
    auth: ClientAuth,
    audiences: Option<Vec<String>>,
    leeway: Duration,
    require_exp: bool,
    active_ttl: Duration,
    inactive_ttl: Duration,
    cache_capacity: usize,
    max_response_bytes: usize,
    max_token_bytes: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    extra_roots: Vec<Vec<u8>>,
    clock: Arc<dyn Clock>,
}

impl Introspection {
    /// Tokens of `issuer`, introspected at `endpoint` with the resource server's own client
    /// credentials `auth`. An answer's `iss`, when present, must equal `issuer` exactly.
    pub fn new(issuer: impl Into<String>, endpoint: impl Into<String>, auth: ClientAuth) -> Self {
        Introspection {
            issuer: issuer.into(),
            endpoint: endpoint.into(),
            auth,
            audiences: None,
            leeway: DEFAULT_LEEWAY,
            require_exp: true,
            active_ttl: DEFAULT_ACTIVE_TTL,
            inactive_ttl: DEFAULT_INACTIVE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            extra_roots: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Accepts tokens whose `aud` (string or array) contains `audience`; call again to accept
    /// more. An active answer without `aud` is then refused.
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
    /// A token the issuer issued for another service is then accepted here: the endpoint
    /// calls every token of its issuer active. Defaults to requiring
    /// [`audience`](Introspection::audience).
    pub fn allow_any_audience(mut self) -> Self {
        self.audiences = Some(Vec::new());
        self
    }

    /// The clock skew tolerated on `exp` and `nbf`. Defaults to [`DEFAULT_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Accepts active answers without `exp` (RFC 7662 makes it optional); such an answer is
    /// reused for the [`active_ttl`](Introspection::active_ttl) only.
    ///
    /// # Security
    ///
    /// Nothing then bounds the token's life but the endpoint. Defaults to requiring `exp`.
    pub fn allow_missing_exp(mut self) -> Self {
        self.require_exp = false;
        self
    }

    /// The longest an active answer is reused; never past the token's `exp`. A revoked
    /// token is accepted for up to this long. Defaults to [`DEFAULT_ACTIVE_TTL`].
    pub fn active_ttl(mut self, ttl: Duration) -> Self {
        self.active_ttl = ttl;
        self
    }

    /// How long an inactive or refused answer is reused. Defaults to
    /// [`DEFAULT_INACTIVE_TTL`].
    pub fn inactive_ttl(mut self, ttl: Duration) -> Self {
        self.inactive_ttl = ttl;
        self
    }

    /// How many tokens' answers are kept; 0 keeps none and sends every request.
    /// Defaults to [`DEFAULT_CACHE_CAPACITY`].
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The largest response read. Defaults to [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// The longest token sent to the endpoint. Defaults to [`DEFAULT_MAX_TOKEN_BYTES`].
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// How long connecting may take. Defaults to [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one request may take in all. Defaults to [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Trusts `der` (a DER certificate) as a root for the endpoint, besides the system's.
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(der.into());
        self
    }

    /// The clock for `exp`, `nbf` and the cache's lifetimes. Defaults to the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration and sets up the HTTP client.
    ///
    /// # Errors
    ///
    /// No audience decided, an endpoint that is not `https://` (nor `http://` to loopback)
    /// or holds credentials, or a root certificate that cannot be read.
    pub fn build(self) -> Result<Introspector, IntrospectionBuilderError> {
        let audiences = self
            .audiences
            .ok_or(IntrospectionBuilderError::AudienceUnset)?;
        let endpoint = checked_url(&self.endpoint, false)
            .map_err(|e| IntrospectionBuilderError::Endpoint(e.to_string().into()))?;
        let settings = HttpSettings {
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            allow_plain_http: false,
            extra_roots: &self.extra_roots,
            // A 307 or 308 would resend the form, and with it a client_secret_post secret
            // and the token, to wherever it points: a redirect is answered as a non-200.
            follow_redirects: false,
        };
        let client = client_with(&settings, endpoint.scheme() == "https")
            .map_err(|e| IntrospectionBuilderError::Client(e.to_string().into()))?;
        Ok(Introspector {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                endpoint,
                auth: self.auth,
                client,
                audiences,
                leeway: seconds(self.leeway),
                require_exp: self.require_exp,
                active_ttl: seconds(self.active_ttl),
                inactive_ttl: seconds(self.inactive_ttl),
                max_response_bytes: self.max_response_bytes,
                max_token_bytes: self.max_token_bytes,
                cache: AnswerCache::new(self.cache_capacity),
                clock: self.clock,
            }),
        })
    }
}

/// An [`Introspection`] after `build()`: the client set up and the cache ready. Cloning is
/// cheap and shares the cache.
#[derive(Clone)]
pub struct Introspector {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    endpoint: Url,
    auth: ClientAuth,
    client: Client,
    audiences: Vec<String>,
    leeway: i64,
    require_exp: bool,
    active_ttl: i64,
    inactive_ttl: i64,
    max_response_bytes: usize,
    max_token_bytes: usize,
    cache: AnswerCache,
    clock: Arc<dyn Clock>,
}

impl Introspector {
    /// The issuer whose tokens this introspector accepts.
    pub(crate) fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Asks the endpoint about `token` (or reuses a recent answer) and checks the answer.
    /// The token's [`claims`](VerifiedToken::claims) are the answer's members, `active`
    /// among them; it has no header ([`algorithm`](super::TokenHeader::algorithm) is `None`).
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Inactive`] when the endpoint says so;
    /// [`IntrospectionError::Unavailable`] when it cannot be asked or answers anything but
    /// a 200 introspection response; [`IntrospectionError::Token`] when the token is too
    /// long to send or an active answer fails a check: `exp` (required unless
    /// [allowed missing](Introspection::allow_missing_exp)) and `nbf` with leeway, `iss`
    /// when present, `aud`, claim types, and a binding meshguard does not check (`cnf.jkt`,
    /// `token_type` `DPoP`).
    pub async fn introspect(&self, token: &str) -> Result<VerifiedToken, IntrospectionError> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(TokenError::TooLarge {
                limit: inner.max_token_bytes,
            }
            .into());
        }
        if token.is_empty() {
            return Err(TokenError::Malformed("empty token").into());
        }
        let now = inner.clock.unix_seconds();
        let answer = inner
            .cache
            .get_or_fetch(cache::key(token), now, || inner.fetch(token))
            .await?;
        match answer {
            Answer::Active(verified) => {
                inner.check(&verified, inner.clock.unix_seconds())?;
                Ok(verified)
            }
            Answer::Inactive => Err(IntrospectionError::Inactive),
        }
    }

    /// Accepts the issuer's JWTs and its opaque tokens side by side: a token shaped as a
    /// compact JWS (three base64url segments) is verified by `verifier` alone (with
    /// [`Verifier::verify_async`], so a remote key source may refresh) and never sent to the
    /// endpoint; any other token is introspected.
    ///
    /// # Errors
    ///
    /// A JWS's [`TokenError`] as [`IntrospectionError::Token`]; otherwise as
    /// [`introspect`](Introspector::introspect).
    pub async fn verify_with(
        &self,
        verifier: &Verifier,
        token: &str,
    ) -> Result<VerifiedToken, IntrospectionError> {
        if is_compact_jws(token) {
            // Async: a remote key source may refresh for an unknown `kid` first.
            return verifier
                .verify_async(token)
                .await
                .map_err(IntrospectionError::Token);
        }
        self.introspect(token).await
    }
}

/// Reads a 200 introspection response body as an [`Introspector`] does before its
/// configured checks: for a caller that obtained the response itself, and for fuzzing.
///
/// # Errors
///
/// [`IntrospectionError::Inactive`] for `"active": false`;
/// [`IntrospectionError::Unavailable`] for a body that is not one strict JSON object whose
/// `active` is a boolean; [`IntrospectionError::Token`] for an active token with a registered
/// claim of the wrong type or a binding meshguard does not check. The configured checks
/// (`exp`, `nbf`, `iss`, `aud`) are not run: the caller must run its own.
pub fn read_response(body: &[u8]) -> Result<VerifiedToken, IntrospectionError> {
    match response::parse(body.to_vec())? {
        Answer::Active(token) => Ok(token),
        Answer::Inactive => Err(IntrospectionError::Inactive),
    }
}

impl Inner {
    /// One POST and its outcome, with until when the outcome may be reused.
    async fn fetch(&self, token: &str) -> (cache::Outcome, i64) {
        let body = client::introspect(
            &self.client,
            &self.endpoint,
            &self.auth,
            token,
            self.max_response_bytes,
        )
        .await;
        let now = self.clock.unix_seconds();
        let outcome = match body {
            Ok(body) => response::parse(body),
            Err(why) => {
                tracing::debug!(endpoint = %self.endpoint, "introspection failed: {why}");
                Err(IntrospectionError::Unavailable(why.into()))
            }
        };
        let until = match &outcome {
            Ok(Answer::Active(verified)) => {
                let capped = now.saturating_add(self.active_ttl);
                verified.expires_at().map_or(capped, |exp| exp.min(capped))
            }
            _ => now.saturating_add(self.inactive_ttl),
        };
        (outcome, until)
    }

    /// The configured checks on an active answer, run on every use of it: times change.
    fn check(&self, token: &VerifiedToken, now: i64) -> Result<(), TokenError> {
        match token.expires_at() {
            Some(exp) if now >= exp.saturating_add(self.leeway) => return Err(TokenError::Expired),
            Some(_) => {}
            None if self.require_exp => return Err(TokenError::MissingClaim("exp".into())),
            None => {}
        }
        if token
            .not_before()
            .is_some_and(|nbf| now.saturating_add(self.leeway) < nbf)
        {
            return Err(TokenError::NotYetValid);
        }
        // RFC 7662 makes `iss` optional: the endpoint vouches for its own issuer.
        if token.issuer().is_some_and(|iss| iss != self.issuer) {
            return Err(TokenError::Issuer);
        }
        if !self.audiences.is_empty() {
            let audiences = token.audiences();
            if audiences.is_empty() {
                return Err(TokenError::MissingClaim("aud".into()));
            }
            if !audiences.iter().any(|a| self.audiences.contains(a)) {
                return Err(TokenError::Audience);
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("issuer", &self.inner.issuer)
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// Whether `token` has the shape of a compact JWS: three non-empty base64url segments.
pub(crate) fn is_compact_jws(token: &str) -> bool {
    let mut segments = 0;
    for segment in token.split('.') {
        segments += 1;
        if segment.is_empty()
            || !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    segments == 3
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_base64url_segments_are_a_jws() {
        assert!(is_compact_jws("eyJh.eyJ9.c2ln"));
        assert!(is_compact_jws("a-_.b.c"));
        for opaque in [
            "abc", "a.b", "a.b.c.d", "a..c", "a.b.", "a+b.c.d", "a.b.c=", "",
        ] {
            assert!(!is_compact_jws(opaque), "{opaque}");
        }
    }

    #[test]
    fn build_requires_an_audience_and_a_safe_endpoint() {
        let auth = || ClientAuth::basic("rs", "secret");
        let unset = Introspection::new("https://idp", "https://idp/introspect", auth()).build();
        assert_eq!(unset.unwrap_err().reason(), "audience_unset");
        for endpoint in ["http://idp.example/i", "https://u:p@idp/i", "ftp://idp/i"] {
            let refused = Introspection::new("https://idp", endpoint, auth())
                .allow_any_audience()
                .build();
            assert_eq!(
                refused.unwrap_err().reason(),
                "invalid_endpoint",
                "{endpoint}"
            );
        }
        assert!(
            Introspection::new("https://idp", "http://127.0.0.1:1/i", auth())
                .allow_any_audience()
                .build()
                .is_ok()
        );
    }
}
