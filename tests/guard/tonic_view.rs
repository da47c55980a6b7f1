//! Issue 10's findings over a real tonic server and client (h2c on 127.0.0.1): tokens bound
//! by a confirmation method meshguard does not check are refused, the client address comes
//! from a trusted proxy only, and a gRPC call keeps its gRPC-shaped answers over HTTP/2.
//! tests/guard/axum_router.rs, tests/guard/request_view.rs and tests/guard/client_ip.rs hold
//! the same classes over axum.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::tonic_support;

use meshguard::guard::GuardLayer;
use meshguard::peer::{Authorizer, ForwardedAddress, PeerIdentityLayer, XfccPolicy};
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_support::serve_plain;

const SECRET: &[u8] = b"guard-tonic-view-test-secret-0123456789";
const ISS: &str = "https://idp.example";

/// Alice may check health from 203.0.113.0/24 only; anyone else not at all.
const POLICIES: &str = r#"
@id("alice-from-the-office")
permit(principal == User::"alice", action == Action::"/grpc.health.v1.Health/Check", resource)
when { context has client_ip && context.client_ip.isInRange(ip("203.0.113.0/24")) };
"#;

fn token(extra: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({"iss": ISS, "aud": "health", "sub": "alice", "exp": now + 300});
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&claims)
        .unwrap()
}

fn guard(peer: PeerIdentityLayer) -> GuardLayer {
    let verifier = Verifier::builder()
        .issuer(Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap()).audience("health"))
        .build()
        .unwrap();
    let engine = PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap();
    GuardLayer::builder()
        .peer(peer)
        .tokens(verifier)
        .policies(engine, HttpMapping::grpc("health"))
        .build()
        .unwrap()
}

async fn check(channel: &Channel, token: &str, forwarded_for: Option<&str>) -> Result<(), Code> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", bearer);
    if let Some(address) = forwarded_for {
        request
            .metadata_mut()
            .insert("x-forwarded-for", address.parse().unwrap());
    }
    HealthClient::new(channel.clone())
        .check(request)
        .await
        .map(|_| ())
        .map_err(|status| status.code())
}

/// A loopback sidecar trusted to report the client in `X-Forwarded-For`.
fn behind_trusted_proxy() -> PeerIdentityLayer {
    PeerIdentityLayer::new()
        .optional()
        .xfcc(XfccPolicy::builder().trust_loopback().build())
        .client_address(ForwardedAddress::x_forwarded_for())
}

#[tokio::test]
async fn tokens_bound_by_an_unchecked_method_are_unauthenticated() {
    let channel = serve_plain(guard(behind_trusted_proxy())).await;
    let office = Some("203.0.113.7");
    assert_eq!(check(&channel, &token(json!({})), office).await, Ok(()));
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}),
    ] {
        let bound = token(json!({ "cnf": cnf }));
        assert_eq!(
            check(&channel, &bound, office).await,
            Err(Code::Unauthenticated),
            "{cnf}"
        );
    }
}

#[tokio::test]
async fn the_client_address_comes_from_a_trusted_proxy_only() {
    let alice = token(json!({}));
    let trusted = serve_plain(guard(behind_trusted_proxy())).await;
    assert_eq!(check(&trusted, &alice, Some("203.0.113.7")).await, Ok(()));
    assert_eq!(
        check(&trusted, &alice, Some("198.51.100.7")).await,
        Err(Code::PermissionDenied)
    );
    // No header: the proxy named no client, so there is no address to be in the range.
    assert_eq!(
        check(&trusted, &alice, None).await,
        Err(Code::PermissionDenied)
    );
    assert_eq!(
        check(&trusted, &alice, Some("not-an-address")).await,
        Err(Code::InvalidArgument)
    );

    // The direct peer (127.0.0.1) is not the trusted proxy here: its header is ignored and
    // the client is the socket peer, outside the office range.
    let untrusted = PeerIdentityLayer::new()
        .optional()
        .xfcc(
            XfccPolicy::builder()
                .trust_proxies(Authorizer::id(
                    "spiffe://example.org/ns/mesh/sa/sidecar".parse().unwrap(),
                ))
                .build(),
        )
        .client_address(ForwardedAddress::x_forwarded_for());
    let direct = serve_plain(guard(untrusted)).await;
    assert_eq!(
        check(&direct, &alice, Some("203.0.113.7")).await,
        Err(Code::PermissionDenied)
    );
}
