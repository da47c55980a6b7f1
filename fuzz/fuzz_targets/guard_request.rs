//! Whole requests through a guard (routes, bearer extraction, verification, Cedar mapping and
//! decision): it never panics, always answers at once with static keys, answers only 200,
//! 400, 401 or 403, and admits a request only on a public or optional-token route or with a
//! token that verifies for the one permitted user.
#![no_main]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use http::{Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use meshguard::guard::{GuardLayer, RouteRule};
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
use meshguard::token::{Issuer, KeySet, Verifier};
use tower_layer::Layer;
use tower_service::Service;

/// FUZZ-ONLY secret; the seed corpus holds tokens signed with it.
const SECRET: &[u8] = b"fuzz-only-secret-that-is-at-least-32-bytes";
const ADMITTED: &str = "admitted";

#[derive(Clone)]
struct Admit;

impl Service<Request<String>> for Admit {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<String>) -> Self::Future {
        ready(Ok(Response::new(ADMITTED.to_owned())))
    }
}

fn verifier() -> Verifier {
    let keys = KeySet::hmac_secret("k1", SECRET).expect("a valid secret");
    Verifier::builder()
        .issuer(Issuer::new("https://idp.fuzz", keys).audience("fuzz"))
        .build()
        .expect("a valid configuration")
}

fn guard() -> &'static GuardLayer {
    static GUARD: OnceLock<GuardLayer> = OnceLock::new();
    GUARD.get_or_init(|| {
        let engine = PolicyEngine::builder(PolicySource::text(
            r#"@id("alice") permit(principal == User::"alice", action, resource);"#,
        ))
        .build()
        .expect("valid policies");
        GuardLayer::builder()
            .tokens(verifier())
            .policies(engine, HttpMapping::conventions("fuzz"))
            .public("/health")
            .optional_token("GET /catalog/{*rest}")
            .route("DELETE /orders/{id}", RouteRule::new().scopes(["orders:write"]))
            .build()
            .expect("a valid guard")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|b| *b == 0);
    let method = fields.next().unwrap_or_default();
    let target = fields.next().unwrap_or_default();
    let authorization = fields.next().unwrap_or_default();
    let content_type = fields.next().unwrap_or_default();
    let xfcc = fields.next().unwrap_or_default();
    let mut builder = Request::builder().method(method).uri(target);
    if !authorization.is_empty() {
        builder = builder.header(http::header::AUTHORIZATION, authorization);
    }
    if !content_type.is_empty() {
        builder = builder.header(http::header::CONTENT_TYPE, content_type);
    }
    if !xfcc.is_empty() {
        builder = builder.header("x-forwarded-client-cert", xfcc);
    }
    let Ok(request) = builder.body(String::new()) else {
        return;
    };
    let path = request.uri().path().to_owned();
    // A GET rule covers HEAD too, as routers answer HEAD with the GET handler.
    let is_get = [http::Method::GET, http::Method::HEAD].contains(request.method());

    let mut service = guard().layer(Admit);
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(response)) = pin!(service.call(request)).poll(&mut cx) else {
        panic!("with static keys a guard answers at once");
    };
    let status = response.status();
    assert!(
        [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN]
            .contains(&status),
        "unexpected status {status}"
    );
    if response.body() != ADMITTED {
        return;
    }
    let open_route = path == "/health" || (is_get && path.starts_with("/catalog/"));
    if !open_route {
        let header = std::str::from_utf8(authorization).expect("an admitted header is text");
        let token = header.get(7..).expect("an admitted request carries a token");
        let verified = verifier().verify(token).expect("an admitted token verifies");
        assert_eq!(verified.subject(), Some("alice"));
    }
});
