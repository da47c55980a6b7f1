//! The escape hatch to cedar-policy's own types, for what meshguard's wrappers do not cover:
//! entities and contexts built with cedar-policy, or a policy request handed to
//! cedar-policy directly.
//!
//! **Pinned to cedar-policy 4.x.** Everything else in [`policy`](super) wraps cedar-policy so
//! that upgrading it does not break users; these functions take and give cedar-policy's
//! types and change with its major version. Name `cedar-policy = "4"` in your own
//! `Cargo.toml` to use them.
//!
//! # Example
//!
//! ```
//! use meshguard::policy::{EntityUid, cedar};
//!
//! let alice = EntityUid::new("User", "alice")?;
//! let uid: &cedar_policy::EntityUid = cedar::entity_uid(&alice);
//! assert_eq!(cedar::from_entity_uid(uid.clone()), alice);
//! # Ok::<(), meshguard::policy::EntityError>(())
//! ```

use cedar_policy::RestrictedExpression;

use super::values::{Context, Entity, EntityBuilder, EntityUid};

/// The cedar-policy uid inside `uid`.
#[must_use]
pub fn entity_uid(uid: &EntityUid) -> &cedar_policy::EntityUid {
    uid.as_cedar()
}

/// Wraps a cedar-policy uid.
#[must_use]
pub fn from_entity_uid(uid: cedar_policy::EntityUid) -> EntityUid {
    EntityUid::from_cedar(uid)
}

/// The cedar-policy entity inside `entity`.
#[must_use]
pub fn entity(entity: &Entity) -> &cedar_policy::Entity {
    entity.as_cedar()
}

/// Wraps a cedar-policy entity.
#[must_use]
pub fn from_entity(entity: cedar_policy::Entity) -> Entity {
    Entity::from_cedar(entity)
}

/// A context from a cedar-policy context, used as is (it is still checked against the
/// schema when the request is decided). [`Context::insert`] then takes only values with a
/// Cedar equivalent and keys not set yet.
#[must_use]
pub fn from_context(context: cedar_policy::Context) -> Context {
    Context::from_cedar(context)
}

/// Sets the attribute `name` of the entity `builder` makes from a cedar-policy expression.
#[must_use]
pub fn attribute(builder: EntityBuilder, name: &str, value: RestrictedExpression) -> EntityBuilder {
    builder.cedar_attribute(name, value)
}
