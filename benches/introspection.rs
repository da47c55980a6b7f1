//! An opaque token answered from the introspection cache, beside a JWT answered from the
//! verifier's token cache: what a request costs once its token was seen (target: the
//! introspection hit within a small multiple of the JWT hit; neither sends anything). The
//! floor is an empty future driven by the same runtime, the price of the async entry point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/introspection/endpoint.rs"]
#[allow(dead_code)]
mod endpoint;
#[path = "../tests/remote_support/mod.rs"]
mod remote_support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use meshguard::token::introspection::{ClientAuth, Introspection};
use meshguard::token::{FixedClock, Issuer, KeySet, Verifier};
use remote_support::{AUDIENCE, T0, TestKey, jwks};

use endpoint::{Answer, Endpoint};

const ISS: &str = "https://idp.bench";

fn cache_hits(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = T0;
    let answer = format!(
        r#"{{"active":true,"iss":"{ISS}","aud":"{AUDIENCE}","sub":"u1","client_id":"svc",
        "scope":"read write","token_type":"Bearer","exp":{},"iat":{now}}}"#,
        now + 3600
    );
    let server = runtime.block_on(Endpoint::start(Answer::Json(answer)));
    let introspector = Introspection::new(ISS, server.url(), ClientAuth::basic("rs", "secret"))
        .audience(AUDIENCE)
        .active_ttl(Duration::from_secs(3600))
        .clock(Arc::new(FixedClock(now)))
        .build()
        .unwrap();
    let opaque = "bench-opaque-token-0123456789abcdefghijklmnopqrstuvwxyz";
    runtime.block_on(introspector.introspect(opaque)).unwrap();

    let key = TestKey::es256("bench");
    let verifier = Verifier::builder()
        .issuer(
            Issuer::new(
                ISS,
                KeySet::from_jwks_json(jwks(&[&key]).as_bytes()).unwrap(),
            )
            .audience(AUDIENCE),
        )
        .clock(Arc::new(FixedClock(now)))
        .build()
        .unwrap();
    let jwt = key.token(ISS);
    verifier.verify(&jwt).unwrap();

    let mut group = c.benchmark_group("cache_hit");
    group.bench_function("empty_future_floor", |b| {
        b.iter(|| runtime.block_on(async { black_box(()) }))
    });
    group.bench_function("jwt_verify", |b| {
        b.iter(|| verifier.verify(black_box(&jwt)).unwrap())
    });
    group.bench_function("introspection", |b| {
        b.iter(|| {
            runtime
                .block_on(introspector.introspect(black_box(opaque)))
                .unwrap()
        })
    });
    group.finish();
    assert_eq!(server.posts(), 1, "a cache hit sent a request");
}

criterion_group!(benches, cache_hits);
criterion_main!(benches);
