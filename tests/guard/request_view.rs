//! The guard reads each request as the router and the handler do (issue 10, findings 1-3 and
//! 5), over a real axum server and a raw HTTP/1.1 client on 127.0.0.1, so that the request
//! target reaches the server byte for byte as an attacker writes it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use http::StatusCode;
use meshguard::guard::{GuardBuilderError, GuardLayer, RouteRule};
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &[u8] = b"request-view-test-secret-0123456789abcdef";
const ISS: &str = "https://idp.example";
const AUD: &str = "files";

/// Alice may do anything; nobody reads under `/files/private/`, nobody may `GET /reports/…`.
const POLICIES: &str = r#"
@id("alice")
permit(principal == User::"alice", action, resource);

@id("private-files")
forbid(principal, action, resource)
when { context.path like "/files/private/*" };

@id("reports-closed")
forbid(principal, action == Action::"GET /reports/{id}", resource);
"#;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(sub: &str, scope: &str) -> String {
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&json!({
            "iss": ISS, "aud": AUD, "sub": sub, "exp": now() + 300, "scope": scope,
        }))
        .unwrap()
}

fn guard() -> GuardLayer {
    let verifier = Verifier::builder()
        .issuer(Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap()).audience(AUD))
        .build()
        .unwrap();
    let engine = PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap();
    GuardLayer::builder()
        .tokens(verifier)
        .policies(engine, HttpMapping::conventions("files"))
        .public("/docs/{*rest}")
        .route("GET /docs/private", RouteRule::new())
        .route("GET /export", RouteRule::new().scopes(["export"]))
        .route("GET /orders/export", RouteRule::new().scopes(["export"]))
        .build()
        .unwrap()
}

/// What the handlers saw, in the order they ran.
type Seen = Arc<Mutex<Vec<String>>>;

async fn serve() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/docs/{*rest}", get(record_rest))
        .route("/files/{*path}", get(record_rest))
        .route("/export", get(record_export))
        .route("/orders/{id}", get(record_rest))
        .route("/reports/{id}", get(record_rest))
        .layer(guard())
        .with_state(Arc::clone(&seen));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

async fn record_rest(State(seen): State<Seen>, Path(rest): Path<String>) -> &'static str {
    seen.lock().unwrap().push(rest);
    "handled"
}

async fn record_export(State(seen): State<Seen>) -> &'static str {
    seen.lock().unwrap().push("export".to_owned());
    "exported"
}

/// Sends `method target` exactly as written, with an optional bearer token; the status and
/// any `content-type`.
async fn send(addr: SocketAddr, method: &str, target: &str, token: Option<&str>) -> StatusCode {
    send_with(addr, method, target, token, &[]).await.0
}

async fn send_with(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no status line: {response:?}"));
    (StatusCode::from_u16(status).unwrap(), response)
}

/// Finding 1: `GET /docs/%70rivate` reached the `/docs/{*rest}` handler as `private` without
/// a token, walking around the literal rule. Undecoded the path is the public wildcard's,
/// decoded the literal rule's: the request is ambiguous and refused, token or not.
#[tokio::test]
async fn percent_encoding_does_not_escape_a_literal_rule() {
    let (addr, seen) = serve().await;
    assert_eq!(
        send(addr, "GET", "/docs/public", None).await,
        StatusCode::OK
    );
    assert_eq!(
        send(addr, "GET", "/docs/private", None).await,
        StatusCode::UNAUTHORIZED
    );
    let alice = token("alice", "");
    for target in ["/docs/%70rivate", "/docs/%70%72%69vate", "/docs/privat%65"] {
        for bearer in [None, Some(alice.as_str())] {
            assert_eq!(
                send(addr, "GET", target, bearer).await,
                StatusCode::BAD_REQUEST,
                "{target}"
            );
        }
    }
    // Spelled another way but only one rule's either way: decided, never relaxed.
    assert_eq!(
        send(addr, "GET", "/docs/%70ublic", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(addr, "GET", "/docs/private", Some(&alice)).await,
        StatusCode::OK
    );
    assert_eq!(*seen.lock().unwrap(), ["public", "private"]);
}

/// Finding 1: the scopes of a literal rule applied also when a parameter route reaches the
/// same resource through an encoded spelling.
#[tokio::test]
async fn percent_encoding_does_not_lift_a_literal_rules_scopes() {
    let (addr, seen) = serve().await;
    let without_scope = token("alice", "read");
    let with_scope = token("alice", "export");
    for target in ["/orders/export", "/orders/%65xport", "/orders/expor%74"] {
        assert_eq!(
            send(addr, "GET", target, Some(&without_scope)).await,
            StatusCode::FORBIDDEN,
            "{target}"
        );
    }
    assert_eq!(
        send(addr, "GET", "/orders/%65xport", Some(&with_scope)).await,
        StatusCode::OK
    );
    assert_eq!(
        send(addr, "GET", "/orders/7", Some(&without_scope)).await,
        StatusCode::OK
    );
    assert_eq!(*seen.lock().unwrap(), ["export", "7"]);
}

/// Finding 1: policies see the decoded path, as the handler does, so a `forbid` on
/// `context.path` cannot be dodged by encoding a letter.
#[tokio::test]
async fn policies_read_the_decoded_path() {
    let (addr, seen) = serve().await;
    let alice = token("alice", "");
    for target in [
        "/files/private/salaries.csv",
        "/files/%70rivate/salaries.csv",
        "/files/priv%61te/salaries.csv",
    ] {
        assert_eq!(
            send(addr, "GET", target, Some(&alice)).await,
            StatusCode::FORBIDDEN,
            "{target}"
        );
    }
    assert_eq!(
        send(addr, "GET", "/files/public/caf%C3%A9.csv", Some(&alice)).await,
        StatusCode::OK
    );
    assert_eq!(*seen.lock().unwrap(), ["public/café.csv"]);
}

/// Finding 2: axum answers HEAD with the GET handler; a GET rule's scopes and a `forbid`
/// written for `GET` apply to HEAD too.
#[tokio::test]
async fn head_is_decided_as_get() {
    let (addr, seen) = serve().await;
    let without_scope = token("alice", "read");
    assert_eq!(
        send(addr, "HEAD", "/export", Some(&without_scope)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(addr, "HEAD", "/reports/1", Some(&without_scope)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(addr, "HEAD", "/export", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(seen.lock().unwrap().is_empty(), "no handler ran");
    let with_scope = token("alice", "export");
    assert_eq!(
        send(addr, "HEAD", "/export", Some(&with_scope)).await,
        StatusCode::OK
    );
    assert_eq!(*seen.lock().unwrap(), ["export"]);
}

/// Finding 3: a lowercase method was accepted as an extension method that never matches.
#[test]
fn rule_methods_are_standard_and_upper_case() {
    let build = |pattern: &str| {
        let verifier = Verifier::builder()
            .issuer(Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap()).audience(AUD))
            .build()
            .unwrap();
        GuardLayer::builder()
            .tokens(verifier)
            .route(pattern, RouteRule::new().scopes(["export"]))
            .build()
    };
    for pattern in [
        "get /export",
        "Get /export",
        "PURGE /export",
        "GET  /export",
    ] {
        match build(pattern) {
            Err(GuardBuilderError::Route {
                pattern: p,
                message,
            }) => {
                assert_eq!(p, pattern);
                assert!(!message.is_empty());
            }
            other => panic!("{pattern}: {other:?}"),
        }
    }
    for pattern in ["GET /export", "HEAD /export", "DELETE /export", "/export"] {
        assert!(build(pattern).is_ok(), "{pattern}");
    }
}

/// Finding 5: over HTTP/1.1 a client-chosen gRPC content type gets real HTTP statuses, never
/// a 200 with `grpc-status` that a forward-auth proxy would read as "allowed".
#[tokio::test]
async fn grpc_content_type_over_http1_is_answered_as_http() {
    let (addr, _) = serve().await;
    for content_type in [
        "application/grpc",
        "application/grpc+proto",
        "application/grpc-web",
    ] {
        let (status, response) = send_with(
            addr,
            "POST",
            "/export",
            None,
            &[("content-type", content_type)],
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{content_type}");
        assert!(
            !response.to_ascii_lowercase().contains("grpc-status"),
            "{response}"
        );
    }
}
