//! The application's entities for a request, supplied through [`EntityProvider`].

use std::future::{Future, ready};

use super::engine::Request;
use super::values::Entities;

/// The error type of an [`EntityProvider`].
pub type ProviderError = Box<dyn std::error::Error + Send + Sync>;

/// Supplies the entities a request needs that the engine cannot know: typically the resource
/// with its attributes (a document and its owner) loaded from the service's own store.
///
/// It is called once per request by [`PolicyEngine::authorize_with`](super::PolicyEngine::authorize_with);
/// its entities are added to the static ones for that request only. An error denies the
/// request. Synchronous closures `Fn(&Request) -> Result<Entities, ProviderError>` are
/// providers too.
///
/// # Example
/// ```
/// use meshguard::policy::{Entities, Entity, EntityProvider, EntityUid, ProviderError, Request};
/// use serde_json::json;
///
/// struct Documents;
///
/// impl EntityProvider for Documents {
///     async fn entities(&self, request: &Request) -> Result<Entities, ProviderError> {
///         // A real provider would query its database here.
///         let owner = json!({"__entity": {"type": "User", "id": "alice"}});
///         let doc = Entity::builder(request.resource().clone())
///             .attribute("owner", &owner)?
///             .build()?;
///         Ok(Entities::from_iter([doc]))
///     }
/// }
/// # let _ = Documents;
/// ```
pub trait EntityProvider: Send + Sync {
    /// The entities for `request`.
    fn entities(
        &self,
        request: &Request,
    ) -> impl Future<Output = Result<Entities, ProviderError>> + Send;
}

impl<F> EntityProvider for F
where
    F: Fn(&Request) -> Result<Entities, ProviderError> + Send + Sync,
{
    fn entities(
        &self,
        request: &Request,
    ) -> impl Future<Output = Result<Entities, ProviderError>> + Send {
        ready(self(request))
    }
}
