//! meshguard quickstart: mint an access token with an embedded demo key, verify it, and show
//! what happens to a tampered, an expired and a wrong-audience token.
//!
//! Run with `cargo run --example quickstart`. Everything it needs is embedded below.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use serde_json::json;

/// DEMO ONLY — an Ed25519 private key published in this example. Never use it for anything real.
const DEMO_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ8oUazCDEDCuDJMYGgW0aoVZekSZM9m8qL7g4zXOy8c
-----END PRIVATE KEY-----
";

/// The public half of the demo key: what a service would load from its identity provider.
const DEMO_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAThlffzCz+GFYTBbcDCG0S5ny4TxdahMFMrHee6NzwaA=
-----END PUBLIC KEY-----
";

const ISSUER: &str = "https://idp.demo.meshguard.invalid";
const AUDIENCE: &str = "api://orders";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The service side: configured once at start-up.
    let verifier = Verifier::builder()
        .issuer(
            Issuer::new(ISSUER, KeySet::from_pem(DEMO_PUBLIC_KEY_PEM.as_bytes())?)
                .audience(AUDIENCE)
                .algorithms([Algorithm::EdDSA])
                .access_token_profile(),
        )
        .build()?;

    // The identity provider's side, played here by the demo key.
    let signer = TokenSigner::from_pem(Algorithm::EdDSA, DEMO_PRIVATE_KEY_PEM.as_bytes())?
        .with_kid("demo-key-1")
        .with_type("at+jwt");
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = |sub: &str, aud: &str, exp: u64| {
        json!({
            "iss": ISSUER, "sub": sub, "aud": aud, "client_id": "quickstart",
            "iat": now, "exp": exp, "jti": format!("{sub}-{exp}"),
            "scope": "orders:read orders:write", "roles": ["reader"],
        })
    };
    let lifetime = Duration::from_secs(300).as_secs();

    let token = signer.sign(&claims("alice", AUDIENCE, now + lifetime))?;
    println!("minted token for alice:\n  {token}\n");

    let verified = verifier.verify(&token)?;
    println!("verified:");
    println!("  subject   {}", verified.subject().unwrap_or("-"));
    println!("  issuer    {}", verified.issuer().unwrap_or("-"));
    println!("  audiences {:?}", verified.audiences());
    println!("  scopes    {:?}", verified.scopes());
    println!("  algorithm {}", verified.header().algorithm());
    println!(
        "  claims    {}\n",
        serde_json::to_string(verified.claims())?
    );

    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 6.., "AAAAAA");
    let rejected = [
        ("tampered signature", tampered),
        (
            "expired",
            signer.sign(&claims("bob", AUDIENCE, now - 3600))?,
        ),
        (
            "another audience",
            signer.sign(&claims("carol", "api://billing", now + lifetime))?,
        ),
        (
            "alg none",
            format!(
                "eyJhbGciOiJub25lIn0.{}.",
                token.split('.').nth(1).unwrap_or_default()
            ),
        ),
    ];
    for (what, token) in rejected {
        match verifier.verify(&token) {
            Ok(_) => return Err(format!("{what}: accepted, which must never happen").into()),
            Err(error) => println!("{what:<20} rejected: {} ({error})", error.reason()),
        }
    }
    Ok(())
}
