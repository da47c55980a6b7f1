//! JWT-SVIDs: SPIFFE bundles, verification (CONFORMANCE 60–64) and the guard taking the
//! calling workload from a JWT-SVID on a real axum server. One binary, so that cedar, tokio
//! and axum are linked once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(feature = "remote-jwks")]
#[path = "../remote_support/mod.rs"]
mod remote_support;
#[path = "../support/mod.rs"]
mod support;

mod authority;
mod bundle;
mod conformance;
#[cfg(feature = "remote-jwks")]
mod fetch;
#[cfg(feature = "axum")]
mod guard;
