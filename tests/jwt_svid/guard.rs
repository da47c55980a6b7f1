//! The guard taking the calling workload from a JWT-SVID, on a real axum server on
//! 127.0.0.1 with a real HTTP client: the policies decide by the workload, and neither a
//! JWT-SVID nor a user's access token can stand in for the other.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Extension, Router};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderName, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::caller::Caller;
use meshguard::guard::{GuardBuilderError, GuardLayer, RouteRule};
use meshguard::peer::{Authorizer, PeerIdentity, PeerIdentityLayer, XfccPolicy};
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
use meshguard::token::dpop::DpopVerifier;
use meshguard::token::jwt_svid::JwtSvidLayer;
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::authority::{Authority, NOW, verifier};

const ISS: &str = "https://idp.example";
const SECRET: &[u8] = b"jwt-svid-guard-test-user-secret-0123456789";

/// Orders (and the view of the peer) are for the orders workload only; the catalog for any
/// workload of example.org.
const POLICIES: &str = r#"
@id("orders-workload")
permit(principal == Service::"spiffe://example.org/orders", action == Action::"GET /orders", resource);

@id("peer-view")
permit(principal == Service::"spiffe://example.org/orders", action == Action::"GET /peer", resource);

@id("catalog-members")
permit(principal, action == Action::"GET /catalog", resource)
when { principal.trust_domain == "example.org" };
"#;

fn engine() -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap()
}

/// The handler answers with the workload the guard found.
fn app() -> Router {
    let workload = |caller: Option<Extension<Caller>>| async move {
        let caller = caller.map(|Extension(caller)| caller);
        let workload = caller.as_ref().and_then(|c| c.workload()?.spiffe_id());
        let user = caller.as_ref().and_then(|c| c.user()?.subject());
        format!("{} {}", workload.unwrap_or("-"), user.unwrap_or("-"))
    };
    Router::new()
        .route("/orders", get(workload))
        .route("/catalog", get(workload))
        .route("/health", get(|| async { "ok" }))
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: String,
}

async fn get_with(addr: SocketAddr, path: &str, headers: &[(HeaderName, String)]) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::get(path).header("host", "localhost");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        challenge,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn bearer(token: &str) -> Vec<(HeaderName, String)> {
    vec![(AUTHORIZATION, format!("Bearer {token}"))]
}

fn user_token(sub: &str) -> String {
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("u1")
        .sign(&json!({"iss": ISS, "sub": sub, "aud": "orders", "exp": 4_102_444_800_i64}))
        .unwrap()
}

fn user_verifier() -> Verifier {
    Verifier::builder()
        .issuer(Issuer::new(ISS, KeySet::hmac_secret("u1", SECRET).unwrap()).audience("orders"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_route_is_decided_by_the_workload_a_jwt_svid_names() {
    let example = Authority::new("example.org", "k1");
    let other = Authority::new("other.org", "k1");
    let layer = JwtSvidLayer::new(verifier(&[&example, &other]));
    let guard = GuardLayer::builder()
        .workload_tokens(layer)
        .policies(engine(), HttpMapping::conventions("orders"))
        .public("/health")
        .build()
        .unwrap();
    let addr = serve(app().layer(guard)).await;

    let orders = get_with(addr, "/orders", &bearer(&example.svid("/orders"))).await;
    assert_eq!(orders.status, StatusCode::OK);
    assert_eq!(orders.body, "spiffe://example.org/orders -");
    // Another workload of the same trust domain: verified, but the policy does not permit.
    let cart = get_with(addr, "/orders", &bearer(&example.svid("/cart"))).await;
    assert_eq!(cart.status, StatusCode::FORBIDDEN);
    let catalog = get_with(addr, "/catalog", &bearer(&example.svid("/cart"))).await;
    assert_eq!(catalog.status, StatusCode::OK);
    assert_eq!(catalog.body, "spiffe://example.org/cart -");
    // other.org's workloads verify with other.org's bundle, and are not example.org's.
    let theirs = get_with(addr, "/catalog", &bearer(&other.svid("/orders"))).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);

    // No token: 401 with a bare challenge; public routes need none.
    let none = get_with(addr, "/orders", &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(!none.challenge.unwrap().contains("error="));
    assert_eq!(get_with(addr, "/health", &[]).await.status, StatusCode::OK);

    // Refused tokens: 401 invalid_token.
    let mut refused = Vec::new();
    // Wrong trust domain: `sub` in other.org, signed by example.org's key under the same kid.
    let mut claims = example.claims("/orders");
    claims["sub"] = "spiffe://other.org/orders".into();
    refused.push(example.sign("ES256", &claims));
    // A trust domain without a bundle.
    claims["sub"] = "spiffe://stranger.org/orders".into();
    refused.push(example.sign("ES256", &claims));
    // HS256, EdDSA and `none`.
    let claims = example.claims("/orders");
    for alg in ["HS256", "EdDSA"] {
        refused.push(example.sign(alg, &claims));
    }
    refused.push(format!(
        "{}.",
        crate::support::signing_input(r#"{"alg":"none","kid":"k1"}"#, &claims.to_string())
    ));
    // Another audience, and an expired token.
    let mut elsewhere = example.claims("/orders");
    elsewhere["aud"] = "spiffe://example.org/payments-api".into();
    refused.push(example.sign("ES256", &elsewhere));
    let mut expired = example.claims("/orders");
    expired["exp"] = (NOW - 3600).into();
    refused.push(example.sign("ES256", &expired));
    for token in &refused {
        let answer = get_with(addr, "/orders", &bearer(token)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token}");
        assert!(
            answer
                .challenge
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
    }
    // Two Authorization headers: 400.
    let svid = example.svid("/orders");
    let twice = [bearer(&svid), bearer(&svid)].concat();
    assert_eq!(
        get_with(addr, "/orders", &twice).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn user_tokens_and_jwt_svids_cannot_stand_in_for_each_other() {
    let example = Authority::new("example.org", "k1");
    let svid_header = HeaderName::from_static("x-jwt-svid");
    // One `Authorization` header cannot carry both kinds: the guard refuses to be built.
    let shared = GuardLayer::builder()
        .tokens(user_verifier())
        .workload_tokens(JwtSvidLayer::new(verifier(&[&example])))
        .build()
        .unwrap_err();
    assert_eq!(shared, GuardBuilderError::SharedAuthorization);
    // DPoP tokens come in `Authorization` too.
    let dpop = DpopVerifier::builder(user_verifier())
        .public_origin("https://orders.example")
        .build()
        .unwrap();
    let shared = GuardLayer::builder()
        .dpop(dpop)
        .workload_tokens(JwtSvidLayer::new(verifier(&[&example])))
        .build()
        .unwrap_err();
    assert_eq!(shared, GuardBuilderError::SharedAuthorization);

    let layer = JwtSvidLayer::new(verifier(&[&example])).header(svid_header.clone());
    let guard = GuardLayer::builder()
        .tokens(user_verifier())
        .workload_tokens(layer)
        .route("/catalog", RouteRule::new().optional_token())
        .build()
        .unwrap();
    let addr = serve(app().layer(guard)).await;
    let svid = example.svid("/orders");
    let user = user_token("alice");

    // Each in its own header: the user, called through the workload.
    let both = [bearer(&user), vec![(svid_header.clone(), svid.clone())]].concat();
    let answer = get_with(addr, "/orders", &both).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "spiffe://example.org/orders alice");
    // The JWT-SVID as the user's token: not a token of the user issuer.
    let swapped = [bearer(&svid), vec![(svid_header.clone(), svid.clone())]].concat();
    assert_eq!(
        get_with(addr, "/orders", &swapped).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The user's token as the JWT-SVID: `sub` is no SPIFFE ID, the key no bundle's.
    let swapped = [bearer(&user), vec![(svid_header.clone(), user.clone())]].concat();
    assert_eq!(
        get_with(addr, "/orders", &swapped).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A user token whose `sub` is a SPIFFE ID is still no JWT-SVID.
    let spiffe_user = user_token("spiffe://example.org/orders");
    let swapped = [bearer(&user), vec![(svid_header.clone(), spiffe_user)]].concat();
    assert_eq!(
        get_with(addr, "/orders", &swapped).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The user alone, without the workload's JWT-SVID: refused on a required route,
    // passed on an optional-token one.
    let missing = get_with(addr, "/orders", &bearer(&user)).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    let optional = get_with(addr, "/catalog", &[]).await;
    assert_eq!(
        (optional.status, optional.body.as_str()),
        (StatusCode::OK, "- -")
    );
    // A malformed value in the JWT-SVID header is a bad request.
    let bad = [bearer(&user), vec![(svid_header, "two words".to_owned())]].concat();
    assert_eq!(
        get_with(addr, "/orders", &bad).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_jwt_svid_layer_alone_authorizes_workloads() {
    let example = Authority::new("example.org", "k1");
    let layer = JwtSvidLayer::new(verifier(&[&example])).authorize(Authorizer::id(
        "spiffe://example.org/orders".parse().unwrap(),
    ));
    let addr = serve(app().layer(layer)).await;
    let orders = get_with(addr, "/orders", &bearer(&example.svid("/orders"))).await;
    assert_eq!(orders.status, StatusCode::OK);
    assert_eq!(orders.body, "spiffe://example.org/orders -");
    let cart = get_with(addr, "/orders", &bearer(&example.svid("/cart"))).await;
    assert_eq!(cart.status, StatusCode::FORBIDDEN);
    assert!(cart.challenge.is_none());
    let none = get_with(addr, "/orders", &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
}

/// Behind a proxy the certificate the guard sees (here forwarded by a trusted loopback
/// proxy in `x-forwarded-client-cert`) is the proxy's; the JWT-SVID names the caller.
#[tokio::test]
async fn the_jwt_svid_not_the_proxys_certificate_is_the_calling_workload() {
    let example = Authority::new("example.org", "k1");
    let peer = PeerIdentityLayer::new().xfcc(XfccPolicy::builder().trust_loopback().build());
    let guard = GuardLayer::builder()
        .peer(peer)
        .workload_tokens(JwtSvidLayer::new(verifier(&[&example])))
        .policies(engine(), HttpMapping::conventions("orders"))
        .build()
        .unwrap();
    let app = app()
        .route(
            "/peer",
            get(|peer: Option<Extension<PeerIdentity>>| async move {
                let peer = peer.and_then(|Extension(p)| Some(p.spiffe_id()?.to_string()));
                peer.unwrap_or_default()
            }),
        )
        .layer(guard);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });

    let xfcc = (
        HeaderName::from_static("x-forwarded-client-cert"),
        format!(
            "Hash={};URI=spiffe://example.org/edge-proxy",
            "ab".repeat(32)
        ),
    );
    let as_orders = [bearer(&example.svid("/orders")), vec![xfcc.clone()]].concat();
    let answer = get_with(addr, "/orders", &as_orders).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "spiffe://example.org/orders -");
    // The proxy's identity stays in the request for whoever wants it.
    let answer = get_with(addr, "/peer", &as_orders).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "spiffe://example.org/edge-proxy");
    // The proxy alone, without a JWT-SVID: refused; as another workload: denied.
    let alone = get_with(addr, "/orders", std::slice::from_ref(&xfcc)).await;
    assert_eq!(alone.status, StatusCode::UNAUTHORIZED);
    let as_cart = [bearer(&example.svid("/cart")), vec![xfcc]].concat();
    assert_eq!(
        get_with(addr, "/orders", &as_cart).await.status,
        StatusCode::FORBIDDEN
    );
}
