//! Client credentials against the test endpoint: the request sent, the token reused, one
//! request for many callers, renewal before expiry, and the plain function for reqwest.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use meshguard::outgoing::{ClientAuth, ClientCredentials};
use tokio::task::JoinSet;

use crate::endpoint::{Answer, Endpoint};
use crate::remote_support::ManualClock;
use crate::{credentials, eventually};

#[tokio::test]
async fn the_grant_and_basic_credentials_reach_the_endpoint() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let source = ClientCredentials::new(endpoint.url(), ClientAuth::basic("my client", "p:ss%"))
        .scope("pay")
        .scope("refund")
        .resource("https://payments.test")
        .audience("payments")
        .build()
        .unwrap();
    let header = source.authorization_header().await.unwrap();
    assert!(header.is_sensitive());
    assert!(header.to_str().unwrap().starts_with("Bearer ey"));
    let (form, authorization) = endpoint.last_request();
    assert_eq!(
        form,
        "grant_type=client_credentials&scope=pay+refund\
         &resource=https%3A%2F%2Fpayments.test&audience=payments"
    );
    let basic = authorization.unwrap();
    let pair = STANDARD
        .decode(basic.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(pair, b"my+client:p%3Ass%25");
}

#[tokio::test]
async fn client_secret_post_sends_the_secret_in_the_form_only() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let source = ClientCredentials::new(endpoint.url(), ClientAuth::post("orders", "s&cret"))
        .build()
        .unwrap();
    source.authorization_header().await.unwrap();
    let (form, authorization) = endpoint.last_request();
    assert_eq!(
        form,
        "grant_type=client_credentials&client_id=orders&client_secret=s%26cret"
    );
    assert_eq!(authorization, None);
}

#[tokio::test]
async fn concurrent_callers_share_exactly_one_request() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(Answer::Held { lifetime: 300 }, &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let mut callers = JoinSet::new();
    for _ in 0..64 {
        let source = source.clone();
        callers.spawn(async move { source.authorization_header().await });
    }
    eventually("the first request", || endpoint.posts() == 1).await;
    endpoint.open_gate();
    let mut headers = Vec::new();
    while let Some(joined) = callers.join_next().await {
        headers.push(joined.unwrap().unwrap());
    }
    assert_eq!(endpoint.posts(), 1);
    assert_eq!(source.fetches(), 1);
    assert!(headers.iter().all(|h| *h == headers[0]));
}

#[tokio::test]
async fn the_token_is_reused_then_renewed_before_it_expires() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(Answer::bearer(100), &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let first = source.authorization_header().await.unwrap();
    // Renewal starts in the last tenth of the life (10 s of 100).
    clock.advance(89);
    assert_eq!(source.authorization_header().await.unwrap(), first);
    assert_eq!(endpoint.posts(), 1);
    clock.advance(2);
    // In the window: the current token is still used while one renewal runs.
    assert_eq!(source.authorization_header().await.unwrap(), first);
    eventually("the renewal", || endpoint.posts() == 2).await;
    let mut renewed = first.clone();
    for _ in 0..2_000 {
        renewed = source.authorization_header().await.unwrap();
        if renewed != first {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_ne!(renewed, first);
    assert_eq!(endpoint.posts(), 2);
    // Never used past its expiry: at 100 s after the renewal a new token is fetched.
    clock.advance(200);
    let third = source.authorization_header().await.unwrap();
    assert_ne!(third, renewed);
    assert_eq!(endpoint.posts(), 3);
}

#[tokio::test]
async fn the_tokens_life_counts_from_when_it_was_asked_for() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(Answer::Held { lifetime: 100 }, &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let caller = tokio::spawn({
        let source = source.clone();
        async move { source.authorization_header().await }
    });
    eventually("the request", || endpoint.posts() == 1).await;
    // The answer arrives 60 s after the request was sent; its `expires_in` (100 s) ran
    // from about when it was sent.
    clock.advance(60);
    endpoint.open_gate();
    let first = caller.await.unwrap().unwrap();
    clock.advance(40);
    let second = source.authorization_header().await.unwrap();
    assert_ne!(second, first);
    assert_eq!(endpoint.posts(), 2);
}

#[tokio::test]
async fn a_failed_renewal_keeps_the_current_token_until_it_expires_then_fails() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(Answer::bearer(100), &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let first = source.authorization_header().await.unwrap();
    endpoint.set(Answer::status(503, ""));
    clock.advance(95);
    assert_eq!(source.authorization_header().await.unwrap(), first);
    eventually("the renewal", || {
        source.fetches() == 2 && endpoint.posts() == 2
    })
    .await;
    assert_eq!(source.authorization_header().await.unwrap(), first);
    clock.advance(5);
    // Expired and the endpoint failing: an error, never a stale or missing token.
    let error = source.authorization_header().await.unwrap_err();
    assert!(
        ["token_endpoint_unavailable", "backing_off"].contains(&error.reason()),
        "{error}"
    );
}

#[tokio::test]
async fn reqwest_gets_the_header_from_the_plain_function() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let url = crate::layer::serve_echo(Arc::clone(&seen)).await;
    let response = client()
        .get(&url)
        .header(
            http::header::AUTHORIZATION,
            source.authorization(&url).await.unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let sent = seen.lock().unwrap().clone().unwrap();
    assert!(
        crate::verifier()
            .verify(sent.strip_prefix("Bearer ").unwrap())
            .is_ok()
    );
    // Not to a plain-http host beyond loopback.
    let refused = source
        .authorization("http://payments.example/charges")
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), "destination");
    assert_eq!(endpoint.posts(), 1);
}

fn client() -> reqwest::Client {
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

/// The system clock's now, for tokens the test servers verify at the system clock.
pub(crate) fn now() -> i64 {
    use meshguard::token::{Clock as _, SystemClock};
    SystemClock.unix_seconds()
}
