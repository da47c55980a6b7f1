//! Hostile tokens and the JWT items of CONFORMANCE.md (1–33), each against a real verifier
//! with keys generated at test time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use meshguard::token::{
    Algorithm, FixedClock, Issuer, KeyError, KeySet, TokenError, TokenSigner, VerificationKey,
    Verifier, VerifierBuilderError,
};
use ring::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use serde_json::json;
use support::{TestKeys, assemble, b64, signing_input};

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://idp.example";
const AUD: &str = "api://orders";

fn claims() -> serde_json::Value {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "exp": NOW + 300, "iat": NOW - 10})
}

fn verifier_with(issuer: Issuer) -> Verifier {
    Verifier::builder()
        .issuer(issuer)
        .clock(Arc::new(FixedClock(NOW)))
        .build()
        .unwrap()
}

fn ec_keys(keys: &TestKeys) -> KeySet {
    let jwks = json!({"keys": [keys.ec256_jwk("ec1", Some("ES256"))]});
    KeySet::from_jwks_json(jwks.to_string().as_bytes()).unwrap()
}

fn ec_verifier(keys: &TestKeys) -> Verifier {
    verifier_with(Issuer::new(ISS, ec_keys(keys)).audience(AUD))
}

fn hmac_verifier(keys: &TestKeys) -> Verifier {
    verifier_with(Issuer::new(ISS, KeySet::hmac_secret("h1", &keys.hmac).unwrap()).audience(AUD))
}

/// An ES256 token over exactly `header` and `payload` text.
fn es256(keys: &TestKeys, header: &str, payload: &str) -> String {
    assemble(
        header,
        payload,
        &keys.sign_es256(&signing_input(header, payload)),
    )
}

fn hs256(keys: &TestKeys, header: &str, payload: &str) -> String {
    assemble(
        header,
        payload,
        &keys.sign_hs256(&signing_input(header, payload)),
    )
}

const ES_HEADER: &str = r#"{"alg":"ES256","kid":"ec1"}"#;
const HS_HEADER: &str = r#"{"alg":"HS256","kid":"h1"}"#;

fn reason(verifier: &Verifier, token: &str) -> &'static str {
    match verifier.verify(token) {
        Ok(_) => "accepted",
        Err(e) => e.reason(),
    }
}

#[test]
fn a_well_formed_token_is_accepted() {
    let keys = TestKeys::generate();
    let token = es256(&keys, ES_HEADER, &claims().to_string());
    let verified = ec_verifier(&keys).verify(&token).unwrap();
    assert_eq!(verified.subject(), Some("alice"));
    assert_eq!(verified.header().key_id(), Some("ec1"));
    assert_eq!(verified.audiences(), [AUD]);
}

// 1. alg none, in every casing, with any key set.
#[test]
fn alg_none_in_any_casing_is_disallowed() {
    let keys = TestKeys::generate();
    let payload = claims().to_string();
    for none in ["none", "None", "NONE", "nOnE", "NoNe"] {
        let header = format!(r#"{{"alg":"{none}","kid":"h1"}}"#);
        for signature in [
            "",
            "AA",
            &b64(keys.sign_hs256(&signing_input(&header, &payload))),
        ] {
            let token = format!("{}.{signature}", signing_input(&header, &payload));
            assert_eq!(
                reason(&hmac_verifier(&keys), &token),
                "disallowed_algorithm",
                "{none}"
            );
            assert_eq!(
                reason(&ec_verifier(&keys), &token),
                "disallowed_algorithm",
                "{none}"
            );
        }
    }
}

#[test]
fn a_key_declaring_alg_none_cannot_be_configured() {
    let jwk = json!({"kty": "oct", "alg": "none", "k": b64([1u8; 32])});
    assert!(matches!(
        KeySet::from_jwk_json(jwk.to_string().as_bytes()),
        Err(KeyError::Unsupported(_))
    ));
}

#[test]
fn an_empty_key_set_cannot_be_configured() {
    let built = Verifier::builder()
        .issuer(Issuer::new(ISS, KeySet::new()).audience(AUD))
        .build();
    assert_eq!(built.unwrap_err(), VerifierBuilderError::NoUsableKeys);
}

// 2. The allow-list applies before any key is looked up.
#[test]
fn an_algorithm_outside_the_allow_list_is_refused_before_key_lookup() {
    let keys = TestKeys::generate();
    let verifier = verifier_with(
        Issuer::new(ISS, ec_keys(&keys))
            .audience(AUD)
            .algorithms([Algorithm::ES256]),
    );
    let header = r#"{"alg":"RS256","kid":"no-such-key"}"#;
    let token = assemble(header, &claims().to_string(), &[1; 256]);
    assert_eq!(reason(&verifier, &token), "disallowed_algorithm");
}

// 3. RSA/HMAC confusion: the public key as an HMAC secret.
#[test]
fn a_public_key_is_never_used_as_an_hmac_secret() {
    let keys = TestKeys::generate();
    let pem = support::read("pyjwt/keys/rsa2048.pub.pem");
    let rsa = KeySet::from_pem(&pem).unwrap();
    let verifier = verifier_with(Issuer::new(ISS, rsa).audience(AUD));
    let header = r#"{"alg":"HS256"}"#;
    let payload = claims().to_string();
    let input = signing_input(header, &payload);
    for secret in [pem.clone(), support::pem_contents(&pem)] {
        let token = assemble(header, &payload, &support::hs256(&secret, &input));
        assert_eq!(reason(&verifier, &token), "disallowed_algorithm");
    }
    let ec = ec_verifier(&keys);
    let token = assemble(
        HS_HEADER.replace("h1", "ec1").as_str(),
        &payload,
        &keys.sign_hs256(&input),
    );
    assert_eq!(reason(&ec, &token), "disallowed_algorithm");
}

#[test]
fn a_key_declaring_hs256_on_rsa_material_is_refused_at_configuration() {
    let jwks = support::read_json("pyjwt/jwks.json");
    let mut rsa = jwks["keys"][0].clone();
    rsa["alg"] = "HS256".into();
    assert!(matches!(
        KeySet::from_jwk_json(rsa.to_string().as_bytes()),
        Err(KeyError::AlgorithmMismatch { .. })
    ));
}

// 4. One key, one algorithm.
#[test]
fn a_jwk_restricted_to_rs256_never_verifies_ps256() {
    let keys = TestKeys::generate();
    let jwks = support::read_json("pyjwt/jwks.json");
    let rs256 = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "rs256")
        .unwrap();
    let set = KeySet::from_jwk_json(rs256.to_string().as_bytes()).unwrap();
    let verifier = verifier_with(Issuer::new(ISS, set).audience(AUD));
    let payload = claims().to_string();
    let ps = r#"{"alg":"PS256","kid":"rs256"}"#;
    let token = assemble(
        ps,
        &payload,
        &keys.sign_rsa(&RSA_PSS_SHA256, &signing_input(ps, &payload)),
    );
    assert_eq!(reason(&verifier, &token), "disallowed_algorithm");
    let rs = r#"{"alg":"RS256","kid":"rs256"}"#;
    let token = assemble(
        rs,
        &payload,
        &keys.sign_rsa(&RSA_PKCS1_SHA256, &signing_input(rs, &payload)),
    );
    assert_eq!(reason(&verifier, &token), "accepted");
}

// 5. Curve and algorithm must agree.
#[test]
fn es256_with_a_p384_key_is_refused() {
    let keys = TestKeys::generate();
    let point = keys.ec384_public();
    let jwk =
        json!({"kty":"EC","crv":"P-384","kid":"ec1","x":b64(&point[1..49]),"y":b64(&point[49..])});
    let set = KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap();
    let verifier = verifier_with(Issuer::new(ISS, set).audience(AUD));
    let token = es256(&keys, ES_HEADER, &claims().to_string());
    assert_eq!(reason(&verifier, &token), "disallowed_algorithm");
    let mut p256_as_384 = keys.ec256_jwk("x", None);
    p256_as_384["crv"] = "P-384".into();
    assert!(KeySet::from_jwk_json(p256_as_384.to_string().as_bytes()).is_err());
}

// 6. ECDSA signatures: fixed size only, no DER, no zero r/s.
#[test]
fn malformed_ecdsa_signatures_are_bad_signatures() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let payload = claims().to_string();
    let good = keys.sign_es256(&signing_input(ES_HEADER, &payload));
    let mut der = vec![0x30, 0x44, 0x02, 0x20];
    der.extend_from_slice(&good[..32]);
    der.extend_from_slice(&[0x02, 0x20]);
    der.extend_from_slice(&good[32..]);
    let mut long = good.clone();
    long.push(0);
    for signature in [vec![0u8; 64], good[..63].to_vec(), long, der, vec![0u8; 1]] {
        let token = assemble(ES_HEADER, &payload, &signature);
        assert_eq!(reason(&verifier, &token), "bad_signature");
    }
}

// 7. Shape.
#[test]
fn wrong_segment_counts_and_empty_parts_are_malformed() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let token = es256(&keys, ES_HEADER, &claims().to_string());
    let (input, _) = token.rsplit_once('.').unwrap();
    for bad in [
        format!("{input}."),
        format!("{token}.extra"),
        format!("{token}.a.b"),
        input.to_owned(),
        format!(".{token}"),
        "..".to_owned(),
        String::new(),
        format!("{}..{}", input.split('.').next().unwrap(), "AA"),
    ] {
        assert_eq!(reason(&verifier, &bad), "malformed", "{bad}");
    }
}

// 8. base64url strictly.
#[test]
fn non_base64url_characters_and_padding_are_malformed() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let token = es256(&keys, ES_HEADER, &claims().to_string());
    let parts: Vec<&str> = token.split('.').collect();
    let variants = [
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}==.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0].replacen('e', "+", 1),
            parts[1],
            parts[2]
        ),
        format!("{}.{}/.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{} ", parts[0], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            &parts[2][..parts[2].len() - 1]
        ),
    ];
    for bad in variants {
        let got = reason(&verifier, &bad);
        assert!(got == "malformed" || got == "bad_signature", "{bad}: {got}");
        assert_ne!(got, "accepted");
    }
    let padded_header = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
    assert_eq!(reason(&verifier, &padded_header), "malformed");
}

// 9. UTF-8.
#[test]
fn invalid_utf8_in_header_or_payload_is_malformed() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let header = b"{\"alg\":\"ES256\",\"kid\":\"ec1\",\"x\":\"\xff\"}";
    let payload = claims().to_string();
    let input = format!("{}.{}", b64(header), b64(&payload));
    let token = format!("{input}.{}", b64(keys.sign_es256(&input)));
    assert_eq!(reason(&verifier, &token), "malformed");
    let bad_payload = b"{\"sub\":\"\xc3\x28\"}";
    let input = format!("{}.{}", b64(ES_HEADER), b64(bad_payload));
    let token = format!("{input}.{}", b64(keys.sign_es256(&input)));
    assert_eq!(reason(&verifier, &token), "malformed");
}

// 10. Duplicate member names.
#[test]
fn duplicate_member_names_are_malformed() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let payload = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","sub":"admin","exp":{}}}"#,
        NOW + 300
    );
    assert_eq!(
        reason(&verifier, &es256(&keys, ES_HEADER, &payload)),
        "malformed"
    );
    let nested = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"realm":{{"roles":["a"],"roles":["admin"]}}}}"#,
        NOW + 300
    );
    assert_eq!(
        reason(&verifier, &es256(&keys, ES_HEADER, &nested)),
        "malformed"
    );
    let header = r#"{"alg":"ES256","kid":"ec1","kid":"other"}"#;
    assert_eq!(
        reason(&verifier, &es256(&keys, header, &claims().to_string())),
        "malformed"
    );
}

// 11. crit.
#[test]
fn unknown_critical_extensions_are_refused() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    for header in [
        r#"{"alg":"ES256","kid":"ec1","crit":["exp"],"exp":1}"#,
        r#"{"alg":"ES256","kid":"ec1","crit":["b64"],"b64":false}"#,
        r#"{"alg":"ES256","kid":"ec1","crit":[]}"#,
    ] {
        let token = es256(&keys, header, &claims().to_string());
        assert_eq!(reason(&verifier, &token), "unsupported_crit", "{header}");
    }
}

// 12. Nested tokens: every layer would have to verify; meshguard accepts only one.
#[test]
fn nested_tokens_are_refused() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let inner = es256(&keys, ES_HEADER, &claims().to_string());
    let as_string = serde_json::to_string(&inner).unwrap();
    assert_eq!(
        reason(&verifier, &es256(&keys, ES_HEADER, &as_string)),
        "malformed"
    );
    let cty = r#"{"alg":"ES256","kid":"ec1","cty":"JWT"}"#;
    assert_eq!(
        reason(&verifier, &es256(&keys, cty, &claims().to_string())),
        "malformed"
    );
}

// 13. HMAC key length.
#[test]
fn short_hmac_secrets_are_refused_at_configuration() {
    assert!(matches!(
        KeySet::hmac_secret("k", b"too-short"),
        Err(KeyError::HmacSecretTooShort { min: 32, .. })
    ));
    let jwk = json!({"kty":"oct","alg":"HS512","k": b64([7u8; 32])});
    assert!(matches!(
        KeySet::from_jwk_json(jwk.to_string().as_bytes()),
        Err(KeyError::HmacSecretTooShort { min: 64, .. })
    ));
}

// 14. Keys belong to their issuer.
#[test]
fn a_token_of_issuer_a_signed_with_issuer_bs_key_is_refused() {
    let a = TestKeys::generate();
    let b = TestKeys::generate();
    let other = "https://other.example";
    let verifier = Verifier::builder()
        .issuer(Issuer::new(ISS, ec_keys(&a)).audience(AUD))
        .issuer(Issuer::new(other, ec_keys(&b)).audience(AUD))
        .clock(Arc::new(FixedClock(NOW)))
        .build()
        .unwrap();
    let by_b_as_a = es256(&b, ES_HEADER, &claims().to_string());
    assert_eq!(reason(&verifier, &by_b_as_a), "bad_signature");
    let mut as_b = claims();
    as_b["iss"] = other.into();
    assert_eq!(
        reason(&verifier, &es256(&b, ES_HEADER, &as_b.to_string())),
        "accepted"
    );
    let mut unknown = claims();
    unknown["iss"] = "https://evil.example".into();
    assert_eq!(
        reason(&verifier, &es256(&a, ES_HEADER, &unknown.to_string())),
        "issuer"
    );
    let mut none = claims();
    none.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        reason(&verifier, &es256(&a, ES_HEADER, &none.to_string())),
        "missing_claim"
    );
}

// 15. Header-supplied keys are never used.
#[test]
fn jwk_jku_x5u_and_x5c_headers_are_ignored() {
    let configured = TestKeys::generate();
    let attacker = TestKeys::generate();
    let verifier = ec_verifier(&configured);
    let attacker_jwk = attacker.ec256_jwk("ec1", Some("ES256"));
    for header in [
        json!({"alg":"ES256","kid":"ec1","jwk": attacker_jwk}),
        json!({"alg":"ES256","kid":"ec1","jku":"http://127.0.0.1:1/jwks"}),
        json!({"alg":"ES256","kid":"ec1","x5u":"http://127.0.0.1:1/cert"}),
        json!({"alg":"ES256","kid":"ec1","x5c":["MIIB"]}),
    ] {
        let token = es256(&attacker, &header.to_string(), &claims().to_string());
        assert_eq!(reason(&verifier, &token), "bad_signature", "{header}");
        let honest = es256(&configured, &header.to_string(), &claims().to_string());
        assert_eq!(reason(&verifier, &honest), "accepted", "{header}");
    }
}

// 16. kid is an opaque string.
#[test]
fn a_kid_with_path_characters_simply_fails_lookup() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    for kid in [
        "../../etc/passwd",
        "ec1/../ec1",
        "ec1' OR '1'='1",
        "http://x/ec1",
        "EC1",
        "ec1 ",
    ] {
        let header = json!({"alg":"ES256","kid":kid}).to_string();
        assert_eq!(
            reason(&verifier, &es256(&keys, &header, &claims().to_string())),
            "unknown_key",
            "{kid}"
        );
    }
}

// 17. No kid with several keys.
#[test]
fn a_token_without_kid_needs_a_single_key() {
    let keys = TestKeys::generate();
    let two = json!({"keys":[keys.ec256_jwk("a", None), keys.ec256_jwk("b", None)]});
    let set = KeySet::from_jwks_json(two.to_string().as_bytes()).unwrap();
    let verifier = verifier_with(Issuer::new(ISS, set).audience(AUD));
    let header = r#"{"alg":"ES256"}"#;
    assert_eq!(
        reason(&verifier, &es256(&keys, header, &claims().to_string())),
        "unknown_key"
    );
    assert_eq!(
        reason(
            &ec_verifier(&keys),
            &es256(&keys, header, &claims().to_string())
        ),
        "accepted"
    );
}

// 19. Encryption keys are not verification keys.
#[test]
fn keys_for_encryption_are_not_used() {
    let keys = TestKeys::generate();
    let mut enc = keys.ec256_jwk("ec1", None);
    enc["use"] = "enc".into();
    let mut ops = keys.ec256_jwk("ec1", None);
    ops["key_ops"] = json!(["encrypt", "wrapKey"]);
    for jwk in [enc, ops] {
        let set = KeySet::from_jwks_json(json!({"keys":[jwk]}).to_string().as_bytes()).unwrap();
        assert!(set.is_empty());
        assert_eq!(set.skipped().len(), 1);
    }
}

// 20–22. Issuer and audience: exact.
#[test]
fn issuer_and_audience_compare_exactly() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let with = |key: &str, value: serde_json::Value| {
        let mut c = claims();
        c[key] = value;
        es256(&keys, ES_HEADER, &c.to_string())
    };
    assert_eq!(
        reason(&verifier, &with("iss", "https://idp.example/".into())),
        "issuer"
    );
    assert_eq!(
        reason(&verifier, &with("iss", "http://idp.example".into())),
        "issuer"
    );
    assert_eq!(
        reason(&verifier, &with("iss", "HTTPS://IDP.EXAMPLE".into())),
        "issuer"
    );
    assert_eq!(
        reason(&verifier, &with("aud", json!(["x", AUD]))),
        "accepted"
    );
    assert_eq!(
        reason(&verifier, &with("aud", json!(["x", "y"]))),
        "audience"
    );
    assert_eq!(
        reason(&verifier, &with("aud", "API://ORDERS".into())),
        "audience"
    );
    assert_eq!(reason(&verifier, &with("aud", json!([]))), "audience");
    let mut no_aud = claims();
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        reason(&verifier, &es256(&keys, ES_HEADER, &no_aud.to_string())),
        "missing_claim"
    );
}

// 23–25, 28. Time.
#[test]
fn time_checks_respect_leeway_at_the_boundaries() {
    let keys = TestKeys::generate();
    let leeway = 30;
    let verifier = verifier_with(
        Issuer::new(ISS, ec_keys(&keys))
            .audience(AUD)
            .leeway(Duration::from_secs(leeway as u64))
            .max_lifetime(Duration::from_secs(3600)),
    );
    let with = |pairs: &[(&str, i64)]| {
        let mut c = claims();
        for (key, value) in pairs {
            c[*key] = (*value).into();
        }
        reason(&verifier, &es256(&keys, ES_HEADER, &c.to_string()))
    };
    assert_eq!(
        with(&[("exp", NOW - leeway)]),
        "expired",
        "now == exp + leeway"
    );
    assert_eq!(with(&[("exp", NOW - leeway + 1)]), "accepted");
    assert_eq!(with(&[("nbf", NOW + leeway + 1)]), "not_yet_valid");
    assert_eq!(with(&[("nbf", NOW + leeway)]), "accepted");
    assert_eq!(with(&[("iat", NOW + leeway + 1)]), "issued_in_future");
    assert_eq!(with(&[("iat", NOW + leeway)]), "accepted");
    assert_eq!(with(&[("exp", NOW + 3601)]), "lifetime_exceeded");
    assert_eq!(with(&[("exp", NOW + 3600)]), "accepted");
}

#[test]
fn default_leeway_is_sixty_seconds_and_exp_equal_now_is_expired_without_it() {
    assert_eq!(meshguard::token::DEFAULT_LEEWAY, Duration::from_secs(60));
    let keys = TestKeys::generate();
    let zero = verifier_with(
        Issuer::new(ISS, ec_keys(&keys))
            .audience(AUD)
            .leeway(Duration::ZERO),
    );
    let mut c = claims();
    c["exp"] = NOW.into();
    assert_eq!(
        reason(&zero, &es256(&keys, ES_HEADER, &c.to_string())),
        "expired"
    );
    assert_eq!(
        reason(
            &ec_verifier(&keys),
            &es256(&keys, ES_HEADER, &c.to_string())
        ),
        "accepted"
    );
}

// 26. NumericDate must be a number.
#[test]
fn time_claims_that_are_not_numbers_are_invalid() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    for (key, value) in [
        ("exp", json!("1800000300")),
        ("nbf", json!(true)),
        ("iat", json!({"t": 1})),
        ("exp", json!(null)),
        ("exp", json!([1800000300])),
    ] {
        let mut c = claims();
        c[key] = value.clone();
        assert_eq!(
            reason(&verifier, &es256(&keys, ES_HEADER, &c.to_string())),
            "invalid_claim",
            "{key}: {value}"
        );
    }
    let mut fractional = claims();
    fractional["exp"] = json!(NOW as f64 + 300.5);
    assert_eq!(
        reason(&verifier, &es256(&keys, ES_HEADER, &fractional.to_string())),
        "accepted"
    );
}

// 27. exp required by default.
#[test]
fn exp_is_required_unless_explicitly_relaxed() {
    let keys = TestKeys::generate();
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    let token = es256(&keys, ES_HEADER, &c.to_string());
    assert_eq!(
        ec_verifier(&keys).verify(&token).unwrap_err(),
        TokenError::MissingClaim("exp".into())
    );
    let relaxed = verifier_with(
        Issuer::new(ISS, ec_keys(&keys))
            .audience(AUD)
            .allow_missing_exp(),
    );
    assert_eq!(reason(&relaxed, &token), "accepted");
}

// 29–30. RFC 9068 profile.
#[test]
fn access_token_profile_checks_typ_and_required_claims() {
    let keys = TestKeys::generate();
    let verifier = verifier_with(
        Issuer::new(ISS, ec_keys(&keys))
            .audience(AUD)
            .access_token_profile(),
    );
    let full = json!({"iss":ISS,"aud":AUD,"sub":"alice","exp":NOW+300,"iat":NOW,"jti":"j1","client_id":"c1"});
    for typ in [
        "at+jwt",
        "application/at+jwt",
        "AT+JWT",
        "Application/AT+JWT",
    ] {
        let header = json!({"alg":"ES256","kid":"ec1","typ":typ}).to_string();
        assert_eq!(
            reason(&verifier, &es256(&keys, &header, &full.to_string())),
            "accepted",
            "{typ}"
        );
    }
    for header in [
        json!({"alg":"ES256","kid":"ec1","typ":"JWT"}),
        json!({"alg":"ES256","kid":"ec1"}),
        json!({"alg":"ES256","kid":"ec1","typ":"at+jwt+extra"}),
    ] {
        assert_eq!(
            reason(
                &verifier,
                &es256(&keys, &header.to_string(), &full.to_string())
            ),
            "invalid_type"
        );
    }
    let header = json!({"alg":"ES256","kid":"ec1","typ":"at+jwt"}).to_string();
    for missing in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        let mut c = full.clone();
        c.as_object_mut().unwrap().remove(missing);
        let error = verifier
            .verify(&es256(&keys, &header, &c.to_string()))
            .unwrap_err();
        assert_eq!(error.reason(), "missing_claim", "{missing}");
    }
}

#[test]
fn required_claims_must_be_present() {
    let keys = TestKeys::generate();
    let verifier = verifier_with(
        Issuer::new(ISS, ec_keys(&keys))
            .audience(AUD)
            .require_claim("tenant"),
    );
    assert_eq!(
        verifier
            .verify(&es256(&keys, ES_HEADER, &claims().to_string()))
            .unwrap_err(),
        TokenError::MissingClaim("tenant".into())
    );
    let mut c = claims();
    c["tenant"] = json!(null);
    assert_eq!(
        reason(&verifier, &es256(&keys, ES_HEADER, &c.to_string())),
        "accepted"
    );
}

// 31. Scopes.
#[test]
fn scopes_are_parsed_as_a_set_from_scope_and_scp() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let mut c = claims();
    c["scope"] = "orders:read  orders:write orders:read".into();
    c["scp"] = json!(["admin", "orders:read"]);
    let token = verifier
        .verify(&es256(&keys, ES_HEADER, &c.to_string()))
        .unwrap();
    let scopes: Vec<&str> = token.scopes().iter().map(String::as_str).collect();
    assert_eq!(scopes, ["admin", "orders:read", "orders:write"]);
    assert!(token.has_scope("admin") && !token.has_scope("orders"));
}

// 32. Size bound before decoding.
#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let huge = "A".repeat(16 * 1024 + 1);
    assert_eq!(
        verifier.verify(&huge).unwrap_err(),
        TokenError::TooLarge { limit: 16 * 1024 }
    );
    let mut c = claims();
    c["padding"] = "x".repeat(20_000).into();
    let big = es256(&keys, ES_HEADER, &c.to_string());
    assert_eq!(reason(&verifier, &big), "too_large");
    let roomy = Verifier::builder()
        .issuer(Issuer::new(ISS, ec_keys(&keys)).audience(AUD))
        .clock(Arc::new(FixedClock(NOW)))
        .max_token_bytes(64 * 1024)
        .build()
        .unwrap();
    assert_eq!(reason(&roomy, &big), "accepted");
}

// 33. Nesting depth.
#[test]
fn deeply_nested_claims_are_malformed() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let deep = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"x":{}1{}}}"#,
        NOW + 300,
        "[".repeat(64),
        "]".repeat(64)
    );
    assert_eq!(
        reason(&verifier, &es256(&keys, ES_HEADER, &deep)),
        "malformed"
    );
    let shallow = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"x":{{"y":{{"z":[1,2]}}}}}}"#,
        NOW + 300
    );
    assert_eq!(
        reason(&verifier, &es256(&keys, ES_HEADER, &shallow)),
        "accepted"
    );
}

#[test]
fn forged_tokens_report_bad_signature_even_with_bad_claims() {
    let configured = TestKeys::generate();
    let attacker = TestKeys::generate();
    let mut c = claims();
    c["exp"] = (NOW - 1000).into();
    c["aud"] = "elsewhere".into();
    let token = es256(&attacker, ES_HEADER, &c.to_string());
    assert_eq!(reason(&ec_verifier(&configured), &token), "bad_signature");
}

#[test]
fn hmac_tokens_verify_and_tampering_fails() {
    let keys = TestKeys::generate();
    let verifier = hmac_verifier(&keys);
    let token = hs256(&keys, HS_HEADER, &claims().to_string());
    assert_eq!(reason(&verifier, &token), "accepted");
    let mut tampered = token.clone().into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        reason(&verifier, std::str::from_utf8(&tampered).unwrap()),
        "bad_signature"
    );
}

#[test]
fn errors_never_display_token_or_key_material() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let secret_sub = "sub-7f3a9c";
    let mut c = claims();
    c["sub"] = secret_sub.into();
    c["exp"] = (NOW - 1000).into();
    let header = r#"{"alg":"ES256","kid":"kid-5e1b"}"#;
    for token in [
        es256(&keys, ES_HEADER, &c.to_string()),
        es256(&keys, header, &c.to_string()),
        format!("{}.{}", es256(&keys, ES_HEADER, &c.to_string()), "x"),
    ] {
        let error = verifier.verify(&token).unwrap_err();
        let shown = format!("{error} {error:?}");
        for part in token.split('.') {
            assert!(part.len() < 4 || !shown.contains(part), "{shown}");
        }
        assert!(
            !shown.contains(secret_sub) && !shown.contains("kid-5e1b"),
            "{shown}"
        );
    }
}

#[test]
fn token_signer_round_trips_every_algorithm_through_the_verifier() {
    let keys = TestKeys::generate();
    let pem_dir = |name: &str| support::read(&format!("pyjwt/keys/{name}"));
    let cases: Vec<(Algorithm, TokenSigner, KeySet)> = vec![
        (
            Algorithm::HS384,
            TokenSigner::new(Algorithm::HS384, &[9u8; 48]).unwrap(),
            KeySet::from(VerificationKey::hmac_secret(&[9u8; 48]).unwrap()),
        ),
        (
            Algorithm::PS512,
            TokenSigner::from_pem(Algorithm::PS512, &pem_dir("TEST-ONLY-rsa2048.key.pem")).unwrap(),
            KeySet::from_pem(&pem_dir("rsa2048.pub.pem")).unwrap(),
        ),
        (
            Algorithm::ES384,
            TokenSigner::new(Algorithm::ES384, &keys.ec384_pkcs8).unwrap(),
            {
                let point = keys.ec384_public();
                let jwk =
                    json!({"kty":"EC","crv":"P-384","x":b64(&point[1..49]),"y":b64(&point[49..])});
                KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap()
            },
        ),
        (
            Algorithm::EdDSA,
            TokenSigner::new(Algorithm::EdDSA, &keys.ed_pkcs8).unwrap(),
            KeySet::from_jwk_json(
                json!({"kty":"OKP","crv":"Ed25519","x":b64(keys.ed_public())})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap(),
        ),
    ];
    for (alg, signer, set) in cases {
        let verifier = verifier_with(Issuer::new(ISS, set).audience(AUD));
        let token = signer.sign(&claims()).unwrap();
        let verified = verifier
            .verify(&token)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified.header().algorithm(), Some(alg));
    }
    assert!(TokenSigner::new(Algorithm::HS256, b"short").is_err());
    assert!(TokenSigner::new(Algorithm::ES256, &keys.ec384_pkcs8).is_err());
}

#[test]
fn builder_demands_issuer_and_audience_decisions() {
    let keys = TestKeys::generate();
    assert_eq!(
        Verifier::builder().build().unwrap_err(),
        VerifierBuilderError::IssuerUnset
    );
    assert_eq!(
        Verifier::builder()
            .issuer(Issuer::new(ISS, ec_keys(&keys)))
            .build()
            .unwrap_err(),
        VerifierBuilderError::AudienceUnset
    );
    assert_eq!(
        Verifier::builder()
            .issuer(
                Issuer::new(ISS, ec_keys(&keys))
                    .audience(AUD)
                    .algorithms([])
            )
            .build()
            .unwrap_err(),
        VerifierBuilderError::NoAlgorithms
    );
    assert_eq!(
        Verifier::builder()
            .issuer(
                Issuer::new(ISS, ec_keys(&keys))
                    .audience(AUD)
                    .algorithms([Algorithm::RS256])
            )
            .build()
            .unwrap_err(),
        VerifierBuilderError::NoUsableKeys
    );
    assert!(matches!(
        Verifier::builder()
            .issuer(Issuer::new(ISS, ec_keys(&keys)).audience(AUD))
            .issuer(Issuer::new(ISS, ec_keys(&keys)).audience(AUD))
            .build(),
        Err(VerifierBuilderError::DuplicateIssuer(_))
    ));
    assert_eq!(
        Verifier::builder()
            .issuer(Issuer::any(ec_keys(&keys)).allow_any_audience())
            .issuer(Issuer::new(ISS, ec_keys(&keys)).audience(AUD))
            .build()
            .unwrap_err(),
        VerifierBuilderError::IssuerUnset
    );
}

#[test]
fn tokens_bound_by_an_unchecked_confirmation_method_are_refused() {
    let keys = TestKeys::generate();
    let verifier = ec_verifier(&keys);
    let with_cnf = |cnf: serde_json::Value| {
        let mut payload = claims();
        payload["cnf"] = cnf;
        es256(&keys, ES_HEADER, &payload.to_string())
    };
    let jwk = keys.ec256_jwk("holder", None);
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({ "jwk": jwk }),
        json!({"jku": "https://client.example/keys", "kid": "k"}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2", "jkt": "x"}),
    ] {
        let token = with_cnf(cnf.clone());
        assert_eq!(
            verifier.verify(&token).unwrap_err(),
            TokenError::UnsupportedConfirmation,
            "{cnf}"
        );
        assert_eq!(reason(&verifier, &token), "unsupported_confirmation");
    }
    // The one method meshguard checks (with the guard's certificate binding) still passes
    // verification, as does an empty `cnf` that binds to nothing.
    for cnf in [
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        json!({}),
    ] {
        assert_eq!(
            reason(&verifier, &with_cnf(cnf.clone())),
            "accepted",
            "{cnf}"
        );
    }
}

#[test]
fn an_issuer_may_allow_bound_tokens_as_bearer_tokens() {
    let keys = TestKeys::generate();
    let verifier = verifier_with(
        Issuer::new(ISS, ec_keys(&keys))
            .audience(AUD)
            .allow_unverified_confirmation(),
    );
    let mut payload = claims();
    payload["cnf"] = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"});
    let verified = verifier
        .verify(&es256(&keys, ES_HEADER, &payload.to_string()))
        .unwrap();
    assert_eq!(verified.certificate_thumbprint(), None);
    // Without the allowance, the same token is refused.
    let strict = ec_verifier(&keys);
    assert_eq!(
        reason(&strict, &es256(&keys, ES_HEADER, &payload.to_string())),
        "unsupported_confirmation"
    );
}
