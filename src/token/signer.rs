//! [`TokenSigner`]: mints signed JWTs, for tests, demos and services that issue their own.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use x509_parser::pem::Pem;

use super::algorithm::Algorithm;
use super::crypto::RingSigner;

/// Why a token could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The private key or secret is not usable with the algorithm.
    #[error("invalid signing key: {0}")]
    InvalidKey(String),
    /// The claims are not a JSON object.
    #[error("claims must be a JSON object")]
    ClaimsNotAnObject,
    /// The signature could not be computed.
    #[error("signing failed")]
    Signing,
}

/// Signs claims into a compact JWS with one algorithm and key.
///
/// # Example
///
/// ```
/// use meshguard::token::{Algorithm, TokenSigner};
///
/// let signer = TokenSigner::new(Algorithm::HS256, b"demo-secret-that-is-at-least-32-bytes!")?
///     .with_kid("k1")
///     .with_type("at+jwt");
/// let token = signer.sign(&serde_json::json!({ "sub": "alice" }))?;
/// assert_eq!(token.split('.').count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TokenSigner {
    alg: Algorithm,
    key: RingSigner,
    kid: Option<String>,
    typ: Option<String>,
}

impl TokenSigner {
    /// A signer from an HMAC secret (for `HS*`) or a PKCS#8 DER private key (RSA also as
    /// PKCS#1 DER).
    ///
    /// # Errors
    ///
    /// [`SignError::InvalidKey`] when the key does not fit the algorithm.
    pub fn new(alg: Algorithm, key: &[u8]) -> Result<Self, SignError> {
        if alg.is_symmetric() && key.len() < alg.min_hmac_secret_len() {
            return Err(SignError::InvalidKey(format!(
                "{alg} needs a secret of at least {} bytes",
                alg.min_hmac_secret_len()
            )));
        }
        let key = RingSigner::new(alg, key).map_err(|e| SignError::InvalidKey(e.to_string()))?;
        Ok(TokenSigner {
            alg,
            key,
            kid: None,
            typ: None,
        })
    }

    /// A signer from a PEM `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1) block.
    ///
    /// # Errors
    ///
    /// [`SignError::InvalidKey`] when there is no such block or it does not fit the algorithm.
    pub fn from_pem(alg: Algorithm, pem: &[u8]) -> Result<Self, SignError> {
        let block = Pem::iter_from_buffer(pem)
            .filter_map(Result::ok)
            .find(|block| block.label == "PRIVATE KEY" || block.label == "RSA PRIVATE KEY")
            .ok_or_else(|| SignError::InvalidKey("no PRIVATE KEY block".into()))?;
        TokenSigner::new(alg, &block.contents)
    }

    /// Sets the `kid` header parameter.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Sets the `typ` header parameter, e.g. `at+jwt` (RFC 9068).
    pub fn with_type(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// The algorithm this signer uses.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Signs `claims`, which must be a JSON object.
    ///
    /// # Errors
    ///
    /// [`SignError::ClaimsNotAnObject`], or [`SignError::Signing`] if ring fails.
    pub fn sign(&self, claims: &Value) -> Result<String, SignError> {
        if !claims.is_object() {
            return Err(SignError::ClaimsNotAnObject);
        }
        let mut header = Map::new();
        header.insert("alg".into(), self.alg.as_str().into());
        if let Some(typ) = &self.typ {
            header.insert("typ".into(), typ.clone().into());
        }
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), kid.clone().into());
        }
        let mut token = URL_SAFE_NO_PAD.encode(Value::Object(header).to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self
            .key
            .sign(token.as_bytes())
            .map_err(|_| SignError::Signing)?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}
