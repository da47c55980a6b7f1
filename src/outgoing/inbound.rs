//! [`InboundBearer`]: the bearer token of the request being served, taken explicitly from
//! it, to forward or exchange on the calls made on its behalf.

use std::fmt;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, HeaderValue, Request};
use ring::digest::{SHA256, digest};
use zeroize::Zeroizing;

use super::error::OutgoingError;
use crate::token::VerifiedToken;
use crate::token::bearer::from_headers;

/// The inbound request's bearer token, after meshguard verified it.
///
/// Made only from an inbound request that meshguard's guard or `AuthenticationLayer`
/// admitted, and carried to an outgoing request by the caller: insert it into the outgoing
/// request's extensions (or pass it to [`TokenExchanger::authorization`](super::TokenExchanger::authorization)).
/// Nothing is taken from ambient state, so a token cannot leak into calls made for another
/// request. `Debug` never shows the token.
///
/// # Example
///
/// ```
/// use http::Request;
/// use meshguard::outgoing::InboundBearer;
///
/// // Outside a guard, nothing was verified: nothing is passed on.
/// let inbound = Request::builder()
///     .header("authorization", "Bearer abc.def.ghi")
///     .body(())?;
/// assert_eq!(
///     InboundBearer::from_request(&inbound).unwrap_err().reason(),
///     "inbound_not_verified"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct InboundBearer {
    /// Shared: a clone per outgoing request costs a reference count.
    inner: Arc<Inner>,
}

struct Inner {
    header: HeaderValue,
    /// `Bearer ` stripped: the token itself, for a token exchange's `subject_token`.
    token: Arc<Zeroizing<String>>,
    /// The SHA-256 of the token, the token exchange cache's key: made when first needed,
    /// so that forwarding never hashes.
    hash: OnceLock<[u8; 32]>,
    expires_at: Option<i64>,
}

impl InboundBearer {
    /// The bearer token of `request`, an inbound request meshguard admitted.
    ///
    /// # Errors
    ///
    /// As [`from_parts`](Self::from_parts).
    pub fn from_request<B>(request: &Request<B>) -> Result<Self, OutgoingError> {
        InboundBearer::from_parts(request.headers(), request.extensions())
    }

    /// The bearer token in `headers`, when `extensions` hold the [`VerifiedToken`]
    /// meshguard made of it.
    ///
    /// # Errors
    ///
    /// [`OutgoingError::InboundNotVerified`] without a `VerifiedToken`;
    /// [`OutgoingError::InboundDpopBound`] for `Authorization: DPoP` or a token bound to a
    /// DPoP key (`cnf.jkt`); [`OutgoingError::InboundNotBearer`] when `Authorization` holds
    /// no single bearer token, or (for a JWT) not the one that was verified.
    pub fn from_parts(headers: &HeaderMap, extensions: &Extensions) -> Result<Self, OutgoingError> {
        let verified = extensions
            .get::<VerifiedToken>()
            .ok_or(OutgoingError::InboundNotVerified)?;
        let dpop_scheme = headers.get_all(AUTHORIZATION).iter().any(|value| {
            value
                .as_bytes()
                .get(..5)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"dpop "))
        });
        if dpop_scheme || verified.dpop_thumbprint().is_some() {
            return Err(OutgoingError::InboundDpopBound);
        }
        let token = from_headers(headers).map_err(|_| OutgoingError::InboundNotBearer)?;
        if !is_the_verified(token, verified) {
            return Err(OutgoingError::InboundNotBearer);
        }
        let mut header = HeaderValue::from_str(&Zeroizing::new(format!("Bearer {token}")))
            .map_err(|_| OutgoingError::InboundNotBearer)?;
        header.set_sensitive(true);
        Ok(InboundBearer {
            inner: Arc::new(Inner {
                header,
                token: Arc::new(Zeroizing::new(token.to_owned())),
                hash: OnceLock::new(),
                expires_at: verified.expires_at(),
            }),
        })
    }

    /// The `Authorization` value that forwards the token (`Bearer …`, marked sensitive).
    pub fn authorization(&self) -> &HeaderValue {
        &self.inner.header
    }

    /// The SHA-256 of the token.
    pub(crate) fn hash(&self) -> &[u8; 32] {
        self.inner.hash.get_or_init(|| {
            let mut hash = [0; 32];
            hash.copy_from_slice(digest(&SHA256, self.inner.token.as_bytes()).as_ref());
            hash
        })
    }

    pub(crate) fn token(&self) -> &Arc<Zeroizing<String>> {
        &self.inner.token
    }

    /// The token's `exp`, when it has one: nothing obtained for it outlives it.
    pub(crate) fn expires_at(&self) -> Option<i64> {
        self.inner.expires_at
    }
}

impl fmt::Debug for InboundBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundBearer")
            .field("token", &"<redacted>")
            .field("expires_at", &self.inner.expires_at)
            .finish()
    }
}

/// Whether `token` is the token `verified` was made of. For a JWT the payload is compared
/// with the verified claims: a guard that read its token from a cookie leaves whatever the
/// client put in `Authorization`, which must not be passed on as verified. An introspected
/// (opaque) token keeps no trace of itself; the guard refuses requests with a token in more
/// than one place, so the `Authorization` token is the one it introspected.
fn is_the_verified(token: &str, verified: &VerifiedToken) -> bool {
    if verified.header().algorithm().is_none() {
        return true;
    }
    let mut segments = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(payload)
        .is_ok_and(|claims| claims == verified.claims_json())
}
