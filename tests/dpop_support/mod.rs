//! The parts of a DPoP exchange, made at test time: client keys of each kind with their
//! JWKs and RFC 7638 thumbprints (computed here, apart from the library), proofs, and an
//! identity provider that issues DPoP-bound tokens.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::Arc;

use ring::digest;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};

use meshguard::token::dpop::{DpopVerifier, DpopVerifierBuilder};
use meshguard::token::{Algorithm, Clock, Issuer, KeySet, TokenSigner, Verifier};

use crate::support::{TestKeys, b64};

pub(crate) const ISS: &str = "https://idp.example";
pub(crate) const AUD: &str = "orders";

pub(crate) enum Pair {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Ps256(RsaKeyPair),
}

/// A client's DPoP key.
pub(crate) struct ClientKey {
    pub(crate) pair: Pair,
    pub(crate) alg: &'static str,
    pub(crate) jwk: Value,
    /// RFC 7638 thumbprint, computed by the test from the canonical JSON.
    pub(crate) jkt: String,
}

impl ClientKey {
    pub(crate) fn es256() -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        Self {
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            jkt: thumbprint(&canonical),
            pair: Pair::Es256(pair),
            alg: "ES256",
        }
    }

    pub(crate) fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = b64(pair.public_key().as_ref());
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        Self {
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            jkt: thumbprint(&canonical),
            pair: Pair::Ed25519(pair),
            alg: "EdDSA",
        }
    }

    /// ring cannot generate RSA keys: the PyJWT test key (TEST-ONLY) serves.
    pub(crate) fn ps256() -> Self {
        let pair = RsaKeyPair::from_pkcs8(&TestKeys::generate().rsa_pkcs8).unwrap();
        let components: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let (n, e) = (b64(&components.n), b64(&components.e));
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        Self {
            jwk: json!({"kty": "RSA", "n": n, "e": e}),
            jkt: thumbprint(&canonical),
            pair: Pair::Ps256(pair),
            alg: "PS256",
        }
    }

    pub(crate) fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Es256(pair) => pair.sign(&rng, input).unwrap().as_ref().to_vec(),
            Pair::Ed25519(pair) => pair.sign(input).as_ref().to_vec(),
            Pair::Ps256(pair) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PSS_SHA256, &rng, input, &mut out)
                    .unwrap();
                out
            }
        }
    }

    /// The standard proof header for this key.
    pub(crate) fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk})
    }

    /// A proof of `method` to `uri` for `token`, issued at `iat`, with a fresh `jti`.
    pub(crate) fn proof(&self, method: &str, uri: &str, token: &str, iat: i64) -> String {
        self.proof_with(&self.header(), &claims(method, uri, token, iat))
    }

    pub(crate) fn proof_with(&self, header: &Value, claims: &Value) -> String {
        self.raw_proof(&header.to_string(), &claims.to_string())
    }

    /// A proof over exactly these header and claims texts.
    pub(crate) fn raw_proof(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }
}

/// The claims of a proof of `method` to `uri` for `token` at `iat`, with a fresh `jti`.
pub(crate) fn claims(method: &str, uri: &str, token: &str, iat: i64) -> Value {
    json!({"jti": jti(), "htm": method, "htu": uri, "iat": iat, "ath": ath(token)})
}

pub(crate) fn jti() -> String {
    let mut bytes = [0; 16];
    SystemRandom::new().fill(&mut bytes).unwrap();
    b64(bytes)
}

pub(crate) fn ath(token: &str) -> String {
    b64(digest::digest(&digest::SHA256, token.as_bytes()))
}

fn thumbprint(canonical: &str) -> String {
    b64(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// The identity provider: signs access tokens with its own ES256 key.
pub(crate) struct Idp {
    signer: TokenSigner,
    keys: KeySet,
    jwk: Value,
}

impl Idp {
    pub(crate) fn new() -> Self {
        let test = TestKeys::generate();
        let signer = TokenSigner::new(Algorithm::ES256, &test.ec256_pkcs8)
            .unwrap()
            .with_kid("idp");
        let jwk = test.ec256_jwk("idp", Some("ES256"));
        let keys = KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap();
        Self { signer, keys, jwk }
    }

    /// A token for `sub`, expiring at `exp`, bound to `jkt` when given.
    pub(crate) fn token(&self, sub: &str, exp: i64, jkt: Option<&str>) -> String {
        let mut claims = json!({"iss": ISS, "aud": AUD, "sub": sub, "exp": exp});
        if let Some(jkt) = jkt {
            claims["cnf"] = json!({"jkt": jkt});
        }
        self.signer.sign(&claims).unwrap()
    }

    /// The provider's public key as a JWK document.
    pub(crate) fn jwk_json(&self) -> String {
        self.jwk.to_string()
    }

    /// A verifier of this provider's tokens, with `clock`.
    pub(crate) fn verifier(&self, clock: Arc<dyn Clock>) -> Verifier {
        Verifier::builder()
            .issuer(Issuer::new(ISS, self.keys.clone()).audience(AUD))
            .clock(clock)
            .build()
            .unwrap()
    }

    /// A DPoP verifier builder over [`verifier`](Self::verifier).
    pub(crate) fn dpop(&self, clock: Arc<dyn Clock>) -> DpopVerifierBuilder {
        DpopVerifier::builder(self.verifier(clock))
    }
}
