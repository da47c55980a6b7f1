//! Policy decisions: the engine's scope index against raw Cedar on the whole set
//! (`cedar_full_10000`, `authorize_indexed_10000`, `authorize_10`), and a per-request
//! principal over static stores of 10 and 100,000 entities (`request_principal_10`,
//! `request_principal_100000`), which must cost the same.

use std::hint::black_box;
use std::str::FromStr;

use criterion::Criterion;
use meshguard::policy::{
    Entities, Entity, EntitySource, EntityUid, PolicyEngine, PolicySource, Request,
};

/// One permit per role, each for one of ten actions, as a role-based service writes them.
fn rbac_policies(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "permit(principal in Role::\"role{i}\", action == Action::\"act{}\", resource);\n",
                i % 10
            )
        })
        .collect()
}

/// `n` roles and a static user in the last one.
fn rbac_entities(n: usize) -> String {
    let mut items = roles(n);
    items.push(format!(
        r#"{{"uid":{{"type":"User","id":"alice"}},"attrs":{{}},"parents":[{{"type":"Role","id":"role{}"}}]}}"#,
        n - 1
    ));
    format!("[{}]", items.join(","))
}

fn roles(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!(r#"{{"uid":{{"type":"Role","id":"role{i}"}},"attrs":{{}},"parents":[]}}"#))
        .collect()
}

fn uid(text: &str) -> EntityUid {
    EntityUid::from_str(text).unwrap()
}

pub(crate) fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_path");

    // The last role's policy allows the static user: the request matches one policy of n.
    let n = 10_000;
    let text = rbac_policies(n);
    let json = rbac_entities(n);
    let (principal, action, resource) = (
        uid(r#"User::"alice""#),
        uid(&format!(r#"Action::"act{}""#, (n - 1) % 10)),
        uid(r#"Doc::"d1""#),
    );
    let raw_policies = cedar_policy::PolicySet::from_str(&text).unwrap();
    let raw_entities = cedar_policy::Entities::from_json_str(&json, None).unwrap();
    let authorizer = cedar_policy::Authorizer::new();
    let raw_request = cedar_policy::Request::new(
        meshguard::policy::cedar::entity_uid(&principal).clone(),
        meshguard::policy::cedar::entity_uid(&action).clone(),
        meshguard::policy::cedar::entity_uid(&resource).clone(),
        cedar_policy::Context::empty(),
        None,
    )
    .unwrap();
    let raw = authorizer.is_authorized(&raw_request, &raw_policies, &raw_entities);
    assert_eq!(raw.decision(), cedar_policy::Decision::Allow);
    group.bench_function("cedar_full_10000", |b| {
        b.iter(|| {
            let request = cedar_policy::Request::new(
                meshguard::policy::cedar::entity_uid(&principal).clone(),
                meshguard::policy::cedar::entity_uid(&action).clone(),
                meshguard::policy::cedar::entity_uid(&resource).clone(),
                cedar_policy::Context::empty(),
                None,
            )
            .unwrap();
            black_box(authorizer.is_authorized(&request, &raw_policies, &raw_entities))
        });
    });

    let engine = PolicyEngine::builder(PolicySource::text(text))
        .entities(EntitySource::json(json))
        .build()
        .unwrap();
    let request = Request::new(principal.clone(), action.clone(), resource.clone());
    assert!(engine.authorize_request(request.clone()).is_allow());
    group.bench_function("authorize_indexed_10000", |b| {
        b.iter(|| black_box(engine.authorize_request(black_box(request.clone()))));
    });

    let small = PolicyEngine::builder(PolicySource::text(rbac_policies(10)))
        .entities(EntitySource::json(rbac_entities(10)))
        .build()
        .unwrap();
    let request = Request::new(
        principal.clone(),
        uid(r#"Action::"act9""#),
        resource.clone(),
    );
    assert!(small.authorize_request(request.clone()).is_allow());
    group.bench_function("authorize_10", |b| {
        b.iter(|| black_box(small.authorize_request(black_box(request.clone()))));
    });

    // Ten role policies over n static roles; the principal comes with each request, in the
    // ninth role, as the guard brings a caller's entity.
    let policies: String = (0..10)
        .map(|i| {
            format!(
                "permit(principal in Role::\"role{i}\", action == Action::\"read\", resource);\n"
            )
        })
        .collect();
    let user = Entity::builder(principal.clone())
        .parent(uid(r#"Role::"role9""#))
        .build()
        .unwrap();
    let request = Request::new(
        principal.clone(),
        uid(r#"Action::"read""#),
        resource.clone(),
    )
    .with_entities(Entities::from_iter([user]));
    for n in [10, 100_000] {
        let engine = PolicyEngine::builder(PolicySource::text(policies.clone()))
            .entities(EntitySource::json(format!("[{}]", roles(n).join(","))))
            .build()
            .unwrap();
        assert!(engine.authorize_request(request.clone()).is_allow());
        group.bench_function(format!("request_principal_{n}"), |b| {
            b.iter(|| black_box(engine.authorize_request(black_box(request.clone()))));
        });
    }
    group.finish();
}
