//! The engine evaluates each request only against the policies whose scope can match its
//! action. These tests hold it to raw Cedar on the whole set: same decision, same
//! determining policies, and an error exactly when Cedar reports one (which the engine turns
//! into a deny), across `action ==`, `action in` (with an action group) and unscoped
//! policies, permits and forbids, and conditions that error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::str::FromStr;

use meshguard::policy::{
    Context, DenyCause, EntitySource, EntityUid, PolicyEngine, PolicySource, Request,
};

const ENTITIES: &str = r#"[
    {"uid": {"type": "User", "id": "alice"}, "attrs": {"level": 3}, "parents": [{"type": "Role", "id": "admin"}]},
    {"uid": {"type": "User", "id": "bob"}, "attrs": {"level": 1}, "parents": []},
    {"uid": {"type": "Action", "id": "read"}, "attrs": {}, "parents": [{"type": "Action", "id": "readers"}]},
    {"uid": {"type": "Action", "id": "list"}, "attrs": {}, "parents": [{"type": "Action", "id": "readers"}]},
    {"uid": {"type": "Action", "id": "readers"}, "attrs": {}, "parents": []}
]"#;

fn policies() -> String {
    let mut text = String::new();
    let actions = ["read", "list", "write", "delete", "audit"];
    for (i, action) in actions.iter().enumerate() {
        text.push_str(&format!(
            "@id(\"permit-{action}\") permit(principal, action == Action::\"{action}\", resource) when {{ principal.level >= {i} }};\n"
        ));
        text.push_str(&format!(
            "@id(\"forbid-{action}-bob\") forbid(principal == User::\"bob\", action == Action::\"{action}\", resource) when {{ context has strict && context.strict }};\n"
        ));
        // Errors for every request that reaches it: `missing` is not in the context.
        text.push_str(&format!(
            "@id(\"erroring-{action}\") permit(principal, action == Action::\"{action}\", resource) when {{ context.missing == \"{action}\" }};\n"
        ));
    }
    text.push_str(
        "@id(\"readers-group\") permit(principal in Role::\"admin\", action in Action::\"readers\", resource);\n",
    );
    text.push_str(
        "@id(\"listed\") permit(principal, action in [Action::\"write\", Action::\"audit\"], resource) when { principal.level > 2 };\n",
    );
    text.push_str("@id(\"any-action-forbid\") forbid(principal, action, resource) when { context has lockdown && context.lockdown };\n");
    text
}

fn uid(text: &str) -> EntityUid {
    EntityUid::from_str(text).unwrap()
}

#[test]
fn sliced_evaluation_matches_cedar_on_the_whole_set() {
    let engine = PolicyEngine::builder(PolicySource::text(policies()))
        .entities(EntitySource::json(ENTITIES))
        .skip_erroring_policies()
        .build()
        .unwrap();
    let full: cedar_policy::PolicySet = policies().parse().unwrap();
    let entities = cedar_policy::Entities::from_json_str(ENTITIES, None).unwrap();
    let authorizer = cedar_policy::Authorizer::new();

    let mut compared = 0;
    for principal in [r#"User::"alice""#, r#"User::"bob""#] {
        for action in [
            "read", "list", "write", "delete", "audit", "unnamed", "readers",
        ] {
            for context in [
                serde_json::json!({}),
                serde_json::json!({"strict": true}),
                serde_json::json!({"lockdown": true}),
                serde_json::json!({"missing": action}),
            ] {
                let action_uid = format!(r#"Action::"{action}""#);
                let request = Request::new(uid(principal), uid(&action_uid), uid(r#"Doc::"d""#))
                    .with_context(Context::from_json(context.clone()).unwrap());
                let ours = engine.authorize_request(request);

                let cedar_request = cedar_policy::Request::new(
                    principal.parse().unwrap(),
                    action_uid.parse().unwrap(),
                    r#"Doc::"d""#.parse().unwrap(),
                    cedar_policy::Context::from_json_value(context.clone(), None).unwrap(),
                    None,
                )
                .unwrap();
                let theirs = authorizer.is_authorized(&cedar_request, &full, &entities);
                // Cedar names policies parsed from text policy0, policy1, ...; the engine uses
                // their `@id`.
                let their_ids: BTreeSet<String> = theirs
                    .diagnostics()
                    .reason()
                    .map(|id| {
                        full.policy(id)
                            .unwrap()
                            .annotation("id")
                            .unwrap()
                            .to_owned()
                    })
                    .collect();
                let our_ids: BTreeSet<String> = ours
                    .policy_ids()
                    .iter()
                    .map(|id| id.as_str().to_owned())
                    .collect();
                let case = format!("{principal} {action} {context}");
                assert_eq!(
                    ours.is_allow(),
                    theirs.decision() == cedar_policy::Decision::Allow,
                    "{case}"
                );
                assert_eq!(our_ids, their_ids, "{case}");
                assert_eq!(
                    ours.errors().len(),
                    theirs.diagnostics().errors().count(),
                    "{case}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 2 * 7 * 4);
}

#[test]
fn an_error_in_a_policy_for_another_action_does_not_deny() {
    let engine = PolicyEngine::builder(PolicySource::text(policies()))
        .entities(EntitySource::json(ENTITIES))
        .build()
        .unwrap();
    // `erroring-read` errors for read requests, and the engine denies them (fail closed) ...
    let read = Request::new(
        uid(r#"User::"alice""#),
        uid(r#"Action::"read""#),
        uid(r#"Doc::"d""#),
    );
    let denied = engine.authorize_request(read);
    assert_eq!(denied.details().cause(), Some(DenyCause::Error));
    // ... while a write request never reaches it, in Cedar's evaluation or in a slice.
    let write = Request::new(
        uid(r#"User::"alice""#),
        uid(r#"Action::"write""#),
        uid(r#"Doc::"d""#),
    )
    .with_context(Context::from_json(serde_json::json!({"missing": "write"})).unwrap());
    let allowed = engine.authorize_request(write);
    assert!(allowed.is_allow(), "{:?}", allowed.details().cause());
}
