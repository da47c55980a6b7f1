//! Remote key sources against a real HTTP server on 127.0.0.1: JWKS URL and OpenID Connect
//! discovery, rotation, unknown-`kid` floods, outages, hangs, garbage, oversized bodies,
//! cache lifetimes, TLS and real identity-provider documents. The CLI's remote flags are
//! tested in tests/cli/remote.rs.
#![cfg(feature = "remote-jwks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::remote_support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshguard::token::remote::{Health, RemoteError, RemoteJwks, Startup};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier, VerifierBuilderError};
use remote_support::{AUDIENCE, EXP, JwksServer, ManualClock, Mode, TestKey, TestPki, jwks};
use tokio::task::JoinSet;

const ISS: &str = "https://idp.test";

async fn build(issuer: Issuer, clock: &Arc<ManualClock>) -> Verifier {
    try_build(issuer, clock).await.unwrap()
}

async fn try_build(
    issuer: Issuer,
    clock: &Arc<ManualClock>,
) -> Result<Verifier, VerifierBuilderError> {
    Verifier::builder()
        .issuer(issuer.audience(AUDIENCE))
        .clock(clock.clone())
        .build_async()
        .await
}

fn remote(server: &JwksServer) -> Issuer {
    Issuer::remote(ISS, RemoteJwks::url(server.jwks_url()))
}

fn fail_fast(server: &JwksServer) -> Issuer {
    Issuer::remote(
        ISS,
        RemoteJwks::url(server.jwks_url())
            .startup(Startup::FailFast)
            .request_timeout(Duration::from_millis(500)),
    )
}

fn key_source_error(result: Result<Verifier, VerifierBuilderError>) -> RemoteError {
    match result {
        Err(VerifierBuilderError::KeySource(error)) => error,
        Err(other) => panic!("expected a key source error, got {other}"),
        Ok(_) => panic!("expected the build to fail"),
    }
}

/// Waits for something a background task does; a liveness bound, not a timing check.
async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the condition never held");
}

/// Lets tasks spawned on this current-thread runtime run up to their first real wait.
async fn let_background_run() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn keys_from_a_jwks_url_verify_tokens_without_further_fetches() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    let verifier = build(remote(&server), &clock).await;

    let verified = verifier.verify_async(&key.token(ISS)).await.unwrap();
    assert_eq!(verified.subject(), Some("alice"));
    for _ in 0..20 {
        verifier.verify(&key.token(ISS)).unwrap();
    }
    let_background_run().await;
    assert_eq!(server.jwks_requests(), 1);
    let status = &verifier.remote_status()[0];
    assert_eq!(status.health(), Health::Fresh);
    assert_eq!(
        (status.keys(), status.skipped(), status.fetches()),
        (1, 0, 1)
    );
    assert_eq!(status.issuer(), ISS);

    // Another key under the same `kid` is a forgery.
    let forger = TestKey::es256("k1");
    let forged = verifier.verify(&forger.token(ISS)).unwrap_err();
    assert_eq!(forged.reason(), "bad_signature");
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_refreshes_reuse_it() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let issuer = server.issuer();
    let clock = ManualClock::new();
    let verifier = build(Issuer::discover(&issuer), &clock).await;
    verifier.verify_async(&key.token(&issuer)).await.unwrap();
    assert_eq!(
        (server.discovery_requests(), server.jwks_requests()),
        (1, 1)
    );

    // Four fifths into the 10-minute lifetime a request triggers a background refresh
    // and is itself answered from the keys at hand.
    clock.advance(500);
    verifier.verify(&key.token(&issuer)).unwrap();
    eventually(|| server.jwks_requests() == 2).await;
    assert_eq!(server.discovery_requests(), 1);
    // The issuer's tokens only: the same key under another `iss` is refused.
    let wrong = verifier.verify(&key.token(ISS)).unwrap_err();
    assert_eq!(wrong.reason(), "issuer");
}

#[tokio::test]
async fn discovery_naming_another_issuer_is_refused() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    // A real Keycloak document: it names `http://localhost:8080/realms/master`.
    server.set_discovery(
        include_str!("../data/real_jwks/keycloak-openid-configuration.dockyard.json").to_owned(),
    );
    let issuer = server.issuer();
    let clock = ManualClock::new();

    let strict = Issuer::remote(
        &issuer,
        RemoteJwks::discover(&issuer).startup(Startup::FailFast),
    );
    let error = key_source_error(try_build(strict, &clock).await);
    assert_eq!(
        error,
        RemoteError::IssuerMismatch {
            expected: issuer.clone(),
            found: "http://localhost:8080/realms/master".into(),
        }
    );

    // A near miss (a trailing slash) is a mismatch too: comparison is exact.
    server.set_discovery(
        serde_json::json!({ "issuer": format!("{issuer}/"), "jwks_uri": server.jwks_url() })
            .to_string(),
    );
    let lazy = build(Issuer::discover(&issuer), &clock).await;
    let rejected = lazy.verify_async(&key.token(&issuer)).await.unwrap_err();
    assert_eq!(rejected.reason(), "key_source_unavailable");
    let status = &lazy.remote_status()[0];
    assert_eq!(status.health(), Health::Unreachable);
    assert_eq!(status.last_error().unwrap().reason(), "issuer_mismatch");
    assert_eq!(server.jwks_requests(), 0);
}

#[tokio::test]
async fn real_discovery_documents_served_locally_lead_to_real_keys() {
    for (keys, discovery) in [
        (
            include_str!("../data/real_jwks/okta-keys.dockyard.json"),
            include_str!("../data/real_jwks/okta-openid-configuration.dockyard.json"),
        ),
        (
            include_str!("../data/real_jwks/google-oauth2-v3-certs.json"),
            include_str!("../data/real_jwks/google-openid-configuration.json"),
        ),
    ] {
        let server = JwksServer::start(keys.to_owned()).await;
        // The provider's own document, pointed at this server.
        let mut document: serde_json::Value = serde_json::from_str(discovery).unwrap();
        document["issuer"] = server.issuer().into();
        document["jwks_uri"] = server.jwks_url().into();
        server.set_discovery(document.to_string());
        let clock = ManualClock::new();
        let issuer = Issuer::remote(
            server.issuer(),
            RemoteJwks::discover(server.issuer()).startup(Startup::FailFast),
        );
        let verifier = build(issuer, &clock).await;
        let status = &verifier.remote_status()[0];
        assert_eq!((status.keys(), status.skipped()), (2, 0));
        assert_eq!(
            (server.discovery_requests(), server.jwks_requests()),
            (1, 1)
        );
    }
}

#[tokio::test]
async fn rotation_mid_run_is_picked_up_by_the_request_that_needs_it() {
    let old = TestKey::es256("2024-01");
    let server = JwksServer::start(jwks(&[&old])).await;
    let clock = ManualClock::new();
    let verifier = build(remote(&server), &clock).await;
    verifier.verify(&old.token(ISS)).unwrap();

    let new = TestKey::es256("2024-02");
    server.set_jwks(jwks(&[&new]));
    // The synchronous path never waits on the network.
    let unknown = verifier.verify(&new.token(ISS)).unwrap_err();
    assert_eq!(unknown.reason(), "unknown_key");
    let_background_run().await;
    assert_eq!(server.jwks_requests(), 1);
    // The asynchronous one refreshes once and verifies this very request with the new keys.
    let verified = verifier.verify_async(&new.token(ISS)).await.unwrap();
    assert_eq!(verified.header().key_id(), Some("2024-02"));
    assert_eq!(server.jwks_requests(), 2);

    // The withdrawn key is gone, and within the interval nothing is fetched for it.
    let withdrawn = verifier.verify_async(&old.token(ISS)).await.unwrap_err();
    assert_eq!(withdrawn.reason(), "unknown_key");
    assert_eq!(server.jwks_requests(), 2);

    // A key published next is found once the interval has passed.
    let next = TestKey::es256("2024-03");
    server.set_jwks(jwks(&[&new, &next]));
    clock.advance(30);
    verifier.verify_async(&next.token(ISS)).await.unwrap();
    assert_eq!(server.jwks_requests(), 3);
    verifier.verify(&new.token(ISS)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_with_one_new_kid_cause_one_fetch() {
    let old = TestKey::es256("old");
    let server = JwksServer::start(jwks(&[&old])).await;
    let clock = ManualClock::new();
    let verifier = build(remote(&server), &clock).await;
    let new = TestKey::es256("new");
    server.set_jwks(jwks(&[&old, &new]));

    let token = new.token(ISS);
    let mut requests = JoinSet::new();
    for _ in 0..1_000 {
        let verifier = verifier.clone();
        let token = token.clone();
        requests.spawn(async move { verifier.verify_async(&token).await.map(|_| ()) });
    }
    while let Some(outcome) = requests.join_next().await {
        outcome.unwrap().unwrap();
    }
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_kids_fetches_at_most_once_per_interval() {
    let known = TestKey::es256("known");
    let server = JwksServer::start(jwks(&[&known])).await;
    let clock = ManualClock::new();
    let verifier = build(remote(&server), &clock).await;

    for (round, expected) in [(0, 2), (1, 3)] {
        let mut requests = JoinSet::new();
        for i in 0..300 {
            let verifier = verifier.clone();
            let token = TestKey::es256(&format!("random-{round}-{i}")).token(ISS);
            requests.spawn(async move { verifier.verify_async(&token).await.unwrap_err() });
        }
        while let Some(rejected) = requests.join_next().await {
            assert_eq!(rejected.unwrap().reason(), "unknown_key");
        }
        assert_eq!(server.jwks_requests(), expected);
        clock.advance(30);
    }
    // Known keys kept verifying throughout.
    verifier.verify(&known.token(ISS)).unwrap();
}

#[tokio::test]
async fn unknown_issuers_and_other_issuers_keys_cause_no_fetch() {
    let key = TestKey::es256("k1");
    let other = TestKey::es256("other");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    let other_keys = KeySet::from_jwks_json(jwks(&[&other]).as_bytes()).unwrap();
    let verifier = Verifier::builder()
        .issuer(remote(&server).audience(AUDIENCE))
        .issuer(Issuer::new("https://other.test", other_keys).audience(AUDIENCE))
        .clock(clock.clone())
        .build_async()
        .await
        .unwrap();
    assert_eq!(server.jwks_requests(), 1);

    let stranger = verifier
        .verify_async(&key.token("https://stranger.test"))
        .await;
    assert_eq!(stranger.unwrap_err().reason(), "issuer");
    // The other issuer's keys are static: its unknown `kid` fetches nothing.
    let crossed = verifier
        .verify_async(&key.token("https://other.test"))
        .await;
    assert_eq!(crossed.unwrap_err().reason(), "unknown_key");
    assert_eq!(server.jwks_requests(), 1);
    // A token claiming the remote issuer but signed with the other issuer's key is refused
    // after at most the one refresh its unknown `kid` allows.
    let borrowed = verifier.verify_async(&other.token(ISS)).await;
    assert_eq!(borrowed.unwrap_err().reason(), "unknown_key");
    assert_eq!(server.jwks_requests(), 2);
    verifier.verify(&other.token("https://other.test")).unwrap();
}

#[tokio::test]
async fn key_urls_in_token_headers_are_never_fetched() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let attacker = TestKey::es256("evil");
    let elsewhere = JwksServer::start(jwks(&[&attacker])).await;
    let clock = ManualClock::new();
    let verifier = build(remote(&server), &clock).await;

    // RFC 8725 §3.10: `jku`/`x5u` name where keys might be, never where they are taken from.
    let header = serde_json::json!({
        "alg": "ES256", "kid": "evil", "jku": elsewhere.jwks_url(), "x5u": elsewhere.jwks_url(),
    });
    let rejected = verifier
        .verify_async(&attacker.token_with_header(&header, ISS))
        .await;
    assert_eq!(rejected.unwrap_err().reason(), "unknown_key");
    // A `kid` shaped like a path or URL is only a lookup string.
    clock.advance(30);
    let header =
        serde_json::json!({ "alg": "ES256", "kid": "../issuer/.well-known/openid-configuration" });
    let rejected = verifier
        .verify_async(&attacker.token_with_header(&header, ISS))
        .await;
    assert_eq!(rejected.unwrap_err().reason(), "unknown_key");
    assert_eq!(elsewhere.jwks_requests(), 0);
    assert_eq!(
        (server.jwks_requests(), server.discovery_requests()),
        (3, 0)
    );
    // The same header on a token signed with the real key verifies: the extras are ignored.
    let header = serde_json::json!({ "alg": "ES256", "kid": "k1", "jku": elsewhere.jwks_url() });
    verifier
        .verify(&key.token_with_header(&header, ISS))
        .unwrap();
}

#[test]
fn disallowed_algorithms_and_cold_sources_are_refused_without_waiting_or_fetching() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let key = TestKey::es256("k1");
    let server = server_runtime.block_on(JwksServer::start(jwks(&[&key])));
    // Built outside any runtime: nothing can be fetched, and nothing blocks.
    let verifier = Verifier::builder()
        .issuer(
            remote(&server)
                .audience(AUDIENCE)
                .algorithms([Algorithm::RS256]),
        )
        .issuer(
            Issuer::remote("https://es.test", RemoteJwks::url(server.jwks_url()))
                .audience(AUDIENCE),
        )
        .build()
        .unwrap();
    let disallowed = verifier.verify(&key.token(ISS)).unwrap_err();
    assert_eq!(disallowed.reason(), "disallowed_algorithm");
    let cold = verifier.verify(&key.token("https://es.test")).unwrap_err();
    assert_eq!(cold.reason(), "key_source_unavailable");
    assert_eq!(verifier.remote_status()[1].health(), Health::Cold);
    assert_eq!(server.jwks_requests(), 0);

    // Fail-fast sources need the asynchronous build, which can wait for them.
    let sync = Verifier::builder()
        .issuer(fail_fast(&server).audience(AUDIENCE))
        .build();
    assert_eq!(key_source_error(sync), RemoteError::FailFastNeedsAsync);
}

#[test]
fn build_async_on_another_executor_fetches_nothing() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let key = TestKey::es256("k1");
    let server = server_runtime.block_on(JwksServer::start(jwks(&[&key])));
    let lazy = block_on(
        Verifier::builder()
            .issuer(remote(&server).audience(AUDIENCE))
            .build_async(),
    )
    .unwrap();
    let cold = lazy.verify(&key.token(ISS)).unwrap_err();
    assert_eq!(cold.reason(), "key_source_unavailable");
    let strict = block_on(
        Verifier::builder()
            .issuer(fail_fast(&server).audience(AUDIENCE))
            .build_async(),
    );
    assert_eq!(key_source_error(strict), RemoteError::NoRuntime);
    assert_eq!(server.jwks_requests(), 0);
}

/// A minimal executor that is not tokio: polls on this thread, parks between wake-ups.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[tokio::test]
async fn stale_keys_verify_while_the_endpoint_is_down_then_fail_closed() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    let verifier = build(remote(&server), &clock).await;
    let token = key.token(ISS);
    verifier.verify(&token).unwrap();

    server.set_mode(Mode::Down);
    clock.advance(11 * 60);
    verifier.verify(&token).unwrap();
    eventually(|| verifier.remote_status()[0].failures() == 1).await;
    let status = &verifier.remote_status()[0];
    assert_eq!(status.health(), Health::Stale);
    assert_eq!(status.last_error().unwrap().reason(), "transport");
    // Within the retry interval, requests neither wait nor fetch.
    for _ in 0..50 {
        verifier.verify_async(&token).await.unwrap();
    }
    let_background_run().await;
    assert_eq!(verifier.remote_status()[0].fetches(), 2);

    // Past the stale period the keys are not used any more.
    clock.advance(24 * 60 * 60);
    assert_eq!(
        verifier.verify(&token).unwrap_err().reason(),
        "key_source_unavailable"
    );
    let closed = verifier.verify_async(&token).await.unwrap_err();
    assert_eq!(closed.reason(), "key_source_unavailable");
    assert_eq!(verifier.remote_status()[0].health(), Health::Expired);

    // The endpoint comes back: the next allowed attempt restores service.
    server.set_mode(Mode::Serve);
    clock.advance(30);
    verifier.verify_async(&token).await.unwrap();
    assert_eq!(verifier.remote_status()[0].health(), Health::Fresh);
}

#[tokio::test]
async fn a_hanging_endpoint_times_out_and_good_keys_keep_working() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    for mode in [Mode::Hang, Mode::HangMidBody] {
        server.set_mode(mode);
        let error = key_source_error(try_build(fail_fast(&server), &clock).await);
        assert_eq!(error.reason(), "timeout", "{error}");
    }

    server.set_mode(Mode::Serve);
    let verifier = build(fail_fast(&server), &clock).await;
    server.set_mode(Mode::Hang);
    let unknown = TestKey::es256("k2").token(ISS);
    let rejected = verifier.verify_async(&unknown).await.unwrap_err();
    assert_eq!(rejected.reason(), "unknown_key");
    assert_eq!(
        verifier.remote_status()[0].last_error().unwrap().reason(),
        "timeout"
    );
    verifier.verify_async(&key.token(ISS)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_requests_never_wait_for_a_refresh_in_flight() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    let issuer = Issuer::remote(
        ISS,
        RemoteJwks::url(server.jwks_url()).request_timeout(Duration::from_secs(600)),
    );
    let verifier = build(issuer, &clock).await;
    server.set_mode(Mode::Hang);
    clock.advance(500);
    // This request starts the background refresh, which now hangs at the server.
    verifier.verify(&key.token(ISS)).unwrap();
    eventually(|| server.jwks_requests() == 2).await;
    // Were the warm path to wait on it, the test would never get past these loops.
    for _ in 0..100 {
        verifier.verify(&key.token(ISS)).unwrap();
        verifier.verify_async(&key.token(ISS)).await.unwrap();
    }
    assert_eq!(verifier.remote_status()[0].fetches(), 2);
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test]
async fn redirects_are_followed_a_bounded_number_of_times() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    let moved = Issuer::remote(
        ISS,
        RemoteJwks::url(format!("{}/moved", server.base())).startup(Startup::FailFast),
    );
    build(moved, &clock).await.verify(&key.token(ISS)).unwrap();
    let looping = Issuer::remote(
        ISS,
        RemoteJwks::url(format!("{}/loop", server.base())).startup(Startup::FailFast),
    );
    let error = key_source_error(try_build(looping, &clock).await);
    assert_eq!(error.reason(), "transport", "{error}");
    assert_eq!(server.jwks_requests(), 1);
}

#[tokio::test]
async fn every_redirect_target_meets_the_rules_of_the_configured_url() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    let port = server.base().rsplit(':').next().unwrap().to_owned();
    let fetch = |url: String| {
        // A short connect timeout: contacting a refused target would show as `timeout`.
        let remote = RemoteJwks::url(url)
            .connect_timeout(Duration::from_secs(2))
            .startup(Startup::FailFast);
        try_build(Issuer::remote(ISS, remote), &clock)
    };
    for (target, reason) in [
        // Plain HTTP to a host that is not loopback (TEST-NET-1: never contacted).
        ("http://192.0.2.1/jwks".to_owned(), "plain_http"),
        ("http://idp.example.invalid/jwks".to_owned(), "plain_http"),
        // Credentials in the URL, even to the same loopback server.
        (
            format!("http://user:pw@127.0.0.1:{port}/jwks"),
            "invalid_url",
        ),
        // Schemes other than http(s).
        (format!("ftp://127.0.0.1:{port}/jwks"), "invalid_url"),
        // Not even a URL the HTTP client can request: it stops at the 302 itself.
        ("file:///etc/passwd".to_owned(), "status"),
    ] {
        server.set_redirect(&target);
        let error = key_source_error(fetch(server.redirect_url()).await);
        assert_eq!(error.reason(), reason, "{target}: {error}");
    }
    assert_eq!(server.jwks_requests(), 0);

    // The same rules for the discovery document's own fetch.
    server.set_discovery(
        serde_json::json!({"issuer": server.issuer(), "jwks_uri": server.redirect_url()})
            .to_string(),
    );
    server.set_redirect("http://192.0.2.1/jwks");
    let discovered = Issuer::remote(
        server.issuer(),
        RemoteJwks::discover(server.issuer()).startup(Startup::FailFast),
    );
    let error = key_source_error(try_build(discovered, &clock).await);
    assert_eq!(error.reason(), "plain_http", "{error}");
    assert_eq!(server.jwks_requests(), 0);

    // Loopback to loopback over plain HTTP is what the configured URL may do itself.
    server.set_redirect(&format!("http://localhost:{port}/moved"));
    let verifier = fetch(server.redirect_url()).await.unwrap();
    verifier.verify(&key.token(ISS)).unwrap();
    assert_eq!(server.jwks_requests(), 1);
}

/// A random HMAC secret, its `oct` JWK under `kid`, and an HS256 token signed with it.
fn published_secret(kid: &str) -> (serde_json::Value, String) {
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret).unwrap();
    let jwk = serde_json::json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(secret)});
    let claims = serde_json::json!({"iss": ISS, "aud": AUDIENCE, "sub": "mallory", "exp": EXP});
    let token = TokenSigner::new(Algorithm::HS256, &secret)
        .unwrap()
        .with_kid(kid)
        .sign(&claims)
        .unwrap();
    (jwk, token)
}

#[tokio::test]
async fn symmetric_keys_in_remote_documents_are_skipped() {
    let key = TestKey::es256("k1");
    let (oct, minted) = published_secret("h1");
    let document = serde_json::json!({"keys": [key.jwk.clone(), oct.clone()]}).to_string();
    let server = JwksServer::start(document.clone()).await;
    let clock = ManualClock::new();
    let remote = || RemoteJwks::url(server.jwks_url()).startup(Startup::FailFast);
    let verifier = build(Issuer::remote(ISS, remote()), &clock).await;
    assert_eq!(
        verifier.verify_async(&minted).await.unwrap_err().reason(),
        "unknown_key"
    );
    verifier.verify(&key.token(ISS)).unwrap();
    assert_eq!(verifier.remote_status()[0].skipped(), 1);

    // A document of secrets only has no usable key at all.
    server.set_jwks(serde_json::json!({ "keys": [oct] }).to_string());
    let error = key_source_error(try_build(Issuer::remote(ISS, remote()), &clock).await);
    assert_eq!(error, RemoteError::NoUsableKeys { skipped: 1 });

    // Knowingly allowed for this issuer, the secret verifies.
    server.set_jwks(document);
    let allowed = Issuer::remote(ISS, remote().allow_symmetric_keys());
    let verifier = build(allowed, &clock).await;
    assert_eq!(verifier.verify(&minted).unwrap().subject(), Some("mallory"));
}

#[tokio::test]
async fn garbage_and_error_statuses_never_replace_good_keys() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    let encryption_only =
        r#"{"keys":[{"kty":"RSA","use":"enc","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}]}"#;
    for (mode, reason) in [
        (
            Mode::Garbage("<html><body>Bad gateway</body></html>".into()),
            "invalid_jwks",
        ),
        (Mode::Garbage("[]".into()), "invalid_jwks"),
        (Mode::Garbage("{}".into()), "invalid_jwks"),
        (Mode::Garbage(r#"{"keys":{}}"#.into()), "invalid_jwks"),
        (
            Mode::Garbage(r#"{"keys":[],"keys":[]}"#.into()),
            "invalid_jwks",
        ),
        (Mode::Garbage(String::new()), "invalid_jwks"),
        (Mode::Garbage(r#"{"keys":[]}"#.into()), "no_usable_keys"),
        (Mode::Garbage(encryption_only.into()), "no_usable_keys"),
        (Mode::Status(500), "status"),
        (Mode::Status(404), "status"),
        (Mode::Status(204), "status"),
    ] {
        server.set_mode(mode.clone());
        let error = key_source_error(try_build(fail_fast(&server), &clock).await);
        assert_eq!(error.reason(), reason, "{mode:?}: {error}");
    }

    server.set_mode(Mode::Serve);
    let verifier = build(remote(&server), &clock).await;
    server.set_mode(Mode::Garbage(encryption_only.into()));
    let unknown = TestKey::es256("k2").token(ISS);
    assert_eq!(
        verifier.verify_async(&unknown).await.unwrap_err().reason(),
        "unknown_key"
    );
    let status = &verifier.remote_status()[0];
    assert_eq!(
        status.last_error(),
        Some(&RemoteError::NoUsableKeys { skipped: 1 })
    );
    assert_eq!(status.health(), Health::Failing);
    verifier.verify(&key.token(ISS)).unwrap();
}

#[tokio::test]
async fn oversized_bodies_are_cut_off_while_streaming() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    for announce_length in [true, false] {
        // 4 MiB, announced or chunked.
        server.set_mode(Mode::Oversized {
            chunks: 64,
            announce_length,
        });
        let error = key_source_error(try_build(fail_fast(&server), &clock).await);
        assert!(
            matches!(error, RemoteError::TooLarge { limit: 262_144, .. }),
            "{error}"
        );
    }

    server.set_mode(Mode::Serve);
    let many: Vec<TestKey> = (0..8).map(|i| TestKey::es256(&format!("k{i}"))).collect();
    server.set_jwks(jwks(&many.iter().collect::<Vec<_>>()));
    let small = Issuer::remote(
        ISS,
        RemoteJwks::url(server.jwks_url())
            .startup(Startup::FailFast)
            .max_body_bytes(1024),
    );
    let error = key_source_error(try_build(small, &clock).await);
    assert_eq!(error.reason(), "too_large");
    let roomy = Issuer::remote(
        ISS,
        RemoteJwks::url(server.jwks_url())
            .startup(Startup::FailFast)
            .max_body_bytes(4096),
    );
    let verifier = build(roomy, &clock).await;
    verifier.verify(&many[7].token(ISS)).unwrap();
}

#[tokio::test]
async fn cache_control_max_age_is_honoured_within_bounds() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let token = key.token(ISS);
    let clock = ManualClock::new();
    // (Cache-Control, seconds after a fetch at which a refresh is due: 4/5 of the lifetime.)
    for (header, due) in [
        ("public, max-age=120", 96),
        ("max-age=86400", 2_880),
        ("no-cache", 48),
        ("max-age=nonsense", 480),
    ] {
        server.set_cache_control(header);
        let verifier = build(remote(&server), &clock).await;
        let fetched = server.jwks_requests();
        clock.advance(due - 1);
        verifier.verify(&token).unwrap();
        let_background_run().await;
        // A fetch counts when its task starts, before any I/O.
        let status = &verifier.remote_status()[0];
        assert_eq!(status.fetches(), 1, "{header}: refreshed too early");
        clock.advance(1);
        verifier.verify(&token).unwrap();
        eventually(|| server.jwks_requests() == fetched + 1).await;
    }
}

#[tokio::test]
async fn configured_ttl_and_bounds_apply() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_cache_control("max-age=10");
    let clock = ManualClock::new();
    let issuer = Issuer::remote(
        ISS,
        RemoteJwks::url(server.jwks_url())
            .ttl(Duration::from_secs(100))
            .ttl_bounds(Duration::from_secs(50), Duration::from_secs(200))
            .max_stale(Duration::from_secs(60)),
    );
    let verifier = build(issuer, &clock).await;
    server.set_mode(Mode::Down);
    // max-age=10 is raised to 50 s: due at 40, stale from 50, closed from 110.
    clock.advance(39);
    verifier.verify(&key.token(ISS)).unwrap();
    let_background_run().await;
    assert_eq!(verifier.remote_status()[0].fetches(), 1);
    clock.advance(70);
    verifier.verify(&key.token(ISS)).unwrap();
    clock.advance(1);
    assert_eq!(
        verifier.verify(&key.token(ISS)).unwrap_err().reason(),
        "key_source_unavailable"
    );
}

#[tokio::test]
async fn https_endpoints_are_checked_against_the_configured_roots() {
    let key = TestKey::es256("k1");
    let pki = TestPki::new();
    let server = JwksServer::start_tls(jwks(&[&key]), &pki).await;
    assert!(server.jwks_url().starts_with("https://localhost:"));
    let clock = ManualClock::new();

    let untrusted = key_source_error(try_build(fail_fast(&server), &clock).await);
    assert_eq!(untrusted.reason(), "transport", "{untrusted}");
    assert_eq!(server.jwks_requests(), 0);

    let trusted = Issuer::remote(
        ISS,
        RemoteJwks::url(server.jwks_url())
            .startup(Startup::FailFast)
            .add_root_certificate(pki.ca_der.clone()),
    );
    let verifier = build(trusted, &clock).await;
    verifier.verify(&key.token(ISS)).unwrap();
}

#[tokio::test]
async fn urls_are_checked_when_the_verifier_is_built() {
    let clock = ManualClock::new();
    for (url, reason) in [
        ("http://idp.example/jwks", "plain_http"),
        ("ftp://idp.example/jwks", "invalid_url"),
        ("https://user:secret@idp.example/jwks", "invalid_url"),
        ("jwks.json", "invalid_url"),
    ] {
        let issuer = Issuer::remote(ISS, RemoteJwks::url(url));
        let error = key_source_error(try_build(issuer, &clock).await);
        assert_eq!(error.reason(), reason, "{url}");
    }
    let query = Issuer::discover("https://idp.example/?tenant=1");
    assert_eq!(
        key_source_error(try_build(query, &clock).await).reason(),
        "invalid_url"
    );
    // Plain HTTP to a non-loopback host only when asked for.
    let allowed = Issuer::remote(
        ISS,
        RemoteJwks::url("http://idp.invalid/jwks").allow_plain_http(),
    );
    let verifier = Verifier::builder()
        .issuer(allowed.audience(AUDIENCE))
        .build()
        .unwrap();
    assert_eq!(verifier.remote_status().len(), 1);
}

/// (provider, document, usable keys, skipped keys), as tests/data/real_jwks/README.md records them.
const REAL_JWKS: [(&str, &str, usize, usize); 9] = [
    (
        "google",
        include_str!("../data/real_jwks/google-oauth2-v3-certs.json"),
        2,
        0,
    ),
    (
        "entra",
        include_str!("../data/real_jwks/entra-common-discovery-v2-keys.json"),
        7,
        0,
    ),
    (
        "auth0",
        include_str!("../data/real_jwks/auth0-jwks.dockyard.json"),
        2,
        0,
    ),
    (
        "okta",
        include_str!("../data/real_jwks/okta-keys.dockyard.json"),
        2,
        0,
    ),
    (
        "cognito",
        include_str!("../data/real_jwks/cognito-jwks.json"),
        2,
        0,
    ),
    (
        "keycloak",
        include_str!("../data/real_jwks/keycloak-realm-certs.pyjwt.json"),
        1,
        1,
    ),
    (
        "keycloak-master",
        include_str!("../data/real_jwks/keycloak-master-realm-certs.dockyard.json"),
        1,
        1,
    ),
    (
        "paypal",
        include_str!("../data/real_jwks/paypal-oauth2-certs.json"),
        14,
        1,
    ),
    (
        "yahoo",
        include_str!("../data/real_jwks/yahoo-openid-v1-certs.json"),
        4,
        0,
    ),
];

#[tokio::test]
async fn real_identity_provider_documents_load_from_the_server() {
    let server = JwksServer::start(String::new()).await;
    let clock = ManualClock::new();
    for (name, document, keys, skipped) in REAL_JWKS {
        server.set_jwks(document.to_owned());
        let issuer =
            Issuer::any_remote(RemoteJwks::url(server.jwks_url()).startup(Startup::FailFast));
        let verifier = build(issuer, &clock).await;
        let status = &verifier.remote_status()[0];
        assert_eq!((status.keys(), status.skipped()), (keys, skipped), "{name}");
    }
    // A SPIFFE bundle holds `x509-svid` and `jwt-svid` keys, none for plain OIDC use.
    server.set_jwks(include_str!("../data/real_jwks/spiffe-bundle.go-spiffe.json").to_owned());
    let issuer = Issuer::any_remote(RemoteJwks::url(server.jwks_url()).startup(Startup::FailFast));
    let error = key_source_error(try_build(issuer, &clock).await);
    assert_eq!(error, RemoteError::NoUsableKeys { skipped: 7 });
}
