//! `Verifier::verify` against its floor, raw ring verifying the same signing input, and
//! against jsonwebtoken 12's own `decode` on the same token (with meshguard's ring provider).
//!
//! Run with `cargo bench --bench token`; the README records the ratios.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark with a broken set-up should stop loudly"
)]

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use meshguard::token::{Algorithm, DEFAULT_TOKEN_CACHE, Issuer, KeySet, TokenSigner, Verifier};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

const ISS: &str = "https://idp.bench.example";
const AUD: &str = "api://orders";
const HMAC_SECRET: &[u8] = b"bench-secret-0123456789abcdef0123456789";

/// Raw ring checking a signing input and signature.
type Floor = Box<dyn Fn(&[u8], &[u8]) -> bool>;

struct Case {
    name: &'static str,
    alg: Algorithm,
    token: String,
    /// Verifies every time: the token cache is off.
    verifier: Verifier,
    /// The same verifier with its token cache, as services run it.
    cached: Verifier,
    /// The raw ring check of the same signing input and signature.
    floor: Floor,
    decoding_key: jsonwebtoken::DecodingKey,
}

fn claims() -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    serde_json::json!({
        "iss": ISS, "sub": "user-2f6c1e", "aud": AUD, "exp": now + 3600, "iat": now,
        "jti": "6f1d2c7a-9b1e-4a53-8f0e-3c2d1b0a9f8e", "client_id": "orders-frontend",
        "scope": "orders:read orders:write",
    })
}

fn verifier(keys: KeySet, cache: usize) -> Verifier {
    Verifier::builder()
        .issuer(Issuer::new(ISS, keys).audience(AUD))
        .token_cache(cache)
        .build()
        .unwrap_or_else(|e| panic!("bench configuration: {e}"))
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_default()
}

fn cases() -> Vec<Case> {
    let rng = SystemRandom::new();
    let mut cases = Vec::new();

    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HMAC_SECRET);
    cases.push(Case {
        name: "HS256",
        alg: Algorithm::HS256,
        token: sign(Algorithm::HS256, HMAC_SECRET),
        verifier: verifier(
            KeySet::hmac_secret("k1", HMAC_SECRET).unwrap_or_default(),
            0,
        ),
        cached: verifier(
            KeySet::hmac_secret("k1", HMAC_SECRET).unwrap_or_default(),
            DEFAULT_TOKEN_CACHE,
        ),
        floor: Box::new(move |input, sig| ring::hmac::verify(&hmac, input, sig).is_ok()),
        decoding_key: jsonwebtoken::DecodingKey::from_secret(HMAC_SECRET)
            .unwrap_or_else(|e| panic!("{e}")),
    });

    let rsa_private = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pyjwt/keys/TEST-ONLY-rsa2048.key.pem"
    ))
    .unwrap_or_default();
    let rsa_public = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pyjwt/keys/rsa2048.pkcs1.pem"
    ))
    .unwrap_or_default();
    let pkcs1 = pem_der(&rsa_public);
    let floor_key = pkcs1.clone();
    cases.push(Case {
        name: "RS256",
        alg: Algorithm::RS256,
        token: sign_pem(Algorithm::RS256, &rsa_private),
        verifier: verifier(
            KeySet::from_pem(rsa_public.as_bytes()).unwrap_or_default(),
            0,
        ),
        cached: verifier(
            KeySet::from_pem(rsa_public.as_bytes()).unwrap_or_default(),
            DEFAULT_TOKEN_CACHE,
        ),
        floor: Box::new(move |input, sig| {
            signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &floor_key)
                .verify(input, sig)
                .is_ok()
        }),
        decoding_key: jsonwebtoken::DecodingKey::from_rsa_der(&pkcs1),
    });

    let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .unwrap_or_else(|e| panic!("{e}"));
    let ec_point = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ec_pkcs8.as_ref(),
        &rng,
    )
    .map(|pair| pair.public_key().as_ref().to_vec())
    .unwrap_or_default();
    let (x, y) = ec_point.get(1..).unwrap_or_default().split_at(32);
    let jwk = serde_json::json!({"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
    let floor_point = ec_point.clone();
    cases.push(Case {
        name: "ES256",
        alg: Algorithm::ES256,
        token: sign(Algorithm::ES256, ec_pkcs8.as_ref()),
        verifier: verifier(
            KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap_or_default(),
            0,
        ),
        cached: verifier(
            KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap_or_default(),
            DEFAULT_TOKEN_CACHE,
        ),
        floor: Box::new(move |input, sig| {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &floor_point)
                .verify(input, sig)
                .is_ok()
        }),
        decoding_key: jsonwebtoken::DecodingKey::from_ec_der(&ec_point),
    });

    let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap_or_else(|e| panic!("{e}"));
    let ed_public = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref())
        .map(|pair| pair.public_key().as_ref().to_vec())
        .unwrap_or_default();
    let jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","kid":"k1",
        "x": URL_SAFE_NO_PAD.encode(&ed_public)});
    let floor_public = ed_public.clone();
    cases.push(Case {
        name: "EdDSA",
        alg: Algorithm::EdDSA,
        token: sign(Algorithm::EdDSA, ed_pkcs8.as_ref()),
        verifier: verifier(
            KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap_or_default(),
            0,
        ),
        cached: verifier(
            KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap_or_default(),
            DEFAULT_TOKEN_CACHE,
        ),
        floor: Box::new(move |input, sig| {
            signature::UnparsedPublicKey::new(&signature::ED25519, &floor_public)
                .verify(input, sig)
                .is_ok()
        }),
        decoding_key: jsonwebtoken::DecodingKey::from_ed_der(&ed_public),
    });
    cases
}

fn sign(alg: Algorithm, key: &[u8]) -> String {
    TokenSigner::new(alg, key)
        .and_then(|s| s.with_kid("k1").sign(&claims()))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn sign_pem(alg: Algorithm, pem: &str) -> String {
    TokenSigner::from_pem(alg, pem.as_bytes())
        .and_then(|s| s.with_kid("k1").sign(&claims()))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn bench_verify(c: &mut Criterion) {
    let _ = meshguard::token::crypto::install_default();
    for case in cases() {
        let (input, signature_b64) = case.token.rsplit_once('.').unwrap_or_default();
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap_or_default();
        assert!(
            (case.floor)(input.as_bytes(), &signature),
            "{}: floor must verify",
            case.name
        );
        assert!(
            case.verifier.verify(&case.token).is_ok(),
            "{}: verifier must accept",
            case.name
        );
        let mut validation =
            jsonwebtoken::Validation::new(case.alg.as_str().parse().unwrap_or_default());
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(&case.token, &case.decoding_key, &validation)
                .is_ok(),
            "{}: jsonwebtoken must accept",
            case.name
        );

        let mut group = c.benchmark_group(format!("verify/{}", case.name));
        group.bench_function("raw ring", |b| {
            b.iter(|| (case.floor)(black_box(input.as_bytes()), black_box(&signature)))
        });
        group.bench_function("meshguard Verifier", |b| {
            b.iter(|| case.verifier.verify(black_box(&case.token)).is_ok())
        });
        group.bench_function("meshguard Verifier, cached", |b| {
            b.iter(|| case.cached.verify(black_box(&case.token)).is_ok())
        });
        group.bench_function("jsonwebtoken decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(
                    black_box(&case.token),
                    &case.decoding_key,
                    &validation,
                )
                .is_ok()
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_verify
}
criterion_main!(benches);
