//! `meshguard verify-token --spiffe-bundle TRUST_DOMAIN=FILE`: verify a JWT-SVID against
//! SPIFFE bundles instead of an issuer's keys.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use meshguard::peer::TrustDomain;
use meshguard::token::FixedClock;
use meshguard::token::jwt_svid::{
    BundleSet, JwtSvidVerifier, MAX_SPIFFE_BUNDLE_BYTES, SpiffeBundle, VerifiedJwtSvid,
};

/// The JWT-SVID flags of `verify-token`.
#[derive(clap::Args)]
pub(crate) struct SvidArgs {
    /// Verify a JWT-SVID with the `jwt-svid` keys of this SPIFFE bundle document, trusted for
    /// TRUST_DOMAIN only (repeatable, one per trust domain). Needs --audience.
    #[arg(
        long = "spiffe-bundle",
        value_name = "TRUST_DOMAIN=FILE",
        value_parser = parse_bundle_arg,
        requires = "audiences",
        conflicts_with_all = ["keys", "issuers", "algorithms", "required", "profile", "token_types"]
    )]
    #[cfg_attr(
        feature = "remote-jwks",
        arg(conflicts_with_all = ["jwks_url", "discover"])
    )]
    pub(crate) spiffe_bundles: Vec<(TrustDomain, PathBuf)>,
}

/// What `verify-token` shares with the JWT-SVID check.
pub(crate) struct Common<'a> {
    pub(crate) audiences: &'a [String],
    pub(crate) leeway: u64,
    pub(crate) now: Option<i64>,
}

/// `TRUST_DOMAIN=FILE`: a bundle document does not name its trust domain (SPIFFE bundle
/// §4), and which trust domain its keys may sign for is the whole point.
fn parse_bundle_arg(value: &str) -> Result<(TrustDomain, PathBuf), String> {
    let Some((trust_domain, file)) = value.split_once('=') else {
        return Err("expected TRUST_DOMAIN=FILE (a bundle does not name its trust domain)".into());
    };
    let trust_domain = TrustDomain::new(trust_domain)
        .map_err(|e| format!("invalid trust domain `{trust_domain}`: {e}"))?;
    if file.is_empty() {
        return Err("the bundle file is missing after `=`".into());
    }
    Ok((trust_domain, PathBuf::from(file)))
}

/// The verifier the flags describe; checked before any token is read.
pub(crate) fn build(args: &SvidArgs, common: &Common<'_>) -> Result<JwtSvidVerifier, String> {
    let mut bundles = Vec::with_capacity(args.spiffe_bundles.len());
    for (trust_domain, path) in &args.spiffe_bundles {
        if bundles
            .iter()
            .any(|b: &SpiffeBundle| b.trust_domain() == trust_domain)
        {
            return Err(format!("trust domain `{trust_domain}` has two bundles"));
        }
        let bundle = read_bundle(trust_domain, path)?;
        for skipped in bundle.skipped() {
            eprintln!("note: `{}`: skipped {skipped}", path.display());
        }
        if bundle.jwt_authorities().is_empty() {
            eprintln!(
                "note: `{}`: no usable `jwt-svid` key for `{trust_domain}`",
                path.display()
            );
        }
        bundles.push(bundle);
    }
    let bundles = BundleSet::from_bundles(bundles).map_err(|e| e.to_string())?;
    let mut builder = JwtSvidVerifier::builder(bundles)
        .audiences(common.audiences.iter().cloned())
        .leeway(Duration::from_secs(common.leeway));
    if let Some(now) = common.now {
        builder = builder.clock(Arc::new(FixedClock(now)));
    }
    builder.build().map_err(|e| e.to_string())
}

fn read_bundle(trust_domain: &TrustDomain, path: &Path) -> Result<SpiffeBundle, String> {
    let bytes = super::verify_token::read_bounded(path, MAX_SPIFFE_BUNDLE_BYTES)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    SpiffeBundle::from_json(trust_domain.clone(), &bytes)
        .map_err(|e| format!("cannot load the SPIFFE bundle `{}`: {e}", path.display()))
}

/// Prints the verified claims (exit 0) or `rejected: <reason>` (exit 1).
pub(crate) fn report(
    outcome: Result<VerifiedJwtSvid, meshguard::token::jwt_svid::JwtSvidError>,
) -> ExitCode {
    match outcome {
        Ok(svid) => match serde_json::to_string_pretty(svid.claims()) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot print the claims: {e}");
                ExitCode::from(2)
            }
        },
        Err(rejection) => {
            eprintln!("rejected: {}", rejection.reason());
            ExitCode::from(1)
        }
    }
}
