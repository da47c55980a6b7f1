//! RFC 8693 token exchange against the test endpoint: the request, the cache per subject
//! token and its bound, and no token for an expired subject.

use std::sync::{Arc, Mutex};

use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, HeaderValue};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshguard::outgoing::{Credentials, InboundBearer, OutgoingCredentialsLayer};
use serde_json::json;
use tower::ServiceExt as _;
use tower_layer::Layer as _;

use crate::client_credentials::now;
use crate::endpoint::{Answer, Endpoint};
use crate::layer::serve_echo;
use crate::remote_support::ManualClock;
use crate::{exchange, jwt, verifier};

/// The inbound bearer of a request from `sub` whose token expires `lifetime` seconds from
/// now, as the guard would leave it; and the token.
fn inbound(sub: &str, lifetime: i64) -> (InboundBearer, String) {
    let token = jwt(&json!({ "sub": sub, "exp": now() + lifetime }));
    let mut extensions = Extensions::new();
    extensions.insert(verifier().verify(&token).unwrap());
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    (
        InboundBearer::from_parts(&headers, &extensions).unwrap(),
        token,
    )
}

#[tokio::test]
async fn the_subject_token_is_exchanged_and_the_answer_kept_per_subject() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let exchanger = exchange(endpoint.url(), &clock)
        .scope("pay")
        .build()
        .unwrap();
    let (alice, alice_token) = inbound("alice", 600);
    let header = exchanger.authorization_header(&alice).await.unwrap();
    assert_ne!(header.to_str().unwrap(), format!("Bearer {alice_token}"));
    let (form, authorization) = endpoint.last_request();
    assert_eq!(
        form,
        format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&scope=pay\
             &audience=payments&subject_token={alice_token}\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &client_id=orders&client_secret=orders-secret"
        )
    );
    assert_eq!(authorization, None);
    assert_eq!(
        exchanger.authorization_header(&alice).await.unwrap(),
        header
    );
    assert_eq!(endpoint.posts(), 1);
    let (bob, _) = inbound("bob", 600);
    assert_ne!(exchanger.authorization_header(&bob).await.unwrap(), header);
    assert_eq!(endpoint.posts(), 2);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let exchanger = exchange(endpoint.url(), &clock)
        .cache_capacity(1)
        .build()
        .unwrap();
    let (alice, _) = inbound("alice", 600);
    let (bob, _) = inbound("bob", 600);
    for subject in [&alice, &bob, &alice] {
        exchanger.authorization_header(subject).await.unwrap();
    }
    assert_eq!(endpoint.posts(), 3);
}

#[tokio::test]
async fn nothing_is_used_past_the_subjects_expiry() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let exchanger = exchange(endpoint.url(), &clock).build().unwrap();
    let (alice, _) = inbound("alice", 60);
    exchanger.authorization_header(&alice).await.unwrap();
    // The exchanged token lives 300 s, the subject 60 s: it ends with the subject.
    clock.advance(61);
    let error = exchanger.authorization_header(&alice).await.unwrap_err();
    assert_eq!(error.reason(), "inbound_expired");
    assert_eq!(endpoint.posts(), 1);
}

#[tokio::test]
async fn a_token_ending_with_its_subject_is_not_renewed_on_every_request() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let exchanger = exchange(endpoint.url(), &clock).build().unwrap();
    // The answer would live 300 s (a 30 s renewal margin); the subject has 30 s left, so the
    // kept token ends with the subject and no renewal could give it longer.
    let (alice, _) = inbound("alice", 30);
    let first = exchanger.authorization_header(&alice).await.unwrap();
    for _ in 0..20 {
        assert_eq!(exchanger.authorization_header(&alice).await.unwrap(), first);
        // A renewal would have been started (and counted) inside the call.
        assert_eq!(exchanger.fetches(), 1);
    }
    assert_eq!(endpoint.posts(), 1);
}

#[tokio::test]
async fn an_answer_of_another_token_type_is_refused() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let exchanger = exchange(endpoint.url(), &clock)
        .requested_token_type("urn:ietf:params:oauth:token-type:jwt")
        .build()
        .unwrap();
    let (alice, _) = inbound("alice", 600);
    let error = exchanger.authorization_header(&alice).await.unwrap_err();
    assert_eq!(error.reason(), "invalid_token_response");
}

#[tokio::test]
async fn the_layer_exchanges_the_inbound_token_of_each_request() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let exchanger = exchange(endpoint.url(), &clock).build().unwrap();
    let seen = Arc::new(Mutex::new(None));
    let downstream = serve_echo(Arc::clone(&seen)).await;
    let client = OutgoingCredentialsLayer::new(Credentials::exchange(exchanger), &downstream)
        .unwrap()
        .layer(Client::builder(TokioExecutor::new()).build_http());
    let (alice, alice_token) = inbound("alice", 600);
    for _ in 0..3 {
        let mut request = http::Request::get(format!("{downstream}x"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        request.extensions_mut().insert(alice.clone());
        assert_eq!(client.clone().oneshot(request).await.unwrap().status(), 200);
    }
    let sent = seen.lock().unwrap().clone().unwrap();
    assert_ne!(sent, format!("Bearer {alice_token}"));
    let exchanged = verifier()
        .verify(sent.strip_prefix("Bearer ").unwrap())
        .unwrap();
    assert_eq!(exchanged.subject(), Some("orders"));
    assert_eq!(endpoint.posts(), 1);
}

#[tokio::test]
async fn an_actor_sends_this_services_own_token_beside_the_subject() {
    let clock = ManualClock::at(now());
    let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
    let actor = crate::credentials(endpoint.url(), &clock).build().unwrap();
    let own = actor.authorization_header().await.unwrap();
    let exchanger = exchange(endpoint.url(), &clock)
        .actor(actor.clone())
        .build()
        .unwrap();
    let (alice, _) = inbound("alice", 600);
    exchanger.authorization_header(&alice).await.unwrap();
    let (form, _) = endpoint.last_request();
    let own = own.to_str().unwrap().strip_prefix("Bearer ").unwrap();
    assert!(
        form.ends_with(&format!(
            "&actor_token={own}\
             &actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &client_id=orders&client_secret=orders-secret"
        )),
        "{form}"
    );
    // The actor's token came from its cache: one request for it, one exchange.
    assert_eq!(actor.fetches(), 1);
    assert_eq!(endpoint.posts(), 2);
}
