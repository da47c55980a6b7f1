//! The decision cache through the engine: kept decisions equal evaluated ones, reloads retire
//! them, and whatever can change a decision or make a request invalid is in the key.

use crate::policy_support;

use std::time::{Duration, SystemTime};

use meshguard::policy::{
    Context, Decision, DecisionCacheConfig, DecisionError, Entities, Entity, HttpInput,
    HttpMapping, PolicyEngine, PolicySource, Request,
};
use policy_support::{Scratch, uid};
use serde_json::json;

fn config() -> DecisionCacheConfig {
    DecisionCacheConfig::new(1_000, Duration::from_secs(3_600))
}

fn cached_engine(policies: &str) -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(policies))
        .decision_cache(config())
        .build()
        .unwrap()
}

fn read_by(who: &str, level: i64, context: serde_json::Value) -> Request {
    let principal = Entity::builder(uid(&format!("User::\"{who}\"")))
        .attribute("level", &json!(level))
        .unwrap()
        .build()
        .unwrap();
    Request::new(
        uid(&format!("User::\"{who}\"")),
        uid(r#"Action::"read""#),
        uid(r#"Doc::"d""#),
    )
    .with_context(Context::from_json(context).unwrap())
    .with_entities(Entities::from_iter([principal]))
}

fn summary(decision: &Decision) -> (bool, Vec<String>, bool) {
    let ids = decision
        .policy_ids()
        .iter()
        .map(ToString::to_string)
        .collect();
    (decision.is_allow(), ids, decision.details().is_cached())
}

#[test]
fn a_repeated_request_gets_the_kept_decision_and_says_so() {
    let engine = cached_engine(
        r#"@id("leveled") permit(principal, action, resource) when { principal.level > 1 };"#,
    );
    let first = engine.authorize_request(read_by("alice", 2, json!({})));
    let again = engine.authorize_request(read_by("alice", 2, json!({})));
    assert_eq!(summary(&first), (true, vec!["leveled".to_owned()], false));
    assert_eq!(summary(&again), (true, vec!["leveled".to_owned()], true));
    assert_eq!(again.details().generation(), first.details().generation());
    assert_eq!(again.audit_record().to_json()["cached"], true);
    assert_eq!(first.audit_record().to_json()["cached"], false);
}

#[test]
fn a_principal_differing_in_one_attribute_is_decided_for_itself() {
    let engine = cached_engine(
        r#"@id("leveled") permit(principal, action, resource) when { principal.level > 1 };"#,
    );
    for _ in 0..3 {
        assert!(
            engine
                .authorize_request(read_by("alice", 2, json!({})))
                .is_allow()
        );
        assert!(
            !engine
                .authorize_request(read_by("alice", 1, json!({})))
                .is_allow()
        );
    }
}

#[test]
fn a_reload_retires_kept_decisions() {
    let dir = Scratch::new("decision-cache-reload");
    let write = |k: usize| {
        dir.write(
            "set.cedar",
            &format!(r#"@id("v{k}") permit(principal, action, resource);"#),
        );
    };
    write(0);
    let engine = PolicyEngine::builder(PolicySource::path(&dir.0))
        .decision_cache(config())
        .build()
        .unwrap();
    let ask = || summary(&engine.authorize_request(read_by("alice", 1, json!({}))));
    assert_eq!(ask(), (true, vec!["v0".to_owned()], false));
    assert_eq!(ask(), (true, vec!["v0".to_owned()], true));
    write(1);
    assert_eq!(engine.reload().unwrap(), 2);
    assert_eq!(ask(), (true, vec!["v1".to_owned()], false));
    assert_eq!(ask(), (true, vec!["v1".to_owned()], true));
}

#[test]
fn a_field_no_condition_reads_still_makes_a_request_invalid() {
    let engine = cached_engine(
        r#"@id("readers") permit(principal, action, resource) when { context.scopes.contains("read") };"#,
    );
    let at =
        |time: serde_json::Value| read_by("alice", 1, json!({"scopes": ["read"], "time": time}));
    let datetime = |text: &str| json!({"__extn": {"fn": "datetime", "arg": text}});
    assert!(
        engine
            .authorize_request(at(datetime("2026-11-29T10:00:00.000Z")))
            .is_allow()
    );
    // Another time, which no condition reads: the kept decision.
    let other_time = engine.authorize_request(at(datetime("2026-11-29T10:00:00.001Z")));
    assert_eq!(
        summary(&other_time),
        (true, vec!["readers".to_owned()], true)
    );
    // A time that is no datetime: refused as without the cache, and never kept.
    for _ in 0..2 {
        let refused = engine.authorize_request(at(datetime("not a time")));
        assert!(!refused.is_allow());
        assert!(!refused.details().is_cached());
        assert!(matches!(
            refused.errors(),
            [DecisionError::InvalidRequest { .. }]
        ));
    }
}

/// Requests mapped from HTTP carry their time: they share kept decisions only when no
/// condition reads it.
#[test]
fn mapped_requests_hit_only_when_no_condition_reads_the_time() {
    let request = http::Request::get("/orders/42").body(()).unwrap();
    let mapping = HttpMapping::conventions("orders");
    let ask = |engine: &PolicyEngine, millis: u64| {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_000 + millis);
        let input = HttpInput::from_request(&request, now).with_route("/orders/{id}");
        let mapped = mapping.map(&input).unwrap();
        engine
            .authorize_request(mapped.into_request(uid(r#"User::"alice""#)))
            .details()
            .is_cached()
    };
    let by_path = cached_engine(
        r#"permit(principal, action, resource) when { context.path_params.id == "42" };"#,
    );
    assert!(!ask(&by_path, 0));
    assert!(ask(&by_path, 1));
    let by_time = cached_engine(
        r#"permit(principal, action, resource) when { context.time > datetime("2020-01-01") };"#,
    );
    assert!(!ask(&by_time, 0));
    assert!(!ask(&by_time, 1));
    assert!(ask(&by_time, 1));
}
