//! Remote key sources: an issuer's JWKS fetched over HTTPS, directly or through OpenID
//! Connect discovery, cached, refreshed in the background and kept safe through rotations
//! and outages.
//!
//! Give an [`Issuer`](crate::token::Issuer) a [`RemoteJwks`] instead of a [`KeySet`](crate::token::KeySet). The
//! keys are fetched on a tokio runtime; requests read them from an atomically swapped
//! snapshot, so the warm path does no I/O and takes no lock.
//!
//! | behaviour | default |
//! | --- | --- |
//! | cache lifetime without `Cache-Control: max-age` | [`DEFAULT_TTL`] (10 min) |
//! | bounds on `max-age` | [`DEFAULT_MIN_TTL`] (1 min) ..= [`DEFAULT_MAX_TTL`] (1 h) |
//! | background refresh | after 4/5 of the lifetime |
//! | refresh on unknown `kid`, retry after failure | at most once per [`DEFAULT_REFRESH_INTERVAL`] (30 s), single-flight |
//! | last good keys kept while the endpoint fails | [`DEFAULT_MAX_STALE`] (24 h), then fail closed |
//! | body bound, counted while streaming | [`DEFAULT_MAX_BODY_BYTES`] (256 KiB) |
//! | connect / request timeouts | [`DEFAULT_CONNECT_TIMEOUT`] (5 s) / [`DEFAULT_REQUEST_TIMEOUT`] (10 s) |
//! | start-up | [`Startup::Lazy`] |
//!
//! [`Verifier::verify_async`](crate::token::Verifier::verify_async) waits for a fetch when
//! it can help (no keys yet, or an unknown `kid` within the rate limit); the synchronous
//! [`Verifier::verify`](crate::token::Verifier::verify) never waits and answers
//! `key_source_unavailable` or `unknown_key` instead. Failures are logged with `tracing`
//! once per change of state, not per request.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "remote-jwks")] {
//! use meshguard::token::{Issuer, Verifier};
//! use meshguard::token::remote::{Health, RemoteJwks};
//!
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::remote("https://idp.example", RemoteJwks::discover("https://idp.example"))
//!         .audience("orders"))
//!     .build()?;
//! // Built outside a runtime, nothing was fetched: tokens are refused, never let through.
//! let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0.c2ln";
//! assert_eq!(verifier.verify(token).unwrap_err().reason(), "key_source_unavailable");
//! assert_eq!(verifier.remote_status()[0].health(), Health::Cold);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In a service, build on the runtime and verify asynchronously:
//!
//! ```no_run
//! # #[cfg(feature = "remote-jwks")]
//! # async fn serve(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use meshguard::token::{Issuer, Verifier};
//!
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::discover("https://sso.example/realms/prod").audience("orders"))
//!     .build_async()
//!     .await?;
//! let verified = verifier.verify_async(token).await?;
//! # let _ = verified;
//! # Ok(())
//! # }
//! ```

pub(crate) mod source;

#[cfg(feature = "remote-jwks")]
mod api;
#[cfg(feature = "remote-jwks")]
mod cache;
#[cfg(feature = "remote-jwks")]
mod config;
#[cfg(feature = "remote-jwks")]
pub(crate) mod discovery;
#[cfg(feature = "remote-jwks")]
pub(crate) mod document;
#[cfg(feature = "remote-jwks")]
mod error;
#[cfg(feature = "remote-jwks")]
pub(crate) mod fetch;
#[cfg(feature = "remote-jwks")]
mod state;
#[cfg(feature = "remote-jwks")]
mod status;

#[cfg(feature = "remote-jwks")]
pub(crate) use cache::Snapshot;
#[cfg(feature = "remote-jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_STALE, DEFAULT_MAX_TTL,
    DEFAULT_MIN_TTL, DEFAULT_REFRESH_INTERVAL, DEFAULT_REQUEST_TIMEOUT, DEFAULT_TTL, RemoteJwks,
    Startup,
};
#[cfg(feature = "remote-jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
pub use discovery::discovered_jwks_uri;
#[cfg(feature = "remote-jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
pub use error::RemoteError;
#[cfg(feature = "remote-jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
pub use status::{Health, RemoteStatus};
