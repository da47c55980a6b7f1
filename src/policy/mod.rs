//! Cedar policies deciding each request in-process: load, validate, decide, reload.
//!
//! A [`PolicyEngine`] holds a Cedar policy set, an optional schema that every policy is
//! validated against in strict mode at load time, and static entities. Each request is
//! decided into a [`Decision`] — allow or deny, the ids of the determining policies and any
//! errors — and leaves an audit record in `tracing`. Evaluation errors deny (see
//! [`PolicyEngine`] for how this differs from Cedar). Sets reload atomically; a broken reload
//! keeps the previous set.
//!
//! # Example
//! ```
//! use meshguard::policy::{
//!     Decision, EntityUid, EntitySource, PolicyEngine, PolicySource, Request, SchemaSource,
//! };
//!
//! let engine = PolicyEngine::builder(PolicySource::text(r#"
//!     @id("admins-delete")
//!     permit(principal in Role::"admin", action == Action::"delete", resource);
//! "#))
//! .schema(SchemaSource::cedar(r#"
//!     entity Role;
//!     entity User in [Role];
//!     entity Order;
//!     action delete appliesTo { principal: User, resource: Order };
//! "#))
//! .entities(EntitySource::json(r#"[
//!     {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Role", "id": "admin"}]},
//!     {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": []}
//! ]"#))
//! .build()?;
//!
//! let delete = |who: &str| {
//!     Request::new(
//!         EntityUid::new("User", who).unwrap(),
//!         EntityUid::new("Action", "delete").unwrap(),
//!         EntityUid::new("Order", "o-1").unwrap(),
//!     )
//! };
//! assert!(engine.authorize_request(delete("alice")).is_allow());
//! let Decision::Deny(details) = engine.authorize_request(delete("bob")) else { unreachable!() };
//! assert_eq!(details.cause().map(|c| c.as_str()), Some("no_permit"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
pub mod cedar;
mod decision;
mod decisions;
mod direct;
mod engine;
mod error;
mod http;
mod index;
mod issuers;
mod layer;
mod nesting;
mod position;
mod principal;
mod provider;
mod reach;
mod read;
mod slice;
mod source;
mod values;
mod watch;

pub use decision::{AuditRecord, Decision, DenyCause, Details, Shadow};
pub use decisions::DecisionCacheConfig;
pub use engine::{PolicyEngine, PolicyEngineBuilder, Request};
pub use error::{DecisionError, Diagnostic, DiagnosticKind, EntityError, PolicyError};
pub use http::{
    HttpInput, HttpMapping, MAX_QUERY_PARAMETERS, MAX_TARGET_BYTES, MappedRequest, MappingError,
};
pub use issuers::{IssuerNamespace, IssuerNamespaceError};
pub use layer::AuthorizationLayer;
pub use nesting::{MAX_DATA_NESTING, MAX_EXPRESSION_HEIGHT, MAX_POLICY_NESTING};
pub use principal::PrincipalMapping;
pub use provider::{EntityProvider, ProviderError};
pub use source::{EntitySource, PolicySource, SchemaSource};
pub use values::{Context, Entities, Entity, EntityBuilder, EntityUid, PolicyId};
pub use watch::{PolicyWatcher, ReloadEvent};

/// Largest policy, schema or entities source (file or text) accepted: 16 MiB.
pub const MAX_SOURCE_BYTES: usize = 16 * 1024 * 1024;
