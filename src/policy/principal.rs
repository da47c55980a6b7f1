//! From a [`Caller`] to a Cedar principal: which entity type and id, which parents, which
//! attributes, and what goes into the context.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};

use super::error::DecisionError;
use super::issuers::{IssuerNamespace, IssuerNamespaceError, Space};
use super::values::{Entity, EntityUid, restricted};
use crate::caller::Caller;
use crate::token::VerifiedToken;

/// How a [`Caller`] becomes the principal of a Cedar request.
///
/// For a user (a verified token): the principal is `<user type>::"<id claim>"` (default
/// `User::"<sub>"`), its parents are `<role type>::"<value>"` for each value of the role
/// claims (default type `Role`, no role claim), chosen claims become attributes, the
/// token's scopes go into `context.scopes` as a set of strings and its `iss`, when it has
/// one, into `context.iss` as a string.
///
/// For a workload alone (an mTLS peer): the principal is `<service type>::"<SPIFFE ID>"`
/// (default `Service`) with the attribute `trust_domain`.
///
/// When both are present — a user's token carried by a calling service — the user is the
/// principal and the workload goes into `context.peer` as `{ id, trust_domain }`.
///
/// # Several issuers
///
/// A `sub` names a user only within its issuer. Tokens verified by a
/// [`Verifier`](crate::token::Verifier) with several issuers are mapped only through
/// per-issuer namespaces given with [`issuer`](Self::issuer): each issuer's users (and
/// roles) get their own entity type or id prefix, so that the principal of one issuer can
/// never equal one of another. Once any namespace is given, a token whose `iss` has none is
/// not mapped (the request is denied), and the [`GuardLayer`](crate::guard::GuardLayer) refuses to
/// build when an issuer of its verifier has no namespace or two share one (see
/// [`PolicyEngine::check_issuers`](super::PolicyEngine::check_issuers)). With a single
/// issuer and no namespace, users are `User::"<sub>"` as above.
///
/// With a schema, declare what the mapping produces, for example:
///
/// ```text
/// entity Role;
/// entity User in [Role] { email?: String };
/// entity PartnerRole;
/// entity PartnerUser in [PartnerRole];
/// entity Service { trust_domain: String };
/// action "GET /orders/{id}" appliesTo {
///     principal: [User, PartnerUser, Service], resource: Application,
///     context: {
///         scopes?: Set<String>, iss?: String,
///         peer?: { id: String, trust_domain: String }, ...
///     }
/// };
/// ```
///
/// # Example
/// ```
/// use meshguard::policy::{IssuerNamespace, PrincipalMapping};
///
/// let mapping = PrincipalMapping::new()
///     .role_claim("roles")
///     .role_claim("groups")
///     .attribute("email", "email")
///     .attribute("tenant", "https://example.com/tenant");
///
/// // Two issuers: each gets its own namespace.
/// let two = PrincipalMapping::new()
///     .issuer("https://login.example.com", IssuerNamespace::new())
///     .issuer("https://idp.partner.example", IssuerNamespace::new().user_type("PartnerUser"));
/// # let _ = (mapping, two);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PrincipalMapping {
    user_type: String,
    id_claim: String,
    role_type: String,
    role_claims: Vec<String>,
    attributes: Vec<(String, String)>,
    service_type: String,
    /// Per-issuer namespaces, by `iss`.
    namespaces: BTreeMap<String, IssuerNamespace>,
    /// Issuers given a namespace more than once: refused when the engine is built.
    duplicates: Vec<String>,
}

/// What a user's token alone makes of its principal; kept with the token (see
/// [`VerifiedToken::derived`]).
#[derive(Debug)]
struct UserPrincipal {
    uid: EntityUid,
    entity: Entity,
    /// `context.scopes`.
    scopes: Value,
    /// `context.iss`, when the token has one.
    issuer: Option<Value>,
}

/// The principal of one request, with what it adds to the request.
#[derive(Debug)]
pub(crate) struct MappedPrincipal {
    pub(crate) uid: EntityUid,
    pub(crate) entity: Entity,
    pub(crate) context: Map<String, Value>,
}

impl PrincipalMapping {
    /// The defaults: users are `User::"<sub>"` with no parents and no attributes; workloads
    /// are `Service::"<SPIFFE ID>"`.
    pub fn new() -> Self {
        Self {
            user_type: "User".to_owned(),
            id_claim: "sub".to_owned(),
            role_type: "Role".to_owned(),
            role_claims: Vec::new(),
            attributes: Vec::new(),
            service_type: "Service".to_owned(),
            namespaces: BTreeMap::new(),
            duplicates: Vec::new(),
        }
    }

    /// The entity type of users. Defaults to `User`.
    pub fn user_type(mut self, type_name: &str) -> Self {
        type_name.clone_into(&mut self.user_type);
        self
    }

    /// The claim holding the user's id, a string. Defaults to `sub`.
    pub fn id_claim(mut self, claim: &str) -> Self {
        claim.clone_into(&mut self.id_claim);
        self
    }

    /// The entity type of roles and groups. Defaults to `Role`.
    pub fn role_type(mut self, type_name: &str) -> Self {
        type_name.clone_into(&mut self.role_type);
        self
    }

    /// A claim (a string or an array of strings, such as `roles` or `groups`) whose values
    /// become the user's parents, so that `principal in Role::"admin"` holds. May be given
    /// several times. Defaults to none.
    pub fn role_claim(mut self, claim: &str) -> Self {
        self.role_claims.push(claim.to_owned());
        self
    }

    /// Copies the claim `claim` into the user's attribute `attribute` (strings, booleans,
    /// integers, arrays as sets, objects as records). A token without the claim yields no
    /// attribute, so policies test it with `has`. Defaults to none.
    pub fn attribute(mut self, attribute: &str, claim: &str) -> Self {
        self.attributes
            .push((attribute.to_owned(), claim.to_owned()));
        self
    }

    /// The entity type of workloads. Defaults to `Service`.
    pub fn service_type(mut self, type_name: &str) -> Self {
        type_name.clone_into(&mut self.service_type);
        self
    }

    /// Gives the users and roles of tokens whose `iss` is `issuer` their own namespace.
    ///
    /// Once one issuer has a namespace, tokens of issuers without one are not mapped (the
    /// request is denied). Two issuers whose namespaces could hold the same user or role
    /// (same entity type, and one id prefix starting the other), or a namespace that could
    /// hold a workload `<service type>::"spiffe://…"`, are refused when the engine is built.
    /// Defaults to none: tokens of a single issuer map to `<user type>::"<id>"`.
    pub fn issuer(mut self, issuer: &str, namespace: IssuerNamespace) -> Self {
        if self
            .namespaces
            .insert(issuer.to_owned(), namespace)
            .is_some()
        {
            self.duplicates.push(issuer.to_owned());
        }
        self
    }

    /// Checks that the configured namespaces keep their issuers apart.
    pub(crate) fn validate(&self) -> Result<(), IssuerNamespaceError> {
        if let Some(issuer) = self.duplicates.first() {
            return Err(IssuerNamespaceError::Duplicate {
                issuer: issuer.clone(),
            });
        }
        let spaces: Vec<_> = self
            .namespaces
            .iter()
            .map(|(issuer, namespace)| (issuer.as_str(), self.space_of(namespace)))
            .collect();
        self.check_disjoint(&spaces)
    }

    /// Checks that tokens of `issuers` (the `iss` of each issuer a verifier accepts, `None`
    /// for any) map to principals that no other of them can have.
    pub(crate) fn check_issuers<'a>(
        &self,
        issuers: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Result<(), IssuerNamespaceError> {
        let issuers: Vec<Option<&str>> = issuers.into_iter().collect();
        if self.namespaces.is_empty() {
            return match issuers.as_slice() {
                [first, second, ..] => Err(IssuerNamespaceError::Shared {
                    first: first.unwrap_or_default().to_owned(),
                    second: second.unwrap_or_default().to_owned(),
                }),
                _ => Ok(()),
            };
        }
        let mut spaces = Vec::with_capacity(issuers.len());
        for issuer in issuers {
            let issuer = issuer.ok_or(IssuerNamespaceError::AnyIssuer)?;
            let namespace =
                self.namespaces
                    .get(issuer)
                    .ok_or_else(|| IssuerNamespaceError::Unmapped {
                        issuer: issuer.to_owned(),
                    })?;
            spaces.push((issuer, self.space_of(namespace)));
        }
        self.check_disjoint(&spaces)
    }

    fn check_disjoint(&self, spaces: &[(&str, Space<'_>)]) -> Result<(), IssuerNamespaceError> {
        let roles = !self.role_claims.is_empty();
        for (index, (issuer, space)) in spaces.iter().enumerate() {
            if space.meets_workloads(&self.service_type, roles) {
                return Err(IssuerNamespaceError::Workload {
                    issuer: (*issuer).to_owned(),
                });
            }
            let mut earlier = spaces.iter().take(index);
            if let Some((first, _)) = earlier.find(|(_, s)| s.meets(space, roles)) {
                return Err(IssuerNamespaceError::Shared {
                    first: (*first).to_owned(),
                    second: (*issuer).to_owned(),
                });
            }
        }
        Ok(())
    }

    fn space_of<'a>(&'a self, namespace: &'a IssuerNamespace) -> Space<'a> {
        namespace.resolve(&self.user_type, &self.role_type)
    }

    /// The namespace of `token`'s principal.
    fn space_for(&self, token: &VerifiedToken) -> Result<Space<'_>, DecisionError> {
        if self.namespaces.is_empty() {
            if token.is_from_several_issuers() {
                return Err(principal_error(
                    "tokens of several issuers need per-issuer principal namespaces",
                ));
            }
            return Ok(Space {
                user_type: &self.user_type,
                role_type: &self.role_type,
                prefix: "",
            });
        }
        let Some(issuer) = token.issuer() else {
            return Err(principal_error(
                "the token has no `iss` to pick a principal namespace",
            ));
        };
        let namespace = self.namespaces.get(issuer).ok_or_else(|| {
            principal_error(&format!("issuer `{issuer}` has no principal namespace"))
        })?;
        Ok(self.space_of(namespace))
    }

    /// Maps a caller. `owner` identifies this mapping among all the mappings of the process
    /// (see [`VerifiedToken::derived`]): the part of a user's principal that comes from the
    /// token alone is made once per token and reused by every request that brings it.
    pub(crate) fn map(
        &self,
        caller: &Caller,
        owner: u64,
    ) -> Result<MappedPrincipal, DecisionError> {
        let mut context = Map::new();
        let peer = caller
            .workload()
            .and_then(|w| w.spiffe_id().zip(w.trust_domain()));
        let Some(token) = caller.user() else {
            let (id, trust_domain) =
                peer.ok_or_else(|| principal_error("workload has no SPIFFE ID"))?;
            let uid = EntityUid::new(&self.service_type, id).map_err(to_principal_error)?;
            let entity = Entity::builder(uid.clone())
                .attribute("trust_domain", &json!(trust_domain))
                .and_then(super::values::EntityBuilder::build)
                .map_err(to_principal_error)?;
            return Ok(MappedPrincipal {
                uid,
                entity,
                context,
            });
        };
        let user = token.derived(owner, || self.user(token))?;
        context.insert("scopes".to_owned(), user.scopes.clone());
        if let Some(issuer) = &user.issuer {
            context.insert("iss".to_owned(), issuer.clone());
        }
        if let Some((id, trust_domain)) = peer {
            context.insert(
                "peer".to_owned(),
                json!({"id": id, "trust_domain": trust_domain}),
            );
        }
        Ok(MappedPrincipal {
            uid: user.uid.clone(),
            entity: user.entity.clone(),
            context,
        })
    }

    /// The principal of a user, from its token alone.
    fn user(&self, token: &VerifiedToken) -> Result<UserPrincipal, DecisionError> {
        let id = token
            .claim(&self.id_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                principal_error(&format!("token has no string claim `{}`", self.id_claim))
            })?;
        let space = self.space_for(token)?;
        let uid = EntityUid::new(space.user_type, &prefixed(space.prefix, id))
            .map_err(to_principal_error)?;
        let mut builder = Entity::builder(uid.clone());
        let mut roles = HashSet::new();
        for claim in &self.role_claims {
            match token.claim(claim) {
                None => {}
                Some(Value::String(role)) => {
                    roles.insert(role.as_str());
                }
                Some(Value::Array(values)) => {
                    for value in values {
                        let role = value.as_str().ok_or_else(|| {
                            principal_error(&format!("claim `{claim}` holds a non-string role"))
                        })?;
                        roles.insert(role);
                    }
                }
                Some(_) => {
                    return Err(principal_error(&format!(
                        "claim `{claim}` is neither a string nor an array of strings"
                    )));
                }
            }
        }
        for role in roles {
            let role = EntityUid::new(space.role_type, &prefixed(space.prefix, role))
                .map_err(to_principal_error)?;
            builder = builder.parent(role);
        }
        for (attribute, claim) in &self.attributes {
            if let Some(value) = token.claim(claim) {
                let expression = restricted(value, claim, 0).map_err(to_principal_error)?;
                builder = builder.cedar_attribute(attribute, expression);
            }
        }
        let entity = builder.build().map_err(to_principal_error)?;
        Ok(UserPrincipal {
            uid,
            entity,
            scopes: Value::Array(token.scopes().iter().map(|s| json!(s)).collect()),
            issuer: token.issuer().map(|issuer| json!(issuer)),
        })
    }
}

impl Default for PrincipalMapping {
    fn default() -> Self {
        Self::new()
    }
}

/// `id` in a namespace with `prefix`; borrowed when there is no prefix.
fn prefixed<'a>(prefix: &str, id: &'a str) -> Cow<'a, str> {
    if prefix.is_empty() {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(format!("{prefix}{id}"))
    }
}

fn principal_error(message: &str) -> DecisionError {
    DecisionError::Principal {
        message: message.to_owned(),
    }
}

fn to_principal_error(error: super::error::EntityError) -> DecisionError {
    principal_error(&error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};

    /// TEST-ONLY secret.
    const SECRET: &[u8] = b"principal-test-secret-of-32-bytes-or-more";

    fn token() -> VerifiedToken {
        let signed = TokenSigner::new(Algorithm::HS256, SECRET)
            .unwrap()
            .with_kid("k1")
            .sign(
                &json!({"iss": "https://idp.test", "sub": "alice", "exp": 4_102_444_800_i64,
                "scope": "a b", "roles": ["reader", "writer"]}),
            )
            .unwrap();
        Verifier::builder()
            .issuer(
                Issuer::new(
                    "https://idp.test",
                    KeySet::hmac_secret("k1", SECRET).unwrap(),
                )
                .allow_any_audience(),
            )
            .build()
            .unwrap()
            .verify(&signed)
            .unwrap()
    }

    #[test]
    fn a_token_is_mapped_once_per_owner() {
        let mapping = PrincipalMapping::new().role_claim("roles");
        let token = token();
        let caller = Caller::from_token(token.clone());
        let first = mapping.map(&caller, 7).unwrap();
        // The token now holds the principal for owner 7: it is not made again.
        let kept = token
            .derived::<UserPrincipal, DecisionError>(7, || Err(principal_error("made again")))
            .unwrap();
        assert_eq!(kept.uid, first.uid);
        let again = mapping.map(&caller, 7).unwrap();
        assert_eq!(again.uid, first.uid);
        assert_eq!(again.entity.as_cedar(), first.entity.as_cedar());
        assert_eq!(again.context, first.context);
        assert_eq!(first.context["scopes"], json!(["a", "b"]));
        assert_eq!(first.context["iss"], json!("https://idp.test"));
        // Any other owner gets its own mapping, made on each call.
        let other = token.derived::<UserPrincipal, DecisionError>(8, || {
            Err(principal_error("made for another owner"))
        });
        assert!(other.is_err());
        let members = PrincipalMapping::new().user_type("Member");
        assert_eq!(
            members.map(&caller, 8).unwrap().uid.to_string(),
            r#"Member::"alice""#
        );
        assert_eq!(mapping.map(&caller, 7).unwrap().uid, first.uid);
    }

    #[test]
    fn a_failed_mapping_is_not_kept() {
        let token = token();
        let caller = Caller::from_token(token.clone());
        let by_email = PrincipalMapping::new().id_claim("email");
        assert!(by_email.map(&caller, 9).is_err());
        assert!(
            token
                .derived::<UserPrincipal, DecisionError>(9, || Err(principal_error("made")))
                .is_err()
        );
    }
}
