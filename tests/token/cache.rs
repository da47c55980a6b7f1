//! The verified-token cache answers exactly as verification does: time claims are checked
//! again on every hit, a refresh or rotation of the issuer's keys retires what those keys
//! verified, refused tokens are never remembered, and a full cache stays correct.
#![cfg(feature = "remote-jwks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::remote_support;

use std::sync::Arc;

use meshguard::token::remote::RemoteJwks;
use meshguard::token::{Issuer, KeySet, Verifier};
use remote_support::{AUDIENCE, EXP, JwksServer, ManualClock, T0, TestKey, jwks};

const ISS: &str = "https://idp.test";

fn static_verifier(key: &TestKey, clock: &Arc<ManualClock>, cache: usize) -> Verifier {
    let keys = KeySet::from_jwks_json(jwks(&[key]).as_bytes()).unwrap();
    Verifier::builder()
        .issuer(Issuer::new(ISS, keys).audience(AUDIENCE))
        .clock(clock.clone())
        .token_cache(cache)
        .build()
        .unwrap()
}

#[test]
fn a_cached_token_still_expires() {
    let key = TestKey::es256("k1");
    let clock = ManualClock::new();
    let verifier = static_verifier(&key, &clock, 16);
    let token = key.token(ISS);
    verifier.verify(&token).unwrap();
    verifier.verify(&token).unwrap();
    // Past `exp` and the 60-second leeway.
    clock.advance(EXP - T0 + 61);
    assert_eq!(verifier.verify(&token).unwrap_err().reason(), "expired");
}

#[test]
fn a_clock_stepping_back_is_seen_on_a_cached_token() {
    let key = TestKey::es256("k1");
    let clock = ManualClock::new();
    let verifier = static_verifier(&key, &clock, 16);
    // A token that becomes valid at T0 exactly.
    let signer_token = key.token_with_claims(&serde_json::json!({
        "iss": ISS, "aud": AUDIENCE, "sub": "alice", "exp": EXP, "nbf": T0,
    }));
    verifier.verify(&signer_token).unwrap();
    clock.advance(-3_600);
    assert_eq!(
        verifier.verify(&signer_token).unwrap_err().reason(),
        "not_yet_valid"
    );
}

#[tokio::test]
async fn a_rotation_retires_tokens_verified_with_the_withdrawn_key() {
    let old = TestKey::es256("old");
    let server = JwksServer::start(jwks(&[&old])).await;
    let clock = ManualClock::new();
    let verifier = Verifier::builder()
        .issuer(Issuer::remote(ISS, RemoteJwks::url(server.jwks_url())).audience(AUDIENCE))
        .clock(clock.clone())
        .build_async()
        .await
        .unwrap();
    let token = old.token(ISS);
    verifier.verify(&token).unwrap();
    verifier.verify(&token).unwrap();

    let new = TestKey::es256("new");
    server.set_jwks(jwks(&[&new]));
    // The new key's token makes the source refresh; the old key is gone with it.
    verifier.verify_async(&new.token(ISS)).await.unwrap();
    assert_eq!(
        verifier.verify_async(&token).await.unwrap_err().reason(),
        "unknown_key"
    );
}

#[test]
fn refused_tokens_are_never_remembered_and_a_full_cache_stays_correct() {
    let key = TestKey::es256("k1");
    let stranger = TestKey::es256("k1");
    let clock = ManualClock::new();
    let verifier = static_verifier(&key, &clock, 1);
    let good = key.token(ISS);
    let forged = stranger.token(ISS);
    let other_audience = key.token("https://elsewhere.test");
    for _ in 0..3 {
        verifier.verify(&good).unwrap();
        assert_eq!(
            verifier.verify(&forged).unwrap_err().reason(),
            "bad_signature"
        );
        assert_eq!(
            verifier.verify(&other_audience).unwrap_err().reason(),
            "issuer"
        );
    }
    // Tokens evicting each other from a one-entry cache still verify.
    let second = key.token_with_header(
        &serde_json::json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}),
        ISS,
    );
    for _ in 0..3 {
        verifier.verify(&good).unwrap();
        verifier.verify(&second).unwrap();
    }
}

#[test]
fn without_a_cache_every_answer_is_the_same() {
    let key = TestKey::es256("k1");
    let clock = ManualClock::new();
    let verifier = static_verifier(&key, &clock, 0);
    let token = key.token(ISS);
    verifier.verify(&token).unwrap();
    clock.advance(EXP - T0 + 61);
    assert_eq!(verifier.verify(&token).unwrap_err().reason(), "expired");
}
