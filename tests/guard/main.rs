//! The guard in front of real axum and tonic servers: routes, refusals, client addresses,
//! issuers, metrics and the README's router. One binary, so that cedar, tokio, axum and
//! tonic are linked once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peer_support/mod.rs"]
mod peer_support;
#[cfg(feature = "remote-jwks")]
#[path = "../remote_support/mod.rs"]
mod remote_support;
#[cfg(feature = "tonic")]
#[path = "../tonic_support/mod.rs"]
mod tonic_support;

#[cfg(all(feature = "axum", feature = "rustls", feature = "remote-jwks"))]
mod axum_router;
#[cfg(feature = "axum")]
mod client_ip;
#[cfg(all(feature = "axum", feature = "tonic"))]
mod issuers;
mod public_xfcc;
#[cfg(feature = "axum")]
mod readme_router;
#[cfg(feature = "axum")]
mod request_view;
#[cfg(feature = "axum")]
mod router_differential;
#[cfg(all(feature = "tonic", feature = "rustls"))]
mod tonic_service;
#[cfg(feature = "tonic")]
mod tonic_view;
