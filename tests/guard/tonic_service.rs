//! The guard around a real tonic server over mTLS, called by a real tonic client: gRPC
//! statuses for every refusal, Cedar decisions per RPC method, workload identities from the
//! TLS connection, certificate-bound tokens, and many concurrent calls. The served API is
//! the generated `grpc.health.v1.Health` service of tonic-health. PKI and tokens are minted
//! at test time.
#![cfg(all(feature = "tonic", feature = "rustls"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::peer_support;
#[cfg(feature = "remote-jwks")]
use crate::remote_support;
use crate::tonic_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tonic_support::serve_plain;

use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshguard::guard::{GuardLayer, RouteRule};
use meshguard::peer::{
    Authorizer, CertificateBinding, ClientRoots, PeerIdentity, PeerIdentityLayer, TlsIncoming,
    server_config,
};
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use peer_support::{Ca, Leaf};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, Server};
use tonic::{Code, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;

const CHECK: &str = "/grpc.health.v1.Health/Check";
const WATCH: &str = "/grpc.health.v1.Health/Watch";
const CART: &str = "spiffe://example.org/ns/shop/sa/cart";
const ADS: &str = "spiffe://example.org/ns/shop/sa/ads";
const SECRET: &[u8] = b"guard-tonic-test-hmac-secret-at-least-32-bytes";

/// alice may call both methods, bob only Check; the cart workload, calling without a user
/// token, may Check.
const POLICIES: &str = r#"
@id("alice-health")
permit(
    principal == User::"alice",
    action in [Action::"/grpc.health.v1.Health/Check", Action::"/grpc.health.v1.Health/Watch"],
    resource == Application::"health"
);
@id("bob-check")
permit(principal == User::"bob", action == Action::"/grpc.health.v1.Health/Check", resource);
@id("cart-check")
permit(
    principal == Service::"spiffe://example.org/ns/shop/sa/cart",
    action == Action::"/grpc.health.v1.Health/Check",
    resource == Application::"health"
);
"#;

struct Pki {
    ca: Ca,
    server: Leaf,
}

impl Pki {
    fn new() -> Self {
        let ca = Ca::new("example.org");
        let server = ca.svid("spiffe://example.org/ns/ops/sa/health");
        Self { ca, server }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let roots = ClientRoots::spiffe()
            .with_bundle_pem("example.org".parse().unwrap(), self.ca.pem().as_bytes())
            .unwrap();
        let chain = vec![CertificateDer::from(self.server.der())];
        Arc::new(server_config(chain, key_der(&self.server), &roots).unwrap())
    }
}

fn key_der(leaf: &Leaf) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()))
}

fn engine() -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap()
}

fn verifier() -> Verifier {
    Verifier::builder()
        .issuer(
            Issuer::new(
                "https://idp.example",
                KeySet::hmac_secret("k1", SECRET).unwrap(),
            )
            .audience("health"),
        )
        .build()
        .unwrap()
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A token for `sub` signed with `secret`, expiring `ttl` seconds from now, with `extra`
/// claims merged in.
fn token_with(secret: &[u8], sub: &str, ttl: i64, extra: serde_json::Value) -> String {
    let mut claims = serde_json::json!({
        "iss": "https://idp.example",
        "sub": sub,
        "aud": "health",
        "iat": now() - 10,
        "exp": now() + ttl,
    });
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    TokenSigner::new(Algorithm::HS256, secret)
        .unwrap()
        .with_kid("k1")
        .sign(&claims)
        .unwrap()
}

fn token(sub: &str) -> String {
    token_with(SECRET, sub, 300, serde_json::json!({}))
}

fn expired(sub: &str) -> String {
    token_with(SECRET, sub, -3600, serde_json::json!({}))
}

fn forged(sub: &str) -> String {
    token_with(
        b"not-the-issuers-secret-but-just-as-long!!",
        sub,
        300,
        serde_json::json!({}),
    )
}

/// A guard verifying tokens on top of the connection's workload identity.
fn token_guard() -> GuardLayer {
    GuardLayer::builder()
        .realm("health")
        .peer(PeerIdentityLayer::new())
        .tokens(verifier())
        .policies(engine(), HttpMapping::grpc("health"))
        .build()
        .unwrap()
}

/// A guard deciding on the calling workload alone.
fn workload_guard() -> GuardLayer {
    GuardLayer::builder()
        .peer(PeerIdentityLayer::new())
        .policies(engine(), HttpMapping::grpc("health"))
        .build()
        .unwrap()
}

/// Serves the health service behind `guard` over mTLS on 127.0.0.1.
async fn serve(pki: &Pki, guard: GuardLayer) -> SocketAddr {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let incoming = TlsIncoming::new(tcp, pki.server_config());
    let addr = incoming.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .layer(guard)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

/// A tonic channel over mTLS presenting `client`'s certificate.
async fn channel(addr: SocketAddr, ca: &Ca, client: &Leaf) -> Channel {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .identity(Identity::from_pem(client.cert_pem(), client.key_pem()))
        .domain_name("localhost");
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A request for the overall health, carrying `authorization` metadata when given.
fn request(authorization: Option<&str>) -> tonic::Request<HealthCheckRequest> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    request
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Check with `authorization`, the serving status on success.
async fn check(channel: &Channel, authorization: Option<&str>) -> Result<WireStatus, Status> {
    let response = HealthClient::new(channel.clone())
        .check(request(authorization))
        .await?;
    Ok(response.into_inner().status())
}

/// Watch with `authorization`, the first status streamed on success.
async fn watch(channel: &Channel, authorization: Option<&str>) -> Result<WireStatus, Status> {
    let mut stream = HealthClient::new(channel.clone())
        .watch(request(authorization))
        .await?
        .into_inner();
    let first = stream
        .message()
        .await?
        .ok_or_else(|| Status::internal("the stream ended without a status"))?;
    Ok(first.status())
}

#[track_caller]
fn assert_refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, message: &str) {
    let status = result.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (code, message),
        "{status:?}"
    );
}

#[tokio::test]
async fn allowed_method_answers_ok() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let cart = pki.ca.svid(CART);
    let channel = channel(addr, &pki.ca, &cart).await;
    let alice = bearer(&token("alice"));
    assert_eq!(
        check(&channel, Some(&alice)).await.unwrap(),
        WireStatus::Serving
    );
    assert_eq!(
        watch(&channel, Some(&alice)).await.unwrap(),
        WireStatus::Serving
    );
    let bob = bearer(&token("bob"));
    assert_eq!(
        check(&channel, Some(&bob)).await.unwrap(),
        WireStatus::Serving
    );
}

#[tokio::test]
async fn method_denied_by_policy_is_permission_denied() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let channel = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    // bob may Check but not Watch; carol is in no policy at all.
    let bob = bearer(&token("bob"));
    assert_refused(
        watch(&channel, Some(&bob)).await,
        Code::PermissionDenied,
        "the request is not allowed",
    );
    let carol = bearer(&token("carol"));
    assert_refused(
        check(&channel, Some(&carol)).await,
        Code::PermissionDenied,
        "the request is not allowed",
    );
}

#[tokio::test]
async fn missing_token_is_unauthenticated() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let channel = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    assert_refused(
        check(&channel, None).await,
        Code::Unauthenticated,
        "a bearer token is required",
    );
    // Another scheme is not a bearer token either.
    assert_refused(
        check(&channel, Some("Basic YWxpY2U6c2VjcmV0")).await,
        Code::Unauthenticated,
        "a bearer token is required",
    );
}

#[tokio::test]
async fn invalid_and_expired_tokens_are_unauthenticated() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let channel = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    let expired = expired("alice");
    let status = check(&channel, Some(&bearer(&expired))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "the token has expired");
    // The refusal never echoes the token.
    let signature = expired.rsplit('.').next().unwrap();
    assert!(!format!("{:?}", status.metadata()).contains(signature));

    assert_refused(
        check(&channel, Some(&bearer(&forged("alice")))).await,
        Code::Unauthenticated,
        "the token is invalid",
    );
    assert_refused(
        watch(&channel, Some(&bearer("abc.def.ghi"))).await,
        Code::Unauthenticated,
        "the token is invalid",
    );
    let wrong_audience = token_with(SECRET, "alice", 300, serde_json::json!({"aud": "other"}));
    assert_refused(
        check(&channel, Some(&bearer(&wrong_audience))).await,
        Code::Unauthenticated,
        "the token is invalid",
    );
}

#[tokio::test]
async fn malformed_authorization_is_invalid_argument() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let channel = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    for value in [
        "Bearer",
        "Bearer two tokens",
        "Bearer  extra-space",
        "Bearer !!!",
    ] {
        assert_refused(
            check(&channel, Some(value)).await,
            Code::InvalidArgument,
            "the bearer credential is malformed",
        );
    }
    // Two authorization entries: one token location per request.
    let mut twice = request(Some(&bearer(&token("alice"))));
    twice
        .metadata_mut()
        .append("authorization", bearer(&token("bob")).parse().unwrap());
    assert_refused(
        HealthClient::new(channel.clone()).check(twice).await,
        Code::InvalidArgument,
        "the request carries more than one token",
    );
}

#[tokio::test]
async fn token_from_a_client_interceptor_is_accepted() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let channel = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    let value: MetadataValue<_> = bearer(&token("alice")).parse().unwrap();
    let mut client =
        HealthClient::with_interceptor(channel.clone(), move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
            Ok(request)
        });
    let response = client.check(request(None)).await.unwrap();
    assert_eq!(response.into_inner().status(), WireStatus::Serving);
    let mut stream = client.watch(request(None)).await.unwrap().into_inner();
    assert_eq!(
        stream.message().await.unwrap().unwrap().status(),
        WireStatus::Serving
    );

    let value: MetadataValue<_> = bearer(&expired("alice")).parse().unwrap();
    let mut stale =
        HealthClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
            Ok(request)
        });
    assert_refused(
        stale.check(request(None)).await,
        Code::Unauthenticated,
        "the token has expired",
    );
}

#[tokio::test]
async fn peer_rejected_by_the_authorizer_is_permission_denied() {
    let pki = Pki::new();
    let guard = GuardLayer::builder()
        .peer(PeerIdentityLayer::new().authorize(Authorizer::id(CART.parse().unwrap())))
        .tokens(verifier())
        .policies(engine(), HttpMapping::grpc("health"))
        .build()
        .unwrap();
    let addr = serve(&pki, guard).await;
    let alice = bearer(&token("alice"));

    let cart = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    assert_eq!(
        check(&cart, Some(&alice)).await.unwrap(),
        WireStatus::Serving
    );
    // Even with a valid token, the workload itself is not allowed to call.
    let ads = channel(addr, &pki.ca, &pki.ca.svid(ADS)).await;
    assert_refused(
        check(&ads, Some(&alice)).await,
        Code::PermissionDenied,
        "the calling workload is not allowed",
    );
    assert_refused(
        check(&ads, None).await,
        Code::PermissionDenied,
        "the calling workload is not allowed",
    );
}

#[tokio::test]
async fn workload_identity_alone_is_decided_by_the_policies() {
    let pki = Pki::new();
    let addr = serve(&pki, workload_guard()).await;
    let cart = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    assert_eq!(check(&cart, None).await.unwrap(), WireStatus::Serving);
    assert_refused(
        watch(&cart, None).await,
        Code::PermissionDenied,
        "the request is not allowed",
    );
    let ads = channel(addr, &pki.ca, &pki.ca.svid(ADS)).await;
    assert_refused(
        check(&ads, None).await,
        Code::PermissionDenied,
        "the request is not allowed",
    );
}

#[tokio::test]
async fn certificate_bound_token_is_accepted_only_from_its_certificate() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let holder = pki.ca.svid(CART);
    let thief = pki.ca.svid(CART);
    let x5t = PeerIdentity::from_der_chain(&[holder.der()])
        .unwrap()
        .x5t_s256()
        .to_owned();
    let bound = bearer(&token_with(
        SECRET,
        "alice",
        300,
        serde_json::json!({"cnf": {"x5t#S256": x5t}}),
    ));

    let holder = channel(addr, &pki.ca, &holder).await;
    assert_eq!(
        check(&holder, Some(&bound)).await.unwrap(),
        WireStatus::Serving
    );
    // Same SPIFFE ID, another certificate: a stolen token is refused.
    let thief = channel(addr, &pki.ca, &thief).await;
    assert_refused(
        check(&thief, Some(&bound)).await,
        Code::Unauthenticated,
        "the token is not bound to the client certificate",
    );
}

#[tokio::test]
async fn required_binding_refuses_unbound_tokens() {
    let pki = Pki::new();
    let guard = GuardLayer::builder()
        .peer(PeerIdentityLayer::new())
        .tokens(verifier())
        .certificate_binding(CertificateBinding::Required)
        .policies(engine(), HttpMapping::grpc("health"))
        .build()
        .unwrap();
    let addr = serve(&pki, guard).await;
    let cart = pki.ca.svid(CART);
    let x5t = PeerIdentity::from_der_chain(&[cart.der()])
        .unwrap()
        .x5t_s256()
        .to_owned();
    let channel = channel(addr, &pki.ca, &cart).await;
    assert_refused(
        check(&channel, Some(&bearer(&token("alice")))).await,
        Code::Unauthenticated,
        "the token is not bound to the client certificate",
    );
    let bound = token_with(
        SECRET,
        "alice",
        300,
        serde_json::json!({"cnf": {"x5t#S256": x5t}}),
    );
    assert_eq!(
        check(&channel, Some(&bearer(&bound))).await.unwrap(),
        WireStatus::Serving
    );
}

#[tokio::test]
async fn per_method_rules_make_check_public_and_watch_need_a_scope() {
    let pki = Pki::new();
    let guard = GuardLayer::builder()
        .peer(PeerIdentityLayer::new())
        .tokens(verifier())
        .policies(engine(), HttpMapping::grpc("health"))
        .public(format!("POST {CHECK}"))
        .route(WATCH, RouteRule::new().scopes(["health:watch"]))
        .build()
        .unwrap();
    let addr = serve(&pki, guard).await;
    let channel = channel(addr, &pki.ca, &pki.ca.svid(ADS)).await;
    assert_eq!(check(&channel, None).await.unwrap(), WireStatus::Serving);

    assert_refused(
        watch(&channel, Some(&bearer(&token("alice")))).await,
        Code::PermissionDenied,
        "the token lacks a scope this route requires",
    );
    let scoped = token_with(
        SECRET,
        "alice",
        300,
        serde_json::json!({"scope": "health:read health:watch"}),
    );
    assert_eq!(
        watch(&channel, Some(&bearer(&scoped))).await.unwrap(),
        WireStatus::Serving
    );
    // The scope is necessary, not sufficient: bob's policies still deny Watch.
    let bob = token_with(
        SECRET,
        "bob",
        300,
        serde_json::json!({"scope": "health:watch"}),
    );
    assert_refused(
        watch(&channel, Some(&bearer(&bob))).await,
        Code::PermissionDenied,
        "the request is not allowed",
    );
}

/// One HTTP/2 request over mTLS with hyper: the response head, body and trailers.
async fn raw_h2(
    addr: SocketAddr,
    pki: &Pki,
    client: &Leaf,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (http::response::Parts, Bytes, Option<HeaderMap>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.cert.der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(vec![client.cert.der().clone()], key_der(client))
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::post(format!("https://localhost{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (parts, collected.to_bytes(), trailers)
}

/// An empty `HealthCheckRequest` in gRPC's length-prefixed framing: uncompressed, 0 bytes.
const EMPTY_MESSAGE: [u8; 5] = [0, 0, 0, 0, 0];

#[tokio::test]
async fn refusals_are_trailers_only_responses_on_the_wire() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let cart = pki.ca.svid(CART);
    let grpc = [("content-type", "application/grpc"), ("te", "trailers")];

    let (head, body, trailers) = raw_h2(
        addr,
        &pki,
        &cart,
        CHECK,
        &grpc,
        Bytes::from_static(&EMPTY_MESSAGE),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers["content-type"], "application/grpc");
    assert_eq!(head.headers["grpc-status"], "16");
    assert_eq!(head.headers["grpc-message"], "a bearer token is required");
    assert!(head.headers.get("www-authenticate").is_none());
    assert!(body.is_empty());
    assert!(trailers.is_none(), "{trailers:?}");

    // `application/grpc+proto` is gRPC too; a policy denial is PERMISSION_DENIED.
    let carol = bearer(&token("carol"));
    let (head, body, trailers) = raw_h2(
        addr,
        &pki,
        &cart,
        CHECK,
        &[
            ("content-type", "application/grpc+proto"),
            ("te", "trailers"),
            ("authorization", &carol),
        ],
        Bytes::from_static(&EMPTY_MESSAGE),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers["grpc-status"], "7");
    assert_eq!(head.headers["grpc-message"], "the request is not allowed");
    assert!(body.is_empty());
    assert!(trailers.is_none());

    // An admitted call is answered by the service: a message, then grpc-status 0 in the
    // trailers.
    let alice = bearer(&token("alice"));
    let (head, body, trailers) = raw_h2(
        addr,
        &pki,
        &cart,
        CHECK,
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("authorization", &alice),
        ],
        Bytes::from_static(&EMPTY_MESSAGE),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.headers.get("grpc-status").is_none());
    assert!(body.len() > EMPTY_MESSAGE.len());
    assert_eq!(trailers.unwrap()["grpc-status"], "0");
}

#[tokio::test]
async fn grpc_media_type_is_recognised_in_any_case() {
    // RFC 9110 §8.3.1: type and subtype are case-insensitive.
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let (head, body, trailers) = raw_h2(
        addr,
        &pki,
        &pki.ca.svid(CART),
        CHECK,
        &[
            ("content-type", "Application/gRPC+proto"),
            ("te", "trailers"),
        ],
        Bytes::from_static(&EMPTY_MESSAGE),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers["grpc-status"], "16");
    assert!(head.headers.get("www-authenticate").is_none());
    assert!(body.is_empty());
    assert!(trailers.is_none());
}

#[tokio::test]
async fn non_grpc_requests_to_the_same_server_get_http_refusals() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let cart = pki.ca.svid(CART);
    let (head, body, _) = raw_h2(
        addr,
        &pki,
        &cart,
        CHECK,
        &[("content-type", "application/json")],
        Bytes::from_static(b"{}"),
    )
    .await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED);
    assert_eq!(head.headers["content-type"], "application/problem+json");
    assert_eq!(head.headers["www-authenticate"], "Bearer realm=\"health\"");
    assert!(head.headers.get("grpc-status").is_none());
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 401);
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    GoodCheck,
    GoodWatch,
    Expired,
    Forged,
    Denied,
    Missing,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_calls_each_get_the_right_answer() {
    let pki = Pki::new();
    let addr = serve(&pki, token_guard()).await;
    let cart = pki.ca.svid(CART);
    let mut channels = Vec::new();
    for _ in 0..3 {
        channels.push(channel(addr, &pki.ca, &cart).await);
    }
    let good = bearer(&token("alice"));
    let expired = bearer(&expired("alice"));
    let forged = bearer(&forged("alice"));
    let bob = bearer(&token("bob"));
    let kinds = [
        Kind::GoodCheck,
        Kind::GoodWatch,
        Kind::Expired,
        Kind::Forged,
        Kind::Denied,
        Kind::Missing,
    ];
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..204 {
        let kind = kinds[i % kinds.len()];
        let channel = channels[i % channels.len()].clone();
        let (good, expired, forged, bob) =
            (good.clone(), expired.clone(), forged.clone(), bob.clone());
        calls.spawn(async move {
            let result = match kind {
                Kind::GoodCheck => check(&channel, Some(&good)).await,
                Kind::GoodWatch => watch(&channel, Some(&good)).await,
                Kind::Expired => check(&channel, Some(&expired)).await,
                Kind::Forged => watch(&channel, Some(&forged)).await,
                Kind::Denied => watch(&channel, Some(&bob)).await,
                Kind::Missing => check(&channel, None).await,
            };
            (i, kind, result)
        });
    }
    let mut answered = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, kind, result) = joined.unwrap();
        let got = result.map_err(|status| (status.code(), status.message().to_owned()));
        let expected = match kind {
            Kind::GoodCheck | Kind::GoodWatch => Ok(WireStatus::Serving),
            Kind::Expired => Err((Code::Unauthenticated, "the token has expired".to_owned())),
            Kind::Forged => Err((Code::Unauthenticated, "the token is invalid".to_owned())),
            Kind::Denied => Err((
                Code::PermissionDenied,
                "the request is not allowed".to_owned(),
            )),
            Kind::Missing => Err((
                Code::Unauthenticated,
                "a bearer token is required".to_owned(),
            )),
        };
        assert_eq!(got, expected, "call {i} ({kind:?})");
        answered += 1;
    }
    assert_eq!(answered, 204);
}

#[tokio::test]
async fn health_reporter_status_reaches_an_admitted_client() {
    // The guard forwards admitted calls untouched: a status change by the service shows.
    let pki = Pki::new();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("shop", ServingStatus::NotServing)
        .await;
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let incoming = TlsIncoming::new(tcp, pki.server_config());
    let addr = incoming.local_addr().unwrap();
    let guard = workload_guard();
    tokio::spawn(async move {
        Server::builder()
            .layer(guard)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    let channel = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "shop".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status(), WireStatus::NotServing);
}

#[tokio::test]
async fn guard_reads_the_peer_from_tonics_own_tls_too() {
    // tonic's ServerTlsConfig instead of TlsIncoming: the same TlsConnectInfo reaches the
    // guard, and the workload is decided by its SPIFFE ID.
    let pki = Pki::new();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(Identity::from_pem(
            pki.server.cert_pem(),
            pki.server.key_pem(),
        ))
        .client_ca_root(Certificate::from_pem(pki.ca.pem()));
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(tcp);
    let guard = workload_guard();
    tokio::spawn(async move {
        Server::builder()
            .tls_config(tls)
            .unwrap()
            .layer(guard)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    let cart = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    assert_eq!(check(&cart, None).await.unwrap(), WireStatus::Serving);
    let ads = channel(addr, &pki.ca, &pki.ca.svid(ADS)).await;
    assert_refused(
        check(&ads, None).await,
        Code::PermissionDenied,
        "the request is not allowed",
    );
}

/// What a tonic interceptor behind the guard saw in the request extensions of each call.
type Seen = Arc<std::sync::Mutex<Vec<String>>>;

/// An interceptor recording the caller and the decision the guard left for the handler;
/// a call without them is refused, so a guard that forgot them cannot pass.
fn recorder(seen: Seen) -> impl tonic::service::Interceptor + Clone {
    move |request: tonic::Request<()>| {
        let extensions = request.extensions();
        let caller = extensions
            .get::<meshguard::caller::Caller>()
            .ok_or_else(|| Status::internal("no Caller"))?;
        let decision = extensions
            .get::<meshguard::policy::Decision>()
            .ok_or_else(|| Status::internal("no Decision"))?;
        let peer = extensions
            .get::<PeerIdentity>()
            .ok_or_else(|| Status::internal("no PeerIdentity"))?;
        let user = extensions
            .get::<meshguard::token::VerifiedToken>()
            .and_then(|token| token.subject())
            .unwrap_or("-");
        let policies: Vec<String> = decision
            .policy_ids()
            .iter()
            .map(ToString::to_string)
            .collect();
        seen.lock().unwrap().push(format!(
            "user={user} caller.user={} caller.workload={} peer={} allow={} policies={}",
            caller
                .user()
                .and_then(|token| token.subject())
                .unwrap_or("-"),
            caller
                .workload()
                .and_then(|workload| workload.spiffe_id())
                .unwrap_or("-"),
            peer.spiffe_id().map_or("-", |id| id.as_str()),
            decision.is_allow(),
            policies.join(","),
        ));
        Ok(request)
    }
}

#[tokio::test]
async fn admitted_calls_carry_the_caller_and_decision_to_the_tonic_service() {
    let pki = Pki::new();
    let seen = Seen::default();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let service =
        tonic::service::interceptor::InterceptedService::new(health, recorder(seen.clone()));
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let incoming = TlsIncoming::new(tcp, pki.server_config());
    let addr = incoming.local_addr().unwrap();
    let guard = token_guard();
    tokio::spawn(async move {
        Server::builder()
            .layer(guard)
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    let channel = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    assert_eq!(
        check(&channel, Some(&bearer(&token("alice"))))
            .await
            .unwrap(),
        WireStatus::Serving
    );
    // A refused call never reaches the service.
    assert_refused(
        watch(&channel, Some(&bearer(&token("bob")))).await,
        Code::PermissionDenied,
        "the request is not allowed",
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [format!(
            "user=alice caller.user=alice caller.workload={CART} peer={CART} allow=true \
             policies=alice-health"
        )]
    );
}

#[tokio::test]
async fn separate_layers_stack_on_a_tonic_server() {
    // The three layers one by one, outermost first, instead of the Guard builder: each
    // reads the identities the ones in front of it left in the extensions.
    let pki = Pki::new();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let incoming = TlsIncoming::new(tcp, pki.server_config());
    let addr = incoming.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .layer(PeerIdentityLayer::new().authorize(Authorizer::id(CART.parse().unwrap())))
            .layer(meshguard::token::AuthenticationLayer::new(verifier()))
            .layer(meshguard::policy::AuthorizationLayer::new(
                engine(),
                HttpMapping::grpc("health"),
            ))
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    let cart = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    assert_eq!(
        check(&cart, Some(&bearer(&token("alice")))).await.unwrap(),
        WireStatus::Serving
    );
    assert_refused(
        watch(&cart, Some(&bearer(&token("bob")))).await,
        Code::PermissionDenied,
        "the request is not allowed",
    );
    assert_refused(
        check(&cart, Some(&bearer(&expired("alice")))).await,
        Code::Unauthenticated,
        "the token has expired",
    );
    assert_refused(
        check(&cart, None).await,
        Code::Unauthenticated,
        "a bearer token is required",
    );
    let ads = channel(addr, &pki.ca, &pki.ca.svid(ADS)).await;
    assert_refused(
        check(&ads, Some(&bearer(&token("alice")))).await,
        Code::PermissionDenied,
        "the calling workload is not allowed",
    );
}

/// The guard waiting for a remote key source inside tonic: a token signed with a key the
/// issuer published after start-up is verified once the JWKS is fetched again.
#[cfg(feature = "remote-jwks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_signing_key_is_fetched_while_the_calls_wait() {
    use meshguard::token::remote::RemoteJwks;
    use remote_support::{AUDIENCE, JwksServer, TestKey, jwks};

    const ISS: &str = "https://idp.test";
    let old = TestKey::es256("2024-01");
    let server = JwksServer::start(jwks(&[&old])).await;
    let verifier = Verifier::builder()
        .issuer(Issuer::remote(ISS, RemoteJwks::url(server.jwks_url())).audience(AUDIENCE))
        .build_async()
        .await
        .unwrap();
    let pki = Pki::new();
    let guard = GuardLayer::builder()
        .peer(PeerIdentityLayer::new())
        .tokens(verifier)
        .policies(engine(), HttpMapping::grpc("health"))
        .build()
        .unwrap();
    let addr = serve(&pki, guard).await;
    let channel = channel(addr, &pki.ca, &pki.ca.svid(CART)).await;
    assert_eq!(
        check(&channel, Some(&bearer(&old.token(ISS))))
            .await
            .unwrap(),
        WireStatus::Serving
    );
    assert_eq!(server.jwks_requests(), 1);

    let new = TestKey::es256("2024-02");
    server.set_jwks(jwks(&[&old, &new]));
    let fresh = bearer(&new.token(ISS));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (channel, fresh) = (channel.clone(), fresh.clone());
        calls.spawn(async move { check(&channel, Some(&fresh)).await });
    }
    while let Some(joined) = calls.join_next().await {
        assert_eq!(joined.unwrap().unwrap(), WireStatus::Serving);
    }
    assert_eq!(server.jwks_requests(), 2);

    // A key nobody published stays unknown: UNAUTHENTICATED, after at most one more fetch.
    let stranger = TestKey::es256("stranger");
    assert_refused(
        watch(&channel, Some(&bearer(&stranger.token(ISS)))).await,
        Code::Unauthenticated,
        "the token is invalid",
    );
}

#[tokio::test]
async fn without_tls_there_is_no_workload_identity_but_tokens_still_work() {
    let channel = serve_plain(workload_guard()).await;
    assert_refused(
        check(&channel, None).await,
        Code::Unauthenticated,
        "a client certificate is required",
    );

    let tokens_only = GuardLayer::builder()
        .tokens(verifier())
        .policies(engine(), HttpMapping::grpc("health"))
        .build()
        .unwrap();
    let channel = serve_plain(tokens_only).await;
    assert_eq!(
        check(&channel, Some(&bearer(&token("alice"))))
            .await
            .unwrap(),
        WireStatus::Serving
    );
    assert_refused(
        watch(&channel, Some(&bearer(&token("bob")))).await,
        Code::PermissionDenied,
        "the request is not allowed",
    );
    // A certificate-bound token needs the certificate it is bound to.
    let bound = token_with(
        SECRET,
        "alice",
        300,
        serde_json::json!({"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}),
    );
    assert_refused(
        check(&channel, Some(&bearer(&bound))).await,
        Code::Unauthenticated,
        "the token is not bound to the client certificate",
    );
}
