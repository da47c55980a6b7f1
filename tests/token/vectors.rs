//! Known-answer tests: the JWS examples of RFC 7515, RFC 7520 and RFC 8037, and tokens
//! minted by PyJWT for every algorithm (see tests/data/*/README.md for sources).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use meshguard::token::{FixedClock, Issuer, KeySet, TokenError, Verifier};
use serde_json::Value;

/// One second before RFC 7515 Appendix A's `exp` (1300819380).
const BEFORE_RFC7515_EXP: i64 = 1_300_819_379;

fn public_jwk(jwk: &Value) -> Vec<u8> {
    let mut jwk = jwk.clone();
    let object = jwk.as_object_mut().unwrap();
    // Private members are irrelevant to verification; an `oct` key keeps `k`.
    if object.get("kty").and_then(Value::as_str) != Some("oct") {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            object.remove(private);
        }
    }
    serde_json::to_vec(&jwk).unwrap()
}

fn rfc_verifier(jwk: &Value, now: i64) -> Verifier {
    let keys = KeySet::from_jwk_json(&public_jwk(jwk)).unwrap();
    Verifier::builder()
        .issuer(
            Issuer::any(keys)
                .allow_any_audience()
                .allow_missing_exp()
                .leeway(Duration::ZERO),
        )
        .clock(Arc::new(FixedClock(now)))
        .build()
        .unwrap()
}

#[test]
fn rfc_jws_vectors_verify_or_fail_for_the_right_reason() {
    let vectors = support::read_json("jose/jose_rfc_vectors.json");
    let keys = &vectors["keys"];
    let mut checked = 0;
    for case in vectors["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let compact = case["compact"].as_str().unwrap();
        let in_scope = case["alg_in_target_scope"].as_bool().unwrap_or(true);
        let expected = case["expected"].as_str().unwrap();
        let reason_class = case["reason_class"].as_str();
        if !in_scope {
            // P-521 is outside ring and jsonwebtoken 12: the key cannot be configured, and
            // ES512 tokens are refused by any verifier.
            let key = &keys[case["verify_with_key"].as_str().unwrap()];
            assert!(KeySet::from_jwk_json(&public_jwk(key)).is_err(), "{id}");
            let other = rfc_verifier(&keys["rfc7515-A.3-ec-p256-public"], BEFORE_RFC7515_EXP);
            assert_eq!(
                other.verify(compact).unwrap_err(),
                TokenError::DisallowedAlgorithm,
                "{id}"
            );
            checked += 1;
            continue;
        }
        let result = match case["verify_with_key"].as_str() {
            Some(key) => rfc_verifier(&keys[key], BEFORE_RFC7515_EXP).verify(compact),
            // `alg: none` cases name no key: any verifier must refuse them.
            None => rfc_verifier(&keys["rfc7515-A.1-hmac"], BEFORE_RFC7515_EXP).verify(compact),
        };
        let detached = case.get("detached_payload_b64u").is_some() || id.contains("detached");
        match (expected, in_scope) {
            ("valid", true) if detached => {
                assert!(
                    matches!(result, Err(TokenError::Malformed(_))),
                    "{id}: {result:?}"
                )
            }
            ("valid", true) if case["payload_is_json_object"] == true => {
                let token = result.unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(token.issuer(), Some("joe"), "{id}");
                assert_eq!(
                    token.claim("http://example.com/is_root"),
                    Some(&Value::Bool(true))
                );
            }
            // The signature holds (tampered twins fail with bad_signature), but a JWT
            // verifier needs a JSON claims set.
            ("valid", true) => assert_eq!(
                result.unwrap_err(),
                TokenError::Malformed("bad claims set"),
                "{id}"
            ),
            ("invalid", true) => {
                let error = result.unwrap_err();
                match reason_class {
                    Some("bad_signature") if detached => {
                        assert!(matches!(error, TokenError::Malformed(_)), "{id}: {error}")
                    }
                    Some("bad_signature") => assert_eq!(error, TokenError::BadSignature, "{id}"),
                    Some("alg_none" | "crit_unsupported") => {
                        assert_eq!(error, TokenError::DisallowedAlgorithm, "{id}")
                    }
                    other => panic!("{id}: unexpected reason class {other:?}"),
                }
            }
            _ => panic!("{id}: unexpected case"),
        }
        checked += 1;
    }
    assert_eq!(checked, 52);
}

#[test]
fn rfc7515_appendix_a_tokens_expire_on_a_real_clock() {
    let vectors = support::read_json("jose/jose_rfc_vectors.json");
    let case = &vectors["cases"][0];
    assert_eq!(case["id"], "rfc7515-A.1-hs256");
    let verifier = rfc_verifier(&vectors["keys"]["rfc7515-A.1-hmac"], 1_300_819_380);
    assert_eq!(
        verifier
            .verify(case["compact"].as_str().unwrap())
            .unwrap_err(),
        TokenError::Expired,
        "exp == now with zero leeway is expired (RFC 7519 §4.1.4)"
    );
}

#[test]
fn ring_provider_verifies_rfc_vectors_through_jsonwebtoken() {
    let _ = meshguard::token::crypto::install_default();
    let vectors = support::read_json("jose/jose_rfc_vectors.json");
    let mut verified = 0;
    for case in vectors["cases"].as_array().unwrap() {
        let Some(key_name) = case["verify_with_key"].as_str() else {
            continue;
        };
        let Ok(alg) = case["alg"]
            .as_str()
            .unwrap()
            .parse::<jsonwebtoken::Algorithm>()
        else {
            continue;
        };
        if case["alg_in_target_scope"] == false || case["id"].as_str().unwrap().contains("detached")
        {
            continue;
        }
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_slice(&public_jwk(&vectors["keys"][key_name])).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let compact = case["compact"].as_str().unwrap();
        let (message, signature) = compact.rsplit_once('.').unwrap();
        let valid =
            jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg).unwrap_or(false);
        assert_eq!(valid, case["expected"] == "valid", "{}", case["id"]);
        verified += 1;
    }
    assert_eq!(
        verified, 35,
        "every in-scope, non-detached vector with a key"
    );
}

struct PyJwt {
    now: i64,
    cases: Vec<Value>,
}

fn pyjwt() -> PyJwt {
    let data = support::read_json("pyjwt/tokens.json");
    PyJwt {
        now: data["now"].as_i64().unwrap(),
        cases: data["cases"].as_array().unwrap().clone(),
    }
}

fn pyjwt_verifier(keys: KeySet, now: i64, profile: bool) -> Verifier {
    let mut issuer = Issuer::new("https://issuer.example", keys)
        .audience("api://orders")
        .leeway(Duration::ZERO);
    if profile {
        issuer = issuer.access_token_profile();
    }
    Verifier::builder()
        .issuer(issuer)
        .clock(Arc::new(FixedClock(now)))
        .build()
        .unwrap()
}

#[test]
fn pyjwt_tokens_for_every_algorithm() {
    let data = pyjwt();
    let keys = KeySet::from_jwks_json(&support::read("pyjwt/jwks_with_secrets.json")).unwrap();
    assert_eq!(keys.len(), 12);
    let verifier = pyjwt_verifier(keys, data.now, false);
    let mut algorithms = std::collections::BTreeSet::new();
    for case in &data.cases {
        let name = case["name"].as_str().unwrap();
        if name.ends_with("_no_kid") {
            continue;
        }
        let result = verifier.verify(case["token"].as_str().unwrap());
        if case["expected"] == "valid" {
            let token = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(token.subject(), Some("user-123"), "{name}");
            assert_eq!(
                token.header().algorithm().unwrap().as_str(),
                case["alg"],
                "{name}"
            );
            assert!(token.has_scope("orders:read") && token.has_scope("orders:write"));
            assert_eq!(token.client_id(), Some("svc-client"));
            assert_eq!(
                token.claims(),
                case["claims"].as_object().unwrap(),
                "{name}"
            );
            algorithms.insert(case["alg"].as_str().unwrap().to_owned());
        } else {
            // PyJWT's data calls a string `exp` malformed; meshguard names the claim.
            let expected = match name {
                "hs256_exp_string" => "invalid_claim",
                _ => case["reason"].as_str().unwrap(),
            };
            assert_eq!(result.unwrap_err().reason(), expected, "{name}");
        }
    }
    assert_eq!(algorithms.len(), 12, "{algorithms:?}");
}

#[test]
fn pyjwt_tokens_without_kid_need_a_single_key() {
    let data = pyjwt();
    let all = KeySet::from_jwks_json(&support::read("pyjwt/jwks_with_secrets.json")).unwrap();
    let jwks = support::read_json("pyjwt/jwks_with_secrets.json");
    for case in data
        .cases
        .iter()
        .filter(|c| c["name"].as_str().unwrap().ends_with("_no_kid"))
    {
        let token = case["token"].as_str().unwrap();
        let rejected = pyjwt_verifier(all.clone(), data.now, false).verify(token);
        assert_eq!(rejected.unwrap_err(), TokenError::UnknownKey);
        let kid = case["alg"].as_str().unwrap().to_lowercase();
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .unwrap();
        let single = KeySet::from_jwk_json(&serde_json::to_vec(jwk).unwrap()).unwrap();
        pyjwt_verifier(single, data.now, false)
            .verify(token)
            .unwrap();
    }
}

#[test]
fn pyjwt_tokens_verify_with_pem_keys_and_certificates() {
    let data = pyjwt();
    let token = |name: &str| {
        data.cases.iter().find(|c| c["name"] == name).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (file, case) in [
        ("rsa2048.pub.pem", "rs256_valid"),
        ("rsa2048.pkcs1.pem", "rs256_valid"),
        ("rsa2048.cert.pem", "ps256_valid"),
        ("rsa3072.pub.pem", "rs384_valid"),
        ("ec-p256.pub.pem", "es256_valid"),
        ("ec-p256.cert.pem", "es256_valid"),
        ("ec-p384.pub.pem", "es384_valid"),
        ("ed25519.pub.pem", "eddsa_valid"),
    ] {
        let keys = KeySet::from_pem(&support::read(&format!("pyjwt/keys/{file}"))).unwrap();
        let verifier = pyjwt_verifier(keys, data.now, false);
        verifier
            .verify(&token(case))
            .unwrap_or_else(|e| panic!("{file} / {case}: {e}"));
    }
}

#[test]
fn access_token_profile_refuses_id_tokens() {
    let data = pyjwt();
    let keys = KeySet::from_jwks_json(&support::read("pyjwt/jwks_with_secrets.json")).unwrap();
    let verifier = pyjwt_verifier(keys, data.now, true);
    for case in &data.cases {
        let name = case["name"].as_str().unwrap();
        let result = verifier.verify(case["token"].as_str().unwrap());
        if name.ends_with("_typ_jwt") {
            assert_eq!(result.unwrap_err(), TokenError::InvalidType, "{name}");
        } else if name.ends_with("_valid") {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
