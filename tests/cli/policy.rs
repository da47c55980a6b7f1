//! `meshguard authorize` and `meshguard check-policies` run as a user runs them.
#![cfg(feature = "cli")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::policy_support;

use std::process::{Command, Output};

use meshguard::policy::EntityUid;
use policy_support::Scratch;
use serde_json::Value;

const SCHEMA: &str = r#"
entity Role;
entity User in [Role];
entity Doc { owner: User };
action read, write appliesTo { principal: User, resource: Doc, context: { mfa: Bool } };
"#;

const POLICIES: &str = r#"
@id("readers")
permit(principal in Role::"reader", action == Action::"read", resource);

@id("owners-write")
permit(principal, action == Action::"write", resource) when { resource.owner == principal && context.mfa };

@id("no-mallory")
forbid(principal == User::"mallory", action, resource);
"#;

const ENTITIES: &str = r#"[
  {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Role", "id": "reader"}]},
  {"uid": {"type": "User", "id": "mallory"}, "attrs": {}, "parents": [{"type": "Role", "id": "reader"}]},
  {"uid": {"type": "Doc", "id": "d1"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "alice"}}}, "parents": []}
]"#;

fn meshguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

struct Files {
    dir: Scratch,
}

impl Files {
    fn new(name: &str) -> Self {
        let dir = Scratch::new(name);
        dir.write("policies.cedar", POLICIES);
        dir.write("schema.cedarschema", SCHEMA);
        dir.write("entities.json", ENTITIES);
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path(name).to_str().unwrap().to_owned()
    }

    fn authorize(&self, principal: &str, action: &str, context: &str) -> Output {
        meshguard(&[
            "authorize",
            "--policies",
            &self.path("policies.cedar"),
            "--schema",
            &self.path("schema.cedarschema"),
            "--entities",
            &self.path("entities.json"),
            "--principal",
            principal,
            "--action",
            action,
            "--resource",
            r#"Doc::"d1""#,
            "--context",
            context,
        ])
    }
}

#[test]
fn allow_prints_allow_and_the_policies_and_exits_0() {
    let files = Files::new("cli-allow");
    let output = files.authorize(r#"User::"alice""#, r#"Action::"write""#, r#"{"mfa": true}"#);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), ["ALLOW", "owners-write"]);
}

#[test]
fn deny_prints_deny_and_the_forbids_and_exits_3() {
    let files = Files::new("cli-deny");
    let forbidden = files.authorize(
        r#"User::"mallory""#,
        r#"Action::"read""#,
        r#"{"mfa": true}"#,
    );
    assert_eq!(forbidden.status.code(), Some(3));
    assert_eq!(stdout(&forbidden), ["DENY", "no-mallory"]);
    let no_permit = files.authorize(
        r#"User::"alice""#,
        r#"Action::"write""#,
        r#"{"mfa": false}"#,
    );
    assert_eq!(no_permit.status.code(), Some(3));
    assert_eq!(stdout(&no_permit), ["DENY"]);
}

#[test]
fn request_outside_the_schema_is_a_deny_with_the_error_on_stderr() {
    let files = Files::new("cli-invalid-request");
    let output = files.authorize(r#"User::"alice""#, r#"Action::"read""#, r#"{"mfa": "yes"}"#);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(stdout(&output), ["DENY"]);
    assert!(
        stderr(&output).contains("does not conform to the schema"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_and_load_errors_exit_2() {
    let files = Files::new("cli-errors");
    // malformed uid
    let output = files.authorize("alice", r#"Action::"read""#, "{}");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--principal"),
        "{}",
        stderr(&output)
    );
    // context not an object, not JSON
    assert_eq!(
        files
            .authorize(r#"User::"alice""#, r#"Action::"read""#, "[1]")
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        files
            .authorize(r#"User::"alice""#, r#"Action::"read""#, "{")
            .status
            .code(),
        Some(2)
    );
    // missing required argument
    let output = meshguard(&["authorize", "--policies", &files.path("policies.cedar")]);
    assert_eq!(output.status.code(), Some(2));
    // missing and broken policy files
    let output = meshguard(&[
        "authorize",
        "--policies",
        &files.path("nope.cedar"),
        "--principal",
        r#"User::"a""#,
        "--action",
        r#"Action::"read""#,
        "--resource",
        r#"Doc::"d""#,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("nope.cedar"));
    files
        .dir
        .write("broken.cedar", "permit(principal, action, resource)");
    let output = meshguard(&[
        "authorize",
        "--policies",
        &files.path("broken.cedar"),
        "--principal",
        r#"User::"a""#,
        "--action",
        r#"Action::"read""#,
        "--resource",
        r#"Doc::"d""#,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
}

#[test]
fn check_policies_accepts_valid_policies() {
    let files = Files::new("cli-check-ok");
    let output = meshguard(&[
        "check-policies",
        "--policies",
        &files.path("policies.cedar"),
        "--schema",
        &files.path("schema.cedarschema"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), ["OK: 3 policies"]);
}

#[test]
fn check_policies_prints_every_error_and_exits_1() {
    let files = Files::new("cli-check-bad");
    files.dir.write(
        "bad.cedar",
        "permit(principal, action == Action::\"read\", resource)\n  when { resource.title == \"x\" };\n\npermit(principal, action == Action::\"delete\", resource);\n",
    );
    let output = meshguard(&[
        "check-policies",
        "--policies",
        &files.path("bad.cedar"),
        "--schema",
        &files.path("schema.cedarschema"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 2, "{errors}");
    assert!(
        lines[0].contains("bad.cedar:2:") && lines[0].contains("policy0"),
        "{errors}"
    );
    assert!(
        lines[1].contains("bad.cedar:4:") && lines[1].contains("policy1"),
        "{errors}"
    );

    // Syntax errors in a directory, file by file.
    let dir = Scratch::new("cli-check-dir");
    dir.write("a.cedar", "permit(principal, action, resource)");
    dir.write("b.cedar", "forbid(principal, action, resource) when { ) };");
    let output = meshguard(&["check-policies", "--policies", dir.0.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(
        errors.contains("a.cedar:") && errors.contains("b.cedar:"),
        "{errors}"
    );
}

#[test]
fn check_policies_exits_2_when_it_cannot_read() {
    let files = Files::new("cli-check-unreadable");
    let output = meshguard(&["check-policies", "--policies", &files.path("missing")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("missing"));
    let output = meshguard(&[
        "check-policies",
        "--policies",
        &files.path("policies.cedar"),
        "--schema",
        &files.path("missing.cedarschema"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let empty = Scratch::new("cli-check-no-files");
    let output = meshguard(&["check-policies", "--policies", empty.0.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn malformed_context_exits_2_not_deny() {
    let files = Files::new("cli-malformed-context");
    for context in [
        r#"{"mfa": 1.5}"#,
        r#"{"mfa": null}"#,
        &format!(r#"{{"mfa": {}1{}}}"#, "[".repeat(40), "]".repeat(40)),
    ] {
        let output = files.authorize(r#"User::"alice""#, r#"Action::"read""#, context);
        assert_eq!(output.status.code(), Some(2), "{context}");
        assert!(stdout(&output).is_empty(), "{context}");
        assert!(stderr(&output).contains("--context"), "{}", stderr(&output));
    }
}

/// Nesting that overflowed Cedar's parser (status 134, SIGABRT) is refused within the
/// exit contract, with where.
#[test]
fn deeply_nested_inputs_are_refused_within_the_exit_contract() {
    let files = Files::new("cli-deep");
    let deep = format!(
        "permit(principal, action, resource)\n  when {{ {}true{} }};",
        "(".repeat(300),
        ")".repeat(300)
    );
    files.dir.write("deep.cedar", &deep);
    let output = meshguard(&["check-policies", "--policies", &files.path("deep.cedar")]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("deep.cedar` nests more than 24 levels deep at line 2"),
        "{}",
        stderr(&output)
    );
    let output = meshguard(&[
        "authorize",
        "--policies",
        &files.path("deep.cedar"),
        "--principal",
        r#"User::"a""#,
        "--action",
        r#"Action::"read""#,
        "--resource",
        r#"Doc::"d""#,
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());

    let schema = format!(
        "entity User {{ a: {}Long{} }};",
        "Set<".repeat(3_000),
        ">".repeat(3_000)
    );
    files.dir.write("deep.cedarschema", &schema);
    let output = meshguard(&[
        "check-policies",
        "--policies",
        &files.path("policies.cedar"),
        "--schema",
        &files.path("deep.cedarschema"),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("nests more than"),
        "{}",
        stderr(&output)
    );
}

/// Every Cedar integration-test request through the binary.
#[test]
fn cedar_integration_requests_through_the_cli() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cedar/cedar.json"
    ))
    .unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    let dir = Scratch::new("cli-conformance");
    let mut requests = 0;
    let tests = data["tests"].as_array().unwrap().iter().map(|t| {
        (
            t,
            data["entity_sets"][t["entities_ref"].as_str().unwrap()].to_string(),
            data["schemas"][t["schema_ref"].as_str().unwrap()]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    });
    let corpus = data["corpus_sample"].as_array().unwrap().iter().map(|t| {
        (
            t,
            t["entities"].to_string(),
            t["schema"].as_str().unwrap().to_owned(),
        )
    });
    for (test, entities, schema) in tests.chain(corpus) {
        let policies = dir.write("policies.cedar", test["policies"].as_str().unwrap());
        let entities = dir.write("entities.json", &entities);
        let schema = dir.write("schema.cedarschema", &schema);
        let (policies, entities, schema) = (
            policies.to_str().unwrap().to_owned(),
            entities.to_str().unwrap().to_owned(),
            schema.to_str().unwrap().to_owned(),
        );
        let should_validate = test["shouldValidate"].as_bool().unwrap();
        let check = meshguard(&[
            "check-policies",
            "--policies",
            &policies,
            "--schema",
            &schema,
        ]);
        assert_eq!(
            check.status.code(),
            Some(if should_validate { 0 } else { 1 }),
            "{}",
            test["id"]
        );

        for request in test["requests"].as_array().unwrap() {
            let uid = |v: &Value| {
                EntityUid::new(v["type"].as_str().unwrap(), v["id"].as_str().unwrap())
                    .unwrap()
                    .to_string()
            };
            let context = request["context"].to_string();
            let (principal, action, resource) = (
                uid(&request["principal"]),
                uid(&request["action"]),
                uid(&request["resource"]),
            );
            let mut args = vec![
                "authorize",
                "--policies",
                &policies,
                "--entities",
                &entities,
                "--principal",
                &principal,
                "--action",
                &action,
                "--resource",
                &resource,
                "--context",
                &context,
            ];
            if should_validate {
                args.extend(["--schema", schema.as_str()]);
            }
            let output = meshguard(&args);
            let what = format!(
                "{} / {}: {}",
                test["id"],
                request["description"],
                stderr(&output)
            );
            let errored = !request["errors"].as_array().unwrap().is_empty();
            let allow = request["decision"] == "allow" && !errored;
            assert_eq!(
                output.status.code(),
                Some(if allow { 0 } else { 3 }),
                "{what}"
            );
            let mut expected = vec![if allow { "ALLOW" } else { "DENY" }.to_owned()];
            let mut reason: Vec<String> = request["reason"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            reason.sort();
            expected.extend(reason);
            assert_eq!(stdout(&output), expected, "{what}");
            assert_eq!(
                stderr(&output).lines().count(),
                request["errors"].as_array().unwrap().len(),
                "{what}"
            );
            requests += 1;
        }
    }
    assert_eq!(requests, 74 + 160);
}
