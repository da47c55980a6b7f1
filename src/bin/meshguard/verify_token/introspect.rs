//! `verify-token --introspect URL`: an opaque token checked at its issuer's RFC 7662
//! endpoint instead of verified as a JWT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use meshguard::token::FixedClock;
use meshguard::token::introspection::{ClientAuth, Introspection, IntrospectionError};

use super::{Args, read_bounded, read_token, report};

/// The longest client secret file read.
const MAX_SECRET_BYTES: usize = 4096;

/// The flags of introspection.
#[derive(clap::Args)]
pub(crate) struct Flags {
    /// Introspect the token at this RFC 7662 endpoint (https, or http to a loopback address)
    /// instead of verifying it as a JWT; needs exactly one --issuer, and --client-id with
    /// --client-secret-file: the resource server's own client credentials.
    #[arg(
        long = "introspect",
        value_name = "URL",
        conflicts_with_all = ["keys", "jwks_url", "discover"],
        requires_all = ["client_id", "client_secret_file"]
    )]
    pub(crate) introspect: Option<String>,
    /// The client id to authenticate to the introspection endpoint with.
    #[arg(long = "client-id", value_name = "ID", requires = "introspect")]
    client_id: Option<String>,
    /// A file holding the client secret (one line; a final newline is ignored).
    #[arg(
        long = "client-secret-file",
        value_name = "FILE",
        requires = "introspect"
    )]
    client_secret_file: Option<PathBuf>,
    /// How the client authenticates: `basic` (client_secret_basic, the default) or `post`
    /// (client_secret_post).
    #[arg(long = "client-auth", value_name = "METHOD", requires = "introspect")]
    client_auth: Option<Method>,
}

/// RFC 6749 §2.3.1's two ways of sending a client secret.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Method {
    /// client_secret_basic.
    Basic,
    /// client_secret_post.
    Post,
}

/// Introspects the token: its claims (exit 0), `rejected: <reason>` (exit 1), or exit 2
/// when the endpoint cannot give a verdict (down, refusing the client's credentials,
/// answering garbage) or the flags cannot be used.
pub(crate) fn run(args: &Args, endpoint: &str) -> ExitCode {
    let introspection = match configure(args, endpoint) {
        Ok(introspection) => introspection,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let token = match read_token(args) {
        Ok(token) => token,
        Err(code) => return code,
    };
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
    let introspector = match introspection.build() {
        Ok(introspector) => introspector,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(introspector.introspect(&token)) {
        Err(unavailable @ IntrospectionError::Unavailable(_)) => {
            eprintln!("error: {unavailable}");
            ExitCode::from(2)
        }
        outcome => report(outcome.map_err(|e| e.reason())),
    }
}

/// The introspection the flags describe.
fn configure(args: &Args, endpoint: &str) -> Result<Introspection, String> {
    let flags = &args.introspection;
    let [issuer] = args.issuers.as_slice() else {
        return Err("--introspect needs exactly one --issuer".into());
    };
    let (Some(client_id), Some(path)) = (&flags.client_id, &flags.client_secret_file) else {
        return Err("--introspect needs --client-id and --client-secret-file".into());
    };
    let bytes = read_bounded(path, MAX_SECRET_BYTES)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if bytes.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "`{}` is larger than {MAX_SECRET_BYTES} bytes",
            path.display()
        ));
    }
    let secret =
        String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8", path.display()))?;
    let secret = secret.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(format!("`{}` holds no secret", path.display()));
    }
    let auth = match flags.client_auth.unwrap_or(Method::Basic) {
        Method::Basic => ClientAuth::basic(client_id, secret),
        Method::Post => ClientAuth::post(client_id, secret),
    };
    let mut introspection =
        Introspection::new(issuer, endpoint, auth).leeway(Duration::from_secs(args.leeway));
    introspection = if args.audiences.is_empty() {
        eprintln!("note: no --audience given: `aud` is not checked");
        introspection.allow_any_audience()
    } else {
        args.audiences
            .iter()
            .fold(introspection, |introspection, aud| {
                introspection.audience(aud)
            })
    };
    if let Some(now) = args.now {
        introspection = introspection.clock(Arc::new(FixedClock(now)));
    }
    Ok(introspection)
}
