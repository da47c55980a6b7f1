//! The decision cache's own rules: expiry, bounds, and equal fingerprints of different keys.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use super::*;
use crate::policy::decision::Details;
use crate::policy::values::PolicyId;

fn uid(type_name: &str, id: &str) -> EntityUid {
    EntityUid::new(type_name, id).unwrap()
}

/// A cache whose clock moves by hand, over a set whose conditions read `context.scopes`.
fn cache(capacity: usize, ttl_ms: u64) -> (DecisionCache, Arc<AtomicU64>) {
    let fields = ContextFields::Named(BTreeSet::from(["scopes".to_owned()]));
    let mut cache = DecisionCache::new(
        &DecisionCacheConfig::new(capacity, Duration::from_millis(ttl_ms)),
        fields,
    )
    .unwrap();
    let millis = Arc::new(AtomicU64::new(0));
    cache.clock = Ticks::Manual(millis.clone());
    (cache, millis)
}

fn decision(policy: &str) -> Decision {
    Decision::Allow(Details {
        principal: None,
        action: None,
        resource: None,
        policy_ids: vec![PolicyId::from_cedar(policy.parse().unwrap())],
        errors: Vec::new(),
        cause: None,
        generation: 1,
        elapsed: Duration::ZERO,
        shadow: None,
        cached: false,
    })
}

/// A request by `who` with this context.
struct Asked {
    principal: EntityUid,
    action: EntityUid,
    resource: EntityUid,
    context: Context,
    entities: Entities,
}

fn asked(who: &str, context: serde_json::Value) -> Asked {
    Asked {
        principal: uid("User", who),
        action: uid("Action", "read"),
        resource: uid("Doc", "d"),
        context: Context::from_json(context).unwrap(),
        entities: Entities::new(),
    }
}

fn look_up(cache: &DecisionCache, request: &Asked) -> Lookup {
    cache.look_up(
        &request.principal,
        &request.action,
        &request.resource,
        &request.context,
        &request.entities,
    )
}

/// The policy of the decision kept for `request`, if any; keeps `policy`'s on a miss.
fn hit_or_keep(cache: &DecisionCache, request: &Asked, policy: &str) -> Option<String> {
    match look_up(cache, request) {
        Lookup::Hit(entry) => Some(entry.decision.policy_ids()[0].as_str().to_owned()),
        Lookup::Miss(key) => {
            cache.insert(key, &decision(policy));
            None
        }
        Lookup::Uncacheable => panic!("uncacheable"),
    }
}

fn entries(cache: &DecisionCache) -> usize {
    cache
        .shards
        .iter()
        .map(|shard| shard.lock().unwrap().entries.len())
        .sum()
}

#[test]
fn a_kept_decision_expires_after_its_ttl() {
    let (cache, millis) = cache(16, 100);
    let request = asked("alice", json!({"scopes": ["a"]}));
    assert_eq!(hit_or_keep(&cache, &request, "first"), None);
    millis.store(99, Ordering::Relaxed);
    assert_eq!(
        hit_or_keep(&cache, &request, "second").as_deref(),
        Some("first")
    );
    millis.store(100, Ordering::Relaxed);
    assert_eq!(hit_or_keep(&cache, &request, "second"), None);
    assert_eq!(
        hit_or_keep(&cache, &request, "third").as_deref(),
        Some("second")
    );
}

#[test]
fn distinct_requests_never_hold_more_than_the_capacity() {
    for capacity in [1, 5, 16, 100] {
        let (cache, _) = cache(capacity, 60_000);
        for n in 0..capacity * 20 {
            let request = asked(&format!("user-{n}"), json!({}));
            assert_eq!(hit_or_keep(&cache, &request, "p"), None);
            assert!(
                entries(&cache) <= capacity,
                "{} > {capacity}",
                entries(&cache)
            );
        }
        // The last request is still kept: a full shard starts over, it does not refuse.
        let last = asked(&format!("user-{}", capacity * 20 - 1), json!({}));
        assert_eq!(hit_or_keep(&cache, &last, "q").as_deref(), Some("p"));
    }
}

#[test]
fn the_weight_bound_holds_and_an_entry_past_it_is_not_kept() {
    let config = DecisionCacheConfig::new(1_000, Duration::from_secs(60)).max_weight(16 * 50);
    let fields = ContextFields::Whole;
    let cache = DecisionCache::new(&config, fields).unwrap();
    let heavy = asked("alice", json!({"list": (0..100).collect::<Vec<_>>()}));
    assert_eq!(hit_or_keep(&cache, &heavy, "p"), None);
    assert_eq!(
        hit_or_keep(&cache, &heavy, "p"),
        None,
        "kept past its shard's weight"
    );
    for n in 0..200 {
        let request = asked(
            &format!("user-{n}"),
            json!({"list": [1, 2, 3, 4, 5, 6, 7, 8]}),
        );
        hit_or_keep(&cache, &request, "p");
        for shard in &cache.shards {
            assert!(shard.lock().unwrap().weight <= 50);
        }
    }
}

#[test]
fn keys_with_one_fingerprint_never_answer_for_each_other() {
    let (mut cache, _) = cache(64, 60_000);
    cache.collide = true;
    let alice = asked("alice", json!({"scopes": ["read"]}));
    let bob = asked("bob", json!({"scopes": ["read"]}));
    let alice_write = asked("alice", json!({"scopes": ["write"]}));
    assert_eq!(hit_or_keep(&cache, &alice, "alice"), None);
    assert_eq!(hit_or_keep(&cache, &bob, "bob"), None);
    assert_eq!(hit_or_keep(&cache, &alice_write, "alice-write"), None);
    assert_eq!(
        hit_or_keep(&cache, &alice_write, "x").as_deref(),
        Some("alice-write")
    );
    assert_eq!(hit_or_keep(&cache, &alice, "alice"), None);
    assert_eq!(hit_or_keep(&cache, &bob, "bob"), None);
}

#[test]
fn unread_fields_count_by_name_read_ones_by_value_and_order_matters() {
    let (cache, _) = cache(64, 60_000);
    let at = |time: &str, scopes: serde_json::Value| {
        asked("alice", json!({"time": time, "scopes": scopes}))
    };
    assert_eq!(
        hit_or_keep(&cache, &at("t1", json!(["a", "b"])), "ab"),
        None
    );
    // `time` is not read: another value is the same request.
    assert_eq!(
        hit_or_keep(&cache, &at("t2", json!(["a", "b"])), "x").as_deref(),
        Some("ab")
    );
    // `scopes` is read: another order is another request.
    assert_eq!(
        hit_or_keep(&cache, &at("t1", json!(["b", "a"])), "ba"),
        None
    );
    // Another set of names is another request (Cedar's errors list the fields present).
    let fewer = asked("alice", json!({"scopes": ["a", "b"]}));
    assert_eq!(hit_or_keep(&cache, &fewer, "fewer"), None);
    // Member order inside a read value counts too.
    let first = asked("alice", json!({"scopes": {"x": 1, "y": 2}}));
    let mut swapped = Map::new();
    swapped.insert("y".to_owned(), json!(2));
    swapped.insert("x".to_owned(), json!(1));
    let second = asked("alice", json!({"scopes": Value::Object(swapped)}));
    assert_eq!(hit_or_keep(&cache, &first, "xy"), None);
    assert_eq!(hit_or_keep(&cache, &second, "yx"), None);
    assert_eq!(hit_or_keep(&cache, &first, "x").as_deref(), Some("xy"));
}

#[test]
fn request_entities_are_compared_by_content() {
    let (cache, _) = cache(64, 60_000);
    let with_level = |level: i64| {
        let mut request = asked("alice", json!({}));
        let entity = crate::policy::Entity::builder(uid("User", "alice"))
            .attribute("level", &json!(level))
            .unwrap()
            .build()
            .unwrap();
        request.entities = Entities::from_iter([entity]);
        request
    };
    // The fingerprint hashes a built entity's uid only: these two share one, and replace
    // each other without ever answering for each other.
    assert_eq!(hit_or_keep(&cache, &with_level(1), "one"), None);
    assert_eq!(
        hit_or_keep(&cache, &with_level(1), "x").as_deref(),
        Some("one")
    );
    assert_eq!(hit_or_keep(&cache, &with_level(2), "two"), None);
    assert_eq!(
        hit_or_keep(&cache, &with_level(2), "x").as_deref(),
        Some("two")
    );
    assert_eq!(hit_or_keep(&cache, &with_level(1), "one"), None);
}

#[test]
fn cedar_contexts_and_deep_values_are_not_cached() {
    let (cache, _) = cache(64, 60_000);
    let mut request = asked("alice", json!({}));
    request.context = Context::from_cedar(cedar_policy::Context::empty());
    assert!(matches!(look_up(&cache, &request), Lookup::Uncacheable));
    let mut deep = json!(1);
    for _ in 0..=crate::policy::MAX_DATA_NESTING {
        deep = json!([deep]);
    }
    let request = asked("alice", json!({ "scopes": deep }));
    assert!(matches!(look_up(&cache, &request), Lookup::Uncacheable));
}

#[test]
fn a_cache_that_keeps_nothing_is_not_made() {
    let fields = ContextFields::Whole;
    assert!(
        DecisionCache::new(
            &DecisionCacheConfig::new(0, Duration::from_secs(1)),
            fields.clone()
        )
        .is_none()
    );
    assert!(DecisionCache::new(&DecisionCacheConfig::new(10, Duration::ZERO), fields).is_none());
}
