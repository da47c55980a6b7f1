//! The loopback bench's routers called in-process (`tower::ServiceExt::oneshot` on a
//! current-thread runtime), without sockets: `bare_in_process`, `guarded_in_process` and
//! `guarded_in_process_decision_cache`. What the guard adds to a request, and what the
//! decision cache takes off it, without the load generator's noise.

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use criterion::Criterion;
use http::StatusCode;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

use crate::loopback::{PATH, bare_router, guarded_router, token_and_verifier};

fn call(runtime: &Runtime, router: &Router, bearer: &str) -> StatusCode {
    let request = http::Request::get(PATH)
        .header(http::header::AUTHORIZATION, bearer)
        .body(Body::empty())
        .unwrap();
    runtime
        .block_on(router.clone().oneshot(request))
        .unwrap()
        .status()
}

pub(crate) fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // A token and verifier per guarded router: a cached token keeps the principal of the
    // first engine that maps it, as in a service with one engine.
    let (token, verifier) = token_and_verifier();
    let (cached_token, cached_verifier) = token_and_verifier();
    let bare = (bare_router(), format!("Bearer {token}"));
    let guarded = (guarded_router(verifier, false), bare.1.clone());
    let cached = (
        guarded_router(cached_verifier, true),
        format!("Bearer {cached_token}"),
    );
    // Warm, and check that each answers as the bench means it to.
    for (router, bearer) in [&bare, &guarded, &cached] {
        assert_eq!(call(&runtime, router, bearer), StatusCode::OK);
    }
    assert_eq!(
        call(&runtime, &guarded.0, "Bearer x"),
        StatusCode::UNAUTHORIZED
    );

    let mut group = c.benchmark_group("hot_path");
    for (id, (router, bearer)) in [
        ("bare_in_process", &bare),
        ("guarded_in_process", &guarded),
        ("guarded_in_process_decision_cache", &cached),
    ] {
        group.bench_function(id, |b| b.iter(|| call(&runtime, router, black_box(bearer))));
    }
    group.finish();
}
