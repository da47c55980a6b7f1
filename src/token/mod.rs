//! Access-token verification: JWTs signed with HMAC, RSA, ECDSA or Ed25519, checked on ring.
//!
//! Configure a [`Verifier`] once with one [`Issuer`] per identity provider, then call
//! [`Verifier::verify`] per request; [`bearer`] takes the token out of an HTTP request.
//!
//! # Example
//!
//! ```
//! use meshguard::token::{Issuer, KeySet, Verifier};
//!
//! let jwks = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"demo",
//!     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::new("https://idp.example", KeySet::from_jwks_json(jwks)?).audience("api"))
//!     .build()?;
//! // `{"alg":"none"}` is refused whatever the keys.
//! let none = "eyJhbGciOiJub25lIn0.e30.AA";
//! assert_eq!(verifier.verify(none).unwrap_err().reason(), "disallowed_algorithm");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod algorithm;
pub mod bearer;
mod cache;
mod claims;
#[cfg(any(feature = "introspection", feature = "outgoing"))]
pub(crate) mod client_auth;
mod clock;
pub mod crypto;
mod der;
pub mod dpop;
mod error;
mod header;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub mod introspection;
mod issuer;
pub(crate) mod json;
pub mod jwt_svid;
mod keys;
mod layer;
mod media_type;
#[cfg(feature = "remote-jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
pub mod remote;
#[cfg(not(feature = "remote-jwks"))]
mod remote;
mod signer;
mod verifier;

pub use algorithm::{Algorithm, AlgorithmSet, KeyFamily, UnsupportedAlgorithm};
pub use claims::{TokenHeader, VerifiedToken};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{BearerError, KeyError, TokenError, VerifierBuilderError};
pub use issuer::{DEFAULT_LEEWAY, Issuer};
pub use keys::{KeySet, MAX_KEY_DOCUMENT_BYTES, VerificationKey};
pub(crate) use layer::Authenticated;
pub use layer::AuthenticationLayer;
pub use signer::{SignError, TokenSigner};
pub use verifier::{DEFAULT_MAX_TOKEN_BYTES, DEFAULT_TOKEN_CACHE, Verifier, VerifierBuilder};
