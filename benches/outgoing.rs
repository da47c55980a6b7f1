//! The outgoing-credentials layer on its warm path, beside the bare client it wraps: what
//! attaching a cached token costs a request (no token request is made; the inner service
//! answers at once, so only the layer's work differs). The floor is the same request
//! through the bare service; `client_credentials` loads the cached token's header,
//! `forward` moves the inbound token's, `exchange` looks the subject's token up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/outgoing/endpoint.rs"]
#[allow(dead_code)]
mod endpoint;
#[path = "../tests/remote_support/mod.rs"]
mod remote_support;

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, HeaderValue, Request, Response};
use meshguard::outgoing::{
    ClientAuth, ClientCredentials, Credentials, InboundBearer, OutgoingCredentialsLayer,
    TokenExchange,
};
use meshguard::token::{Algorithm, Clock as _, Issuer, KeySet, SystemClock, TokenSigner, Verifier};
use serde_json::{Value, json};
use tower::Layer as _;
use tower::{Service, ServiceExt as _, service_fn};

use endpoint::{Answer, Endpoint};
use remote_support::ManualClock;

const ISSUER: &str = "https://idp.bench";
/// BENCH-ONLY: the HMAC secret the bench endpoint signs with.
const SECRET: &[u8] = b"outgoing-bench-hmac-secret-at-least-32-bytes";
const ORIGIN: &str = "https://payments.bench";

/// The bench endpoint's tokens (the endpoint module names this `crate::jwt`).
fn jwt(extra: &Value) -> String {
    let mut claims = json!({ "iss": ISSUER, "aud": "payments" });
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&claims)
        .unwrap()
}

fn inbound(now: i64) -> InboundBearer {
    let token = jwt(&json!({ "sub": "alice", "exp": now + 3600 }));
    let verifier = Verifier::builder()
        .issuer(
            Issuer::new(ISSUER, KeySet::hmac_secret("k1", SECRET).unwrap()).audience("payments"),
        )
        .build()
        .unwrap();
    let mut extensions = Extensions::new();
    extensions.insert(verifier.verify(&token).unwrap());
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    InboundBearer::from_parts(&headers, &extensions).unwrap()
}

fn warm_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = SystemClock.unix_seconds();
    let clock = ManualClock::at(now);
    let server = runtime.block_on(Endpoint::start(Answer::bearer(3600), &clock));
    let source = ClientCredentials::new(server.url(), ClientAuth::basic("orders", "secret"))
        .clock(clock.clone())
        .build()
        .unwrap();
    runtime.block_on(source.authorization_header()).unwrap();
    let exchanger = TokenExchange::new(server.url(), ClientAuth::post("orders", "secret"))
        .audience("payments")
        .clock(clock.clone())
        .build()
        .unwrap();
    let alice = inbound(now);
    runtime
        .block_on(exchanger.authorization_header(&alice))
        .unwrap();

    // The client: answers every request at once with the length of its `Authorization`.
    let bare = service_fn(|request: Request<()>| async move {
        let sent = request
            .headers()
            .get(AUTHORIZATION)
            .map_or(0, HeaderValue::len);
        Ok::<_, Infallible>(Response::new(sent))
    });
    let layered = |credentials| {
        OutgoingCredentialsLayer::new(credentials, ORIGIN)
            .unwrap()
            .trust_inner_origin()
            .layer(bare)
    };
    let mut client_credentials = layered(Credentials::client_credentials(source));
    let mut forward = layered(Credentials::forward());
    let mut exchange = layered(Credentials::exchange(exchanger));
    let request = |with: Option<&InboundBearer>| {
        let mut request = Request::get("/payments.v1.Payments/Charge")
            .body(())
            .unwrap();
        if let Some(inbound) = with {
            request.extensions_mut().insert(inbound.clone());
        }
        request
    };

    let mut group = c.benchmark_group("outgoing_warm");
    let mut floor = bare;
    group.bench_function("bare_client_floor", |b| {
        b.iter(|| runtime.block_on(send(&mut floor, black_box(request(None)))))
    });
    group.bench_function("client_credentials", |b| {
        b.iter(|| runtime.block_on(send(&mut client_credentials, black_box(request(None)))))
    });
    group.bench_function("forward", |b| {
        b.iter(|| runtime.block_on(send(&mut forward, black_box(request(Some(&alice))))))
    });
    group.bench_function("exchange", |b| {
        b.iter(|| runtime.block_on(send(&mut exchange, black_box(request(Some(&alice))))))
    });
    group.finish();
    assert_eq!(server.posts(), 2, "the warm path asked the endpoint");
}

/// One request through `service`; the length of the `Authorization` it carried.
async fn send<S>(service: &mut S, request: Request<()>) -> usize
where
    S: Service<Request<()>, Response = Response<usize>>,
    S::Error: std::fmt::Debug,
{
    let sent = service.ready().await.unwrap().call(request).await.unwrap();
    *sent.body()
}

criterion_group!(benches, warm_path);
criterion_main!(benches);
