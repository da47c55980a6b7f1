//! The application's entities for a request, supplied through [`EntityProvider`].

use std::future::{Future, poll_fn, ready};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::Poll;

use super::engine::Request;
use super::values::Entities;

/// The error type of an [`EntityProvider`].
pub type ProviderError = Box<dyn std::error::Error + Send + Sync>;

/// Supplies the entities a request needs that the engine cannot know: typically the resource
/// with its attributes (a document and its owner) loaded from the service's own store.
///
/// It is called once per request by [`PolicyEngine::authorize_with`](super::PolicyEngine::authorize_with);
/// its entities are added to the static ones for that request only. An error denies the
/// request, and so does a panic: the engine catches it (while the provider is called and
/// while its future is polled), so that one faulty lookup costs that request, not the
/// connection or the worker. Synchronous closures `Fn(&Request) -> Result<Entities, ProviderError>` are
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

/// Asks `provider` for the entities of `request`, turning a panic of the provider (when it
/// is called or while its future runs) into an error: a provider is application code, and
/// a panic escaping into the server would drop the connection without an answer.
pub(crate) async fn entities_or_panic_error<P: EntityProvider>(
    provider: &P,
    request: &Request,
) -> Result<Entities, ProviderError> {
    // Unwind safety: after a panic the future is dropped and never polled again, and the
    // provider's own state is the application's to keep consistent, as with any panic.
    let future = match catch_unwind(AssertUnwindSafe(|| provider.entities(request))) {
        Ok(future) => future,
        Err(_) => return Err(PANICKED.into()),
    };
    let mut future = pin!(future);
    poll_fn(
        |context| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(context))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(Err(PANICKED.into())),
        },
    )
    .await
}

/// The error a panicking provider becomes; the panic's own message goes to stderr through
/// the panic hook, never into a response.
const PANICKED: &str = "the entity provider panicked";
