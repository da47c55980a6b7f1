//! Token verification against raw ring on the same signing input: `raw_ring_es256`,
//! `verify_es256`, `verify_cached_es256`, `raw_hmac_hs256`, `verify_hs256`,
//! `verify_cached_hs256`.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use meshguard::token::{Algorithm, DEFAULT_TOKEN_CACHE, Issuer, KeySet, TokenSigner, Verifier};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};

const ISS: &str = "https://idp.bench.example";
const AUD: &str = "api://orders";
/// TEST-ONLY secret for the HS256 case.
const HMAC_SECRET: &[u8] = b"bench-secret-0123456789abcdef0123456789";

/// The claims of a typical access token (RFC 9068 profile).
fn claims() -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
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
        .unwrap()
}

/// Raw ring checking a signing input and signature.
type Floor = Box<dyn Fn(&[u8], &[u8]) -> bool>;

/// One algorithm: its token, its keys and the raw ring check.
struct Case {
    token: String,
    keys: KeySet,
    floor: Floor,
}

fn es256() -> Case {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let point = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .unwrap()
    .public_key()
    .as_ref()
    .to_vec();
    let (x, y) = point[1..].split_at(32);
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
    Case {
        token: TokenSigner::new(Algorithm::ES256, pkcs8.as_ref())
            .unwrap()
            .with_kid("k1")
            .sign(&claims())
            .unwrap(),
        keys: KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap(),
        floor: Box::new(move |input, sig| {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
                .verify(input, sig)
                .is_ok()
        }),
    }
}

fn hs256() -> Case {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HMAC_SECRET);
    Case {
        token: TokenSigner::new(Algorithm::HS256, HMAC_SECRET)
            .unwrap()
            .with_kid("k1")
            .sign(&claims())
            .unwrap(),
        keys: KeySet::hmac_secret("k1", HMAC_SECRET).unwrap(),
        floor: Box::new(move |input, sig| ring::hmac::verify(&key, input, sig).is_ok()),
    }
}

pub(crate) fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_path");
    for (suffix, floor_id, case) in [
        ("es256", "raw_ring_es256", es256()),
        ("hs256", "raw_hmac_hs256", hs256()),
    ] {
        let uncached = verifier(case.keys.clone(), 0);
        let cached = verifier(case.keys, DEFAULT_TOKEN_CACHE);
        let (input, signature) = case.token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert!((case.floor)(input.as_bytes(), &signature));
        assert!(uncached.verify(&case.token).is_ok());
        assert!(cached.verify(&case.token).is_ok());

        group.bench_function(floor_id, |b| {
            b.iter(|| (case.floor)(black_box(input.as_bytes()), black_box(&signature)))
        });
        group.bench_function(format!("verify_{suffix}"), |b| {
            b.iter(|| uncached.verify(black_box(&case.token)).is_ok())
        });
        group.bench_function(format!("verify_cached_{suffix}"), |b| {
            b.iter(|| cached.verify(black_box(&case.token)).is_ok())
        });
    }
    group.finish();
}
