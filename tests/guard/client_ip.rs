//! `context.client_ip` behind the guard on a real axum server on 127.0.0.1: the address a
//! trusted proxy reports in `X-Forwarded-For` or `Forwarded`, counted from the right over
//! the configured hops; the socket peer for everyone else; a malformed header from a
//! trusted proxy refused with 400. The test client plays the proxy: it connects from
//! loopback, which the peer layer trusts or not as each test configures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use http::header::AUTHORIZATION;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::guard::{GuardBuilder, GuardLayer};
use meshguard::peer::{Authorizer, ForwardedAddress, PeerIdentityLayer, XfccPolicy};
use meshguard::policy::{AuthorizationLayer, HttpMapping, PolicyEngine, PolicySource};
use meshguard::token::AuthenticationLayer;
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

const ISS: &str = "https://idp.example";
const SECRET: &[u8] = b"guard-client-ip-test-secret-0123456789";

/// Orders are for clients in 198.51.100.0/24 only, never for 203.0.113.0/24; `/local` is for
/// loopback callers. A request without a known client address matches no `permit`.
const POLICIES: &str = r#"
@id("clients")
permit(principal, action == Action::"GET /orders", resource)
when { context.client_ip.isInRange(ip("198.51.100.0/24")) };

@id("local")
permit(principal, action == Action::"GET /local", resource)
when { context.client_ip.isLoopback() };

@id("blocked")
forbid(principal, action, resource)
when { context has client_ip && context.client_ip.isInRange(ip("203.0.113.0/24")) };
"#;

fn verifier() -> Verifier {
    Verifier::builder()
        .issuer(Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap()).audience("orders"))
        .build()
        .unwrap()
}

fn engine() -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap()
}

fn token() -> String {
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&json!({"iss": ISS, "sub": "alice", "aud": "orders", "exp": 4_102_444_800_i64}))
        .unwrap()
}

/// A peer layer that trusts loopback proxies for the client address in `address`.
fn trusting_loopback(address: ForwardedAddress) -> PeerIdentityLayer {
    PeerIdentityLayer::new()
        .optional()
        .xfcc(XfccPolicy::builder().trust_loopback().build())
        .client_address(address)
}

fn guard(peer: Option<PeerIdentityLayer>) -> GuardBuilder {
    let builder = GuardLayer::builder()
        .tokens(verifier())
        .policies(engine(), HttpMapping::conventions("orders"));
    match peer {
        Some(peer) => builder.peer(peer),
        None => builder,
    }
}

fn app() -> Router {
    Router::new()
        .route("/orders", get(|| async { "orders" }))
        .route("/local", get(|| async { "local" }))
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn serve_guarded(guard: GuardBuilder) -> SocketAddr {
    serve(app().layer(guard.build().unwrap())).await
}

/// `GET path` with a valid token and these extra headers: the status.
async fn status_of(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> StatusCode {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::get(path)
        .header("host", "localhost")
        .header(AUTHORIZATION, format!("Bearer {}", token()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

#[tokio::test]
async fn a_trusted_proxys_x_forwarded_for_is_the_client_address() {
    let addr = serve_guarded(guard(Some(trusting_loopback(
        ForwardedAddress::x_forwarded_for(),
    ))))
    .await;
    let xff = |value| [("x-forwarded-for", value)];
    // The right-most entry is the one the trusted proxy appended; the left one is the
    // client's own claim and is not read.
    assert_eq!(
        status_of(addr, "/orders", &xff("203.0.113.5, 198.51.100.7")).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(addr, "/orders", &xff("198.51.100.7, 203.0.113.5")).await,
        StatusCode::FORBIDDEN
    );
    // The proxy's own address is not the client's.
    assert_eq!(
        status_of(addr, "/local", &xff("198.51.100.7")).await,
        StatusCode::FORBIDDEN
    );
    // No header, or a client the proxy does not name: no address, no permit.
    assert_eq!(status_of(addr, "/orders", &[]).await, StatusCode::FORBIDDEN);
    assert_eq!(
        status_of(addr, "/orders", &xff("unknown")).await,
        StatusCode::FORBIDDEN
    );
    // `Forwarded` is not the header this proxy maintains: it is not read.
    assert_eq!(
        status_of(addr, "/orders", &[("forwarded", "for=198.51.100.7")]).await,
        StatusCode::FORBIDDEN
    );
    // A malformed header from the trusted proxy is refused, not guessed at.
    assert_eq!(
        status_of(addr, "/orders", &xff("198.51.100.7, not-an-address")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(addr, "/orders", &xff("garbage, 198.51.100.7")).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn forwarded_is_read_over_the_configured_hops() {
    let header = [(
        "forwarded",
        r#"for=192.0.2.1, for=198.51.100.7;proto=https, for="[2001:db8::1]:4711""#,
    )];
    let one = serve_guarded(guard(Some(
        trusting_loopback(ForwardedAddress::forwarded()),
    )))
    .await;
    assert_eq!(
        status_of(one, "/orders", &header).await,
        StatusCode::FORBIDDEN
    );
    let two = serve_guarded(guard(Some(trusting_loopback(
        ForwardedAddress::forwarded().hops(2),
    ))))
    .await;
    assert_eq!(status_of(two, "/orders", &header).await, StatusCode::OK);
    assert_eq!(
        status_of(two, "/orders", &[("forwarded", r#"for="[2001:db8::1"#)]).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_header_of_an_untrusted_peer_is_ignored() {
    // Proxies are trusted by their SPIFFE ID only; this plain-TCP client has none.
    let proxy = Authorizer::id("spiffe://example.org/ns/edge/sa/proxy".parse().unwrap());
    let peer = PeerIdentityLayer::new()
        .optional()
        .xfcc(XfccPolicy::builder().trust_proxies(proxy).build())
        .client_address(ForwardedAddress::x_forwarded_for());
    let addr = serve_guarded(guard(Some(peer))).await;
    let spoofed = [("x-forwarded-for", "198.51.100.7")];
    assert_eq!(
        status_of(addr, "/orders", &spoofed).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status_of(addr, "/local", &spoofed).await, StatusCode::OK);
    let blocked = [("x-forwarded-for", "203.0.113.5")];
    assert_eq!(status_of(addr, "/local", &blocked).await, StatusCode::OK);
    let garbage = [("x-forwarded-for", "garbage")];
    assert_eq!(status_of(addr, "/local", &garbage).await, StatusCode::OK);
}

#[tokio::test]
async fn without_a_peer_layer_the_socket_peer_is_the_client() {
    let addr = serve_guarded(guard(None)).await;
    let spoofed = [("x-forwarded-for", "198.51.100.7")];
    assert_eq!(
        status_of(addr, "/orders", &spoofed).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status_of(addr, "/local", &spoofed).await, StatusCode::OK);
}

#[tokio::test]
async fn hand_stacked_layers_see_the_reported_address() {
    let app = app()
        .layer(AuthorizationLayer::new(
            engine(),
            HttpMapping::conventions("orders"),
        ))
        .layer(AuthenticationLayer::new(verifier()))
        .layer(trusting_loopback(ForwardedAddress::x_forwarded_for()));
    let addr = serve(app).await;
    let client = [("x-forwarded-for", "198.51.100.7")];
    assert_eq!(status_of(addr, "/orders", &client).await, StatusCode::OK);
    assert_eq!(
        status_of(addr, "/local", &client).await,
        StatusCode::FORBIDDEN
    );
}
