//! No session is ever resumed by the rotating configurations, on either side: a resumed
//! session would skip the verifier, and with it a rotated bundle or a changed authorizer.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use meshguard::peer::{Authorizer, svid_client_config, svid_server_config};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, HandshakeKind, RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::support::{
    CLIENT_ID, Ca, SERVER_ID, connect, get_root, key_der, serve_axum, short_svid, store_with,
};

const VERSIONS: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

/// How the handshake of a new connection went, after one request on it (so the client has
/// read any session ticket the server sent).
async fn handshake_kind(addr: SocketAddr, config: Arc<ClientConfig>) -> HandshakeKind {
    let (mut sender, _, kind) = connect(addr, config).await.unwrap();
    get_root(&mut sender).await.unwrap();
    kind
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A plain rustls client with its default session cache: it resumes whenever the server
/// lets it.
fn resuming_client(
    ca: &Ca,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let client = short_svid(ca, CLIENT_ID, 60);
    Arc::new(
        ClientConfig::builder_with_provider(ring())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![client.cert.der().clone()], key_der(&client))
            .unwrap(),
    )
}

/// A server on rustls's defaults, which resume sessions (TLS 1.3 tickets, TLS 1.2 ids),
/// speaking only `version`.
async fn serve_resuming(ca: &Ca, version: &'static rustls::SupportedProtocolVersion) -> SocketAddr {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), ring())
        .build()
        .unwrap();
    let leaf = short_svid(ca, SERVER_ID, 60);
    let config = ServerConfig::builder_with_provider(ring())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![leaf.cert.der().clone()], key_der(&leaf))
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (socket, _) = tcp.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let answer = service_fn(|_| async {
                    Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(CLIENT_ID))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), answer)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn the_rotating_server_gives_a_resuming_client_a_full_handshake_every_time() {
    let ca = Ca::new("example.org");
    let server = store_with(&ca, SERVER_ID, 60, &[("example.org", &[&ca])]);
    let config = Arc::new(svid_server_config(&server, Authorizer::any()).unwrap());
    let (addr, _) = serve_axum(config).await;
    for version in VERSIONS {
        let client = resuming_client(&ca, version);
        for _ in 0..3 {
            assert_eq!(
                handshake_kind(addr, Arc::clone(&client)).await,
                HandshakeKind::Full,
                "{version:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_calling_side_never_resumes_even_where_the_server_would() {
    let ca = Ca::new("example.org");
    let client = store_with(&ca, CLIENT_ID, 60, &[("example.org", &[&ca])]);
    for version in VERSIONS {
        let addr = serve_resuming(&ca, version).await;
        // The server resumes a client that keeps sessions...
        let resuming = resuming_client(&ca, version);
        handshake_kind(addr, Arc::clone(&resuming)).await;
        assert_eq!(
            handshake_kind(addr, resuming).await,
            HandshakeKind::Resumed,
            "{version:?}"
        );
        // ...and never the rotating client config.
        let config = Arc::new(
            svid_client_config(&client, Authorizer::id(SERVER_ID.parse().unwrap())).unwrap(),
        );
        for _ in 0..3 {
            assert_eq!(
                handshake_kind(addr, Arc::clone(&config)).await,
                HandshakeKind::Full,
                "{version:?}"
            );
        }
    }
}
