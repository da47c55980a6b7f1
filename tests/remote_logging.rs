//! What remote key sources log: once per change of state, not once per failure. Its own
//! test binary, so that the subscriber is the process's only one (a thread-local subscriber
//! raced with other tests over tracing's per-call-site interest cache).
#![cfg(feature = "remote-jwks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod remote_support;

use std::sync::Arc;

use meshguard::token::remote::RemoteJwks;
use meshguard::token::{Issuer, Verifier};
use remote_support::{
    AUDIENCE, CountingSubscriber, JwksServer, LogCounter, ManualClock, Mode, TestKey, jwks,
};

const ISS: &str = "https://idp.test";

async fn build(server: &JwksServer, clock: &Arc<ManualClock>) -> Verifier {
    Verifier::builder()
        .issuer(Issuer::remote(ISS, RemoteJwks::url(server.jwks_url())).audience(AUDIENCE))
        .clock(clock.clone())
        .build_async()
        .await
        .unwrap()
}

#[tokio::test]
async fn failures_are_logged_once_per_change_of_state() {
    let log = Arc::new(LogCounter::default());
    // The only test of this binary: a global subscriber sees every thread, and no other
    // test can have cached a call site's interest before it was installed.
    tracing::subscriber::set_global_default(CountingSubscriber(log.clone())).unwrap();
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    let verifier = build(&server, &clock).await;
    assert_eq!(
        (log.warnings(), log.infos()),
        (0, 1),
        "{:?}",
        log.messages()
    );

    let unknown = TestKey::es256("unknown").token(ISS);
    server.set_mode(Mode::Down);
    for _ in 0..5 {
        clock.advance(30);
        verifier.verify_async(&unknown).await.unwrap_err();
    }
    assert_eq!(verifier.remote_status()[0].failures(), 5);
    assert_eq!(log.warnings(), 1, "{:?}", log.messages());

    server.set_mode(Mode::Serve);
    clock.advance(30);
    verifier.verify_async(&unknown).await.unwrap_err();
    assert_eq!(log.infos(), 2, "{:?}", log.messages());

    server.set_mode(Mode::Down);
    for _ in 0..3 {
        clock.advance(30);
        verifier.verify_async(&unknown).await.unwrap_err();
    }
    assert_eq!(log.warnings(), 2, "{:?}", log.messages());
}
