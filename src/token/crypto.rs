//! A [`jsonwebtoken`] 12 `CryptoProvider` backed by [`ring`], and the verification primitives
//! that meshguard's own [`Verifier`](super::Verifier) shares with it.
//!
//! meshguard never relies on jsonwebtoken's process-wide default provider: the
//! [`Verifier`](super::Verifier) and [`TokenSigner`](super::TokenSigner) call the ring code in
//! this module directly, so whatever provider the host process installed (aws-lc-rs,
//! RustCrypto, or none) has no effect on meshguard's decisions.
//!
//! Code that calls `jsonwebtoken::decode`/`encode` itself needs a process default. Call
//! [`install_default`] once at start-up to make it this ring provider. jsonwebtoken allows
//! exactly one installation per process: if another provider is already installed,
//! [`install_default`] returns it in `Err` and changes nothing, and jsonwebtoken's own
//! functions keep using the provider installed first.
//!
//! # Example
//!
//! ```
//! use meshguard::token::crypto;
//!
//! // Ok on first installation; Err(the installed provider) if someone else was first.
//! let _ = crypto::install_default();
//! assert!(jsonwebtoken::crypto::CryptoProvider::try_get_default().is_some());
//! ```

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, new_error};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature;
use jsonwebtoken::{AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair};
use ring::{digest, hmac};

use super::algorithm::Algorithm;

/// The ring-backed provider: every algorithm of [`Algorithm`], nothing else.
pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components_from_private_key,
        rsa_pub_components_from_public_key: rsa_components_from_public_key,
        ec_pub_components_from_private_key: ec_components_from_private_key,
        ed_pub_components_from_private_key: ed_components_from_private_key,
        compute_digest,
    },
};

/// Installs [`RING_PROVIDER`] as jsonwebtoken's process-wide default.
///
/// # Errors
///
/// Returns the provider that is already installed when one is; jsonwebtoken then keeps
/// using that one for its own `encode`/`decode`. meshguard's verifier is unaffected either way.
pub fn install_default() -> Result<(), &'static CryptoProvider> {
    RING_PROVIDER.install_default()
}

/// A public key or secret ready to check one algorithm's signatures.
///
/// Built once at configuration time; [`verify`](RingVerifier::verify) is the whole
/// per-request cost. HMAC keys are expanded into ring's precomputed pads here.
pub(crate) struct RingVerifier {
    alg: Algorithm,
    key: VerifyingKey,
}

enum VerifyingKey {
    Hmac(hmac::Key),
    /// PKCS#1 `RSAPublicKey` DER, uncompressed EC point, or raw Ed25519 key: what ring takes.
    Public(&'static dyn sig::VerificationAlgorithm, Box<[u8]>),
    RsaComponents(&'static sig::RsaParameters, Box<[u8]>, Box<[u8]>),
}

impl RingVerifier {
    /// A verifier for `alg` over an HMAC secret. Length rules are the caller's (the key set's).
    pub(crate) fn hmac(alg: Algorithm, secret: &[u8]) -> Option<Self> {
        let hmac_alg = match alg {
            Algorithm::HS256 => hmac::HMAC_SHA256,
            Algorithm::HS384 => hmac::HMAC_SHA384,
            Algorithm::HS512 => hmac::HMAC_SHA512,
            _ => return None,
        };
        Some(RingVerifier {
            alg,
            key: VerifyingKey::Hmac(hmac::Key::new(hmac_alg, secret)),
        })
    }

    /// A verifier for `alg` over public key bytes in ring's format for that algorithm
    /// (PKCS#1 DER for RSA, the uncompressed point for ECDSA, 32 bytes for Ed25519).
    pub(crate) fn public(alg: Algorithm, key: &[u8]) -> Option<Self> {
        let ring_alg = public_algorithm(alg)?;
        Some(RingVerifier {
            alg,
            key: VerifyingKey::Public(ring_alg, key.into()),
        })
    }

    pub(crate) fn rsa_components(alg: Algorithm, n: &[u8], e: &[u8]) -> Option<Self> {
        Some(RingVerifier {
            alg,
            key: VerifyingKey::RsaComponents(rsa_parameters(alg)?, n.into(), e.into()),
        })
    }

    /// The one algorithm this verifier checks.
    pub(crate) fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Checks `signature` over `message`; true only for a valid signature.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            VerifyingKey::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            VerifyingKey::Public(alg, key) => sig::UnparsedPublicKey::new(*alg, key)
                .verify(message, signature)
                .is_ok(),
            VerifyingKey::RsaComponents(params, n, e) => sig::RsaPublicKeyComponents { n, e }
                .verify(params, message, signature)
                .is_ok(),
        }
    }
}

fn rsa_parameters(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// ring's verification algorithm for a public-key JWS algorithm.
pub(crate) fn public_algorithm(alg: Algorithm) -> Option<&'static dyn sig::VerificationAlgorithm> {
    if let Some(params) = rsa_parameters(alg) {
        return Some(params);
    }
    Some(match alg {
        // JWS ECDSA signatures are the fixed-size r || s concatenation, never DER (RFC 7518 §3.4).
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA | Algorithm::Ed25519 => &sig::ED25519,
        _ => return None,
    })
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        if RingVerifier::verify(self, msg, signature) {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> jsonwebtoken::Algorithm {
        self.alg.to_jsonwebtoken()
    }
}

/// A private key or secret that signs with one algorithm.
pub(crate) struct RingSigner {
    alg: Algorithm,
    key: SigningKey,
}

enum SigningKey {
    Hmac(hmac::Key),
    Rsa(sig::RsaKeyPair, &'static dyn sig::RsaEncoding),
    Ecdsa(sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
}

impl RingSigner {
    /// A signer for `alg` from an HMAC secret or a DER private key (PKCS#8; PKCS#1 also
    /// accepted for RSA).
    pub(crate) fn new(alg: Algorithm, key: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        let rng = SystemRandom::new();
        let key = match alg {
            Algorithm::HS256 => SigningKey::Hmac(hmac::Key::new(hmac::HMAC_SHA256, key)),
            Algorithm::HS384 => SigningKey::Hmac(hmac::Key::new(hmac::HMAC_SHA384, key)),
            Algorithm::HS512 => SigningKey::Hmac(hmac::Key::new(hmac::HMAC_SHA512, key)),
            Algorithm::RS256 => SigningKey::Rsa(rsa_key_pair(key)?, &sig::RSA_PKCS1_SHA256),
            Algorithm::RS384 => SigningKey::Rsa(rsa_key_pair(key)?, &sig::RSA_PKCS1_SHA384),
            Algorithm::RS512 => SigningKey::Rsa(rsa_key_pair(key)?, &sig::RSA_PKCS1_SHA512),
            Algorithm::PS256 => SigningKey::Rsa(rsa_key_pair(key)?, &sig::RSA_PSS_SHA256),
            Algorithm::PS384 => SigningKey::Rsa(rsa_key_pair(key)?, &sig::RSA_PSS_SHA384),
            Algorithm::PS512 => SigningKey::Rsa(rsa_key_pair(key)?, &sig::RSA_PSS_SHA512),
            Algorithm::ES256 => SigningKey::Ecdsa(sig::EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                key,
                &rng,
            )?),
            Algorithm::ES384 => SigningKey::Ecdsa(sig::EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                key,
                &rng,
            )?),
            Algorithm::EdDSA | Algorithm::Ed25519 => {
                SigningKey::Ed25519(sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(key)?)
            }
        };
        Ok(RingSigner { alg, key })
    }

    /// Signs `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        match &self.key {
            SigningKey::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            SigningKey::Rsa(pair, encoding) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(*encoding, &rng, message, &mut out)?;
                Ok(out)
            }
            SigningKey::Ecdsa(pair) => Ok(pair.sign(&rng, message)?.as_ref().to_vec()),
            SigningKey::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

fn rsa_key_pair(der: &[u8]) -> Result<sig::RsaKeyPair, ring::error::KeyRejected> {
    sig::RsaKeyPair::from_pkcs8(der).or_else(|_| sig::RsaKeyPair::from_der(der))
}

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.sign(msg).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> jsonwebtoken::Algorithm {
        self.alg.to_jsonwebtoken()
    }
}

fn from_jsonwebtoken(alg: jsonwebtoken::Algorithm) -> Option<Algorithm> {
    Some(match alg {
        jsonwebtoken::Algorithm::HS256 => Algorithm::HS256,
        jsonwebtoken::Algorithm::HS384 => Algorithm::HS384,
        jsonwebtoken::Algorithm::HS512 => Algorithm::HS512,
        jsonwebtoken::Algorithm::RS256 => Algorithm::RS256,
        jsonwebtoken::Algorithm::RS384 => Algorithm::RS384,
        jsonwebtoken::Algorithm::RS512 => Algorithm::RS512,
        jsonwebtoken::Algorithm::PS256 => Algorithm::PS256,
        jsonwebtoken::Algorithm::PS384 => Algorithm::PS384,
        jsonwebtoken::Algorithm::PS512 => Algorithm::PS512,
        jsonwebtoken::Algorithm::ES256 => Algorithm::ES256,
        jsonwebtoken::Algorithm::ES384 => Algorithm::ES384,
        jsonwebtoken::Algorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

fn family_matches(alg: Algorithm, family: AlgorithmFamily) -> bool {
    use super::algorithm::KeyFamily;
    matches!(
        (alg.family(), family),
        (KeyFamily::Hmac, AlgorithmFamily::Hmac)
            | (KeyFamily::Rsa, AlgorithmFamily::Rsa)
            | (KeyFamily::Ec, AlgorithmFamily::Ec)
            | (KeyFamily::Okp, AlgorithmFamily::Ed)
    )
}

fn new_signer(
    alg: &jsonwebtoken::Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    let alg = from_jsonwebtoken(*alg).ok_or_else(|| new_error(ErrorKind::UnsupportedAlgorithm))?;
    if !family_matches(alg, key.family()) {
        return Err(new_error(ErrorKind::InvalidKeyFormat));
    }
    let signer = RingSigner::new(alg, key.as_bytes())
        .map_err(|rejected| new_error(ErrorKind::Signing(rejected.to_string())))?;
    Ok(Box::new(signer))
}

fn new_verifier(
    alg: &jsonwebtoken::Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    let alg = from_jsonwebtoken(*alg).ok_or_else(|| new_error(ErrorKind::UnsupportedAlgorithm))?;
    // The key's family, not the token's header, decides what the key may verify.
    if !family_matches(alg, key.family()) {
        return Err(new_error(ErrorKind::InvalidKeyFormat));
    }
    let verifier = match key.kind() {
        DecodingKeyKind::SecretOrDer(bytes) if alg.is_symmetric() => RingVerifier::hmac(alg, bytes),
        DecodingKeyKind::SecretOrDer(bytes) => RingVerifier::public(alg, bytes),
        DecodingKeyKind::RsaModulusExponent { n, e } => RingVerifier::rsa_components(alg, n, e),
    };
    match verifier {
        Some(verifier) => Ok(Box::new(verifier)),
        None => Err(new_error(ErrorKind::InvalidKeyFormat)),
    }
}

fn rsa_components_from_private_key(der: &[u8]) -> jsonwebtoken::errors::Result<(Vec<u8>, Vec<u8>)> {
    let pair = rsa_key_pair(der).map_err(|e| new_error(ErrorKind::InvalidRsaKey(e.to_string())))?;
    let components = sig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok((components.n, components.e))
}

fn rsa_components_from_public_key(der: &[u8]) -> jsonwebtoken::errors::Result<(Vec<u8>, Vec<u8>)> {
    super::der::rsa_public_key_components(der)
        .map(|(n, e)| (n.to_vec(), e.to_vec()))
        .ok_or_else(|| new_error(ErrorKind::InvalidRsaKey("not a PKCS#1 RSAPublicKey".into())))
}

fn ec_components_from_private_key(
    der: &[u8],
    alg: jsonwebtoken::Algorithm,
) -> jsonwebtoken::errors::Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (signing, curve, coordinate_len) = match alg {
        jsonwebtoken::Algorithm::ES256 => (
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            EllipticCurve::P256,
            32,
        ),
        jsonwebtoken::Algorithm::ES384 => (
            &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            EllipticCurve::P384,
            48,
        ),
        _ => return Err(new_error(ErrorKind::InvalidEcdsaKey)),
    };
    let pair = sig::EcdsaKeyPair::from_pkcs8(signing, der, &SystemRandom::new())
        .map_err(|_| new_error(ErrorKind::InvalidEcdsaKey))?;
    match pair.public_key().as_ref().split_first() {
        Some((4, xy)) if xy.len() == 2 * coordinate_len => {
            let (x, y) = xy.split_at(coordinate_len);
            Ok((curve, x.to_vec(), y.to_vec()))
        }
        _ => Err(new_error(ErrorKind::InvalidEcdsaKey)),
    }
}

fn ed_components_from_private_key(
    der: &[u8],
    curve: &EllipticCurve,
) -> jsonwebtoken::errors::Result<Vec<u8>> {
    if *curve != EllipticCurve::Ed25519 {
        return Err(new_error(ErrorKind::InvalidAlgorithm));
    }
    let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .map_err(|_| new_error(ErrorKind::InvalidEddsaKey))?;
    Ok(pair.public_key().as_ref().to_vec())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> jsonwebtoken::errors::Result<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(new_error(ErrorKind::UnsupportedAlgorithm)),
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_round_trips_every_algorithm_through_jsonwebtoken_traits() {
        let rng = SystemRandom::new();
        let ec256 =
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec384 =
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let ed = sig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let secret = [7u8; 64];
        for (alg, private, public) in [
            (
                jsonwebtoken::Algorithm::HS256,
                EncodingKey::from_secret(&secret).unwrap(),
                DecodingKey::from_secret(&secret).unwrap(),
            ),
            (
                jsonwebtoken::Algorithm::ES256,
                EncodingKey::from_ec_der(ec256.as_ref()),
                DecodingKey::from_ec_der(
                    sig::EcdsaKeyPair::from_pkcs8(
                        &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                        ec256.as_ref(),
                        &rng,
                    )
                    .unwrap()
                    .public_key()
                    .as_ref(),
                ),
            ),
            (
                jsonwebtoken::Algorithm::ES384,
                EncodingKey::from_ec_der(ec384.as_ref()),
                DecodingKey::from_ec_der(
                    sig::EcdsaKeyPair::from_pkcs8(
                        &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                        ec384.as_ref(),
                        &rng,
                    )
                    .unwrap()
                    .public_key()
                    .as_ref(),
                ),
            ),
            (
                jsonwebtoken::Algorithm::EdDSA,
                EncodingKey::from_ed_der(ed.as_ref()),
                DecodingKey::from_ed_der(
                    sig::Ed25519KeyPair::from_pkcs8(ed.as_ref())
                        .unwrap()
                        .public_key()
                        .as_ref(),
                ),
            ),
        ] {
            let signer = (RING_PROVIDER.signer_factory)(&alg, &private).unwrap();
            let signature = signer.try_sign(b"message").unwrap();
            let verifier = (RING_PROVIDER.verifier_factory)(&alg, &public).unwrap();
            assert_eq!(verifier.algorithm(), alg);
            assert!(verifier.verify(b"message", &signature).is_ok(), "{alg:?}");
            assert!(verifier.verify(b"messagf", &signature).is_err(), "{alg:?}");
        }
    }

    #[test]
    fn public_key_is_never_an_hmac_secret() {
        let rsa_public = DecodingKey::from_rsa_der(&[0x30, 0x00]);
        assert!(
            (RING_PROVIDER.verifier_factory)(&jsonwebtoken::Algorithm::HS256, &rsa_public).is_err()
        );
        let ec_public = DecodingKey::from_ec_der(&[4; 65]);
        assert!(
            (RING_PROVIDER.verifier_factory)(&jsonwebtoken::Algorithm::HS256, &ec_public).is_err()
        );
        assert!(
            (RING_PROVIDER.verifier_factory)(&jsonwebtoken::Algorithm::RS256, &ec_public).is_err()
        );
    }
}
