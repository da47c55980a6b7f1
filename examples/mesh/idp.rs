//! The DEMO identity provider: an ES256 key pair minted at start, the users' access tokens
//! it signs, and the verifier every service builds from its public half.

use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use serde_json::json;

use crate::BoxError;
use crate::pki::unix_now;

/// DEMO ONLY: the identity provider's name, under the reserved `.invalid` domain.
const ISSUER: &str = "https://idp.mesh.demo.invalid";

/// The audience of the users' tokens: the shop's API, which edge, orders and payments all
/// serve. The token is forwarded as it came, so every service on the path accepts it; with
/// an audience per service, orders would exchange it instead (`Credentials::exchange`).
const AUDIENCE: &str = "api://shop";

/// How long the users' tokens live: longer than any run.
const TOKEN_LIFETIME: u64 = 3600;

/// DEMO ONLY: signs access tokens with a key that lives as long as the process.
pub(crate) struct DemoIdp {
    signer: TokenSigner,
    public_key_pem: String,
}

impl DemoIdp {
    pub(crate) fn new() -> Result<Self, BoxError> {
        let key = rcgen::KeyPair::generate()?;
        let signer = TokenSigner::from_pem(Algorithm::ES256, key.serialize_pem().as_bytes())?
            .with_kid("demo-mesh-key")
            .with_type("at+jwt");
        Ok(Self {
            signer,
            public_key_pem: key.public_key_pem(),
        })
    }

    /// An RFC 9068 access token for `sub` with `roles`.
    pub(crate) fn token(&self, sub: &str, roles: &[&str]) -> Result<String, BoxError> {
        let now = unix_now()?;
        Ok(self.signer.sign(&json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "client_id": "shop-web",
            "iat": now, "exp": now.saturating_add(TOKEN_LIFETIME), "jti": format!("{sub}-{now}"),
            "roles": roles, "scope": "shop",
        }))?)
    }

    /// The verifier a service checks users' tokens with: this issuer, this audience, ES256
    /// only, the access-token profile.
    pub(crate) fn verifier(&self) -> Result<Verifier, BoxError> {
        let keys = KeySet::from_pem(self.public_key_pem.as_bytes())?;
        Ok(Verifier::builder()
            .issuer(
                Issuer::new(ISSUER, keys)
                    .audience(AUDIENCE)
                    .algorithms([Algorithm::ES256])
                    .access_token_profile(),
            )
            .build()?)
    }
}
