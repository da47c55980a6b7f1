//! Deeply nested policies, schemas and entities are refused with an error, never a stack
//! overflow; and what the bounds let through is safe on a 2 MiB stack in a debug build.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::policy_support;

use meshguard::policy::{
    Context, EntitySource, MAX_DATA_NESTING, MAX_POLICY_NESTING, PolicyEngine, PolicyError,
    PolicySource, Request, SchemaSource,
};
use policy_support::{on_small_stack_in_child, uid};

const SCHEMA: &str =
    "entity User; action view appliesTo { principal: User, resource: User, context: { a: Bool } };";

fn policy(body: &str) -> String {
    format!("permit(principal, action, resource) when {{ {body} }};")
}

/// A policy with a construct repeated `k` times.
type Construct = Box<dyn Fn(usize) -> String>;

/// Every way Cedar's grammar nests or chains, as policies of growing size.
fn constructs() -> Vec<(&'static str, Construct)> {
    fn wrap(open: &'static str, inner: &'static str, close: &'static str) -> Construct {
        Box::new(move |k| policy(&format!("{}{inner}{}", open.repeat(k), close.repeat(k))))
    }
    fn chain(head: &'static str, link: &'static str, tail: &'static str) -> Construct {
        Box::new(move |k| policy(&format!("{head}{}{tail}", link.repeat(k))))
    }
    vec![
        ("parentheses", wrap("(", "context.a", ")")),
        ("negated groups", wrap("!(", "context.a", ")")),
        ("sets", wrap("[", "1", "] == [1]")),
        ("records", wrap("{a: ", "1", "} == {}")),
        ("calls", wrap("ip(", "\"10.0.0.1\"", ")")),
        (
            "nested if",
            wrap("if context.a then ", "true", " else false"),
        ),
        (
            "else-if chain",
            chain("", "if context.a then true else ", "true"),
        ),
        ("or chain", chain("true", " || context.a", "")),
        ("and chain", chain("true", " && context.a", "")),
        ("sum", chain("1", " + 1", " == 2")),
        ("attribute chain", chain("context", ".a", " == 1")),
        ("indexing", chain("context", "[\"a\"]", " == 1")),
        ("method chain", chain("[1]", ".contains(1)", "")),
        ("unary", chain("", "!", "context.a")),
        (
            "every kind, nested in turn, with chains at each level",
            Box::new(|k| {
                let opens = ["(", "[", "{a: ", "if context.a then ", "ip("];
                let closes = [")", "]", "}", " else false", ")"];
                let link = " || context.a".repeat(k);
                let (mut open, mut close) = (String::new(), String::new());
                for level in 0..MAX_POLICY_NESTING - 1 {
                    open.push_str(&format!("context.a{link} || {}", opens[level % 5]));
                    close.insert_str(0, &format!("{}{link}", closes[level % 5]));
                }
                policy(&format!("{open}true{close}"))
            }),
        ),
        (
            "chains in nested groups",
            Box::new(|k| {
                let per_group = " || true".repeat(k);
                let depth = MAX_POLICY_NESTING - 1;
                policy(&format!(
                    "{}true{}",
                    "(true || ".repeat(depth),
                    format!("{per_group})").repeat(depth)
                ))
            }),
        ),
    ]
}

/// The largest `k` whose policy the bounds let through (the scan is monotonic in `k`).
fn largest_accepted(construct: &Construct) -> usize {
    let refused = |k: usize| {
        matches!(
            PolicyEngine::builder(PolicySource::text(construct(k))).build(),
            Err(PolicyError::TooDeep { .. })
        )
    };
    let (mut accepted, mut refused_at) = (0, 1 << 13);
    assert!(refused(refused_at), "never refused");
    while refused_at - accepted > 1 {
        let middle = (accepted + refused_at) / 2;
        if refused(middle) {
            refused_at = middle;
        } else {
            accepted = middle;
        }
    }
    accepted
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
        "nesting::policies_at_the_bounds_load_and_decide_on_a_2_mib_stack",
        || {
            for (name, construct) in constructs() {
                let k = largest_accepted(&construct);
                for outcome in load_decide_drop(&construct(k)) {
                    if let Err(error) = outcome {
                        assert_ne!(error.reason(), "too_deep", "{name} × {k}: {error}");
                    }
                }
            }
        },
    );
}

#[test]
fn hostile_policies_are_refused_on_a_2_mib_stack_with_where() {
    on_small_stack_in_child(
        "nesting::hostile_policies_are_refused_on_a_2_mib_stack_with_where",
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
        "nesting::schemas_and_entities_at_the_bound_load_and_past_it_are_refused",
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

/// A schema and entities each within their bound, loaded together, so each entity's value is
/// checked against its declared type: the `policy_nesting` fuzz target's combination, which
/// overflowed 2 MiB only in its coverage-instrumented unoptimized build.
#[test]
fn entities_validated_against_a_schema_at_the_bound_load_on_a_2_mib_stack() {
    on_small_stack_in_child(
        "nesting::entities_validated_against_a_schema_at_the_bound_load_on_a_2_mib_stack",
        || {
            // The entity's braces are one schema level; `[{"uid": …, "attrs": {"a": …}}]` is
            // three JSON levels around the value.
            let depth = MAX_DATA_NESTING - 3;
            let schema = format!(
                "entity User {{ a: {}Long{} }}; action view appliesTo {{ principal: User, resource: User }};",
                "Set<".repeat(depth),
                ">".repeat(depth)
            );
            let entities = format!(
                r#"[{{"uid": {{"type": "User", "id": "a"}}, "attrs": {{"a": {}1{}}}, "parents": []}}]"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            PolicyEngine::builder(PolicySource::text("permit(principal, action, resource);"))
                .schema(SchemaSource::cedar(schema))
                .entities(EntitySource::json(entities))
                .build()
                .unwrap();
        },
    );
}
