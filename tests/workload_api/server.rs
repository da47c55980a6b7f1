//! A test Workload API server: the SPIFFE Workload API's `FetchX509SVID` stream spoken over
//! gRPC on a real unix socket, as a SPIRE agent serves it. It is not a mock of the client:
//! meshguard's source talks to it through the spiffe crate exactly as it would to an agent.
//!
//! There is no `protoc` here, so the messages of `workload.proto` that the stream uses are
//! written out with prost's derive (field numbers and types as in the specification's
//! protobuf definition). The server answers `InvalidArgument` to a request without the
//! `workload.spiffe.io: true` metadata, as the Workload Endpoint specification requires,
//! and counts both kinds of request so that tests can check the client sends it.

#![allow(unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt as _};
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, ServerStreamingService};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

use crate::peer_support::{Ca, svid_params};

/// `X509SVIDRequest`: empty.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509SvidRequest {}

/// `X509SVIDResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509SvidResponse {
    #[prost(message, repeated, tag = "1")]
    pub svids: Vec<X509Svid>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub crl: Vec<Vec<u8>>,
    /// Keyed by the trust domain's SPIFFE ID (`spiffe://example.org`); concatenated DER.
    #[prost(map = "string, bytes", tag = "3")]
    pub federated_bundles: HashMap<String, Vec<u8>>,
}

/// `X509SVID`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509Svid {
    #[prost(string, tag = "1")]
    pub spiffe_id: String,
    /// The chain, leaf first, as concatenated DER.
    #[prost(bytes = "vec", tag = "2")]
    pub x509_svid: Vec<u8>,
    /// PKCS#8 DER.
    #[prost(bytes = "vec", tag = "3")]
    pub x509_svid_key: Vec<u8>,
    /// The roots of the SVID's own trust domain, as concatenated DER.
    #[prost(bytes = "vec", tag = "4")]
    pub bundle: Vec<u8>,
    #[prost(string, tag = "5")]
    pub hint: String,
}

pub const FETCH_X509_SVID: &str = "/SpiffeWorkloadAPI/FetchX509SVID";

/// What the server shares across restarts: the delivery it streams and its counters.
pub struct State {
    delivery: watch::Sender<Option<X509SvidResponse>>,
    refuse_with: Mutex<Option<Code>>,
    /// Each stream ends after its first delivery, as a misbehaving agent's would.
    end_after_first: AtomicBool,
    /// Requests that carried `workload.spiffe.io: true`.
    pub with_header: AtomicUsize,
    /// Requests refused for want of it.
    pub without_header: AtomicUsize,
    /// Streams open now.
    pub open_streams: AtomicUsize,
}

/// The server on its socket; it runs on a runtime of its own so that [`kill`](Self::kill)
/// ends it as a crash would: every connection closes at once, mid-stream.
pub struct TestWorkloadApi {
    pub state: Arc<State>,
    dir: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestWorkloadApi {
    /// A server on a fresh socket, streaming nothing until [`push`](Self::push).
    pub fn start() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "meshguard-wapi-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            state: Arc::new(State {
                delivery: watch::Sender::new(None),
                refuse_with: Mutex::new(None),
                end_after_first: AtomicBool::new(false),
                with_header: AtomicUsize::new(0),
                without_header: AtomicUsize::new(0),
                open_streams: AtomicUsize::new(0),
            }),
            dir,
            runtime: None,
        };
        server.restart();
        server
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    /// `unix:///…/agent.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Sends `response` on every open stream, and first on every stream opened later.
    pub fn push(&self, response: X509SvidResponse) {
        self.state.delivery.send_replace(Some(response));
    }

    /// Answers every later request with `code` instead of a stream.
    pub fn refuse_with(&self, code: Code) {
        *self.state.refuse_with.lock().unwrap() = Some(code);
    }

    /// Answers later requests with a stream again (after [`refuse_with`](Self::refuse_with)).
    pub fn accept_again(&self) {
        *self.state.refuse_with.lock().unwrap() = None;
    }

    /// Ends every stream opened later once it has sent its first delivery.
    pub fn end_streams_after_first_delivery(&self) {
        self.state.end_after_first.store(true, Ordering::SeqCst);
    }

    /// Stops the server as a crash would: its runtime goes, with every connection.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Serves again on the same socket path (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        let listener = std::os::unix::net::UnixListener::bind(self.socket()).unwrap();
        listener.set_nonblocking(true).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let service = WorkloadApi(Arc::clone(&self.state));
        runtime.spawn(async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        self.runtime = Some(runtime);
    }
}

impl Drop for TestWorkloadApi {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `SpiffeWorkloadAPI` gRPC service (only `FetchX509SVID`).
#[derive(Clone)]
struct WorkloadApi(Arc<State>);

impl NamedService for WorkloadApi {
    const NAME: &'static str = "SpiffeWorkloadAPI";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<http::Request<Body>> for WorkloadApi {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let state = Arc::clone(&self.0);
        Box::pin(async move {
            if request.uri().path() != FETCH_X509_SVID {
                return Ok(Status::unimplemented("only FetchX509SVID here").into_http());
            }
            let mut grpc = Grpc::new(ProstCodec::<X509SvidResponse, X509SvidRequest>::default());
            Ok(grpc.server_streaming(FetchX509Svid(state), request).await)
        })
    }
}

struct FetchX509Svid(Arc<State>);

type Deliveries = Pin<Box<dyn Stream<Item = Result<X509SvidResponse, Status>> + Send>>;

impl ServerStreamingService<X509SvidRequest> for FetchX509Svid {
    type Response = X509SvidResponse;
    type ResponseStream = Deliveries;
    type Future = BoxFuture<Result<tonic::Response<Deliveries>, Status>>;

    fn call(&mut self, request: tonic::Request<X509SvidRequest>) -> Self::Future {
        let state = Arc::clone(&self.0);
        Box::pin(async move {
            let header = request
                .metadata()
                .get("workload.spiffe.io")
                .and_then(|value| value.to_str().ok());
            if header != Some("true") {
                state.without_header.fetch_add(1, Ordering::SeqCst);
                return Err(Status::invalid_argument(
                    "security header missing from request",
                ));
            }
            state.with_header.fetch_add(1, Ordering::SeqCst);
            if let Some(code) = *state.refuse_with.lock().unwrap() {
                return Err(Status::new(code, "refused by the test server"));
            }
            let open = OpenStream::new(Arc::clone(&state));
            let deliveries = tokio_stream::wrappers::WatchStream::new(state.delivery.subscribe())
                .filter_map(move |delivery| {
                    let _open = &open;
                    delivery.map(Ok)
                });
            let deliveries: Deliveries = if state.end_after_first.load(Ordering::SeqCst) {
                Box::pin(deliveries.take(1))
            } else {
                Box::pin(deliveries)
            };
            Ok(tonic::Response::new(deliveries))
        })
    }
}

/// Counts a stream as open until the server drops it (the client went away, or the server
/// was killed).
struct OpenStream(Arc<State>);

impl OpenStream {
    fn new(state: Arc<State>) -> Self {
        state.open_streams.fetch_add(1, Ordering::SeqCst);
        Self(state)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Builds deliveries from test PKI.
pub struct Delivery(X509SvidResponse);

impl Delivery {
    pub fn new() -> Self {
        Self(X509SvidResponse::default())
    }

    /// Adds an SVID for `id` signed by `ca`, valid from a second ago for `seconds`, with
    /// `ca`'s root as its bundle.
    pub fn svid(self, ca: &Ca, id: &str, seconds: u64) -> Self {
        self.svid_with(ca, ca, id, seconds, "", false)
    }

    /// Adds an SVID signed by `signer`, with `bundle`'s root as its bundle and the given
    /// hint; with `wrong_key`, the key of another certificate.
    pub fn svid_with(
        mut self,
        signer: &Ca,
        bundle: &Ca,
        id: &str,
        seconds: u64,
        hint: &str,
        wrong_key: bool,
    ) -> Self {
        let mut params = svid_params(id);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + (now - std::time::Duration::from_secs(1));
        params.not_after = epoch + (now + std::time::Duration::from_secs(seconds));
        let leaf = signer.sign(&params);
        let key = if wrong_key {
            rcgen::KeyPair::generate().unwrap().serialize_der()
        } else {
            leaf.key.serialize_der()
        };
        self.0.svids.push(X509Svid {
            spiffe_id: id.to_owned(),
            x509_svid: leaf.der(),
            x509_svid_key: key,
            bundle: bundle.der(),
            hint: hint.to_owned(),
        });
        self
    }

    /// Adds `ca`'s root as the bundle of the federated trust domain `trust_domain` (a
    /// name; sent keyed by its SPIFFE ID, as agents do).
    pub fn federated(mut self, trust_domain: &str, ca: &Ca) -> Self {
        self.0
            .federated_bundles
            .insert(format!("spiffe://{trust_domain}"), ca.der());
        self
    }

    /// Names the federated trust domain `trust_domain` with an empty bundle: its roots are
    /// all withdrawn.
    pub fn federated_empty(mut self, trust_domain: &str) -> Self {
        self.0
            .federated_bundles
            .insert(format!("spiffe://{trust_domain}"), Vec::new());
        self
    }

    pub fn build(self) -> X509SvidResponse {
        self.0
    }
}

/// Where a socket that nothing listens on would be.
pub fn absent_socket(server: &TestWorkloadApi) -> PathBuf {
    Path::new(&server.dir).join("absent.sock")
}
