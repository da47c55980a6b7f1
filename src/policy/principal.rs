//! From a [`Caller`] to a Cedar principal: which entity type and id, which parents, which
//! attributes, and what goes into the context.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::error::DecisionError;
use super::values::{Entity, EntityUid, restricted};
use crate::caller::Caller;

/// How a [`Caller`] becomes the principal of a Cedar request.
///
/// For a user (a verified token): the principal is `<user type>::"<id claim>"` (default
/// `User::"<sub>"`), its parents are `<role type>::"<value>"` for each value of the role
/// claims (default type `Role`, no role claim), chosen claims become attributes, and the
/// token's scopes go into `context.scopes` as a set of strings.
///
/// For a workload alone (an mTLS peer): the principal is `<service type>::"<SPIFFE ID>"`
/// (default `Service`) with the attribute `trust_domain`.
///
/// When both are present — a user's token carried by a calling service — the user is the
/// principal and the workload goes into `context.peer` as `{ id, trust_domain }`.
///
/// With a schema, declare what the mapping produces, for example:
///
/// ```text
/// entity Role;
/// entity User in [Role] { email?: String };
/// entity Service { trust_domain: String };
/// action "GET /orders/{id}" appliesTo {
///     principal: [User, Service], resource: Application,
///     context: { scopes?: Set<String>, peer?: { id: String, trust_domain: String }, ... }
/// };
/// ```
///
/// # Example
/// ```
/// use meshguard::policy::PrincipalMapping;
///
/// let mapping = PrincipalMapping::new()
///     .role_claim("roles")
///     .role_claim("groups")
///     .attribute("email", "email")
///     .attribute("tenant", "https://example.com/tenant");
/// # let _ = mapping;
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

    /// Maps a caller.
    pub(crate) fn map(&self, caller: &Caller) -> Result<MappedPrincipal, DecisionError> {
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
        let id = token
            .claim(&self.id_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                principal_error(&format!("token has no string claim `{}`", self.id_claim))
            })?;
        let uid = EntityUid::new(&self.user_type, id).map_err(to_principal_error)?;
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
            builder =
                builder.parent(EntityUid::new(&self.role_type, role).map_err(to_principal_error)?);
        }
        for (attribute, claim) in &self.attributes {
            if let Some(value) = token.claim(claim) {
                let expression = restricted(value, claim, 0).map_err(to_principal_error)?;
                builder = builder.cedar_attribute(attribute, expression);
            }
        }
        let entity = builder.build().map_err(to_principal_error)?;
        context.insert(
            "scopes".to_owned(),
            Value::Array(token.scopes().iter().map(|s| json!(s)).collect()),
        );
        if let Some((id, trust_domain)) = peer {
            context.insert(
                "peer".to_owned(),
                json!({"id": id, "trust_domain": trust_domain}),
            );
        }
        Ok(MappedPrincipal {
            uid,
            entity,
            context,
        })
    }
}

impl Default for PrincipalMapping {
    fn default() -> Self {
        Self::new()
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
