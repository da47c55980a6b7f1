//! `meshguard verify-token --dpop-proof PROOF --method M --url U`: DPoP-bound tokens checked
//! with their proof, rejections as `rejected: <reason>` with the usual exit codes.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::dpop_support::{ClientKey, ISS, Idp};

const NOW: i64 = 1_900_000_000;
const URL: &str = "https://api.example/orders/42";

fn key_file(idp: &Idp) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshguard-cli-dpop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("idp-{}.jwk", crate::dpop_support::jti()));
    std::fs::write(&path, idp.jwk_json()).unwrap();
    path
}

fn verify(keys: &Path, extra: &[&str], token: &str) -> Output {
    let now = NOW.to_string();
    let keys = keys.to_str().unwrap();
    let mut args = vec![
        "verify-token",
        "--keys",
        keys,
        "--issuer",
        ISS,
        "--audience",
        "orders",
    ];
    args.extend_from_slice(&["--now", &now]);
    args.extend_from_slice(extra);
    args.push(token);
    Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args(&args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn a_dpop_bound_token_verifies_with_its_proof() {
    let idp = Idp::new();
    let keys = key_file(&idp);
    let key = ClientKey::es256();
    let token = idp.token("alice", NOW + 300, Some(&key.jkt));
    let proof = key.proof("POST", URL, &token, NOW);
    let out = verify(
        &keys,
        &["--dpop-proof", &proof, "--method", "POST", "--url", URL],
        &token,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["cnf"]["jkt"], key.jkt.as_str());
}

#[test]
fn proof_mismatches_are_rejections_with_their_reason() {
    let idp = Idp::new();
    let keys = key_file(&idp);
    let key = ClientKey::ed25519();
    let token = idp.token("alice", NOW + 300, Some(&key.jkt));
    let proof = key.proof("GET", URL, &token, NOW);
    for (method, url, reason) in [
        ("POST", URL, "dpop_method_mismatch"),
        ("GET", "https://api.example/orders/43", "dpop_uri_mismatch"),
    ] {
        let out = verify(
            &keys,
            &["--dpop-proof", &proof, "--method", method, "--url", url],
            &token,
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(
            stderr(&out).trim_end().lines().last(),
            Some(&*format!("rejected: {reason}"))
        );
    }
    let thief = ClientKey::es256();
    let stolen = thief.proof("GET", URL, &token, NOW);
    let out = verify(
        &keys,
        &["--dpop-proof", &stolen, "--method", "GET", "--url", URL],
        &token,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("rejected: dpop_key_mismatch"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bound_token_without_its_proof_is_rejected() {
    let idp = Idp::new();
    let keys = key_file(&idp);
    let key = ClientKey::es256();
    let token = idp.token("alice", NOW + 300, Some(&key.jkt));
    let out = verify(&keys, &[], &token);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("rejected: unsupported_confirmation"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_proof_needs_the_method_and_the_url() {
    let idp = Idp::new();
    let keys = key_file(&idp);
    for extra in [
        &["--dpop-proof", "p", "--method", "GET"][..],
        &["--dpop-proof", "p", "--url", URL][..],
        &["--method", "GET", "--url", URL][..],
    ] {
        let out = verify(&keys, extra, "t");
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(!stderr(&out).contains("rejected:"));
    }
}
