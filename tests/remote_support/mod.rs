//! A controllable JWKS / OpenID Connect server on 127.0.0.1 (plain or TLS), test keys, a
//! clock the test moves, and a tracing subscriber that counts log events.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body::{Body, Frame, SizeHint};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use meshguard::token::{Algorithm, Clock, TokenSigner};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The instant tests start at (2030-03-17), far from the tokens' `exp`.
pub const T0: i64 = 1_900_000_000;
/// Every test token expires 60 days after [`T0`], beyond any clock jump a test makes.
pub const EXP: i64 = T0 + 60 * 24 * 3600;
pub const AUDIENCE: &str = "api";

/// What the server does with the next request.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Serve the current documents.
    Serve,
    /// Close every connection without answering, as a crashed or restarting endpoint.
    Down,
    /// Accept the request and never answer.
    Hang,
    /// Send headers announcing a body, a few bytes of it, then nothing more.
    HangMidBody,
    /// Answer with this status and an empty body.
    Status(u16),
    /// Answer 200 with this body instead of the JWKS.
    Garbage(String),
    /// Answer 200 with `chunks` chunks of 64 KiB, with or without a `Content-Length`.
    Oversized {
        chunks: usize,
        announce_length: bool,
    },
}

struct Shared {
    jwks: Mutex<String>,
    mode: Mutex<Mode>,
    cache_control: Mutex<Option<String>>,
    /// The discovery document, or `None` to build it from the server's own URLs.
    discovery: Mutex<Option<String>>,
    /// Where `/redirect` sends the client.
    redirect: Mutex<Option<String>>,
    jwks_requests: AtomicUsize,
    discovery_requests: AtomicUsize,
    base: String,
}

/// The server; it stops when dropped.
pub struct JwksServer {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    /// A plain HTTP server on an ephemeral 127.0.0.1 port serving `jwks`.
    pub async fn start(jwks: String) -> Self {
        JwksServer::spawn(jwks, None).await
    }

    /// The same over TLS, with a certificate for `localhost` issued by `tls`.
    pub async fn start_tls(jwks: String, tls: &TestPki) -> Self {
        JwksServer::spawn(jwks, Some(tls.acceptor())).await
    }

    async fn spawn(jwks: String, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = match tls {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://127.0.0.1:{}", addr.port()),
        };
        let shared = Arc::new(Shared {
            jwks: Mutex::new(jwks),
            mode: Mutex::new(Mode::Serve),
            cache_control: Mutex::new(None),
            discovery: Mutex::new(None),
            redirect: Mutex::new(None),
            jwks_requests: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
            base,
        });
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            // Connections live in the set, so stopping the server ends them too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                if matches!(*accepting.mode.lock().unwrap(), Mode::Down) {
                    drop(stream);
                    continue;
                }
                let shared = Arc::clone(&accepting);
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| respond(Arc::clone(&shared), request));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        JwksServer { shared, task }
    }

    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT`).
    pub fn base(&self) -> &str {
        &self.shared.base
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.shared.base)
    }

    /// The issuer whose discovery document this server serves.
    pub fn issuer(&self) -> String {
        format!("{}/issuer", self.shared.base)
    }

    pub fn set_jwks(&self, jwks: String) {
        *self.shared.jwks.lock().unwrap() = jwks;
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn set_cache_control(&self, value: &str) {
        *self.shared.cache_control.lock().unwrap() = Some(value.to_owned());
    }

    /// Serves `document` as the discovery document instead of the server's own.
    pub fn set_discovery(&self, document: String) {
        *self.shared.discovery.lock().unwrap() = Some(document);
    }

    /// Makes `/redirect` answer 302 with this `Location` (404 until set).
    pub fn set_redirect(&self, location: &str) {
        *self.shared.redirect.lock().unwrap() = Some(location.to_owned());
    }

    /// The URL that redirects to the one given to [`set_redirect`](Self::set_redirect).
    pub fn redirect_url(&self) -> String {
        format!("{}/redirect", self.shared.base)
    }

    /// How many requests reached the JWKS path.
    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many requests reached the discovery path.
    pub fn discovery_requests(&self) -> usize {
        self.shared.discovery_requests.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn respond(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<TestBody>, io::Error> {
    let path = request.uri().path().to_owned();
    let document = match path.as_str() {
        // `/moved` redirects to the JWKS; `/loop` redirects to itself forever.
        "/moved" | "/loop" => {
            let target = if path == "/moved" { "/jwks" } else { "/loop" };
            let mut response = status(StatusCode::FOUND);
            response.headers_mut().insert(
                hyper::header::LOCATION,
                hyper::header::HeaderValue::from_static(target),
            );
            return Ok(response);
        }
        "/redirect" => {
            let Some(target) = shared.redirect.lock().unwrap().clone() else {
                return Ok(status(StatusCode::NOT_FOUND));
            };
            let mut response = status(StatusCode::FOUND);
            response.headers_mut().insert(
                hyper::header::LOCATION,
                hyper::header::HeaderValue::from_str(&target).unwrap(),
            );
            return Ok(response);
        }
        "/jwks" => {
            shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
            shared.jwks.lock().unwrap().clone()
        }
        "/issuer/.well-known/openid-configuration" => {
            shared.discovery_requests.fetch_add(1, Ordering::SeqCst);
            shared.discovery.lock().unwrap().clone().unwrap_or_else(|| {
                json!({
                    "issuer": format!("{}/issuer", shared.base),
                    "jwks_uri": format!("{}/jwks", shared.base),
                    "id_token_signing_alg_values_supported": ["ES256"],
                })
                .to_string()
            })
        }
        _ => return Ok(status(StatusCode::NOT_FOUND)),
    };
    let mode = shared.mode.lock().unwrap().clone();
    let body = match mode {
        Mode::Serve => TestBody::Full(Some(Bytes::from(document))),
        Mode::Down => return Err(io::Error::other("endpoint is down")),
        Mode::Hang => std::future::pending().await,
        Mode::HangMidBody => TestBody::Stall {
            first: Some(Bytes::from_static(b"{\"keys\":[")),
            announced: 4096,
        },
        Mode::Status(code) => return Ok(status(StatusCode::from_u16(code).unwrap())),
        Mode::Garbage(text) => TestBody::Full(Some(Bytes::from(text))),
        Mode::Oversized {
            chunks,
            announce_length,
        } => TestBody::Chunks {
            chunk: Bytes::from(vec![b' '; 64 * 1024]),
            left: chunks,
            announce: announce_length,
        },
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Some(value) = shared.cache_control.lock().unwrap().as_deref() {
        response.headers_mut().insert(
            hyper::header::CACHE_CONTROL,
            hyper::header::HeaderValue::from_str(value).unwrap(),
        );
    }
    Ok(response)
}

fn status(code: StatusCode) -> Response<TestBody> {
    let mut response = Response::new(TestBody::Full(None));
    *response.status_mut() = code;
    response
}

/// Response bodies: whole, streamed in chunks, or stalling after a first piece.
enum TestBody {
    Full(Option<Bytes>),
    Chunks {
        chunk: Bytes,
        left: usize,
        announce: bool,
    },
    Stall {
        first: Option<Bytes>,
        announced: u64,
    },
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            TestBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            TestBody::Chunks { chunk, left, .. } => {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                *left -= 1;
                Poll::Ready(Some(Ok(Frame::data(chunk.clone()))))
            }
            TestBody::Stall { first, .. } => match first.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            TestBody::Full(bytes) => bytes.is_none(),
            TestBody::Chunks { left, .. } => *left == 0,
            TestBody::Stall { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            TestBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            TestBody::Chunks {
                chunk,
                left,
                announce: true,
            } => SizeHint::with_exact((chunk.len() * *left) as u64),
            TestBody::Chunks { .. } => SizeHint::default(),
            TestBody::Stall { announced, .. } => SizeHint::with_exact(*announced),
        }
    }
}

/// An ES256 key pair minted for the test, with its public JWK and a token signer.
pub struct TestKey {
    pub kid: String,
    pub jwk: Value,
    signer: TokenSigner,
    pair: EcdsaKeyPair,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        // An uncompressed SEC1 point: 0x04 || x || y.
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        let signer = TokenSigner::new(Algorithm::ES256, pkcs8.as_ref())
            .unwrap()
            .with_kid(kid);
        TestKey {
            kid: kid.to_owned(),
            jwk,
            signer,
            pair,
        }
    }

    /// A token for `iss`, audience [`AUDIENCE`], valid from before [`T0`] to [`EXP`].
    pub fn token(&self, iss: &str) -> String {
        self.signer
            .sign(&json!({ "iss": iss, "aud": AUDIENCE, "sub": "alice", "exp": EXP }))
            .unwrap()
    }

    /// A token with exactly `claims`, signed with this key.
    pub fn token_with_claims(&self, claims: &Value) -> String {
        self.signer.sign(claims).unwrap()
    }

    /// A token for `iss` with exactly `header` as its JOSE header, signed with this key.
    pub fn token_with_header(&self, header: &Value, iss: &str) -> String {
        let claims = json!({ "iss": iss, "aud": AUDIENCE, "sub": "alice", "exp": EXP });
        self.token_with_header_and_claims(header, &claims)
    }

    /// A token with exactly `header` and `claims`, signed with this key.
    pub fn token_with_header_and_claims(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .unwrap();
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

/// A JWKS document holding `keys`.
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new() -> Arc<Self> {
        ManualClock::at(T0)
    }

    /// A clock reading `seconds` since the epoch (a real "now", for tokens a real IdP made).
    pub fn at(seconds: i64) -> Arc<Self> {
        Arc::new(ManualClock(AtomicI64::new(seconds)))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_seconds(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A CA and a `localhost` server certificate, minted at test time.
pub struct TestPki {
    pub ca_der: Vec<u8>,
    server_cert: Vec<u8>,
    server_key: Vec<u8>,
}

impl TestPki {
    pub fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let server = server_params.signed_by(&server_key, &issuer).unwrap();
        TestPki {
            ca_der: ca.der().to_vec(),
            server_cert: server.der().to_vec(),
            server_key: server_key.serialize_der(),
        }
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.server_cert.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(self.server_key.clone().into()),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// Counts meshguard's log events by level, for "logged once per change of state".
#[derive(Default)]
pub struct LogCounter {
    warnings: AtomicUsize,
    infos: AtomicUsize,
    messages: Mutex<Vec<String>>,
}

impl LogCounter {
    pub fn warnings(&self) -> usize {
        self.warnings.load(Ordering::SeqCst)
    }

    pub fn infos(&self) -> usize {
        self.infos.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

/// A tracing subscriber feeding a [`LogCounter`]; install it with
/// `tracing::subscriber::set_default` on a current-thread runtime, where meshguard's
/// background fetches run on the test's own thread.
pub struct CountingSubscriber(pub Arc<LogCounter>);

impl tracing::Subscriber for CountingSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        if !metadata.target().starts_with("meshguard") {
            return;
        }
        let counter = match *metadata.level() {
            tracing::Level::WARN => &self.0.warnings,
            tracing::Level::INFO => &self.0.infos,
            _ => return,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0
            .messages
            .lock()
            .unwrap()
            .push(format!("{} {}", metadata.level(), message.0));
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
