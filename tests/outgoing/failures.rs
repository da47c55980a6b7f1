//! Every way the token endpoint can fail, each failing the request for credentials with a
//! typed error: refusals, statuses, `Retry-After`, garbage, huge bodies, redirects, hangs,
//! DPoP tokens, and endpoints or destinations in the clear beyond loopback.

use std::time::Duration;

use meshguard::outgoing::{
    ClientAuth, ClientCredentials, Credentials, OutgoingCredentialsLayer, TokenExchange,
};

use crate::credentials;
use crate::endpoint::{Answer, Endpoint};
use crate::remote_support::ManualClock;

async fn reason_for(answer: Answer) -> (&'static str, usize) {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(answer, &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let reason = source.authorization_header().await.unwrap_err().reason();
    (reason, endpoint.posts())
}

#[tokio::test]
async fn refusals_carry_the_endpoints_error_code() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(
        Answer::status(
            401,
            r#"{"error":"invalid_client","error_description":"bad secret"}"#,
        ),
        &clock,
    )
    .await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let error = source.authorization_header().await.unwrap_err();
    assert_eq!(error.reason(), "token_endpoint_refused");
    assert_eq!(
        error.to_string(),
        "token endpoint refused the request: `invalid_client` (status 401)"
    );
}

#[tokio::test]
async fn statuses_garbage_and_huge_bodies_give_no_token() {
    for (answer, expected) in [
        (Answer::status(500, "oops"), "token_endpoint_unavailable"),
        (
            Answer::status(400, "<html>bad</html>"),
            "token_endpoint_unavailable",
        ),
        (
            Answer::status(200, "<html>ok</html>"),
            "invalid_token_response",
        ),
        (
            Answer::status(200, r#"{"access_token":"t"}"#),
            "invalid_token_response",
        ),
        (
            Answer::status(200, &format!(r#"{{"pad":"{}"}}"#, "x".repeat(70_000))),
            "token_endpoint_unavailable",
        ),
        (
            Answer::Issue {
                lifetime: 300,
                token_type: "DPoP".into(),
            },
            "dpop_token_issued",
        ),
    ] {
        let shown = format!("{answer:?}");
        assert_eq!(reason_for(answer).await, (expected, 1), "{shown:.100}");
    }
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let clock = ManualClock::new();
    let target = Endpoint::start(Answer::bearer(300), &clock).await;
    let (reason, posts) = reason_for(Answer::Redirect(target.url().to_owned())).await;
    assert_eq!((reason, posts), ("token_endpoint_unavailable", 1));
    // The secret was not sent on to the redirect's target.
    assert_eq!(target.posts(), 0);
}

#[tokio::test]
async fn failures_back_off_and_honour_retry_after() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(
        Answer::Raw {
            status: 503,
            body: String::new(),
            retry_after: Some("30".into()),
        },
        &clock,
    )
    .await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    let first = source.authorization_header().await.unwrap_err();
    assert_eq!(first.reason(), "token_endpoint_unavailable");
    endpoint.set(Answer::bearer(300));
    clock.advance(29);
    for _ in 0..10 {
        let error = source.authorization_header().await.unwrap_err();
        assert_eq!(error.reason(), "backing_off");
    }
    assert_eq!(endpoint.posts(), 1);
    clock.advance(1);
    assert!(source.authorization_header().await.is_ok());
    assert_eq!(endpoint.posts(), 2);
}

#[tokio::test]
async fn repeated_failures_back_off_exponentially() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(Answer::status(500, ""), &clock).await;
    let source = credentials(endpoint.url(), &clock).build().unwrap();
    assert_eq!(
        source.authorization_header().await.unwrap_err().reason(),
        "token_endpoint_unavailable"
    );
    // Asked again after 1, then 2, then 4 seconds: the waits double.
    for (wait, posts) in [(1, 2), (2, 3), (4, 4)] {
        clock.advance(wait - 1);
        assert_eq!(
            source.authorization_header().await.unwrap_err().reason(),
            "backing_off"
        );
        clock.advance(1);
        assert_eq!(
            source.authorization_header().await.unwrap_err().reason(),
            "token_endpoint_unavailable"
        );
        assert_eq!(endpoint.posts(), posts);
    }
}

#[tokio::test]
async fn a_hanging_endpoint_ends_in_the_wait_or_request_timeout() {
    let clock = ManualClock::new();
    let endpoint = Endpoint::start(Answer::Hang, &clock).await;
    let waited = credentials(endpoint.url(), &clock)
        .wait(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(
        waited.authorization_header().await.unwrap_err().reason(),
        "timeout"
    );
    let timed_out = credentials(endpoint.url(), &clock)
        .request_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(
        timed_out.authorization_header().await.unwrap_err().reason(),
        "token_endpoint_unavailable"
    );
}

#[test]
fn plain_http_beyond_loopback_is_refused_everywhere() {
    let auth = || ClientAuth::basic("orders", "secret");
    for endpoint in [
        "http://idp.example/token",
        "http://10.1.2.3/token",
        "https://u:p@idp/t",
    ] {
        let refused = ClientCredentials::new(endpoint, auth())
            .build()
            .unwrap_err();
        assert_eq!(refused.reason(), "invalid_endpoint", "{endpoint}");
        let refused = TokenExchange::new(endpoint, auth()).build().unwrap_err();
        assert_eq!(refused.reason(), "invalid_endpoint", "{endpoint}");
    }
    for origin in [
        "http://payments.example",
        "http://192.168.0.10:8080",
        "https://p/x",
    ] {
        let refused = OutgoingCredentialsLayer::new(Credentials::forward(), origin).unwrap_err();
        assert_eq!(refused.reason(), "invalid_origin", "{origin}");
    }
}

#[test]
fn refusals_never_echo_credentials_in_a_url() {
    let auth = || ClientAuth::basic("orders", "secret");
    for url in [
        "https://orders:hunter2@idp.example/token",
        "http://orders:hunter2@idp.example/token",
        "http://orders:hunter2@127.0.0.1/token",
        "orders:hunter2@idp.example/token",
    ] {
        let refused = ClientCredentials::new(url, auth()).build().unwrap_err();
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
        let refused = TokenExchange::new(url, auth()).build().unwrap_err();
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
        let refused = OutgoingCredentialsLayer::new(Credentials::forward(), url).unwrap_err();
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
        assert!(refused.to_string().contains("***@"), "{refused}");
    }
}
