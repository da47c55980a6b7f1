//! The service under test: the policies, the routers (bare, guarded, token check alone), one
//! case per algorithm, and raw Cedar deciding the same request (the policies' floor).

use std::str::FromStr;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use meshguard::caller::Caller;
use meshguard::guard::GuardLayer;
use meshguard::policy::{
    EntityUid, HttpInput, HttpMapping, PolicyEngine, PolicySource, PrincipalMapping,
};
use meshguard::token::{Issuer, KeySet, Verifier};
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

use crate::support::{AUD, Floor, ISS, keys, now};
use crate::{PATH, POLICIES, ROUTE, SERVICE};

pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) token: String,
    pub(crate) verifier: Verifier,
    pub(crate) floor: Floor,
}

fn claims() -> serde_json::Value {
    let now = now();
    serde_json::json!({
        "iss": ISS, "sub": "alice", "aud": AUD, "exp": now + 3600, "iat": now,
        "jti": "6f1d2c7a-9b1e-4a53-8f0e-3c2d1b0a9f8e", "client_id": "orders-frontend",
        "scope": "orders:read orders:write", "roles": ["reader", "role7"],
    })
}

fn verifier(keys: KeySet) -> Verifier {
    Verifier::builder()
        .issuer(Issuer::new(ISS, keys).audience(AUD))
        .token_cache(token_cache())
        .build()
        .unwrap()
}

/// The verifier's token cache: the default unless `MESHGUARD_BENCH_TOKEN_CACHE` sets a size
/// (`0` verifies every request's signature, as a stream of distinct tokens would need).
fn token_cache() -> usize {
    std::env::var("MESHGUARD_BENCH_TOKEN_CACHE")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(meshguard::token::DEFAULT_TOKEN_CACHE)
}

/// One case per algorithm family: EdDSA, ES256, RS256 and HS256 (the last).
pub(crate) fn cases() -> Vec<Case> {
    keys()
        .into_iter()
        .map(|key| Case {
            name: key.name,
            token: key.sign(&claims()),
            verifier: verifier(key.key_set()),
            floor: key.floor(),
        })
        .collect()
}

/// 100 policies over distinct roles and actions, permits and forbids, as a role-based service
/// writes them; the benchmark request (`GET /orders/{id}` by a `reader`) matches the last.
pub(crate) fn policies() -> String {
    let mut text: String = (0..POLICIES - 1)
        .map(|i| match i % 4 {
            3 => format!(
                "forbid(principal in Role::\"suspended{i}\", action == Action::\"DELETE /r{i}/{{id}}\", resource);\n"
            ),
            _ => format!(
                "permit(principal in Role::\"role{i}\", action == Action::\"GET /r{i}/{{id}}\", resource);\n"
            ),
        })
        .collect();
    text.push_str(
        "permit(principal in Role::\"reader\", action == Action::\"GET /orders/{id}\", \
         resource == Application::\"orders\") when { context.scopes.contains(\"orders:read\") };\n",
    );
    text
}

pub(crate) fn engine() -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(policies()))
        .principal_mapping(PrincipalMapping::new().role_claim("roles"))
        .build()
        .unwrap()
}

async fn ok() -> &'static str {
    "ok"
}

pub(crate) fn bare_router() -> Router {
    Router::new().route(ROUTE, get(ok))
}

pub(crate) fn guarded_router(verifier: Verifier) -> Router {
    let guard = GuardLayer::builder()
        .realm(SERVICE)
        .tokens(verifier)
        .policies(engine(), HttpMapping::conventions(SERVICE))
        .build()
        .unwrap();
    bare_router().layer(guard)
}

/// The guard with the token check alone, to separate the cost of the policies.
pub(crate) fn token_only_router(verifier: Verifier) -> Router {
    let guard = GuardLayer::builder()
        .realm(SERVICE)
        .tokens(verifier)
        .build()
        .unwrap();
    bare_router().layer(guard)
}

pub(crate) fn request(bearer: &str) -> Request<Body> {
    Request::get(PATH)
        .header(header::AUTHORIZATION, bearer)
        .body(Body::empty())
        .unwrap()
}

pub(crate) fn call(runtime: &Runtime, router: &Router, bearer: &str) -> StatusCode {
    runtime.block_on(async {
        router
            .clone()
            .oneshot(request(bearer))
            .await
            .unwrap()
            .status()
    })
}

/// Raw cedar-policy deciding what the guard decides for the case's token: the same policies,
/// principal with its roles, action, resource and context, prepared in advance.
pub(crate) struct CedarFloor {
    authorizer: cedar_policy::Authorizer,
    policies: cedar_policy::PolicySet,
    pub(crate) entities: cedar_policy::Entities,
    request: cedar_policy::Request,
}

impl CedarFloor {
    pub(crate) fn new(engine: &PolicyEngine, caller: &Caller) -> Self {
        let http = request("");
        let input = HttpInput::from_request(&http, SystemTime::now()).with_route(ROUTE);
        let mapped = HttpMapping::conventions(SERVICE).map(&input).unwrap();
        let prepared = engine
            .request_for(
                caller,
                mapped.action(),
                mapped.resource(),
                mapped.context().clone(),
            )
            .unwrap();
        let context = cedar_policy::Context::from_json_value(
            serde_json::Value::Object(prepared.context().as_json().unwrap().clone()),
            None,
        )
        .unwrap();
        let user = cedar_policy::Entity::new_no_attrs(
            meshguard::policy::cedar::entity_uid(prepared.principal()).clone(),
            ["reader", "role7"]
                .into_iter()
                .map(|role| {
                    meshguard::policy::cedar::entity_uid(&EntityUid::new("Role", role).unwrap())
                        .clone()
                })
                .collect(),
        );
        let floor = Self {
            authorizer: cedar_policy::Authorizer::new(),
            policies: cedar_policy::PolicySet::from_str(&policies()).unwrap(),
            entities: cedar_policy::Entities::from_entities([user], None).unwrap(),
            request: cedar_policy::Request::new(
                meshguard::policy::cedar::entity_uid(prepared.principal()).clone(),
                meshguard::policy::cedar::entity_uid(prepared.action()).clone(),
                meshguard::policy::cedar::entity_uid(prepared.resource()).clone(),
                context,
                None,
            )
            .unwrap(),
        };
        assert_eq!(floor.decide(), cedar_policy::Decision::Allow);
        floor
    }

    pub(crate) fn decide(&self) -> cedar_policy::Decision {
        self.authorizer
            .is_authorized(&self.request, &self.policies, &self.entities)
            .decision()
    }
}
