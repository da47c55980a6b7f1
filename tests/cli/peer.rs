//! `meshguard inspect-peer` as a user runs it.
#![cfg(feature = "cli")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::peer_support;

use std::path::PathBuf;
use std::process::{Command, Output};

use peer_support::{Ca, svid_params};
use serde_json::Value;

fn meshguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args(args)
        .output()
        .unwrap()
}

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshguard-cli-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn json(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rejected(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    stderr
        .strip_prefix("rejected: ")
        .unwrap_or_else(|| panic!("{stderr}"))
        .trim_end()
        .to_owned()
}

#[test]
fn cert_prints_identity_json() {
    let ca = Ca::new("example.org");
    let leaf = ca.svid("spiffe://example.org/ns/prod/sa/web");
    let pem = format!("{}{}", leaf.cert_pem(), ca.pem());
    let path = temp_file("svid.pem", pem.as_bytes());
    let out = json(&meshguard(&[
        "inspect-peer",
        "--cert",
        path.to_str().unwrap(),
    ]));
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5);
    for key in ["spiffe_id", "dns", "uris", "subject", "sha256"] {
        assert!(keys.contains(&key), "{key}");
    }
    assert_eq!(out["spiffe_id"], "spiffe://example.org/ns/prod/sa/web");
    assert_eq!(out["dns"], serde_json::json!(["localhost"]));
    assert_eq!(
        out["uris"],
        serde_json::json!(["spiffe://example.org/ns/prod/sa/web"])
    );
    assert!(out["subject"].as_str().unwrap().contains("CN=workload"));
    let digest = ring::digest::digest(&ring::digest::SHA256, &leaf.der());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(out["sha256"], hex);
}

#[test]
fn cert_without_spiffe_id_prints_null() {
    let ca = Ca::new("example.org");
    let mut params = svid_params("spiffe://example.org/unused");
    params.subject_alt_names = vec![rcgen::SanType::DnsName("db.example".try_into().unwrap())];
    let path = temp_file("plain.pem", ca.sign(&params).cert_pem().as_bytes());
    let out = json(&meshguard(&[
        "inspect-peer",
        "--cert",
        path.to_str().unwrap(),
    ]));
    assert!(out["spiffe_id"].is_null());
    assert_eq!(out["dns"], serde_json::json!(["db.example"]));
    assert_eq!(out["uris"], serde_json::json!([]));
}

#[test]
fn go_spiffe_fixture_is_inspected() {
    let path = format!(
        "{}/tests/data/spiffe/x509/good-leaf-and-intermediate.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = json(&meshguard(&["inspect-peer", "--cert", &path]));
    assert_eq!(out["spiffe_id"], "spiffe://example.org/workload-1");
}

#[test]
fn invalid_certificates_exit_1_with_reason() {
    let ca = Ca::new("example.org");
    let mut params = svid_params("spiffe://example.org/w");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_leaf = temp_file("ca-leaf.pem", ca.sign(&params).cert_pem().as_bytes());
    assert_eq!(
        rejected(&meshguard(&[
            "inspect-peer",
            "--cert",
            ca_leaf.to_str().unwrap()
        ])),
        "leaf_is_ca"
    );
    let key_only = temp_file("key.pem", ca.key.serialize_pem().as_bytes());
    assert_eq!(
        rejected(&meshguard(&[
            "inspect-peer",
            "--cert",
            key_only.to_str().unwrap()
        ])),
        "no_certificates"
    );
    let missing = temp_file("x", b"").with_file_name("does-not-exist.pem");
    assert_eq!(
        rejected(&meshguard(&[
            "inspect-peer",
            "--cert",
            missing.to_str().unwrap()
        ])),
        "cannot_read_file"
    );
}

#[test]
fn xfcc_prints_identity_of_the_rightmost_element() {
    let hash = "e0f3c8ce5e2ea305f0701ff512e36e2e97928284a228bcf77332d33930a1b6fd";
    let header = format!(
        "Hash={hash};URI=spiffe://td/left,By=spiffe://td/proxy;Hash={hash};\
         Subject=\"CN=client, O=Example\";URI=spiffe://td/right;DNS=right.example"
    );
    let out = json(&meshguard(&["inspect-peer", "--xfcc", &header]));
    assert_eq!(out["spiffe_id"], "spiffe://td/right");
    assert_eq!(out["dns"], serde_json::json!(["right.example"]));
    assert_eq!(out["uris"], serde_json::json!(["spiffe://td/right"]));
    assert_eq!(out["subject"], "CN=client, O=Example");
    assert_eq!(out["sha256"], hash);
}

#[test]
fn xfcc_with_cert_uses_the_certificate() {
    let ca = Ca::new("td");
    let leaf = ca.svid("spiffe://td/from-cert");
    let encoded: String = leaf
        .cert_pem()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let out = json(&meshguard(&[
        "inspect-peer",
        "--xfcc",
        &format!("Cert=\"{encoded}\""),
    ]));
    assert_eq!(out["spiffe_id"], "spiffe://td/from-cert");
}

#[test]
fn invalid_xfcc_exits_1_with_reason() {
    for (header, reason) in [
        ("Subject=\"unterminated", "xfcc_malformed"),
        ("Hash=a;Hash=b", "xfcc_duplicate_key"),
        ("URI=spiffe://td/x", "xfcc_no_certificate"),
        ("Hash=abcdefg;URI=spiffe://td/x", "xfcc_bad_hash"),
        ("", "xfcc_element_missing"),
    ] {
        assert_eq!(
            rejected(&meshguard(&["inspect-peer", "--xfcc", header])),
            reason
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["inspect-peer"][..],
        &["inspect-peer", "--cert", "a.pem", "--xfcc", "URI=x"],
        &["inspect-peer", "--bogus"],
        &["inspect-peer", "--cert"],
    ] {
        assert_eq!(meshguard(args).status.code(), Some(2), "{args:?}");
    }
}
