//! `DpopVerifier::verify` as a plain function: every RFC 9449 §4.3 check, with proofs and
//! tokens signed at test time by ES256, Ed25519 and RSA keys.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use meshguard::token::dpop::{DpopBuilderError, DpopError, DpopVerifier, jwk_thumbprint};
use meshguard::token::{Algorithm, FixedClock};

use crate::dpop_support::{ClientKey, Idp, ath, claims};

const NOW: i64 = 1_900_000_000;
const URI: &str = "https://api.example/orders/42";

struct Setup {
    idp: Idp,
    key: ClientKey,
    token: String,
    dpop: DpopVerifier,
}

fn setup(key: ClientKey) -> Setup {
    let idp = Idp::new();
    let token = idp.token("alice", NOW + 300, Some(&key.jkt));
    let dpop = idp
        .dpop(Arc::new(FixedClock(NOW)))
        .public_origin("https://api.example")
        .build()
        .unwrap();
    Setup {
        idp,
        key,
        token,
        dpop,
    }
}

fn reason(result: Result<impl std::fmt::Debug, DpopError>) -> &'static str {
    result.unwrap_err().reason()
}

#[test]
fn proofs_of_each_key_kind_verify_and_name_their_key() {
    // `Ed25519` is the fully-specified name (RFC 9864) for the same signature as `EdDSA`.
    let ed25519_by_its_full_name = ClientKey {
        alg: "Ed25519",
        ..ClientKey::ed25519()
    };
    for key in [
        ClientKey::es256(),
        ClientKey::ed25519(),
        ed25519_by_its_full_name,
        ClientKey::ps256(),
    ] {
        let s = setup(key);
        let proof = s.key.proof("GET", URI, &s.token, NOW);
        let verified = s.dpop.verify(&s.token, &proof, "GET", URI).unwrap();
        assert_eq!(verified.token().subject(), Some("alice"));
        assert_eq!(verified.thumbprint(), s.key.jkt, "{}", s.key.alg);
        assert_eq!(verified.token().dpop_thumbprint(), Some(s.key.jkt.as_str()));
        assert_eq!(
            jwk_thumbprint(s.key.jwk.to_string().as_bytes()).unwrap(),
            s.key.jkt
        );
    }
}

#[test]
fn a_proof_is_accepted_once() {
    let s = setup(ClientKey::es256());
    let proof = s.key.proof("GET", URI, &s.token, NOW);
    assert!(s.dpop.verify(&s.token, &proof, "GET", URI).is_ok());
    assert_eq!(
        reason(s.dpop.verify(&s.token, &proof, "GET", URI)),
        "dpop_replayed"
    );
    // A fresh proof for the same request is fine.
    let again = s.key.proof("GET", URI, &s.token, NOW);
    assert!(s.dpop.verify(&s.token, &again, "GET", URI).is_ok());
}

#[test]
fn method_and_uri_must_be_the_requests() {
    let s = setup(ClientKey::es256());
    let check = |method: &str, htu: &str, uri: &str| {
        let proof = s.key.proof(method, htu, &s.token, NOW);
        s.dpop.verify(&s.token, &proof, "GET", uri).map(|_| ())
    };
    assert_eq!(reason(check("POST", URI, URI)), "dpop_method_mismatch");
    assert_eq!(reason(check("get", URI, URI)), "dpop_method_mismatch");
    for other in [
        "https://api.example/orders/43",
        "https://api.example:8443/orders/42",
        "http://api.example/orders/42",
        "https://evil.example/orders/42",
        "https://api.example/orders/42/",
        "not a uri",
    ] {
        assert_eq!(
            reason(check("GET", other, URI)),
            "dpop_uri_mismatch",
            "{other}"
        );
    }
    // RFC 9449 §4.3: normalized, query and fragment ignored.
    for same in [
        "HTTPS://API.example:443/orders/42",
        "https://api.example/orders/./42?x=1#f",
        "https://api.example/%6Frders/42",
    ] {
        assert_eq!(
            check("GET", same, "https://api.example/orders/42?y=2"),
            Ok(()),
            "{same}"
        );
    }
}

#[test]
fn stale_and_future_proofs_are_refused_within_leeway_bounds() {
    let s = setup(ClientKey::es256());
    let at = |iat: i64| {
        let proof = s.key.proof("GET", URI, &s.token, iat);
        s.dpop.verify(&s.token, &proof, "GET", URI).map(|_| ())
    };
    // Defaults: 60 s of age and 5 s of leeway.
    assert_eq!(at(NOW - 65), Ok(()));
    assert_eq!(reason(at(NOW - 66)), "dpop_stale");
    assert_eq!(at(NOW + 5), Ok(()));
    assert_eq!(reason(at(NOW + 6)), "dpop_issued_in_future");
}

#[test]
fn the_proof_must_hash_this_access_token() {
    let s = setup(ClientKey::es256());
    let mut wrong = claims("GET", URI, &s.token, NOW);
    wrong["ath"] = json!(ath("another.token.value"));
    let proof = s.key.proof_with(&s.key.header(), &wrong);
    assert_eq!(
        reason(s.dpop.verify(&s.token, &proof, "GET", URI)),
        "dpop_access_token_hash"
    );
    let mut missing = claims("GET", URI, &s.token, NOW);
    missing.as_object_mut().unwrap().remove("ath");
    let proof = s.key.proof_with(&s.key.header(), &missing);
    assert_eq!(
        reason(s.dpop.verify(&s.token, &proof, "GET", URI)),
        "dpop_missing_claim"
    );
}

#[test]
fn the_token_must_be_bound_to_the_proof_key() {
    let s = setup(ClientKey::es256());
    let other = ClientKey::ed25519();
    let proof = other.proof("GET", URI, &s.token, NOW);
    assert_eq!(
        reason(s.dpop.verify(&s.token, &proof, "GET", URI)),
        "dpop_key_mismatch"
    );
    let unbound = s.idp.token("alice", NOW + 300, None);
    let proof = s.key.proof("GET", URI, &unbound, NOW);
    let refused = s.dpop.verify(&unbound, &proof, "GET", URI).unwrap_err();
    assert_eq!(refused, DpopError::Unbound);
    assert_eq!(
        refused.refusal().error().map(|e| e.as_str()),
        Some("invalid_token")
    );
}

#[test]
fn an_invalid_token_is_refused_as_the_token() {
    let s = setup(ClientKey::es256());
    let expired = s.idp.token("alice", NOW - 3600, Some(&s.key.jkt));
    let proof = s.key.proof("GET", URI, &expired, NOW);
    assert_eq!(
        reason(s.dpop.verify(&expired, &proof, "GET", URI)),
        "expired"
    );
    // One signature character changed, keeping the encoding canonical.
    let at = s.token.len() - 10;
    let swapped = if &s.token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &s.token[..at], &s.token[at + 1..]);
    let proof = s.key.proof("GET", URI, &forged, NOW);
    assert_eq!(
        reason(s.dpop.verify(&forged, &proof, "GET", URI)),
        "bad_signature"
    );
}

#[test]
fn a_dpop_bound_token_is_refused_as_bearer_even_from_the_cache() {
    let s = setup(ClientKey::es256());
    let verifier = s.dpop.verifier();
    assert_eq!(
        verifier.verify(&s.token).unwrap_err().reason(),
        "unsupported_confirmation"
    );
    let proof = s.key.proof("GET", URI, &s.token, NOW);
    s.dpop.verify(&s.token, &proof, "GET", URI).unwrap();
    // The DPoP verification put the token into the cache; as bearer it is still refused.
    assert_eq!(
        verifier.verify(&s.token).unwrap_err().reason(),
        "unsupported_confirmation"
    );
}

#[test]
fn keys_with_private_members_are_refused() {
    let s = setup(ClientKey::es256());
    for member in ["d", "p", "q", "k"] {
        let mut header = s.key.header();
        header["jwk"][member] = json!("AAAA");
        let proof = s
            .key
            .proof_with(&header, &claims("GET", URI, &s.token, NOW));
        let refused = s.dpop.verify(&s.token, &proof, "GET", URI);
        assert_eq!(reason(refused), "dpop_private_key", "{member}");
    }
}

#[test]
fn symmetric_and_none_algorithms_are_refused() {
    let s = setup(ClientKey::es256());
    let claims = claims("GET", URI, &s.token, NOW).to_string();
    let input = |header: &serde_json::Value| {
        format!(
            "{}.{}",
            crate::support::b64(header.to_string()),
            crate::support::b64(&claims)
        )
    };
    let secret = b"a-shared-secret-of-at-least-32-bytes!!";
    let hs256_header = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": crate::support::b64(secret)}});
    let hs256 = format!(
        "{}.{}",
        input(&hs256_header),
        crate::support::b64(crate::support::hs256(secret, &input(&hs256_header)))
    );
    assert_eq!(
        reason(s.dpop.verify(&s.token, &hs256, "GET", URI)),
        "dpop_disallowed_algorithm"
    );
    let mut hs256_public = s.key.header();
    hs256_public["alg"] = json!("HS256");
    let proof = s.key.raw_proof(&hs256_public.to_string(), &claims);
    assert_eq!(
        reason(s.dpop.verify(&s.token, &proof, "GET", URI)),
        "dpop_disallowed_algorithm"
    );
    for none in ["none", "None", "NONE"] {
        let mut header = s.key.header();
        header["alg"] = json!(none);
        let proof = format!("{}.", input(&header));
        assert_eq!(
            reason(s.dpop.verify(&s.token, &proof, "GET", URI)),
            "dpop_malformed"
        );
        let proof = format!("{}.AA", input(&header));
        assert_eq!(
            reason(s.dpop.verify(&s.token, &proof, "GET", URI)),
            "dpop_disallowed_algorithm",
            "{none}"
        );
    }
    // An algorithm outside the allow-list, or unfit for the key.
    let only_eddsa = s
        .idp
        .dpop(Arc::new(FixedClock(NOW)))
        .algorithms([Algorithm::EdDSA])
        .build()
        .unwrap();
    let proof = s.key.proof("GET", URI, &s.token, NOW);
    assert_eq!(
        reason(only_eddsa.verify(&s.token, &proof, "GET", URI)),
        "dpop_disallowed_algorithm"
    );
    let mut es384 = s.key.header();
    es384["alg"] = json!("ES384");
    let proof = s.key.raw_proof(&es384.to_string(), &claims);
    assert_eq!(
        reason(s.dpop.verify(&s.token, &proof, "GET", URI)),
        "dpop_disallowed_algorithm"
    );
    assert_eq!(
        s.idp
            .dpop(Arc::new(FixedClock(NOW)))
            .algorithms([Algorithm::HS256])
            .build()
            .err(),
        Some(DpopBuilderError::SymmetricAlgorithm("HS256"))
    );
}

#[test]
fn a_proof_signed_by_another_key_is_refused() {
    let s = setup(ClientKey::es256());
    let impostor = ClientKey::es256();
    // The header names the bound key, the signature is the impostor's.
    let header = s.key.header().to_string();
    let body = claims("GET", URI, &s.token, NOW).to_string();
    let input = format!(
        "{}.{}",
        crate::support::b64(&header),
        crate::support::b64(&body)
    );
    let proof = format!(
        "{input}.{}",
        crate::support::b64(impostor.sign(input.as_bytes()))
    );
    assert_eq!(
        reason(s.dpop.verify(&s.token, &proof, "GET", URI)),
        "dpop_bad_signature"
    );
}

#[test]
fn nonces_are_required_when_configured() {
    let idp = Idp::new();
    let key = ClientKey::es256();
    let token = idp.token("alice", NOW + 300, Some(&key.jkt));
    let dpop = idp
        .dpop(Arc::new(FixedClock(NOW)))
        .nonce_secret(&[9; 32])
        .require_nonce(Duration::from_secs(60))
        .build()
        .unwrap();
    let proof = key.proof("GET", URI, &token, NOW);
    let DpopError::UseNonce(nonce) = dpop.verify(&token, &proof, "GET", URI).unwrap_err() else {
        panic!("expected use_dpop_nonce");
    };
    assert_eq!(Some(nonce.to_string()), dpop.nonce());
    let refusal = DpopError::UseNonce(nonce.clone()).refusal();
    assert_eq!(refusal.error().map(|e| e.as_str()), Some("use_dpop_nonce"));
    assert_eq!(refusal.dpop_nonce(), Some(&*nonce));
    let mut with_nonce = claims("GET", URI, &token, NOW);
    with_nonce["nonce"] = json!(nonce.to_string());
    let proof = key.proof_with(&key.header(), &with_nonce);
    assert!(dpop.verify(&token, &proof, "GET", URI).is_ok());
    let mut forged = claims("GET", URI, &token, NOW);
    forged["nonce"] = json!(format!("{}x", &nonce[1..]));
    let proof = key.proof_with(&key.header(), &forged);
    assert_eq!(
        reason(dpop.verify(&token, &proof, "GET", URI)),
        "dpop_use_nonce"
    );
}

#[test]
fn a_full_replay_cache_refuses_new_proofs_rather_than_forget() {
    let idp = Idp::new();
    let key = ClientKey::es256();
    let token = idp.token("alice", NOW + 300, Some(&key.jkt));
    let dpop = idp
        .dpop(Arc::new(FixedClock(NOW)))
        .replay_capacity(2)
        .build()
        .unwrap();
    let first = key.proof("GET", URI, &token, NOW);
    assert!(dpop.verify(&token, &first, "GET", URI).is_ok());
    assert!(
        dpop.verify(&token, &key.proof("GET", URI, &token, NOW), "GET", URI)
            .is_ok()
    );
    let third = key.proof("GET", URI, &token, NOW);
    assert_eq!(
        reason(dpop.verify(&token, &third, "GET", URI)),
        "dpop_replay_cache_full"
    );
    assert_eq!(
        reason(dpop.verify(&token, &first, "GET", URI)),
        "dpop_replayed"
    );
}

#[test]
fn the_refusal_challenge_names_the_allowed_algorithms() {
    let idp = Idp::new();
    let dpop = idp
        .dpop(Arc::new(FixedClock(NOW)))
        .algorithms([Algorithm::ES256, Algorithm::EdDSA])
        .build()
        .unwrap();
    let refusal = dpop.refusal(&DpopError::Replayed);
    assert_eq!(refusal.status(), 401);
    assert_eq!(refusal.grpc_code(), 16);
    assert_eq!(
        refusal.challenge("api"),
        r#"DPoP realm="api", algs="ES256 EdDSA", error="invalid_dpop_proof", error_description="the DPoP proof is invalid""#
    );
}

#[test]
fn origins_and_settings_are_checked_when_built() {
    let idp = Idp::new();
    let clock = || Arc::new(FixedClock(NOW));
    for origin in [
        "ftp://api.example",
        "https://api.example/?q=1",
        "https://api.example/#f",
        "https://user@api.example",
        "api.example",
    ] {
        let built = idp.dpop(clock()).public_origin(origin).build();
        assert_eq!(
            built.err(),
            Some(DpopBuilderError::Origin(origin.to_owned())),
            "{origin}"
        );
    }
    assert!(matches!(
        idp.dpop(clock()).origin_from_host("ftp").build(),
        Err(DpopBuilderError::Origin(_))
    ));
    assert_eq!(
        idp.dpop(clock()).algorithms([]).build().err(),
        Some(DpopBuilderError::NoAlgorithms)
    );
    assert_eq!(
        idp.dpop(clock()).replay_capacity(0).build().err(),
        Some(DpopBuilderError::Zero("the replay capacity"))
    );
    assert_eq!(
        idp.dpop(clock()).nonce_secret(&[1; 16]).build().err(),
        Some(DpopBuilderError::NonceSecretTooShort)
    );
}
