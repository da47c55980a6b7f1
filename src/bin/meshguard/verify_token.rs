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

/// Arguments of `verify-token`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A file holding a JWKS, a single JWK, or a PEM public key or certificate (repeatable).
    #[arg(long = "keys", value_name = "FILE")]
    #[cfg_attr(not(feature = "remote-jwks"), arg(required = true))]
    #[cfg_attr(
        feature = "remote-jwks",
        arg(required_unless_present_any = ["jwks_url", "discover"])
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
    /// Accept only these algorithms (repeatable); keys restrict them further.
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
    #[command(flatten)]
    dpop: crate::dpop::DpopArgs,
    /// The token; read from stdin when absent or `-`.
    token: Option<String>,
}

/// Longest stdin input read: well past any token the verifier would accept.
const MAX_STDIN_BYTES: u64 = 1 << 20;

pub(crate) fn run(args: Args) -> ExitCode {
    #[cfg(feature = "remote-jwks")]
    if remote_keys(&args).is_some() {
        return run_remote(args);
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
    configure(args, keys(args)?)?
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
fn read_bounded(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    File::open(path)?.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The verifier configuration the flags describe, with `keys` for every issuer.
fn configure(args: &Args, keys: KeySet) -> Result<VerifierBuilder, String> {
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
fn issuers(args: &Args, keys: KeySet) -> Vec<Issuer> {
    #[cfg(feature = "remote-jwks")]
    if let Some(remote) = remote_keys(args) {
        return match (args.issuers.as_slice(), &args.discover) {
            ([], Some(issuer)) => vec![Issuer::remote(issuer, remote)],
            ([], None) => vec![Issuer::any_remote(remote)],
            (issuers, _) => issuers
                .iter()
                .map(|iss| Issuer::remote(iss, remote.clone()))
                .collect(),
        };
    }
    if args.issuers.is_empty() {
        vec![Issuer::any(keys)]
    } else {
        args.issuers
            .iter()
            .map(|iss| Issuer::new(iss, keys.clone()))
            .collect()
    }
}

#[cfg(feature = "remote-jwks")]
fn remote_keys(args: &Args) -> Option<RemoteJwks> {
    match (&args.jwks_url, &args.discover) {
        (Some(url), _) => Some(RemoteJwks::url(url)),
        (None, Some(issuer)) => Some(RemoteJwks::discover(issuer)),
        (None, None) => None,
    }
}

/// Verifies against a remote key source: one fetch (discovery included), then the verdict.
/// An unreachable source is a rejection (`key_source_unavailable`), not a usage error.
#[cfg(feature = "remote-jwks")]
fn run_remote(args: Args) -> ExitCode {
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
    let builder = match configure(&args, KeySet::new()) {
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
        let outcome = match args.dpop.verify_async(&verifier, &token).await {
            Ok(outcome) => outcome,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        };
        for status in verifier.remote_status() {
            if status.skipped() > 0 {
                eprintln!(
                    "note: `{}`: skipped {} unusable keys",
                    status.issuer(),
                    status.skipped()
                );
            }
            if let Some(error) = status.last_error() {
                eprintln!("note: `{}`: {error}", status.issuer());
            }
        }
        report(outcome)
    })
}
