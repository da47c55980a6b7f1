//! Public routes take no identity, yet an `x-forwarded-client-cert` header reaches their
//! handlers only from a trusted proxy, as on every other route.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;

use http::{Request, Response};
use meshguard::guard::GuardLayer;
use meshguard::peer::{MtlsConnectInfo, PeerIdentityLayer, XFCC_HEADER, XfccPolicy};
use tower::ServiceExt as _;
use tower_layer::Layer as _;

const XFCC: &str = "Hash=0123;URI=spiffe://example.org/ns/shop/sa/cart";

fn guard() -> GuardLayer {
    GuardLayer::builder()
        .peer(PeerIdentityLayer::new().xfcc(XfccPolicy::builder().trust_loopback().build()))
        .public("/health")
        .build()
        .unwrap()
}

/// What the handler of `/health` sees of the header, for a request from `remote`.
async fn seen_from(remote: Option<&str>) -> String {
    let handler = tower::service_fn(|request: Request<String>| async move {
        let seen = match request.headers().get(XFCC_HEADER) {
            Some(value) => value.to_str().unwrap().to_owned(),
            None => "(removed)".to_owned(),
        };
        Ok::<_, Infallible>(Response::new(seen))
    });
    let mut request = Request::get("/health")
        .header(XFCC_HEADER, XFCC)
        .body(String::new())
        .unwrap();
    if let Some(remote) = remote {
        let info = MtlsConnectInfo::new(remote.parse().unwrap(), None);
        request.extensions_mut().insert(info);
    }
    let response = guard().layer(handler).oneshot(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    response.into_body()
}

#[tokio::test]
async fn untrusted_forwarded_certificates_are_removed_on_public_routes() {
    assert_eq!(seen_from(Some("10.0.0.7:40000")).await, "(removed)");
    assert_eq!(seen_from(None).await, "(removed)");
}

#[tokio::test]
async fn a_trusted_proxy_header_reaches_public_handlers_unchanged() {
    assert_eq!(seen_from(Some("127.0.0.1:40000")).await, XFCC);
}
