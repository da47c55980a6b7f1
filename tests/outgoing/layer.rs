//! The layer under real clients: tonic's generated client on a `Channel` calling a real
//! tonic server that verifies the token, and hyper-util's client with absolute URIs; calls
//! that cannot get credentials, or go elsewhere than the configured origin, never reach a
//! server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::any;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshguard::outgoing::{Credentials, OutgoingCredentialsLayer, OutgoingError};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceExt as _;
use tower_layer::Layer as _;

use crate::client_credentials::now;
use crate::endpoint::{Answer, Endpoint};
use crate::remote_support::ManualClock;
use crate::{credentials, verifier};

/// Serves 200 on every path, keeping the last `Authorization` in `seen`; the base URL.
pub(crate) async fn serve_echo(seen: Arc<Mutex<Option<String>>>) -> String {
    let router = Router::new().fallback(any(move |headers: HeaderMap| {
        let seen = Arc::clone(&seen);
        async move {
            *seen.lock().unwrap() = headers
                .get("authorization")
                .map(|value| value.to_str().unwrap().to_owned());
            "ok"
        }
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// The health service behind an interceptor that verifies the bearer token with
/// meshguard's verifier, counting the calls that reached it; a channel to it.
async fn serve_health(calls: Arc<AtomicUsize>) -> (Channel, SocketAddr) {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let verifier = verifier();
    let checked = tonic::service::interceptor::InterceptedService::new(
        health,
        move |request: tonic::Request<()>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let token = request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .ok_or_else(|| tonic::Status::unauthenticated("no bearer token"))?;
            verifier
                .verify(token)
                .map_err(|e| tonic::Status::unauthenticated(e.reason()))?;
            Ok(request)
        },
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(tcp);
    tokio::spawn(async move {
        Server::builder()
            .add_service(checked)
            .serve_with_incoming(incoming)
            .await
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (channel, addr)
}

#[tokio::test]
async fn tonic_calls_carry_a_token_the_server_verifies() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (channel, addr) = serve_health(Arc::clone(&calls)).await;
    let layer = OutgoingCredentialsLayer::new(
        Credentials::client_credentials(source.clone()),
        &format!("http://{addr}"),
    )
    .unwrap()
    .trust_inner_origin();
    let mut client = HealthClient::new(layer.layer(channel.clone()));
    for _ in 0..20 {
        client.check(HealthCheckRequest::default()).await.unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 20);
    assert_eq!(endpoint.posts(), 1);
    // Without the layer the server refuses: its check is real.
    let bare = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(bare.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn a_tonic_call_without_credentials_fails_and_never_reaches_the_server() {
    let clock = ManualClock::at(now());
    let endpoint =
        Endpoint::start(Answer::status(400, r#"{"error":"invalid_client"}"#), &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (channel, addr) = serve_health(Arc::clone(&calls)).await;
    let layer = OutgoingCredentialsLayer::new(
        Credentials::client_credentials(source),
        &format!("http://{addr}"),
    )
    .unwrap()
    .trust_inner_origin();
    let status = HealthClient::new(layer.layer(channel))
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    // tonic reports the layer's error as `Unknown`, its message the error's.
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    assert!(status.message().contains("invalid_client"), "{status:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_path_only_request_is_refused_unless_the_inner_origin_is_trusted() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (channel, addr) = serve_health(Arc::clone(&calls)).await;
    // The channel, not the layer, decides where tonic's path-only requests go.
    let layer = OutgoingCredentialsLayer::new(
        Credentials::client_credentials(source),
        &format!("http://{addr}"),
    )
    .unwrap();
    let status = HealthClient::new(layer.layer(channel))
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    assert!(
        status
            .message()
            .contains(&OutgoingError::Destination.to_string()),
        "{status:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(endpoint.posts(), 0);
}

type HyperClient = Client<HttpConnector, Empty<Bytes>>;

fn hyper_client() -> HyperClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(url: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(url).body(Empty::new()).unwrap()
}

#[tokio::test]
async fn hyper_requests_go_only_to_the_configured_origin() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let seen = Arc::new(Mutex::new(None));
    let base = serve_echo(Arc::clone(&seen)).await;
    let other_seen = Arc::new(Mutex::new(None));
    let other = serve_echo(Arc::clone(&other_seen)).await;
    let layer =
        OutgoingCredentialsLayer::new(Credentials::client_credentials(source), &base).unwrap();
    let client = layer.layer(hyper_client());

    let response = client
        .clone()
        .oneshot(get(&format!("{base}charges")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    let sent = seen.lock().unwrap().clone().unwrap();
    assert!(
        verifier()
            .verify(sent.strip_prefix("Bearer ").unwrap())
            .is_ok()
    );

    // Another port on the same host is another origin: refused before anything is sent.
    let error = client
        .oneshot(get(&format!("{other}charges")))
        .await
        .unwrap_err();
    let error = error.downcast::<OutgoingError>().unwrap();
    assert_eq!(error.reason(), "destination");
    assert_eq!(*other_seen.lock().unwrap(), None);
}
