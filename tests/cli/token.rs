//! The `meshguard verify-token` contract: flags, exit codes and `rejected: <reason>` lines.
#![cfg(feature = "cli")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

const NOW: &str = "1893456000";

fn meshguard(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn case(name: &str) -> String {
    let data = support::read_json("pyjwt/tokens.json");
    data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn path(file: &str) -> String {
    support::data(file).to_str().unwrap().to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn valid_token_prints_claims_and_exits_zero() {
    let jwks = path("pyjwt/jwks.json");
    let token = case("es256_valid");
    let out = meshguard(
        &[
            "verify-token",
            "--keys",
            &jwks,
            "--issuer",
            "https://issuer.example",
            "--audience",
            "api://orders",
            "--now",
            NOW,
            &token,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["sub"], "user-123");
    assert!(!stderr(&out).contains("not checked"));
}

#[test]
fn token_is_read_from_stdin_when_absent_or_dash() {
    let pem = path("pyjwt/keys/ed25519.pub.pem");
    let token = format!("{}\n", case("eddsa_valid"));
    for extra in [&[][..], &["-"][..]] {
        let mut args = vec!["verify-token", "--keys", &pem, "--now", NOW];
        args.extend_from_slice(extra);
        let out = meshguard(&args, Some(&token));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

#[test]
fn rejections_exit_one_with_a_stable_reason_line() {
    let jwks = path("pyjwt/jwks.json");
    for (name, reason) in [
        ("rs256_expired", "expired"),
        ("rs256_bad_signature", "bad_signature"),
        ("none_alg", "disallowed_algorithm"),
        ("rs256_unknown_kid", "unknown_key"),
        ("rs256_wrong_iss", "issuer"),
        ("es256_wrong_aud", "audience"),
        ("eddsa_nbf_future", "not_yet_valid"),
    ] {
        let out = meshguard(
            &[
                "verify-token",
                "--keys",
                &jwks,
                "--issuer",
                "https://issuer.example",
                "--audience",
                "api://orders",
                "--leeway",
                "0",
                "--now",
                NOW,
                &case(name),
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = stderr(&out);
        assert_eq!(
            err.lines().last(),
            Some(format!("rejected: {reason}").as_str()),
            "{name}: {err}"
        );
        assert_eq!(
            err.lines().filter(|l| l.starts_with("rejected:")).count(),
            1
        );
        assert!(out.stdout.is_empty());
    }
    let out = meshguard(&["verify-token", "--keys", &jwks, "not-a-token"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).ends_with("rejected: malformed\n"));
}

#[test]
fn alg_restricts_and_require_demands_claims() {
    let jwks = path("pyjwt/jwks.json");
    let token = case("rs256_valid");
    let out = meshguard(
        &[
            "verify-token",
            "--keys",
            &jwks,
            "--alg",
            "ES256",
            "--now",
            NOW,
            &token,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).ends_with("rejected: disallowed_algorithm\n"));
    let out = meshguard(
        &[
            "verify-token",
            "--keys",
            &jwks,
            "--require",
            "tenant",
            "--now",
            NOW,
            &token,
        ],
        None,
    );
    assert!(stderr(&out).ends_with("rejected: missing_claim\n"));
    let out = meshguard(
        &[
            "verify-token",
            "--keys",
            &jwks,
            "--alg",
            "RS256",
            "--require",
            "jti",
            "--now",
            NOW,
            &token,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn unchecked_issuer_and_audience_are_announced() {
    let jwks = path("pyjwt/jwks.json");
    let out = meshguard(
        &[
            "verify-token",
            "--keys",
            &jwks,
            "--now",
            NOW,
            &case("rs256_wrong_iss"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("`iss` is not checked") && err.contains("`aud` is not checked"),
        "{err}"
    );
}

#[test]
fn now_controls_every_time_check() {
    let jwks = path("pyjwt/jwks.json");
    let token = case("rs256_valid");
    let out = meshguard(
        &[
            "verify-token",
            "--keys",
            &jwks,
            "--now",
            "1893459600",
            "--leeway",
            "0",
            &token,
        ],
        None,
    );
    assert!(stderr(&out).ends_with("rejected: expired\n"));
    let out = meshguard(
        &[
            "verify-token",
            "--keys",
            &jwks,
            "--now",
            "1893455000",
            "--leeway",
            "0",
            &token,
        ],
        None,
    );
    assert!(stderr(&out).ends_with("rejected: not_yet_valid\n"));
}

#[test]
fn several_key_files_are_merged() {
    let out = meshguard(
        &[
            "verify-token",
            "--keys",
            &path("pyjwt/keys/ed25519.pub.pem"),
            "--keys",
            &path("pyjwt/keys/rsa2048.cert.pem"),
            "--now",
            NOW,
            &case("eddsa_valid"),
        ],
        None,
    );
    // Two keys and a token with a kid neither carries: no silent trial of both.
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).ends_with("rejected: unknown_key\n"));
}

#[test]
fn usage_and_key_file_errors_exit_two() {
    let jwks = path("pyjwt/jwks.json");
    for args in [
        &["verify-token"][..],
        &["verify-token", "--keys"][..],
        &["verify-token", "--keys", &jwks, "--alg", "none", "x"][..],
        &["verify-token", "--keys", &jwks, "--leeway", "-5", "x"][..],
        &["verify-token", "--keys", "/nonexistent/keys.json", "x"][..],
        &[
            "verify-token",
            "--keys",
            &path("pyjwt/keys/TEST-ONLY-ec-p256.key.pem"),
            "x",
        ][..],
        &["verify-token", "--keys", &path("pyjwt/README.md"), "x"][..],
        &["frobnicate"][..],
    ] {
        let out = meshguard(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty());
        assert!(!stderr(&out).contains("rejected:"));
    }
}

/// A key file far larger than the 1 MiB bound is refused after reading just past the bound:
/// the file is sparse (no disk used) and the process may not map more than 512 MiB, so a
/// tool that read it whole would die of it instead of exiting 2 with the usual message.
#[cfg(target_os = "linux")]
#[test]
fn a_huge_key_file_is_refused_without_being_read_whole() {
    let dir = std::env::temp_dir().join(format!("meshguard-cli-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let huge = dir.join("huge.jwks");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 524288 && exec "$0" verify-token --keys "$1" x"#)
        .arg(env!("CARGO_BIN_EXE_meshguard"))
        .arg(&huge)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot load keys from `{}`: key document is larger than 1048576 bytes\n",
            huge.display()
        )
    );
}
