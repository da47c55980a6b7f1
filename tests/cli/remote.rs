//! `meshguard verify-token` with keys from a real JWKS or discovery server on 127.0.0.1:
//! the same exit codes and reason strings as with `--keys`, a source that gives no keys at
//! start as a configuration error, skipped keys named, and the flags for token profiles,
//! `typ`, plain http and private CAs.
#![cfg(all(feature = "cli", feature = "remote-jwks"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::remote_support;

use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use remote_support::{AUDIENCE, EXP, JwksServer, Mode, TestKey, TestPki, jwks};
use serde_json::json;

const ISS: &str = "https://idp.test";

fn meshguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .arg("verify-token")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Exit 2 with an `error:` line and no rejection: the configuration, not the token, failed.
fn assert_configuration_error(output: &Output, what: &str) -> String {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{what}: {message}");
    assert!(message.contains("error: "), "{what}: {message}");
    assert!(!message.contains("rejected:"), "{what}: {message}");
    assert!(output.stdout.is_empty(), "{what}");
    message
}

/// A file in a directory of this test process, removed with it.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshguard-cli-remote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn jwks_url_and_discovery_verify_like_key_files() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let url = server.jwks_url();
    let token = key.token(ISS);
    let ok = meshguard(&[
        "--jwks-url",
        &url,
        "--issuer",
        ISS,
        "--audience",
        AUDIENCE,
        &token,
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let claims: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(claims["sub"], "alice");

    let issuer = server.issuer();
    let discovered = key.token(&issuer);
    let ok = meshguard(&["--discover", &issuer, "--audience", AUDIENCE, &discovered]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    // The discovered issuer is the one tokens must carry.
    let other = meshguard(&["--discover", &issuer, "--audience", AUDIENCE, &token]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stderr(&other).ends_with("rejected: issuer\n"),
        "{}",
        stderr(&other)
    );

    let forged = TestKey::es256("k1").token(ISS);
    let bad = meshguard(&["--jwks-url", &url, &forged]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).ends_with("rejected: bad_signature\n"),
        "{}",
        stderr(&bad)
    );
    let late = (EXP + 120).to_string();
    let expired = meshguard(&["--jwks-url", &url, "--now", &late, &token]);
    assert!(
        stderr(&expired).ends_with("rejected: expired\n"),
        "{}",
        stderr(&expired)
    );
    assert_eq!(expired.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_source_without_keys_at_start_is_a_configuration_error() {
    let key = TestKey::es256("k1");
    let token = key.token(ISS);
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://127.0.0.1:{}/jwks",
            listener.local_addr().unwrap().port()
        )
    };
    let down = meshguard(&["--jwks-url", &closed, &token]);
    let message = assert_configuration_error(&down, "unreachable");
    assert!(message.contains("cannot load the keys"), "{message}");
    assert!(message.contains(&closed), "{message}");

    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_discovery(
        include_str!("../data/real_jwks/keycloak-openid-configuration.dockyard.json").to_owned(),
    );
    let issuer = server.issuer();
    let lying = meshguard(&["--discover", &issuer, &key.token(&issuer)]);
    let message = assert_configuration_error(&lying, "issuer mismatch");
    assert!(
        message.contains("discovery document names issuer `http://localhost:8080/realms/master`"),
        "{message}"
    );
    assert_eq!(server.jwks_requests(), 0);

    server.set_discovery(String::new());
    server.set_mode(Mode::Garbage("not json".into()));
    let garbage = meshguard(&["--jwks-url", &server.jwks_url(), &token]);
    let message = assert_configuration_error(&garbage, "garbage");
    assert!(message.contains("invalid JWKS document"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn skipped_keys_are_named_with_their_reason() {
    let key = TestKey::es256("k1");
    let encryption = json!({"kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB"});
    let ed448 = json!({"kty": "OKP", "crv": "Ed448", "kid": "ed448-1", "x": "AA"});
    let server = JwksServer::start(
        json!({"keys": [key.jwk.clone(), encryption.clone(), ed448.clone()]}).to_string(),
    )
    .await;
    let ok = meshguard(&["--jwks-url", &server.jwks_url(), &key.token(ISS)]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let message = stderr(&ok);
    let source = server.jwks_url();
    for line in [
        format!("note: `{source}`: skipped key 1 (kid `enc-1`): unsupported key: `use` is `enc`"),
        format!(
            "note: `{source}`: skipped key 2 (kid `ed448-1`): unsupported key: Ed448 is not \
             supported (ring implements Ed25519 only)"
        ),
    ] {
        assert!(message.lines().any(|l| l == line), "{line}\n{message}");
    }
    // With no usable key left, the names say why the source gave none.
    server.set_jwks(json!({"keys": [encryption, ed448]}).to_string());
    let none = meshguard(&["--jwks-url", &server.jwks_url(), &key.token(ISS)]);
    let message = assert_configuration_error(&none, "no usable key");
    assert!(message.contains("skipped key 0 (kid `enc-1`)"), "{message}");
    assert!(
        message.contains("no usable key in the JWKS (2 skipped)"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn profile_at_jwt_and_require_type_check_typ() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let url = server.jwks_url();
    let full = json!({
        "iss": ISS, "aud": AUDIENCE, "sub": "alice", "exp": EXP, "iat": 1_700_000_000,
        "jti": "j1", "client_id": "c1",
    });
    let token = |typ: &str, claims: &serde_json::Value| {
        key.token_with_header_and_claims(&json!({"alg": "ES256", "kid": "k1", "typ": typ}), claims)
    };
    let mut no_client = full.clone();
    no_client.as_object_mut().unwrap().remove("client_id");
    for (flags, typ, claims, outcome) in [
        (&["--profile", "at+jwt"][..], "at+jwt", &full, None),
        (&["--profile", "at+jwt"], "Application/AT+JWT", &full, None),
        // An OpenID Connect ID token from the same key is not an access token.
        (&["--profile", "at+jwt"], "JWT", &full, Some("invalid_type")),
        (
            &["--profile", "at+jwt"],
            "at+jwt",
            &no_client,
            Some("missing_claim"),
        ),
        (&[], "JWT", &no_client, None),
        (
            &["--require-type", "at+jwt"],
            "application/at+jwt",
            &full,
            None,
        ),
        (&["--require-type", "application/jwt"], "JWT", &full, None),
        (
            &["--require-type", "at+jwt"],
            "at+jwt; charset=x",
            &full,
            Some("invalid_type"),
        ),
        (
            &["--require-type", "at+jwt"],
            "JWT",
            &full,
            Some("invalid_type"),
        ),
        (
            &["--require-type", "dpop+jwt", "--require-type", "at+jwt"],
            "at+jwt",
            &full,
            None,
        ),
    ] {
        let token = token(typ, claims);
        let mut args = vec!["--jwks-url", url.as_str()];
        args.extend_from_slice(flags);
        args.push(&token);
        let out = meshguard(&args);
        let what = format!("{flags:?} {typ}");
        match outcome {
            None => assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out)),
            Some(reason) => {
                assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
                assert!(
                    stderr(&out).ends_with(&format!("rejected: {reason}\n")),
                    "{what}: {}",
                    stderr(&out)
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn allow_plain_http_reaches_hosts_that_are_not_loopback_names() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    // The IPv4-mapped form of 127.0.0.1: the traffic stays on this machine, but the host is
    // not a loopback address by name, so plain http to it needs the flag.
    let mapped = server.jwks_url().replace("127.0.0.1", "[::ffff:127.0.0.1]");
    let token = key.token(ISS);
    let refused = meshguard(&["--jwks-url", &mapped, &token]);
    let message = assert_configuration_error(&refused, "plain http");
    assert!(message.contains("refusing plain http"), "{message}");
    let allowed = meshguard(&["--jwks-url", &mapped, "--allow-plain-http", &token]);
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    assert!(stderr(&allowed).contains("note: plain http allowed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn ca_file_trusts_a_private_ca_for_https_sources() {
    let pki = TestPki::new();
    let key = TestKey::es256("k1");
    let server = JwksServer::start_tls(jwks(&[&key]), &pki).await;
    let url = server.jwks_url();
    let token = key.token(ISS);
    let untrusted = meshguard(&["--jwks-url", &url, &token]);
    let message = assert_configuration_error(&untrusted, "unknown CA");
    assert!(message.contains("cannot load the keys"), "{message}");

    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(&pki.ca_der)
    );
    let ca = temp_file("ca.pem", pem.as_bytes());
    let trusted = meshguard(&[
        "--jwks-url",
        &url,
        "--ca-file",
        ca.to_str().unwrap(),
        &token,
    ]);
    assert_eq!(trusted.status.code(), Some(0), "{}", stderr(&trusted));
    let claims: serde_json::Value = serde_json::from_slice(&trusted.stdout).unwrap();
    assert_eq!(claims["sub"], "alice");
    std::fs::remove_file(ca).unwrap();
}

#[test]
fn misconfigured_sources_and_flags_are_usage_errors() {
    let not_pem = temp_file("not-a-ca.pem", b"not pem");
    let key_pem = temp_file(
        "key.pem",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let (not_pem, key_pem) = (not_pem.to_str().unwrap(), key_pem.to_str().unwrap());
    let https = "https://idp.example/jwks";
    for args in [
        &["--jwks-url", "ftp://idp.example/jwks", "x.y.z"][..],
        &["--jwks-url", "http://idp.example/jwks", "x.y.z"],
        &["--discover", "https://idp.example?x=1", "x.y.z"],
        &["--jwks-url", https, "--keys", "k.json", "x.y.z"],
        &[
            "--jwks-url",
            "https://a.example/jwks",
            "--discover",
            "https://a.example",
            "x.y.z",
        ],
        &["x.y.z"],
        // The remote-only flags need a remote source.
        &["--keys", "k.json", "--allow-plain-http", "x.y.z"],
        &["--keys", "k.json", "--ca-file", not_pem, "x.y.z"],
        // A CA file must hold certificates and nothing else.
        &[
            "--jwks-url",
            https,
            "--ca-file",
            "/nonexistent/ca.pem",
            "x.y.z",
        ],
        &["--jwks-url", https, "--ca-file", not_pem, "x.y.z"],
        &["--jwks-url", https, "--ca-file", key_pem, "x.y.z"],
        // One profile, and it sets `typ` itself.
        &["--jwks-url", https, "--profile", "id+jwt", "x.y.z"],
        &[
            "--jwks-url",
            https,
            "--profile",
            "at+jwt",
            "--require-type",
            "jwt",
            "x.y.z",
        ],
    ] {
        let output = meshguard(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("rejected:"), "{args:?}");
    }
}
