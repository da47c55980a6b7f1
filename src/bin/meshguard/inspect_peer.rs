//! `meshguard inspect-peer`: the identity of a certificate or an XFCC header, as JSON.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use meshguard::peer::{MAX_PEM_LEN, PeerError, PeerIdentity, XfccPolicy, parse_xfcc};

/// Print the identity of a client certificate or an XFCC header value as JSON with the keys
/// `spiffe_id` (null if none), `dns`, `uris`, `subject` and `sha256` (hex). For `--xfcc`
/// the rightmost element is read, as a trusted proxy's policy does by default.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["cert", "xfcc"])))]
pub(crate) struct Args {
    /// PEM file with the certificate chain, leaf first.
    #[arg(long, value_name = "FILE.pem")]
    cert: Option<PathBuf>,
    /// An x-forwarded-client-cert header value.
    #[arg(long, value_name = "VALUE")]
    xfcc: Option<String>,
}

pub(crate) fn run(args: Args) -> ExitCode {
    // clap's argument group guarantees exactly one of the two inputs.
    let identity = match args.cert {
        Some(path) => {
            read_pem(&path).and_then(|pem| PeerIdentity::from_pem(&pem).map_err(|e| e.reason()))
        }
        None => from_xfcc(args.xfcc.as_deref().unwrap_or_default()).map_err(|e| e.reason()),
    };
    match identity {
        Ok(identity) => {
            println!("{}", to_json(&identity));
            ExitCode::SUCCESS
        }
        Err(rejection) => {
            eprintln!("rejected: {rejection}");
            ExitCode::from(1)
        }
    }
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, &'static str> {
    let file = std::fs::File::open(path).map_err(|_| "cannot_read_file")?;
    let mut pem = Vec::new();
    // One byte past the bound tells an over-long file from one exactly at the bound.
    file.take(
        u64::try_from(MAX_PEM_LEN)
            .unwrap_or(u64::MAX)
            .saturating_add(1),
    )
    .read_to_end(&mut pem)
    .map_err(|_| "cannot_read_file")?;
    Ok(pem)
}

fn from_xfcc(header: &str) -> Result<PeerIdentity, PeerError> {
    let elements = parse_xfcc(header)?;
    XfccPolicy::disabled().select(&elements)?.identity()
}

fn to_json(identity: &PeerIdentity) -> serde_json::Value {
    serde_json::json!({
        "spiffe_id": identity.spiffe_id().map(|id| id.as_str()),
        "dns": identity.dns_names(),
        "uris": identity.uris(),
        "subject": identity.subject(),
        "sha256": identity.sha256().iter().map(|b| format!("{b:02x}")).collect::<String>(),
    })
}
