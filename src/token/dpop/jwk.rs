//! The public key of a DPoP proof's `jwk` header, and its RFC 7638 thumbprint.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use serde_json::{Map, Value};

use super::error::DpopError;
use crate::token::crypto::RingVerifier;
use crate::token::{Algorithm, KeyFamily};

/// JWK members that hold private or secret key material (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2). A proof whose key carries any of them is refused: the client has leaked its
/// private key, and a server that accepted it would be trusting a key anyone may now hold.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A proof's public key, checked and ready to verify the proof's signature.
pub(crate) struct ProofKey {
    material: Material,
    thumbprint: String,
}

enum Material {
    /// The uncompressed point `04 || x || y`, for ES256 (P-256) or ES384 (P-384).
    Ec { p384: bool, point: Vec<u8> },
    /// Modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The 32-byte Ed25519 public key.
    Ed25519(Vec<u8>),
}

impl ProofKey {
    /// Reads a public JWK: EC on P-256 or P-384, RSA, or OKP on Ed25519.
    ///
    /// # Errors
    ///
    /// [`DpopError::PrivateKey`] when it holds private material, [`DpopError::InvalidKey`]
    /// for another key type or curve, a missing member, or a member that is not canonical
    /// base64url of the right length.
    pub(crate) fn from_jwk(jwk: &Map<String, Value>) -> Result<Self, DpopError> {
        if PRIVATE_MEMBERS.iter().any(|name| jwk.contains_key(*name)) {
            return Err(DpopError::PrivateKey);
        }
        let text = |name: &'static str| -> Result<&str, DpopError> {
            match jwk.get(name) {
                Some(Value::String(value)) => Ok(value),
                Some(_) => Err(DpopError::InvalidKey("a key member is not a string")),
                None => Err(DpopError::InvalidKey("a required key member is missing")),
            }
        };
        // Each value is checked to be canonical base64url (or a known curve name), so the
        // canonical JSON below needs no escaping and one key has one thumbprint.
        match text("kty")? {
            "EC" => {
                let crv = text("crv")?;
                let (p384, size) = match crv {
                    "P-256" => (false, 32),
                    "P-384" => (true, 48),
                    _ => return Err(DpopError::InvalidKey("unsupported curve")),
                };
                let (x, y) = (text("x")?, text("y")?);
                let (xb, yb) = (decode(x, Some(size))?, decode(y, Some(size))?);
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(4);
                point.extend_from_slice(&xb);
                point.extend_from_slice(&yb);
                let canonical = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#);
                Ok(Self::new(Material::Ec { p384, point }, &canonical))
            }
            "RSA" => {
                let (n, e) = (text("n")?, text("e")?);
                let (nb, eb) = (decode(n, None)?, decode(e, None)?);
                let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                Ok(Self::new(Material::Rsa { n: nb, e: eb }, &canonical))
            }
            "OKP" => {
                if text("crv")? != "Ed25519" {
                    return Err(DpopError::InvalidKey("unsupported curve"));
                }
                let x = text("x")?;
                let key = decode(x, Some(32))?;
                let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                Ok(Self::new(Material::Ed25519(key), &canonical))
            }
            _ => Err(DpopError::InvalidKey("unsupported key type")),
        }
    }

    fn new(material: Material, canonical: &str) -> Self {
        Self {
            material,
            thumbprint: thumbprint_of(canonical),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url: what `cnf.jkt` names.
    pub(crate) fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A verifier for `alg` with this key.
    ///
    /// # Errors
    ///
    /// [`DpopError::DisallowedAlgorithm`] when `alg` does not fit the key (ES384 with a
    /// P-256 key, RS256 with an EC key, ...).
    pub(crate) fn verifier(&self, alg: Algorithm) -> Result<RingVerifier, DpopError> {
        let verifier = match (&self.material, alg.family()) {
            (Material::Ec { p384, point }, KeyFamily::Ec) if *p384 == (alg == Algorithm::ES384) => {
                RingVerifier::public(alg, point)
            }
            (Material::Rsa { n, e }, KeyFamily::Rsa) => RingVerifier::rsa_components(alg, n, e),
            (Material::Ed25519(key), KeyFamily::Okp) => RingVerifier::public(alg, key),
            _ => None,
        };
        verifier.ok_or(DpopError::DisallowedAlgorithm)
    }
}

/// The RFC 7638 thumbprint of a public JWK given as JSON: base64url of the SHA-256 hash of
/// its required members in canonical form. What an authorization server puts into a DPoP-bound
/// token's `cnf.jkt`.
///
/// # Example
///
/// ```
/// // RFC 7638 §3.1.
/// let jwk = br#"{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#;
/// assert_eq!(
///     meshguard::token::dpop::jwk_thumbprint(jwk)?,
///     "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
/// );
/// # Ok::<(), meshguard::token::dpop::DpopError>(())
/// ```
///
/// # Errors
///
/// As for a proof's `jwk`: [`DpopError::Malformed`] for JSON that is not one object (with
/// unique names, bounded depth), [`DpopError::PrivateKey`], [`DpopError::InvalidKey`].
pub fn jwk_thumbprint(jwk: &[u8]) -> Result<String, DpopError> {
    if jwk.len() > super::DEFAULT_MAX_PROOF_BYTES {
        return Err(DpopError::TooLarge {
            limit: super::DEFAULT_MAX_PROOF_BYTES,
        });
    }
    crate::token::json::check_strict(jwk).map_err(|_| DpopError::Malformed("bad JWK"))?;
    let map: Map<String, Value> =
        serde_json::from_slice(jwk).map_err(|_| DpopError::Malformed("bad JWK"))?;
    ProofKey::from_jwk(&map).map(|key| key.thumbprint)
}

fn thumbprint_of(canonical: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// Canonical base64url without padding, of exactly `size` bytes when given.
fn decode(text: &str, size: Option<usize>) -> Result<Vec<u8>, DpopError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| DpopError::InvalidKey("a key member is not base64url"))?;
    if bytes.is_empty() || size.is_some_and(|size| bytes.len() != size) {
        return Err(DpopError::InvalidKey("a key member has the wrong length"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn key(value: Value) -> Result<ProofKey, DpopError> {
        let Value::Object(map) = value else {
            unreachable!("test keys are objects")
        };
        ProofKey::from_jwk(&map)
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1: member order and extra members do not matter.
        let jwk =
            json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"});
        assert_eq!(
            key(jwk).unwrap().thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn ec_and_okp_thumbprints_hash_the_canonical_members() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let y = URL_SAFE_NO_PAD.encode([2u8; 32]);
        let ec = key(json!({"y": y, "x": x, "kty": "EC", "crv": "P-256", "use": "sig"})).unwrap();
        let expected = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        assert_eq!(ec.thumbprint(), thumbprint_of(&expected));
        let okp = key(json!({"x": x, "crv": "Ed25519", "kty": "OKP"})).unwrap();
        let expected = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        assert_eq!(okp.thumbprint(), thumbprint_of(&expected));
    }

    #[test]
    fn private_members_and_symmetric_keys_are_refused() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        for member in PRIVATE_MEMBERS {
            let mut jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
            jwk[member] = json!("AAAA");
            assert_eq!(key(jwk).err(), Some(DpopError::PrivateKey), "{member}");
        }
        assert_eq!(
            key(json!({"kty": "oct", "k": "AAAA"})).err(),
            Some(DpopError::PrivateKey)
        );
        assert!(matches!(
            key(json!({"kty": "oct"})),
            Err(DpopError::InvalidKey(_))
        ));
    }

    #[test]
    fn lengths_curves_and_encodings_are_checked() {
        let short = URL_SAFE_NO_PAD.encode([1u8; 31]);
        let good = URL_SAFE_NO_PAD.encode([1u8; 32]);
        for jwk in [
            json!({"kty": "EC", "crv": "P-256", "x": short, "y": good}),
            json!({"kty": "EC", "crv": "P-521", "x": good, "y": good}),
            json!({"kty": "EC", "crv": "P-256", "x": format!("{good}="), "y": good}),
            json!({"kty": "EC", "crv": "P-256", "x": good}),
            json!({"kty": "OKP", "crv": "X25519", "x": good}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": 5}),
            json!({"kty": "RSA", "n": "", "e": "AQAB"}),
            json!({"kty": "RSA", "n": "a+b/", "e": "AQAB"}),
        ] {
            assert!(
                matches!(key(jwk.clone()), Err(DpopError::InvalidKey(_))),
                "{jwk}"
            );
        }
    }

    #[test]
    fn algorithms_must_fit_the_key() {
        let good = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let p256 = key(json!({"kty": "EC", "crv": "P-256", "x": good, "y": good})).unwrap();
        assert!(p256.verifier(Algorithm::ES256).is_ok());
        for alg in [
            Algorithm::ES384,
            Algorithm::RS256,
            Algorithm::EdDSA,
            Algorithm::HS256,
        ] {
            assert_eq!(
                p256.verifier(alg).err(),
                Some(DpopError::DisallowedAlgorithm)
            );
        }
        let rsa = key(json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"})).unwrap();
        assert!(rsa.verifier(Algorithm::PS256).is_ok());
        assert!(rsa.verifier(Algorithm::ES256).is_err());
    }
}
