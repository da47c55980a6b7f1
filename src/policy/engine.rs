//! The engine: the loaded policy set behind an atomic pointer, and the decision procedure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use cedar_policy::{ActionConstraint, Authorizer, PolicySet, Schema};

use super::decision::{Decision, DenyCause, Details, Shadow};
use super::error::{DecisionError, PolicyError};
use super::issuers::IssuerNamespaceError;
use super::principal::PrincipalMapping;
use super::provider::{EntityProvider, entities_or_panic_error};
use super::read::Texts;
use super::source::{self, EntitySource, Loaded, PolicySource, SchemaSource, Sources};
use super::values::{Context, Entities, EntityUid, PolicyId};
use crate::caller::Caller;
use crate::token::Verifier;

/// One request to decide: principal, action and resource uids, a context, and the entities
/// the request brings (its principal's entity, the resource's data) on top of the static ones.
#[derive(Debug, Clone)]
pub struct Request {
    principal: EntityUid,
    action: EntityUid,
    resource: EntityUid,
    context: Context,
    entities: Entities,
}

impl Request {
    /// A request with an empty context and no request entities.
    #[must_use]
    pub fn new(principal: EntityUid, action: EntityUid, resource: EntityUid) -> Self {
        Self {
            principal,
            action,
            resource,
            context: Context::new(),
            entities: Entities::new(),
        }
    }

    /// Sets the context.
    #[must_use]
    pub fn with_context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// Adds entities to the request.
    #[must_use]
    pub fn with_entities(mut self, entities: Entities) -> Self {
        self.entities.extend(entities);
        self
    }

    /// The principal.
    #[must_use]
    pub fn principal(&self) -> &EntityUid {
        &self.principal
    }

    /// The action.
    #[must_use]
    pub fn action(&self) -> &EntityUid {
        &self.action
    }

    /// The resource.
    #[must_use]
    pub fn resource(&self) -> &EntityUid {
        &self.resource
    }

    /// The context.
    #[must_use]
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The context, to add fields.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.context
    }
}

/// What a policy evaluation error does to the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnError {
    /// Any error denies (meshguard's default).
    Deny,
    /// The erroring policy is skipped, as Cedar does.
    Skip,
}

/// Decides requests with a Cedar policy set, optionally validated against a schema, with
/// static entities; reloadable at run time. Cloning is cheap and clones share the set.
///
/// # Evaluation errors fail closed
///
/// Cedar skips a policy whose evaluation errors, even a `forbid`, and decides with the rest:
/// a request can be allowed although a `forbid` that was meant to stop it failed. meshguard
/// denies any request whose evaluation reported an error, with [`DenyCause::Error`], unless
/// [`PolicyEngineBuilder::skip_erroring_policies`] restores Cedar's behaviour. With a schema,
/// strict validation rules out most such errors at load time.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    sources: Sources,
    on_error: OnError,
    allow_empty_reload: bool,
    principals: PrincipalMapping,
    current: ArcSwap<Snapshot>,
    reload_lock: Mutex<()>,
    authorizer: Authorizer,
    /// Tells this engine's principal mapping apart from every other engine's in the
    /// process, for what it keeps with verified tokens.
    mapping_id: u64,
}

/// The next [`Shared::mapping_id`]; never reused, so a value kept with a token for one
/// engine is never taken for another's, even after the first is dropped.
static NEXT_MAPPING_ID: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
struct Snapshot {
    generation: u64,
    policies: PolicySet,
    /// The policies split by the action their scope names, when that is possible.
    sliced: Option<Sliced>,
    shadow: Option<PolicySet>,
    schema: Option<Schema>,
    entities: cedar_policy::Entities,
}

impl Snapshot {
    fn new(loaded: Loaded, generation: u64) -> Self {
        Self {
            generation,
            sliced: Sliced::new(&loaded.policies),
            policies: loaded.policies,
            shadow: loaded.shadow,
            schema: loaded.schema,
            entities: loaded.entities,
        }
    }
}

impl Snapshot {
    /// The policies that can apply to a request for `action`.
    fn policies_for(&self, action: Option<&cedar_policy::EntityUid>) -> &PolicySet {
        match (&self.sliced, action) {
            (Some(sliced), Some(action)) => sliced.by_action.get(action).unwrap_or(&sliced.rest),
            _ => &self.policies,
        }
    }
}

/// A policy set split by action, so that a request is evaluated only against the policies
/// whose scope can match its action.
///
/// Cedar evaluates every policy of the set it is given, and a policy's scope is the first
/// conjunct of its condition: a policy scoped to `action == Action::"a"` is false, without
/// evaluating its `when`/`unless` clauses or raising errors, for any other action. Leaving it
/// out for other actions therefore changes no decision, no determining policy and no error,
/// and at a hundred policies over many actions it divides the evaluation cost. Policies
/// scoped to `action in [...]` (whose meaning depends on the action hierarchy) or to any
/// action go into every slice; sets with templates are not sliced.
#[derive(Debug)]
struct Sliced {
    by_action: HashMap<cedar_policy::EntityUid, PolicySet>,
    /// The policies that apply to any action; the set for actions no policy names.
    rest: PolicySet,
}

impl Sliced {
    fn new(policies: &PolicySet) -> Option<Self> {
        if policies.templates().next().is_some() {
            return None;
        }
        let mut named: HashMap<cedar_policy::EntityUid, Vec<&cedar_policy::Policy>> =
            HashMap::new();
        let mut rest = Vec::new();
        for policy in policies.policies() {
            if !policy.is_static() {
                return None;
            }
            match policy.action_constraint() {
                ActionConstraint::Eq(action) => named.entry(action).or_default().push(policy),
                _ => rest.push(policy),
            }
        }
        if named.is_empty() {
            return None;
        }
        let set_of = |extra: &[&cedar_policy::Policy]| -> Option<PolicySet> {
            let mut set = PolicySet::new();
            for policy in rest.iter().chain(extra) {
                set.add((*policy).clone()).ok()?;
            }
            Some(set)
        };
        let mut by_action = HashMap::with_capacity(named.len());
        for (action, own) in &named {
            by_action.insert(action.clone(), set_of(own)?);
        }
        Some(Self {
            by_action,
            rest: set_of(&[])?,
        })
    }
}

/// Configures a [`PolicyEngine`]; made by [`PolicyEngine::builder`].
#[derive(Debug)]
#[must_use]
pub struct PolicyEngineBuilder {
    sources: Sources,
    on_error: OnError,
    allow_empty_reload: bool,
    principals: PrincipalMapping,
}

impl PolicyEngineBuilder {
    /// Validates every policy against this schema in strict mode at load time (and the static
    /// and per-request entities, and each request). Defaults to no schema.
    pub fn schema(mut self, schema: SchemaSource) -> Self {
        self.sources.schema = Some(schema);
        self
    }

    /// Static entities (users, roles, role hierarchy…), loaded with the policies.
    /// Defaults to none (plus the schema's actions when there is a schema).
    pub fn entities(mut self, entities: EntitySource) -> Self {
        self.sources.entities = Some(entities);
        self
    }

    /// A candidate policy set evaluated beside the enforced one on every request. Requests
    /// where the two disagree are logged at warn level under target
    /// `meshguard::policy::shadow`; the candidate never changes a decision. Defaults to none.
    ///
    /// The candidate is loaded on its own, after the enforced set: a candidate that cannot
    /// be read, parsed or validated is dropped with a warning under the same target (until
    /// the next reload), and never fails [`build`](Self::build) or a reload.
    pub fn shadow(mut self, candidate: PolicySource) -> Self {
        self.sources.shadow = Some(candidate);
        self
    }

    /// How callers become principals in [`PolicyEngine::authorize`].
    /// Defaults to [`PrincipalMapping::new`].
    pub fn principal_mapping(mut self, mapping: PrincipalMapping) -> Self {
        self.principals = mapping;
        self
    }

    /// Lets Cedar skip a policy whose evaluation errors and decide with the remaining ones,
    /// instead of denying the request.
    ///
    /// # Security
    /// A `forbid` that errors is then ignored, so a request it was meant to stop can be
    /// allowed by a `permit`. Errors are still reported in the [`Decision`].
    /// Defaults to denying on any evaluation error.
    pub fn skip_erroring_policies(mut self) -> Self {
        self.on_error = OnError::Skip;
        self
    }

    /// Lets a reload replace a set that has policies with one that has none.
    ///
    /// # Security
    /// A set without policies denies every request. A policy file emptied by mistake, or
    /// truncated while it is rewritten, then takes the whole service down without any load
    /// error. By default such a reload is refused with [`PolicyError::NoPolicies`] (logged at
    /// warn level) and the previous set stays in force. Defaults to refusing.
    pub fn allow_empty_reload(mut self) -> Self {
        self.allow_empty_reload = true;
        self
    }

    /// Loads everything and builds the engine (generation 1).
    ///
    /// # Errors
    /// Any [`PolicyError`]: unreadable or oversized sources, and, all listed at once,
    /// policy syntax errors, duplicate ids, templates, schema errors, validation errors and
    /// invalid entities; [`PolicyError::Principals`] for per-issuer namespaces of the
    /// [`PrincipalMapping`] that do not keep their issuers apart.
    pub fn build(self) -> Result<PolicyEngine, PolicyError> {
        self.principals.validate()?;
        let loaded = self.sources.load()?;
        Ok(PolicyEngine {
            shared: Arc::new(Shared {
                sources: self.sources,
                on_error: self.on_error,
                allow_empty_reload: self.allow_empty_reload,
                principals: self.principals,
                current: ArcSwap::from_pointee(Snapshot::new(loaded, 1)),
                reload_lock: Mutex::new(()),
                authorizer: Authorizer::new(),
                mapping_id: NEXT_MAPPING_ID.fetch_add(1, Ordering::Relaxed),
            }),
        })
    }
}

impl PolicyEngine {
    /// Starts configuring an engine over these policies.
    pub fn builder(policies: PolicySource) -> PolicyEngineBuilder {
        PolicyEngineBuilder {
            sources: Sources {
                policies,
                shadow: None,
                schema: None,
                entities: None,
            },
            on_error: OnError::Deny,
            allow_empty_reload: false,
            principals: PrincipalMapping::new(),
        }
    }

    /// Decides whether `caller` may do `action` on `resource`.
    ///
    /// The caller becomes the principal through the engine's [`PrincipalMapping`]: its
    /// entity (parents from role claims, attributes from chosen claims) is added to the
    /// request, and `scopes`, `iss` and `peer` to the context. A caller that cannot be mapped is
    /// denied with [`DecisionError::Principal`].
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &EntityUid,
        resource: &EntityUid,
        context: Context,
    ) -> Decision {
        match self.request_for(caller, action, resource, context) {
            Ok(request) => self.authorize_request(request),
            Err(error) => {
                self.deny_early(None, Some(action.clone()), Some(resource.clone()), error)
            }
        }
    }

    /// Checks that the principals of the issuers `verifier` accepts cannot be confused: with
    /// several issuers, each must have its own namespace in the [`PrincipalMapping`], and
    /// no two may overlap. The [`Guard`](crate::guard::Guard) runs this when it is built;
    /// run it yourself when you join a verifier and an engine another way.
    ///
    /// # Errors
    /// [`IssuerNamespaceError::Shared`] naming two issuers whose principals could be equal
    /// (with several issuers and no namespaces, the first two), [`IssuerNamespaceError::Unmapped`]
    /// for an issuer without a namespace when others have one,
    /// [`IssuerNamespaceError::Workload`], or [`IssuerNamespaceError::AnyIssuer`] for
    /// namespaces with an [`Issuer::any`](crate::token::Issuer::any).
    pub fn check_issuers(&self, verifier: &Verifier) -> Result<(), IssuerNamespaceError> {
        self.shared
            .principals
            .check_issuers(verifier.issuer_names())
    }

    /// The request [`PolicyEngine::authorize`] decides, for use with
    /// [`PolicyEngine::authorize_with`] and an [`EntityProvider`].
    ///
    /// # Errors
    /// [`DecisionError::Principal`] when the caller cannot be mapped (no id claim, a role
    /// claim that is not strings, a claim with no Cedar equivalent, a workload without a
    /// SPIFFE ID, a token of an issuer without a principal namespace), or when the context
    /// already holds `scopes`, `iss` or `peer`.
    pub fn request_for(
        &self,
        caller: &Caller,
        action: &EntityUid,
        resource: &EntityUid,
        mut context: Context,
    ) -> Result<Request, DecisionError> {
        let mapped = self.shared.principals.map(caller, self.shared.mapping_id)?;
        for (key, value) in mapped.context {
            let taken = context
                .as_json()
                .is_some_and(|fields| fields.contains_key(&key));
            if taken {
                return Err(DecisionError::Principal {
                    message: format!("context already has `{key}`"),
                });
            }
            context
                .insert(&key, value)
                .map_err(|e| DecisionError::Principal {
                    message: e.to_string(),
                })?;
        }
        Ok(Request::new(mapped.uid, action.clone(), resource.clone())
            .with_context(context)
            .with_entities(Entities::from_iter([mapped.entity])))
    }

    /// Decides one request.
    ///
    /// Everything expensive happened at load time; this converts the context (against the
    /// schema), adds the request's entities to the static ones (copying the static entity
    /// map when there are request entities), and evaluates. Any failure denies.
    pub fn authorize_request(&self, request: Request) -> Decision {
        let start = Instant::now();
        let snapshot = self.shared.current.load();
        let Request {
            principal,
            action,
            resource,
            context,
            entities,
        } = request;
        let prepared = prepare(&snapshot, &principal, &action, &resource, context, entities);
        let mut details = Details {
            principal: Some(principal),
            action: Some(action),
            resource: Some(resource),
            policy_ids: Vec::new(),
            errors: Vec::new(),
            cause: None,
            generation: snapshot.generation,
            elapsed: std::time::Duration::ZERO,
            shadow: None,
        };
        let allowed = match prepared {
            Err(error) => {
                details.errors.push(error);
                false
            }
            Ok((cedar_request, merged)) => {
                let entities = merged.as_ref().unwrap_or(&snapshot.entities);
                let response = self.shared.authorizer.is_authorized(
                    &cedar_request,
                    snapshot.policies_for(cedar_request.action()),
                    entities,
                );
                let allowed = self.apply(&response, &mut details);
                if let Some(candidate) = &snapshot.shadow {
                    let response =
                        self.shared
                            .authorizer
                            .is_authorized(&cedar_request, candidate, entities);
                    details.shadow = Some(self.shadow_of(&response));
                }
                allowed
            }
        };
        if !allowed && details.cause.is_none() {
            details.cause = Some(DenyCause::Error);
        }
        details.elapsed = start.elapsed();
        let decision = if allowed {
            Decision::Allow(details)
        } else {
            Decision::Deny(details)
        };
        report(&decision);
        decision
    }

    /// Decides one request after asking `provider` for the entities it needs (such as the
    /// resource with its owner). A provider failure denies, and so does a provider that
    /// panics (the panic is caught and becomes [`DecisionError::Provider`]).
    pub async fn authorize_with<P: EntityProvider>(
        &self,
        mut request: Request,
        provider: &P,
    ) -> Decision {
        match entities_or_panic_error(provider, &request).await {
            Ok(entities) => {
                request.entities.extend(entities);
                self.authorize_request(request)
            }
            Err(error) => self.deny_early(
                Some(request.principal),
                Some(request.action),
                Some(request.resource),
                DecisionError::Provider {
                    message: error.to_string(),
                },
            ),
        }
    }

    /// Reloads policies, schema and entities from the configured sources and swaps them in
    /// atomically. Requests being decided finish with the set they started with.
    ///
    /// # Errors
    /// Any [`PolicyError`] of loading, and [`PolicyError::NoPolicies`] when the new set has
    /// no policy but the one in force has some (unless
    /// [`PolicyEngineBuilder::allow_empty_reload`]); the previous set stays in force and the
    /// error is also logged under target `meshguard::policy::reload`.
    pub fn reload(&self) -> Result<u64, PolicyError> {
        let _serialized = self.lock_reloads();
        self.swap_in(self.shared.sources.read().and_then(source::parse))
    }

    /// Reloads from what a read of the sources gave (the watcher's, whose bytes it saw
    /// twice in a row).
    pub(crate) fn reload_from(&self, read: Result<Texts, PolicyError>) -> Result<u64, PolicyError> {
        let _serialized = self.lock_reloads();
        self.swap_in(read.and_then(source::parse))
    }

    fn lock_reloads(&self) -> std::sync::MutexGuard<'_, ()> {
        self.shared
            .reload_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Swaps a loaded set in, unless it failed or would empty a non-empty set.
    fn swap_in(&self, loaded: Result<Loaded, PolicyError>) -> Result<u64, PolicyError> {
        let current = self.shared.current.load();
        let loaded = loaded.and_then(|loaded| {
            let previous = current.policies.num_of_policies();
            if loaded.policies.num_of_policies() == 0 && previous > 0 {
                if !self.shared.allow_empty_reload {
                    return Err(PolicyError::NoPolicies { previous });
                }
                tracing::warn!(
                    target: "meshguard::policy::reload",
                    generation = current.generation + 1,
                    previous,
                    "policy set reloaded without policies; every request is denied"
                );
            }
            Ok(loaded)
        });
        match loaded {
            Ok(loaded) => {
                let generation = current.generation + 1;
                self.shared
                    .current
                    .store(Arc::new(Snapshot::new(loaded, generation)));
                tracing::info!(target: "meshguard::policy::reload", generation, "policy set reloaded");
                Ok(generation)
            }
            Err(error @ PolicyError::NoPolicies { .. }) => {
                tracing::warn!(
                    target: "meshguard::policy::reload",
                    generation = current.generation,
                    reason = error.reason(),
                    error = %error,
                    "policy reload refused; previous policy set kept"
                );
                Err(error)
            }
            Err(error) => {
                tracing::error!(
                    target: "meshguard::policy::reload",
                    generation = current.generation,
                    reason = error.reason(),
                    error = %error,
                    "policy reload failed; previous policy set kept"
                );
                Err(error)
            }
        }
    }

    /// The generation of the policy set in force.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.shared.current.load().generation
    }

    /// The ids of the enforced policies, sorted.
    #[must_use]
    pub fn policy_ids(&self) -> Vec<PolicyId> {
        let snapshot = self.shared.current.load();
        let mut ids: Vec<PolicyId> = snapshot
            .policies
            .policies()
            .map(|p| PolicyId::from_cedar(p.id().clone()))
            .collect();
        ids.sort();
        ids
    }

    pub(crate) fn sources(&self) -> &Sources {
        &self.shared.sources
    }

    pub(crate) fn deny_early(
        &self,
        principal: Option<EntityUid>,
        action: Option<EntityUid>,
        resource: Option<EntityUid>,
        error: DecisionError,
    ) -> Decision {
        let decision = Decision::Deny(Details {
            principal,
            action,
            resource,
            policy_ids: Vec::new(),
            errors: vec![error],
            cause: Some(DenyCause::Error),
            generation: self.generation(),
            elapsed: std::time::Duration::ZERO,
            shadow: None,
        });
        report(&decision);
        decision
    }

    /// Fills `details` from Cedar's response and says whether the request is allowed.
    fn apply(&self, response: &cedar_policy::Response, details: &mut Details) -> bool {
        let diagnostics = response.diagnostics();
        details.policy_ids = sorted_ids(diagnostics.reason());
        details.errors = diagnostics
            .errors()
            .map(
                |cedar_policy::AuthorizationError::PolicyEvaluationError(e)| {
                    DecisionError::Evaluation {
                        policy_id: e.policy_id().to_string(),
                        message: e.inner().to_string(),
                    }
                },
            )
            .collect();
        let cedar_allows = response.decision() == cedar_policy::Decision::Allow;
        let errored = !details.errors.is_empty();
        let allowed = cedar_allows && (!errored || self.shared.on_error == OnError::Skip);
        if !allowed {
            details.cause = Some(if errored {
                DenyCause::Error
            } else if details.policy_ids.is_empty() {
                DenyCause::NoPermit
            } else {
                DenyCause::Forbidden
            });
        }
        allowed
    }

    fn shadow_of(&self, response: &cedar_policy::Response) -> Shadow {
        let errors = response.diagnostics().errors().count();
        let allowed = response.decision() == cedar_policy::Decision::Allow
            && (errors == 0 || self.shared.on_error == OnError::Skip);
        Shadow {
            allowed,
            policy_ids: sorted_ids(response.diagnostics().reason()),
            errors,
        }
    }
}

type Prepared = (cedar_policy::Request, Option<cedar_policy::Entities>);

/// Builds the Cedar request and, when the request brings entities, the merged entity store.
fn prepare(
    snapshot: &Snapshot,
    principal: &EntityUid,
    action: &EntityUid,
    resource: &EntityUid,
    context: Context,
    entities: Entities,
) -> Result<Prepared, DecisionError> {
    let schema = snapshot.schema.as_ref();
    let context = context
        .into_cedar(schema.map(|s| (s, action.as_cedar())))
        .map_err(|message| DecisionError::InvalidRequest { message })?;
    let request = cedar_policy::Request::new(
        principal.as_cedar().clone(),
        action.as_cedar().clone(),
        resource.as_cedar().clone(),
        context,
        schema,
    )
    .map_err(|e| DecisionError::InvalidRequest {
        message: e.to_string(),
    })?;
    if entities.is_empty() {
        return Ok((request, None));
    }
    let added = entities
        .resolve(schema)
        .map_err(|message| DecisionError::InvalidEntities { message })?;
    let merged = snapshot
        .entities
        .clone()
        .add_entities(added, schema)
        .map_err(|e| DecisionError::InvalidEntities {
            message: e.to_string(),
        })?;
    Ok((request, Some(merged)))
}

fn sorted_ids<'a>(ids: impl Iterator<Item = &'a cedar_policy::PolicyId>) -> Vec<PolicyId> {
    let mut ids: Vec<PolicyId> = ids.cloned().map(PolicyId::from_cedar).collect();
    ids.sort_unstable();
    ids
}

/// Emits the audit record, and the shadow disagreement when there is one.
fn report(decision: &Decision) {
    if let Some(shadow) = decision.details().shadow()
        && shadow.would_allow() != decision.is_allow()
    {
        let details = decision.details();
        tracing::warn!(
            target: "meshguard::policy::shadow",
            enforced = if decision.is_allow() { "allow" } else { "deny" },
            candidate = if shadow.would_allow() { "allow" } else { "deny" },
            principal = details.principal().map(tracing::field::display),
            action = details.action().map(tracing::field::display),
            resource = details.resource().map(tracing::field::display),
            generation = details.generation(),
            "shadow policy set disagrees"
        );
    }
    decision.audit_record().emit();
}
