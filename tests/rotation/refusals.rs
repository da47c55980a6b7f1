//! What the rotating configurations refuse: expired own material, bad deliveries, dropped
//! trust domains, servers the calling side does not authorize or cannot chain.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use meshguard::peer::{
    AuthorizeError, Authorizer, SvidHealth, SvidStore, X509Update, svid_client_config,
    svid_server_config,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::support::{
    CLIENT_ID, Ca, SERVER_ID, connect, delivery, get_root, key_der, now, raw_get, rustls_error,
    serve_axum, serve_tonic, short_svid, store_with, svid_valid, tonic_channel, tonic_check,
};

/// TEST-ONLY: a client verifier that accepts any server certificate and keeps it, to see
/// what the server presents when a real client would have refused it.
#[derive(Debug)]
struct AcceptAnyAndRecord {
    seen: Mutex<Vec<CertificateDer<'static>>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyAndRecord {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(end_entity.clone().into_owned());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[tokio::test]
async fn expired_material_is_never_served_while_established_connections_carry_on() {
    let ca = Ca::new("example.org");
    let server = store_with(&ca, SERVER_ID, 2, &[("example.org", &[&ca])]);
    let client = store_with(&ca, CLIENT_ID, 60, &[("example.org", &[&ca])]);
    let config = Arc::new(svid_server_config(&server, Authorizer::any()).unwrap());
    let (addr, _) = serve_axum(config).await;
    let tls =
        Arc::new(svid_client_config(&client, Authorizer::id(SERVER_ID.parse().unwrap())).unwrap());
    let (mut established, _, _) = connect(addr, Arc::clone(&tls)).await.unwrap();
    get_root(&mut established).await.unwrap();

    // No update comes: the server's SVID expires.
    for _ in 0..60 {
        if server.status().health() == SvidHealth::Expired {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.status().health(), SvidHealth::Expired);

    assert!(raw_get(addr, Arc::clone(&tls)).await.is_err());
    // A client that would take any certificate is not given the expired one either: the
    // server aborts the handshake before it sends a certificate.
    let recorder = Arc::new(AcceptAnyAndRecord {
        seen: Mutex::new(Vec::new()),
        algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
    });
    let client_svid = short_svid(&ca, CLIENT_ID, 60);
    let lenient =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>)
            .with_client_auth_cert(vec![client_svid.cert.der().clone()], key_der(&client_svid))
            .unwrap();
    assert!(raw_get(addr, Arc::new(lenient)).await.is_err());
    assert!(recorder.seen.lock().unwrap().is_empty());

    // The connection set up before the expiry keeps its session, as rustls keeps it: the
    // certificate is only checked in handshakes.
    get_root(&mut established).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_delivery_keeps_the_last_good_material_under_traffic() {
    let ca = Ca::new("example.org");
    let stranger = Ca::new("example.org");
    let server = store_with(&ca, SERVER_ID, 60, &[("example.org", &[&ca])]);
    let client = store_with(&ca, CLIENT_ID, 60, &[("example.org", &[&ca])]);
    let good = server.current().unwrap();
    let config = Arc::new(svid_server_config(&server, Authorizer::any()).unwrap());
    let (addr, _) = serve_axum(config).await;
    let tls =
        Arc::new(svid_client_config(&client, Authorizer::id(SERVER_ID.parse().unwrap())).unwrap());

    let fresh = short_svid(&ca, SERVER_ID, 60);
    let other = short_svid(&ca, SERVER_ID, 60);
    let mismatched = X509Update::new(vec![fresh.cert.der().clone()], key_der(&other))
        .with_bundle("example.org".parse().unwrap(), vec![ca.cert.der().clone()]);
    let t = now();
    let bad = [
        ("key_mismatch", mismatched),
        (
            "svid_expired",
            delivery(
                &svid_valid(&ca, SERVER_ID, t - 60, t - 1),
                &[("example.org", &[&ca])],
            ),
        ),
        (
            "svid_untrusted",
            delivery(
                &short_svid(&stranger, SERVER_ID, 60),
                &[("example.org", &[&ca])],
            ),
        ),
    ];
    let mut failures = 0;
    let mut served = std::collections::BTreeSet::new();
    for (reason, update) in bad {
        assert_eq!(server.update(update).unwrap_err().reason(), reason);
        assert_eq!(server.status().health(), SvidHealth::Failing);
        for _ in 0..5 {
            match raw_get(addr, Arc::clone(&tls)).await {
                Ok((_, identity)) => {
                    served.insert(identity.x5t_s256().to_owned());
                }
                Err(_) => failures += 1,
            }
        }
    }
    assert_eq!(failures, 0);
    assert_eq!(served.len(), 1);
    assert!(served.contains(good.identity().x5t_s256()));
    assert_eq!(
        server.status().last_error().unwrap().reason(),
        "svid_untrusted"
    );
}

#[tokio::test]
async fn a_trust_domain_dropped_from_the_bundles_is_refused_from_the_next_handshake() {
    let ca = Ca::new("example.org");
    let partner_ca = Ca::new("partner.test");
    let federated: &[(&str, &[&Ca])] = &[("example.org", &[&ca]), ("partner.test", &[&partner_ca])];
    let server = store_with(&ca, SERVER_ID, 60, federated);
    let config = Arc::new(svid_server_config(&server, Authorizer::any()).unwrap());
    let (addr, served) = serve_axum(config).await;

    let local = store_with(&ca, CLIENT_ID, 60, &[("example.org", &[&ca])]);
    let partner_id = "spiffe://partner.test/billing";
    let partner = store_with(&partner_ca, partner_id, 60, federated);
    let local_tls =
        Arc::new(svid_client_config(&local, Authorizer::id(SERVER_ID.parse().unwrap())).unwrap());
    let partner_tls =
        Arc::new(svid_client_config(&partner, Authorizer::id(SERVER_ID.parse().unwrap())).unwrap());
    let (body, _) = raw_get(addr, Arc::clone(&partner_tls)).await.unwrap();
    assert!(body.starts_with(partner_id));

    // The next delivery no longer federates with partner.test.
    server
        .update(delivery(
            &short_svid(&ca, SERVER_ID, 60),
            &[("example.org", &[&ca])],
        ))
        .unwrap();
    let before = served.load(Ordering::SeqCst);
    let error = raw_get(addr, Arc::clone(&partner_tls)).await.unwrap_err();
    assert!(rustls_error(&*error).is_some(), "{error}");
    assert_eq!(served.load(Ordering::SeqCst), before);
    raw_get(addr, local_tls).await.unwrap();
}

#[tokio::test]
async fn the_calling_side_refuses_a_server_its_authorizer_refuses() {
    let ca = Ca::new("example.org");
    let server = store_with(&ca, SERVER_ID, 60, &[("example.org", &[&ca])]);
    let client = store_with(&ca, CLIENT_ID, 60, &[("example.org", &[&ca])]);
    let config = Arc::new(svid_server_config(&server, Authorizer::any()).unwrap());
    let (https, served) = serve_axum(Arc::clone(&config)).await;
    let grpc = serve_tonic(config).await;
    let payments = Authorizer::id("spiffe://example.org/ns/shop/sa/payments".parse().unwrap());
    let orders = Authorizer::id(SERVER_ID.parse().unwrap());

    let refused = Arc::new(svid_client_config(&client, payments.clone()).unwrap());
    let error = raw_get(https, refused).await.unwrap_err();
    match rustls_error(&*error) {
        Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) => {
            let refusal = other.0.downcast_ref::<AuthorizeError>().unwrap();
            assert_eq!(refusal.reason(), "unauthorized_id");
        }
        found => panic!("{found:?}: {error}"),
    }

    let url = format!("https://127.0.0.1:{}/", https.port());
    let with = |authorizer: Authorizer| {
        reqwest::Client::builder()
            .tls_backend_preconfigured(svid_client_config(&client, authorizer).unwrap())
            .build()
            .unwrap()
    };
    assert!(with(payments.clone()).get(&url).send().await.is_err());
    assert_eq!(served.load(Ordering::SeqCst), 0);
    let body = with(orders.clone())
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.starts_with(CLIENT_ID));

    assert!(tonic_channel(grpc, &client, payments).await.is_err());
    tonic_check(tonic_channel(grpc, &client, orders).await.unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_calling_side_verifies_a_server_only_against_its_own_trust_domains_bundle() {
    let ca = Ca::new("example.org");
    // A server claiming an example.org ID with a chain to partner.test's root: its store
    // was (wrongly) given partner.test's root as example.org's bundle, which it cannot
    // refuse for a root without a `spiffe://partner.test` URI SAN.
    let partner_ca = Ca::unnamed("partner.test");
    let impostor = SvidStore::new();
    impostor
        .update(delivery(
            &short_svid(&partner_ca, SERVER_ID, 60),
            &[
                ("example.org", &[&partner_ca]),
                ("partner.test", &[&partner_ca]),
            ],
        ))
        .unwrap();
    let config = Arc::new(svid_server_config(&impostor, Authorizer::any()).unwrap());
    let (addr, served) = serve_axum(config).await;

    // The client trusts both roots, each for its own trust domain only; the server would
    // accept it, so a refusal is the client's.
    let client = store_with(
        &partner_ca,
        "spiffe://partner.test/billing",
        60,
        &[("partner.test", &[&partner_ca]), ("example.org", &[&ca])],
    );
    let tls =
        Arc::new(svid_client_config(&client, Authorizer::id(SERVER_ID.parse().unwrap())).unwrap());
    let error = raw_get(addr, tls).await.unwrap_err();
    assert!(
        matches!(
            rustls_error(&*error),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ),
        "{error}"
    );
    assert_eq!(served.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_server_authorizer_refuses_other_workloads_in_the_handshake() {
    let ca = Ca::new("example.org");
    let bundle: &[(&str, &[&Ca])] = &[("example.org", &[&ca])];
    let server = store_with(&ca, SERVER_ID, 60, bundle);
    let only_cart = Authorizer::id(CLIENT_ID.parse().unwrap());
    let config = Arc::new(svid_server_config(&server, only_cart).unwrap());
    let (addr, served) = serve_axum(config).await;

    let intruder = store_with(&ca, "spiffe://example.org/ns/shop/sa/intruder", 60, bundle);
    let tls = Arc::new(
        svid_client_config(&intruder, Authorizer::id(SERVER_ID.parse().unwrap())).unwrap(),
    );
    assert!(raw_get(addr, tls).await.is_err());
    assert_eq!(served.load(Ordering::SeqCst), 0);

    let cart = store_with(&ca, CLIENT_ID, 60, bundle);
    let tls =
        Arc::new(svid_client_config(&cart, Authorizer::id(SERVER_ID.parse().unwrap())).unwrap());
    raw_get(addr, tls).await.unwrap();
    assert_eq!(served.load(Ordering::SeqCst), 1);
}
