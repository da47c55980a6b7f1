//! The policy engine as a user sees it: loading (and every way it can fail) and deciding,
//! with the patterns of Cedar's documentation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::policy_support;

use meshguard::policy::{
    Context, Decision, DecisionError, DenyCause, DiagnosticKind, Entities, Entity, EntitySource,
    PolicyEngine, PolicyError, PolicySource, ProviderError, Request, SchemaSource,
};
use policy_support::{Recorder, Scratch, uid};
use serde_json::json;

const SCHEMA: &str = r#"
entity Role in [Role];
entity User in [Role] { department: String, level: Long };
entity Album { public: Bool };
entity Photo in [Album] { owner: User, private: Bool };
action view, edit, delete appliesTo {
    principal: User,
    resource: [Photo, Album],
    context: { mfa: Bool }
};
"#;

const ENTITIES: &str = r#"[
  {"uid": {"type": "Role", "id": "viewer"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Role", "id": "editor"}, "attrs": {}, "parents": [{"type": "Role", "id": "viewer"}]},
  {"uid": {"type": "User", "id": "alice"}, "attrs": {"department": "eng", "level": 7}, "parents": [{"type": "Role", "id": "editor"}]},
  {"uid": {"type": "User", "id": "bob"}, "attrs": {"department": "sales", "level": 3}, "parents": [{"type": "Role", "id": "viewer"}]},
  {"uid": {"type": "User", "id": "eve"}, "attrs": {"department": "eng", "level": 9}, "parents": []},
  {"uid": {"type": "Album", "id": "trip"}, "attrs": {"public": false}, "parents": []},
  {"uid": {"type": "Photo", "id": "beach.jpg"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "bob"}}, "private": false}, "parents": [{"type": "Album", "id": "trip"}]},
  {"uid": {"type": "Photo", "id": "secret.jpg"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "alice"}}, "private": true}, "parents": [{"type": "Album", "id": "trip"}]}
]"#;

fn engine(policies: &str) -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(policies))
        .schema(SchemaSource::cedar(SCHEMA))
        .entities(EntitySource::json(ENTITIES))
        .build()
        .unwrap()
}

fn ask(engine: &PolicyEngine, principal: &str, action: &str, resource: &str) -> Decision {
    ask_with(engine, principal, action, resource, json!({"mfa": true}))
}

fn ask_with(
    engine: &PolicyEngine,
    principal: &str,
    action: &str,
    resource: &str,
    context: serde_json::Value,
) -> Decision {
    engine.authorize_request(
        Request::new(uid(principal), uid(action), uid(resource))
            .with_context(Context::from_json(context).unwrap()),
    )
}

fn ids(decision: &Decision) -> Vec<&str> {
    decision.policy_ids().iter().map(|id| id.as_str()).collect()
}

fn invalid(err: &PolicyError) -> Vec<(DiagnosticKind, String, Option<u32>)> {
    assert_eq!(err.reason(), "invalid", "{err}");
    err.diagnostics()
        .iter()
        .map(|d| (d.kind(), d.origin().to_owned(), d.line()))
        .collect()
}

// ---- loading -------------------------------------------------------------------------------

#[test]
fn directory_policies_get_file_and_index_ids_unless_annotated() {
    let dir = Scratch::new("ids");
    dir.write(
        "b.cedar",
        "permit(principal, action, resource);\n@id(\"named\")\nforbid(principal, action, resource) when { false };",
    );
    dir.write("a.cedar", "permit(principal, action, resource);");
    dir.write("notes.txt", "not a policy");
    let engine = PolicyEngine::builder(PolicySource::path(&dir.0))
        .build()
        .unwrap();
    let ids: Vec<String> = engine
        .policy_ids()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ids, ["a.cedar#0", "b.cedar#0", "named"]);
    let decision = engine.authorize_request(Request::new(
        uid(r#"User::"a""#),
        uid(r#"Action::"x""#),
        uid(r#"Doc::"d""#),
    ));
    assert_eq!(ids_of(&decision), ["a.cedar#0", "b.cedar#0"]);
}

fn ids_of(decision: &Decision) -> Vec<String> {
    decision
        .policy_ids()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn single_file_uses_cedar_default_ids() {
    let dir = Scratch::new("file");
    let file = dir.write(
        "p.cedar",
        "forbid(principal, action, resource) when { false };\npermit(principal, action, resource);",
    );
    let engine = PolicyEngine::builder(PolicySource::path(file))
        .build()
        .unwrap();
    let ids: Vec<String> = engine
        .policy_ids()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ids, ["policy0", "policy1"]);
}

#[test]
fn empty_directory_is_an_error() {
    let dir = Scratch::new("empty");
    dir.write("readme.md", "no policies here");
    let err = PolicyEngine::builder(PolicySource::path(&dir.0))
        .build()
        .unwrap_err();
    assert_eq!(err.reason(), "no_policy_files");
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = Scratch::new("missing");
    let err = PolicyEngine::builder(PolicySource::path(dir.path("nope.cedar")))
        .build()
        .unwrap_err();
    assert_eq!(err.reason(), "io");
    assert!(err.to_string().contains("nope.cedar"), "{err}");
}

#[test]
fn syntax_errors_of_every_file_are_reported_with_file_and_line() {
    let dir = Scratch::new("syntax");
    dir.write(
        "a.cedar",
        "permit(principal, action, resource);\n\npermit(principal action, resource);",
    );
    dir.write(
        "b.cedar",
        "\n\n\nforbid(principal, action, resource) when { 1 + };",
    );
    let err = PolicyEngine::builder(PolicySource::path(&dir.0))
        .build()
        .unwrap_err();
    let found = invalid(&err);
    assert!(
        found.contains(&(DiagnosticKind::PolicySyntax, "a.cedar".to_owned(), Some(3))),
        "{found:?}"
    );
    assert!(
        found.contains(&(DiagnosticKind::PolicySyntax, "b.cedar".to_owned(), Some(4))),
        "{found:?}"
    );
}

#[test]
fn duplicate_ids_across_files_are_rejected() {
    let dir = Scratch::new("dup");
    dir.write(
        "a.cedar",
        "@id(\"same\") permit(principal, action, resource);",
    );
    dir.write(
        "b.cedar",
        "@id(\"same\") forbid(principal, action, resource);",
    );
    let err = PolicyEngine::builder(PolicySource::path(&dir.0))
        .build()
        .unwrap_err();
    let found = invalid(&err);
    assert_eq!(
        found,
        [(DiagnosticKind::PolicyId, "b.cedar".to_owned(), None)]
    );
    assert!(
        err.to_string().contains("already used in `a.cedar`"),
        "{err}"
    );
}

#[test]
fn strict_validation_lists_every_failing_policy_with_line() {
    let policies = "permit(principal, action == Action::\"view\", resource)\n  when { principal.nickname == \"x\" };\n\n@id(\"typo\")\npermit(principal, action == Action::\"veiw\", resource);\npermit(principal, action == Action::\"view\", resource) when { principal.level > 3 };";
    let err = PolicyEngine::builder(PolicySource::text(policies))
        .schema(SchemaSource::cedar(SCHEMA))
        .build()
        .unwrap_err();
    let diagnostics = err.diagnostics();
    let validation: Vec<_> = diagnostics
        .iter()
        .filter(|d| d.kind() == DiagnosticKind::Validation)
        .map(|d| (d.policy_id().unwrap().to_owned(), d.line()))
        .collect();
    assert!(
        validation
            .iter()
            .any(|(id, line)| id == "policy0" && *line == Some(2)),
        "{err}"
    );
    assert!(
        validation
            .iter()
            .any(|(id, line)| id == "typo" && *line == Some(5)),
        "{err}"
    );
    assert!(!validation.iter().any(|(id, _)| id == "policy2"), "{err}");
}

#[test]
fn strict_mode_rejects_what_permissive_mode_would_accept() {
    // Comparing a String with a Long is a type error only a validator catches; without a
    // schema the policy loads and evaluates to false.
    let policy = "permit(principal, action == Action::\"view\", resource) when { principal.department == 3 };";
    assert!(
        PolicyEngine::builder(PolicySource::text(policy))
            .build()
            .is_ok()
    );
    let err = PolicyEngine::builder(PolicySource::text(policy))
        .schema(SchemaSource::cedar(SCHEMA))
        .build()
        .unwrap_err();
    assert_eq!(err.diagnostics()[0].kind(), DiagnosticKind::Validation);
}

#[test]
fn json_schema_is_accepted_and_used_for_validation() {
    let schema = json!({
        "": {
            "entityTypes": {"User": {}, "Doc": {}},
            "actions": {"read": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Doc"]}}}
        }
    })
    .to_string();
    let dir = Scratch::new("jsonschema");
    let path = dir.write("schema.json", &schema);
    let ok = PolicyEngine::builder(PolicySource::text(
        "permit(principal, action == Action::\"read\", resource);",
    ))
    .schema(SchemaSource::file(&path))
    .build()
    .unwrap();
    assert!(
        ok.authorize_request(Request::new(
            uid(r#"User::"u""#),
            uid(r#"Action::"read""#),
            uid(r#"Doc::"d""#)
        ))
        .is_allow()
    );
    let err = PolicyEngine::builder(PolicySource::text(
        "permit(principal, action == Action::\"write\", resource);",
    ))
    .schema(SchemaSource::json(schema))
    .build()
    .unwrap_err();
    assert_eq!(err.diagnostics()[0].kind(), DiagnosticKind::Validation);
}

#[test]
fn schema_syntax_errors_are_reported_with_line() {
    let dir = Scratch::new("badschema");
    let path = dir.write(
        "s.cedarschema",
        "entity User;\n\nentity Doc {\n  owner: User,,\n};",
    );
    let err = PolicyEngine::builder(PolicySource::text("permit(principal, action, resource);"))
        .schema(SchemaSource::file(&path))
        .build()
        .unwrap_err();
    let found = invalid(&err);
    assert_eq!(found[0].0, DiagnosticKind::Schema);
    assert!(found[0].1.ends_with("s.cedarschema"));
    assert_eq!(found[0].2, Some(4));
    let err = PolicyEngine::builder(PolicySource::text("permit(principal, action, resource);"))
        .schema(SchemaSource::json("{\"\": {\"entityTypes\": 5}}"))
        .build()
        .unwrap_err();
    assert_eq!(invalid(&err)[0].0, DiagnosticKind::Schema);
}

#[test]
fn schema_and_policy_errors_are_reported_together() {
    let err = PolicyEngine::builder(PolicySource::text("permit(principal,, action, resource);"))
        .schema(SchemaSource::cedar("entity User {"))
        .build()
        .unwrap_err();
    let kinds: Vec<_> = invalid(&err).into_iter().map(|(k, _, _)| k).collect();
    assert!(
        kinds.contains(&DiagnosticKind::Schema) && kinds.contains(&DiagnosticKind::PolicySyntax)
    );
}

#[test]
fn entities_that_do_not_match_the_schema_are_rejected() {
    let cases = [
        // wrong attribute type
        r#"[{"uid": {"type": "User", "id": "x"}, "attrs": {"department": 5, "level": 1}, "parents": []}]"#,
        // missing required attribute
        r#"[{"uid": {"type": "User", "id": "x"}, "attrs": {"department": "d"}, "parents": []}]"#,
        // unknown entity type
        r#"[{"uid": {"type": "Ghost", "id": "x"}, "attrs": {}, "parents": []}]"#,
        // parent of a type the schema does not allow
        r#"[{"uid": {"type": "Album", "id": "x"}, "attrs": {"public": true}, "parents": [{"type": "Role", "id": "r"}]}]"#,
        // not entities JSON at all
        r#"{"uid": 1}"#,
        "[",
    ];
    for entities in cases {
        let err = PolicyEngine::builder(PolicySource::text("permit(principal, action, resource);"))
            .schema(SchemaSource::cedar(SCHEMA))
            .entities(EntitySource::json(entities))
            .build()
            .unwrap_err();
        let found = invalid(&err);
        assert_eq!(found.len(), 1, "{entities}: {err}");
        assert_eq!(found[0].0, DiagnosticKind::Entities, "{entities}: {err}");
    }
}

#[test]
fn malformed_entities_without_schema_are_rejected() {
    let err = PolicyEngine::builder(PolicySource::text("permit(principal, action, resource);"))
        .entities(EntitySource::json(
            r#"[{"uid": {"type": "User"}, "attrs": {}, "parents": []}]"#,
        ))
        .build()
        .unwrap_err();
    assert_eq!(invalid(&err)[0].0, DiagnosticKind::Entities);
}

// ---- deciding: Cedar documentation patterns -------------------------------------------------

#[test]
fn rbac_role_hierarchy_grants_through_transitive_membership() {
    let engine = engine(
        r#"
        @id("viewers-view") permit(principal in Role::"viewer", action == Action::"view", resource);
        @id("editors-edit") permit(principal in Role::"editor", action in [Action::"edit", Action::"view"], resource);
        "#,
    );
    let alice_view = ask(
        &engine,
        r#"User::"alice""#,
        r#"Action::"view""#,
        r#"Photo::"beach.jpg""#,
    );
    assert!(alice_view.is_allow());
    assert_eq!(ids(&alice_view), ["editors-edit", "viewers-view"]);
    assert!(
        ask(
            &engine,
            r#"User::"alice""#,
            r#"Action::"edit""#,
            r#"Photo::"beach.jpg""#
        )
        .is_allow()
    );
    assert!(
        ask(
            &engine,
            r#"User::"bob""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#
        )
        .is_allow()
    );
    let bob_edit = ask(
        &engine,
        r#"User::"bob""#,
        r#"Action::"edit""#,
        r#"Photo::"beach.jpg""#,
    );
    assert!(!bob_edit.is_allow());
    assert_eq!(bob_edit.details().cause(), Some(DenyCause::NoPermit));
    assert!(
        !ask(
            &engine,
            r#"User::"eve""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#
        )
        .is_allow()
    );
}

#[test]
fn abac_when_and_unless_conditions() {
    let engine = engine(
        r#"
        @id("owner-or-senior-eng") permit(principal, action == Action::"view", resource is Photo)
            when { resource.owner == principal || (principal.department == "eng" && principal.level >= 7) }
            unless { resource.private && resource.owner != principal };
        "#,
    );
    // bob owns beach.jpg
    assert!(
        ask(
            &engine,
            r#"User::"bob""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#
        )
        .is_allow()
    );
    // eve is senior eng, beach.jpg is not private
    assert!(
        ask(
            &engine,
            r#"User::"eve""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#
        )
        .is_allow()
    );
    // secret.jpg is private and owned by alice: `unless` stops eve
    assert!(
        !ask(
            &engine,
            r#"User::"eve""#,
            r#"Action::"view""#,
            r#"Photo::"secret.jpg""#
        )
        .is_allow()
    );
    assert!(
        ask(
            &engine,
            r#"User::"alice""#,
            r#"Action::"view""#,
            r#"Photo::"secret.jpg""#
        )
        .is_allow()
    );
}

#[test]
fn forbid_overrides_permit() {
    let engine = engine(
        r#"
        @id("all-view") permit(principal, action == Action::"view", resource);
        @id("no-private") forbid(principal, action, resource is Photo) when { resource.private };
        "#,
    );
    assert!(
        ask(
            &engine,
            r#"User::"bob""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#
        )
        .is_allow()
    );
    let denied = ask(
        &engine,
        r#"User::"alice""#,
        r#"Action::"view""#,
        r#"Photo::"secret.jpg""#,
    );
    assert!(!denied.is_allow());
    assert_eq!(ids(&denied), ["no-private"]);
    assert_eq!(denied.details().cause(), Some(DenyCause::Forbidden));
}

#[test]
fn in_walks_the_resource_hierarchy() {
    let engine = engine(
        r#"@id("trip") permit(principal == User::"eve", action == Action::"view", resource in Album::"trip");"#,
    );
    assert!(
        ask(
            &engine,
            r#"User::"eve""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#
        )
        .is_allow()
    );
    assert!(
        ask(
            &engine,
            r#"User::"eve""#,
            r#"Action::"view""#,
            r#"Album::"trip""#
        )
        .is_allow()
    );
    assert!(
        !ask(
            &engine,
            r#"User::"bob""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#
        )
        .is_allow()
    );
}

#[test]
fn context_conditions_are_evaluated() {
    let engine =
        engine(r#"permit(principal, action == Action::"delete", resource) when { context.mfa };"#);
    let with = ask_with(
        &engine,
        r#"User::"bob""#,
        r#"Action::"delete""#,
        r#"Photo::"beach.jpg""#,
        json!({"mfa": true}),
    );
    let without = ask_with(
        &engine,
        r#"User::"bob""#,
        r#"Action::"delete""#,
        r#"Photo::"beach.jpg""#,
        json!({"mfa": false}),
    );
    assert!(with.is_allow());
    assert!(!without.is_allow());
}

#[test]
fn is_restricts_by_entity_type() {
    let engine =
        engine(r#"permit(principal is User, action == Action::"view", resource is Album);"#);
    assert!(
        ask(
            &engine,
            r#"User::"bob""#,
            r#"Action::"view""#,
            r#"Album::"trip""#
        )
        .is_allow()
    );
    assert!(
        !ask(
            &engine,
            r#"User::"bob""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#
        )
        .is_allow()
    );
}

// ---- deciding: failures deny -----------------------------------------------------------------

const NO_SCHEMA_ERRORING: &str = r#"
@id("allow-all") permit(principal, action, resource);
@id("forbid-contractors") forbid(principal, action, resource) when { principal.contractor };
"#;

#[test]
fn evaluation_error_denies_even_when_cedar_allows() {
    // Without a schema, `principal.contractor` errors for a principal lacking the attribute:
    // Cedar skips the erroring forbid and allows; meshguard denies.
    let engine = PolicyEngine::builder(PolicySource::text(NO_SCHEMA_ERRORING))
        .build()
        .unwrap();
    let decision = engine.authorize_request(Request::new(
        uid(r#"User::"x""#),
        uid(r#"Action::"a""#),
        uid(r#"Doc::"d""#),
    ));
    let Decision::Deny(details) = &decision else {
        panic!("allowed: {decision:?}")
    };
    assert_eq!(details.cause(), Some(DenyCause::Error));
    assert_eq!(ids(&decision), ["allow-all"]);
    match &details.errors()[0] {
        DecisionError::Evaluation { policy_id, .. } => assert_eq!(policy_id, "forbid-contractors"),
        other => panic!("{other:?}"),
    }
    assert_eq!(details.errors()[0].reason(), "evaluation");
}

#[test]
fn skip_erroring_policies_follows_cedar_and_still_reports() {
    let engine = PolicyEngine::builder(PolicySource::text(NO_SCHEMA_ERRORING))
        .skip_erroring_policies()
        .build()
        .unwrap();
    let decision = engine.authorize_request(Request::new(
        uid(r#"User::"x""#),
        uid(r#"Action::"a""#),
        uid(r#"Doc::"d""#),
    ));
    assert!(decision.is_allow());
    assert_eq!(decision.errors().len(), 1);
}

#[test]
fn request_outside_the_schema_is_denied() {
    let engine = engine("permit(principal, action, resource);");
    for (principal, action, resource, context) in [
        (
            r#"User::"bob""#,
            r#"Action::"fly""#,
            r#"Photo::"beach.jpg""#,
            json!({"mfa": true}),
        ),
        (
            r#"Role::"viewer""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#,
            json!({"mfa": true}),
        ),
        (
            r#"User::"bob""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#,
            json!({"mfa": "yes"}),
        ),
        (
            r#"User::"bob""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#,
            json!({}),
        ),
    ] {
        let decision = ask_with(&engine, principal, action, resource, context);
        assert!(!decision.is_allow(), "{decision:?}");
        assert_eq!(decision.errors()[0].reason(), "invalid_request");
        assert_eq!(decision.details().cause(), Some(DenyCause::Error));
    }
}

#[test]
fn request_entities_are_validated_and_may_not_contradict_static_ones() {
    let engine = engine(
        r#"permit(principal, action == Action::"view", resource is Photo) when { resource.owner == principal };"#,
    );
    let request = |entity: Entity| {
        Request::new(
            uid(r#"User::"eve""#),
            uid(r#"Action::"view""#),
            uid(r#"Photo::"new.jpg""#),
        )
        .with_context(Context::from_json(json!({"mfa": true})).unwrap())
        .with_entities(Entities::from_iter([entity]))
    };
    let photo = |owner: serde_json::Value| {
        Entity::builder(uid(r#"Photo::"new.jpg""#))
            .attribute("owner", &owner)
            .unwrap()
            .attribute("private", &json!(false))
            .unwrap()
            .build()
            .unwrap()
    };
    let eve = json!({"__entity": {"type": "User", "id": "eve"}});
    assert!(engine.authorize_request(request(photo(eve))).is_allow());
    let wrong_type = photo(json!("eve"));
    let decision = engine.authorize_request(request(wrong_type));
    assert_eq!(decision.errors()[0].reason(), "invalid_entities");
    let changed_bob = Entity::builder(uid(r#"User::"bob""#))
        .attribute("department", &json!("eng"))
        .unwrap()
        .attribute("level", &json!(99))
        .unwrap()
        .build()
        .unwrap();
    let decision = engine.authorize_request(request(changed_bob));
    assert!(!decision.is_allow());
    assert_eq!(decision.errors()[0].reason(), "invalid_entities");
}

#[test]
fn json_request_entities_are_parsed_with_the_schema() {
    let engine = engine(
        r#"permit(principal, action == Action::"view", resource is Photo) when { resource.owner == principal };"#,
    );
    let entities = Entities::from_json_str(
        r#"[{"uid": {"type": "Photo", "id": "new.jpg"}, "attrs": {"owner": {"type": "User", "id": "eve"}, "private": false}, "parents": []}]"#,
    )
    .unwrap();
    let decision = engine.authorize_request(
        Request::new(
            uid(r#"User::"eve""#),
            uid(r#"Action::"view""#),
            uid(r#"Photo::"new.jpg""#),
        )
        .with_context(Context::from_json(json!({"mfa": true})).unwrap())
        .with_entities(entities),
    );
    assert!(decision.is_allow(), "{decision:?}");
}

// ---- entity providers ------------------------------------------------------------------------

struct Photos;

impl meshguard::policy::EntityProvider for Photos {
    async fn entities(&self, request: &Request) -> Result<Entities, ProviderError> {
        tokio::task::yield_now().await;
        if request.resource().id() == "broken.jpg" {
            return Err("photo store unavailable".into());
        }
        let photo = Entity::builder(request.resource().clone())
            .attribute("owner", &json!({"__entity": {"type": "User", "id": "eve"}}))?
            .attribute("private", &json!(true))?
            .build()?;
        Ok(Entities::from_iter([photo]))
    }
}

#[tokio::test]
async fn async_provider_supplies_resource_entities() {
    let engine = engine(
        r#"permit(principal, action == Action::"view", resource is Photo) when { resource.owner == principal };"#,
    );
    let request = |who: &str, photo: &str| {
        Request::new(uid(who), uid(r#"Action::"view""#), uid(photo))
            .with_context(Context::from_json(json!({"mfa": true})).unwrap())
    };
    assert!(
        engine
            .authorize_with(request(r#"User::"eve""#, r#"Photo::"p1""#), &Photos)
            .await
            .is_allow()
    );
    assert!(
        !engine
            .authorize_with(request(r#"User::"bob""#, r#"Photo::"p1""#), &Photos)
            .await
            .is_allow()
    );
    let failed = engine
        .authorize_with(request(r#"User::"eve""#, r#"Photo::"broken.jpg""#), &Photos)
        .await;
    assert!(!failed.is_allow());
    assert_eq!(failed.errors()[0].reason(), "entity_provider");
    assert!(
        failed.errors()[0]
            .to_string()
            .contains("photo store unavailable")
    );
}

#[tokio::test]
async fn closure_is_a_provider() {
    let engine = engine(
        r#"permit(principal, action == Action::"view", resource is Album) when { resource.public };"#,
    );
    let albums = |request: &Request| -> Result<Entities, ProviderError> {
        let album = Entity::builder(request.resource().clone())
            .attribute("public", &json!(request.resource().id() == "open"))?
            .build()?;
        Ok(Entities::from_iter([album]))
    };
    let request = |album: &str| {
        Request::new(uid(r#"User::"bob""#), uid(r#"Action::"view""#), uid(album))
            .with_context(Context::from_json(json!({"mfa": true})).unwrap())
    };
    assert!(
        engine
            .authorize_with(request(r#"Album::"open""#), &albums)
            .await
            .is_allow()
    );
    assert!(
        !engine
            .authorize_with(request(r#"Album::"closed""#), &albums)
            .await
            .is_allow()
    );
}

// ---- audit and shadow ------------------------------------------------------------------------

#[test]
fn every_decision_is_audited_through_tracing() {
    let engine = engine(r#"@id("v") permit(principal, action == Action::"view", resource);"#);
    let recorder = Recorder::default();
    recorder.record(|| {
        let _ = ask(
            &engine,
            r#"User::"bob""#,
            r#"Action::"view""#,
            r#"Photo::"beach.jpg""#,
        );
        let _ = ask(
            &engine,
            r#"User::"bob""#,
            r#"Action::"edit""#,
            r#"Photo::"beach.jpg""#,
        );
    });
    let events = recorder.events("meshguard::policy::audit");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].level, tracing::Level::INFO);
    assert_eq!(events[0].field("decision"), Some("allow"));
    assert_eq!(events[0].field("principal"), Some(r#"User::"bob""#));
    assert_eq!(events[0].field("policy_ids"), Some("v"));
    assert_eq!(events[0].field("generation"), Some("1"));
    assert_eq!(events[1].level, tracing::Level::WARN);
    assert_eq!(events[1].field("decision"), Some("deny"));
    assert_eq!(events[1].field("cause"), Some("no_permit"));
}

#[test]
fn audit_record_renders_as_json() {
    let engine = engine(r#"@id("v") permit(principal, action == Action::"view", resource);"#);
    let decision = ask(
        &engine,
        r#"User::"bob""#,
        r#"Action::"view""#,
        r#"Photo::"beach.jpg""#,
    );
    let record = decision.audit_record().to_json();
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["principal"], r#"User::"bob""#);
    assert_eq!(record["action"], r#"Action::"view""#);
    assert_eq!(record["resource"], r#"Photo::"beach.jpg""#);
    assert_eq!(record["policy_ids"], json!(["v"]));
    assert_eq!(record["errors"], json!([]));
    assert_eq!(record["generation"], 1);
    assert!(record["duration_us"].is_u64());
}

#[test]
fn shadow_set_is_evaluated_and_disagreements_are_logged() {
    let engine = PolicyEngine::builder(PolicySource::text(
        r#"@id("old") permit(principal, action, resource);"#,
    ))
    .schema(SchemaSource::cedar(SCHEMA))
    .entities(EntitySource::json(ENTITIES))
    .shadow(PolicySource::text(
        r#"@id("new") permit(principal in Role::"viewer", action == Action::"view", resource);"#,
    ))
    .build()
    .unwrap();
    let recorder = Recorder::default();
    let (agree, disagree) = recorder.record(|| {
        (
            ask(
                &engine,
                r#"User::"bob""#,
                r#"Action::"view""#,
                r#"Photo::"beach.jpg""#,
            ),
            ask(
                &engine,
                r#"User::"eve""#,
                r#"Action::"view""#,
                r#"Photo::"beach.jpg""#,
            ),
        )
    });
    assert!(
        agree.is_allow() && disagree.is_allow(),
        "the shadow never changes the decision"
    );
    let shadow = agree.details().shadow().unwrap();
    assert!(shadow.would_allow());
    assert_eq!(shadow.policy_ids()[0], "new");
    assert!(!disagree.details().shadow().unwrap().would_allow());
    let logged = recorder.events("meshguard::policy::shadow");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].field("principal"), Some(r#"User::"eve""#));
    assert_eq!(logged[0].field("enforced"), Some("allow"));
    assert_eq!(logged[0].field("candidate"), Some("deny"));
    assert_eq!(
        disagree.audit_record().to_json()["shadow"]["decision"],
        "deny"
    );
}

#[test]
fn shadow_set_is_validated_like_the_enforced_one_and_dropped_when_invalid() {
    let recorder = Recorder::default();
    let engine = recorder
        .record(|| {
            PolicyEngine::builder(PolicySource::text("permit(principal, action, resource);"))
                .schema(SchemaSource::cedar(SCHEMA))
                .shadow(PolicySource::text(
                    r#"permit(principal, action == Action::"fly", resource);"#,
                ))
                .build()
        })
        .expect("a broken candidate never fails the enforced set");
    let logged = recorder.events("meshguard::policy::shadow");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].level, tracing::Level::WARN);
    assert_eq!(logged[0].field("reason"), Some("invalid"));
    assert!(
        logged[0].field("error").unwrap().contains("validation"),
        "{logged:?}"
    );
    assert_eq!(engine.policy_ids(), ["policy0"]);
}
