//! Real mTLS handshakes: a rustls client against an axum server on tokio-rustls and against
//! a tonic server, with certificates minted at test time (CONFORMANCE 57, 65).
#![cfg(all(feature = "axum", feature = "tonic", feature = "rustls"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::peer_support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::peer::{
    Authorizer, CertificateBinding, ClientRoots, MAX_BUNDLE_ROOTS, MAX_CHAIN_LEN, MtlsConnectInfo,
    MtlsListener, PeerIdentity, SvidStore, TlsConfigError, TlsIncoming, X509Update, XfccPolicy,
    peer_identity, server_config,
};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use peer_support::{Ca, Leaf, svid_params};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

fn key_der(leaf: &Leaf) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()))
}

fn client_config(server_ca: &Ca, client: Option<&Leaf>) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(server_ca.cert.der().clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match client {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.cert.der().clone()], key_der(leaf))
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

struct Pki {
    ca: Ca,
    server: Leaf,
}

impl Pki {
    fn new() -> Self {
        let ca = Ca::new("example.org");
        let server = ca.svid("spiffe://example.org/server");
        Self { ca, server }
    }

    fn server_config(&self, roots: &ClientRoots) -> Arc<rustls::ServerConfig> {
        let chain = vec![CertificateDer::from(self.server.der())];
        Arc::new(server_config(chain, key_der(&self.server), roots).unwrap())
    }

    fn spiffe_roots(&self) -> ClientRoots {
        ClientRoots::spiffe()
            .with_bundle_pem("example.org".parse().unwrap(), self.ca.pem().as_bytes())
            .unwrap()
    }
}

async fn serve_axum(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let allowed = Authorizer::id("spiffe://example.org/ns/shop/sa/cart".parse().unwrap());
    let xfcc = XfccPolicy::builder()
        .trust_proxies(Authorizer::id(
            "spiffe://example.org/proxy".parse().unwrap(),
        ))
        .build();
    let app = Router::new()
        .route(
            "/whoami",
            get(|ConnectInfo(peer): ConnectInfo<MtlsConnectInfo>| async move {
                let id = peer.identity().unwrap();
                format!(
                    "{}|{}|{}",
                    id.spiffe_id().map_or("-", |s| s.as_str()),
                    id.dns_names().join(","),
                    id.x5t_s256()
                )
            }),
        )
        .route(
            "/authorized",
            get(move |ConnectInfo(peer): ConnectInfo<MtlsConnectInfo>| async move {
                match allowed.authorize(peer.identity().unwrap()) {
                    Ok(()) => (StatusCode::OK, "hello".to_owned()),
                    Err(e) => (StatusCode::FORBIDDEN, e.reason().to_owned()),
                }
            }),
        )
        .route(
            "/forwarded",
            get(
                move |ConnectInfo(peer): ConnectInfo<MtlsConnectInfo>, headers: HeaderMap| async move {
                    match xfcc.resolve(&peer.direct_peer(), &headers) {
                        Ok(Some(id)) => (StatusCode::OK, id.spiffe_id().unwrap().to_string()),
                        Ok(None) => (StatusCode::UNAUTHORIZED, "none".to_owned()),
                        Err(e) => (StatusCode::BAD_REQUEST, e.reason().to_owned()),
                    }
                },
            ),
        );
    let verifier = Arc::new(bearer_verifier());
    let app = app.route(
        "/bound",
        get(
            move |ConnectInfo(peer): ConnectInfo<MtlsConnectInfo>, headers: HeaderMap| async move {
                let token = meshguard::token::bearer::from_headers(&headers)
                    .ok()
                    .and_then(|jwt| verifier.verify(jwt).ok());
                let Some(token) = token else {
                    return (StatusCode::UNAUTHORIZED, "invalid_token".to_owned());
                };
                match CertificateBinding::Required.check(&token, peer.identity()) {
                    Ok(()) => (StatusCode::OK, token.subject().unwrap_or("-").to_owned()),
                    Err(e) => (e.status(), e.reason().to_owned()),
                }
            },
        ),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = MtlsListener::new(tcp, config);
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
        )
        .await
        .unwrap();
    });
    addr
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SECRET: &[u8] = b"tls-binding-test-secret-at-least-32-bytes";

fn bearer_verifier() -> Verifier {
    Verifier::builder()
        .issuer(
            Issuer::new(
                "https://idp.example",
                KeySet::hmac_secret("k1", SECRET).unwrap(),
            )
            .audience("orders"),
        )
        .build()
        .unwrap()
}

fn bound_token(x5t: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&serde_json::json!({
            "iss": "https://idp.example",
            "sub": "alice",
            "aud": "orders",
            "exp": now + 300,
            "cnf": { "x5t#S256": x5t },
        }))
        .unwrap()
}

async fn https_get(
    addr: SocketAddr,
    config: ClientConfig,
    path: &str,
    xfcc: Option<&str>,
) -> Result<(StatusCode, String), BoxError> {
    https_get_with(addr, config, path, xfcc, None).await
}

async fn https_get_with(
    addr: SocketAddr,
    config: ClientConfig,
    path: &str,
    xfcc: Option<&str>,
    bearer: Option<&str>,
) -> Result<(StatusCode, String), BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let mut request = http::Request::get(path).header("host", "localhost");
    if let Some(value) = xfcc {
        request = request.header("x-forwarded-client-cert", value);
    }
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new())?)
        .await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(body.to_vec())?))
}

/// How the handshake of one connection went, after a request on it (so the client has
/// read any session tickets the server sent).
async fn handshake_kind_of_a_request(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> rustls::HandshakeKind {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let kind = tls.get_ref().1.handshake_kind().unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = http::Request::get("/whoami")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();
    kind
}

#[tokio::test]
async fn every_connection_verifies_the_client_chain_in_a_full_handshake() {
    // A resumed session would carry the first handshake's client chain past the verifier,
    // for as long as the ticket lives, even after that certificate expired.
    let pki = Pki::new();
    let addr = serve_axum(pki.server_config(&pki.spiffe_roots())).await;
    let client = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
    for versions in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca.cert.der().clone()).unwrap();
        let config = Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[versions])
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(vec![client.cert.der().clone()], key_der(&client))
                .unwrap(),
        );
        for _ in 0..3 {
            assert_eq!(
                handshake_kind_of_a_request(addr, Arc::clone(&config)).await,
                rustls::HandshakeKind::Full,
                "{versions:?}"
            );
        }
    }
}

#[tokio::test]
async fn axum_sees_the_client_svid_through_connect_info() {
    let pki = Pki::new();
    let addr = serve_axum(pki.server_config(&pki.spiffe_roots())).await;
    let client = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
    let (status, body) = https_get(addr, client_config(&pki.ca, Some(&client)), "/whoami", None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let expected = PeerIdentity::from_der_chain(&[client.der()]).unwrap();
    assert_eq!(
        body,
        format!(
            "spiffe://example.org/ns/shop/sa/cart|localhost|{}",
            expected.x5t_s256()
        )
    );
}

#[tokio::test]
async fn axum_authorizer_allows_one_workload_and_refuses_another() {
    let pki = Pki::new();
    let addr = serve_axum(pki.server_config(&pki.spiffe_roots())).await;
    let cart = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
    let (status, body) = https_get(
        addr,
        client_config(&pki.ca, Some(&cart)),
        "/authorized",
        None,
    )
    .await
    .unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello"));

    let intruder = pki.ca.svid("spiffe://example.org/ns/shop/sa/intruder");
    let (status, body) = https_get(
        addr,
        client_config(&pki.ca, Some(&intruder)),
        "/authorized",
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::FORBIDDEN, "unauthorized_id")
    );
}

#[tokio::test]
async fn client_without_certificate_is_refused_in_the_handshake() {
    let pki = Pki::new();
    let addr = serve_axum(pki.server_config(&pki.spiffe_roots())).await;
    assert!(
        https_get(addr, client_config(&pki.ca, None), "/whoami", None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn client_from_an_unknown_trust_domain_is_refused() {
    let pki = Pki::new();
    let addr = serve_axum(pki.server_config(&pki.spiffe_roots())).await;
    let other = Ca::new("other.org");
    let leaf = other.svid("spiffe://other.org/w");
    assert!(
        https_get(addr, client_config(&pki.ca, Some(&leaf)), "/whoami", None)
            .await
            .is_err()
    );
}

// CONFORMANCE 57
#[tokio::test]
async fn chain_is_verified_only_against_the_leaf_ids_own_trust_domain() {
    let pki = Pki::new();
    let other = Ca::new("other.org");
    let roots = pki
        .spiffe_roots()
        .with_bundle_pem("other.org".parse().unwrap(), other.pem().as_bytes())
        .unwrap();
    let addr = serve_axum(pki.server_config(&roots)).await;

    let honest = other.svid("spiffe://other.org/w");
    let (status, body) = https_get(addr, client_config(&pki.ca, Some(&honest)), "/whoami", None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("spiffe://other.org/w|"));

    // Chains to other.org's root, claims example.org: both roots are trusted, but not for
    // this ID.
    let forged = other.svid("spiffe://example.org/ns/shop/sa/cart");
    assert!(
        https_get(addr, client_config(&pki.ca, Some(&forged)), "/whoami", None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn expired_and_ca_flagged_client_certificates_are_refused() {
    let pki = Pki::new();
    let addr = serve_axum(pki.server_config(&pki.spiffe_roots())).await;
    let mut expired = svid_params("spiffe://example.org/old");
    expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
    expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let leaf = pki.ca.sign(&expired);
    assert!(
        https_get(addr, client_config(&pki.ca, Some(&leaf)), "/whoami", None)
            .await
            .is_err()
    );

    let mut ca_leaf = svid_params("spiffe://example.org/ca-leaf");
    ca_leaf.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let leaf = pki.ca.sign(&ca_leaf);
    assert!(
        https_get(addr, client_config(&pki.ca, Some(&leaf)), "/whoami", None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn pem_ca_bundle_accepts_plain_x509_clients() {
    let pki = Pki::new();
    let roots = ClientRoots::ca_pem(pki.ca.pem().as_bytes()).unwrap();
    let addr = serve_axum(pki.server_config(&roots)).await;
    let mut params = svid_params("spiffe://example.org/unused");
    params.subject_alt_names = vec![rcgen::SanType::DnsName(
        "db.example.org".try_into().unwrap(),
    )];
    let leaf = pki.ca.sign(&params);
    let (status, body) = https_get(addr, client_config(&pki.ca, Some(&leaf)), "/whoami", None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("-|db.example.org|"), "{body}");
}

/// Eleven other roots of the trust domain, then the one that issued the test certificates:
/// more than a chain may hold ([`MAX_CHAIN_LEN`]), as in a bundle kept through CA rotations.
fn bundle_of_twelve_roots(pki: &Pki) -> String {
    let mut bundle: String = (0..11).map(|_| Ca::new("example.org").pem()).collect();
    bundle.push_str(&pki.ca.pem());
    bundle
}

#[tokio::test]
async fn trust_bundles_in_pem_hold_more_roots_than_a_chain() {
    let pki = Pki::new();
    let bundle = bundle_of_twelve_roots(&pki);
    let client = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
    for roots in [
        ClientRoots::ca_pem(bundle.as_bytes()).unwrap(),
        ClientRoots::spiffe()
            .with_bundle_pem("example.org".parse().unwrap(), bundle.as_bytes())
            .unwrap(),
    ] {
        let addr = serve_axum(pki.server_config(&roots)).await;
        let (status, _) = https_get(addr, client_config(&pki.ca, Some(&client)), "/whoami", None)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    let update = X509Update::from_pem(client.cert_pem().as_bytes(), client.key_pem().as_bytes())
        .unwrap()
        .with_bundle_pem("example.org".parse().unwrap(), bundle.as_bytes())
        .unwrap();
    assert!(
        format!("{update:?}").contains(r#"("example.org", 12)"#),
        "{update:?}"
    );
    let store = SvidStore::new();
    let svid = store.update(update).unwrap();
    assert_eq!(
        svid.spiffe_id().to_string(),
        "spiffe://example.org/ns/shop/sa/cart"
    );

    let too_many = pki.ca.pem().repeat(MAX_BUNDLE_ROOTS + 1);
    let refused = [
        ClientRoots::ca_pem(too_many.as_bytes()).unwrap_err(),
        ClientRoots::spiffe()
            .with_bundle_pem("example.org".parse().unwrap(), too_many.as_bytes())
            .unwrap_err(),
    ];
    for err in refused {
        let TlsConfigError::Certificates(cause) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(cause.reason(), "too_many_roots", "{err}");
    }
    let err = X509Update::from_pem(client.cert_pem().as_bytes(), client.key_pem().as_bytes())
        .unwrap()
        .with_bundle_pem("example.org".parse().unwrap(), too_many.as_bytes())
        .unwrap_err();
    assert!(err.to_string().contains("more than 64"), "{err}");
    // A chain keeps its own, smaller bound.
    let long_chain = format!(
        "{}{}",
        client.cert_pem(),
        pki.ca.pem().repeat(MAX_CHAIN_LEN)
    );
    let err = meshguard::peer::server_config_from_pem(
        long_chain.as_bytes(),
        client.key_pem().as_bytes(),
        &pki.spiffe_roots(),
    )
    .unwrap_err();
    let TlsConfigError::Certificates(cause) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(cause.reason(), "chain_too_long", "{err}");
}

#[test]
fn a_root_naming_another_trust_domain_is_refused_in_a_bundle() {
    let pki = Pki::new();
    let partner = Ca::new("partner.example");
    let mixed = format!("{}{}", pki.ca.pem(), partner.pem());
    let err = ClientRoots::spiffe()
        .with_bundle_pem("example.org".parse().unwrap(), mixed.as_bytes())
        .unwrap_err();
    assert_eq!(err.reason(), "foreign_root", "{err}");
    assert!(err.to_string().contains("partner.example"), "{err}");
    let x5c = |ca: &Ca| base64::engine::general_purpose::STANDARD.encode(ca.der());
    let json = format!(
        r#"{{"keys":[{{"use":"x509-svid","kty":"EC","crv":"P-256","x5c":["{}"]}},{{"use":"x509-svid","kty":"EC","crv":"P-256","x5c":["{}"]}}]}}"#,
        x5c(&pki.ca),
        x5c(&partner)
    );
    let err = ClientRoots::spiffe()
        .with_bundle_json("example.org".parse().unwrap(), json.as_bytes())
        .unwrap_err();
    assert_eq!(err.reason(), "foreign_root", "{err}");
    // Under its own trust domain the partner's root is taken, and so is a root that names
    // no trust domain at all.
    let unnamed = Ca::unnamed("example.org");
    ClientRoots::spiffe()
        .with_bundle_pem("partner.example".parse().unwrap(), partner.pem().as_bytes())
        .unwrap()
        .with_bundle_pem(
            "example.org".parse().unwrap(),
            format!("{}{}", pki.ca.pem(), unnamed.pem()).as_bytes(),
        )
        .unwrap();
}

#[tokio::test]
async fn broken_svid_accepted_by_the_ca_bundle_is_still_closed_by_the_listener() {
    let pki = Pki::new();
    // A plain CA bundle lets webpki accept the chain; the SVID rules then refuse the leaf.
    let roots = ClientRoots::ca_pem(pki.ca.pem().as_bytes()).unwrap();
    let addr = serve_axum(pki.server_config(&roots)).await;
    let mut two_ids = svid_params("spiffe://example.org/a");
    two_ids.subject_alt_names.push(rcgen::SanType::URI(
        "spiffe://example.org/b".try_into().unwrap(),
    ));
    let leaf = pki.ca.sign(&two_ids);
    assert!(
        https_get(addr, client_config(&pki.ca, Some(&leaf)), "/whoami", None)
            .await
            .is_err()
    );
    let good = pki.ca.svid("spiffe://example.org/a");
    let (status, _) = https_get(addr, client_config(&pki.ca, Some(&good)), "/whoami", None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_stalled_handshake_does_not_block_other_clients() {
    let pki = Pki::new();
    let addr = serve_axum(pki.server_config(&pki.spiffe_roots())).await;
    // Connects and never sends a ClientHello.
    let _stalled = TcpStream::connect(addr).await.unwrap();
    let client = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
    let call = https_get(addr, client_config(&pki.ca, Some(&client)), "/whoami", None);
    let (status, _) = tokio::time::timeout(std::time::Duration::from_secs(5), call)
        .await
        .expect("served while another handshake is pending")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn spiffe_bundle_json_configures_the_roots() {
    let pki = Pki::new();
    let bundle = serde_json::json!({
        "keys": [
            // RFC 7515 appendix A.3's public key: a well-formed `jwt-svid` entry beside the root.
            {"use": "jwt-svid", "kty": "EC", "kid": "k1", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"use": "x509-svid", "kty": "EC", "x5c": [
                base64::engine::general_purpose::STANDARD.encode(pki.ca.der())
            ]}
        ],
        "spiffe_sequence": 1
    });
    let roots = ClientRoots::spiffe()
        .with_bundle_json(
            "example.org".parse().unwrap(),
            bundle.to_string().as_bytes(),
        )
        .unwrap();
    let addr = serve_axum(pki.server_config(&roots)).await;
    let leaf = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
    let (status, _) = https_get(
        addr,
        client_config(&pki.ca, Some(&leaf)),
        "/authorized",
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK);
}

// CONFORMANCE 65, end to end
#[tokio::test]
async fn xfcc_is_believed_from_the_trusted_proxy_only() {
    let pki = Pki::new();
    let addr = serve_axum(pki.server_config(&pki.spiffe_roots())).await;
    let hash = "e0f3c8ce5e2ea305f0701ff512e36e2e97928284a228bcf77332d33930a1b6fd";
    let header =
        format!("By=spiffe://example.org/proxy;Hash={hash};URI=spiffe://example.org/client");

    let proxy = pki.ca.svid("spiffe://example.org/proxy");
    let (status, body) = https_get(
        addr,
        client_config(&pki.ca, Some(&proxy)),
        "/forwarded",
        Some(&header),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "spiffe://example.org/client")
    );

    let sneaky = pki.ca.svid("spiffe://example.org/sneaky");
    let (status, body) = https_get(
        addr,
        client_config(&pki.ca, Some(&sneaky)),
        "/forwarded",
        Some(&header),
    )
    .await
    .unwrap();
    // The header is ignored: the caller is the direct peer itself.
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "spiffe://example.org/sneaky")
    );
}

// CONFORMANCE 34, 35 over a real mTLS connection
#[tokio::test]
async fn bound_token_is_accepted_only_from_its_certificate() {
    let pki = Pki::new();
    let addr = serve_axum(pki.server_config(&pki.spiffe_roots())).await;
    let holder = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
    let thief = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
    let x5t = PeerIdentity::from_der_chain(&[holder.der()])
        .unwrap()
        .x5t_s256()
        .to_owned();
    let jwt = bound_token(&x5t);

    let (status, body) = https_get_with(
        addr,
        client_config(&pki.ca, Some(&holder)),
        "/bound",
        None,
        Some(&jwt),
    )
    .await
    .unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));

    // Same SPIFFE ID, different certificate: the stolen token is refused.
    let (status, body) = https_get_with(
        addr,
        client_config(&pki.ca, Some(&thief)),
        "/bound",
        None,
        Some(&jwt),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "certificate_mismatch")
    );
}

/// `ClientRoots` reads bundles with the strict parser JWT-SVID bundles use; each of these
/// was taken by the lenient reader it replaced.
#[test]
fn x509_bundles_are_read_as_strictly_as_jwt_svid_bundles() {
    let pki = Pki::new();
    let root = base64::engine::general_purpose::STANDARD.encode(pki.ca.der());
    let entry = format!(r#"{{"use": "x509-svid", "x5c": ["{root}"]}}"#);
    let good = format!(r#"{{"keys": [{entry}]}}"#);
    assert!(
        ClientRoots::spiffe()
            .with_bundle_json("example.org".parse().unwrap(), good.as_bytes())
            .is_ok()
    );
    for bad in [
        // Duplicate member names: which `keys` counts would be up to the reader.
        format!(r#"{{"keys": [], "keys": [{entry}]}}"#),
        // A `jwt-svid` key without `kid` breaks the bundle format.
        format!(r#"{{"keys": [{entry}, {{"use": "jwt-svid", "kty": "EC"}}]}}"#),
        // Base64, but not a DER certificate.
        r#"{"keys": [{"use": "x509-svid", "x5c": ["AAAA"]}]}"#.to_owned(),
    ] {
        let err = ClientRoots::spiffe()
            .with_bundle_json("example.org".parse().unwrap(), bad.as_bytes())
            .unwrap_err();
        assert!(
            matches!(err, TlsConfigError::BundleDocument(_)),
            "{bad}: {err}"
        );
        assert_eq!(err.reason(), "invalid_bundle", "{bad}");
    }
}

#[test]
fn server_config_refuses_missing_roots_and_bad_bundles() {
    let pki = Pki::new();
    let chain = vec![CertificateDer::from(pki.server.der())];
    let err = server_config(chain, key_der(&pki.server), &ClientRoots::spiffe()).unwrap_err();
    assert_eq!(err.reason(), "no_roots");
    let td = || "example.org".parse().unwrap();
    for bad in [
        &b"not json"[..],
        br#"{"nokeys": []}"#,
        br#"{"keys": []}"#,
        br#"{"keys": [{"use": "x509-svid"}]}"#,
        br#"{"keys": [{"use": "x509-svid", "x5c": []}]}"#,
        br#"{"keys": [{"use": "x509-svid", "x5c": ["AA", "AA"]}]}"#,
        br#"{"keys": [{"use": "x509-svid", "x5c": ["%%%"]}]}"#,
    ] {
        let err = ClientRoots::spiffe()
            .with_bundle_json(td(), bad)
            .unwrap_err();
        assert_eq!(
            err.reason(),
            "invalid_bundle",
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        ClientRoots::ca_pem(b"no pem here").unwrap_err().reason(),
        "invalid_certificates"
    );
    let mixed = ClientRoots::ca_pem(pki.ca.pem().as_bytes())
        .unwrap()
        .with_bundle_pem(td(), pki.ca.pem().as_bytes())
        .unwrap();
    assert_eq!(mixed.verifier().unwrap_err().reason(), "mixed_roots");
    assert_eq!(
        meshguard::peer::server_config_from_pem(
            pki.server.cert_pem().as_bytes(),
            b"not a key",
            &pki.spiffe_roots()
        )
        .unwrap_err()
        .reason(),
        "invalid_private_key"
    );
}

mod grpc {
    use super::*;
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, Server};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    fn only_cart(request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let allowed = Authorizer::id("spiffe://example.org/ns/shop/sa/cart".parse().unwrap());
        let peer =
            peer_identity(&request).map_err(|e| tonic::Status::unauthenticated(e.reason()))?;
        allowed
            .authorize(&peer)
            .map_err(|e| tonic::Status::permission_denied(e.reason()))?;
        Ok(request)
    }

    async fn serve_tonic(config: Arc<rustls::ServerConfig>) -> SocketAddr {
        let (_reporter, health) = tonic_health::server::health_reporter();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let incoming = TlsIncoming::new(tcp, config);
        let addr = incoming.local_addr().unwrap();
        let service = tonic::service::interceptor::InterceptedService::new(health, only_cart);
        tokio::spawn(async move {
            Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        addr
    }

    async fn check(addr: SocketAddr, ca: &Ca, client: &Leaf) -> Result<(), tonic::Status> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca.pem()))
            .identity(Identity::from_pem(client.cert_pem(), client.key_pem()))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|_| ())
    }

    #[tokio::test]
    async fn tonic_reads_peer_certs_and_authorizes() {
        let pki = Pki::new();
        let addr = serve_tonic(pki.server_config(&pki.spiffe_roots())).await;
        let cart = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
        check(addr, &pki.ca, &cart).await.unwrap();

        let intruder = pki.ca.svid("spiffe://example.org/ns/shop/sa/intruder");
        let status = check(addr, &pki.ca, &intruder).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(status.message(), "unauthorized_id");
    }

    #[tokio::test]
    async fn peer_identity_works_with_tonics_own_tls_too() {
        let pki = Pki::new();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(Identity::from_pem(
                pki.server.cert_pem(),
                pki.server.key_pem(),
            ))
            .client_ca_root(Certificate::from_pem(pki.ca.pem()));
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(tcp);
        let service = tonic::service::interceptor::InterceptedService::new(health, only_cart);
        tokio::spawn(async move {
            Server::builder()
                .tls_config(tls)
                .unwrap()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        let cart = pki.ca.svid("spiffe://example.org/ns/shop/sa/cart");
        check(addr, &pki.ca, &cart).await.unwrap();
        let intruder = pki.ca.svid("spiffe://example.org/ns/shop/sa/intruder");
        let status = check(addr, &pki.ca, &intruder).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }

    #[tokio::test]
    async fn tonic_refuses_a_client_from_another_trust_domain() {
        let pki = Pki::new();
        let addr = serve_tonic(pki.server_config(&pki.spiffe_roots())).await;
        let other = Ca::new("other.org");
        let leaf = other.svid("spiffe://other.org/ns/shop/sa/cart");
        let status = check(addr, &pki.ca, &leaf).await.unwrap_err();
        assert_ne!(status.code(), tonic::Code::Ok);
        assert_ne!(status.code(), tonic::Code::PermissionDenied);
    }
}
