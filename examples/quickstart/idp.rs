//! The demo identity provider: a DEMO key pair published in this file, and the access tokens
//! it signs with it.

use std::time::{SystemTime, UNIX_EPOCH};

use meshguard::token::{Algorithm, TokenSigner};
use serde_json::json;

use crate::{AUDIENCE, BoxError, ISSUER};

/// DEMO ONLY — never use in production. An Ed25519 private key published in this example,
/// playing the identity provider that signs access tokens. Anyone can mint tokens with it.
const DEMO_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ8oUazCDEDCuDJMYGgW0aoVZekSZM9m8qL7g4zXOy8c
-----END PRIVATE KEY-----
";

/// DEMO ONLY — never use in production. The public half of the demo key: what a real
/// service fetches from its identity provider's JWKS.
pub(crate) const DEMO_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAThlffzCz+GFYTBbcDCG0S5ny4TxdahMFMrHee6NzwaA=
-----END PUBLIC KEY-----
";

/// The demo identity provider: mints access tokens with the DEMO key.
pub(crate) struct DemoIdp {
    signer: TokenSigner,
    now: u64,
}

impl DemoIdp {
    pub(crate) fn new() -> Result<Self, BoxError> {
        let signer = TokenSigner::from_pem(Algorithm::EdDSA, DEMO_PRIVATE_KEY_PEM.as_bytes())?
            .with_kid("demo-key-1")
            .with_type("at+jwt");
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        Ok(Self { signer, now })
    }

    /// An RFC 9068 access token for `sub` expiring `expires_in` seconds from now (a negative
    /// number: already expired).
    pub(crate) fn token(
        &self,
        sub: &str,
        roles: &[&str],
        scope: &str,
        expires_in: i64,
    ) -> Result<String, BoxError> {
        let exp = self.now.saturating_add_signed(expires_in);
        Ok(self.signer.sign(&json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "client_id": "quickstart",
            "iat": self.now, "exp": exp, "jti": format!("{sub}-{exp}-{scope}"),
            "roles": roles, "scope": scope,
        }))?)
    }

    /// Alice, a member, with the read scope, for an hour.
    pub(crate) fn alice(&self) -> Result<String, BoxError> {
        self.token("alice", &["member"], "documents:read", 3600)
    }

    /// Bob, a guest, with the read scope, for an hour.
    pub(crate) fn bob(&self) -> Result<String, BoxError> {
        self.token("bob", &["guest"], "documents:read", 3600)
    }
}
