//! Short-lived SVIDs minted at test time, the servers (axum through `MtlsListener`, tonic
//! through `TlsIncoming`) and the clients (raw tokio-rustls + hyper, reqwest, tonic over
//! `SvidConnector`) the rotation tests run.

#![allow(unreachable_pub)]
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use meshguard::peer::{
    Authorizer, MtlsConnectInfo, MtlsListener, PeerIdentity, SvidConnector, SvidStore, TlsIncoming,
    X509Update, peer_identity,
};
use rcgen::ExtendedKeyUsagePurpose;
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

pub use crate::peer_support::{Ca, Leaf, svid_params};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub const SERVER_ID: &str = "spiffe://example.org/ns/shop/sa/orders";
pub const CLIENT_ID: &str = "spiffe://example.org/ns/shop/sa/cart";

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// An X509-SVID for `id` signed by `ca`, valid from a second ago for `lifetime` seconds,
/// for clients and servers alike (both extended key usages, DNS SAN `localhost`).
pub fn short_svid(ca: &Ca, id: &str, lifetime: i64) -> Leaf {
    let t = now();
    svid_valid(ca, id, t - 1, t + lifetime)
}

/// An X509-SVID for `id` signed by `ca`, valid from `from` to `until` (Unix seconds).
pub fn svid_valid(ca: &Ca, id: &str, from: i64, until: i64) -> Leaf {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let mut params = svid_params(id);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = epoch + Duration::from_secs(u64::try_from(from).unwrap());
    params.not_after = epoch + Duration::from_secs(u64::try_from(until).unwrap());
    ca.sign(&params)
}

pub fn key_der(leaf: &Leaf) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()))
}

/// A delivery of `leaf` with the roots of each trust domain in `bundles`.
pub fn delivery(leaf: &Leaf, bundles: &[(&str, &[&Ca])]) -> X509Update {
    let mut update = X509Update::new(vec![leaf.cert.der().clone()], key_der(leaf));
    for (td, cas) in bundles {
        let roots: Vec<CertificateDer<'static>> =
            cas.iter().map(|ca| ca.cert.der().clone()).collect();
        update = update.with_bundle(td.parse().unwrap(), roots);
    }
    update
}

/// A store holding a fresh SVID for `id` from `ca` (for `lifetime` seconds) and `bundles`.
pub fn store_with(ca: &Ca, id: &str, lifetime: i64, bundles: &[(&str, &[&Ca])]) -> SvidStore {
    let store = SvidStore::new();
    store
        .update(delivery(&short_svid(ca, id, lifetime), bundles))
        .unwrap();
    store
}

/// An axum server answering `/` with the client's SPIFFE ID and certificate thumbprint,
/// and the number of requests it answered.
pub async fn serve_axum(config: Arc<rustls::ServerConfig>) -> (SocketAddr, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    let app = Router::new().route(
        "/",
        get(
            move |ConnectInfo(peer): ConnectInfo<MtlsConnectInfo>| async move {
                count.fetch_add(1, Ordering::SeqCst);
                let id = peer.identity().unwrap();
                format!("{} {}", id.spiffe_id().unwrap(), id.x5t_s256())
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
    (addr, served)
}

/// A tonic health server that requires a readable client identity on every request.
pub async fn serve_tonic(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let incoming = TlsIncoming::new(tcp, config);
    let addr = incoming.local_addr().unwrap();
    let service = tonic::service::interceptor::InterceptedService::new(health, |request| {
        peer_identity(&request).map_err(|e| tonic::Status::unauthenticated(e.reason()))?;
        Ok(request)
    });
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

/// An HTTP/1.1 connection over TLS made with `config`, with the server's identity and how
/// the handshake went.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<
    (
        SendRequest<Empty<Bytes>>,
        PeerIdentity,
        rustls::HandshakeKind,
    ),
    BoxError,
> {
    let tcp = TcpStream::connect(addr).await?;
    let tls = TlsConnector::from(config)
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let session = tls.get_ref().1;
    let server =
        PeerIdentity::from_der_chain(session.peer_certificates().ok_or("no certificate")?)?;
    let kind = session.handshake_kind().ok_or("handshake not done")?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok((sender, server, kind))
}

/// `GET /` on an open connection: the body when the answer is 200.
pub async fn get_root(sender: &mut SendRequest<Empty<Bytes>>) -> Result<String, BoxError> {
    let request = http::Request::get("/")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if response.status() != StatusCode::OK {
        return Err(format!("status {}", response.status()).into());
    }
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec())?)
}

/// One request on a new connection (a full handshake): the body and the server's identity.
pub async fn raw_get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<(String, PeerIdentity), BoxError> {
    let (mut sender, server, _) = connect(addr, config).await?;
    Ok((get_root(&mut sender).await?, server))
}

/// A tonic channel to `addr` over [`SvidConnector`].
pub async fn tonic_channel(
    addr: SocketAddr,
    store: &SvidStore,
    authorizer: Authorizer,
) -> Result<tonic::transport::Channel, BoxError> {
    let connector = SvidConnector::new(store, authorizer)?;
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .origin(format!("https://localhost:{}", addr.port()).parse()?)
        .connect_with_connector(connector)
        .await?)
}

/// One health check on `channel`.
pub async fn tonic_check(channel: tonic::transport::Channel) -> Result<(), BoxError> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(())
}

/// The rustls error under an error from a connection attempt, if any.
pub fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(found);
        }
        cause = e.source();
    }
    None
}
