//! Callers (verified tokens, workloads, both) mapped to Cedar principals and decided.
//! Tokens are minted with `TokenSigner` and verified with `Verifier` as a service would;
//! workload identities are read by `PeerIdentity` from X509-SVIDs minted with rcgen.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::peer_support;
use crate::policy_support;

use meshguard::caller::{Caller, WorkloadIdentity};
use meshguard::peer::PeerIdentity;
use meshguard::policy::{
    Context, Decision, EntitySource, HttpInput, HttpMapping, PolicyEngine, PolicySource,
    PrincipalMapping, SchemaSource,
};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, VerifiedToken, Verifier};
use peer_support::Ca;
use policy_support::uid;
use serde_json::{Value, json};

const SECRET: &[u8] = b"policy-test-secret-of-at-least-32-bytes";
const ISSUER: &str = "https://idp.test";

fn token(claims: Value) -> VerifiedToken {
    let mut claims = claims;
    let object = claims.as_object_mut().unwrap();
    object.insert("iss".to_owned(), json!(ISSUER));
    object.insert("aud".to_owned(), json!("orders"));
    object.insert("exp".to_owned(), json!(4_102_444_800_i64));
    let signed = TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&claims)
        .unwrap();
    Verifier::builder()
        .issuer(Issuer::new(ISSUER, KeySet::hmac_secret("k1", SECRET).unwrap()).audience("orders"))
        .build()
        .unwrap()
        .verify(&signed)
        .unwrap()
}

/// The identity of an X509-SVID chain minted for `id` by a CA of its trust domain, as the
/// peer module reads it from a verified handshake.
fn workload(id: &str) -> PeerIdentity {
    let trust_domain = id
        .strip_prefix("spiffe://")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let ca = Ca::new(trust_domain);
    let leaf = ca.svid(id);
    PeerIdentity::from_der_chain(&[leaf.der(), ca.der()]).unwrap()
}

/// A workload whose certificate has no SPIFFE ID (a plain DNS-name certificate).
fn workload_without_spiffe_id() -> PeerIdentity {
    let ca = Ca::new("prod.test");
    let leaf = ca.sign(&rcgen::CertificateParams::new(vec!["orders.internal".to_owned()]).unwrap());
    let peer = PeerIdentity::from_der_chain(&[leaf.der(), ca.der()]).unwrap();
    assert!(peer.spiffe_id().is_none());
    peer
}

const SCHEMA: &str = r#"
entity Role in [Role];
entity Team;
entity User in [Role, Team] { email?: String, level?: Long, tenant?: { id: String } };
entity Service { trust_domain: String };
entity Order;
action read, refund appliesTo {
    principal: [User, Service],
    resource: Order,
    context: { scopes?: Set<String>, iss?: String, peer?: { id: String, trust_domain: String } }
};
"#;

const ENTITIES: &str = r#"[
  {"uid": {"type": "Role", "id": "admin"}, "attrs": {}, "parents": [{"type": "Role", "id": "staff"}]},
  {"uid": {"type": "Role", "id": "staff"}, "attrs": {}, "parents": []}
]"#;

const POLICIES: &str = r#"
@id("staff-read")
permit(principal in Role::"staff", action == Action::"read", resource);

@id("refund-scope")
permit(principal is User, action == Action::"refund", resource)
when { context has scopes && context.scopes.contains("orders:refund") && principal has level && principal.level >= 5 };

@id("refund-only-via-gateway")
forbid(principal is User, action == Action::"refund", resource)
unless { context has peer && context.peer.id == "spiffe://prod.test/gateway" };

@id("services-in-prod")
permit(principal is Service, action == Action::"read", resource)
when { principal.trust_domain == "prod.test" };

@id("acme-team")
permit(principal in Team::"acme-support", action == Action::"read", resource)
when { principal has tenant && principal.tenant.id == "acme" };
"#;

fn engine(mapping: PrincipalMapping) -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(POLICIES))
        .schema(SchemaSource::cedar(SCHEMA))
        .entities(EntitySource::json(ENTITIES))
        .principal_mapping(mapping)
        .build()
        .unwrap()
}

fn mapping() -> PrincipalMapping {
    PrincipalMapping::new()
        .role_claim("roles")
        .attribute("level", "level")
        .attribute("email", "email")
}

fn decide(engine: &PolicyEngine, caller: &Caller, action: &str) -> Decision {
    engine.authorize(
        caller,
        &uid(&format!("Action::\"{action}\"")),
        &uid(r#"Order::"o-1""#),
        Context::new(),
    )
}

fn ids(decision: &Decision) -> Vec<String> {
    decision
        .policy_ids()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn role_claims_become_parents_through_the_hierarchy() {
    let engine = engine(mapping());
    let admin = Caller::from_token(token(json!({"sub": "alice", "roles": ["admin"]})));
    let decision = decide(&engine, &admin, "read");
    assert!(decision.is_allow(), "{decision:?}");
    assert_eq!(ids(&decision), ["staff-read"]);
    assert_eq!(
        decision.details().principal().unwrap().to_string(),
        r#"User::"alice""#
    );
    let single = Caller::from_token(token(json!({"sub": "bob", "roles": "staff"})));
    assert!(decide(&engine, &single, "read").is_allow());
    let none = Caller::from_token(token(json!({"sub": "carol"})));
    assert!(!decide(&engine, &none, "read").is_allow());
}

#[test]
fn scopes_attributes_and_peer_reach_the_policies() {
    let engine = engine(mapping());
    let claims = json!({"sub": "dana", "scope": "orders:read orders:refund", "level": 7});
    let gateway = workload("spiffe://prod.test/gateway");
    let via_gateway = Caller::from_token_via(token(claims.clone()), gateway);
    let decision = decide(&engine, &via_gateway, "refund");
    assert!(decision.is_allow(), "{decision:?}");
    assert_eq!(ids(&decision), ["refund-scope"]);

    // Same user, straight from the browser: the forbid applies.
    let direct = Caller::from_token(token(claims.clone()));
    let denied = decide(&engine, &direct, "refund");
    assert_eq!(ids(&denied), ["refund-only-via-gateway"]);

    // Through another service.
    let other = Caller::from_token_via(token(claims), workload("spiffe://prod.test/batch"));
    assert!(!decide(&engine, &other, "refund").is_allow());

    // Without the scope, or with a low level.
    let no_scope = Caller::from_token_via(
        token(json!({"sub": "dana", "scope": "orders:read", "level": 7})),
        workload("spiffe://prod.test/gateway"),
    );
    assert!(!decide(&engine, &no_scope, "refund").is_allow());
    let junior = Caller::from_token_via(
        token(json!({"sub": "dana", "scope": "orders:refund", "level": 2})),
        workload("spiffe://prod.test/gateway"),
    );
    assert!(!decide(&engine, &junior, "refund").is_allow());
}

#[test]
fn a_workload_alone_is_a_service_principal_with_its_trust_domain() {
    let engine = engine(mapping());
    let prod = Caller::from_workload(workload("spiffe://prod.test/ns/shop/sa/orders"));
    let decision = decide(&engine, &prod, "read");
    assert!(decision.is_allow(), "{decision:?}");
    assert_eq!(
        decision.details().principal().unwrap().to_string(),
        r#"Service::"spiffe://prod.test/ns/shop/sa/orders""#
    );
    let staging = Caller::from_workload(workload("spiffe://staging.test/orders"));
    assert!(!decide(&engine, &staging, "read").is_allow());
    let no_spiffe = Caller::from_workload(workload_without_spiffe_id());
    let decision = decide(&engine, &no_spiffe, "read");
    assert_eq!(decision.errors()[0].reason(), "principal");
}

#[test]
fn mapping_is_configurable() {
    let engine = PolicyEngine::builder(PolicySource::text(
        r#"permit(principal in Group::"support", action, resource) when { principal.tenant == "acme" };"#,
    ))
    .principal_mapping(
        PrincipalMapping::new()
            .user_type("Person")
            .id_claim("email")
            .role_type("Group")
            .role_claim("groups")
            .attribute("tenant", "https://example.test/tenant"),
    )
    .build()
    .unwrap();
    let caller = Caller::from_token(token(json!({
        "sub": "u-1", "email": "erin@acme.test", "groups": ["support"],
        "https://example.test/tenant": "acme",
    })));
    let decision = decide(&engine, &caller, "read");
    assert!(decision.is_allow(), "{decision:?}");
    assert_eq!(
        decision.details().principal().unwrap().to_string(),
        r#"Person::"erin@acme.test""#
    );
}

#[test]
fn claims_with_records_become_record_attributes() {
    let engine = engine(mapping().role_type("Team").attribute("tenant", "tenant"));
    let caller = Caller::from_token(token(json!({
        "sub": "frank", "roles": ["acme-support"], "tenant": {"id": "acme"},
    })));
    assert!(decide(&engine, &caller, "read").is_allow());
}

#[test]
fn unmappable_callers_are_denied_with_a_principal_error() {
    let engine = engine(mapping());
    let cases = [
        json!({"roles": ["admin"]}),            // no sub
        json!({"sub": "x", "roles": [1]}),      // non-string role
        json!({"sub": "x", "roles": {"a": 1}}), // role claim of the wrong shape
        json!({"sub": "x", "level": 1.5}),      // no Cedar equivalent
    ];
    for claims in cases {
        let caller = Caller::from_token(token(claims.clone()));
        let decision = decide(&engine, &caller, "read");
        assert!(!decision.is_allow(), "{claims}");
        assert_eq!(decision.errors()[0].reason(), "principal", "{claims}");
    }
    // A claim whose type the schema does not allow is caught with the request's entities.
    let caller = Caller::from_token(token(
        json!({"sub": "x", "level": "high", "roles": ["admin"]}),
    ));
    let decision = decide(&engine, &caller, "read");
    assert_eq!(decision.errors()[0].reason(), "invalid_entities");
}

#[test]
fn callers_cannot_smuggle_scopes_through_the_context() {
    let engine = engine(mapping());
    let caller = Caller::from_token(token(json!({"sub": "x"})));
    let decision = engine.authorize(
        &caller,
        &uid(r#"Action::"read""#),
        &uid(r#"Order::"o-1""#),
        Context::from_json(json!({"scopes": ["orders:refund"]})).unwrap(),
    );
    assert_eq!(decision.errors()[0].reason(), "principal");
}

#[test]
fn http_requests_are_decided_for_a_caller() {
    let engine = PolicyEngine::builder(PolicySource::text(
        r#"permit(principal in Role::"staff", action == Action::"GET /orders/{id}", resource == Application::"orders")
           when { context.scopes.contains("orders:read") };"#,
    ))
    .entities(EntitySource::json(ENTITIES))
    .principal_mapping(mapping())
    .build()
    .unwrap();
    let request = http::Request::get("/orders/7").body(()).unwrap();
    let now = std::time::SystemTime::UNIX_EPOCH;
    let mapped = HttpMapping::conventions("orders")
        .map(&HttpInput::from_request(&request, now).with_route("/orders/{id}"))
        .unwrap();
    let caller = Caller::from_token(token(
        json!({"sub": "alice", "roles": ["admin"], "scope": "orders:read"}),
    ));
    let decision = engine.authorize(
        &caller,
        mapped.action(),
        mapped.resource(),
        mapped.context().clone(),
    );
    assert!(decision.is_allow(), "{decision:?}");
    let reader = Caller::from_token(token(json!({"sub": "alice", "roles": ["admin"]})));
    assert!(
        !engine
            .authorize(
                &reader,
                mapped.action(),
                mapped.resource(),
                mapped.context().clone()
            )
            .is_allow()
    );
}

#[test]
fn peer_identity_gives_its_spiffe_id_and_trust_domain() {
    let peer = workload("spiffe://prod.test/ns/shop/sa/orders");
    assert_eq!(
        WorkloadIdentity::spiffe_id(&peer),
        Some("spiffe://prod.test/ns/shop/sa/orders")
    );
    assert_eq!(WorkloadIdentity::trust_domain(&peer), Some("prod.test"));
    let plain = workload_without_spiffe_id();
    assert_eq!(WorkloadIdentity::spiffe_id(&plain), None);
    assert_eq!(WorkloadIdentity::trust_domain(&plain), None);
}

#[test]
fn one_verified_token_is_each_engines_own_principal_on_every_request() {
    // A verifier with its token cache hands every request the same verified token, and
    // engines keep what they map with it: each must still see its own mapping, and the
    // calling workload of each request.
    let signed = TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(
            &json!({"iss": ISSUER, "aud": "orders", "exp": 4_102_444_800_i64,
            "sub": "alice", "roles": ["admin"], "level": 7, "scope": "orders:refund"}),
        )
        .unwrap();
    let verifier = Verifier::builder()
        .issuer(Issuer::new(ISSUER, KeySet::hmac_secret("k1", SECRET).unwrap()).audience("orders"))
        .build()
        .unwrap();
    let with_roles = engine(mapping());
    let without_roles = engine(PrincipalMapping::new());
    let gateway = workload("spiffe://prod.test/gateway");
    for _ in 0..3 {
        let token = verifier.verify(&signed).unwrap();
        let alone = Caller::from_token(token.clone());
        assert!(decide(&with_roles, &alone, "read").is_allow());
        assert!(!decide(&without_roles, &alone, "read").is_allow());
        assert!(!decide(&with_roles, &alone, "refund").is_allow());
        let via_gateway = Caller::from_token_via(token, gateway.clone());
        assert_eq!(
            ids(&decide(&with_roles, &via_gateway, "refund")),
            ["refund-scope"]
        );
        assert!(!decide(&without_roles, &via_gateway, "refund").is_allow());
    }
}
