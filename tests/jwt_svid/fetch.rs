//! Bundles fetched from a SPIFFE bundle endpoint (a real HTTP server on 127.0.0.1 that can
//! rotate, fail and send garbage), under the rules of a remote JWKS, and kept refreshed.

use std::sync::Arc;
use std::time::Duration;

use meshguard::token::jwt_svid::{BundleSet, JwtSvidError, JwtSvidVerifier, VerifiedJwtSvid};
use meshguard::token::remote::RemoteJwks;
use meshguard::token::{Clock, FixedClock};

use crate::authority::{AUDIENCE, Authority, NOW};
use crate::remote_support::{JwksServer, Mode};

fn verifier(bundles: &BundleSet) -> JwtSvidVerifier {
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(NOW));
    JwtSvidVerifier::builder(bundles.clone())
        .audience(AUDIENCE)
        .clock(clock)
        .build()
        .unwrap()
}

/// An endpoint refreshed every second, whose bundle is dropped `max_stale` after it
/// expired while refreshing fails.
fn fast(url: String, max_stale: Duration) -> RemoteJwks {
    let second = Duration::from_secs(1);
    RemoteJwks::url(url)
        .ttl_bounds(second, second)
        .refresh_interval(second)
        .max_stale(max_stale)
}

/// Polls `verify` until `done` holds for its outcome: a wait for the background refresh,
/// bounded so that a refresh that never happens fails the test.
async fn eventually(
    verify: impl Fn() -> Result<VerifiedJwtSvid, JwtSvidError>,
    done: impl Fn(&Result<VerifiedJwtSvid, JwtSvidError>) -> bool,
) {
    for _ in 0..300 {
        if done(&verify()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the bundle was not refreshed: {:?}", verify().map(|_| ()));
}

#[tokio::test]
async fn a_fetched_bundle_verifies_and_follows_the_trust_domains_rotation() {
    let old = Authority::new("example.org", "old");
    let new = Authority::new("example.org", "new");
    let server = JwksServer::start(old.bundle_json(1)).await;
    let bundles = BundleSet::new();
    bundles
        .fetch(
            old.trust_domain.clone(),
            fast(server.jwks_url(), Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let verifier = verifier(&bundles);
    assert!(verifier.verify(&old.svid("/web")).is_ok());
    let from_new = new.svid("/web");
    assert_eq!(
        verifier.verify(&from_new).unwrap_err().reason(),
        "unknown_key"
    );

    server.set_jwks(new.bundle_json(2));
    eventually(|| verifier.verify(&from_new), Result::is_ok).await;
    assert_eq!(
        verifier.verify(&old.svid("/web")).unwrap_err().reason(),
        "unknown_key"
    );
    // A replayed older bundle is refused: the rotated keys stay.
    server.set_jwks(old.bundle_json(1));
    let before = server.jwks_requests();
    while server.jwks_requests() < before + 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(verifier.verify(&from_new).is_ok());
    assert_eq!(
        verifier.verify(&old.svid("/web")).unwrap_err().reason(),
        "unknown_key"
    );
}

#[tokio::test]
async fn a_failing_endpoint_keeps_the_bundle_for_its_stale_period_then_fails_closed() {
    let example = Authority::new("example.org", "k1");
    let server = JwksServer::start(example.bundle_json(1)).await;
    let bundles = BundleSet::new();
    bundles
        .fetch(
            example.trust_domain.clone(),
            fast(server.jwks_url(), Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let verifier = verifier(&bundles);
    let svid = example.svid("/web");
    assert!(verifier.verify(&svid).is_ok());
    server.set_mode(Mode::Down);
    eventually(
        || verifier.verify(&svid),
        |outcome| {
            outcome
                .as_ref()
                .is_err_and(|e| e.reason() == "unknown_trust_domain")
        },
    )
    .await;
    server.set_mode(Mode::Serve);
    eventually(|| verifier.verify(&svid), Result::is_ok).await;
}

#[tokio::test]
async fn bundle_endpoints_follow_the_remote_key_rules() {
    let example = Authority::new("example.org", "k1");
    let td = example.trust_domain.clone();
    let bundles = BundleSet::new();
    // https only (plain http to loopback aside), no issuer discovery, checked before any I/O.
    let plain = bundles
        .fetch(
            td.clone(),
            RemoteJwks::url("http://bundles.example/example.org"),
        )
        .await;
    assert_eq!(plain.unwrap_err().reason(), "plain_http");
    let discover = bundles
        .fetch(td.clone(), RemoteJwks::discover("https://bundles.example"))
        .await;
    assert_eq!(discover.unwrap_err().reason(), "invalid_url");

    let server = JwksServer::start(example.bundle_json(5)).await;
    let endpoint = || RemoteJwks::url(server.jwks_url()).max_body_bytes(64 * 1024);
    for (mode, reason) in [
        (Mode::Garbage("{\"keys\":1}".into()), "invalid_bundle"),
        (Mode::Status(500), "status"),
        (Mode::Down, "transport"),
        (
            Mode::Oversized {
                chunks: 2,
                announce_length: false,
            },
            "too_large",
        ),
    ] {
        server.set_mode(mode);
        let outcome = bundles.fetch(td.clone(), endpoint()).await;
        assert_eq!(outcome.unwrap_err().reason(), reason);
        assert!(bundles.is_empty(), "{reason}");
    }
    server.set_mode(Mode::Serve);
    bundles.fetch(td.clone(), endpoint()).await.unwrap();
    assert_eq!(bundles.get(&td).and_then(|b| b.sequence()), Some(5));
    // A second source offering an older bundle of the same trust domain is refused.
    let older = JwksServer::start(example.bundle_json(4)).await;
    let outcome = bundles.fetch(td, RemoteJwks::url(older.jwks_url())).await;
    assert_eq!(outcome.unwrap_err().reason(), "rollback");
}
