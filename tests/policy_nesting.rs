//! Deeply nested policies, schemas and entities are refused with an error, never a stack
//! overflow; and what the bounds let through is safe on a 2 MiB stack in a debug build.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod policy_support;

use meshguard::policy::{
    Context, EntitySource, MAX_DATA_NESTING, MAX_EXPRESSION_HEIGHT, MAX_POLICY_NESTING,
    PolicyEngine, PolicyError, PolicySource, Request, SchemaSource,
};
use policy_support::{on_small_stack_in_child, uid};

const SCHEMA: &str =
    "entity User; action view appliesTo { principal: User, resource: User, context: { a: Bool } };";

fn policy(body: &str) -> String {
    format!("permit(principal, action, resource) when {{ {body} }};")
}

/// Policy bodies at the bounds, one per way Cedar's grammar nests or chains. The condition's
/// braces are one level of nesting and of height already.
fn at_the_bounds() -> Vec<(&'static str, String)> {
    let n = MAX_POLICY_NESTING - 1;
    let h = MAX_EXPRESSION_HEIGHT - 1;
    let wrap = |open: &str, inner: &str, close: &str| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    vec![
        ("parentheses", wrap("(", "context.a", ")")),
        ("negated groups", wrap("!(", "context.a", ")")),
        ("sets", format!("{} == [1]", wrap("[", "1", "]"))),
        ("records", format!("{} == {{}}", wrap("{a: ", "1", "}"))),
        (
            "calls",
            format!("{}.isIpv4()", wrap("ip(", "\"10.0.0.1\"", ")")),
        ),
        (
            "indexing",
            format!("context{} == 1", "[\"a\"]".repeat(h / 2)),
        ),
        (
            "nested if",
            wrap("if context.a then ", "true", " else false"),
        ),
        (
            "else-if chain",
            format!("{}true", "if context.a then true else ".repeat(n)),
        ),
        ("or chain", format!("true{}", " || context.a".repeat(h / 2))),
        (
            "and chain",
            format!("true{}", " && context.a".repeat(h / 2)),
        ),
        ("sum", format!("1{} == 2", " + 1".repeat(h - 1))),
        (
            "attribute chain",
            format!("context{} == 1", ".a".repeat(h - 1)),
        ),
        (
            "method chain",
            format!("[1]{}", ".contains(1)".repeat(h / 2)),
        ),
        ("unary", "!!!!context.a && ----1 == 1".to_owned()),
        (
            "chains in nested groups",
            format!(
                "{}true{}",
                "(true || ".repeat(n - 1),
                format!("{})", " || true".repeat(h / n - 2)).repeat(n - 1)
            ),
        ),
    ]
}

/// Loads (with and without the schema, so that validation and evaluation both run),
/// decides a request and drops the engine: none of it may overflow a 2 MiB stack.
fn load_decide_drop(text: &str) -> Vec<Result<(), PolicyError>> {
    let mut outcomes = Vec::new();
    for schema in [None, Some(SCHEMA)] {
        let mut builder = PolicyEngine::builder(PolicySource::text(text));
        if let Some(schema) = schema {
            builder = builder.schema(SchemaSource::cedar(schema));
        }
        outcomes.push(builder.build().map(|engine| {
            let request = Request::new(
                uid(r#"User::"a""#),
                uid(r#"Action::"view""#),
                uid(r#"User::"b""#),
            )
            .with_context(Context::from_json(serde_json::json!({"a": true})).unwrap());
            let _ = engine.authorize_request(request);
        }));
    }
    outcomes
}

#[test]
fn policies_at_the_bounds_load_and_decide_on_a_2_mib_stack() {
    on_small_stack_in_child(
        "policies_at_the_bounds_load_and_decide_on_a_2_mib_stack",
        || {
            for (name, body) in at_the_bounds() {
                for outcome in load_decide_drop(&policy(&body)) {
                    if let Err(error) = outcome {
                        assert_ne!(error.reason(), "too_deep", "{name}: {error}");
                    }
                }
            }
        },
    );
}

#[test]
fn hostile_policies_are_refused_on_a_2_mib_stack_with_where() {
    on_small_stack_in_child(
        "hostile_policies_are_refused_on_a_2_mib_stack_with_where",
        || {
            let n = 300;
            let hostile = [
                format!("{}1{} == 1", "(".repeat(n), ")".repeat(n)),
                format!("{}1{} == [1]", "[".repeat(n), "]".repeat(n)),
                format!("{}1{} == {{}}", "{a:".repeat(n), "}".repeat(n)),
                format!("{}true", "if context.a then true else ".repeat(2_000)),
                format!("true{}", " || context.a".repeat(100_000)),
                format!("context{} == 1", ".a".repeat(100_000)),
            ];
            for body in hostile {
                let text = format!("// a comment line\n{}", policy(&body));
                for outcome in load_decide_drop(&text) {
                    let error = outcome.unwrap_err();
                    let PolicyError::TooDeep { origin, line, .. } = &error else {
                        panic!("{error}")
                    };
                    assert_eq!((origin.as_str(), *line), ("<policies>", 2));
                    assert_eq!(error.reason(), "too_deep");
                }
            }
        },
    );
}

#[test]
fn schemas_and_entities_at_the_bound_load_and_past_it_are_refused() {
    on_small_stack_in_child(
        "schemas_and_entities_at_the_bound_load_and_past_it_are_refused",
        || {
            let permit = PolicySource::text("permit(principal, action, resource);");
            let sets = |n: usize| {
                format!(
                    "entity User {{ a: {}Long{} }}; action view appliesTo {{ principal: User, resource: User }};",
                    "Set<".repeat(n),
                    ">".repeat(n)
                )
            };
            let records = |n: usize| {
                format!(
                    "entity User {{ a: {}Long{} }}; action view appliesTo {{ principal: User, resource: User }};",
                    "{a: ".repeat(n),
                    "}".repeat(n)
                )
            };
            // The entity's braces are one level.
            let fits = MAX_DATA_NESTING - 1;
            for schema in [sets(fits), records(fits)] {
                PolicyEngine::builder(permit.clone())
                    .schema(SchemaSource::cedar(schema))
                    .build()
                    .unwrap();
            }
            for schema in [sets(1_000), records(1_000)] {
                let error = PolicyEngine::builder(permit.clone())
                    .schema(SchemaSource::cedar(schema))
                    .build()
                    .unwrap_err();
                assert_eq!(error.reason(), "too_deep", "{error}");
            }
            // Entities: `[{"uid": …, "attrs": {"a": <value>}}]` is three levels.
            let entities = |n: usize| {
                format!(
                    r#"[{{"uid": {{"type": "User", "id": "a"}}, "attrs": {{"a": {}1{}}}, "parents": []}}]"#,
                    "[".repeat(n),
                    "]".repeat(n)
                )
            };
            PolicyEngine::builder(permit.clone())
                .entities(EntitySource::json(entities(MAX_DATA_NESTING - 3)))
                .build()
                .unwrap();
            let error = PolicyEngine::builder(permit.clone())
                .entities(EntitySource::json(entities(MAX_DATA_NESTING)))
                .build()
                .unwrap_err();
            assert_eq!(error.reason(), "too_deep", "{error}");
            // A JSON schema, nested sets.
            let json_schema = |n: usize| {
                format!(
                    r#"{{"": {{"entityTypes": {{"User": {{"shape": {{"type": "Record", "attributes": {{"a": {}{{"type": "Long"}}{}}}}}}}}}, "actions": {{}}}}}}"#,
                    r#"{"type": "Set", "element": "#.repeat(n),
                    "}".repeat(n)
                )
            };
            PolicyEngine::builder(permit.clone())
                .schema(SchemaSource::json(json_schema(MAX_DATA_NESTING - 7)))
                .build()
                .unwrap();
            let error = PolicyEngine::builder(permit)
                .schema(SchemaSource::json(json_schema(MAX_DATA_NESTING)))
                .build()
                .unwrap_err();
            assert_eq!(error.reason(), "too_deep", "{error}");
        },
    );
}
