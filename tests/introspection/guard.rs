//! A guard taking JWTs and opaque tokens side by side, in front of a real axum server on
//! 127.0.0.1, its introspector asking the hand-rolled endpoint: an opaque token is
//! introspected and then checked as a JWT would be (scopes, policies), a JWT never reaches
//! the endpoint, and a token nothing vouches for is refused.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Extension, Router};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::guard::{GuardBuilderError, GuardLayer, RouteRule};
use meshguard::policy::{HttpMapping, IssuerNamespaceError, PolicyEngine, PolicySource};
use meshguard::token::introspection::{ClientAuth, Introspection, Introspector};
use meshguard::token::{
    Algorithm, AuthenticationLayer, Issuer, KeySet, TokenSigner, VerifiedToken, Verifier,
};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::endpoint::{Answer, Endpoint};
use crate::remote_support::ManualClock;
use crate::{AUDIENCE, ISSUER, NOW, active, config};

/// Only `u1` reads orders; deleting one needs the `orders:write` scope as well.
const POLICIES: &str = r#"
permit(principal == User::"u1", action == Action::"GET /orders/{id}", resource);
permit(principal == User::"u1", action == Action::"DELETE /orders/{id}", resource);
"#;

/// An opaque token: one segment, so never taken for a JWS.
const OPAQUE: &str = "ory_at_Zm9vYmFy";

/// The issuer's JWT side: an HMAC secret minted per test run.
fn secret() -> Vec<u8> {
    let mut bytes = vec![0; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    bytes
}

fn verifier(secret: &[u8]) -> Verifier {
    let keys = KeySet::hmac_secret("k1", secret).unwrap();
    Verifier::builder()
        .issuer(Issuer::new(ISSUER, keys).audience(AUDIENCE))
        .build()
        .unwrap()
}

fn jwt(secret: &[u8], sub: &str) -> String {
    TokenSigner::new(Algorithm::HS256, secret)
        .unwrap()
        .with_kid("k1")
        .sign(
            &json!({"iss": ISSUER, "sub": sub, "aud": AUDIENCE, "scope": "read",
            "exp": 4_102_444_800_i64}),
        )
        .unwrap()
}

fn introspector(endpoint: &Endpoint) -> Introspector {
    config(endpoint.url(), &ManualClock::at(NOW))
        .build()
        .unwrap()
}

/// The guard: the issuer's JWTs and opaque tokens, the policies, and a scope on deletes.
fn guard(secret: &[u8], introspector: Introspector) -> GuardLayer {
    let engine = PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap();
    GuardLayer::builder()
        .realm("orders")
        .tokens(verifier(secret))
        .introspection(introspector)
        .policies(engine, HttpMapping::conventions("orders"))
        .route(
            "DELETE /orders/{id}",
            RouteRule::new().scopes(["orders:write"]),
        )
        .build()
        .unwrap()
}

/// What the handler saw of the token the guard left for it.
async fn seen(Extension(token): Extension<VerifiedToken>) -> String {
    let scopes: Vec<&str> = token.scopes().iter().map(String::as_str).collect();
    format!(
        "{} {} {}",
        token.subject().unwrap(),
        token.client_id().unwrap_or("-"),
        scopes.join(",")
    )
}

async fn serve(guard: GuardLayer) -> SocketAddr {
    let app = Router::new()
        .route("/orders/{id}", get(seen).delete(seen))
        .layer(guard);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    body: String,
}

/// `method path` with `Authorization: Bearer token` over a fresh HTTP/1.1 connection.
async fn send(addr: SocketAddr, method: Method, path: &str, token: &str) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        challenge,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get_order(addr: SocketAddr, token: &str) -> Reply {
    send(addr, Method::GET, "/orders/7", token).await
}

impl Reply {
    /// 401 with an `invalid_token` challenge whose description is `description`.
    fn assert_invalid_token(&self, description: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{}", self.body);
        let challenge = self.challenge.as_deref().unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!(r#"error_description="{description}""#)),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn an_active_opaque_token_reaches_the_handler_as_a_verified_token() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let addr = serve(guard(&secret(), introspector(&endpoint))).await;
    let reply = get_order(addr, OPAQUE).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "u1 svc read");
    let (form, _) = endpoint.last_request();
    assert_eq!(form, format!("token={OPAQUE}&token_type_hint=access_token"));
    assert_eq!(endpoint.posts(), 1);
}

#[tokio::test]
async fn an_inactive_opaque_token_is_an_invalid_token() {
    let endpoint = Endpoint::start(Answer::Json(r#"{"active":false}"#.into())).await;
    let addr = serve(guard(&secret(), introspector(&endpoint))).await;
    get_order(addr, OPAQUE)
        .await
        .assert_invalid_token("the token is invalid");
    assert_eq!(endpoint.posts(), 1);
}

#[tokio::test]
async fn an_endpoint_that_is_down_refuses_every_opaque_token() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    drop(listener);
    let introspector = config(&url, &ManualClock::at(NOW)).build().unwrap();
    let addr = serve(guard(&secret(), introspector)).await;
    get_order(addr, OPAQUE)
        .await
        .assert_invalid_token("the token cannot be verified now");
}

#[tokio::test]
async fn an_endpoint_answering_an_error_refuses_the_token() {
    let endpoint = Endpoint::start(Answer::Status(503)).await;
    let addr = serve(guard(&secret(), introspector(&endpoint))).await;
    get_order(addr, OPAQUE)
        .await
        .assert_invalid_token("the token cannot be verified now");
    assert_eq!(endpoint.posts(), 1);
}

#[tokio::test]
async fn a_jwt_is_verified_locally_and_never_sent_to_the_endpoint() {
    let secret = secret();
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let addr = serve(guard(&secret, introspector(&endpoint))).await;
    let reply = get_order(addr, &jwt(&secret, "u1")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "u1 - read");
    // A JWS of another key is refused by the verifier, not introspected either.
    get_order(addr, &jwt(&self::secret(), "u1"))
        .await
        .assert_invalid_token("the token is invalid");
    assert_eq!(endpoint.posts(), 0);
}

#[tokio::test]
async fn an_introspected_token_without_the_routes_scope_is_insufficient_scope() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let addr = serve(guard(&secret(), introspector(&endpoint))).await;
    let reply = send(addr, Method::DELETE, "/orders/7", OPAQUE).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let challenge = reply.challenge.unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="orders:write""#), "{challenge}");

    let writer = active(300).replace(r#""scope":"read""#, r#""scope":"read orders:write""#);
    endpoint.set(Answer::Json(writer));
    let other = "another-opaque-token";
    let reply = send(addr, Method::DELETE, "/orders/7", other).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "u1 svc orders:write,read");
}

#[tokio::test]
async fn the_policies_decide_on_the_introspected_principal() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let addr = serve(guard(&secret(), introspector(&endpoint))).await;
    assert_eq!(get_order(addr, OPAQUE).await.status, StatusCode::OK);

    endpoint.set(Answer::Json(
        active(300).replace(r#""sub":"u1""#, r#""sub":"u2""#),
    ));
    let reply = get_order(addr, "an-opaque-token-of-u2").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    // A policy denial, not a token or scope refusal: no challenge.
    assert_eq!(reply.challenge, None);
}

#[tokio::test]
async fn an_introspector_needs_tokens_beside_it() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let engine = PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap();
    let refused = GuardLayer::builder()
        .introspection(introspector(&endpoint))
        .policies(engine, HttpMapping::conventions("orders"))
        .build()
        .unwrap_err();
    assert_eq!(refused, GuardBuilderError::IntrospectionWithoutTokens);
}

#[tokio::test]
async fn an_introspector_of_another_issuer_must_not_share_its_principals() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let other = Introspection::new(
        "https://other.test",
        endpoint.url(),
        ClientAuth::basic("rs", "secret"),
    )
    .audience(AUDIENCE)
    .build()
    .unwrap();
    let engine = PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap();
    let refused = GuardLayer::builder()
        .tokens(verifier(&secret()))
        .introspection(other)
        .policies(engine, HttpMapping::conventions("orders"))
        .build()
        .unwrap_err();
    assert!(
        matches!(
            refused,
            GuardBuilderError::Principals(IssuerNamespaceError::Shared { .. })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_authentication_layer_alone_introspects_opaque_tokens() {
    let secret = secret();
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let layer = AuthenticationLayer::new(verifier(&secret)).introspection(introspector(&endpoint));
    let app = Router::new().route("/orders/{id}", get(seen)).layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let reply = get_order(addr, OPAQUE).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "u1 svc read");
    assert_eq!(get_order(addr, &jwt(&secret, "u1")).await.body, "u1 - read");
    assert_eq!(endpoint.posts(), 1);

    endpoint.set(Answer::Json(r#"{"active":false}"#.into()));
    get_order(addr, "a-revoked-token")
        .await
        .assert_invalid_token("the token is invalid");
}
