//! A trivial axum handler over loopback HTTP/1.1, bare (`bare_loopback`) and behind the
//! [`GuardLayer`] (`guarded_loopback`): a warm cached ES256 token and 100 Cedar policies, the request
//! allowed by the last of them; and the same with the engine's decision cache on
//! (`guarded_loopback_decision_cache`: no condition reads the request's time, so every
//! request after the first is answered from it). Each iteration is one request; the requests of a sample are
//! spread over keep-alive connections, each sending one request at a time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use meshguard::guard::GuardLayer;
use meshguard::policy::{
    DecisionCacheConfig, HttpMapping, PolicyEngine, PolicySource, PrincipalMapping,
};
use meshguard::token::{Algorithm, DEFAULT_TOKEN_CACHE, Issuer, KeySet, TokenSigner, Verifier};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use tokio::runtime::Runtime;

use crate::loopback_client::Loopback;

const ISS: &str = "https://idp.bench.example";
const AUD: &str = "api://orders";
const SERVICE: &str = "orders";
pub(crate) const PATH: &str = "/orders/42";
const ROUTE: &str = "/orders/{id}";
const POLICIES: usize = 100;
/// Keep-alive connections of the load generator.
const CONNECTIONS: usize = 8;

/// An ES256 token for `alice` with two roles, and the verifier (with its token cache) for it.
pub(crate) fn token_and_verifier() -> (String, Verifier) {
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = TokenSigner::new(Algorithm::ES256, pkcs8.as_ref())
        .unwrap()
        .with_kid("k1")
        .sign(&serde_json::json!({
            "iss": ISS, "sub": "alice", "aud": AUD, "exp": now + 3600, "iat": now,
            "jti": "6f1d2c7a-9b1e-4a53-8f0e-3c2d1b0a9f8e", "client_id": "orders-frontend",
            "scope": "orders:read orders:write", "roles": ["reader", "role7"],
        }))
        .unwrap();
    let verifier = Verifier::builder()
        .issuer(
            Issuer::new(
                ISS,
                KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap(),
            )
            .audience(AUD),
        )
        .token_cache(DEFAULT_TOKEN_CACHE)
        .build()
        .unwrap();
    (token, verifier)
}

/// 100 role-based policies over distinct roles and actions, permits and forbids; the
/// benchmark request (`GET /orders/{id}` by a `reader`) is allowed by the last.
fn policies() -> String {
    let mut text: String = (0..POLICIES - 1)
        .map(|i| match i % 4 {
            3 => format!(
                "forbid(principal in Role::\"suspended{i}\", action == Action::\"DELETE /r{i}/{{id}}\", resource);\n"
            ),
            _ => format!(
                "permit(principal in Role::\"role{i}\", action == Action::\"GET /r{i}/{{id}}\", resource);\n"
            ),
        })
        .collect();
    text.push_str(
        "permit(principal in Role::\"reader\", action == Action::\"GET /orders/{id}\", \
         resource == Application::\"orders\") when { context.scopes.contains(\"orders:read\") };\n",
    );
    text
}

async fn ok() -> &'static str {
    "ok"
}

pub(crate) fn bare_router() -> Router {
    Router::new().route(ROUTE, get(ok))
}

/// The guarded router; with `decision_cache`, its engine keeps decisions (10,000 for 5 s).
pub(crate) fn guarded_router(verifier: Verifier, decision_cache: bool) -> Router {
    let builder = PolicyEngine::builder(PolicySource::text(policies()))
        .principal_mapping(PrincipalMapping::new().role_claim("roles"));
    let builder = if decision_cache {
        builder.decision_cache(DecisionCacheConfig::new(10_000, Duration::from_secs(5)))
    } else {
        builder
    };
    let engine = builder.build().unwrap();
    let guard = GuardLayer::builder()
        .realm(SERVICE)
        .tokens(verifier)
        .policies(engine, HttpMapping::conventions(SERVICE))
        .build()
        .unwrap();
    bare_router().layer(guard)
}

fn measure(
    runtime: &Runtime,
    server: &mut Loopback,
    bearer: &str,
    iters: u64,
) -> std::time::Duration {
    let start = Instant::now();
    runtime.block_on(server.send(PATH, bearer, iters));
    start.elapsed()
}

pub(crate) fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (token, verifier) = token_and_verifier();
    let bearer = format!("Bearer {token}");
    // Its own token and verifier: a cached token keeps the principal of the first engine
    // that maps it, as in a service with one engine.
    let (cached_token, cached_verifier) = token_and_verifier();
    let cached_bearer = format!("Bearer {cached_token}");
    let mut bare = runtime.block_on(Loopback::start(bare_router(), CONNECTIONS));
    let mut guarded = runtime.block_on(Loopback::start(
        guarded_router(verifier, false),
        CONNECTIONS,
    ));
    let mut cached = runtime.block_on(Loopback::start(
        guarded_router(cached_verifier, true),
        CONNECTIONS,
    ));
    // Warm: the token is verified and cached, every connection is open and has served.
    runtime.block_on(bare.send(PATH, &bearer, CONNECTIONS as u64));
    runtime.block_on(guarded.send(PATH, &bearer, CONNECTIONS as u64));
    runtime.block_on(cached.send(PATH, &cached_bearer, CONNECTIONS as u64));

    let mut group = c.benchmark_group("hot_path");
    group.bench_function("bare_loopback", |b| {
        b.iter_custom(|iters| measure(&runtime, &mut bare, &bearer, iters))
    });
    group.bench_function("guarded_loopback", |b| {
        b.iter_custom(|iters| measure(&runtime, &mut guarded, &bearer, iters))
    });
    group.bench_function("guarded_loopback_decision_cache", |b| {
        b.iter_custom(|iters| measure(&runtime, &mut cached, &cached_bearer, iters))
    });
    group.finish();
}
