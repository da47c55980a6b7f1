//! Forwarding the inbound bearer token: taken explicitly from a request meshguard admitted
//! (a real axum service behind `AuthenticationLayer`), carried in the outgoing request's
//! extensions to a real downstream server; never an unverified or DPoP-bound token.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::get as get_route;
use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, HeaderValue};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshguard::outgoing::{
    Credentials, InboundBearer, OutgoingCredentials, OutgoingCredentialsLayer, OutgoingError,
};
use meshguard::token::bearer::BearerExtractor;
use meshguard::token::{AuthenticationLayer, Issuer, KeySet, Verifier};
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tower_layer::Layer as _;

use crate::client_credentials::now;
use crate::layer::serve_echo;
use crate::{AUDIENCE, ISSUER, SECRET, jwt, verifier};

type Forwarding = OutgoingCredentials<Client<HttpConnector, Empty<Bytes>>>;

/// The front service: verifies the caller's token (from `Authorization` or the `session`
/// cookie) and calls `downstream` with it forwarded; answers 200 or the refusal's reason.
async fn serve_front(downstream: String) -> String {
    let client = OutgoingCredentialsLayer::new(Credentials::forward(), &downstream)
        .unwrap()
        .layer(Client::builder(TokioExecutor::new()).build_http());
    let app = Router::new()
        .route("/orders", get_route(front))
        .with_state((client, downstream))
        .layer(
            AuthenticationLayer::new(verifier())
                .extractor(BearerExtractor::new().cookie("session")),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/orders", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn front(
    State((client, downstream)): State<(Forwarding, String)>,
    inbound: Request,
) -> (StatusCode, String) {
    let bearer = match InboundBearer::from_request(&inbound) {
        Ok(bearer) => bearer,
        Err(refused) => return (StatusCode::CONFLICT, refused.reason().to_owned()),
    };
    let mut outgoing = http::Request::get(format!("{downstream}payments"))
        .body(Empty::new())
        .unwrap();
    outgoing.extensions_mut().insert(bearer);
    match client.oneshot(outgoing).await {
        Ok(response) => (StatusCode::OK, response.status().to_string()),
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()),
    }
}

fn user_token() -> String {
    jwt(&json!({ "sub": "alice", "exp": now() + 300 }))
}

async fn call(url: &str, header: (&str, String)) -> (u16, String) {
    let response = reqwest_client()
        .get(url)
        .header(header.0, header.1)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn reqwest_client() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_verified_bearer_token_is_forwarded_as_it_came() {
    let seen = Arc::new(Mutex::new(None));
    let front = serve_front(serve_echo(Arc::clone(&seen)).await).await;
    let token = user_token();
    let (status, body) = call(&front, ("authorization", format!("Bearer {token}"))).await;
    assert_eq!((status, body.as_str()), (200, "200 OK"));
    assert_eq!(
        seen.lock().unwrap().clone(),
        Some(format!("Bearer {token}"))
    );
}

#[tokio::test]
async fn a_token_verified_from_a_cookie_is_not_taken_from_authorization() {
    let seen = Arc::new(Mutex::new(None));
    let front = serve_front(serve_echo(Arc::clone(&seen)).await).await;
    let (status, body) = call(&front, ("cookie", format!("session={}", user_token()))).await;
    assert_eq!((status, body.as_str()), (409, "inbound_not_bearer"));
    assert_eq!(*seen.lock().unwrap(), None);
}

/// Extensions as the guard leaves them after verifying `token` with `verifier`.
fn verified(verifier: &Verifier, token: &str) -> Extensions {
    let mut extensions = Extensions::new();
    extensions.insert(verifier.verify(token).unwrap());
    extensions
}

fn authorization(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    headers
}

fn reason(headers: &HeaderMap, extensions: &Extensions) -> &'static str {
    InboundBearer::from_parts(headers, extensions)
        .map(|_| "ok")
        .unwrap_or_else(|e| e.reason())
}

#[test]
fn only_the_verified_bearer_token_is_taken() {
    let token = user_token();
    let other = jwt(&json!({ "sub": "mallory", "exp": now() + 300 }));
    let extensions = verified(&verifier(), &token);
    assert_eq!(
        reason(&authorization(&format!("Bearer {token}")), &extensions),
        "ok"
    );
    assert_eq!(
        reason(
            &authorization(&format!("Bearer {token}")),
            &Extensions::new()
        ),
        "inbound_not_verified"
    );
    assert_eq!(
        reason(&authorization(&format!("Bearer {other}")), &extensions),
        "inbound_not_bearer"
    );
    assert_eq!(reason(&HeaderMap::new(), &extensions), "inbound_not_bearer");
    let bearer =
        InboundBearer::from_parts(&authorization(&format!("Bearer {token}")), &extensions).unwrap();
    assert!(bearer.authorization().is_sensitive());
    assert!(!format!("{bearer:?}").contains(&token));
}

#[test]
fn dpop_bound_tokens_are_never_passed_on() {
    let token = user_token();
    let extensions = verified(&verifier(), &token);
    assert_eq!(
        reason(&authorization(&format!("DPoP {token}")), &extensions),
        "inbound_dpop_bound"
    );
    // A token bound to a DPoP key (`cnf.jkt`), even if it was let through as bearer.
    let lenient = Verifier::builder()
        .issuer(
            Issuer::new(ISSUER, KeySet::hmac_secret("k1", SECRET).unwrap())
                .audience(AUDIENCE)
                .allow_unverified_confirmation(),
        )
        .build()
        .unwrap();
    let bound = jwt(&json!({ "sub": "alice", "exp": now() + 300, "cnf": { "jkt": "abc" } }));
    assert_eq!(
        reason(
            &authorization(&format!("Bearer {bound}")),
            &verified(&lenient, &bound)
        ),
        "inbound_dpop_bound"
    );
}

#[tokio::test]
async fn a_forwarding_request_without_the_inbound_token_is_not_sent() {
    let seen = Arc::new(Mutex::new(None));
    let downstream = serve_echo(Arc::clone(&seen)).await;
    let client = OutgoingCredentialsLayer::new(Credentials::forward(), &downstream)
        .unwrap()
        .layer(Client::builder(TokioExecutor::new()).build_http());
    let request = http::Request::get(format!("{downstream}x"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let error = client.oneshot(request).await.unwrap_err();
    assert_eq!(
        error.downcast::<OutgoingError>().unwrap().reason(),
        "missing_inbound_token"
    );
    assert_eq!(*seen.lock().unwrap(), None);
}
