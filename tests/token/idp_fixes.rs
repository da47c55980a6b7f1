//! What trying real identity providers showed: `typ` values with and without the
//! `application/` prefix (RFC 7515 §4.1.9), and the fully-specified `Ed25519` algorithm name
//! (RFC 9864) that current providers put in JWKS documents and token headers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support;

use std::sync::Arc;

use meshguard::token::{Algorithm, FixedClock, Issuer, KeySet, TokenError, TokenSigner, Verifier};
use ring::signature::Ed25519KeyPair;
use serde_json::{Value, json};
use support::{TestKeys, assemble, b64, signing_input};

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://idp.example";
const AUD: &str = "api://orders";

fn claims() -> String {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "exp": NOW + 300, "iat": NOW - 10}).to_string()
}

fn verifier(issuer: Issuer) -> Verifier {
    Verifier::builder()
        .issuer(issuer.audience(AUD))
        .clock(Arc::new(FixedClock(NOW)))
        .build()
        .unwrap()
}

fn reason(verifier: &Verifier, token: &str) -> &'static str {
    match verifier.verify(token) {
        Ok(_) => "accepted",
        Err(e) => e.reason(),
    }
}

/// A token over `header`, signed with the test's Ed25519 key by ring itself.
fn ed_token(keys: &TestKeys, header: &Value) -> String {
    let header = header.to_string();
    let payload = claims();
    let pair = Ed25519KeyPair::from_pkcs8(&keys.ed_pkcs8).unwrap();
    let signature = pair.sign(signing_input(&header, &payload).as_bytes());
    assemble(&header, &payload, signature.as_ref())
}

/// A JWKS holding the test's Ed25519 key, with `alg` when given.
fn ed_jwks(keys: &TestKeys, alg: Option<&str>) -> KeySet {
    let mut jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(keys.ed_public())});
    if let Some(alg) = alg {
        jwk["alg"] = alg.into();
    }
    let set = KeySet::from_jwks_json(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap();
    assert_eq!(set.skipped(), [] as [String; 0], "{alg:?}");
    set
}

#[test]
fn a_required_type_is_the_same_with_or_without_the_application_prefix() {
    let keys = TestKeys::generate();
    let typed = |typ: &str| ed_token(&keys, &json!({"alg": "EdDSA", "kid": "ed", "typ": typ}));
    for (configured, typ, outcome) in [
        ("at+jwt", "application/at+jwt", "accepted"),
        ("at+jwt", "Application/AT+JWT", "accepted"),
        ("application/at+jwt", "at+jwt", "accepted"),
        ("Application/AT+JWT", "at+jwt", "accepted"),
        ("application/jwt", "JWT", "accepted"),
        ("JWT", "application/jwt", "accepted"),
        // Parameters are not stripped, nor whitespace trimmed, nor another prefix swapped.
        ("at+jwt", "at+jwt; charset=x", "invalid_type"),
        (
            "application/at+jwt",
            "application/at+jwt;charset=x",
            "invalid_type",
        ),
        ("at+jwt", " at+jwt", "invalid_type"),
        ("at+jwt", "text/at+jwt", "invalid_type"),
        ("at+jwt", "application/application/at+jwt", "invalid_type"),
        ("application/jwt", "at+jwt", "invalid_type"),
        // A configured value naming no media type matches nothing, an empty `typ` included.
        ("application/", "", "invalid_type"),
        ("", "", "invalid_type"),
    ] {
        let verifier =
            verifier(Issuer::new(ISS, ed_jwks(&keys, None)).require_token_type([configured]));
        assert_eq!(
            reason(&verifier, &typed(typ)),
            outcome,
            "{configured} vs {typ}"
        );
    }
    let untyped = ed_token(&keys, &json!({"alg": "EdDSA", "kid": "ed"}));
    let verifier = verifier(Issuer::new(ISS, ed_jwks(&keys, None)).require_token_type([""]));
    assert_eq!(reason(&verifier, &untyped), "invalid_type");
}

#[test]
fn a_jwk_labelled_ed25519_loads_and_verifies_ed25519_tokens() {
    let keys = TestKeys::generate();
    let verifier = verifier(Issuer::new(ISS, ed_jwks(&keys, Some("Ed25519"))));
    let token = ed_token(&keys, &json!({"alg": "Ed25519", "kid": "ed"}));
    let verified = verifier.verify(&token).unwrap();
    assert_eq!(verified.subject(), Some("alice"));
    assert_eq!(verified.header().algorithm(), Some(Algorithm::Ed25519));
    // The signature still counts: a flipped byte is refused.
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        verifier
            .verify(std::str::from_utf8(&forged).unwrap())
            .unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn ed25519_and_eddsa_are_two_names_for_labelled_keys_and_allow_lists() {
    let keys = TestKeys::generate();
    let eddsa = ed_token(&keys, &json!({"alg": "EdDSA", "kid": "ed"}));
    let ed25519 = ed_token(&keys, &json!({"alg": "Ed25519", "kid": "ed"}));
    // A key without `alg` verifies under either name.
    let unlabelled = verifier(Issuer::new(ISS, ed_jwks(&keys, None)));
    assert_eq!(reason(&unlabelled, &eddsa), "accepted");
    assert_eq!(reason(&unlabelled, &ed25519), "accepted");
    // A key's `alg` names the one algorithm it is for.
    let labelled_eddsa = verifier(Issuer::new(ISS, ed_jwks(&keys, Some("EdDSA"))));
    assert_eq!(reason(&labelled_eddsa, &eddsa), "accepted");
    assert_eq!(reason(&labelled_eddsa, &ed25519), "disallowed_algorithm");
    let labelled_ed25519 = verifier(Issuer::new(ISS, ed_jwks(&keys, Some("Ed25519"))));
    assert_eq!(reason(&labelled_ed25519, &ed25519), "accepted");
    assert_eq!(reason(&labelled_ed25519, &eddsa), "disallowed_algorithm");
    // An allow-list names each algorithm it accepts.
    for (allowed, accepted, refused) in [
        (Algorithm::EdDSA, &eddsa, &ed25519),
        (Algorithm::Ed25519, &ed25519, &eddsa),
    ] {
        let only = verifier(Issuer::new(ISS, ed_jwks(&keys, None)).algorithms([allowed]));
        assert_eq!(reason(&only, accepted), "accepted", "{allowed}");
        assert_eq!(reason(&only, refused), "disallowed_algorithm", "{allowed}");
    }
}

#[test]
fn the_signer_writes_the_name_it_was_given() {
    let keys = TestKeys::generate();
    let verifier = verifier(Issuer::new(ISS, ed_jwks(&keys, Some("Ed25519"))));
    let signer = TokenSigner::new(Algorithm::Ed25519, &keys.ed_pkcs8)
        .unwrap()
        .with_kid("ed");
    let token = signer
        .sign(&serde_json::from_str::<Value>(&claims()).unwrap())
        .unwrap();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "Ed25519");
    assert_eq!(reason(&verifier, &token), "accepted");
}

#[test]
fn ed448_keys_are_skipped_with_a_clear_reason_and_their_tokens_refused() {
    let keys = TestKeys::generate();
    // Key bytes do not matter: Ed448 is refused before they are read.
    let jwks = json!({"keys": [
        {"kty": "OKP", "crv": "Ed448", "kid": "e1", "x": b64([7u8; 57])},
        {"kty": "OKP", "crv": "Ed448", "alg": "Ed448", "kid": "e2", "x": b64([7u8; 57])},
        {"kty": "OKP", "crv": "Ed25519", "alg": "Ed448", "kid": "e3", "x": b64(keys.ed_public())},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(keys.ed_public())},
    ]});
    let set = KeySet::from_jwks_json(jwks.to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.skipped().len(), 3);
    for why in set.skipped() {
        assert!(why.contains("Ed448 is not supported"), "{why}");
    }
    let verifier = verifier(Issuer::new(ISS, set));
    let ed448 = ed_token(&keys, &json!({"alg": "Ed448", "kid": "ed"}));
    assert_eq!(reason(&verifier, &ed448), "disallowed_algorithm");
}
