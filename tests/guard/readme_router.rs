//! The README's "Secure an axum router" service, with its Cedar policy read from README.md,
//! served on 127.0.0.1 and called over a real socket: what the README promises holds. Only
//! the key source differs (a static key instead of OpenID Connect discovery).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use axum::{Router, routing::get};
use http::StatusCode;
use http::header::{AUTHORIZATION, HOST, WWW_AUTHENTICATE};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::guard::GuardLayer;
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, VerifiedToken, Verifier};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

const SECRET: &[u8] = b"readme-router-test-secret-0123456789!";
const ISS: &str = "https://sso.example/realms/shop";
const AUD: &str = "api://orders";

/// The policy shown under "Secure an axum router" in README.md.
fn readme_policy() -> String {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Secure an axum router")
        .nth(1)
        .expect("README has the section");
    let policy = section
        .split("```cedar\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a cedar block");
    policy.to_owned()
}

/// The README's handler.
async fn orders(token: VerifiedToken) -> String {
    format!("orders of {}", token.subject().unwrap_or("?"))
}

/// The README's service, on an ephemeral port.
async fn serve() -> SocketAddr {
    let issuer = Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap()).audience(AUD);
    let verifier = Verifier::builder().issuer(issuer).build().unwrap();
    let policies = PolicyEngine::builder(PolicySource::text(readme_policy()))
        .build()
        .unwrap();
    let guard = GuardLayer::builder()
        .tokens(verifier)
        .policies(policies, HttpMapping::conventions("orders"))
        .public("/health")
        .build()
        .unwrap();
    let app = Router::new()
        .route("/orders", get(orders))
        .route("/health", get(|| async { "ok" }))
        .layer(guard);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn token(scope: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&json!({
            "iss": ISS, "aud": AUD, "sub": "alice", "exp": now + 300, "scope": scope,
        }))
        .unwrap()
}

async fn get_path(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::get(path).header(HOST, addr.to_string());
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn token_with_the_readme_scope_reaches_the_handler() {
    let addr = serve().await;
    let (status, challenge, body) = get_path(addr, "/orders", Some(&token("orders:read"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(challenge, None);
    assert_eq!(body, "orders of alice");
}

#[tokio::test]
async fn token_without_the_scope_is_denied_by_the_policy() {
    let addr = serve().await;
    let (status, challenge, body) = get_path(addr, "/orders", Some(&token("orders:write"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge, None,
        "a policy denial carries no bearer challenge"
    );
    assert!(body.contains("\"status\":403"), "{body}");
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_challenge() {
    let addr = serve().await;
    let (status, challenge, _) = get_path(addr, "/orders", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"meshguard\""));
}

#[tokio::test]
async fn health_is_public() {
    let addr = serve().await;
    let (status, _, body) = get_path(addr, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok");
}
