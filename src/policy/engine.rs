//! The engine: the loaded policy set behind an atomic pointer, and the decision procedure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use cedar_policy::{Authorizer, PolicySet, Schema};

use super::decision::{Decision, DenyCause, Details, Shadow};
use super::decisions::{DecisionCache, DecisionCacheConfig, Lookup};
use super::error::{DecisionError, PolicyError};
use super::index::{PolicyIndex, Selected};
use super::issuers::IssuerNamespaceError;
use super::principal::PrincipalMapping;
use super::provider::{EntityProvider, entities_or_panic_error};
use super::reach::{Reads, context_refs};
use super::read::Texts;
use super::slice::StaticEntities;
use super::source::{self, EntitySource, Loaded, PolicySource, SchemaSource, Sources};
use super::values::{Context, Entities, EntityUid, PolicyId};
use crate::caller::Caller;
use crate::token::{AuthenticationLayer, Verifier};

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
    decisions: Option<DecisionCacheConfig>,
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
    /// The policies by their scopes, so that a request is evaluated only against those that
    /// can match it.
    index: PolicyIndex,
    shadow: Option<PolicySet>,
    /// What the candidate set's conditions read, for the entity slice.
    shadow_reads: Reads,
    schema: Option<Schema>,
    entities: StaticEntities,
    /// Recent decisions under this set, when the engine keeps them; dropped with the set.
    decisions: Option<DecisionCache>,
}

impl Snapshot {
    fn new(loaded: Loaded, generation: u64, decisions: Option<&DecisionCacheConfig>) -> Self {
        let index = PolicyIndex::new(&loaded.policies);
        let shadow_reads = loaded
            .shadow
            .as_ref()
            .map(|set| PolicyIndex::new(set).all_reads().clone())
            .unwrap_or_default();
        let decisions = decisions.and_then(|config| {
            let mut fields = index.all_reads().context_fields.clone();
            fields.merge(&shadow_reads.context_fields);
            DecisionCache::new(config, fields)
        });
        Self {
            generation,
            index,
            policies: loaded.policies,
            shadow_reads,
            shadow: loaded.shadow,
            schema: loaded.schema,
            entities: StaticEntities::new(loaded.entities),
            decisions,
        }
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
    decisions: Option<DecisionCacheConfig>,
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

    /// Keeps recent decisions, so that a request whose inputs equal those of one decided
    /// shortly before is answered without evaluating any policy.
    ///
    /// The cache is exact: a decision is returned only for the same principal, action and
    /// resource, the same request entities (the principal's entity with its attributes and
    /// parents, what an [`EntityProvider`] added), the same context fields (every name; the
    /// value of each field a condition of the set can read) and the same loaded set; a
    /// reload starts an empty cache. The decision returned carries the same decision,
    /// determining policies, errors, shadow result and generation, with
    /// [`Details::is_cached`](super::Details::is_cached) set and
    /// [`Details::elapsed`](super::Details::elapsed) the time of this lookup; it is audited
    /// as any other. Contexts made with [`cedar::from_context`](super::cedar::from_context)
    /// are not cached.
    ///
    /// Requests mapped by [`HttpMapping`](super::HttpMapping) carry the request's time in
    /// the context (`time`, in milliseconds), so they hit the cache only when no condition
    /// of the set reads `context.time` or the whole context.
    /// Defaults to no cache.
    pub fn decision_cache(mut self, config: DecisionCacheConfig) -> Self {
        self.decisions = Some(config);
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
                current: ArcSwap::from_pointee(Snapshot::new(loaded, 1, self.decisions.as_ref())),
                decisions: self.decisions,
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
            decisions: None,
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

    /// [`check_issuers`](Self::check_issuers) for the issuers a token layer accepts, its
    /// introspector's among them.
    pub(crate) fn check_layer_issuers(
        &self,
        layer: &AuthenticationLayer,
    ) -> Result<(), IssuerNamespaceError> {
        self.shared.principals.check_issuers(layer.issuer_names())
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
    /// schema), picks the policies whose scope matches the request from an index, and
    /// evaluates them. A request that brings entities is evaluated against a slice of the
    /// static entities that holds everything the evaluation can read, with the request's
    /// entities, instead of a copy of the whole store; the decision, its determining
    /// policies and its errors are Cedar's on the whole set and the merged store. Any
    /// failure denies.
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
        let lookup = match &snapshot.decisions {
            Some(cache) => cache.look_up(&principal, &action, &resource, &context, &entities),
            None => Lookup::Uncacheable,
        };
        let built = cedar_request(&snapshot, &principal, &action, &resource, context);
        // A kept decision answers only a request whose context builds and checks as the one
        // it was made for did (see `decisions.rs`).
        if let (Lookup::Hit(entry), Ok(_)) = (&lookup, &built) {
            let decision = entry.decision.clone().cached(start.elapsed());
            report(&decision);
            return decision;
        }
        let checked = built.is_ok();
        let prepared = built.and_then(|request| {
            prepare(&snapshot, &principal, &action, &resource, request, entities)
        });
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
            cached: false,
        };
        let allowed = match prepared {
            Err(error) => {
                details.errors.push(error);
                false
            }
            Ok(prepared) => {
                let (cedar_request, entities) = (&prepared.request, prepared.entities.as_ref());
                let response = self.shared.authorizer.is_authorized(
                    cedar_request,
                    prepared.policies.policies(),
                    entities,
                );
                let allowed = self.apply(&response, &mut details);
                if let Some(candidate) = &snapshot.shadow {
                    let response =
                        self.shared
                            .authorizer
                            .is_authorized(cedar_request, candidate, entities);
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
        if let (Lookup::Miss(key), true, Some(cache)) = (lookup, checked, &snapshot.decisions) {
            cache.insert(key, &decision);
        }
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
                self.shared.current.store(Arc::new(Snapshot::new(
                    loaded,
                    generation,
                    self.shared.decisions.as_ref(),
                )));
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
            cached: false,
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

/// A request ready for Cedar: the request, the policies whose scope matches it and the
/// entities to evaluate it with.
struct Prepared<'a> {
    request: cedar_policy::Request,
    policies: Selected<'a>,
    entities: Store<'a>,
}

/// Builds the Cedar request: the context converted and, with a schema, the request
/// checked against it.
fn cedar_request(
    snapshot: &Snapshot,
    principal: &EntityUid,
    action: &EntityUid,
    resource: &EntityUid,
    context: Context,
) -> Result<cedar_policy::Request, DecisionError> {
    let schema = snapshot.schema.as_ref();
    let context = context
        .into_cedar(schema.map(|s| (s, action.as_cedar())))
        .map_err(|message| DecisionError::InvalidRequest { message })?;
    cedar_policy::Request::new(
        principal.as_cedar().clone(),
        action.as_cedar().clone(),
        resource.as_cedar().clone(),
        context,
        schema,
    )
    .map_err(|e| DecisionError::InvalidRequest {
        message: e.to_string(),
    })
}

/// Selects the request's policies and, when it brings entities, the slice of entities it
/// is evaluated with (see `slice.rs`).
fn prepare<'a>(
    snapshot: &'a Snapshot,
    principal: &EntityUid,
    action: &EntityUid,
    resource: &EntityUid,
    request: cedar_policy::Request,
    entities: Entities,
) -> Result<Prepared<'a>, DecisionError> {
    let schema = snapshot.schema.as_ref();
    let uids = [principal.as_cedar(), action.as_cedar(), resource.as_cedar()];
    let select = |entities: &cedar_policy::Entities| {
        let [principal, action, resource] = uids;
        snapshot
            .index
            .select(&snapshot.policies, principal, action, resource, entities)
    };
    if entities.is_empty() {
        let selected = select(snapshot.entities.entities());
        return Ok(Prepared {
            request,
            policies: selected,
            entities: Store::Static(snapshot.entities.entities()),
        });
    }
    let invalid = |message| DecisionError::InvalidEntities { message };
    let added = entities.resolve(schema).map_err(invalid)?;
    // The scope variables first: the policies are selected with their ancestors in the
    // slice, and what the selected policies read is added to it next.
    let slice = snapshot
        .entities
        .slice(added, uids, schema)
        .map_err(invalid)?;
    let selected = select(&slice);
    let mut reached: Vec<&cedar_policy::EntityUid> = Vec::new();
    for reads in [selected.reads(), &snapshot.shadow_reads] {
        reached.extend(reads.literals.iter());
    }
    let held = if selected.reads().context || snapshot.shadow_reads.context {
        request.context().map(context_refs).unwrap_or_default()
    } else {
        Vec::new()
    };
    reached.extend(held.iter());
    let entities = match snapshot.entities.widen(&slice, reached).map_err(invalid)? {
        Some(wider) => Store::Owned(wider),
        None => Store::Shared(slice),
    };
    Ok(Prepared {
        request,
        policies: selected,
        entities,
    })
}

/// The entities a request is evaluated with.
enum Store<'a> {
    /// The static store, for a request without entities of its own.
    Static(&'a cedar_policy::Entities),
    /// A slice kept for requests like this one.
    Shared(Arc<cedar_policy::Entities>),
    /// A slice built for this request only.
    Owned(cedar_policy::Entities),
}

impl AsRef<cedar_policy::Entities> for Store<'_> {
    fn as_ref(&self) -> &cedar_policy::Entities {
        match self {
            Self::Static(entities) => entities,
            Self::Shared(entities) => entities,
            Self::Owned(entities) => entities,
        }
    }
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
