//! Reading a DPoP proof (RFC 9449 §4.2): a compact JWS whose header carries its own public
//! key, checked up to its signature; the request-dependent checks are the verifier's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Number, Value};

use super::error::DpopError;
use super::jwk::ProofKey;
use crate::token::json::check_strict;
use crate::token::{Algorithm, AlgorithmSet};

/// A proof whose header, key and signature have been checked.
#[derive(Debug)]
pub(crate) struct Proof {
    pub(crate) thumbprint: String,
    pub(crate) claims: ProofClaims,
}

/// The claims of a proof (RFC 9449 §4.2); other members are read for syntax only.
#[derive(Debug, Deserialize)]
pub(crate) struct ProofClaims {
    pub(crate) jti: Option<String>,
    pub(crate) htm: Option<String>,
    pub(crate) htu: Option<String>,
    iat: Option<Number>,
    pub(crate) ath: Option<String>,
    pub(crate) nonce: Option<String>,
}

impl ProofClaims {
    /// `iat` in whole seconds (RFC 7519 §2 allows fractions).
    pub(crate) fn issued_at(&self) -> Option<i64> {
        let iat = self.iat.as_ref()?;
        iat.as_i64().or_else(|| {
            iat.as_f64()
                .filter(|v| v.is_finite() && v.abs() < 9.0e15)
                .map(|v| v.floor() as i64)
        })
    }
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: Option<String>,
    jwk: Option<Map<String, Value>>,
    crit: Option<IgnoredAny>,
}

/// Reads `proof` and checks, in this order: length, shape and encoding, header syntax
/// (unique names, bounded depth), `typ`, `crit`, `alg` against `algorithms`, the `jwk` key
/// (public only), the signature with that key, then the claims' syntax.
///
/// # Errors
///
/// The [`DpopError`] of the first check that failed.
pub(crate) fn read(
    proof: &str,
    max_bytes: usize,
    algorithms: AlgorithmSet,
) -> Result<Proof, DpopError> {
    if proof.len() > max_bytes {
        return Err(DpopError::TooLarge { limit: max_bytes });
    }
    let mut parts = proof.split('.');
    let (Some(header_text), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed("not three dot-separated parts"));
    };
    // A proof always has a payload and a signature: `alg: none` proofs end in an empty one.
    if [header_text, payload, signature]
        .iter()
        .any(|part| part.is_empty())
    {
        return Err(DpopError::Malformed("empty part"));
    }
    let header_bytes = decode(header_text, "header is not base64url")?;
    check_strict(&header_bytes).map_err(|_| DpopError::Malformed("bad header"))?;
    let header: Header =
        serde_json::from_slice(&header_bytes).map_err(|_| DpopError::Malformed("bad header"))?;
    let typ = header.typ.as_deref().unwrap_or_default();
    // RFC 7515 §4.1.9: the `application/` prefix may be left out, and media types are
    // compared without regard to case.
    let typ = typ
        .get(..12)
        .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
        .and_then(|_| typ.get(12..))
        .unwrap_or(typ);
    if !typ.eq_ignore_ascii_case("dpop+jwt") {
        return Err(DpopError::InvalidType);
    }
    if header.crit.is_some() {
        return Err(DpopError::UnsupportedCrit);
    }
    let alg = header
        .alg
        .as_deref()
        .and_then(Algorithm::from_jose_name)
        .filter(|alg| !alg.is_symmetric() && algorithms.contains(*alg))
        .ok_or(DpopError::DisallowedAlgorithm)?;
    let jwk = header
        .jwk
        .as_ref()
        .ok_or(DpopError::InvalidKey("the header has no `jwk`"))?;
    let key = ProofKey::from_jwk(jwk)?;
    let verifier = key.verifier(alg)?;
    let signature = decode(signature, "signature is not base64url")?;
    let signing_input = proof
        .get(..header_text.len() + 1 + payload.len())
        .ok_or(DpopError::Malformed("not three dot-separated parts"))?;
    if !verifier.verify(signing_input.as_bytes(), &signature) {
        return Err(DpopError::BadSignature);
    }
    let payload = decode(payload, "payload is not base64url")?;
    check_strict(&payload).map_err(|_| DpopError::Malformed("bad claims set"))?;
    let claims: ProofClaims =
        serde_json::from_slice(&payload).map_err(|_| DpopError::Malformed("bad claims set"))?;
    Ok(Proof {
        thumbprint: key.thumbprint().to_owned(),
        claims,
    })
}

fn decode(part: &str, what: &'static str) -> Result<Vec<u8>, DpopError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DpopError::Malformed(what))
}
