//! mTLS with SPIFFE IDs: an axum service that only lets `spiffe://example.org/ns/shop/sa/cart`
//! call it. Mints a throw-away CA and SVIDs, serves on 127.0.0.1, makes one authorized and
//! one unauthorized call, and exits.
//!
//! Run with `cargo run --example mtls --features axum,rustls`.

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::peer::{Authorizer, ClientRoots, MtlsConnectInfo, MtlsListener, server_config};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str = "usage: mtls
Mints a throw-away CA and SVIDs, serves axum over mTLS on 127.0.0.1, shows the cart workload
answered and another workload refused, and exits.";

#[tokio::main]
async fn main() -> Result<ExitCode, BoxError> {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("--help" | "-h") => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        Some(other) => {
            eprintln!("mtls: unknown argument `{other}`\n{USAGE}");
            return Ok(ExitCode::from(2));
        }
    }
    let pki = DemoPki::new()?;

    // The service: rustls requires a client certificate chained to example.org's bundle,
    // and the handler authorizes the caller's SPIFFE ID.
    let roots =
        ClientRoots::spiffe().with_bundle_pem("example.org".parse()?, pki.ca_pem.as_bytes())?;
    let server = pki.svid("spiffe://example.org/ns/shop/sa/orders")?;
    let config = server_config(vec![server.0], server.1, &roots)?;
    let allowed = Authorizer::id("spiffe://example.org/ns/shop/sa/cart".parse()?);
    let app = Router::new().route(
        "/orders",
        get(
            move |ConnectInfo(peer): ConnectInfo<MtlsConnectInfo>| async move {
                let Some(identity) = peer.identity() else {
                    return (StatusCode::UNAUTHORIZED, "no client certificate".to_owned());
                };
                match allowed.authorize(identity) {
                    Ok(()) => (StatusCode::OK, "3 open orders".to_owned()),
                    Err(e) => (StatusCode::FORBIDDEN, e.reason().to_owned()),
                }
            },
        ),
    );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    let listener = MtlsListener::new(tcp, Arc::new(config));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
        )
        .await
    });
    println!("orders service on https://{addr} (mTLS, SPIFFE)");

    for workload in [
        "spiffe://example.org/ns/shop/sa/cart",
        "spiffe://example.org/ns/shop/sa/ads",
    ] {
        let (status, body) = call(addr, &pki, pki.svid(workload)?).await?;
        println!("{workload} -> {status} {body}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A throw-away CA for the trust domain example.org.
struct DemoPki {
    ca_params: CertificateParams,
    ca_key: KeyPair,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
}

impl DemoPki {
    fn new() -> Result<Self, BoxError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.subject_alt_names = vec![SanType::URI("spiffe://example.org".try_into()?)];
        let ca_key = KeyPair::generate()?;
        let ca = ca_params.self_signed(&ca_key)?;
        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            ca_params,
            ca_key,
        })
    }

    /// An X509-SVID (with DNS SAN `localhost`, so it also serves as a server certificate).
    fn svid(
        &self,
        id: &str,
    ) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), BoxError> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params.subject_alt_names.push(SanType::URI(id.try_into()?));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &Issuer::from_params(&self.ca_params, &self.ca_key))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((cert.der().clone(), key))
    }
}

/// GET /orders over mTLS as the workload holding `svid`.
async fn call(
    addr: SocketAddr,
    pki: &DemoPki,
    svid: (CertificateDer<'static>, PrivateKeyDer<'static>),
) -> Result<(StatusCode, String), BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(vec![svid.0], svid.1)?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let request = http::Request::get("/orders")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
