//! `AuthenticationLayer` in front of a real axum server, driven over a real TCP socket:
//! CONFORMANCE items 38–42 and 44–46 (RFC 6750 transport and challenges).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use meshguard::token::AuthenticationLayer;
use meshguard::token::bearer::BearerExtractor;
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, VerifiedToken, Verifier};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &[u8] = b"layer-test-secret-0123456789abcdef!!";
const ISS: &str = "https://idp.example";
const AUD: &str = "api://orders";

fn verifier() -> Verifier {
    Verifier::builder()
        .issuer(Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap()).audience(AUD))
        .build()
        .unwrap()
}

fn token(exp_offset: i64, sub: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&json!({"iss": ISS, "aud": AUD, "sub": sub, "exp": now + exp_offset}))
        .unwrap()
}

async fn whoami(token: Option<Extension<VerifiedToken>>) -> String {
    match token {
        Some(Extension(token)) => format!("hello {}", token.subject().unwrap_or("?")),
        None => "hello anonymous".to_owned(),
    }
}

async fn serve(layer: AuthenticationLayer) -> SocketAddr {
    let app = Router::new().route("/orders", get(whoami)).layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn challenge(&self) -> &str {
        let values = self.header("www-authenticate");
        assert_eq!(values.len(), 1, "exactly one challenge: {values:?}");
        values[0]
    }
}

/// One HTTP/1.1 request over a fresh TCP connection, with headers exactly as given.
async fn send(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The attributes of a Bearer challenge, checking the RFC 6750 §3 grammar on the way.
fn attributes(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.strip_prefix("Bearer ").expect("Bearer scheme");
    let mut attributes = Vec::new();
    for part in rest.split(", ") {
        let (name, value) = part.split_once('=').unwrap();
        let value = value.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
        assert!(!value.contains('"') && !value.contains('\\'), "{value}");
        assert!(value.chars().all(|c| (' '..='~').contains(&c)), "{value}");
        attributes.push((name.to_owned(), value.to_owned()));
    }
    let mut names: Vec<&str> = attributes.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(
        before,
        names.len(),
        "an attribute appears twice: {challenge}"
    );
    attributes
}

#[tokio::test]
async fn valid_token_reaches_the_handler_with_any_scheme_casing() {
    let addr = serve(AuthenticationLayer::new(verifier()).realm("orders")).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} {}", token(300, "alice"));
        let answer = send(addr, "/orders", &[("Authorization", &auth)]).await;
        assert_eq!(answer.status, 200, "{scheme}");
        assert_eq!(answer.body, "hello alice");
    }
}

#[tokio::test]
async fn missing_credentials_get_401_with_a_challenge_without_error() {
    let addr = serve(AuthenticationLayer::new(verifier()).realm("orders")).await;
    for headers in [&[][..], &[("Authorization", "Basic dXNlcjpwYXNz")][..]] {
        let answer = send(addr, "/orders", headers).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.challenge(), r#"Bearer realm="orders""#);
    }
}

#[tokio::test]
async fn invalid_tokens_get_401_invalid_token() {
    let addr = serve(AuthenticationLayer::new(verifier()).realm("orders")).await;
    let forged = {
        let good = token(300, "alice");
        let (input, _) = good.rsplit_once('.').unwrap();
        format!("{input}.{}", support::b64([0u8; 32]))
    };
    for (bad, description) in [
        (token(-3600, "alice"), "the token has expired"),
        (forged, "the token is invalid"),
        ("abc.def.ghi".to_owned(), "the token is invalid"),
    ] {
        let auth = format!("Bearer {bad}");
        let answer = send(addr, "/orders", &[("Authorization", &auth)]).await;
        assert_eq!(answer.status, 401);
        let attributes = attributes(answer.challenge());
        assert!(attributes.contains(&("realm".into(), "orders".into())));
        assert!(attributes.contains(&("error".into(), "invalid_token".into())));
        assert!(attributes.contains(&("error_description".into(), description.into())));
        for part in bad.split('.') {
            assert!(!answer.challenge().contains(part) && !answer.body.contains(part));
        }
        let problem: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(problem["status"], 401);
        assert_eq!(answer.header("content-type"), ["application/problem+json"]);
    }
}

#[tokio::test]
async fn error_descriptions_never_echo_claims_or_key_ids() {
    let addr = serve(AuthenticationLayer::new(verifier())).await;
    let other = TokenSigner::new(Algorithm::HS256, b"another-secret-0123456789abcdef!!!!")
        .unwrap()
        .with_kid("kid-secret-77")
        .sign(&json!({"iss": ISS, "aud": AUD, "sub": "sub-secret-42", "exp": 1}))
        .unwrap();
    let auth = format!("Bearer {other}");
    let answer = send(addr, "/orders", &[("Authorization", &auth)]).await;
    assert_eq!(answer.status, 401);
    let everything = format!("{:?}{}", answer.headers, answer.body);
    assert!(!everything.contains("kid-secret-77") && !everything.contains("sub-secret-42"));
}

#[tokio::test]
async fn malformed_or_duplicated_credentials_get_400_invalid_request() {
    let extractor = BearerExtractor::new().query_parameter("access_token");
    let addr = serve(AuthenticationLayer::new(verifier()).extractor(extractor)).await;
    let good = token(300, "alice");
    let auth = format!("Bearer {good}");
    let two_places = format!("/orders?access_token={good}");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/orders", vec![("Authorization", "Bearer a b")]),
        ("/orders", vec![("Authorization", "Bearer")]),
        (
            "/orders",
            vec![("Authorization", &auth), ("Authorization", &auth)],
        ),
        (&two_places, vec![("Authorization", &auth)]),
    ];
    for (path, headers) in cases {
        let answer = send(addr, path, &headers).await;
        assert_eq!(answer.status, 400, "{path} {headers:?}");
        let attributes = attributes(answer.challenge());
        assert!(attributes.contains(&("error".into(), "invalid_request".into())));
    }
    let query_only = send(addr, &two_places, &[]).await;
    assert_eq!(
        query_only.status, 200,
        "a query token is accepted once enabled"
    );
}

#[tokio::test]
async fn query_tokens_are_ignored_by_default() {
    let addr = serve(AuthenticationLayer::new(verifier())).await;
    let path = format!("/orders?access_token={}", token(300, "alice"));
    let answer = send(addr, &path, &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenge(), r#"Bearer realm="meshguard""#);
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_but_not_bad_tokens() {
    let addr = serve(AuthenticationLayer::new(verifier()).optional()).await;
    let anonymous = send(addr, "/orders", &[]).await;
    assert_eq!(
        (anonymous.status, anonymous.body.as_str()),
        (200, "hello anonymous")
    );
    let auth = format!("Bearer {}", token(-3600, "alice"));
    assert_eq!(
        send(addr, "/orders", &[("Authorization", &auth)])
            .await
            .status,
        401
    );
}

/// gRPC-shaped answers are for HTTP/2 only (tests/guard/axum_router.rs and
/// tests/guard/tonic_service.rs check them): over HTTP/1.1 a gRPC content type still gets
/// the real 401.
#[tokio::test]
async fn grpc_content_type_over_http1_gets_a_real_401() {
    let addr = serve(AuthenticationLayer::new(verifier())).await;
    let answer = send(addr, "/orders", &[("Content-Type", "application/grpc")]).await;
    assert_eq!(answer.status, 401);
    assert!(answer.header("grpc-status").is_empty());
    assert_eq!(answer.challenge(), r#"Bearer realm="meshguard""#);
}
