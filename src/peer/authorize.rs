//! Authorizers deciding which SPIFFE IDs may call, as go-spiffe's `tlsconfig` ones do.

use http::StatusCode;

use super::identity::PeerIdentity;
use super::spiffe::{SpiffeId, SpiffeIdError, TrustDomain, validate_path};
use crate::response::{Refusal, Stage};

/// Why an authorizer refused a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The peer has no SPIFFE ID, so no SPIFFE authorizer can accept it.
    #[error("peer has no SPIFFE ID")]
    NoSpiffeId,
    /// The peer's SPIFFE ID is not allowed.
    #[error("SPIFFE ID `{0}` is not authorized")]
    Unauthorized(SpiffeId),
}

impl AuthorizeError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoSpiffeId => "no_spiffe_id",
            Self::Unauthorized(_) => "unauthorized_id",
        }
    }

    /// How the request is answered: 403 (gRPC PERMISSION_DENIED) without a bearer
    /// challenge.
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        Refusal::new(
            Stage::Peer,
            StatusCode::FORBIDDEN,
            self.reason(),
            "the calling workload is not allowed",
        )
    }
}

/// Decides whether a peer's SPIFFE ID may call.
///
/// Comparisons are on parsed IDs and trust domains, exactly: no prefix matching on text,
/// so `member_of(example.org)` refuses `spiffe://example.org.evil/x`. Rules compose with
/// [`and`](Self::and) and [`or`](Self::or). A peer without SPIFFE ID is always refused.
///
/// # Example
///
/// ```
/// use meshguard::peer::{Authorizer, SpiffeId, TrustDomain};
///
/// let prod = TrustDomain::new("prod.example.org")?;
/// let authz = Authorizer::member_of(prod.clone())
///     .and(Authorizer::path_prefix(prod, "/ns/payments")?)
///     .or(Authorizer::id("spiffe://ops.example.org/oncall".parse()?));
///
/// let ok: SpiffeId = "spiffe://prod.example.org/ns/payments/sa/api".parse()?;
/// let other: SpiffeId = "spiffe://prod.example.org/ns/paymentsx/sa/api".parse()?;
/// assert!(authz.authorize_id(&ok).is_ok());
/// assert!(authz.authorize_id(&other).is_err());
/// # Ok::<(), meshguard::peer::SpiffeIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    rule: Rule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Any,
    OneOf(Vec<SpiffeId>),
    MemberOf(Vec<TrustDomain>),
    PathPrefix {
        trust_domain: TrustDomain,
        prefix: Box<str>,
    },
    All(Vec<Authorizer>),
    AnyOf(Vec<Authorizer>),
}

impl Authorizer {
    /// Accepts any peer that has a SPIFFE ID (go-spiffe `AuthorizeAny`).
    pub fn any() -> Self {
        Self { rule: Rule::Any }
    }

    /// Accepts exactly `id` (go-spiffe `AuthorizeID`).
    pub fn id(id: SpiffeId) -> Self {
        Self::one_of([id])
    }

    /// Accepts any of `ids` (go-spiffe `AuthorizeOneOf`); an empty list accepts nobody.
    pub fn one_of(ids: impl IntoIterator<Item = SpiffeId>) -> Self {
        Self {
            rule: Rule::OneOf(ids.into_iter().collect()),
        }
    }

    /// Accepts any ID in `trust_domain` (go-spiffe `AuthorizeMemberOf`).
    pub fn member_of(trust_domain: TrustDomain) -> Self {
        Self::member_of_any([trust_domain])
    }

    /// Accepts any ID in one of `trust_domains`; an empty list accepts nobody.
    pub fn member_of_any(trust_domains: impl IntoIterator<Item = TrustDomain>) -> Self {
        Self {
            rule: Rule::MemberOf(trust_domains.into_iter().collect()),
        }
    }

    /// Accepts IDs in `trust_domain` whose path is `prefix` or lies under it, segment-wise:
    /// `/ns/prod` accepts `/ns/prod` and `/ns/prod/sa/web`, not `/ns/production`.
    ///
    /// # Errors
    ///
    /// Returns a [`SpiffeIdError`] when `prefix` is not a valid, non-empty SPIFFE ID path.
    pub fn path_prefix(trust_domain: TrustDomain, prefix: &str) -> Result<Self, SpiffeIdError> {
        if prefix.is_empty() {
            return Err(SpiffeIdError::MissingPath);
        }
        if !prefix.starts_with('/') {
            return Err(SpiffeIdError::NoLeadingSlash);
        }
        validate_path(prefix)?;
        Ok(Self {
            rule: Rule::PathPrefix {
                trust_domain,
                prefix: prefix.into(),
            },
        })
    }

    /// Accepts only what both `self` and `other` accept.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self {
            rule: Rule::All(vec![self, other]),
        }
    }

    /// Accepts what either `self` or `other` accepts.
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        Self {
            rule: Rule::AnyOf(vec![self, other]),
        }
    }

    /// Decides for a peer.
    ///
    /// # Errors
    ///
    /// [`AuthorizeError::NoSpiffeId`] when the peer has no SPIFFE ID,
    /// [`AuthorizeError::Unauthorized`] when its ID is not accepted.
    pub fn authorize(&self, peer: &PeerIdentity) -> Result<(), AuthorizeError> {
        let id = peer.spiffe_id().ok_or(AuthorizeError::NoSpiffeId)?;
        self.authorize_id(id)
    }

    /// Decides for a SPIFFE ID.
    ///
    /// # Errors
    ///
    /// [`AuthorizeError::Unauthorized`] when `id` is not accepted.
    pub fn authorize_id(&self, id: &SpiffeId) -> Result<(), AuthorizeError> {
        if self.accepts(id) {
            Ok(())
        } else {
            Err(AuthorizeError::Unauthorized(id.clone()))
        }
    }

    /// Whether this accepts every SPIFFE ID: [`any`](Self::any), alone or as a branch of
    /// [`or`](Self::or), or on both sides of [`and`](Self::and). The calling side refuses
    /// it, where it would let any trusted workload pose as the server.
    #[cfg(feature = "rustls")]
    pub(crate) fn is_unrestricted(&self) -> bool {
        match &self.rule {
            Rule::Any => true,
            Rule::OneOf(_) | Rule::MemberOf(_) | Rule::PathPrefix { .. } => false,
            Rule::All(all) => all.iter().all(Self::is_unrestricted),
            Rule::AnyOf(any) => any.iter().any(Self::is_unrestricted),
        }
    }

    fn accepts(&self, id: &SpiffeId) -> bool {
        match &self.rule {
            Rule::Any => true,
            Rule::OneOf(ids) => ids.contains(id),
            Rule::MemberOf(tds) => tds.iter().any(|td| id.is_member_of(td)),
            Rule::PathPrefix {
                trust_domain,
                prefix,
            } => {
                id.is_member_of(trust_domain)
                    && id
                        .path()
                        .strip_prefix(&**prefix)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            Rule::All(all) => all.iter().all(|a| a.accepts(id)),
            Rule::AnyOf(any) => any.iter().any(|a| a.accepts(id)),
        }
    }
}
