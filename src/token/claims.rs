//! The result of a successful verification: typed standard claims and the header.

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::algorithm::Algorithm;
use super::header::Remembered;
use super::json::RawClaims;

/// The JOSE header fields of a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHeader {
    /// `None` for an opaque token accepted by introspection: it had no header.
    alg: Option<Algorithm>,
    kid: Option<Arc<str>>,
    typ: Option<Arc<str>>,
}

impl TokenHeader {
    /// The algorithm the signature was verified with; `None` for an opaque token, which
    /// was accepted by its issuer's introspection endpoint and had neither header nor
    /// signature.
    pub fn algorithm(&self) -> Option<Algorithm> {
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
    issuer: Option<Text>,
    subject: Option<Text>,
    audience_texts: Vec<Text>,
    /// `aud` as owned strings, made only when asked for.
    audiences: OnceLock<Vec<String>>,
    expires_at: Option<i64>,
    not_before: Option<i64>,
    issued_at: Option<i64>,
    jwt_id: Option<Text>,
    client_id: Option<Text>,
    /// `scope` and the entries of `scp` as written; split into `scopes` only when asked for.
    /// Apart, so that the common token (a `scope` string, no `scp`) needs no list.
    scope_text: Option<Text>,
    scp_texts: Vec<Text>,
    scopes: OnceLock<BTreeSet<String>>,
    x5t_s256: Option<Text>,
    jkt: Option<Text>,
    /// The claims set exactly as signed; parsed into `claims` only when someone asks.
    payload: String,
    claims: OnceLock<Map<String, Value>>,
    /// Whether the verifier accepted several issuers, so that `iss` told them apart.
    several_issuers: bool,
    /// What another part of the crate derived from this token alone, and for whom.
    derived: OnceLock<(u64, Arc<dyn Any + Send + Sync>)>,
}

/// A string claim: where it lies in the payload, or its unescaped copy when the JSON text
/// escaped it. Verification copies nothing for the common, unescaped claim.
enum Text {
    At(Range<usize>),
    Unescaped(Box<str>),
}

impl Text {
    /// `value`, read from `payload`: a range when it is a slice of it.
    fn of(payload: &[u8], value: Cow<'_, str>) -> Self {
        match value {
            Cow::Borrowed(slice) => {
                let start = (slice.as_ptr() as usize).wrapping_sub(payload.as_ptr() as usize);
                let range = start..start.wrapping_add(slice.len());
                match payload.get(range.clone()) {
                    // A slice of the claims set, whose text the token keeps: its place is enough.
                    Some(found) if std::ptr::eq(found.as_ptr(), slice.as_ptr()) => Text::At(range),
                    _ => Text::Unescaped(slice.into()),
                }
            }
            Cow::Owned(owned) => Text::Unescaped(owned.into_boxed_str()),
        }
    }
}

impl Inner {
    fn text<'a>(&'a self, text: &'a Text) -> &'a str {
        match text {
            Text::At(range) => self.payload.get(range.clone()).unwrap_or_default(),
            Text::Unescaped(owned) => owned,
        }
    }

    fn optional<'a>(&'a self, text: &'a Option<Text>) -> Option<&'a str> {
        text.as_ref().map(|text| self.text(text))
    }
}

impl VerifiedToken {
    /// The verified header.
    pub fn header(&self) -> &TokenHeader {
        &self.inner.header
    }

    /// `iss`.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.optional(&self.inner.issuer)
    }

    /// `sub`.
    pub fn subject(&self) -> Option<&str> {
        self.inner.optional(&self.inner.subject)
    }

    /// `aud`, as a list whether the token carried a string or an array.
    pub fn audiences(&self) -> &[String] {
        self.inner.audiences.get_or_init(|| {
            let inner = &*self.inner;
            inner
                .audience_texts
                .iter()
                .map(|text| inner.text(text).to_owned())
                .collect()
        })
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
        self.inner.optional(&self.inner.jwt_id)
    }

    /// `client_id` (RFC 9068 §2.2).
    pub fn client_id(&self) -> Option<&str> {
        self.inner.optional(&self.inner.client_id)
    }

    /// The scopes of `scope` (space-delimited, RFC 9068 §2.2.3) and `scp` (string or array).
    pub fn scopes(&self) -> &BTreeSet<String> {
        let inner = &*self.inner;
        inner.scopes.get_or_init(|| {
            inner
                .scope_text
                .iter()
                .chain(&inner.scp_texts)
                .flat_map(|text| inner.text(text).split(' '))
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
        self.inner.optional(&self.inner.x5t_s256)
    }

    /// The `cnf` claim's `jkt` member (RFC 9449 §6.1): the thumbprint of the DPoP key the
    /// token is bound to, as written. Such a token is only accepted with a proof of that key
    /// ([`DpopVerifier`](super::dpop::DpopVerifier)), unless its issuer
    /// [allows unverified confirmation](super::Issuer::allow_unverified_confirmation).
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.inner.optional(&self.inner.jkt)
    }

    /// Every claim, as JSON.
    pub fn claims(&self) -> &Map<String, Value> {
        self.inner
            .claims
            .get_or_init(|| serde_json::from_str(&self.inner.payload).unwrap_or_default())
    }

    /// One claim by name.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims().get(name)
    }

    /// The claims set exactly as the issuer signed it (UTF-8 JSON: it was parsed as such).
    pub fn claims_json(&self) -> &[u8] {
        self.inner.payload.as_bytes()
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

/// A [`VerifiedToken`] waiting for its payload.
pub(crate) struct Pending(Arc<Inner>);

impl Pending {
    /// The verified header and claims, read from `payload`, which follows in
    /// [`Pending::with_payload`] once the borrowed claims are done with;
    /// `several_issuers` when the verifier was configured with several issuers.
    pub(crate) fn new(
        header: &Remembered,
        alg: Algorithm,
        claims: &mut RawClaims<'_>,
        payload: &[u8],
        several_issuers: bool,
    ) -> Self {
        let (kid, typ) = header.kid_and_typ();
        let header = TokenHeader {
            alg: Some(alg),
            kid,
            typ,
        };
        Self::read(header, claims, payload, several_issuers)
    }

    /// The claims of an opaque token's introspection response (RFC 7662 §2.2), read from
    /// `response`, which follows in [`Pending::with_payload`]: a token without header.
    #[cfg(feature = "introspection")]
    pub(crate) fn introspected(claims: &mut RawClaims<'_>, response: &[u8]) -> Self {
        let header = TokenHeader {
            alg: None,
            kid: None,
            typ: None,
        };
        Self::read(header, claims, response, false)
    }

    /// Takes the registered claims out of `claims`, as ranges of `payload` where they are
    /// written there unescaped.
    fn read(
        header: TokenHeader,
        claims: &mut RawClaims<'_>,
        payload: &[u8],
        several_issuers: bool,
    ) -> Self {
        let text = |value: Cow<'_, str>| Text::of(payload, value);
        // Entra ID and Okta send `scp`, as a space-delimited string or as an array.
        let scp_texts = claims
            .scp
            .take()
            .map(|list| list.into_iter().map(text).collect())
            .unwrap_or_default();
        // Made in place: the token's fields are moved only once, into their allocation.
        Pending(Arc::new(Inner {
            header,
            issuer: claims.iss.take().map(text),
            subject: claims.sub.take().map(text),
            audience_texts: claims
                .aud
                .take()
                .map(|list| list.into_iter().map(text).collect())
                .unwrap_or_default(),
            audiences: OnceLock::new(),
            expires_at: claims.exp,
            not_before: claims.nbf,
            issued_at: claims.iat,
            jwt_id: claims.jti.take().map(text),
            client_id: claims.client_id.take().map(text),
            scope_text: claims.scope.take().map(text),
            scp_texts,
            scopes: OnceLock::new(),
            x5t_s256: claims.x5t_s256.take().map(text),
            jkt: claims.jkt.take().map(text),
            payload: String::new(),
            claims: OnceLock::new(),
            several_issuers,
            derived: OnceLock::new(),
        }))
    }

    /// Completes the token with the claims set it was read from; `None` when that is not
    /// UTF-8 (which a parsed claims set always is).
    pub(crate) fn with_payload(mut self, payload: Vec<u8>) -> Option<VerifiedToken> {
        // Not shared yet: `Pending` never hands its `Arc` out.
        Arc::get_mut(&mut self.0)?.payload = String::from_utf8(payload).ok()?;
        Some(VerifiedToken { inner: self.0 })
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("header", &self.inner.header)
            .field("issuer", &self.issuer())
            .field("subject", &self.subject())
            .field("audiences", &self.audiences())
            .field("expires_at", &self.inner.expires_at)
            .field("scopes", self.scopes())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use crate::token::{Issuer, KeySet, Verifier};

    /// TEST-ONLY secret.
    const SECRET: &[u8] = b"claims-test-secret-of-at-least-32-bytes";

    /// A compact HS256 token over exactly these payload bytes.
    fn token(payload: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
        let signature = URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, input.as_bytes()));
        format!("{input}.{signature}")
    }

    #[test]
    fn escaped_and_plain_claims_read_the_same() {
        let verifier = Verifier::builder()
            .issuer(
                Issuer::new(
                    "https://idp.test",
                    KeySet::hmac_secret("k1", SECRET).unwrap(),
                )
                .audience("abc"),
            )
            .token_cache(0)
            .build()
            .unwrap();
        let escaped = r#"{"iss":"https:\/\/idp.test","sub":"\u0061l\u00e9\"x\"","aud":["a\u0062c","x"],
            "scope":"r\u0065ad wr\u0069te","scp":["\u0061dmin"],"jti":"j\\1","client_id":"c\u0022q",
            "cnf":{"x5t#S256":"t\u0041"},"exp":4102444800,"nbf":1,"iat":2,"extra":"\ud83d\ude00"}"#;
        let plain = r#"{"iss":"https://idp.test","sub":"alé\"x\"","aud":["abc","x"],
            "scope":"read write","scp":["admin"],"jti":"j\\1","client_id":"c\"q",
            "cnf":{"x5t#S256":"tA"},"exp":4102444800,"nbf":1,"iat":2,"extra":"😀"}"#;
        let escaped = verifier.verify(&token(escaped)).unwrap();
        let plain = verifier.verify(&token(plain)).unwrap();
        for token in [&escaped, &plain] {
            assert_eq!(token.issuer(), Some("https://idp.test"));
            assert_eq!(token.subject(), Some("alé\"x\""));
            assert_eq!(token.audiences(), ["abc", "x"]);
            assert_eq!(token.jwt_id(), Some("j\\1"));
            assert_eq!(token.client_id(), Some("c\"q"));
            assert_eq!(token.certificate_thumbprint(), Some("tA"));
            assert_eq!(
                token.scopes().iter().collect::<Vec<_>>(),
                ["admin", "read", "write"]
            );
            assert_eq!(
                (token.expires_at(), token.not_before()),
                (Some(4_102_444_800), Some(1))
            );
            assert_eq!(token.issued_at(), Some(2));
            assert_eq!(token.header().key_id(), Some("k1"));
            assert_eq!(token.header().token_type(), Some("JWT"));
            assert_eq!(token.claim("extra"), Some(&serde_json::json!("😀")));
        }
        assert_eq!(escaped.claims(), plain.claims());
        assert_eq!(format!("{escaped:?}"), format!("{plain:?}"));
    }
}
