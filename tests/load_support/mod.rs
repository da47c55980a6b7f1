//! The servers and clients of the load-with-faults test: the documents service of
//! `examples/axum_service.rs` and a guarded tonic health service served on 127.0.0.1;
//! request kinds with the answer each must get; hyper HTTP/1.1 and HTTP/2 clients and a
//! tonic client that bound every call.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshguard::guard::GuardLayer;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::remote_support::{AUDIENCE, EXP, T0, TestKey};

/// The issuer of every token of the test.
pub const ISS: &str = "https://idp.load.meshguard.invalid";
/// The verifier's bound on a token; the oversized kind is above it, and still within
/// hyper's and h2's header limits so that the guard, not the HTTP stack, answers.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a request carries, and so what the guard must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A member's token signed by the key the JWKS serves now.
    Valid,
    /// The same, expired an hour before the test's clock.
    Expired,
    /// Signed by an attacker's key under the `kid` of the served key.
    Forged,
    /// A guest's valid token: the policies deny.
    Denied,
    /// `Authorization: Bearer` followed by something that is not one b64token.
    Malformed,
    /// A well-formed credential above [`MAX_TOKEN_BYTES`].
    Oversized,
    /// Signed by a key never published: every such request may start or join a fetch.
    UnknownKid,
    /// Signed by the key the rotation retired (before it, by another unpublished key).
    Retired,
}

impl Kind {
    /// The mix of every batch: valid requests are the most common kind, as in real traffic.
    pub const MIX: [Kind; 10] = [
        Kind::Valid,
        Kind::Valid,
        Kind::Valid,
        Kind::Expired,
        Kind::Forged,
        Kind::Denied,
        Kind::Malformed,
        Kind::Oversized,
        Kind::UnknownKid,
        Kind::Retired,
    ];
}

/// What an answer must be: an HTTP status and the problem `detail` its body carries (none
/// for a 200: the document), and the matching gRPC code. Bodies carry fixed texts, not the
/// verifier's reason, so that a forged and an unknown-key token are told apart only in logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub status: StatusCode,
    pub detail: &'static str,
}

impl Expected {
    /// The answer to `kind` when the served keys verify (`keys_usable`) or when they are
    /// past their stale period and the endpoint is failing.
    pub fn of(kind: Kind, keys_usable: bool) -> Self {
        let (status, detail) = match kind {
            // No key at all: every token fails the same way before its claims are read.
            Kind::Valid
            | Kind::Expired
            | Kind::Forged
            | Kind::Denied
            | Kind::UnknownKid
            | Kind::Retired
                if !keys_usable =>
            {
                (StatusCode::UNAUTHORIZED, "the token cannot be verified now")
            }
            Kind::Valid => (StatusCode::OK, r#""owner":"alice""#),
            Kind::Expired => (StatusCode::UNAUTHORIZED, "the token has expired"),
            Kind::Forged | Kind::Oversized | Kind::UnknownKid | Kind::Retired => {
                (StatusCode::UNAUTHORIZED, "the token is invalid")
            }
            Kind::Denied => (StatusCode::FORBIDDEN, "the request is not allowed"),
            Kind::Malformed => (
                StatusCode::BAD_REQUEST,
                "the bearer credential is malformed",
            ),
        };
        Self { status, detail }
    }

    /// The gRPC code of the same answer.
    pub fn code(self) -> Code {
        match self.status {
            StatusCode::OK => Code::Ok,
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            _ => Code::InvalidArgument,
        }
    }
}

/// The `Authorization` values of one phase: tokens signed now, so that the verifier's
/// cache of earlier phases cannot answer for this one.
pub struct Credentials {
    by_kind: BTreeMap<Kind, String>,
}

impl Credentials {
    /// Credentials for a phase in which `current` is the served key and `retired` is not.
    pub fn new(
        phase: &str,
        current: &TestKey,
        retired: &TestKey,
        never_published: &TestKey,
    ) -> Self {
        let claims = |roles: &[&str], exp: i64| {
            json!({
                "iss": ISS, "aud": AUDIENCE, "sub": "alice", "exp": exp,
                "roles": roles, "phase": phase,
            })
        };
        let member = claims(&["member"], EXP);
        let forger = TestKey::es256(&current.kid);
        let oversized = format!("{}.{}.{}", "e".repeat(MAX_TOKEN_BYTES), "e", "e");
        let by_kind = [
            (Kind::Valid, current.token_with_claims(&member)),
            (
                Kind::Expired,
                current.token_with_claims(&claims(&["member"], T0 - 3600)),
            ),
            (Kind::Forged, forger.token_with_claims(&member)),
            (
                Kind::Denied,
                current.token_with_claims(&claims(&["guest"], EXP)),
            ),
            (Kind::Oversized, oversized),
            (Kind::UnknownKid, never_published.token_with_claims(&member)),
            (Kind::Retired, retired.token_with_claims(&member)),
        ]
        .into_iter()
        .map(|(kind, token)| (kind, format!("Bearer {token}")))
        .chain([(Kind::Malformed, "Bearer not one token".to_owned())])
        .collect();
        Self { by_kind }
    }

    pub fn header(&self, kind: Kind) -> &str {
        &self.by_kind[&kind]
    }
}

/// Serves `app` (the documents service of `examples/axum_service.rs`) on 127.0.0.1, over
/// HTTP/1.1 and HTTP/2 as the example's `axum::serve` does.
pub async fn serve_documents(app: axum::Router) -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    addr
}

/// Member tokens may call `Check`; the action is the RPC's method path.
pub const HEALTH_POLICIES: &str = r#"
@id("members-check")
permit(
    principal in Role::"member",
    action == Action::"/grpc.health.v1.Health/Check",
    resource == Application::"health"
);
"#;

/// The tonic health service of `examples/tonic_service.rs` behind `guard`, over HTTP/2
/// without TLS (the tokens, not the peer certificate, carry the caller here).
pub async fn serve_health(guard: GuardLayer) -> SocketAddr {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(tcp);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(guard)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

/// One answer as the client saw it.
#[derive(Debug)]
pub enum Outcome {
    /// A status and body (or a gRPC code and message) within the deadline.
    Answer { status: StatusCode, body: String },
    /// A gRPC status.
    Grpc { code: Code, message: String },
    /// No answer within the client's deadline.
    TimedOut,
    /// The connection failed.
    Failed(String),
}

/// A hyper client connection, HTTP/1.1 or HTTP/2, reconnecting after a failure.
pub struct HttpClient {
    addr: SocketAddr,
    http2: bool,
    sender: Option<Sender>,
}

enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl HttpClient {
    pub fn new(addr: SocketAddr, http2: bool) -> Self {
        Self {
            addr,
            http2,
            sender: None,
        }
    }

    /// `GET path` with `authorization`, bounded by `deadline` (connecting included).
    pub async fn get(&mut self, path: &str, authorization: &str, deadline: Duration) -> Outcome {
        let request = http::Request::get(format!("http://{}{path}", self.addr))
            .header(http::header::AUTHORIZATION, authorization)
            .body(Empty::<Bytes>::new())
            .unwrap();
        match tokio::time::timeout(deadline, self.send(request)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => {
                self.sender = None;
                Outcome::Failed(error)
            }
            Err(_) => {
                self.sender = None;
                Outcome::TimedOut
            }
        }
    }

    async fn send(&mut self, mut request: http::Request<Empty<Bytes>>) -> Result<Outcome, String> {
        if self.sender.is_none() {
            self.sender = Some(self.connect().await?);
        }
        let response = match self.sender.as_mut() {
            Some(Sender::Http1(sender)) => {
                sender.ready().await.map_err(|e| e.to_string())?;
                sender.send_request(request).await
            }
            Some(Sender::Http2(sender)) => {
                // HTTP/2 requests carry the authority in the URI, not a Host header.
                *request.version_mut() = http::Version::HTTP_2;
                sender.ready().await.map_err(|e| e.to_string())?;
                sender.send_request(request).await
            }
            None => return Err("not connected".to_owned()),
        }
        .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Outcome::Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    async fn connect(&self) -> Result<Sender, String> {
        let io = TokioIo::new(
            TcpStream::connect(self.addr)
                .await
                .map_err(|e| e.to_string())?,
        );
        if self.http2 {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            Ok(Sender::Http2(sender))
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            Ok(Sender::Http1(sender))
        }
    }
}

/// A tonic `Health/Check` call with `authorization`, bounded by `deadline`.
pub async fn grpc_check(channel: &Channel, authorization: &str, deadline: Duration) -> Outcome {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    let mut client = HealthClient::new(channel.clone());
    match tokio::time::timeout(deadline, client.check(request)).await {
        Ok(Ok(_)) => Outcome::Grpc {
            code: Code::Ok,
            message: String::new(),
        },
        Ok(Err(status)) => Outcome::Grpc {
            code: status.code(),
            message: status.message().to_owned(),
        },
        Err(_) => Outcome::TimedOut,
    }
}

/// The process's resident set in KiB, from `/proc/self/status`.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Polls `done` every 20 ms for at most `bound`; whether it became true.
pub async fn wait_until(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < bound {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}
