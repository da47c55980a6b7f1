//! The few DER and SPKI structures the key loaders read, through x509-parser.

use x509_parser::der_parser::oid;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::algorithm::NO_ED448;

/// A public key read from a `SubjectPublicKeyInfo`, in the form ring verifies with.
pub(crate) enum SpkiKey {
    /// PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    /// Uncompressed point on P-256.
    P256(Vec<u8>),
    /// Uncompressed point on P-384.
    P384(Vec<u8>),
    /// Raw 32-byte Ed25519 public key.
    Ed25519(Vec<u8>),
}

/// Why an SPKI could not be used.
pub(crate) enum SpkiProblem {
    Malformed,
    Unsupported(String),
}

/// Reads a DER `SubjectPublicKeyInfo` (the whole input, nothing trailing).
pub(crate) fn parse_spki(der: &[u8]) -> Result<SpkiKey, SpkiProblem> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|_| SpkiProblem::Malformed)?;
    if !rest.is_empty() {
        return Err(SpkiProblem::Malformed);
    }
    spki_key(&spki)
}

/// Converts a parsed SPKI (e.g. a certificate's) into ring's key form.
pub(crate) fn spki_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<SpkiKey, SpkiProblem> {
    let bits = spki.subject_public_key.data.to_vec();
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == oid!(1.2.840.113549.1.1.1) {
        return match rsa_public_key_components(&bits) {
            Some(_) => Ok(SpkiKey::Rsa(bits)),
            None => Err(SpkiProblem::Malformed),
        };
    }
    if *algorithm == oid!(1.3.101.112) {
        return match bits.len() {
            32 => Ok(SpkiKey::Ed25519(bits)),
            _ => Err(SpkiProblem::Malformed),
        };
    }
    if *algorithm == oid!(1.3.101.113) {
        return Err(SpkiProblem::Unsupported(NO_ED448.into()));
    }
    if *algorithm == oid!(1.2.840.10045.2.1) {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|params| params.as_oid().ok());
        return match curve {
            Some(curve) if curve == oid!(1.2.840.10045.3.1.7) => Ok(SpkiKey::P256(bits)),
            Some(curve) if curve == oid!(1.3.132.0.34) => Ok(SpkiKey::P384(bits)),
            Some(curve) => Err(SpkiProblem::Unsupported(format!("elliptic curve {curve}"))),
            None => Err(SpkiProblem::Malformed),
        };
    }
    Err(SpkiProblem::Unsupported(format!(
        "public key algorithm {algorithm}"
    )))
}

/// The modulus and exponent of a PKCS#1 `RSAPublicKey`, without leading zero bytes.
pub(crate) fn rsa_public_key_components(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (rest, object) = x509_parser::der_parser::parse_der(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let sequence = object.as_sequence().ok()?;
    let [modulus, exponent] = sequence.as_slice() else {
        return None;
    };
    Some((
        strip_leading_zeros(modulus.as_slice().ok()?),
        strip_leading_zeros(exponent.as_slice().ok()?),
    ))
}

fn strip_leading_zeros(mut bytes: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}
