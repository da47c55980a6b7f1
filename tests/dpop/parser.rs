//! The negative suite of the proof parser: shapes, encodings, sizes, duplicate members,
//! nesting, types and missing members, each refused with its reason and without a panic.

use std::sync::Arc;

use serde_json::json;

use meshguard::token::FixedClock;
use meshguard::token::dpop::{DEFAULT_MAX_PROOF_BYTES, DpopVerifier};

use crate::dpop_support::{ClientKey, Idp, claims};
use crate::support::b64;

const NOW: i64 = 1_900_000_000;
const URI: &str = "https://api.example/orders";

fn setup() -> (ClientKey, String, DpopVerifier) {
    let idp = Idp::new();
    let key = ClientKey::es256();
    let token = idp.token("alice", NOW + 300, Some(&key.jkt));
    let dpop = idp.dpop(Arc::new(FixedClock(NOW))).build().unwrap();
    (key, token, dpop)
}

fn reason(dpop: &DpopVerifier, token: &str, proof: &str) -> &'static str {
    dpop.verify(token, proof, "GET", URI).unwrap_err().reason()
}

#[test]
fn malformed_shapes_and_encodings_are_refused() {
    let (key, token, dpop) = setup();
    let good = key.proof("GET", URI, &token, NOW);
    let parts: Vec<&str> = good.split('.').collect();
    for bad in [
        String::new(),
        "abc".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.x"),
        format!(".{}.{}", parts[1], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        format!("{}+.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}*", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64("[]"), parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            b64(r#"{"typ":"dpop+jwt"} {}"#),
            parts[1],
            parts[2]
        ),
    ] {
        assert_eq!(reason(&dpop, &token, &bad), "dpop_malformed", "{bad}");
    }
    // A claims set that is not an object, signed properly.
    let header = key.header().to_string();
    for claims in ["[]", "\"x\"", "{", r#"{"a":1,}"#] {
        let proof = key.raw_proof(&header, claims);
        assert_eq!(reason(&dpop, &token, &proof), "dpop_malformed", "{claims}");
    }
}

#[test]
fn oversized_proofs_are_refused_before_decoding() {
    let (key, token, dpop) = setup();
    let mut claims = claims("GET", URI, &token, NOW);
    claims["pad"] = json!("a".repeat(DEFAULT_MAX_PROOF_BYTES));
    let proof = key.proof_with(&key.header(), &claims);
    assert!(proof.len() > DEFAULT_MAX_PROOF_BYTES);
    assert_eq!(reason(&dpop, &token, &proof), "dpop_too_large");
    let garbage = "A".repeat(DEFAULT_MAX_PROOF_BYTES + 1);
    assert_eq!(reason(&dpop, &token, &garbage), "dpop_too_large");
}

#[test]
fn duplicate_members_are_refused_at_every_level() {
    let (key, token, dpop) = setup();
    let jwk = key.jwk.to_string();
    let body = claims("GET", URI, &token, NOW).to_string();
    let headers = [
        format!(r#"{{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#),
        format!(r#"{{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":{jwk}}}"#),
        format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk},"jwk":{jwk}}}"#),
        format!(
            r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{}}}"#,
            jwk.replacen('{', r#"{"kty":"EC","#, 1)
        ),
        format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk},"x":{{"a":1,"a":2}}}}"#),
        format!(r#"{{"typ":"dpop+jwt","\u0061lg":"ES256","alg":"ES256","jwk":{jwk}}}"#),
    ];
    for header in headers {
        let proof = key.raw_proof(&header, &body);
        assert_eq!(reason(&dpop, &token, &proof), "dpop_malformed", "{header}");
    }
    let header = key.header().to_string();
    let jti_twice = body.replacen('{', r#"{"jti":"first","#, 1);
    let proof = key.raw_proof(&header, &jti_twice);
    assert_eq!(reason(&dpop, &token, &proof), "dpop_malformed");
}

#[test]
fn deep_nesting_is_refused() {
    let (key, token, dpop) = setup();
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let header = key
        .header()
        .to_string()
        .replacen('{', &format!(r#"{{"x":{deep},"#), 1);
    let body = claims("GET", URI, &token, NOW).to_string();
    let proof = key.raw_proof(&header, &body);
    assert_eq!(reason(&dpop, &token, &proof), "dpop_malformed");
    let body = body.replacen('{', &format!(r#"{{"x":{deep},"#), 1);
    let proof = key.raw_proof(&key.header().to_string(), &body);
    assert_eq!(reason(&dpop, &token, &proof), "dpop_malformed");
    // Shallow nesting in an extra member is fine.
    let body =
        claims("GET", URI, &token, NOW)
            .to_string()
            .replacen('{', r#"{"x":[[{"y":[1]}]],"#, 1);
    let proof = key.raw_proof(&key.header().to_string(), &body);
    assert!(dpop.verify(&token, &proof, "GET", URI).is_ok());
}

#[test]
fn members_of_the_wrong_type_or_missing_are_refused() {
    let (key, token, dpop) = setup();
    for (member, value) in [
        ("iat", json!("1900000000")),
        ("jti", json!(7)),
        ("htm", json!(["GET"])),
        ("htu", json!({"u": URI})),
        ("ath", json!(true)),
        ("nonce", json!(1)),
    ] {
        let mut body = claims("GET", URI, &token, NOW);
        body[member] = value;
        let proof = key.proof_with(&key.header(), &body);
        assert_eq!(reason(&dpop, &token, &proof), "dpop_malformed", "{member}");
    }
    for member in ["jti", "htm", "htu", "iat", "ath"] {
        let mut body = claims("GET", URI, &token, NOW);
        body.as_object_mut().unwrap().remove(member);
        let proof = key.proof_with(&key.header(), &body);
        assert_eq!(
            reason(&dpop, &token, &proof),
            "dpop_missing_claim",
            "{member}"
        );
    }
    let body = claims("GET", URI, &token, NOW);
    for (member, value, expected) in [
        ("typ", json!("JWT"), "dpop_invalid_type"),
        ("typ", json!(null), "dpop_invalid_type"),
        ("typ", json!(5), "dpop_malformed"),
        ("alg", json!("RS1"), "dpop_disallowed_algorithm"),
        ("jwk", json!("key"), "dpop_malformed"),
        ("jwk", json!(null), "dpop_invalid_key"),
        ("crit", json!(["exp"]), "dpop_unsupported_crit"),
    ] {
        let mut header = key.header();
        header[member] = value;
        let proof = key.proof_with(&header, &body);
        assert_eq!(reason(&dpop, &token, &proof), expected, "{member}");
    }
    // `application/dpop+jwt` and any case are the same type (RFC 7515 §4.1.9).
    for typ in ["application/dpop+jwt", "DPoP+JWT"] {
        let mut header = key.header();
        header["typ"] = json!(typ);
        let proof = key.proof_with(&header, &claims("GET", URI, &token, NOW));
        assert!(dpop.verify(&token, &proof, "GET", URI).is_ok(), "{typ}");
    }
}
