//! JWT-SVIDs: the calling workload's SPIFFE identity as a signed token (SPIFFE JWT-SVID
//! specification), verified against SPIFFE bundles per trust domain.
//!
//! Where mTLS ends at an edge proxy, the service behind it no longer sees the calling
//! workload's certificate; a JWT-SVID carries that identity instead. [`SpiffeBundle`] reads
//! a trust domain's bundle document, [`BundleSet`] holds one per trust domain (replaceable
//! at run time, or fetched from a bundle endpoint and kept refreshed), [`JwtSvidVerifier`] checks tokens against them and yields a
//! [`VerifiedJwtSvid`], and [`JwtSvidLayer`] does it for each request so that the guard's
//! [`Caller`](crate::caller::Caller) is the verified workload.
//!
//! # Example
//!
//! ```
//! use meshguard::caller::{Caller, WorkloadIdentity};
//! use meshguard::peer::{Authorizer, TrustDomain};
//! use meshguard::token::jwt_svid::{BundleSet, JwtSvidVerifier, SpiffeBundle};
//!
//! // Built from the bundle the trust domain publishes; this one holds no JWT key.
//! let td = TrustDomain::new("example.org")?;
//! let bundles = BundleSet::from_bundles([SpiffeBundle::from_json(td.clone(), br#"{"keys":[]}"#)?])?;
//! let verifier = JwtSvidVerifier::builder(bundles).audience("spiffe://example.org/orders").build()?;
//!
//! # let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9jYXJ0In0.c2ln";
//! match verifier.verify(token) {
//!     Ok(svid) => {
//!         Authorizer::member_of(td).authorize_id(svid.spiffe_id())?;
//!         let caller = Caller::from_workload(svid);
//!         # let _ = caller;
//!     }
//!     Err(refused) => assert_eq!(refused.reason(), "unknown_key"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bundle;
mod bundles;
mod error;
#[cfg(feature = "remote-jwks")]
mod fetch;
mod layer;
mod verifier;

pub use bundle::{BundleError, MAX_SPIFFE_BUNDLE_BYTES, MAX_SPIFFE_BUNDLE_KEYS, SpiffeBundle};
pub use bundles::BundleSet;
pub use error::{JwtSvidBuilderError, JwtSvidError};
#[cfg(feature = "remote-jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
pub use fetch::BundleFetchError;
pub use layer::JwtSvidLayer;
pub(crate) use layer::{WorkloadToken, missing};
pub use verifier::{JwtSvidBuilder, JwtSvidVerifier, VerifiedJwtSvid};
