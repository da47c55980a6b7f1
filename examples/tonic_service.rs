//! gRPC over mTLS with Cedar per RPC method: the standard `grpc.health.v1.Health` service
//! behind a meshguard [`GuardLayer`] on a tonic server.
//!
//! The guard identifies the calling workload by the SPIFFE ID of its client certificate
//! (only trust domain `example.org` may connect) and decides every call with the Cedar
//! policies below, where the action is the RPC's method path:
//! `spiffe://example.org/ns/shop/sa/cart` may call `Check` but not `Watch`.
//!
//! ```text
//! cargo run --example tonic_service --features tonic,rustls
//! ```
//!
//! mints a throw-away CA and X509-SVIDs, serves on 127.0.0.1, calls `Check` (allowed) and
//! `Watch` (denied: PERMISSION_DENIED) with a tonic client as the cart workload, prints the
//! outcomes, and exits non-zero when one differs from the expectation.
//!
//! Options:
//! - `--serve-only` keeps serving instead of running the client; `--listen ADDR` picks the
//!   address (default `127.0.0.1:0`, any free port).
//! - `--write-certs DIR` writes the minted demo PKI to `DIR` (`ca.pem`, `server.pem`,
//!   `server-key.pem`, `client.pem`, `client-key.pem`), so that other clients can call the
//!   server, for example
//!   `grpc_health_probe -addr ADDR -tls -tls-ca-cert DIR/ca.pem -tls-client-cert DIR/client.pem
//!   -tls-client-key DIR/client-key.pem -tls-server-name localhost`.
//! - `--certs DIR` loads those five files from `DIR` instead of minting them: the CA is the
//!   SPIFFE bundle of `example.org`, the server certificate must be valid for `localhost`,
//!   and the client certificate is the X509-SVID the client presents.
//!
//! The private keys minted here are demo keys, created at start and never reused.

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use meshguard::guard::GuardLayer;
use meshguard::peer::{
    Authorizer, ClientRoots, PeerIdentity, PeerIdentityLayer, TlsIncoming, server_config_from_pem,
};
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, Server};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

type BoxError = Box<dyn Error + Send + Sync>;

const TRUST_DOMAIN: &str = "example.org";
const SERVER_ID: &str = "spiffe://example.org/ns/ops/sa/health";
const CLIENT_ID: &str = "spiffe://example.org/ns/shop/sa/cart";

/// Cedar policies per RPC method: the action is `Action::"/package.Service/Method"`, the
/// resource `Application::"health"`, the principal of a workload `Service::"<SPIFFE ID>"`.
const POLICIES: &str = r#"
@id("cart-may-check")
permit(
    principal == Service::"spiffe://example.org/ns/shop/sa/cart",
    action == Action::"/grpc.health.v1.Health/Check",
    resource == Application::"health"
);
@id("ops-may-watch")
permit(
    principal == Service::"spiffe://example.org/ns/ops/sa/monitor",
    action in [Action::"/grpc.health.v1.Health/Check", Action::"/grpc.health.v1.Health/Watch"],
    resource == Application::"health"
);
"#;

/// The five PEM files of the demo PKI.
struct Pem {
    ca: String,
    server: String,
    server_key: String,
    client: String,
    client_key: String,
}

struct Options {
    serve_only: bool,
    listen: SocketAddr,
    certs: Option<PathBuf>,
    write_certs: Option<PathBuf>,
}

impl Options {
    fn parse() -> Result<Self, BoxError> {
        let mut options = Options {
            serve_only: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            certs: None,
            write_certs: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("`{arg}` needs a value"));
            match arg.as_str() {
                "--serve-only" => options.serve_only = true,
                "--listen" => options.listen = value()?.parse()?,
                "--certs" => options.certs = Some(value()?.into()),
                "--write-certs" => options.write_certs = Some(value()?.into()),
                other => {
                    return Err(format!(
                        "unknown argument `{other}`; expected --serve-only, --listen ADDR, \
                         --certs DIR or --write-certs DIR"
                    )
                    .into());
                }
            }
        }
        Ok(options)
    }
}

const USAGE: &str =
    "usage: tonic_service [--serve-only] [--listen ADDR] [--certs DIR | --write-certs DIR]
Serves grpc.health.v1.Health behind a guard over mTLS on 127.0.0.1, calls Check (allowed) and
Watch (PERMISSION_DENIED) as the cart workload, and exits non-zero if an outcome differs.
  --serve-only       keep serving instead of running the client
  --listen ADDR      the address to serve on (default 127.0.0.1:0, any free port)
  --write-certs DIR  write the minted demo PKI to DIR
  --certs DIR        load the demo PKI from DIR instead of minting it";

#[tokio::main]
async fn main() -> Result<ExitCode, BoxError> {
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "--help" || arg == "-h")
    {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let options = Options::parse()?;
    let pem = match &options.certs {
        Some(dir) => Pem::load(dir)?,
        None => Pem::mint()?,
    };
    if let Some(dir) = &options.write_certs {
        pem.write(dir)?;
        println!("demo PKI written to {}", dir.display());
    }

    // The server: rustls requires a client certificate chained to example.org's bundle; the
    // guard admits example.org workloads and asks the policies about each RPC.
    let roots = ClientRoots::spiffe().with_bundle_pem(TRUST_DOMAIN.parse()?, pem.ca.as_bytes())?;
    let tls = server_config_from_pem(pem.server.as_bytes(), pem.server_key.as_bytes(), &roots)?;
    let engine = PolicyEngine::builder(PolicySource::text(POLICIES)).build()?;
    let guard = GuardLayer::builder()
        .peer(PeerIdentityLayer::new().authorize(Authorizer::member_of(TRUST_DOMAIN.parse()?)))
        .policies(engine, HttpMapping::grpc("health"))
        .build()?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let incoming = TlsIncoming::new(listener, std::sync::Arc::new(tls));
    let addr = incoming.local_addr()?;
    let server = tokio::spawn(
        Server::builder()
            .layer(guard)
            .add_service(health)
            .serve_with_incoming(incoming),
    );
    println!("grpc.health.v1.Health on https://{addr} (mTLS, SPIFFE, Cedar per method)");

    if options.serve_only {
        server.await??;
        return Ok(ExitCode::SUCCESS);
    }

    let channel = connect(addr, &pem).await?;
    let mut client = HealthClient::new(channel);
    let check = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|response| format!("{:?}", response.into_inner().status()));
    let watch = client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| "stream opened".to_owned());

    let caller = PeerIdentity::from_pem(pem.client.as_bytes())?;
    let caller = caller
        .spiffe_id()
        .map_or("(no SPIFFE ID)", |id| id.as_str());
    println!("caller: {caller}");
    let mut all_expected = true;
    for (method, outcome, expected) in [
        ("Check", check, Code::Ok),
        ("Watch", watch, Code::PermissionDenied),
    ] {
        let code = outcome.as_ref().map_or_else(Status::code, |_| Code::Ok);
        let shown = match &outcome {
            Ok(answer) => format!("OK ({answer})"),
            Err(status) => format!("{:?}: {}", status.code(), status.message()),
        };
        let verdict = if code == expected {
            "as expected"
        } else {
            all_expected = false;
            "UNEXPECTED"
        };
        println!("  /grpc.health.v1.Health/{method:<6} -> {shown:<52} [{verdict}]");
    }
    Ok(if all_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A tonic channel to `addr` presenting the client certificate.
async fn connect(addr: SocketAddr, pem: &Pem) -> Result<Channel, BoxError> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pem.ca))
        .identity(Identity::from_pem(&pem.client, &pem.client_key))
        .domain_name("localhost");
    Ok(Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect()
        .await?)
}

impl Pem {
    /// A throw-away CA for example.org, a server SVID valid for `localhost` and the cart
    /// workload's SVID.
    fn mint() -> Result<Self, BoxError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.subject_alt_names =
            vec![SanType::URI(format!("spiffe://{TRUST_DOMAIN}").try_into()?)];
        let ca_key = KeyPair::generate()?;
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let svid = |id: &str| -> Result<(String, String), BoxError> {
            let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
            params.subject_alt_names.push(SanType::URI(id.try_into()?));
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &issuer)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (server, server_key) = svid(SERVER_ID)?;
        let (client, client_key) = svid(CLIENT_ID)?;
        Ok(Self {
            ca: ca.pem(),
            server,
            server_key,
            client,
            client_key,
        })
    }

    fn load(dir: &Path) -> Result<Self, BoxError> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        Ok(Self {
            ca: read("ca.pem")?,
            server: read("server.pem")?,
            server_key: read("server-key.pem")?,
            client: read("client.pem")?,
            client_key: read("client-key.pem")?,
        })
    }

    fn write(&self, dir: &Path) -> Result<(), BoxError> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in [
            ("ca.pem", &self.ca),
            ("server.pem", &self.server),
            ("server-key.pem", &self.server_key),
            ("client.pem", &self.client),
            ("client-key.pem", &self.client_key),
        ] {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }
}
