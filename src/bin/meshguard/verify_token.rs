//! `meshguard verify-token`: verify one token, print its claims or why it was rejected.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "remote-jwks")]
use meshguard::token::remote::RemoteJwks;
use meshguard::token::{
    Algorithm, FixedClock, Issuer, KeySet, MAX_KEY_DOCUMENT_BYTES, Verifier, VerifierBuilder,
};

#[cfg(feature = "introspection")]
mod introspect;

/// Arguments of `verify-token`.
#[derive(clap::Args)]
#[cfg_attr(
    feature = "remote-jwks",
    command(group(clap::ArgGroup::new("remote").args(["jwks_url", "discover"])))
)]
pub(crate) struct Args {
    /// A file holding a JWKS, a single JWK, or a PEM public key or certificate (repeatable).
    #[arg(long = "keys", value_name = "FILE")]
    #[cfg_attr(
        not(feature = "remote-jwks"),
        arg(required_unless_present = "spiffe_bundles")
    )]
    #[cfg_attr(
        all(feature = "remote-jwks", not(feature = "introspection")),
        arg(required_unless_present_any = ["jwks_url", "discover", "spiffe_bundles"])
    )]
    #[cfg_attr(
        feature = "introspection",
        arg(required_unless_present_any = ["jwks_url", "discover", "introspect", "spiffe_bundles"])
    )]
    keys: Vec<PathBuf>,
    /// Fetch the keys from this JWKS URL (https, or http to a loopback address).
    #[cfg(feature = "remote-jwks")]
    #[arg(long = "jwks-url", value_name = "URL", conflicts_with_all = ["keys", "discover"])]
    jwks_url: Option<String>,
    /// Fetch the keys through OpenID Connect discovery of ISSUER; tokens must carry it as
    /// `iss` unless --issuer says otherwise.
    #[cfg(feature = "remote-jwks")]
    #[arg(long = "discover", value_name = "ISSUER", conflicts_with = "keys")]
    discover: Option<String>,
    /// Accept only these algorithms (repeatable); keys restrict them further. `EdDSA` and
    /// `Ed25519` are two names: give each one tokens may carry.
    #[arg(long = "alg", value_name = "ALG")]
    algorithms: Vec<Algorithm>,
    /// Accepted `iss` values (repeatable). Without it, `iss` is not checked.
    #[arg(long = "issuer", value_name = "ISS")]
    issuers: Vec<String>,
    /// Accepted `aud` values (repeatable). Without it, `aud` is not checked.
    #[arg(long = "audience", value_name = "AUD")]
    audiences: Vec<String>,
    /// Clock skew tolerated on exp/nbf/iat, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    leeway: u64,
    /// Check times against this instant (seconds since the Unix epoch) instead of the clock.
    #[arg(long, value_name = "UNIX_SECONDS", allow_hyphen_values = true)]
    now: Option<i64>,
    /// Claims that must be present (repeatable).
    #[arg(long = "require", value_name = "CLAIM")]
    required: Vec<String>,
    /// Apply a token profile: `at+jwt` is the RFC 9068 JWT access-token profile (`typ`
    /// must be `at+jwt`; iss, exp, aud, sub, client_id, iat and jti must be present).
    #[arg(
        long = "profile",
        value_name = "PROFILE",
        conflicts_with = "token_types"
    )]
    profile: Option<Profile>,
    /// Require the header `typ` to name this media type (repeatable); `at+jwt` and
    /// `application/at+jwt` are the same type, case is ignored, parameters are not.
    #[arg(long = "require-type", value_name = "TYPE")]
    token_types: Vec<String>,
    /// Allow plain http key URLs to hosts that are not loopback addresses (http to
    /// 127.0.0.1, ::1 and localhost is always allowed); anyone on the path can swap the keys.
    #[cfg(feature = "remote-jwks")]
    #[arg(long = "allow-plain-http", requires = "remote")]
    allow_plain_http: bool,
    /// Also trust the CA certificates in this PEM file for https key URLs (repeatable).
    #[cfg(feature = "remote-jwks")]
    #[arg(long = "ca-file", value_name = "FILE", requires = "remote")]
    ca_files: Vec<PathBuf>,
    /// JWT-SVIDs: SPIFFE bundles instead of issuer keys.
    #[command(flatten)]
    svid: super::verify_svid::SvidArgs,
    #[command(flatten)]
    dpop: crate::dpop::DpopArgs,
    #[cfg(feature = "introspection")]
    #[command(flatten)]
    introspection: introspect::Flags,
    /// The token; read from stdin when absent or `-`.
    token: Option<String>,
}

/// The token profiles `--profile` names.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Profile {
    /// RFC 9068: JWT access tokens.
    #[value(name = "at+jwt")]
    AtJwt,
}

/// Where the keys come from.
enum Keys {
    /// Key files, read before anything else.
    Local(KeySet),
    /// A JWKS URL or discovery, fetched once at start.
    #[cfg(feature = "remote-jwks")]
    Remote(RemoteJwks),
}

/// Longest stdin input read: well past any token the verifier would accept.
const MAX_STDIN_BYTES: u64 = 1 << 20;

pub(crate) fn run(args: Args) -> ExitCode {
    if !args.svid.spiffe_bundles.is_empty() {
        return run_svid(&args);
    }
    #[cfg(feature = "introspection")]
    if let Some(endpoint) = &args.introspection.introspect {
        return introspect::run(&args, endpoint);
    }
    #[cfg(feature = "remote-jwks")]
    match remote_keys(&args) {
        Ok(Some(remote)) => return run_remote(args, remote),
        Ok(None) => {}
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    }
    let verifier = match build_verifier(&args) {
        Ok(verifier) => verifier,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let token = match read_token(&args) {
        Ok(token) => token,
        Err(code) => return code,
    };
    match args.dpop.verify(&verifier, &token) {
        Ok(outcome) => report(outcome),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// A JWT-SVID against `--spiffe-bundle`s: the configuration is checked before the token is
/// read.
fn run_svid(args: &Args) -> ExitCode {
    let common = super::verify_svid::Common {
        audiences: &args.audiences,
        leeway: args.leeway,
        now: args.now,
    };
    let verifier = match super::verify_svid::build(&args.svid, &common) {
        Ok(verifier) => verifier,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match read_token(args) {
        Ok(token) => super::verify_svid::report(verifier.verify(&token)),
        Err(code) => code,
    }
}

/// The token from the argument, or from stdin when absent or `-`.
fn read_token(args: &Args) -> Result<String, ExitCode> {
    match args.token.as_deref() {
        Some(token) if token != "-" => Ok(token.to_owned()),
        _ => {
            let mut input = String::new();
            let read = std::io::stdin()
                .take(MAX_STDIN_BYTES)
                .read_to_string(&mut input);
            if let Err(e) = read {
                eprintln!("error: cannot read the token from stdin: {e}");
                return Err(ExitCode::from(2));
            }
            Ok(input.trim().to_owned())
        }
    }
}

/// Prints the claims (exit 0) or `rejected: <reason>` (exit 1).
fn report(outcome: crate::dpop::Outcome) -> ExitCode {
    match outcome {
        Ok(verified) => {
            match serde_json::to_string_pretty(verified.claims()) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("error: cannot print the claims: {e}");
                    return ExitCode::from(2);
                }
            }
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("rejected: {reason}");
            ExitCode::from(1)
        }
    }
}

fn build_verifier(args: &Args) -> Result<Verifier, String> {
    configure(args, Keys::Local(keys(args)?))?
        .build()
        .map_err(|e| e.to_string())
}

fn keys(args: &Args) -> Result<KeySet, String> {
    let mut keys = KeySet::new();
    for path in &args.keys {
        let bytes = read_bounded(path, MAX_KEY_DOCUMENT_BYTES)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        // Past the bound, `from_document` refuses the document as too large.
        let set = KeySet::from_document(&bytes)
            .map_err(|e| format!("cannot load keys from `{}`: {e}", path.display()))?;
        for skipped in set.skipped() {
            eprintln!("note: `{}`: skipped {skipped}", path.display());
        }
        keys.extend(set);
    }
    Ok(keys)
}

/// At most `limit + 1` bytes of the file at `path`: enough for the parser to see that a
/// longer file is over its bound, without holding the rest in memory.
pub(crate) fn read_bounded(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    File::open(path)?.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The verifier configuration the flags describe, with `keys` for every issuer.
fn configure(args: &Args, keys: Keys) -> Result<VerifierBuilder, String> {
    #[cfg(feature = "remote-jwks")]
    let implied_issuer = args.discover.is_some();
    #[cfg(not(feature = "remote-jwks"))]
    let implied_issuer = false;
    if args.issuers.is_empty() && !implied_issuer {
        eprintln!("note: no --issuer given: `iss` is not checked");
    }
    if args.audiences.is_empty() {
        eprintln!("note: no --audience given: `aud` is not checked");
    }
    let configure = |issuer: Issuer| {
        let mut issuer = issuer.leeway(Duration::from_secs(args.leeway));
        if !args.algorithms.is_empty() {
            issuer = issuer.algorithms(args.algorithms.iter().copied());
        }
        issuer = if args.audiences.is_empty() {
            issuer.allow_any_audience()
        } else {
            args.audiences
                .iter()
                .fold(issuer, |issuer, aud| issuer.audience(aud))
        };
        issuer = match args.profile {
            Some(Profile::AtJwt) => issuer.access_token_profile(),
            None => issuer,
        };
        if !args.token_types.is_empty() {
            issuer = issuer.require_token_type(&args.token_types);
        }
        args.required
            .iter()
            .fold(issuer, |issuer, claim| issuer.require_claim(claim))
    };
    let mut builder = Verifier::builder();
    for issuer in issuers(args, keys) {
        builder = builder.issuer(configure(issuer));
    }
    if let Some(now) = args.now {
        builder = builder.clock(Arc::new(FixedClock(now)));
    }
    Ok(builder)
}

/// One issuer per `--issuer` (or the discovered issuer), else any issuer, each with the keys
/// the flags name.
fn issuers(args: &Args, keys: Keys) -> Vec<Issuer> {
    match keys {
        Keys::Local(keys) if args.issuers.is_empty() => vec![Issuer::any(keys)],
        Keys::Local(keys) => args
            .issuers
            .iter()
            .map(|iss| Issuer::new(iss, keys.clone()))
            .collect(),
        #[cfg(feature = "remote-jwks")]
        Keys::Remote(remote) => match (args.issuers.as_slice(), &args.discover) {
            ([], Some(issuer)) => vec![Issuer::remote(issuer, remote)],
            ([], None) => vec![Issuer::any_remote(remote)],
            (issuers, _) => issuers
                .iter()
                .map(|iss| Issuer::remote(iss, remote.clone()))
                .collect(),
        },
    }
}

/// The remote key source the flags name, with its extra roots read; `None` for key files.
#[cfg(feature = "remote-jwks")]
fn remote_keys(args: &Args) -> Result<Option<RemoteJwks>, String> {
    let mut remote = match (&args.jwks_url, &args.discover) {
        (Some(url), _) => RemoteJwks::url(url),
        (None, Some(issuer)) => RemoteJwks::discover(issuer),
        (None, None) => return Ok(None),
    };
    if args.allow_plain_http {
        eprintln!("note: plain http allowed: keys fetched in the clear can be replaced on the way");
        remote = remote.allow_plain_http();
    }
    for path in &args.ca_files {
        for der in ca_certificates(path)? {
            remote = remote.add_root_certificate(der);
        }
    }
    Ok(Some(remote))
}

/// The DER of every `CERTIFICATE` block of a PEM file; anything else in it is an error, so
/// a key or a mangled file is not silently trusted as nothing.
#[cfg(feature = "remote-jwks")]
fn ca_certificates(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let cannot = |why: String| {
        format!(
            "cannot read CA certificates from `{}`: {why}",
            path.display()
        )
    };
    let bytes = read_bounded(path, MAX_KEY_DOCUMENT_BYTES).map_err(|e| cannot(e.to_string()))?;
    if bytes.len() > MAX_KEY_DOCUMENT_BYTES {
        return Err(cannot(format!(
            "larger than {MAX_KEY_DOCUMENT_BYTES} bytes"
        )));
    }
    let mut certificates = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let block = block.map_err(|e| cannot(e.to_string()))?;
        if block.label != "CERTIFICATE" {
            return Err(cannot(format!(
                "a `{}` block is not a certificate",
                block.label
            )));
        }
        certificates.push(block.contents);
    }
    if certificates.is_empty() {
        return Err(cannot("no CERTIFICATE block".into()));
    }
    Ok(certificates)
}

/// Verifies against a remote key source: one fetch (discovery included), then the verdict.
/// A source that gives no keys at start (unreachable, refused, a discovery document naming
/// another issuer, no usable key) is a configuration error (exit 2), not a rejection.
#[cfg(feature = "remote-jwks")]
fn run_remote(args: Args, remote: RemoteJwks) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let builder = match configure(&args, Keys::Remote(remote)) {
        Ok(builder) => builder,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let token = match read_token(&args) {
        Ok(token) => token,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let verifier = match builder.build_async().await {
            Ok(verifier) => verifier,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let mut unavailable = false;
        for status in verifier.remote_status() {
            for skipped in status.skipped_keys() {
                eprintln!("note: `{}`: skipped {skipped}", status.issuer());
            }
            if !status.health().is_ready() {
                let why = status
                    .last_error()
                    .map_or_else(|| "no keys".to_owned(), ToString::to_string);
                eprintln!("error: `{}`: cannot load the keys: {why}", status.issuer());
                unavailable = true;
            }
        }
        if unavailable {
            return ExitCode::from(2);
        }
        let outcome = match args.dpop.verify_async(&verifier, &token).await {
            Ok(outcome) => outcome,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        };
        for status in verifier.remote_status() {
            // A refresh the token caused (an unknown `kid`) that failed.
            if status.failures() > 0
                && let Some(error) = status.last_error()
            {
                eprintln!("note: `{}`: {error}", status.issuer());
            }
        }
        report(outcome)
    })
}
