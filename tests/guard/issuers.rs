//! A guard over two token issuers, in front of real axum and tonic servers on 127.0.0.1:
//! the second issuer's `sub: alice` is never the first one's `User::"alice"`, policies read
//! `context.iss`, and a guard whose issuers would share principals does not build. Each
//! issuer signs with its own HMAC secret, minted here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::tonic_support;

use std::net::SocketAddr;
use tonic_support::serve_plain;

use axum::Router;
use axum::routing::get;
use http::header::AUTHORIZATION;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::caller::Caller;
use meshguard::guard::{GuardBuilderError, GuardLayer};
use meshguard::policy::{
    AuthorizationLayer, HttpMapping, IssuerNamespace, IssuerNamespaceError, PolicyEngine,
    PolicySource, PrincipalMapping,
};
use meshguard::token::AuthenticationLayer;
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;

const COMPANY: &str = "https://login.example.com";
const PARTNER: &str = "https://idp.partner.example";

/// Only the company's alice reads orders; anyone the partner vouches for reads the audit
/// log; on gRPC, only the company's alice checks health.
const POLICIES: &str = r#"
@id("company-alice")
permit(principal == User::"alice", action == Action::"GET /orders/{id}", resource);

@id("partner-audit")
permit(principal, action == Action::"GET /audit", resource)
when { context has iss && context.iss == "https://idp.partner.example" };

@id("company-alice-health")
permit(principal == User::"alice", action == Action::"/grpc.health.v1.Health/Check", resource);
"#;

/// Two issuers with their own secrets, minted per test run.
struct Issuers {
    company: Vec<u8>,
    partner: Vec<u8>,
}

impl Issuers {
    fn new() -> Self {
        let secret = || {
            let mut bytes = vec![0; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
            bytes
        };
        Self {
            company: secret(),
            partner: secret(),
        }
    }

    fn verifier(&self) -> Verifier {
        let issuer = |iss: &str, secret: &[u8]| {
            Issuer::new(iss, KeySet::hmac_secret("k1", secret).unwrap()).audience("orders")
        };
        Verifier::builder()
            .issuer(issuer(COMPANY, &self.company))
            .issuer(issuer(PARTNER, &self.partner))
            .build()
            .unwrap()
    }

    /// A token of `iss` for `sub`, signed with that issuer's secret.
    fn token(&self, iss: &str, sub: &str) -> String {
        let secret = if iss == COMPANY {
            &self.company
        } else {
            &self.partner
        };
        TokenSigner::new(Algorithm::HS256, secret)
            .unwrap()
            .with_kid("k1")
            .sign(&json!({"iss": iss, "sub": sub, "aud": "orders", "exp": 4_102_444_800_i64}))
            .unwrap()
    }
}

fn engine(mapping: PrincipalMapping) -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(POLICIES))
        .principal_mapping(mapping)
        .build()
        .unwrap()
}

/// The company keeps `User::"<sub>"`; the partner's users are `PartnerUser::"<sub>"`.
fn namespaced() -> PrincipalMapping {
    PrincipalMapping::new()
        .issuer(COMPANY, IssuerNamespace::new())
        .issuer(PARTNER, IssuerNamespace::new().user_type("PartnerUser"))
}

fn guard(issuers: &Issuers, mapping: HttpMapping) -> GuardLayer {
    GuardLayer::builder()
        .tokens(issuers.verifier())
        .policies(engine(namespaced()), mapping)
        .build()
        .unwrap()
}

async fn who(caller: Caller) -> String {
    let token = caller.user().unwrap();
    format!(
        "{} of {}",
        token.subject().unwrap(),
        token.issuer().unwrap()
    )
}

fn app() -> Router {
    Router::new()
        .route("/orders/{id}", get(who))
        .route("/audit", get(who))
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// `GET path` with a bearer token over a fresh HTTP/1.1 connection: status and body.
async fn get_as(addr: SocketAddr, path: &str, token: &str) -> (StatusCode, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get(path)
        .header("host", "localhost")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_second_issuers_alice_is_not_the_first_ones() {
    let issuers = Issuers::new();
    let addr = serve(app().layer(guard(&issuers, HttpMapping::conventions("orders")))).await;
    let company = get_as(addr, "/orders/1", &issuers.token(COMPANY, "alice")).await;
    assert_eq!(company, (StatusCode::OK, format!("alice of {COMPANY}")));
    let partner = get_as(addr, "/orders/1", &issuers.token(PARTNER, "alice")).await;
    assert_eq!(partner.0, StatusCode::FORBIDDEN, "{partner:?}");
}

#[tokio::test]
async fn policies_read_the_issuer_from_the_context() {
    let issuers = Issuers::new();
    let addr = serve(app().layer(guard(&issuers, HttpMapping::conventions("orders")))).await;
    let partner = get_as(addr, "/audit", &issuers.token(PARTNER, "auditor")).await;
    assert_eq!(partner, (StatusCode::OK, format!("auditor of {PARTNER}")));
    let company = get_as(addr, "/audit", &issuers.token(COMPANY, "alice")).await;
    assert_eq!(company.0, StatusCode::FORBIDDEN, "{company:?}");
}

#[test]
fn a_guard_whose_issuers_would_share_principals_does_not_build() {
    let issuers = Issuers::new();
    let build = |mapping: PrincipalMapping| {
        GuardLayer::builder()
            .tokens(issuers.verifier())
            .policies(engine(mapping), HttpMapping::conventions("orders"))
            .build()
            .unwrap_err()
    };
    let shared = build(PrincipalMapping::new());
    assert_eq!(
        shared,
        GuardBuilderError::Principals(IssuerNamespaceError::Shared {
            first: COMPANY.to_owned(),
            second: PARTNER.to_owned(),
        })
    );
    let message = shared.to_string();
    assert!(
        message.contains(COMPANY) && message.contains(PARTNER),
        "{message}"
    );
    assert_eq!(
        build(PrincipalMapping::new().issuer(PARTNER, IssuerNamespace::new())),
        GuardBuilderError::Principals(IssuerNamespaceError::Unmapped {
            issuer: COMPANY.to_owned()
        })
    );
}

#[tokio::test]
async fn hand_stacked_layers_over_two_issuers_deny_without_namespaces() {
    // No guard builder to refuse this configuration: the engine itself refuses to map
    // tokens of a multi-issuer verifier without per-issuer namespaces.
    let issuers = Issuers::new();
    let app = app()
        .layer(AuthorizationLayer::new(
            engine(PrincipalMapping::new()),
            HttpMapping::conventions("orders"),
        ))
        .layer(AuthenticationLayer::new(issuers.verifier()));
    let addr = serve(app).await;
    for iss in [COMPANY, PARTNER] {
        let answer = get_as(addr, "/orders/1", &issuers.token(iss, "alice")).await;
        assert_eq!(answer.0, StatusCode::FORBIDDEN, "{iss}: {answer:?}");
    }
}

async fn check(channel: &Channel, token: &str) -> Result<WireStatus, Status> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let response = HealthClient::new(channel.clone()).check(request).await?;
    Ok(response.into_inner().status())
}

#[tokio::test]
async fn over_grpc_the_second_issuers_alice_is_permission_denied() {
    let issuers = Issuers::new();
    let channel = serve_plain(guard(&issuers, HttpMapping::grpc("health"))).await;
    assert_eq!(
        check(&channel, &issuers.token(COMPANY, "alice"))
            .await
            .unwrap(),
        WireStatus::Serving
    );
    let refused = check(&channel, &issuers.token(PARTNER, "alice"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
}
