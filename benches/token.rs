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

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use meshguard::token::{Algorithm, DEFAULT_TOKEN_CACHE, Issuer, KeySet, Verifier};
use support::{AUD, Floor, ISS, keys, now};

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
    let now = now();
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

/// HS256, RS256, ES256 and EdDSA.
fn cases() -> Vec<Case> {
    keys()
        .into_iter()
        .rev()
        .map(|key| Case {
            name: key.name,
            alg: key.alg,
            token: key.sign(&claims()),
            verifier: verifier(key.key_set(), 0),
            cached: verifier(key.key_set(), DEFAULT_TOKEN_CACHE),
            floor: key.floor(),
            decoding_key: key.decoding_key(),
        })
        .collect()
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
