//! Cedar's integration corpus (tests/data/cedar/cedar.json, from
//! cedar-policy/cedar-integration-tests) as differential cases: each request is decided with
//! its principal and resource entities moved out of the static store into the request, and
//! with them kept static and also brought by the request.

use serde_json::Value;

use super::generate::GenRequest;

/// One test of the corpus: schema (when its policies validate), policies, entities and
/// requests.
pub(crate) struct Case {
    pub(crate) id: String,
    pub(crate) schema: Option<String>,
    pub(crate) policies: String,
    pub(crate) entities: Vec<Value>,
    pub(crate) requests: Vec<Value>,
}

pub(crate) fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cedar/cedar.json"
    ))
    .unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for test in data["tests"].as_array().unwrap() {
        let schema = &data["schemas"][test["schema_ref"].as_str().unwrap()];
        let entities = &data["entity_sets"][test["entities_ref"].as_str().unwrap()];
        out.push(case(test, schema, entities));
    }
    for test in data["corpus_sample"].as_array().unwrap() {
        out.push(case(test, &test["schema"], &test["entities"]));
    }
    out
}

fn case(test: &Value, schema: &Value, entities: &Value) -> Case {
    let validates = test["shouldValidate"].as_bool().unwrap();
    Case {
        id: test["id"].as_str().unwrap().to_owned(),
        schema: validates.then(|| schema.as_str().unwrap().to_owned()),
        policies: test["policies"].as_str().unwrap().to_owned(),
        entities: entities.as_array().unwrap().clone(),
        requests: test["requests"].as_array().unwrap().clone(),
    }
}

fn uid_text(value: &Value) -> String {
    cedar_policy::EntityUid::from_json(value.clone())
        .unwrap()
        .to_string()
}

/// The static entities and the request when the request brings its principal's and
/// resource's entities: `moved` takes them out of the static store, otherwise they are in
/// both.
pub(crate) fn split(case: &Case, request: &Value, moved: bool) -> (Vec<Value>, GenRequest) {
    let brought =
        |item: &Value| item["uid"] == request["principal"] || item["uid"] == request["resource"];
    let statics = case
        .entities
        .iter()
        .filter(|item| !(moved && brought(item)))
        .cloned()
        .collect();
    let request = GenRequest {
        principal: uid_text(&request["principal"]),
        action: uid_text(&request["action"]),
        resource: uid_text(&request["resource"]),
        context: request["context"].clone(),
        entities: case
            .entities
            .iter()
            .filter(|item| brought(item))
            .cloned()
            .collect(),
        closed_duplicate: None,
    };
    (statics, request)
}
