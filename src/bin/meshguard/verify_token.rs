//! `meshguard verify-token`: verify one token, print its claims or why it was rejected.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use meshguard::token::{Algorithm, FixedClock, Issuer, KeySet, Verifier};

/// Arguments of `verify-token`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A file holding a JWKS, a single JWK, or a PEM public key or certificate (repeatable).
    #[arg(long = "keys", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
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
    /// The token; read from stdin when absent or `-`.
    token: Option<String>,
}

/// Longest stdin input read: well past any token the verifier would accept.
const MAX_STDIN_BYTES: u64 = 1 << 20;

pub(crate) fn run(args: Args) -> ExitCode {
    let verifier = match build_verifier(&args) {
        Ok(verifier) => verifier,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let token = match args.token.as_deref() {
        Some(token) if token != "-" => token.to_owned(),
        _ => {
            let mut input = String::new();
            let read = std::io::stdin()
                .take(MAX_STDIN_BYTES)
                .read_to_string(&mut input);
            if let Err(e) = read {
                eprintln!("error: cannot read the token from stdin: {e}");
                return ExitCode::from(2);
            }
            input.trim().to_owned()
        }
    };
    match verifier.verify(&token) {
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
        Err(rejection) => {
            eprintln!("rejected: {}", rejection.reason());
            ExitCode::from(1)
        }
    }
}

fn build_verifier(args: &Args) -> Result<Verifier, String> {
    let mut keys = KeySet::new();
    for path in &args.keys {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let set = KeySet::from_document(&bytes)
            .map_err(|e| format!("cannot load keys from `{}`: {e}", path.display()))?;
        for skipped in set.skipped() {
            eprintln!("note: `{}`: skipped {skipped}", path.display());
        }
        keys.extend(set);
    }
    if args.issuers.is_empty() {
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
    if args.issuers.is_empty() {
        builder = builder.issuer(configure(Issuer::any(keys)));
    } else {
        for iss in &args.issuers {
            builder = builder.issuer(configure(Issuer::new(iss, keys.clone())));
        }
    }
    if let Some(now) = args.now {
        builder = builder.clock(Arc::new(FixedClock(now)));
    }
    builder.build().map_err(|e| e.to_string())
}
