//! Access tokens: verification conformance, published vectors, the cache, remote key
//! sources and the authentication layer. One binary, so that cedar and tokio are linked once.
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

mod cache;
mod conformance;
mod idp_fixes;
#[cfg(feature = "axum")]
mod layer;
mod remote_jwks;
mod remote_retry;
mod vectors;
