//! Per-issuer principal namespaces: the users of two token issuers can never be the same
//! Cedar principal.
//!
//! A `sub` is unique only within its issuer: `alice` at a company's identity provider and
//! `alice` at a partner's are two people. With several issuers, each is given its own
//! namespace — an entity type for its users (and roles), an id prefix, or both — and a
//! configuration where two namespaces could hold the same entity is refused.
//!
//! # Example
//! ```
//! use meshguard::policy::{IssuerNamespace, PrincipalMapping};
//!
//! let mapping = PrincipalMapping::new()
//!     .role_claim("roles")
//!     // The company's users stay `User::"<sub>"` with roles `Role::"<role>"`.
//!     .issuer("https://login.example.com", IssuerNamespace::new())
//!     // The partner's are `PartnerUser::"<sub>"` with roles `PartnerRole::"<role>"`.
//!     .issuer(
//!         "https://idp.partner.example",
//!         IssuerNamespace::new().user_type("PartnerUser").role_type("PartnerRole"),
//!     );
//! # let _ = mapping;
//! ```

/// The namespace of one issuer's principals: the entity types of its users and roles and a
/// prefix of their ids. Given to [`PrincipalMapping::issuer`](super::PrincipalMapping::issuer).
///
/// With user type `PartnerUser` and prefix `partner/`, the partner's `sub: alice` is
/// `PartnerUser::"partner/alice"` and its role `admin` is `<role type>::"partner/admin"`.
/// Roles carry the issuer's namespace too, so a partner's `admin` role is not the company's
/// `Role::"admin"` unless the static entities make it a member of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct IssuerNamespace {
    user_type: Option<String>,
    role_type: Option<String>,
    id_prefix: String,
}

/// Why a principal mapping cannot keep the principals of its issuers apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerNamespaceError {
    /// Two issuers' users or roles could be the same entity.
    #[error(
        "issuers `{first}` and `{second}` would share principals: give each its own \
         namespace (entity type or id prefix) with `PrincipalMapping::issuer`"
    )]
    Shared {
        /// The issuer configured first.
        first: String,
        /// The issuer configured second.
        second: String,
    },
    /// An issuer the verifier accepts has no namespace, while others have one.
    #[error("issuer `{issuer}` has no principal namespace in the principal mapping")]
    Unmapped {
        /// The issuer.
        issuer: String,
    },
    /// An issuer was given two namespaces.
    #[error("issuer `{issuer}` is given a principal namespace twice")]
    Duplicate {
        /// The issuer.
        issuer: String,
    },
    /// An issuer's users or roles could be the same entity as a workload principal.
    #[error("principals of issuer `{issuer}` could equal workload principals")]
    Workload {
        /// The issuer.
        issuer: String,
    },
    /// Per-issuer namespaces were configured for a verifier that accepts any `iss`, whose
    /// keys could then pick any namespace.
    #[error("per-issuer principal namespaces need named issuers, not `Issuer::any`")]
    AnyIssuer,
}

impl IssuerNamespaceError {
    /// A short, stable, machine-readable name of the error.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Shared { .. } => "shared_namespace",
            Self::Unmapped { .. } => "unmapped_issuer",
            Self::Duplicate { .. } => "duplicate_issuer",
            Self::Workload { .. } => "workload_namespace",
            Self::AnyIssuer => "any_issuer",
        }
    }
}

impl IssuerNamespace {
    /// The mapping's user and role types, ids unprefixed: the namespace of single-issuer
    /// mappings, for one issuer of several.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entity type of this issuer's users. Defaults to the mapping's
    /// [`user_type`](super::PrincipalMapping::user_type).
    pub fn user_type(mut self, type_name: &str) -> Self {
        self.user_type = Some(type_name.to_owned());
        self
    }

    /// The entity type of this issuer's roles. Defaults to the mapping's
    /// [`role_type`](super::PrincipalMapping::role_type).
    pub fn role_type(mut self, type_name: &str) -> Self {
        self.role_type = Some(type_name.to_owned());
        self
    }

    /// A prefix of the ids of this issuer's users and roles, such as `partner/`. Defaults
    /// to none.
    pub fn id_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.id_prefix);
        self
    }

    /// This namespace with the mapping's types filled in.
    pub(crate) fn resolve<'a>(&'a self, user_type: &'a str, role_type: &'a str) -> Space<'a> {
        Space {
            user_type: self.user_type.as_deref().unwrap_or(user_type),
            role_type: self.role_type.as_deref().unwrap_or(role_type),
            prefix: &self.id_prefix,
        }
    }
}

/// Where one issuer's principals live: every user is `<user_type>::"<prefix><id>"` and
/// every role `<role_type>::"<prefix><role>"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Space<'a> {
    pub(crate) user_type: &'a str,
    pub(crate) role_type: &'a str,
    pub(crate) prefix: &'a str,
}

impl Space<'_> {
    /// Whether an entity of this space can be one of `other`'s. Roles count only when the
    /// mapping makes roles (`roles`).
    pub(crate) fn meets(&self, other: &Space<'_>, roles: bool) -> bool {
        self.ids(roles).iter().flatten().any(|(t, p)| {
            other
                .ids(roles)
                .iter()
                .flatten()
                .any(|o| ids_meet((t, p), *o))
        })
    }

    /// Whether an entity of this space can be a workload `<service_type>::"spiffe://…"`.
    pub(crate) fn meets_workloads(&self, service_type: &str, roles: bool) -> bool {
        self.ids(roles)
            .iter()
            .flatten()
            .any(|(t, p)| ids_meet((t, p), (service_type, "spiffe://")))
    }

    fn ids(&self, roles: bool) -> [Option<(&str, &str)>; 2] {
        [
            Some((self.user_type, self.prefix)),
            roles.then_some((self.role_type, self.prefix)),
        ]
    }
}

/// Two sets of ids `<type>::"<prefix>…"` meet when the types are equal and one prefix
/// starts the other: `p` and `pq` both hold `pqx`; disjoint prefixes hold no common id.
fn ids_meet((type_a, prefix_a): (&str, &str), (type_b, prefix_b): (&str, &str)) -> bool {
    type_a == type_b && (prefix_a.starts_with(prefix_b) || prefix_b.starts_with(prefix_a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space<'a>(user_type: &'a str, role_type: &'a str, prefix: &'a str) -> Space<'a> {
        Space {
            user_type,
            role_type,
            prefix,
        }
    }

    #[test]
    fn spaces_meet_on_equal_types_and_nested_prefixes() {
        let plain = space("User", "Role", "");
        assert!(plain.meets(&space("User", "R2", "p/"), false));
        assert!(space("User", "Role", "p").meets(&space("User", "R2", "p/"), false));
        assert!(!space("User", "Role", "a/").meets(&space("User", "Role", "b/"), true));
        assert!(!plain.meets(&space("Partner", "PartnerRole", ""), true));
    }

    #[test]
    fn roles_count_only_when_the_mapping_makes_roles() {
        let company = space("User", "Role", "");
        let partner = space("PartnerUser", "Role", "");
        assert!(!company.meets(&partner, false));
        assert!(company.meets(&partner, true));
        // A user type equal to another issuer's role type: `principal in Role::"x"` would
        // hold for that issuer's user `x`.
        assert!(company.meets(&space("Role", "Other", ""), true));
    }

    #[test]
    fn workload_ids_are_spiffe_ids_of_the_service_type() {
        assert!(space("Service", "Role", "").meets_workloads("Service", false));
        assert!(space("Service", "Role", "spiffe://x").meets_workloads("Service", false));
        assert!(!space("Service", "Role", "user:").meets_workloads("Service", false));
        assert!(!space("User", "Role", "").meets_workloads("Service", false));
        assert!(space("User", "Service", "").meets_workloads("Service", true));
    }
}
