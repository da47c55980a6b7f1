//! Decisions inside a handler, against the handler's own data (a document and its owner).

use std::sync::Arc;

use http::Extensions;

use super::Admission;
use crate::caller::Caller;
use crate::policy::{Context, Decision, Entities, EntityUid, PolicyEngine};
use crate::response::{DEFAULT_REALM, Denied, Renderer};

/// The guard's policy engine and the request's caller, for decisions a layer cannot make
/// because they need data the handler loads.
///
/// Under axum it is an extractor; elsewhere take it from the request extensions with
/// [`PolicyCheck::from_extensions`].
///
/// # Example
/// ```
/// use meshguard::caller::Caller;
/// use meshguard::guard::PolicyCheck;
/// use meshguard::policy::{Context, Entities, Entity, EntityUid, PolicyEngine, PolicySource};
/// use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
/// use serde_json::json;
///
/// let engine = PolicyEngine::builder(PolicySource::text(
///     r#"@id("owners-read") permit(principal, action == Action::"read", resource)
///        when { resource.owner == principal };"#,
/// ))
/// .build()?;
/// # let secret = b"demo-secret-that-is-at-least-32-bytes!";
/// # let token = TokenSigner::new(Algorithm::HS256, secret)?.with_kid("k1").sign(&json!({
/// #     "iss": "https://idp.example", "sub": "alice", "aud": "docs", "exp": 4_102_444_800_i64,
/// # }))?;
/// # let verifier = Verifier::builder()
/// #     .issuer(Issuer::new("https://idp.example", KeySet::hmac_secret("k1", secret)?).audience("docs"))
/// #     .build()?;
/// let caller = Caller::from_token(verifier.verify(&token)?);
/// let check = PolicyCheck::new(engine, caller);
///
/// // The handler loaded document d1, owned by alice.
/// let doc = EntityUid::new("Document", "d1")?;
/// let entity = Entity::builder(doc.clone())
///     .attribute("owner", &json!({"__entity": {"type": "User", "id": "alice"}}))?
///     .build()?;
/// let read = EntityUid::new("Action", "read")?;
/// let decision = check.authorize(&read, &doc, Entities::from_iter([entity]), Context::new());
/// assert!(decision.is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PolicyCheck {
    engine: PolicyEngine,
    caller: Caller,
    realm: Arc<str>,
    render: Renderer,
}

impl PolicyCheck {
    /// Checks for `caller` with `engine`.
    #[must_use]
    pub fn new(engine: PolicyEngine, caller: Caller) -> Self {
        Self {
            engine,
            caller,
            realm: Arc::from(DEFAULT_REALM),
            render: Renderer::default(),
        }
    }

    /// The check a guard prepared for a request: `None` unless the request was admitted
    /// by a guard with policies and has a caller.
    #[must_use]
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        let admission = extensions.get::<Admission>()?;
        Some(Self {
            engine: admission.engine()?.clone(),
            caller: extensions.get::<Caller>()?.clone(),
            realm: Arc::clone(&admission.realm),
            render: admission.render.clone(),
        })
    }

    /// The caller.
    #[must_use]
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Decides whether the caller may do `action` on `resource`, with `entities` (the
    /// resource's data and whatever else the policies read) and `context`.
    ///
    /// # Errors
    /// [`Denied`] when the policies deny; it renders as 403.
    pub fn authorize(
        &self,
        action: &EntityUid,
        resource: &EntityUid,
        entities: Entities,
        context: Context,
    ) -> Result<Decision, Denied> {
        let decision = match self
            .engine
            .request_for(&self.caller, action, resource, context)
        {
            Ok(request) => self
                .engine
                .authorize_request(request.with_entities(entities)),
            Err(error) => {
                self.engine
                    .deny_early(None, Some(action.clone()), Some(resource.clone()), error)
            }
        };
        if decision.is_allow() {
            Ok(decision)
        } else {
            Err(Denied::new(
                decision,
                Arc::clone(&self.realm),
                self.render.clone(),
            ))
        }
    }
}
