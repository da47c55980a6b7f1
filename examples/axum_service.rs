//! A production-shaped meshguard service: an axum documents service whose access tokens are
//! verified with keys from the identity provider (a JWKS URL, or OpenID Connect discovery),
//! whose requests are decided by Cedar policies loaded from a directory (optionally validated
//! against a schema) and reloaded when the files change, optionally served over mTLS with the
//! calling workload identified, and shut down gracefully on Ctrl-C or SIGTERM.
//!
//! # How to run, against a local JWKS
//!
//! ```sh
//! # 1. The identity provider's keys: the quickstart's DEMO public key, served on 127.0.0.1.
//! python3 -m http.server 8000 --bind 127.0.0.1 --directory examples/axum_service &
//! # 2. The service (plain http:// is accepted for loopback key URLs only).
//! cargo run --example axum_service --features axum,rustls -- \
//!     --issuer https://idp.demo.meshguard.invalid --audience api://documents \
//!     --jwks-url http://127.0.0.1:8000/demo-jwks.json \
//!     --policies examples/axum_service/policies \
//!     --schema examples/axum_service/documents.cedarschema
//! # 3. Tokens signed by the same DEMO key: `cargo run --example quickstart` prints
//! #    ALICE=... and BOB=... lines; paste them, then
//! curl -i -H "Authorization: Bearer $ALICE" http://127.0.0.1:8080/documents/d1
//! ```
//!
//! Against a real identity provider, leave out `--jwks-url`: the keys are found through
//! `{issuer}/.well-known/openid-configuration`. Every flag can also be given as an
//! environment variable (`--jwks-url` as `MESHGUARD_JWKS_URL`, and so on). For mTLS add
//! `--tls-cert server.pem --tls-key server-key.pem --client-ca ca.pem`: only clients with a
//! certificate from that CA can connect, and their identity goes to the policies as
//! `context.peer`.

#[path = "axum_service/service.rs"]
mod service;

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use meshguard::peer::{ClientRoots, MtlsConnectInfo, MtlsListener};
use meshguard::policy::ReloadEvent;
use meshguard::token::remote::RemoteJwks;
use meshguard::token::{Issuer, Verifier};
use tokio::net::TcpListener;

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str = "usage: axum_service --issuer URL --audience AUD [--jwks-url URL]
    [--policies DIR] [--schema FILE] [--listen ADDR]
    [--tls-cert PEM --tls-key PEM --client-ca PEM]
Each flag may instead be set as MESHGUARD_<FLAG> (e.g. MESHGUARD_JWKS_URL).";

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("axum_service: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("axum_service: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), BoxError> {
    // Keys: fetched now and refreshed in the background; requests never wait on warm keys.
    let keys = match &options.jwks_url {
        Some(url) => RemoteJwks::url(url),
        None => RemoteJwks::discover(&options.issuer),
    };
    let verifier = Verifier::builder()
        .issuer(Issuer::remote(&options.issuer, keys).audience(&options.audience))
        .build_async()
        .await?;

    // Policies: every `.cedar` file of the directory, validated against the schema if given.
    let engine = service::engine(&options.policies, options.schema.as_deref())?;
    let _watcher = engine.watch(Duration::from_secs(2), |event| match event {
        ReloadEvent::Reloaded { generation } => {
            eprintln!("policies reloaded: generation {generation}")
        }
        ReloadEvent::Failed { error } => {
            eprintln!("policies not reloaded, previous set kept: {error}")
        }
        _ => {}
    })?;
    let app = service::router(verifier, engine, options.tls.is_some())?;

    let tcp = TcpListener::bind(options.listen).await?;
    let addr = tcp.local_addr()?;
    match &options.tls {
        None => {
            eprintln!("documents service on http://{addr}");
            axum::serve(tcp, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
        }
        Some(tls) => {
            let roots = ClientRoots::ca_pem(&std::fs::read(&tls.client_ca)?)?;
            let config = meshguard::peer::server_config_from_pem(
                &std::fs::read(&tls.cert)?,
                &std::fs::read(&tls.key)?,
                &roots,
            )?;
            eprintln!("documents service on https://{addr} (mTLS)");
            let listener = MtlsListener::new(tcp, Arc::new(config));
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        }
    }
    eprintln!("stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM from an orchestrator.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    eprintln!("shutting down: finishing the requests in flight");
}

struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
}

struct Options {
    issuer: String,
    audience: String,
    jwks_url: Option<String>,
    policies: PathBuf,
    schema: Option<PathBuf>,
    listen: SocketAddr,
    tls: Option<TlsFiles>,
}

impl Options {
    /// `--flag value` pairs, each falling back to `MESHGUARD_FLAG` in the environment.
    fn from_args(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut given = BTreeMap::new();
        let mut args = args;
        while let Some(flag) = args.next() {
            let name = match flag.strip_prefix("--") {
                Some(
                    name @ ("issuer" | "audience" | "jwks-url" | "policies" | "schema" | "listen"
                    | "tls-cert" | "tls-key" | "client-ca"),
                ) => name.to_owned(),
                _ => return Err(format!("unknown argument `{flag}`")),
            };
            let value = args
                .next()
                .ok_or_else(|| format!("`{flag}` needs a value"))?;
            given.insert(name, value);
        }
        let mut get = |name: &str| {
            given.remove(name).or_else(|| {
                std::env::var(format!(
                    "MESHGUARD_{}",
                    name.to_uppercase().replace('-', "_")
                ))
                .ok()
            })
        };
        let issuer = get("issuer").ok_or("--issuer is required")?;
        let audience = get("audience").ok_or("--audience is required")?;
        let listen = get("listen").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let tls = match (get("tls-cert"), get("tls-key"), get("client-ca")) {
            (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
                client_ca: client_ca.into(),
            }),
            (None, None, None) => None,
            _ => return Err("mTLS needs all of --tls-cert, --tls-key and --client-ca".to_owned()),
        };
        Ok(Self {
            issuer,
            audience,
            jwks_url: get("jwks-url"),
            policies: get("policies")
                .unwrap_or_else(|| "examples/axum_service/policies".to_owned())
                .into(),
            schema: get("schema").map(PathBuf::from),
            listen: listen.parse().map_err(|_| {
                format!("--listen `{listen}` is not an address such as 127.0.0.1:8080")
            })?,
            tls,
        })
    }
}
