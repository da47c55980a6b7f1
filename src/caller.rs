//! The identity that travels with a request: the user behind a verified access token, the
//! calling workload (an mTLS peer, or the subject of a verified JWT-SVID), or both — a
//! user's token carried by a calling service.
//!
//! A [`Caller`] is only made from identities that were verified: a
//! [`VerifiedToken`] and/or a workload identity. The policy engine
//! turns it into a Cedar principal (see [`PrincipalMapping`](crate::policy::PrincipalMapping)).
//!
//! # Example
//! ```
//! use meshguard::caller::Caller;
//! use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
//! use serde_json::json;
//!
//! let secret = b"demo-secret-that-is-at-least-32-bytes!";
//! let token = TokenSigner::new(Algorithm::HS256, secret)?.with_kid("k1").sign(&json!({
//!     "iss": "https://idp.example", "sub": "alice", "aud": "orders", "exp": 4_102_444_800_i64,
//! }))?;
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::new("https://idp.example", KeySet::hmac_secret("k1", secret)?).audience("orders"))
//!     .build()?;
//! let caller = Caller::from_token(verifier.verify(&token)?);
//! assert_eq!(caller.user().and_then(|t| t.subject()), Some("alice"));
//! assert!(caller.workload().is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use crate::peer::{PeerIdentity, SpiffeId};
use crate::token::VerifiedToken;

/// Who is calling: a user, a workload, or a user through a workload.
#[derive(Debug, Clone)]
pub struct Caller {
    user: Option<Arc<VerifiedToken>>,
    workload: Option<Arc<dyn WorkloadIdentity>>,
}

impl Caller {
    /// A caller identified by a verified access token.
    #[must_use]
    pub fn from_token(token: VerifiedToken) -> Self {
        Self {
            user: Some(Arc::new(token)),
            workload: None,
        }
    }

    /// A workload identified by its certificate or by a verified JWT-SVID
    /// ([`VerifiedJwtSvid`](crate::token::jwt_svid::VerifiedJwtSvid)), with no user token.
    #[must_use]
    pub fn from_workload(workload: impl WorkloadIdentity + 'static) -> Self {
        Self {
            user: None,
            workload: Some(Arc::new(workload)),
        }
    }

    /// A user's token carried by a calling workload.
    #[must_use]
    pub fn from_token_via(token: VerifiedToken, workload: impl WorkloadIdentity + 'static) -> Self {
        Self {
            user: Some(Arc::new(token)),
            workload: Some(Arc::new(workload)),
        }
    }

    /// A caller from what the identity layers found: `None` when neither a token nor a
    /// workload identity is known.
    pub(crate) fn from_parts(
        user: Option<VerifiedToken>,
        workload: Option<Arc<dyn WorkloadIdentity>>,
    ) -> Option<Self> {
        if user.is_none() && workload.is_none() {
            return None;
        }
        Some(Self {
            user: user.map(Arc::new),
            workload,
        })
    }

    /// A short name for logs: the token's subject, else the workload's SPIFFE ID.
    pub(crate) fn display_name(&self) -> Option<&str> {
        self.user()
            .and_then(VerifiedToken::subject)
            .or_else(|| self.workload().and_then(WorkloadIdentity::spiffe_id))
    }

    /// The user's verified token, when there is one.
    #[must_use]
    pub fn user(&self) -> Option<&VerifiedToken> {
        self.user.as_deref()
    }

    /// The calling workload, when known.
    #[must_use]
    pub fn workload(&self) -> Option<&dyn WorkloadIdentity> {
        self.workload.as_deref()
    }
}

/// A calling workload's verified identity, as policies need it: its SPIFFE ID and trust
/// domain.
///
/// [`PeerIdentity`] and [`VerifiedJwtSvid`](crate::token::jwt_svid::VerifiedJwtSvid)
/// implement it. Implement it yourself only for identities established by a verified mTLS
/// handshake (or by a trusted proxy's forwarded certificate) or a verified SVID: the policy
/// engine trusts what it returns.
pub trait WorkloadIdentity: fmt::Debug + Send + Sync {
    /// The SPIFFE ID, such as `spiffe://example.org/ns/shop/sa/orders`; `None` when the
    /// certificate carries none.
    fn spiffe_id(&self) -> Option<&str>;

    /// The SPIFFE trust domain, such as `example.org`; `None` without a SPIFFE ID.
    fn trust_domain(&self) -> Option<&str>;
}

impl WorkloadIdentity for PeerIdentity {
    fn spiffe_id(&self) -> Option<&str> {
        PeerIdentity::spiffe_id(self).map(SpiffeId::as_str)
    }

    fn trust_domain(&self) -> Option<&str> {
        PeerIdentity::spiffe_id(self).map(|id| id.trust_domain().as_str())
    }
}
