//! A trust domain's JWT-SVID signing authority, minted at test time: its keys (P-256,
//! P-384, RSA; an Ed25519 key and an HMAC secret to sign what must be refused), the SPIFFE
//! bundle publishing them, and JWT-SVIDs signed with them.

use meshguard::peer::TrustDomain;
use meshguard::token::jwt_svid::{BundleSet, JwtSvidVerifier, SpiffeBundle};
use meshguard::token::{Clock, FixedClock};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::support::{TestKeys, b64, hs256, signing_input};

/// The time every test verifies at, unless it says otherwise.
pub(crate) const NOW: i64 = 1_800_000_000;

/// The audience the verifiers under test expect.
pub(crate) const AUDIENCE: &str = "spiffe://example.org/orders-api";

/// One trust domain's keys; each key is published under `<kid>`, `<kid>-384` and
/// `<kid>-rsa`.
pub(crate) struct Authority {
    pub(crate) trust_domain: TrustDomain,
    pub(crate) kid: String,
    pub(crate) keys: TestKeys,
}

impl Authority {
    pub(crate) fn new(trust_domain: &str, kid: &str) -> Self {
        Self {
            trust_domain: TrustDomain::new(trust_domain).unwrap(),
            kid: kid.to_owned(),
            keys: TestKeys::generate(),
        }
    }

    /// The bundle document: the three `jwt-svid` keys and the given sequence.
    pub(crate) fn bundle_json(&self, sequence: u64) -> String {
        let mut ec256 = self.keys.ec256_jwk(&self.kid, None);
        ec256["use"] = "jwt-svid".into();
        let point = self.keys.ec384_public();
        let ec384 = json!({
            "use": "jwt-svid", "kty": "EC", "crv": "P-384", "kid": format!("{}-384", self.kid),
            "x": b64(&point[1..49]), "y": b64(&point[49..]),
        });
        let pair = RsaKeyPair::from_pkcs8(&self.keys.rsa_pkcs8).unwrap();
        let rsa = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let rsa = json!({
            "use": "jwt-svid", "kty": "RSA", "kid": format!("{}-rsa", self.kid),
            "n": b64(&rsa.n), "e": b64(&rsa.e),
        });
        json!({
            "keys": [ec256, ec384, rsa],
            "spiffe_sequence": sequence,
            "spiffe_refresh_hint": 300,
        })
        .to_string()
    }

    pub(crate) fn bundle(&self) -> SpiffeBundle {
        SpiffeBundle::from_json(self.trust_domain.clone(), self.bundle_json(1).as_bytes()).unwrap()
    }

    /// The claims of a valid JWT-SVID for `path` in this trust domain.
    pub(crate) fn claims(&self, path: &str) -> Value {
        json!({
            "sub": format!("spiffe://{}{path}", self.trust_domain),
            "aud": [AUDIENCE],
            "exp": NOW + 300,
            "iat": NOW - 10,
        })
    }

    /// A JWT-SVID for `path` signed with ES256 under this authority's `kid`.
    pub(crate) fn svid(&self, path: &str) -> String {
        self.sign("ES256", &self.claims(path))
    }

    /// `claims` signed with `alg` and the key the bundle publishes for it (`typ: JWT`).
    pub(crate) fn sign(&self, alg: &str, claims: &Value) -> String {
        let header = json!({"alg": alg, "kid": self.kid_for(alg), "typ": "JWT"});
        self.sign_raw(alg, &header.to_string(), &claims.to_string())
    }

    /// The `kid` of the key that signs `alg`.
    pub(crate) fn kid_for(&self, alg: &str) -> String {
        match alg {
            "ES384" => format!("{}-384", self.kid),
            a if a.starts_with("RS") || a.starts_with("PS") => format!("{}-rsa", self.kid),
            _ => self.kid.clone(),
        }
    }

    /// A token with exactly these header and payload texts, signed as `alg` says.
    pub(crate) fn sign_raw(&self, alg: &str, header: &str, payload: &str) -> String {
        let input = signing_input(header, payload);
        let rsa = |encoding| self.keys.sign_rsa(encoding, &input);
        let signature = match alg {
            "ES256" => self.keys.sign_es256(&input),
            "ES384" => EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                &self.keys.ec384_pkcs8,
                &SystemRandom::new(),
            )
            .unwrap()
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec(),
            "RS256" => rsa(&signature::RSA_PKCS1_SHA256),
            "RS384" => rsa(&signature::RSA_PKCS1_SHA384),
            "RS512" => rsa(&signature::RSA_PKCS1_SHA512),
            "PS256" => rsa(&signature::RSA_PSS_SHA256),
            "PS384" => rsa(&signature::RSA_PSS_SHA384),
            "PS512" => rsa(&signature::RSA_PSS_SHA512),
            "EdDSA" => Ed25519KeyPair::from_pkcs8(&self.keys.ed_pkcs8)
                .unwrap()
                .sign(input.as_bytes())
                .as_ref()
                .to_vec(),
            "HS256" => hs256(&self.keys.hmac, &input),
            _ => b"not-a-signature".to_vec(),
        };
        format!("{input}.{}", b64(signature))
    }
}

/// A verifier trusting `authorities`' bundles, expecting [`AUDIENCE`], at [`NOW`].
pub(crate) fn verifier(authorities: &[&Authority]) -> JwtSvidVerifier {
    verifier_at(authorities, NOW)
}

pub(crate) fn verifier_at(authorities: &[&Authority], now: i64) -> JwtSvidVerifier {
    let bundles = BundleSet::from_bundles(authorities.iter().map(|a| a.bundle())).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(now));
    JwtSvidVerifier::builder(bundles)
        .audience(AUDIENCE)
        .clock(clock)
        .build()
        .unwrap()
}
