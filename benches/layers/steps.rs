//! The guard's steps measured one by one: bearer extraction, verification, HTTP mapping,
//! principal mapping, the engine's decision, and the Cedar context built three ways.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BatchSize, Criterion};
use meshguard::caller::Caller;
use meshguard::policy::{HttpInput, HttpMapping};
use meshguard::token::bearer::BearerExtractor;

use crate::service::{CedarFloor, cases, engine, request};
use crate::{PAIRED_BATCH, PAIRED_ROUNDS, ROUTE, SERVICE, paired};

/// The guard's steps one by one, for the HS256 case (the verification step of the other
/// algorithms is their signature check, measured above).
pub(crate) fn steps(c: &mut Criterion) {
    let case = cases().pop().unwrap();
    let engine = engine();
    let mapping = HttpMapping::conventions(SERVICE);
    let bearer = format!("Bearer {}", case.token);
    let http = request(&bearer);
    let extractor = BearerExtractor::new();
    let verified = case.verifier.verify(&case.token).unwrap();
    let caller = Caller::from_token(verified.clone());
    let now = SystemTime::now();
    let mapped = mapping
        .map(&HttpInput::from_request(&http, now).with_route(ROUTE))
        .unwrap();
    let prepared = engine
        .request_for(
            &caller,
            mapped.action(),
            mapped.resource(),
            mapped.context().clone(),
        )
        .unwrap();
    let decision = engine.authorize_request(prepared.clone());
    assert!(decision.is_allow());
    let cedar = CedarFloor::new(&engine, &caller);
    let context_json = serde_json::Value::Object(prepared.context().as_json().unwrap().clone());
    let user = cedar
        .entities
        .get(meshguard::policy::cedar::entity_uid(prepared.principal()))
        .unwrap()
        .clone();

    let mut group = c.benchmark_group("steps/HS256");
    group.bench_function("bearer extraction", |b| {
        b.iter(|| {
            extractor
                .extract(black_box(http.headers()), http.uri())
                .unwrap()
                .len()
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| case.verifier.verify(black_box(&case.token)).unwrap())
    });
    group.bench_function("HttpMapping::map", |b| {
        b.iter(|| {
            mapping
                .map(&HttpInput::from_request(black_box(&http), now).with_route(ROUTE))
                .unwrap()
        })
    });
    group.bench_function("principal mapping (request_for)", |b| {
        b.iter_batched(
            || mapped.context().clone(),
            |context| {
                engine
                    .request_for(&caller, mapped.action(), mapped.resource(), context)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("engine.authorize_request", |b| {
        b.iter_batched(
            || prepared.clone(),
            |request| engine.authorize_request(request).is_allow(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("engine.authorize (mapping + decision)", |b| {
        b.iter_batched(
            || mapped.context().clone(),
            |context| {
                engine
                    .authorize(&caller, mapped.action(), mapped.resource(), context)
                    .is_allow()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("raw cedar is_authorized", |b| {
        b.iter(|| black_box(&cedar).decide())
    });
    group.bench_function("cedar Context::from_json_value", |b| {
        b.iter_batched(
            || context_json.clone(),
            |json| cedar_policy::Context::from_json_value(json, None).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("cedar Context::from_pairs (same values)", |b| {
        b.iter(|| context_from_pairs(black_box(&context_json)))
    });
    group.bench_function("cedar Entities::add_entities (the principal)", |b| {
        b.iter_batched(
            || user.clone(),
            |user| {
                cedar_policy::Entities::empty()
                    .add_entities([user], None)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("extension inserts", |b| {
        b.iter(|| {
            let mut extensions = http::Extensions::new();
            extensions.insert(verified.clone());
            extensions.insert(caller.clone());
            extensions.insert(decision.clone());
            extensions.len()
        })
    });
    group.bench_function("span and counter", |b| {
        b.iter(|| {
            let span = tracing::info_span!(
                target: "meshguard::request",
                "meshguard",
                caller = tracing::field::Empty,
                duration_us = tracing::field::Empty,
            );
            metrics::counter!("meshguard_decisions_total", "decision" => "allow").increment(1);
            span.is_disabled()
        })
    });
    group.finish();
    if !paired() {
        return;
    }

    // The steps that matter, in alternating batches: what each costs next to raw Cedar.
    let steps: [(&str, &dyn Fn()); 8] = [
        ("bearer extraction", &|| {
            black_box(
                extractor
                    .extract(black_box(http.headers()), http.uri())
                    .is_ok(),
            );
        }),
        ("verify", &|| {
            black_box(case.verifier.verify(black_box(&case.token)).is_ok());
        }),
        ("HttpMapping::map", &|| {
            black_box(
                mapping
                    .map(&HttpInput::from_request(black_box(&http), now).with_route(ROUTE))
                    .is_ok(),
            );
        }),
        ("principal mapping (request_for)", &|| {
            let context = mapped.context().clone();
            black_box(
                engine
                    .request_for(&caller, mapped.action(), mapped.resource(), context)
                    .is_ok(),
            );
        }),
        ("engine.authorize_request", &|| {
            black_box(engine.authorize_request(prepared.clone()).is_allow());
        }),
        ("raw cedar is_authorized", &|| {
            black_box(black_box(&cedar).decide());
        }),
        ("cedar Context::from_json_value", &|| {
            black_box(cedar_policy::Context::from_json_value(context_json.clone(), None).is_ok());
        }),
        ("cedar Context::from_pairs (same values)", &|| {
            black_box(context_from_pairs(black_box(&context_json)));
        }),
    ];
    let mut times = [Duration::ZERO; 8];
    for _ in 0..PAIRED_ROUNDS {
        for ((_, step), time) in steps.iter().zip(&mut times) {
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                step();
            }
            *time += start.elapsed();
        }
    }
    for ((name, _), time) in steps.iter().zip(times) {
        println!(
            "steps/HS256 paired: {name} {:.2} µs",
            time.as_secs_f64() * 1e6 / (PAIRED_ROUNDS * PAIRED_BATCH) as f64
        );
    }
}

/// The JSON context as Cedar values built directly, without cedar's JSON parser: what a
/// direct conversion could cost (it handles only what `HttpMapping::conventions` produces).
fn context_from_pairs(json: &serde_json::Value) -> cedar_policy::Context {
    fn value(json: &serde_json::Value) -> cedar_policy::RestrictedExpression {
        use cedar_policy::RestrictedExpression as E;
        match json {
            serde_json::Value::Bool(b) => E::new_bool(*b),
            serde_json::Value::Number(n) => E::new_long(n.as_i64().unwrap()),
            serde_json::Value::String(s) => E::new_string(s.clone()),
            serde_json::Value::Array(items) => E::new_set(items.iter().map(value)),
            serde_json::Value::Object(map) => match map.get("__extn") {
                Some(extn) => E::new_datetime(extn["arg"].as_str().unwrap()),
                None => E::new_record(map.iter().map(|(k, v)| (k.clone(), value(v)))).unwrap(),
            },
            serde_json::Value::Null => panic!("no null in the context"),
        }
    }
    let fields = json.as_object().unwrap();
    cedar_policy::Context::from_pairs(fields.iter().map(|(k, v)| (k.clone(), value(v)))).unwrap()
}
