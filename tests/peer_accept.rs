//! Idle and slow clients against `MtlsListener` and `TlsIncoming`: real sockets on loopback,
//! real mTLS handshakes with certificates minted at test time (issue 11, finding 2).
//!
//! Its own test binary: it holds over a thousand sockets and raises the process's open-files
//! limit, and its requests must complete within seconds, so other tests' sockets and threads
//! stay out of its process.
#![cfg(all(feature = "axum", feature = "tonic", feature = "rustls"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod peer_support;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use meshguard::peer::{
    ClientRoots, DEFAULT_MAX_PENDING_HANDSHAKES, HandshakeLimits, MtlsConnectInfo, MtlsListener,
    TlsIncoming, server_config,
};
use peer_support::{Ca, Leaf};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// More idle sockets than the 1,024 handshake permits the listener used to hand out.
const IDLE: usize = 1_100;

/// How long a real request may take here; the old listener kept it waiting ~10 s.
const PROMPTLY: Duration = Duration::from_secs(5);

/// A bound on waits that must end long before it; only a broken listener reaches it.
const GUARD: Duration = Duration::from_secs(60);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Pki {
    ca: Ca,
    server: Leaf,
    client: Leaf,
}

impl Pki {
    fn new() -> Self {
        let ca = Ca::new("example.org");
        let server = ca.svid("spiffe://example.org/server");
        let client = ca.svid("spiffe://example.org/ns/shop/sa/cart");
        Self { ca, server, client }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let roots = ClientRoots::spiffe()
            .with_bundle_pem("example.org".parse().unwrap(), self.ca.pem().as_bytes())
            .unwrap();
        let chain = vec![CertificateDer::from(self.server.der())];
        Arc::new(server_config(chain, key_der(&self.server), &roots).unwrap())
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.cert.der().clone()).unwrap();
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(vec![self.client.cert.der().clone()], key_der(&self.client))
                .unwrap();
        Arc::new(config)
    }

    async fn tls(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        TlsConnector::from(self.client_config())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    }
}

fn key_der(leaf: &Leaf) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()))
}

fn app() -> Router {
    Router::new().route(
        "/whoami",
        get(
            |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<MtlsConnectInfo>| async move {
                peer.identity()
                    .and_then(|id| id.spiffe_id())
                    .map_or_else(String::new, ToString::to_string)
            },
        ),
    )
}

async fn serve_axum(pki: &Pki, limits: HandshakeLimits) -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = MtlsListener::new(tcp, pki.server_config()).with_handshake_limits(limits);
    assert_eq!(listener.handshake_limits(), limits);
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let app = app().into_make_service_with_connect_info::<MtlsConnectInfo>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A real mTLS request through hyper: the status and body of `GET /whoami`.
async fn whoami(pki: &Pki, tcp: TcpStream) -> Result<(StatusCode, String), BoxError> {
    let tls = pki.tls(tcp).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let request = http::Request::get("/whoami")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(body.to_vec())?))
}

/// A TCP connection to `addr` from the loopback address `from` that sends nothing. Linux
/// answers on all of 127.0.0.0/8, so 127.0.0.2 is a second source on the same machine.
async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = enough_descriptors(TcpSocket::new_v4());
    enough_descriptors(socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0)));
    enough_descriptors(socket.connect(addr).await)
}

/// Unwraps, naming the fix when the process ran out of file descriptors (EMFILE, 24 on
/// Linux and macOS) rather than the symptom.
fn enough_descriptors<T>(result: std::io::Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) if e.raw_os_error() == Some(24) => panic!(
            "out of file descriptors: this test holds {IDLE} idle sockets and their server \
             ends and could not raise the soft limit past the hard one: raise it first \
             (`ulimit -n 8192`)"
        ),
        Err(e) => panic!("loopback socket: {e}"),
    }
}

/// Raises this process's soft limit on open files towards 8,192 (never past the hard
/// limit), once: the tests of this binary hold thousands of sockets at a time, and many
/// shells start with a soft limit of 1,024.
fn raise_descriptor_limit() {
    static RAISED: std::sync::Once = std::sync::Once::new();
    RAISED.call_once(|| {
        #[cfg(unix)]
        if let Err(e) = rlimit::increase_nofile_limit(8192) {
            eprintln!("could not raise the open-files limit: {e}");
        }
    });
}

async fn idle_sockets(from: &str, addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    raise_descriptor_limit();
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        sockets.push(connect_from(from, addr).await);
    }
    sockets
}

/// Idle sockets taken in turn from `sources` loopback addresses (127.0.1.1, 127.0.1.2, …),
/// so that no source passes its own bound before the server's global one does.
async fn idle_sockets_from(sources: usize, addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    raise_descriptor_limit();
    let mut sockets = Vec::with_capacity(count);
    for i in 0..count {
        let from = format!("127.0.1.{}", i % sources + 1);
        sockets.push(connect_from(&from, addr).await);
    }
    sockets
}

/// Waits until the server closes the oldest of `idle` (the first `count`): it held more
/// pending handshakes than its global bound, [`DEFAULT_MAX_PENDING_HANDSHAKES`].
async fn oldest_are_shed(idle: &mut [TcpStream]) {
    let over = idle.len() - DEFAULT_MAX_PENDING_HANDSHAKES;
    for tcp in &mut idle[..over] {
        closed_by_server(tcp).await;
    }
}

/// Waits until the server closes `tcp` (end of stream or reset).
async fn closed_by_server(tcp: &mut TcpStream) {
    let mut byte = [0_u8; 1];
    let read = tokio::time::timeout(GUARD, tcp.read(&mut byte))
        .await
        .expect("the server closed the connection");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "no data is sent to an idle client"
    );
}

/// The server has neither closed `tcp` nor written to it.
fn still_open(tcp: &TcpStream) -> bool {
    let mut byte = [0_u8; 1];
    matches!(tcp.try_read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_requests_complete_while_1100_idle_sockets_are_held() {
    let pki = Pki::new();
    let addr = serve_axum(&pki, HandshakeLimits::new()).await;
    // From 20 sources, 55 each: under the per-source bound (64), over the global one (1,024),
    // so only the global bound can make room.
    let mut idle = idle_sockets_from(20, addr, IDLE).await;
    oldest_are_shed(&mut idle).await;

    // From a new source, and from sources of the idle sockets.
    for from in ["127.0.0.1", "127.0.1.1", "127.0.1.20"] {
        let tcp = connect_from(from, addr).await;
        let (status, body) = tokio::time::timeout(PROMPTLY, whoami(&pki, tcp))
            .await
            .expect("served while the idle sockets are held")
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "spiffe://example.org/ns/shop/sa/cart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_requests_complete_while_1100_idle_sockets_are_held() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, Server};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let pki = Pki::new();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let incoming = TlsIncoming::new(tcp, pki.server_config());
    assert_eq!(incoming.handshake_limits(), HandshakeLimits::default());
    let addr = incoming.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    let mut idle = idle_sockets_from(20, addr, IDLE).await;
    oldest_are_shed(&mut idle).await;

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pki.ca.pem()))
        .identity(Identity::from_pem(
            pki.client.cert_pem(),
            pki.client.key_pem(),
        ))
        .domain_name("localhost");
    let call = async {
        let channel = Channel::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
    };
    tokio::time::timeout(PROMPTLY, call)
        .await
        .expect("served while the idle sockets are held")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sources_idle_sockets_shed_its_own_oldest_and_spare_other_sources() {
    let pki = Pki::new();
    // A long timeout: every close seen below is shedding, none is the timeout.
    let limits = HandshakeLimits::new()
        .with_timeout(Duration::from_secs(600))
        .with_max_pending_per_source(64);
    let addr = serve_axum(&pki, limits).await;

    // A client on another address starts its connection before the flood...
    let early = connect_from("127.0.0.2", addr).await;
    let mut flood = idle_sockets("127.0.0.1", addr, 200).await;
    // ...the flood's own oldest are closed to make room for its newest...
    for tcp in &mut flood[..200 - 64] {
        closed_by_server(tcp).await;
    }
    // ...and once the server has taken the whole flood (the last close above needed the
    // 200th connection), the newest 64 and the other address are untouched.
    assert!(flood[200 - 64..].iter().all(still_open));
    assert!(still_open(&early));
    let (status, _) = tokio::time::timeout(PROMPTLY, whoami(&pki, early))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_global_bound_the_oldest_handshake_of_any_source_is_shed() {
    let pki = Pki::new();
    let limits = HandshakeLimits::new()
        .with_timeout(Duration::from_secs(600))
        .with_max_pending(32)
        .with_max_pending_per_source(32);
    let addr = serve_axum(&pki, limits).await;

    let mut other = idle_sockets("127.0.0.2", addr, 8).await;
    let mut flood = idle_sockets("127.0.0.1", addr, 40).await;
    // 48 connections, room for 32: the 8 from 127.0.0.2 and the 8 oldest of the flood go.
    for tcp in other.iter_mut().chain(&mut flood[..8]) {
        closed_by_server(tcp).await;
    }
    assert!(flood[8..].iter().all(still_open));

    let tcp = connect_from("127.0.0.2", addr).await;
    let (status, _) = tokio::time::timeout(PROMPTLY, whoami(&pki, tcp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    // The request's connection took the place of the oldest idle one.
    closed_by_server(&mut flood[8]).await;
    assert!(flood[9..].iter().all(still_open));
}

/// A real ClientHello, sent one byte at a time: the deadline covers the whole handshake,
/// so dribbling does not extend it.
#[tokio::test]
async fn a_handshake_dribbled_byte_by_byte_is_cut_off_at_the_timeout() {
    let pki = Pki::new();
    let limits = HandshakeLimits::new().with_timeout(Duration::from_millis(500));
    let addr = serve_axum(&pki, limits).await;

    let mut client = rustls::ClientConnection::new(
        pki.client_config(),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    // At 50 ms a byte the hello would take far longer than the timeout.
    assert!(hello.len() > 100, "a ClientHello of {} bytes", hello.len());

    let mut tcp = connect_from("127.0.0.1", addr).await;
    let mut sent = 0;
    for byte in &hello {
        if tcp.write_all(std::slice::from_ref(byte)).await.is_err() || !still_open(&tcp) {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sent < hello.len(),
        "the whole ClientHello was accepted at a dribble"
    );
}

/// `MtlsListener`'s documented way to serve untrusted clients: hyper's HTTP/1 builder with a
/// timer and a header read timeout, HTTP/2 when ALPN chose it.
async fn serve_with_header_timeout(pki: &Pki, header_timeout: Duration) -> SocketAddr {
    use axum::Extension;
    use axum::extract::ConnectInfo;
    use axum::serve::Listener as _;
    use hyper::server::conn::{http1, http2};
    use hyper_util::rt::TokioExecutor;
    use hyper_util::service::TowerToHyperService;

    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut listener = MtlsListener::new(tcp, pki.server_config());
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = app();
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        let h2 = http2::Builder::new(TokioExecutor::new());
        loop {
            let (stream, remote) = listener.accept().await;
            let info = MtlsConnectInfo::new(remote, stream.identity().cloned());
            let is_h2 = stream.get_ref().get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let service = TowerToHyperService::new(app.clone().layer(Extension(ConnectInfo(info))));
            let io = TokioIo::new(stream);
            if is_h2 {
                tokio::spawn(h2.serve_connection(io, service));
            } else {
                tokio::spawn(h1.serve_connection(io, service).with_upgrades());
            }
        }
    });
    addr
}

/// After TLS, header dribbling is the HTTP server's to bound: served as `MtlsListener`'s
/// docs show, a client sending headers a line at a time, or nothing, is cut off.
#[tokio::test]
async fn slow_http_clients_are_cut_off_by_the_documented_hyper_setup() {
    let pki = Pki::new();
    let addr = serve_with_header_timeout(&pki, Duration::from_millis(500)).await;

    // The setup serves real requests, with the client's identity.
    let tcp = connect_from("127.0.0.1", addr).await;
    let (status, body) = whoami(&pki, tcp).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "spiffe://example.org/ns/shop/sa/cart")
    );

    // Nothing sent after the handshake: closed.
    let mut idle = pki
        .tls(connect_from("127.0.0.1", addr).await)
        .await
        .unwrap();
    let mut buf = [0_u8; 256];
    let read = tokio::time::timeout(GUARD, idle.read(&mut buf))
        .await
        .expect("an idle TLS connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    // 200 header lines at 50 ms each would take ten seconds.
    let mut tls = pki
        .tls(connect_from("127.0.0.1", addr).await)
        .await
        .unwrap();
    tls.write_all(b"GET /whoami HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let mut sent = 0;
    for _ in 0..200 {
        if tls.write_all(b"x-slow: 1\r\n").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(50), tls.read(&mut buf)).await {
            // Closed, or answered before the request was complete.
            Ok(_) => break,
            Err(_) => sent += 1,
        }
    }
    assert!(sent < 200, "the server waited for every dribbled header");
}
