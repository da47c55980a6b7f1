//! Verification keys: HMAC secrets, PEM public keys and certificates, JWKs and JWKS documents.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use super::algorithm::{Algorithm, AlgorithmSet, KeyFamily, NO_ED448};
use super::crypto::RingVerifier;
use super::der::{self, SpkiKey, SpkiProblem};
use super::error::KeyError;

/// The largest key document (PEM, JWK or JWKS) meshguard parses: 1 MiB.
pub const MAX_KEY_DOCUMENT_BYTES: usize = 1 << 20;

/// One verification key: its material, optional `kid` and optional fixed algorithm.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    material: Material,
}

#[derive(Clone)]
enum Material {
    Hmac(Zeroizing<Vec<u8>>),
    /// PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

impl VerificationKey {
    /// An HMAC shared secret.
    ///
    /// # Errors
    ///
    /// [`KeyError::HmacSecretTooShort`] when the secret is shorter than 32 bytes, the
    /// minimum for HS256 (RFC 7518 §3.2); longer HMAC algorithms need 48 and 64 bytes and
    /// are only enabled for secrets that long.
    pub fn hmac_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < Algorithm::HS256.min_hmac_secret_len() {
            return Err(KeyError::HmacSecretTooShort {
                alg: Algorithm::HS256.as_str(),
                len: secret.len(),
                min: Algorithm::HS256.min_hmac_secret_len(),
            });
        }
        Ok(VerificationKey {
            kid: None,
            alg: None,
            material: Material::Hmac(Zeroizing::new(secret.to_vec())),
        })
    }

    /// Sets the key id that tokens name in their `kid` header.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Restricts the key to exactly one algorithm (RFC 8725 §3.1).
    ///
    /// # Errors
    ///
    /// [`KeyError::AlgorithmMismatch`] when `alg` belongs to another key family or curve,
    /// [`KeyError::HmacSecretTooShort`] when an HMAC secret is too short for `alg`.
    pub fn with_algorithm(mut self, alg: Algorithm) -> Result<Self, KeyError> {
        self.check_algorithm(alg)?;
        self.alg = Some(alg);
        Ok(self)
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is restricted to, if any.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The key's family.
    pub fn family(&self) -> KeyFamily {
        match self.material {
            Material::Hmac(_) => KeyFamily::Hmac,
            Material::Rsa(_) => KeyFamily::Rsa,
            Material::P256(_) | Material::P384(_) => KeyFamily::Ec,
            Material::Ed25519(_) => KeyFamily::Okp,
        }
    }

    fn kty(&self) -> &'static str {
        match self.material {
            Material::Hmac(_) => "oct",
            Material::Rsa(_) => "RSA",
            Material::P256(_) => "EC P-256",
            Material::P384(_) => "EC P-384",
            Material::Ed25519(_) => "OKP Ed25519",
        }
    }

    fn check_algorithm(&self, alg: Algorithm) -> Result<(), KeyError> {
        if !self.natural_algorithms().contains(alg) {
            if let Material::Hmac(secret) = &self.material
                && alg.is_symmetric()
            {
                return Err(KeyError::HmacSecretTooShort {
                    alg: alg.as_str(),
                    len: secret.len(),
                    min: alg.min_hmac_secret_len(),
                });
            }
            return Err(KeyError::AlgorithmMismatch {
                alg: alg.as_str().to_owned(),
                kty: self.kty(),
            });
        }
        Ok(())
    }

    /// Every algorithm the key material itself can serve.
    fn natural_algorithms(&self) -> AlgorithmSet {
        match &self.material {
            Material::Hmac(secret) => AlgorithmSet::of_family(KeyFamily::Hmac)
                .iter()
                .filter(|alg| secret.len() >= alg.min_hmac_secret_len())
                .collect(),
            Material::Rsa(_) => AlgorithmSet::of_family(KeyFamily::Rsa),
            Material::P256(_) => [Algorithm::ES256].into_iter().collect(),
            Material::P384(_) => [Algorithm::ES384].into_iter().collect(),
            Material::Ed25519(_) => AlgorithmSet::of_family(KeyFamily::Okp),
        }
    }

    /// The algorithms this key verifies under `allowed`: its own `alg` if it has one,
    /// otherwise all its material serves.
    pub(crate) fn algorithms(&self, allowed: AlgorithmSet) -> AlgorithmSet {
        let own = match self.alg {
            Some(alg) => [alg].into_iter().collect(),
            None => self.natural_algorithms(),
        };
        own.intersection(allowed)
    }

    pub(crate) fn ring_verifier(&self, alg: Algorithm) -> Option<RingVerifier> {
        match &self.material {
            Material::Hmac(secret) => RingVerifier::hmac(alg, secret),
            Material::Rsa(key)
            | Material::P256(key)
            | Material::P384(key)
            | Material::Ed25519(key) => RingVerifier::public(alg, key),
        }
    }

    fn from_spki(key: SpkiKey) -> Self {
        let material = match key {
            SpkiKey::Rsa(der) => Material::Rsa(der),
            SpkiKey::P256(point) => Material::P256(point),
            SpkiKey::P384(point) => Material::P384(point),
            SpkiKey::Ed25519(raw) => Material::Ed25519(raw),
        };
        VerificationKey {
            kid: None,
            alg: None,
            material,
        }
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key material stays out of logs, public or not: a secret must never be printed.
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kty", &self.kty())
            .finish_non_exhaustive()
    }
}

/// The keys one issuer signs with.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    skipped: Vec<String>,
}

impl KeySet {
    /// An empty key set.
    pub fn new() -> Self {
        KeySet::default()
    }

    /// A key set holding one HMAC secret under `kid`.
    ///
    /// # Errors
    ///
    /// As [`VerificationKey::hmac_secret`].
    pub fn hmac_secret(kid: impl Into<String>, secret: &[u8]) -> Result<Self, KeyError> {
        Ok(KeySet::from(
            VerificationKey::hmac_secret(secret)?.with_kid(kid),
        ))
    }

    /// Reads every public key and certificate in a PEM document: `PUBLIC KEY` (SPKI),
    /// `RSA PUBLIC KEY` (PKCS#1) and `CERTIFICATE` blocks (the certificate's key is used; its
    /// validity and chain are not checked, as with a pinned key).
    ///
    /// # Errors
    ///
    /// [`KeyError::Pem`] for a document without a usable block or with a private key,
    /// [`KeyError::Unsupported`] for keys of other types or curves.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        bounded(pem)?;
        let mut set = KeySet::new();
        for block in Pem::iter_from_buffer(pem) {
            let block = block.map_err(|e| KeyError::Pem(e.to_string()))?;
            set.keys.push(key_from_pem_block(&block)?);
        }
        if set.keys.is_empty() {
            return Err(KeyError::Pem("no PEM block found".into()));
        }
        Ok(set)
    }

    /// Reads a single JWK (RFC 7517 §4).
    ///
    /// # Errors
    ///
    /// [`KeyError::Jwk`] or [`KeyError::Unsupported`] when the key cannot verify signatures.
    pub fn from_jwk_json(json: &[u8]) -> Result<Self, KeyError> {
        bounded(json)?;
        super::json::check_strict(json).map_err(|e| KeyError::Jwk(e.to_string()))?;
        let jwk: Jwk = serde_json::from_slice(json).map_err(|e| KeyError::Jwk(e.to_string()))?;
        Ok(KeySet::from(jwk.into_key()?))
    }

    /// Reads a JWKS document (RFC 7517 §5). Keys that cannot verify signatures (unsupported
    /// `kty`/`crv`/`alg`, `use: "enc"`, `key_ops` without `verify`) are skipped, not fatal;
    /// [`skipped`](KeySet::skipped) says which and why.
    ///
    /// # Errors
    ///
    /// [`KeyError::Jwks`] when the document is not a JSON object with a `keys` array.
    pub fn from_jwks_json(json: &[u8]) -> Result<Self, KeyError> {
        KeySet::read_jwks(json, true)
    }

    /// Reads a JWKS document fetched from a remote source: as
    /// [`from_jwks_json`](KeySet::from_jwks_json), but HMAC secrets (`kty: oct`) are also
    /// skipped unless `symmetric` is set. A secret published at a URL is a secret anyone
    /// who can read the URL may mint tokens with.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn from_remote_jwks_json(json: &[u8], symmetric: bool) -> Result<Self, KeyError> {
        KeySet::read_jwks(json, symmetric)
    }

    fn read_jwks(json: &[u8], symmetric: bool) -> Result<Self, KeyError> {
        bounded(json)?;
        super::json::check_strict(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let document: JwksDocument =
            serde_json::from_slice(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let mut set = KeySet::new();
        for (index, value) in document.keys.into_iter().enumerate() {
            let name = key_name(index, &value);
            let key = serde_json::from_value::<Jwk>(value)
                .map_err(|e| KeyError::Jwk(e.to_string()))
                .and_then(Jwk::into_key);
            match key {
                Ok(key) if !symmetric && key.family() == KeyFamily::Hmac => set.skipped.push(
                    format!("{name}: a symmetric (`oct`) key in a remote document"),
                ),
                Ok(key) => set.keys.push(key),
                Err(why) => set.skipped.push(format!("{name}: {why}")),
            }
        }
        Ok(set)
    }

    /// Reads a key file of any supported kind: a JWKS document, a single JWK, or PEM.
    ///
    /// # Errors
    ///
    /// As the reader for the detected kind.
    pub fn from_document(bytes: &[u8]) -> Result<Self, KeyError> {
        bounded(bytes)?;
        let text = bytes.trim_ascii_start();
        if text.starts_with(b"{") {
            let probe: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| KeyError::Jwk(e.to_string()))?;
            if probe.get("keys").is_some() {
                return KeySet::from_jwks_json(bytes);
            }
            return KeySet::from_jwk_json(bytes);
        }
        KeySet::from_pem(bytes)
    }

    /// Adds a key.
    pub fn push(&mut self, key: VerificationKey) {
        self.keys.push(key);
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
        self.skipped.extend(other.skipped);
    }

    /// The usable keys.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys of a JWKS document that were skipped, each with the reason: `key 2 (kid `a`):
    /// `use` is `enc``, or `key 2: ...` for a key without a string `kid`. The text is for
    /// people, not matching; a `kid` is shown cut to 64 characters, control characters
    /// replaced, since the document may come from anywhere.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

impl From<VerificationKey> for KeySet {
    fn from(key: VerificationKey) -> Self {
        KeySet {
            keys: vec![key],
            skipped: Vec::new(),
        }
    }
}

/// Most characters of a skipped key's `kid` shown: the document is untrusted, and the text
/// ends up in logs and on terminals.
const MAX_SHOWN_KID: usize = 64;

/// How a skipped key is named: its place in the document and, if it has one, its `kid`.
fn key_name(index: usize, value: &serde_json::Value) -> String {
    match value.get("kid").and_then(serde_json::Value::as_str) {
        Some(kid) => {
            let shown: String = kid
                .chars()
                .take(MAX_SHOWN_KID)
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect();
            format!("key {index} (kid `{shown}`)")
        }
        None => format!("key {index}"),
    }
}

fn bounded(document: &[u8]) -> Result<(), KeyError> {
    if document.len() > MAX_KEY_DOCUMENT_BYTES {
        return Err(KeyError::TooLarge {
            limit: MAX_KEY_DOCUMENT_BYTES,
        });
    }
    Ok(())
}

fn spki_error(problem: SpkiProblem) -> KeyError {
    match problem {
        SpkiProblem::Malformed => KeyError::Pem("malformed public key".into()),
        SpkiProblem::Unsupported(what) => KeyError::Unsupported(what),
    }
}

fn key_from_pem_block(block: &Pem) -> Result<VerificationKey, KeyError> {
    match block.label.as_str() {
        "PUBLIC KEY" => der::parse_spki(&block.contents)
            .map(VerificationKey::from_spki)
            .map_err(spki_error),
        "RSA PUBLIC KEY" => match der::rsa_public_key_components(&block.contents) {
            Some(_) => Ok(VerificationKey {
                kid: None,
                alg: None,
                material: Material::Rsa(block.contents.clone()),
            }),
            None => Err(KeyError::Pem("malformed RSA PUBLIC KEY".into())),
        },
        "CERTIFICATE" => {
            let (_, certificate) =
                x509_parser::certificate::X509Certificate::from_der(&block.contents)
                    .map_err(|e| KeyError::Pem(format!("certificate: {e}")))?;
            der::spki_key(certificate.public_key())
                .map(VerificationKey::from_spki)
                .map_err(spki_error)
        }
        label if label.contains("PRIVATE") => Err(KeyError::Pem(format!(
            "`{label}` is a private key; give the public key or certificate"
        ))),
        label => Err(KeyError::Pem(format!("unsupported PEM block `{label}`"))),
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// The JWK members meshguard reads (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2).
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<SecretString>,
}

/// A JWK `k` member, wiped from memory when dropped.
struct SecretString(Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| SecretString(Zeroizing::new(s)))
    }
}

fn b64(member: &str, value: Option<&str>) -> Result<Vec<u8>, KeyError> {
    let value = value.ok_or_else(|| KeyError::Jwk(format!("missing `{member}`")))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| KeyError::Jwk(format!("`{member}` is not base64url")))
}

impl Jwk {
    fn into_key(self) -> Result<VerificationKey, KeyError> {
        if let Some(use_) = &self.use_
            && use_ != "sig"
        {
            return Err(KeyError::Unsupported(format!("`use` is `{use_}`")));
        }
        if let Some(ops) = &self.key_ops
            && !ops.iter().any(|op| op == "verify")
        {
            return Err(KeyError::Unsupported("`key_ops` lacks `verify`".into()));
        }
        if self.alg.as_deref() == Some("Ed448") || self.crv.as_deref() == Some("Ed448") {
            return Err(KeyError::Unsupported(NO_ED448.into()));
        }
        let alg = match self.alg.as_deref() {
            Some(name) => Some(
                Algorithm::from_jose_name(name)
                    .ok_or_else(|| KeyError::Unsupported(format!("algorithm `{name}`")))?,
            ),
            None => None,
        };
        let material = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => {
                let n = b64("n", self.n.as_deref())?;
                let e = b64("e", self.e.as_deref())?;
                Material::Rsa(rsa_public_key_der(&n, &e))
            }
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let x = b64("x", self.x.as_deref())?;
                let y = b64("y", self.y.as_deref())?;
                let size = if crv == "P-256" { 32 } else { 48 };
                if x.len() != size || y.len() != size {
                    return Err(KeyError::Jwk(format!("coordinates are not {size} bytes")));
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                if crv == "P-256" {
                    Material::P256(point)
                } else {
                    Material::P384(point)
                }
            }
            ("OKP", Some("Ed25519")) => {
                let x = b64("x", self.x.as_deref())?;
                if x.len() != 32 {
                    return Err(KeyError::Jwk("Ed25519 `x` is not 32 bytes".into()));
                }
                Material::Ed25519(x)
            }
            ("oct", _) => {
                let secret = Zeroizing::new(b64("k", self.k.as_ref().map(|k| k.0.as_str()))?);
                return finish(VerificationKey::hmac_secret(&secret)?, self.kid, alg);
            }
            (kty, crv) => {
                return Err(KeyError::Unsupported(match crv {
                    Some(crv) => format!("`kty` `{kty}` with `crv` `{crv}`"),
                    None => format!("`kty` `{kty}`"),
                }));
            }
        };
        let key = VerificationKey {
            kid: None,
            alg: None,
            material,
        };
        finish(key, self.kid, alg)
    }
}

fn finish(
    mut key: VerificationKey,
    kid: Option<String>,
    alg: Option<Algorithm>,
) -> Result<VerificationKey, KeyError> {
    key.kid = kid;
    match alg {
        Some(alg) => key.with_algorithm(alg),
        None => Ok(key),
    }
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 A.1.1).
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = der_integer(n);
    body.extend(der_integer(e));
    let mut out = vec![0x30];
    out.extend(der_length(body.len()));
    out.extend(body);
    out
}

fn der_integer(magnitude: &[u8]) -> Vec<u8> {
    let mut digits = magnitude;
    while let [0, rest @ ..] = digits {
        digits = rest;
    }
    // A set high bit would read as negative; DER prefixes a zero byte.
    let pad = digits.first().is_none_or(|first| first & 0x80 != 0);
    let mut out = vec![0x02];
    out.extend(der_length(digits.len() + usize::from(pad)));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes = len.to_be_bytes();
    let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut out = vec![0x80 | significant.len() as u8];
    out.extend(significant);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hmac_secrets_are_refused() {
        assert!(matches!(
            VerificationKey::hmac_secret(&[1; 31]),
            Err(KeyError::HmacSecretTooShort { min: 32, .. })
        ));
        let key = VerificationKey::hmac_secret(&[1; 32]).unwrap();
        assert!(matches!(
            key.clone().with_algorithm(Algorithm::HS512),
            Err(KeyError::HmacSecretTooShort { min: 64, .. })
        ));
        assert!(matches!(
            key.with_algorithm(Algorithm::RS256),
            Err(KeyError::AlgorithmMismatch { .. })
        ));
    }

    #[test]
    fn jwks_skips_unusable_keys_and_says_why() {
        let jwks = br#"{"keys":[
            {"kty":"EC","crv":"P-521","x":"AA","y":"AA"},
            {"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},
            {"kty":"OKP","crv":"X25519","x":"AA"},
            {"kty":"RSA","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"},
            {"kty":"RSA","key_ops":["encrypt"],"n":"AQAB","e":"AQAB"},
            {"kty":"oct","k":"c2hvcnQ"},
            {"kty":"OKP","crv":"Ed25519","kid":"ok","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}"#;
        let set = KeySet::from_jwks_json(jwks).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.keys()[0].kid(), Some("ok"));
        assert_eq!(set.skipped().len(), 6);
        assert_eq!(set.skipped()[1], "key 1: unsupported key: `use` is `enc`");
    }

    #[test]
    fn skipped_keys_are_named_by_a_printable_bounded_kid() {
        let long = "é".repeat(100);
        let jwks = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"X25519","kid":"x1","x":"AA"}},
            {{"kty":"RSA","use":"enc","kid":"a\nb","n":"AQAB","e":"AQAB"}},
            {{"kty":"RSA","use":"enc","kid":"{long}","n":"AQAB","e":"AQAB"}},
            {{"kty":"RSA","use":"enc","kid":7,"n":"AQAB","e":"AQAB"}}]}}"#
        );
        let set = KeySet::from_jwks_json(jwks.as_bytes()).unwrap();
        let skipped = set.skipped();
        assert!(
            skipped[0].starts_with("key 0 (kid `x1`): "),
            "{}",
            skipped[0]
        );
        assert!(
            skipped[1].starts_with("key 1 (kid `a\u{fffd}b`): "),
            "{}",
            skipped[1]
        );
        let shown = format!("key 2 (kid `{}`): ", "é".repeat(MAX_SHOWN_KID));
        assert!(skipped[2].starts_with(&shown), "{}", skipped[2]);
        assert!(skipped[3].starts_with("key 3: "), "{}", skipped[3]);
    }

    #[test]
    fn jwks_documents_must_be_objects_with_keys() {
        for bad in [
            &b"[]"[..],
            b"{}",
            b"{\"keys\":{}}",
            b"null",
            b"{\"keys\":[],\"keys\":[]}",
        ] {
            assert!(matches!(
                KeySet::from_jwks_json(bad),
                Err(KeyError::Jwks(_))
            ));
        }
    }

    #[test]
    fn rsa_der_encoding_pads_high_bits() {
        let der = rsa_public_key_der(&[0x80; 200], &[1, 0, 1]);
        let (n, e) = der::rsa_public_key_components(&der).unwrap();
        assert_eq!(n, &[0x80; 200][..]);
        assert_eq!(e, &[1, 0, 1][..]);
    }

    #[test]
    fn ed448_pem_keys_are_refused_by_name() {
        // SubjectPublicKeyInfo { id-Ed448 (1.3.101.113), BIT STRING of 57 bytes }.
        let mut spki = vec![
            0x30, 0x43, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x03, 0x3a, 0,
        ];
        spki.extend([7; 57]);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&spki)
        );
        assert_eq!(
            KeySet::from_pem(pem.as_bytes()).unwrap_err(),
            KeyError::Unsupported(NO_ED448.into())
        );
    }

    #[test]
    fn private_keys_in_pem_are_refused() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(KeySet::from_pem(pem), Err(KeyError::Pem(_))));
        assert!(KeySet::from_pem(b"not pem").is_err());
    }

    #[test]
    fn debug_never_prints_material() {
        let key = VerificationKey::hmac_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        assert!(!format!("{key:?}").contains("0123"));
    }
}
