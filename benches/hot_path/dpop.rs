//! A DPoP-bound ES256 token with a fresh ES256 proof per request, `verify_dpop_es256`, beside
//! the same token's bearer verification from the cache (`verify_cached_es256` in
//! [`super::token`]): the difference is the proof's cost (parsing, one ES256 verification,
//! the thumbprint, `ath` and the replay cache).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion};
use meshguard::token::dpop::{DpopVerifier, jwk_thumbprint};
use meshguard::token::{
    Algorithm, Clock, DEFAULT_TOKEN_CACHE, Issuer, KeySet, TokenSigner, Verifier,
};
use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};

const ISS: &str = "https://idp.bench.example";
const AUD: &str = "api://orders";
const URI: &str = "https://api.example/orders/42";

/// Proofs made before their clock moves on; then the replay cache's entries expire, so a long
/// run neither fills it nor measures an unrealistically empty one.
const PROOFS_PER_MINUTE: i64 = 20_000;

/// A clock the set-up moves forward as it makes proofs.
#[derive(Debug)]
struct BenchClock(AtomicI64);

impl Clock for BenchClock {
    fn unix_seconds(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn es256_pair() -> (EcdsaKeyPair, serde_json::Value) {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
    (pair, jwk)
}

pub(crate) fn bench(c: &mut Criterion) {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let clock = Arc::new(BenchClock(AtomicI64::new(start)));
    let rng = SystemRandom::new();
    let idp_pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let idp_public = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        idp_pkcs8.as_ref(),
        &rng,
    )
    .unwrap()
    .public_key()
    .as_ref()
    .to_vec();
    let idp_jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&idp_public[1..33]), "y": URL_SAFE_NO_PAD.encode(&idp_public[33..])});
    let (client, client_jwk) = es256_pair();
    let jkt = jwk_thumbprint(client_jwk.to_string().as_bytes()).unwrap();
    let token = TokenSigner::new(Algorithm::ES256, idp_pkcs8.as_ref())
        .unwrap()
        .with_kid("k1")
        .sign(&serde_json::json!({
            "iss": ISS, "sub": "user-2f6c1e", "aud": AUD, "exp": start + 1_000_000_000,
            "iat": start, "client_id": "orders-frontend", "scope": "orders:read orders:write",
            "cnf": {"jkt": jkt},
        }))
        .unwrap();
    let keys = KeySet::from_jwk_json(idp_jwk.to_string().as_bytes()).unwrap();
    let verifier = Verifier::builder()
        .issuer(Issuer::new(ISS, keys).audience(AUD))
        .token_cache(DEFAULT_TOKEN_CACHE)
        .clock(clock.clone())
        .build()
        .unwrap();
    let dpop = DpopVerifier::builder(verifier).build().unwrap();
    let header = URL_SAFE_NO_PAD.encode(
        serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": client_jwk}).to_string(),
    );
    let ath = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()));
    let made = AtomicI64::new(0);
    let proof = || {
        let n = made.fetch_add(1, Ordering::Relaxed);
        if n % PROOFS_PER_MINUTE == PROOFS_PER_MINUTE - 1 {
            clock.0.fetch_add(60, Ordering::Relaxed);
        }
        let claims = serde_json::json!({"jti": format!("bench-{n}"), "htm": "GET", "htu": URI,
            "iat": clock.unix_seconds(), "ath": ath});
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = client.sign(&rng, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    };
    assert!(dpop.verify(&token, &proof(), "GET", URI).is_ok());

    let mut group = c.benchmark_group("hot_path");
    group.bench_function("verify_dpop_es256", |b| {
        b.iter_batched(
            proof,
            |proof| {
                dpop.verify(black_box(&token), black_box(&proof), "GET", URI)
                    .is_ok()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}
