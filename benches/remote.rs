//! Warm-path verification through a remote key source, paired with the same key configured
//! statically: the remote source must add no measurable cost once its keys are loaded
//! (target: remote / static ≤ 1.05).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/remote_support/mod.rs"]
mod remote_support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use meshguard::token::remote::RemoteJwks;
use meshguard::token::{Issuer, KeySet, Verifier};
use remote_support::{AUDIENCE, JwksServer, TestKey, jwks};

const ISS: &str = "https://idp.bench";

fn warm_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let key = TestKey::es256("bench");
    let document = jwks(&[&key]);
    let server = runtime.block_on(JwksServer::start(document.clone()));
    let remote = runtime
        .block_on(
            Verifier::builder()
                .issuer(Issuer::remote(ISS, RemoteJwks::url(server.jwks_url())).audience(AUDIENCE))
                .token_cache(0)
                .build_async(),
        )
        .unwrap();
    let fixed = Verifier::builder()
        .issuer(
            Issuer::new(ISS, KeySet::from_jwks_json(document.as_bytes()).unwrap())
                .audience(AUDIENCE),
        )
        .token_cache(0)
        .build()
        .unwrap();
    let token = key.token(ISS);
    remote.verify(&token).unwrap();
    fixed.verify(&token).unwrap();

    let mut group = c.benchmark_group("warm_es256");
    group.bench_function("static_verify", |b| {
        b.iter(|| fixed.verify(black_box(&token)).unwrap())
    });
    group.bench_function("remote_verify", |b| {
        b.iter(|| remote.verify(black_box(&token)).unwrap())
    });
    group.bench_function("static_verify_async", |b| {
        b.iter(|| {
            runtime
                .block_on(fixed.verify_async(black_box(&token)))
                .unwrap()
        })
    });
    group.bench_function("remote_verify_async", |b| {
        b.iter(|| {
            runtime
                .block_on(remote.verify_async(black_box(&token)))
                .unwrap()
        })
    });
    group.finish();

    // The machine may be shared: load that drifts between the benches above skews their
    // ratio. Alternating short runs of both cancels the drift out of the comparison.
    let (mut fixed_time, mut remote_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..PAIRED_ROUNDS {
        let start = Instant::now();
        for _ in 0..PAIRED_BATCH {
            fixed.verify(black_box(&token)).unwrap();
        }
        fixed_time += start.elapsed();
        let start = Instant::now();
        for _ in 0..PAIRED_BATCH {
            remote.verify(black_box(&token)).unwrap();
        }
        remote_time += start.elapsed();
    }
    println!(
        "warm_es256 paired: remote / static = {:.3} (target <= 1.05)",
        remote_time.as_secs_f64() / fixed_time.as_secs_f64()
    );
    assert_eq!(server.jwks_requests(), 1, "the warm path fetched");
}

/// Alternating rounds in the paired comparison, and verifications per side per round.
const PAIRED_ROUNDS: usize = 200;
const PAIRED_BATCH: usize = 50;

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = warm_path
}
criterion_main!(benches);
