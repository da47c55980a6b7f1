//! Helpers shared by the integration tests: data files and hand-built tokens.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};

/// A file under `tests/data/`.
pub(crate) fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

pub(crate) fn read(path: &str) -> Vec<u8> {
    std::fs::read(data(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn read_json(path: &str) -> serde_json::Value {
    serde_json::from_slice(&read(path)).unwrap()
}

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The signing input of a token with exactly these header and payload texts.
pub(crate) fn signing_input(header_json: &str, payload_json: &str) -> String {
    format!("{}.{}", b64(header_json), b64(payload_json))
}

/// A token with exactly these header and payload texts and raw signature bytes.
pub(crate) fn assemble(header_json: &str, payload_json: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}",
        signing_input(header_json, payload_json),
        b64(signature)
    )
}

/// A freshly generated test key of each kind, with signing helpers over arbitrary text.
pub(crate) struct TestKeys {
    pub(crate) ec256_pkcs8: Vec<u8>,
    pub(crate) ec384_pkcs8: Vec<u8>,
    pub(crate) ed_pkcs8: Vec<u8>,
    pub(crate) rsa_pkcs8: Vec<u8>,
    pub(crate) hmac: Vec<u8>,
}

impl TestKeys {
    pub(crate) fn generate() -> Self {
        let rng = SystemRandom::new();
        TestKeys {
            ec256_pkcs8: EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            )
            .unwrap()
            .as_ref()
            .to_vec(),
            ec384_pkcs8: EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                &rng,
            )
            .unwrap()
            .as_ref()
            .to_vec(),
            ed_pkcs8: Ed25519KeyPair::generate_pkcs8(&rng)
                .unwrap()
                .as_ref()
                .to_vec(),
            // ring cannot generate RSA keys; the PyJWT test key (TEST-ONLY) serves.
            rsa_pkcs8: pem_contents(&read("pyjwt/keys/TEST-ONLY-rsa2048.key.pem")),
            hmac: b"meshguard-test-hmac-secret-32-bytes!!".to_vec(),
        }
    }

    pub(crate) fn ec256_public(&self) -> Vec<u8> {
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &self.ec256_pkcs8,
            &SystemRandom::new(),
        )
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec()
    }

    pub(crate) fn ec384_public(&self) -> Vec<u8> {
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            &self.ec384_pkcs8,
            &SystemRandom::new(),
        )
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec()
    }

    pub(crate) fn ed_public(&self) -> Vec<u8> {
        Ed25519KeyPair::from_pkcs8(&self.ed_pkcs8)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec()
    }

    /// A JWK for the P-256 key.
    pub(crate) fn ec256_jwk(&self, kid: &str, alg: Option<&str>) -> serde_json::Value {
        let point = self.ec256_public();
        let mut jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        });
        if let Some(alg) = alg {
            jwk["alg"] = alg.into();
        }
        jwk
    }

    pub(crate) fn sign_es256(&self, input: &str) -> Vec<u8> {
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &self.ec256_pkcs8,
            &SystemRandom::new(),
        )
        .unwrap()
        .sign(&SystemRandom::new(), input.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
    }

    pub(crate) fn sign_hs256(&self, input: &str) -> Vec<u8> {
        hs256(&self.hmac, input)
    }

    pub(crate) fn sign_rsa(
        &self,
        encoding: &'static dyn signature::RsaEncoding,
        input: &str,
    ) -> Vec<u8> {
        let pair = RsaKeyPair::from_pkcs8(&self.rsa_pkcs8).unwrap();
        let mut out = vec![0; pair.public().modulus_len()];
        pair.sign(encoding, &SystemRandom::new(), input.as_bytes(), &mut out)
            .unwrap();
        out
    }
}

pub(crate) fn hs256(secret: &[u8], input: &str) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
}

/// The DER contents of the first PEM block.
pub(crate) fn pem_contents(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}
