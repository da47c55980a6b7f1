//! `meshguard verify-token --spiffe-bundle TRUST_DOMAIN=FILE`: JWT-SVIDs against SPIFFE
//! bundles, with the exit codes and `rejected: <reason>` lines of `verify-token`.
#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::json;

use crate::authority::{AUDIENCE, Authority, NOW};

fn meshguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// `authority`'s bundle in a file of its own; returns `TRUST_DOMAIN=FILE`.
fn bundle_arg(authority: &Authority, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("meshguard-cli-svid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join(name);
    std::fs::write(&file, authority.bundle_json(1)).unwrap();
    format!("{}={}", authority.trust_domain, file.display())
}

#[test]
fn a_jwt_svid_verifies_against_its_trust_domains_bundle() {
    let example = Authority::new("example.org", "k1");
    let other = Authority::new("other.org", "k1");
    let (ours, theirs) = (
        bundle_arg(&example, "example.json"),
        bundle_arg(&other, "other.json"),
    );
    let now = NOW.to_string();
    let verify = |token: &str| {
        meshguard(&[
            "verify-token",
            "--spiffe-bundle",
            &ours,
            "--spiffe-bundle",
            &theirs,
            "--audience",
            AUDIENCE,
            "--now",
            &now,
            token,
        ])
    };
    let out = verify(&example.svid("/orders"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["sub"], "spiffe://example.org/orders");
    assert!(verify(&other.svid("/orders")).status.success());

    let mut foreign = example.claims("/orders");
    foreign["sub"] = "spiffe://other.org/orders".into();
    let mut elsewhere = example.claims("/orders");
    elsewhere["aud"] = json!("spiffe://example.org/payments-api");
    let claims = example.claims("/orders");
    for (token, reason) in [
        (example.sign("ES256", &foreign), "bad_signature"),
        (example.sign("ES256", &elsewhere), "audience"),
        (example.sign("HS256", &claims), "disallowed_algorithm"),
        (example.sign("EdDSA", &claims), "disallowed_algorithm"),
        ("not.a.token".to_owned(), "malformed"),
    ] {
        let out = verify(&token);
        assert_eq!(out.status.code(), Some(1), "{reason}");
        assert!(
            stderr(&out).ends_with(&format!("rejected: {reason}\n")),
            "{}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn spiffe_bundle_usage_and_file_errors_exit_two() {
    let example = Authority::new("example.org", "k1");
    let ours = bundle_arg(&example, "usage.json");
    let token = example.svid("/orders");
    let missing_td = ours.split_once('=').unwrap().1.to_owned();
    let bad_file = format!(
        "example.org={}",
        crate::support::data("pyjwt/README.md").display()
    );
    for args in [
        // --audience is required with --spiffe-bundle.
        &["verify-token", "--spiffe-bundle", &ours, &token][..],
        // The trust domain must be named, and valid.
        &[
            "verify-token",
            "--spiffe-bundle",
            &missing_td,
            "--audience",
            AUDIENCE,
            &token,
        ][..],
        &[
            "verify-token",
            "--spiffe-bundle",
            "Example.org=x.json",
            "--audience",
            AUDIENCE,
            &token,
        ][..],
        // Issuer-key flags do not mix with bundles.
        &[
            "verify-token",
            "--spiffe-bundle",
            &ours,
            "--keys",
            &missing_td,
            "--audience",
            AUDIENCE,
            &token,
        ][..],
        &[
            "verify-token",
            "--spiffe-bundle",
            &ours,
            "--issuer",
            "https://idp.example",
            "--audience",
            AUDIENCE,
            &token,
        ][..],
        // Unreadable or invalid bundles, and one trust domain given twice.
        &[
            "verify-token",
            "--spiffe-bundle",
            "example.org=/nonexistent.json",
            "--audience",
            AUDIENCE,
            &token,
        ][..],
        &[
            "verify-token",
            "--spiffe-bundle",
            &bad_file,
            "--audience",
            AUDIENCE,
            &token,
        ][..],
        &[
            "verify-token",
            "--spiffe-bundle",
            &ours,
            "--spiffe-bundle",
            &ours,
            "--audience",
            AUDIENCE,
            &token,
        ][..],
    ] {
        let out = meshguard(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("rejected:"), "{args:?}");
    }
}
