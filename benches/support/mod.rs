//! What the token and layer benches share: one signing key per algorithm family (Ed25519 and
//! P-256 generated per run, the RSA key of `tests/data`, an HMAC secret), each with its
//! public half as meshguard, raw ring and jsonwebtoken take it.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each bench uses a different subset"
)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use meshguard::token::{Algorithm, KeySet, TokenSigner};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

pub const ISS: &str = "https://idp.bench.example";
pub const AUD: &str = "api://orders";
pub const HMAC_SECRET: &[u8] = b"bench-secret-0123456789abcdef0123456789";

/// Raw ring checking a signing input and signature.
pub type Floor = Box<dyn Fn(&[u8], &[u8]) -> bool>;

/// A signing key (kid `k1`) and its public half.
pub struct BenchKey {
    pub name: &'static str,
    pub alg: Algorithm,
    signer: TokenSigner,
    public: Public,
}

enum Public {
    Ed25519(Vec<u8>),
    /// The uncompressed point.
    P256(Vec<u8>),
    Rsa {
        pem: String,
        pkcs1: Vec<u8>,
    },
    Hmac,
}

/// EdDSA, ES256, RS256 (2048-bit) and HS256, in that order.
pub fn keys() -> Vec<BenchKey> {
    let rng = SystemRandom::new();
    let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed_public = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let p256 = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(p256, &rng).unwrap();
    let ec_point = EcdsaKeyPair::from_pkcs8(p256, ec_pkcs8.as_ref(), &rng)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let rsa_private = test_data("TEST-ONLY-rsa2048.key.pem");
    let rsa_public = test_data("rsa2048.pkcs1.pem");
    let pkcs1 = pem_der(&rsa_public);
    vec![
        BenchKey {
            name: "EdDSA",
            alg: Algorithm::EdDSA,
            signer: TokenSigner::new(Algorithm::EdDSA, ed_pkcs8.as_ref())
                .unwrap()
                .with_kid("k1"),
            public: Public::Ed25519(ed_public),
        },
        BenchKey {
            name: "ES256",
            alg: Algorithm::ES256,
            signer: TokenSigner::new(Algorithm::ES256, ec_pkcs8.as_ref())
                .unwrap()
                .with_kid("k1"),
            public: Public::P256(ec_point),
        },
        BenchKey {
            name: "RS256",
            alg: Algorithm::RS256,
            signer: TokenSigner::from_pem(Algorithm::RS256, rsa_private.as_bytes())
                .unwrap()
                .with_kid("k1"),
            public: Public::Rsa {
                pem: rsa_public,
                pkcs1,
            },
        },
        BenchKey {
            name: "HS256",
            alg: Algorithm::HS256,
            signer: TokenSigner::new(Algorithm::HS256, HMAC_SECRET)
                .unwrap()
                .with_kid("k1"),
            public: Public::Hmac,
        },
    ]
}

impl BenchKey {
    /// `claims` signed with this key under kid `k1`.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.signer.sign(claims).unwrap()
    }

    /// The public key as meshguard configures it (a JWK, a PEM, the HMAC secret).
    pub fn key_set(&self) -> KeySet {
        match &self.public {
            Public::Ed25519(public) => {
                let jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","kid":"k1",
                    "x": URL_SAFE_NO_PAD.encode(public)});
                KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap()
            }
            Public::P256(point) => {
                let (x, y) = point[1..].split_at(32);
                let jwk = serde_json::json!({"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256",
                    "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
                KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap()
            }
            Public::Rsa { pem, .. } => KeySet::from_pem(pem.as_bytes()).unwrap(),
            Public::Hmac => KeySet::hmac_secret("k1", HMAC_SECRET).unwrap(),
        }
    }

    /// Raw ring verifying a signature with the public key: the floor of a verification.
    pub fn floor(&self) -> Floor {
        let unparsed = |alg: &'static dyn signature::VerificationAlgorithm, key: &[u8]| -> Floor {
            let key = key.to_vec();
            Box::new(move |input, sig| {
                signature::UnparsedPublicKey::new(alg, &key)
                    .verify(input, sig)
                    .is_ok()
            })
        };
        match &self.public {
            Public::Ed25519(public) => unparsed(&signature::ED25519, public),
            Public::P256(point) => unparsed(&signature::ECDSA_P256_SHA256_FIXED, point),
            Public::Rsa { pkcs1, .. } => unparsed(&signature::RSA_PKCS1_2048_8192_SHA256, pkcs1),
            Public::Hmac => {
                let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HMAC_SECRET);
                Box::new(move |input, sig| ring::hmac::verify(&hmac, input, sig).is_ok())
            }
        }
    }

    /// The public key as jsonwebtoken takes it.
    pub fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        match &self.public {
            Public::Ed25519(public) => jsonwebtoken::DecodingKey::from_ed_der(public),
            Public::P256(point) => jsonwebtoken::DecodingKey::from_ec_der(point),
            Public::Rsa { pkcs1, .. } => jsonwebtoken::DecodingKey::from_rsa_der(pkcs1),
            Public::Hmac => jsonwebtoken::DecodingKey::from_secret(HMAC_SECRET).unwrap(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn test_data(key: &str) -> String {
    let path = format!(
        "{}/../tests/data/pyjwt/keys/{key}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}
