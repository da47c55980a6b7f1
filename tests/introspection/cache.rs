//! Answers reused until their time is up (manual clock, no sleeping) and one POST per token
//! however many requests bring it at once.

use std::time::Duration;

use crate::endpoint::{Answer, Endpoint};
use crate::remote_support::ManualClock;
use crate::{NOW, active, config};

#[tokio::test]
async fn an_active_answer_is_reused_for_the_ttl_then_asked_again() {
    let endpoint = Endpoint::start(Answer::Json(active(3600))).await;
    let clock = ManualClock::at(NOW);
    let introspector = config(endpoint.url(), &clock)
        .active_ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    introspector.introspect("opaque").await.unwrap();
    clock.advance(59);
    introspector.introspect("opaque").await.unwrap();
    assert_eq!(endpoint.posts(), 1);
    clock.advance(1);
    introspector.introspect("opaque").await.unwrap();
    assert_eq!(endpoint.posts(), 2);
}

/// The token's `exp` ends the reuse before the TTL does: an answer is never trusted past the
/// token's own life, and the next request asks again.
#[tokio::test]
async fn an_active_answer_is_not_reused_past_the_tokens_exp() {
    let endpoint = Endpoint::start(Answer::Json(active(10))).await;
    let clock = ManualClock::at(NOW);
    let introspector = config(endpoint.url(), &clock).build().unwrap();
    introspector.introspect("opaque").await.unwrap();
    clock.advance(10);
    endpoint.set(Answer::Json(r#"{"active":false}"#.into()));
    let refused = introspector.introspect("opaque").await.unwrap_err();
    assert_eq!(refused.reason(), "inactive");
    assert_eq!(endpoint.posts(), 2);
}

#[tokio::test]
async fn an_inactive_answer_is_reused_briefly() {
    let endpoint = Endpoint::start(Answer::Json(r#"{"active":false}"#.into())).await;
    let clock = ManualClock::at(NOW);
    let introspector = config(endpoint.url(), &clock)
        .inactive_ttl(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            introspector
                .introspect("opaque")
                .await
                .unwrap_err()
                .reason(),
            "inactive"
        );
    }
    assert_eq!(endpoint.posts(), 1);
    clock.advance(5);
    introspector.introspect("opaque").await.unwrap_err();
    assert_eq!(endpoint.posts(), 2);
}

/// A failed request is not remembered: the next one asks again.
#[tokio::test]
async fn unavailability_is_not_cached() {
    let endpoint = Endpoint::start(Answer::Status(503)).await;
    let introspector = config(endpoint.url(), &ManualClock::at(NOW))
        .build()
        .unwrap();
    introspector.introspect("opaque").await.unwrap_err();
    endpoint.set(Answer::Json(active(300)));
    introspector.introspect("opaque").await.unwrap();
    assert_eq!(endpoint.posts(), 2);
}

/// Different tokens are different entries; the cache holds no more than its capacity.
#[tokio::test]
async fn tokens_are_cached_apart_within_the_capacity() {
    let endpoint = Endpoint::start(Answer::Json(active(300))).await;
    let introspector = config(endpoint.url(), &ManualClock::at(NOW))
        .cache_capacity(2)
        .build()
        .unwrap();
    for token in ["a", "b", "a", "b"] {
        introspector.introspect(token).await.unwrap();
    }
    assert_eq!(endpoint.posts(), 2);
    introspector.introspect("c").await.unwrap();
    introspector.introspect("a").await.unwrap();
    assert_eq!(endpoint.posts(), 4);
}

/// Eight requests for one new token, polled together on one thread, all reach the cache
/// before the first answer can arrive; with answers never reused (inactive TTL 0) only
/// joining the request in flight keeps them to one POST.
#[tokio::test]
async fn concurrent_requests_for_one_token_send_one_post() {
    let endpoint = Endpoint::start(Answer::Json(r#"{"active":false}"#.into())).await;
    let introspector = config(endpoint.url(), &ManualClock::at(NOW))
        .inactive_ttl(Duration::ZERO)
        .build()
        .unwrap();
    let ask = || introspector.introspect("opaque");
    let answers = tokio::join!(ask(), ask(), ask(), ask(), ask(), ask(), ask(), ask());
    let answers = [
        answers.0, answers.1, answers.2, answers.3, answers.4, answers.5, answers.6, answers.7,
    ];
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().unwrap_err().reason() == "inactive")
    );
    assert_eq!(endpoint.posts(), 1);
    // Not reused afterwards: the next request asks again.
    ask().await.unwrap_err();
    assert_eq!(endpoint.posts(), 2);
}
