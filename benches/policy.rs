//! `PolicyEngine::authorize_request` against its floor, raw `cedar_policy::Authorizer`, on the
//! same RBAC-style policies, entities and request, at 10, 100, 1,000 and 10,000 policies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::str::FromStr;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use meshguard::policy::{EntitySource, EntityUid, PolicyEngine, PolicySource, Request, cedar};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// One permit per role and action pair, as a role-based service would write them.
fn policies(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "permit(principal in Role::\"role{i}\", action == Action::\"act{}\", resource);\n",
                i % 10
            )
        })
        .collect()
}

/// The user is in the last role, so the request is allowed by the last policy only.
fn entities(n: usize) -> String {
    let mut items: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"uid":{{"type":"Role","id":"role{i}"}},"attrs":{{}},"parents":[]}}"#))
        .collect();
    items.push(format!(
        r#"{{"uid":{{"type":"User","id":"alice"}},"attrs":{{}},"parents":[{{"type":"Role","id":"role{}"}}]}}"#,
        n - 1
    ));
    format!("[{}]", items.join(","))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("authorize");
    for n in SIZES {
        let text = policies(n);
        let json = entities(n);
        let principal = EntityUid::new("User", "alice").unwrap();
        let action = EntityUid::new("Action", &format!("act{}", (n - 1) % 10)).unwrap();
        let resource = EntityUid::new("Doc", "d1").unwrap();

        let engine = PolicyEngine::builder(PolicySource::text(text.clone()))
            .entities(EntitySource::json(json.clone()))
            .build()
            .unwrap();
        let check = engine.authorize_request(Request::new(
            principal.clone(),
            action.clone(),
            resource.clone(),
        ));
        assert!(check.is_allow(), "bench request must be allowed");

        let raw_policies = cedar_policy::PolicySet::from_str(&text).unwrap();
        let raw_entities = cedar_policy::Entities::from_json_str(&json, None).unwrap();
        let authorizer = cedar_policy::Authorizer::new();

        group.bench_with_input(BenchmarkId::new("meshguard", n), &n, |b, _| {
            b.iter(|| {
                let request = Request::new(principal.clone(), action.clone(), resource.clone());
                black_box(engine.authorize_request(black_box(request)))
            });
        });
        group.bench_with_input(BenchmarkId::new("raw_cedar", n), &n, |b, _| {
            b.iter(|| {
                let request = cedar_policy::Request::new(
                    cedar::entity_uid(&principal).clone(),
                    cedar::entity_uid(&action).clone(),
                    cedar::entity_uid(&resource).clone(),
                    cedar_policy::Context::empty(),
                    None,
                )
                .unwrap();
                black_box(authorizer.is_authorized(
                    black_box(&request),
                    &raw_policies,
                    &raw_entities,
                ))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
