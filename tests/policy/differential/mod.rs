//! The engine (scope index, entity slices, direct contexts) against plain Cedar: every request
//! is decided by `PolicyEngine` and by `cedar_policy::Authorizer` on the whole policy set with
//! the request's entities merged into the whole static store (`Entities::add_entities`, what
//! the engine did before slicing). Both must give the same decision, the same determining
//! policies and the same erroring policies, or refuse the request for the same reason.
//!
//! Each request is also decided by an engine with the decision cache on: asked again after
//! the other requests of its world, and again after a reload, every answer (kept or
//! evaluated) must still be plain Cedar's.
//!
//! Two sources of cases: seeded random worlds (`generate.rs`; set `MESHGUARD_DIFF_SEED` to
//! replay one seed, `MESHGUARD_DIFF_WORLDS` to run more), and Cedar's integration corpus
//! (tests/data/cedar, from cedar-policy/cedar-integration-tests) with each request's principal
//! and resource entities moved out of the static store into the request, or duplicated in it.

mod corpus;
mod generate;

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use meshguard::policy::{
    Context, DecisionCacheConfig, DecisionError, Entities, EntitySource, EntityUid, PolicyEngine,
    PolicySource, Request, SchemaSource,
};
use serde_json::Value;

use generate::{GenRequest, Rng, World};

/// What deciding one request gave.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Decided {
        allow: bool,
        reason: BTreeSet<String>,
        errors: BTreeSet<String>,
    },
    /// Refused before evaluation: `invalid_request` or `invalid_entities`.
    Refused(&'static str),
}

/// One world, loaded for both deciders.
struct Loaded {
    engine: PolicyEngine,
    /// The same world, with the decision cache on.
    cached: PolicyEngine,
    schema: Option<cedar_policy::Schema>,
    policies: cedar_policy::PolicySet,
    entities: cedar_policy::Entities,
}

impl Loaded {
    /// Loads a world; `None` when its static entities do not conform to its schema (both
    /// loaders refuse them).
    fn new(schema: Option<&str>, policies: &str, entities: &str) -> Option<Self> {
        let cedar_schema =
            schema.map(|text| cedar_policy::Schema::from_cedarschema_str(text).unwrap().0);
        let static_entities =
            cedar_policy::Entities::from_json_str(entities, cedar_schema.as_ref());
        let builder = || {
            let builder = PolicyEngine::builder(PolicySource::text(policies))
                .entities(EntitySource::json(entities))
                .skip_erroring_policies();
            match schema {
                Some(text) => builder.schema(SchemaSource::cedar(text)),
                None => builder,
            }
        };
        let built = builder().build();
        let Ok(static_entities) = static_entities else {
            assert!(built.is_err(), "the engine loaded entities Cedar refuses");
            return None;
        };
        let cache = DecisionCacheConfig::new(1_000, Duration::from_secs(3_600));
        Some(Self {
            engine: built.unwrap_or_else(|e| panic!("{e}\n{policies}")),
            cached: builder().decision_cache(cache).build().unwrap(),
            schema: cedar_schema,
            policies: cedar_policy::PolicySet::from_str(policies).unwrap(),
            entities: static_entities,
        })
    }

    fn by_engine(&self, request: &GenRequest, cedar_context: bool) -> Outcome {
        let context = cedar_context.then(|| self.cedar_context(request)).flatten();
        decide(&self.engine, request, context).0
    }

    /// By the engine with the decision cache, with a JSON context; and whether the answer
    /// was a kept one.
    fn by_cached_engine(&self, request: &GenRequest) -> (Outcome, bool) {
        decide(&self.cached, request, None)
    }

    fn cedar_context(&self, request: &GenRequest) -> Option<cedar_policy::Context> {
        let action = cedar_uid(&request.action);
        cedar_policy::Context::from_json_value(
            request.context.clone(),
            self.schema.as_ref().map(|s| (s, &action)),
        )
        .ok()
    }

    /// Plain Cedar: the whole set, the request's entities merged into the whole store.
    fn by_cedar(&self, request: &GenRequest) -> Outcome {
        let Some(context) = self.cedar_context(request) else {
            return Outcome::Refused("invalid_request");
        };
        let Ok(cedar_request) = cedar_policy::Request::new(
            cedar_uid(&request.principal),
            cedar_uid(&request.action),
            cedar_uid(&request.resource),
            context,
            self.schema.as_ref(),
        ) else {
            return Outcome::Refused("invalid_request");
        };
        let merged = if request.entities.is_empty() {
            self.entities.clone()
        } else {
            let added: Option<Vec<_>> = request
                .entities
                .iter()
                .map(|item| {
                    cedar_policy::Entity::from_json_value(item.clone(), self.schema.as_ref()).ok()
                })
                .collect();
            let merged = added.and_then(|added| {
                self.entities
                    .clone()
                    .add_entities(added, self.schema.as_ref())
                    .ok()
            });
            match merged {
                Some(merged) => merged,
                None => return Outcome::Refused("invalid_entities"),
            }
        };
        let response =
            cedar_policy::Authorizer::new().is_authorized(&cedar_request, &self.policies, &merged);
        let name = |id: &cedar_policy::PolicyId| {
            let policy = self.policies.policy(id).unwrap();
            policy.annotation("id").unwrap_or(id.as_ref()).to_owned()
        };
        Outcome::Decided {
            allow: response.decision() == cedar_policy::Decision::Allow,
            reason: response.diagnostics().reason().map(name).collect(),
            errors: response
                .diagnostics()
                .errors()
                .map(
                    |cedar_policy::AuthorizationError::PolicyEvaluationError(e)| {
                        name(e.policy_id())
                    },
                )
                .collect(),
        }
    }
}

/// Decides `request` with `engine`, with `context` when given, else the request's JSON
/// context; and whether the decision came from the engine's cache.
fn decide(
    engine: &PolicyEngine,
    request: &GenRequest,
    context: Option<cedar_policy::Context>,
) -> (Outcome, bool) {
    let context = match context {
        Some(context) => meshguard::policy::cedar::from_context(context),
        None => Context::from_json(request.context.clone()).unwrap(),
    };
    let mut ours = Request::new(
        uid(&request.principal),
        uid(&request.action),
        uid(&request.resource),
    )
    .with_context(context);
    if !request.entities.is_empty() {
        let entities = Value::Array(request.entities.clone());
        ours = ours.with_entities(Entities::from_json_value(entities).unwrap());
    }
    let decision = engine.authorize_request(ours);
    let cached = decision.details().is_cached();
    let mut errors = BTreeSet::new();
    for error in decision.errors() {
        match error {
            DecisionError::Evaluation { policy_id, .. } => {
                errors.insert(policy_id.clone());
            }
            DecisionError::InvalidRequest { .. } => {
                return (Outcome::Refused("invalid_request"), cached);
            }
            DecisionError::InvalidEntities { .. } => {
                return (Outcome::Refused("invalid_entities"), cached);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let outcome = Outcome::Decided {
        allow: decision.is_allow(),
        reason: decision
            .policy_ids()
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect(),
        errors,
    };
    (outcome, cached)
}

fn uid(text: &str) -> EntityUid {
    EntityUid::from_str(text).unwrap()
}

fn cedar_uid(text: &str) -> cedar_policy::EntityUid {
    cedar_policy::EntityUid::from_str(text).unwrap()
}

/// The policies of a world that its schema validates (all of them without a schema).
fn valid_policies(world: &World) -> String {
    let Some(schema) = &world.schema else {
        return world.policies.join("\n");
    };
    let validator = cedar_policy::Validator::new(
        cedar_policy::Schema::from_cedarschema_str(schema)
            .unwrap()
            .0,
    );
    world
        .policies
        .iter()
        .filter(|text| {
            let set = cedar_policy::PolicySet::from_str(text).unwrap();
            validator
                .validate(&set, cedar_policy::ValidationMode::Strict)
                .validation_passed()
        })
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

/// Gives a duplicate of a static entity the static entity's ancestors as parents, so that it
/// is structurally equal to it.
fn close_duplicate(request: &mut GenRequest, entities: &cedar_policy::Entities) {
    let Some(index) = request.closed_duplicate else {
        return;
    };
    let item = &mut request.entities[index];
    let uid = cedar_policy::EntityUid::from_json(item["uid"].clone()).unwrap();
    let ancestors: Vec<Value> = entities
        .ancestors(&uid)
        .into_iter()
        .flatten()
        .map(|a| serde_json::json!({"type": a.type_name().to_string(), "id": a.id().unescaped()}))
        .collect();
    item["parents"] = Value::Array(ancestors);
}

struct Tally {
    decided: usize,
    refused: usize,
    allowed: usize,
    erroring: usize,
    with_entities: usize,
    /// Answers of the engine with the decision cache that were kept ones.
    cached: usize,
}

/// Whether two generated requests are the same request.
fn same_request(a: &GenRequest, b: &GenRequest) -> bool {
    (
        &a.principal,
        &a.action,
        &a.resource,
        &a.context,
        &a.entities,
    ) == (
        &b.principal,
        &b.action,
        &b.resource,
        &b.context,
        &b.entities,
    )
}

#[test]
fn random_worlds_decide_as_cedar_on_the_whole_set_and_store() {
    let seed: u64 =
        std::env::var("MESHGUARD_DIFF_SEED").map_or(0x6d65_7368, |s| s.parse().unwrap());
    let worlds: usize = std::env::var("MESHGUARD_DIFF_WORLDS").map_or(700, |s| s.parse().unwrap());
    let mut tally = Tally {
        decided: 0,
        refused: 0,
        allowed: 0,
        erroring: 0,
        with_entities: 0,
        cached: 0,
    };
    let mut skipped = 0;
    for n in 0..worlds {
        let world_seed = seed.wrapping_add(n as u64);
        let mut rng = Rng::new(world_seed);
        let mut world = generate::world(&mut rng);
        let entities = Value::Array(world.entities.clone()).to_string();
        let Some(loaded) = Loaded::new(world.schema.as_deref(), &valid_policies(&world), &entities)
        else {
            skipped += 1;
            continue;
        };
        let mut outcomes = Vec::new();
        for (i, request) in world.requests.iter_mut().enumerate() {
            close_duplicate(request, &loaded.entities);
            let theirs = loaded.by_cedar(request);
            let (kept, _) = loaded.by_cached_engine(request);
            assert_eq!(kept, theirs, "seed {world_seed} request {i} with the cache");
            let ours = loaded.by_engine(request, i % 3 == 0);
            // Again, from the engine's cache of slices.
            let again = loaded.by_engine(request, i % 3 != 0);
            assert_eq!(again, ours, "seed {world_seed} request {i} decided again");
            assert_eq!(
                ours,
                theirs,
                "seed {world_seed} request {i}: {} {} {} context {} entities {}",
                request.principal,
                request.action,
                request.resource,
                request.context,
                Value::Array(request.entities.clone())
            );
            tally.with_entities += usize::from(!request.entities.is_empty());
            match &theirs {
                Outcome::Refused(_) => tally.refused += 1,
                Outcome::Decided { allow, errors, .. } => {
                    tally.decided += 1;
                    tally.allowed += usize::from(*allow);
                    tally.erroring += usize::from(!errors.is_empty());
                }
            }
            outcomes.push(theirs);
        }
        // Asked again in the opposite order, after the other requests of the world, then
        // again after a reload, which starts over: every answer is still Cedar's.
        for (i, (request, theirs)) in world.requests.iter().zip(&outcomes).enumerate().rev() {
            let (kept, cached) = loaded.by_cached_engine(request);
            assert_eq!(&kept, theirs, "seed {world_seed} request {i} asked again");
            tally.cached += usize::from(cached);
        }
        loaded.cached.reload().unwrap();
        for (i, (request, theirs)) in world.requests.iter().zip(&outcomes).enumerate() {
            let (first, cached) = loaded.by_cached_engine(request);
            let (second, _) = loaded.by_cached_engine(request);
            assert_eq!(
                (&first, &second),
                (theirs, theirs),
                "seed {world_seed} request {i} after reload"
            );
            let asked_before = world.requests[..i]
                .iter()
                .any(|earlier| same_request(earlier, request));
            assert!(
                !cached || asked_before,
                "seed {world_seed} request {i} kept over a reload"
            );
        }
    }
    let total = tally.decided + tally.refused;
    eprintln!(
        "{total} requests: {} decided ({} allowed, {} with errors), {} refused, {} with entities, {} answered again from the decision cache; {skipped} worlds skipped",
        tally.decided,
        tally.allowed,
        tally.erroring,
        tally.refused,
        tally.with_entities,
        tally.cached
    );
    // The generator must keep reaching every kind of outcome, or the comparison proves little.
    assert!(total >= 3_000, "{total} requests");
    assert!(skipped < worlds / 10, "{skipped} worlds skipped");
    for (what, count) in [
        ("allowed", tally.allowed),
        ("denied", tally.decided - tally.allowed),
        ("erroring", tally.erroring),
        ("refused", tally.refused),
        ("with entities", tally.with_entities),
        ("answered from the decision cache", tally.cached),
    ] {
        assert!(
            count >= total / 20,
            "only {count} of {total} requests {what}"
        );
    }
}

#[test]
fn cedar_corpus_with_request_entities_decides_as_cedar() {
    let (mut compared, mut moved_in) = (0, 0);
    for case in corpus::cases() {
        // One engine per static store: the whole one, and one per principal and resource
        // moved out of it.
        let mut engines: HashMap<(bool, String, String), Loaded> = HashMap::new();
        for request in &case.requests {
            for moved in [true, false] {
                let (statics, request) = corpus::split(&case, request, moved);
                let key = if moved {
                    (moved, request.principal.clone(), request.resource.clone())
                } else {
                    (moved, String::new(), String::new())
                };
                let loaded = engines.entry(key).or_insert_with(|| {
                    let entities = Value::Array(statics).to_string();
                    Loaded::new(case.schema.as_deref(), &case.policies, &entities)
                        .unwrap_or_else(|| panic!("{}: entities refused", case.id))
                });
                let theirs = loaded.by_cedar(&request);
                for cedar_context in [false, true] {
                    let ours = loaded.by_engine(&request, cedar_context);
                    assert_eq!(
                        ours, theirs,
                        "{} moved {moved}: {}",
                        case.id, request.principal
                    );
                    compared += 1;
                    let (kept, _) = loaded.by_cached_engine(&request);
                    assert_eq!(kept, theirs, "{} moved {moved} with the cache", case.id);
                }
                moved_in += usize::from(moved && !request.entities.is_empty());
            }
        }
    }
    assert_eq!(compared, (74 + 160) * 4);
    assert!(moved_in > 150, "{moved_in} requests brought their entities");
}

/// A hand-written world: its requests are decided by both and must agree; returns the
/// engine's outcomes.
fn decide_both(policies: &str, entities: Value, requests: Vec<GenRequest>) -> Vec<Outcome> {
    let loaded = Loaded::new(None, policies, &entities.to_string()).unwrap();
    requests
        .iter()
        .map(|request| {
            let ours = loaded.by_engine(request, false);
            assert_eq!(ours, loaded.by_cedar(request), "{}", request.principal);
            ours
        })
        .collect()
}

fn alice_reads(entities: Value) -> GenRequest {
    GenRequest {
        principal: r#"User::"alice""#.to_owned(),
        action: r#"Action::"read""#.to_owned(),
        resource: r#"Doc::"d""#.to_owned(),
        context: serde_json::json!({}),
        entities: entities.as_array().unwrap().clone(),
        closed_duplicate: None,
    }
}

fn allowed_by(ids: &[&str]) -> Outcome {
    Outcome::Decided {
        allow: true,
        reason: ids.iter().map(|id| (*id).to_owned()).collect(),
        errors: BTreeSet::new(),
    }
}

#[test]
fn a_static_entity_whose_parent_comes_with_the_request_gains_its_ancestors() {
    // Static `Team::"t"` names `Dept::"x"` as parent, which only the request brings, with
    // parent `Org::"o"`: merged, the team is in the org, and so is alice, through the team.
    let statics = serde_json::json!([
        {"uid": {"type": "Team", "id": "t"}, "attrs": {}, "parents": [{"type": "Dept", "id": "x"}]},
    ]);
    let brought = serde_json::json!([
        {"uid": {"type": "Dept", "id": "x"}, "attrs": {}, "parents": [{"type": "Org", "id": "o"}]},
        {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Team", "id": "t"}]},
    ]);
    let outcomes = decide_both(
        r#"@id("org") permit(principal in Org::"o", action, resource);"#,
        statics,
        vec![alice_reads(brought)],
    );
    assert_eq!(outcomes, [allowed_by(&["org"])]);
}

#[test]
fn a_request_entity_equal_to_a_static_one_is_kept_and_a_different_one_refused() {
    let statics = serde_json::json!([
        {"uid": {"type": "User", "id": "alice"}, "attrs": {"level": 2}, "parents": [{"type": "Team", "id": "t"}]},
    ]);
    let same = serde_json::json!([
        {"uid": {"type": "User", "id": "alice"}, "attrs": {"level": 2}, "parents": [{"type": "Team", "id": "t"}]},
    ]);
    let changed = serde_json::json!([
        {"uid": {"type": "User", "id": "alice"}, "attrs": {"level": 3}, "parents": [{"type": "Team", "id": "t"}]},
    ]);
    let outcomes = decide_both(
        r#"@id("team") permit(principal in Team::"t", action, resource) when { principal.level > 1 };"#,
        statics,
        vec![alice_reads(same), alice_reads(changed)],
    );
    assert_eq!(
        outcomes,
        [allowed_by(&["team"]), Outcome::Refused("invalid_entities")]
    );
}

#[test]
fn a_cycle_through_a_request_entity_is_refused_and_dangling_references_error_as_in_cedar() {
    let statics = serde_json::json!([
        {"uid": {"type": "Team", "id": "t"}, "attrs": {}, "parents": [{"type": "Dept", "id": "x"}]},
        {"uid": {"type": "Doc", "id": "d"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "ghost"}}}, "parents": []},
    ]);
    let cycle = serde_json::json!([
        {"uid": {"type": "Dept", "id": "x"}, "attrs": {}, "parents": [{"type": "Team", "id": "t"}]},
    ]);
    let alice = serde_json::json!([
        {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []},
    ]);
    let outcomes = decide_both(
        r#"@id("owner") permit(principal, action, resource) when { resource.owner.level > 1 };"#,
        statics,
        vec![alice_reads(cycle), alice_reads(alice)],
    );
    let owner_errors = Outcome::Decided {
        allow: false,
        reason: BTreeSet::new(),
        errors: ["owner".to_owned()].into(),
    };
    assert_eq!(
        outcomes,
        [Outcome::Refused("invalid_entities"), owner_errors]
    );
}
