//! Policies are untrusted input too: loading a large set with an error in every policy.

use std::hint::black_box;

use meshguard::policy::{PolicyEngine, PolicyError, PolicySource, SchemaSource};

use crate::assert_linear;

const SCHEMA: &str = "entity User; entity Doc { owner: User }; \
    action read appliesTo { principal: User, resource: Doc };";

/// Policies made by `policy`, one a line, until the text reaches `size` bytes.
fn policies(size: usize, policy: impl Fn(usize) -> String) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < size {
        text.push_str(&policy(i));
        text.push('\n');
        i += 1;
    }
    text
}

fn load(text: &str) -> Result<PolicyEngine, PolicyError> {
    PolicyEngine::builder(PolicySource::text(text))
        .schema(SchemaSource::cedar(SCHEMA))
        .build()
}

#[test]
fn policy_diagnostics_cost_is_linear() {
    // Cedar's own work dominates here (about 1 ms a policy in a debug build, linear in the
    // number of policies): 64 KiB keeps this test to seconds. How each error's line and
    // column are found is tested in `policy::position`.
    let size = 64 * 1024;
    let policy = |attribute: &'static str| {
        move |i: usize| {
            format!(
                r#"permit(principal == User::"u{i:06}", action == Action::"read", resource) when {{ resource.{attribute} == principal }};"#
            )
        }
    };
    let valid = policies(size, policy("owner"));
    let invalid = policies(size, policy("ownr0"));
    assert_eq!(valid.len(), invalid.len());
    assert!(load(&valid).is_ok());
    let errors = load(&invalid).unwrap_err();
    assert!(
        errors.diagnostics().len() > 500,
        "{}",
        errors.diagnostics().len()
    );
    let last = errors.diagnostics().iter().filter_map(|d| d.line()).max();
    assert_eq!(last, Some(u32::try_from(valid.lines().count()).unwrap()));
    assert_linear(
        "a validation error in every policy",
        &mut || {
            black_box(load(black_box(&valid)).unwrap());
        },
        &mut || {
            black_box(load(black_box(&invalid)).unwrap_err());
        },
    );
}
