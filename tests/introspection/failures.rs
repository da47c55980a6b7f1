//! What is sent, what an active answer becomes, and each failing endpoint refused.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use meshguard::token::introspection::{ClientAuth, Introspection};
use meshguard::token::{Issuer, KeySet, Verifier};
use tokio::net::TcpListener;

use crate::endpoint::{Answer, Endpoint};
use crate::remote_support::ManualClock;
use crate::{AUDIENCE, ISSUER, NOW, active, config};

async fn reason_for(answer: Answer) -> &'static str {
    let endpoint = Endpoint::start(answer).await;
    let introspector = config(endpoint.url(), &ManualClock::at(NOW))
        .max_response_bytes(1024)
        .request_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    introspector
        .introspect("opaque")
        .await
        .unwrap_err()
        .reason()
}

#[tokio::test]
async fn the_request_is_a_form_with_basic_credentials_encoded_first() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let introspector =
        Introspection::new(ISSUER, endpoint.url(), ClientAuth::basic("rs", "p:ss wörd"))
            .audience(AUDIENCE)
            .clock(ManualClock::at(NOW))
            .build()
            .unwrap();
    let token = introspector.introspect("tok/en+1").await.unwrap();
    assert_eq!(token.subject(), Some("u1"));
    assert_eq!(token.client_id(), Some("svc"));
    let (form, authorization) = endpoint.last_request();
    assert_eq!(form, "token=tok%2Fen%2B1&token_type_hint=access_token");
    let encoded = authorization.unwrap();
    let decoded = STANDARD
        .decode(encoded.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(decoded, b"rs:p%3Ass+w%C3%B6rd");
}

#[tokio::test]
async fn post_auth_sends_the_credentials_in_the_form() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    Introspection::new(ISSUER, endpoint.url(), ClientAuth::post("rs", "s&cret"))
        .audience(AUDIENCE)
        .clock(ManualClock::at(NOW))
        .build()
        .unwrap()
        .introspect("opaque")
        .await
        .unwrap();
    let (form, authorization) = endpoint.last_request();
    assert_eq!(
        form,
        "token=opaque&token_type_hint=access_token&client_id=rs&client_secret=s%26cret"
    );
    assert_eq!(authorization, None);
}

#[tokio::test]
async fn an_endpoint_that_is_down_fails_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    drop(listener);
    let introspector = config(&url, &ManualClock::at(NOW)).build().unwrap();
    let refused = introspector.introspect("opaque").await.unwrap_err();
    assert_eq!(refused.reason(), "introspection_unavailable");
}

#[tokio::test]
async fn answers_that_are_not_a_200_introspection_response_fail_closed() {
    for answer in [
        Answer::Status(500),
        Answer::Status(401),
        Answer::Status(204),
        Answer::Json("<html>login</html>".into()),
        Answer::Json(format!(r#"{{"active":true,"pad":"{}"}}"#, "x".repeat(4096))),
        Answer::Json(r#"{"active":"true"}"#.into()),
        Answer::Json(r#"{"active":false,"active":true}"#.into()),
        Answer::Hang,
    ] {
        let shown = format!("{answer:?}");
        assert_eq!(
            reason_for(answer).await,
            "introspection_unavailable",
            "{shown}"
        );
    }
}

/// A redirect is not followed: a 307 would resend the form, secret and token included.
#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = Endpoint::start(Answer::Json(active(300))).await;
    let endpoint = Endpoint::start(Answer::Redirect(elsewhere.url().to_owned())).await;
    let introspector = Introspection::new(ISSUER, endpoint.url(), ClientAuth::post("rs", "s"))
        .audience(AUDIENCE)
        .clock(ManualClock::at(NOW))
        .build()
        .unwrap();
    let refused = introspector.introspect("opaque").await.unwrap_err();
    assert_eq!(refused.reason(), "introspection_unavailable");
    assert_eq!((endpoint.posts(), elsewhere.posts()), (1, 0));
}

#[tokio::test]
async fn active_answers_failing_a_check_are_refused() {
    let cases = [
        (
            format!(r#"{{"active":true,"aud":"{AUDIENCE}","exp":{}}}"#, NOW - 1),
            "expired",
        ),
        (
            format!(r#"{{"active":true,"aud":"{AUDIENCE}"}}"#),
            "missing_claim",
        ),
        (
            format!(
                r#"{{"active":true,"aud":"{AUDIENCE}","exp":{},"nbf":{}}}"#,
                NOW + 60,
                NOW + 30
            ),
            "not_yet_valid",
        ),
        (
            format!(r#"{{"active":true,"aud":"other","exp":{}}}"#, NOW + 60),
            "audience",
        ),
        (
            format!(r#"{{"active":true,"exp":{}}}"#, NOW + 60),
            "missing_claim",
        ),
        (
            format!(
                r#"{{"active":true,"iss":"https://evil.test","aud":"{AUDIENCE}","exp":{}}}"#,
                NOW + 60
            ),
            "issuer",
        ),
        (
            format!(
                r#"{{"active":true,"aud":"{AUDIENCE}","exp":{},"cnf":{{"jkt":"k"}}}}"#,
                NOW + 60
            ),
            "unsupported_confirmation",
        ),
        (
            format!(
                r#"{{"active":true,"aud":"{AUDIENCE}","exp":{},"token_type":"DPoP"}}"#,
                NOW + 60
            ),
            "unsupported_confirmation",
        ),
        (r#"{"active":false}"#.to_owned(), "inactive"),
    ];
    for (body, reason) in cases {
        assert_eq!(
            reason_for(Answer::Json(body.clone())).await,
            reason,
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_missing_exp_is_accepted_only_when_allowed() {
    let endpoint = Endpoint::start(Answer::Json(format!(
        r#"{{"active":true,"aud":"{AUDIENCE}"}}"#
    )))
    .await;
    let introspector = config(endpoint.url(), &ManualClock::at(NOW))
        .allow_missing_exp()
        .build()
        .unwrap();
    assert_eq!(
        introspector
            .introspect("opaque")
            .await
            .unwrap()
            .expires_at(),
        None
    );
}

/// A JWS goes to the verifier only, whatever it is; anything else to the endpoint.
#[tokio::test]
async fn jwts_are_never_introspected() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let introspector = config(endpoint.url(), &ManualClock::at(NOW))
        .build()
        .unwrap();
    let keys = KeySet::hmac_secret("k1", b"TEST-ONLY-secret-of-at-least-32-bytes").unwrap();
    let verifier = Verifier::builder()
        .issuer(Issuer::new(ISSUER, keys).audience(AUDIENCE))
        .build()
        .unwrap();
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let refused = introspector
        .verify_with(&verifier, forged)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), "bad_signature");
    assert_eq!(endpoint.posts(), 0);
    let opaque = introspector
        .verify_with(&verifier, "opaque-token")
        .await
        .unwrap();
    assert_eq!(opaque.subject(), Some("u1"));
    assert_eq!(endpoint.posts(), 1);
}

#[tokio::test]
async fn oversized_tokens_are_not_sent() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let introspector = config(endpoint.url(), &ManualClock::at(NOW))
        .max_token_bytes(16)
        .build()
        .unwrap();
    let refused = introspector.introspect(&"x".repeat(17)).await.unwrap_err();
    assert_eq!(refused.reason(), "too_large");
    assert_eq!(endpoint.posts(), 0);
}
