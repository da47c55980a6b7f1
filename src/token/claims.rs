//! The result of a successful verification: typed standard claims and the header.

use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::algorithm::Algorithm;
use super::json::{RawClaims, RawHeader};

/// The JOSE header fields of a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHeader {
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
}

impl TokenHeader {
    /// The algorithm the signature was verified with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The `kid` header parameter.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `typ` header parameter, as written.
    pub fn token_type(&self) -> Option<&str> {
        self.typ.as_deref()
    }
}

/// A token whose signature and claims passed every configured check.
///
/// It can only be obtained from [`Verifier::verify`](super::Verifier::verify). Cloning is
/// cheap: the claims are shared.
#[derive(Clone)]
pub struct VerifiedToken {
    inner: Arc<Inner>,
}

struct Inner {
    header: TokenHeader,
    issuer: Option<String>,
    subject: Option<String>,
    audiences: Vec<String>,
    expires_at: Option<i64>,
    not_before: Option<i64>,
    issued_at: Option<i64>,
    jwt_id: Option<String>,
    client_id: Option<String>,
    /// `scope` and the entries of `scp` as written; split into `scopes` only when asked for.
    scope_texts: Vec<String>,
    scopes: OnceLock<BTreeSet<String>>,
    x5t_s256: Option<String>,
    /// The claims set exactly as signed; parsed into `claims` only when someone asks.
    payload: Vec<u8>,
    claims: OnceLock<Map<String, Value>>,
    /// Whether the verifier accepted several issuers, so that `iss` told them apart.
    several_issuers: bool,
    /// What another part of the crate derived from this token alone, and for whom.
    derived: OnceLock<(u64, Arc<dyn Any + Send + Sync>)>,
}

impl VerifiedToken {
    /// The verified header.
    pub fn header(&self) -> &TokenHeader {
        &self.inner.header
    }

    /// `iss`.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// `sub`.
    pub fn subject(&self) -> Option<&str> {
        self.inner.subject.as_deref()
    }

    /// `aud`, as a list whether the token carried a string or an array.
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }

    /// `exp`, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> Option<i64> {
        self.inner.expires_at
    }

    /// `nbf`, in seconds since the Unix epoch.
    pub fn not_before(&self) -> Option<i64> {
        self.inner.not_before
    }

    /// `iat`, in seconds since the Unix epoch.
    pub fn issued_at(&self) -> Option<i64> {
        self.inner.issued_at
    }

    /// `jti`.
    pub fn jwt_id(&self) -> Option<&str> {
        self.inner.jwt_id.as_deref()
    }

    /// `client_id` (RFC 9068 §2.2).
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }

    /// The scopes of `scope` (space-delimited, RFC 9068 §2.2.3) and `scp` (string or array).
    pub fn scopes(&self) -> &BTreeSet<String> {
        self.inner.scopes.get_or_init(|| {
            self.inner
                .scope_texts
                .iter()
                .flat_map(|text| text.split(' '))
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().contains(scope)
    }

    /// The `cnf` claim's `x5t#S256` member (RFC 8705 §3.1), as written in the token.
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.inner.x5t_s256.as_deref()
    }

    /// Every claim, as JSON.
    pub fn claims(&self) -> &Map<String, Value> {
        self.inner
            .claims
            .get_or_init(|| serde_json::from_slice(&self.inner.payload).unwrap_or_default())
    }

    /// One claim by name.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims().get(name)
    }

    /// The claims set exactly as the issuer signed it (UTF-8 JSON: it was parsed as such).
    pub fn claims_json(&self) -> &[u8] {
        &self.inner.payload
    }

    /// Whether the verifier that accepted this token was configured with several issuers:
    /// then the same `sub` from two of them names two different users, and the policy
    /// engine refuses to map the token without a namespace for its issuer.
    pub(crate) fn is_from_several_issuers(&self) -> bool {
        self.inner.several_issuers
    }

    /// A value derived from this token alone by `owner` (a policy engine mapping the token
    /// to its principal), made once: the token cache hands every request that brings the
    /// token again this same `VerifiedToken`, so they all reuse it. `owner` must change
    /// whenever what `make` computes could. The first owner's value is kept; any other
    /// owner's is made on each call. A failure is not kept.
    pub(crate) fn derived<T, E>(
        &self,
        owner: u64,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
    {
        if let Some((held, value)) = self.inner.derived.get() {
            if *held == owner
                && let Ok(value) = Arc::clone(value).downcast::<T>()
            {
                return Ok(value);
            }
            return make().map(Arc::new);
        }
        let value = Arc::new(make()?);
        // Another request may have stored its (equal) value first; this one is still right.
        let _ = self.inner.derived.set((owner, value.clone()));
        Ok(value)
    }
}

/// A [`VerifiedToken`] waiting for its payload bytes.
pub(crate) struct Pending(Inner);

impl Pending {
    /// The verified header and claims; the payload follows in [`Pending::with_payload`],
    /// once the borrowed claims are owned.
    pub(crate) fn new(header: &RawHeader<'_>, alg: Algorithm, claims: RawClaims<'_>) -> Self {
        let owned = |value: Option<std::borrow::Cow<'_, str>>| value.map(|v| v.into_owned());
        // Entra ID and Okta send `scp`, as a space-delimited string or as an array.
        let scope_texts = claims
            .scope
            .into_iter()
            .chain(claims.scp.into_iter().flatten())
            .map(|text| text.into_owned())
            .collect();
        Pending(Inner {
            header: TokenHeader {
                alg,
                kid: header.kid.as_ref().map(|k| k.clone().into_owned()),
                typ: header.typ.as_ref().map(|t| t.clone().into_owned()),
            },
            issuer: owned(claims.iss),
            subject: owned(claims.sub),
            audiences: claims
                .aud
                .map(|list| list.into_iter().map(|a| a.into_owned()).collect())
                .unwrap_or_default(),
            expires_at: claims.exp,
            not_before: claims.nbf,
            issued_at: claims.iat,
            jwt_id: owned(claims.jti),
            client_id: owned(claims.client_id),
            scope_texts,
            scopes: OnceLock::new(),
            x5t_s256: owned(claims.x5t_s256),
            payload: Vec::new(),
            claims: OnceLock::new(),
            several_issuers: false,
            derived: OnceLock::new(),
        })
    }

    /// Records that the verifier was configured with several issuers.
    pub(crate) fn among_several_issuers(mut self, several: bool) -> Self {
        self.0.several_issuers = several;
        self
    }

    /// Completes the token with the claims set it was verified from.
    pub(crate) fn with_payload(self, payload: Vec<u8>) -> VerifiedToken {
        let mut inner = self.0;
        inner.payload = payload;
        VerifiedToken {
            inner: Arc::new(inner),
        }
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("header", &self.inner.header)
            .field("issuer", &self.inner.issuer)
            .field("subject", &self.inner.subject)
            .field("audiences", &self.inner.audiences)
            .field("expires_at", &self.inner.expires_at)
            .field("scopes", self.scopes())
            .finish_non_exhaustive()
    }
}
