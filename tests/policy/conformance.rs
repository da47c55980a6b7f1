//! Cedar's integration-test requests (tests/data/cedar, from cedar-policy/cedar-integration-tests)
//! decided through `PolicyEngine`: exact Cedar decisions with `skip_erroring_policies`, and
//! fail-closed decisions by default.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use meshguard::policy::{
    Context, DecisionError, DiagnosticKind, EntitySource, EntityUid, PolicyEngine, PolicySource,
    Request, SchemaSource,
};
use serde_json::Value;

/// One test of the file with its inputs resolved.
struct Case {
    id: String,
    policies: String,
    entities: String,
    schema: String,
    should_validate: bool,
    requests: Vec<Value>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cedar/cedar.json"
    ))
    .unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for test in data["tests"].as_array().unwrap() {
        out.push(Case {
            id: test["id"].as_str().unwrap().to_owned(),
            policies: test["policies"].as_str().unwrap().to_owned(),
            entities: data["entity_sets"][test["entities_ref"].as_str().unwrap()].to_string(),
            schema: data["schemas"][test["schema_ref"].as_str().unwrap()]
                .as_str()
                .unwrap()
                .to_owned(),
            should_validate: test["shouldValidate"].as_bool().unwrap(),
            requests: test["requests"].as_array().unwrap().clone(),
        });
    }
    for test in data["corpus_sample"].as_array().unwrap() {
        out.push(Case {
            id: test["id"].as_str().unwrap().to_owned(),
            policies: test["policies"].as_str().unwrap().to_owned(),
            entities: test["entities"].to_string(),
            schema: test["schema"].as_str().unwrap().to_owned(),
            should_validate: test["shouldValidate"].as_bool().unwrap(),
            requests: test["requests"].as_array().unwrap().clone(),
        });
    }
    assert_eq!(out.len(), 42, "22 handwritten + 20 corpus tests");
    out
}

fn entity_uid(value: &Value) -> EntityUid {
    EntityUid::new(
        value["type"].as_str().unwrap(),
        value["id"].as_str().unwrap(),
    )
    .unwrap()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Builds the engine a test is decided with: with its schema when the policies validate,
/// without it otherwise (after checking that strict loading refuses them).
fn engine_for(case: &Case, skip_errors: bool) -> PolicyEngine {
    let with_schema = PolicyEngine::builder(PolicySource::text(&case.policies))
        .schema(SchemaSource::cedar(&case.schema))
        .entities(EntitySource::json(&case.entities));
    let mut builder = if case.should_validate {
        with_schema
    } else {
        let err = with_schema.build().unwrap_err();
        assert!(
            err.diagnostics()
                .iter()
                .all(|d| d.kind() == DiagnosticKind::Validation),
            "{}: {err}",
            case.id
        );
        PolicyEngine::builder(PolicySource::text(&case.policies))
            .entities(EntitySource::json(&case.entities))
    };
    if skip_errors {
        builder = builder.skip_erroring_policies();
    }
    builder
        .build()
        .unwrap_or_else(|e| panic!("{}: {e}", case.id))
}

fn run(skip_errors: bool) -> usize {
    let mut requests = 0;
    for case in cases() {
        let engine = engine_for(&case, skip_errors);
        for expected in &case.requests {
            let request = Request::new(
                entity_uid(&expected["principal"]),
                entity_uid(&expected["action"]),
                entity_uid(&expected["resource"]),
            )
            .with_context(Context::from_json(expected["context"].clone()).unwrap());
            let decision = engine.authorize_request(request);
            let what = format!("{} / {}", case.id, expected["description"]);

            let erroring: BTreeSet<String> = decision
                .errors()
                .iter()
                .map(|e| match e {
                    DecisionError::Evaluation { policy_id, .. } => policy_id.clone(),
                    other => panic!("{what}: unexpected {other:?}"),
                })
                .collect();
            assert_eq!(erroring, strings(&expected["errors"]), "{what}");

            let reason: BTreeSet<String> = decision
                .policy_ids()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(reason, strings(&expected["reason"]), "{what}");

            let cedar_allows = expected["decision"] == "allow";
            let must_allow = cedar_allows && (skip_errors || erroring.is_empty());
            assert_eq!(decision.is_allow(), must_allow, "{what}: {decision:?}");
            requests += 1;
        }
    }
    requests
}

#[test]
fn cedar_integration_requests_match_cedar_with_skip_erroring_policies() {
    assert_eq!(run(true), 74 + 160);
}

#[test]
fn cedar_integration_requests_fail_closed_by_default() {
    assert_eq!(run(false), 74 + 160);
}
